/* src/data/data_internal.h: what the data sources (idx.c, image_folder.c,
 * latents.c), the image code (image_decode.c, image_crop.c) and the loader
 * (loader.c) share. Not installed; the public API is digcl/data.h. */
#ifndef DIGCL_DATA_INTERNAL_H
#define DIGCL_DATA_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/data.h"

/* Grow-only host buffers of one worker thread: every image of a run reuses
 * them, so decoding allocates only while images keep getting larger. */
typedef struct data_buffer {
    uint8_t *bytes;
    size_t capacity;
} data_buffer;

typedef struct data_scratch {
    data_buffer file;       /* the encoded file */
    data_buffer pixels;     /* decoded, interleaved [h, w, c] u8 */
    data_buffer halved;     /* box-halving steps (ping-pong with pixels) */
    data_buffer resized;    /* after the bicubic resize [h', w', c]; halving's middle */
    data_buffer rows;       /* libpng row pointers, TurboJPEG CMYK, latent spreads */
    data_buffer stb;        /* stb_image_resize's working memory */
    data_buffer floats;     /* the bicubic passes' float input */
    data_buffer floats_out; /* ... and output */
    data_buffer weights;    /* box and edge weights */
    void *jpeg;             /* the worker's TurboJPEG decompressor (tjhandle) */
} data_scratch;

/* The buffer with at least `size` bytes, or NULL when out of memory. */
uint8_t *digcl_data_buffer_reserve(data_buffer *buffer, size_t size);
void digcl_data_scratch_free(data_scratch *scratch);

/* What one read of a data set entry depends on besides its index: the
 * posterior draw of latents uses (seed, epoch). */
typedef struct data_read_context {
    uint64_t seed;
    int64_t epoch;
    data_scratch *scratch;
    /* Non-NULL: a posterior entry writes its unscaled mean to x and its spread here, in the
     * data set's form (posterior_logvar), and draws nothing (the device does). */
    float *spread;
} data_read_context;

/* One source kind. read() writes entry `index` as x [C, H, W] floats and its
 * label; returns 0, or -1 with one line in error[] naming the file. */
typedef struct data_source {
    int (*read)(void *state, int64_t index, const data_read_context *context, float *x,
                int32_t *label, char *error, size_t error_size);
    void (*close)(void *state);
    void *state;
    int chunk_rows; /* rows a worker takes at once (cheap entries: many) */
} data_source;

struct digcl_dataset {
    digcl_dataset_info info;
    data_source source;
    char *class_names; /* owned; info.class_names points here */
    int skip_bad_images;
    int posterior_logvar;  /* posterior latents: spread planes hold logvar (else std) */
    float posterior_scale; /* ... and z's scale (the metadata's, else 0.18215) */
    int device_posterior;  /* digcl_dataset_set_device_posterior */
};

/* Sources: each fills dataset->info (except class_names) and dataset->source,
 * and returns 0, or -1 with error[] filled. */
int digcl_data_open_idx(digcl_dataset *dataset, const char *dir, char *error, size_t error_size);
int digcl_data_open_image_folder(digcl_dataset *dataset, const char *dir,
                                 const digcl_dataset_options *options, char *error,
                                 size_t error_size);
int digcl_data_open_latents(digcl_dataset *dataset, const char *path, char *error,
                            size_t error_size);

/* Entry `index` into x [C, H, W] and *y, then the random horizontal flip
 * when hflip (DIGCL_RNG_FLIP, step = epoch, sample = index). */
int digcl_data_read_entry(digcl_dataset *dataset, int64_t index, const data_read_context *context,
                          int hflip, float *x, int32_t *y, char *error, size_t error_size);

/* 1 when dir holds train-images-idx3-ubyte[.gz] (or train-images.idx3-ubyte[.gz]). */
int digcl_data_dir_has_idx(const char *dir);

/* Sets dataset->class_names to a copy of the comma-separated list. */
int digcl_data_set_class_names(digcl_dataset *dataset, const char *names);

/* (p / 255 - 0.5) / 0.5 in float, as torchvision's ToTensor + Normalize(0.5, 0.5). */
float digcl_data_pixel_to_float(uint8_t p);

/* ---------------------------------------------------------------- images */

/* Decodes a PNG or JPEG file image (bytes[0..size)) into scratch->pixels as
 * interleaved u8 [h, w, channels], channels 1 (grey, PIL's "L" conversion
 * for colour files) or 3 (RGB, grey replicated, alpha dropped, palette
 * expanded, 16 bits reduced to their high byte, CMYK converted as PIL does).
 * Returns 0, or -1 with the reason (no file name) in error[]. */
int digcl_data_decode_image(const uint8_t *bytes, size_t size, int channels, data_scratch *scratch,
                            int *width, int *height, char *error, size_t error_size);

/* ADM's center_crop_arr on interleaved u8 [height, width, channels] held in
 * scratch->pixels: box-halve while the short side is at least 2 * size,
 * bicubic-resize the short side to `size` (Catmull-Rom, antialiased), then
 * take the centred size x size window into out [size, size, channels].
 * Returns 0, or -1 (out of memory) with error[] filled. */
int digcl_data_center_crop(data_scratch *scratch, int width, int height, int channels, int size,
                           uint8_t *out, char *error, size_t error_size);

#endif
