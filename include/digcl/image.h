/* digcl/image.h: sample images on the host: conversion from the model's pixel
 * range, PNG files with text metadata (libpng), sample grids with a caption
 * strip (cairo text), and the ADM evaluator's .npz archive (libzip).
 *
 * Spec: docs/SAMPLING.md. Every writer is atomic (digcl/file.h): temp file,
 * fsync, rename; a failed write leaves no partial file. Writers return 0, or
 * -1 with one line in error[size] naming the file and what went wrong.
 *
 * Dimension legend: N images, C channels (1 grey, 3 RGB), H, W pixels.
 */
#ifndef DIGCL_IMAGE_H
#define DIGCL_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* An 8-bit image, channels interleaved: pixels [H, W, C] row-major. */
typedef struct digcl_image {
    int width, height;
    int channels; /* 1 (grey) or 3 (RGB) */
    uint8_t *pixels;
} digcl_image;

/* Allocates width * height * channels bytes (uninitialised); 0 or -1. */
int digcl_image_alloc(digcl_image *image, int width, int height, int channels);
void digcl_image_free(digcl_image *image);

/* One model sample x [C, H, W] (pixels in [-1, 1]) to uint8 pixels
 * [crop, crop, C] = clamp(127.5 x + 128, 0, 255) truncated (upstream's
 * sample.py), over the centred crop window: rows and columns
 * [(H - crop) / 2, (H - crop) / 2 + crop). crop = 0 keeps H x W (then W is
 * used for the width). NaN becomes 0. */
void digcl_image_from_model(const float *x, int channels, int height, int width, int crop,
                            uint8_t *pixels);

/* ------------------------------------------------------------ PNG */

/* A text chunk: tEXt when the value is ASCII, else iTXt (UTF-8). Keys are
 * 1 to 79 Latin-1 characters (PNG). */
typedef struct digcl_png_text {
    const char *key;
    const char *value;
} digcl_png_text;

/* 8-bit grey or RGB PNG with the given text chunks. */
int digcl_png_write(const char *path, const digcl_image *image, const digcl_png_text *texts,
                    size_t text_count, char *error, size_t size);

/* ------------------------------------------------------------ grid */

typedef enum digcl_caption_mode {
    DIGCL_CAPTION_NONE = 0,
    DIGCL_CAPTION_ROWS = 1, /* one caption per row (captions[r * cols]) in a strip on the left */
    DIGCL_CAPTION_CELLS = 2 /* one caption per cell in a strip under it */
} digcl_caption_mode;

typedef struct digcl_grid_options {
    int rows;                    /* >= 1; columns = ceil(count / rows) */
    int scale;                   /* integer nearest-neighbour upscale of each cell, >= 1 */
    int padding;                 /* background pixels between and around cells */
    digcl_caption_mode captions; /* NONE when the build has no cairo (a notice says so) */
    const char *const *labels;   /* [count] caption text per cell (NULL with CAPTION_NONE) */
} digcl_grid_options;

/* Tiles count cells (all of one size and channel count) row by row on a
 * white background, with black caption text. *out is allocated. */
int digcl_grid_compose(const digcl_image *cells, int count, const digcl_grid_options *options,
                       digcl_image *out, char *error, size_t size);

/* 1 when caption text can be drawn (the build has cairo). */
int digcl_grid_has_captions(void);

/* ------------------------------------------------------------ npz */

/* The ADM evaluator's archive (guided-diffusion image_sample.py, np.savez):
 * arr_0.npy uint8 [N, H, W, 3] (grey images replicated to 3 channels) and,
 * when labels is not NULL, arr_1.npy int64 [N]. Stored (not deflated) NumPy
 * .npy v1.0 members of a zip file. Fails when the build has no libzip. */
/* 1 when the build can write .npz files (it has libzip). */
int digcl_npz_available(void);
int digcl_npz_write(const char *path, const digcl_image *images, int count, const int32_t *labels,
                    char *error, size_t size);

#endif
