/* src/io/image_png.c: 8-bit images on the host and PNG files with text
 * chunks through libpng (include/digcl/image.h, docs/SAMPLING.md). */
#include <math.h>
#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/file.h"
#include "digcl/image.h"

int digcl_image_alloc(digcl_image *image, int width, int height, int channels) {
    memset(image, 0, sizeof *image);
    if (width < 1 || height < 1 || (channels != 1 && channels != 3)) return -1;
    image->pixels = malloc((size_t)width * (size_t)height * (size_t)channels);
    if (!image->pixels) return -1;
    image->width = width;
    image->height = height;
    image->channels = channels;
    return 0;
}

void digcl_image_free(digcl_image *image) {
    free(image->pixels);
    memset(image, 0, sizeof *image);
}

/* clamp(127.5 x + 128, 0, 255) truncated, as torch's .to(uint8) after clamp. */
static uint8_t pixel_from_model(float x) {
    float v = 127.5f * x + 128.0f;
    if (!(v > 0.0f)) return 0; /* also NaN */
    if (v >= 255.0f) return 255;
    return (uint8_t)v;
}

void digcl_image_from_model(const float *x, int channels, int height, int width, int crop,
                            uint8_t *pixels) {
    int out_h = crop > 0 ? crop : height, out_w = crop > 0 ? crop : width;
    int top = (height - out_h) / 2, left = (width - out_w) / 2;
    size_t plane = (size_t)height * (size_t)width;
    for (int r = 0; r < out_h; r++)
        for (int c = 0; c < out_w; c++)
            for (int k = 0; k < channels; k++) {
                size_t src =
                    (size_t)k * plane + (size_t)(r + top) * (size_t)width + (size_t)(c + left);
                pixels[((size_t)r * (size_t)out_w + (size_t)c) * (size_t)channels + (size_t)k] =
                    pixel_from_model(x[src]);
            }
}

/* ------------------------------------------------------------ PNG */

typedef struct png_job {
    const digcl_image *image;
    const digcl_png_text *texts;
    size_t text_count;
    char libpng_message[256];
} png_job;

static void on_png_error(png_structp png, png_const_charp message) {
    png_job *job = png_get_error_ptr(png);
    snprintf(job->libpng_message, sizeof job->libpng_message, "%s", message);
    png_longjmp(png, 1);
}

static void on_png_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message; /* libpng warnings (none expected for our own images) are dropped */
}

static int is_ascii(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80) return 0;
    return 1;
}

/* Fills png_text entries: tEXt for ASCII values, iTXt (UTF-8) otherwise. */
static void set_texts(png_structp png, png_infop info, const png_job *job, png_text *entries) {
    for (size_t i = 0; i < job->text_count; i++) {
        memset(&entries[i], 0, sizeof entries[i]);
        int ascii = is_ascii(job->texts[i].value);
        entries[i].compression = ascii ? PNG_TEXT_COMPRESSION_NONE : PNG_ITXT_COMPRESSION_NONE;
        entries[i].key = (png_charp)job->texts[i].key;
        entries[i].text = (png_charp)job->texts[i].value;
        if (ascii) entries[i].text_length = strlen(job->texts[i].value);
        else entries[i].itxt_length = strlen(job->texts[i].value);
    }
    if (job->text_count) png_set_text(png, info, entries, (int)job->text_count);
}

/* libpng's longjmp lands here; everything it needs lives in job or the caller. */
static int encode_png(png_structp png, png_infop info, FILE *f, png_job *job, png_text *entries) {
    const digcl_image *image = job->image;
    if (setjmp(png_jmpbuf(png))) return -1;
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)image->width, (png_uint_32)image->height, 8,
                 image->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    set_texts(png, info, job, entries);
    png_write_info(png, info);
    size_t stride = (size_t)image->width * (size_t)image->channels;
    for (int r = 0; r < image->height; r++) png_write_row(png, image->pixels + (size_t)r * stride);
    png_write_end(png, info);
    return 0;
}

static int write_png_content(FILE *f, const char *path, void *user, char *error, size_t size) {
    png_job *job = user;
    png_text *entries = calloc(job->text_count + 1, sizeof *entries);
    png_structp png =
        png_create_write_struct(PNG_LIBPNG_VER_STRING, job, on_png_error, on_png_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int status = -1;
    if (entries && png && info) status = encode_png(png, info, f, job, entries);
    if (status != 0)
        snprintf(error, size, "%s: PNG encoding failed: %s", path,
                 job->libpng_message[0] ? job->libpng_message : "out of memory");
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    free(entries);
    return status;
}

static int check_png_arguments(const char *path, const digcl_image *image,
                               const digcl_png_text *texts, size_t text_count, char *error,
                               size_t size) {
    if (!image->pixels || image->width < 1 || image->height < 1 ||
        (image->channels != 1 && image->channels != 3)) {
        snprintf(error, size, "%s: image %dx%d with %d channels, expected grey (1) or RGB (3)",
                 path, image->width, image->height, image->channels);
        return -1;
    }
    for (size_t i = 0; i < text_count; i++) {
        size_t n = strlen(texts[i].key);
        if (n >= 1 && n <= 79) continue;
        snprintf(error, size, "%s: PNG text key '%s' has %zu characters, expected 1 to 79", path,
                 texts[i].key, n);
        return -1;
    }
    return 0;
}

int digcl_png_write(const char *path, const digcl_image *image, const digcl_png_text *texts,
                    size_t text_count, char *error, size_t size) {
    if (check_png_arguments(path, image, texts, text_count, error, size) != 0) return -1;
    png_job job = {image, texts, text_count, ""};
    return digcl_file_write_atomic(path, write_png_content, &job, error, size);
}
