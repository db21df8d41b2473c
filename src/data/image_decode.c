/* image_decode.c: PNG (libpng) and JPEG (TurboJPEG) files to interleaved u8
 * pixels, converted the way torchvision's ImageFolder loader does it
 * (PIL's Image.convert("RGB"), or "L" for one channel):
 *   - RGB: grey is replicated, alpha is dropped (not composited), palettes
 *     are expanded, 16-bit samples keep their high byte, CMYK becomes
 *     R = (255 - C)(255 - K) / 255 (PIL's cmyk2rgb; Adobe files store
 *     inverted CMYK, PIL's "CMYK;I" raw mode);
 *   - L: L = (19595 R + 38470 G + 7471 B + 2^15) >> 16 (PIL's L24).
 * Known difference: PIL saturates 16-bit grey PNGs (mode I;16) to 255 when
 * converting; here every 16-bit sample keeps its high byte. */
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <png.h>
#include <turbojpeg.h>

#include "data_internal.h"

#define MAX_PIXELS (1u << 28) /* 16384 x 16384 */

static int fail(char *error, size_t error_size, const char *what) {
    snprintf(error, error_size, "%s", what);
    return -1;
}

static int check_dimensions(int w, int h, char *error, size_t error_size) {
    if (w <= 0 || h <= 0 || (uint64_t)w * (uint64_t)h > MAX_PIXELS) {
        snprintf(error, error_size, "unsupported image size %dx%d (expected 1 to 2^28 pixels)", w,
                 h);
        return -1;
    }
    return 0;
}

/* RGB rows to grey in place (PIL's L24). */
static void rgb_to_grey(uint8_t *pixels, size_t count) {
    for (size_t i = 0; i < count; i++) {
        const uint8_t *rgb = pixels + 3 * i;
        pixels[i] = (uint8_t)((rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16);
    }
}

/* ------------------------------------------------------------------ PNG */

typedef struct png_source {
    const uint8_t *bytes;
    size_t size, offset;
    char message[200];
} png_source;

static void png_read_bytes(png_structp png, png_bytep out, png_size_t count) {
    png_source *source = png_get_io_ptr(png);
    if (count > source->size - source->offset) png_error(png, "file is truncated");
    memcpy(out, source->bytes + source->offset, count);
    source->offset += count;
}

static void png_on_error(png_structp png, png_const_charp message) {
    png_source *source = png_get_error_ptr(png);
    snprintf(source->message, sizeof source->message, "PNG: %s", message);
    png_longjmp(png, 1);
}

static void png_on_warning(png_structp png, png_const_charp message) {
    (void)png;
    (void)message; /* benign (e.g. an unknown chunk); errors end in png_on_error */
}

/* The transforms to 8-bit grey (1) or RGB (3); returns the channels libpng
 * will deliver (3 for a colour file asked for grey: converted afterwards). */
static int png_set_transforms(png_structp png, png_infop info, int channels) {
    int color_type = png_get_color_type(png, info);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (color_type == PNG_COLOR_TYPE_GRAY && png_get_bit_depth(png, info) < 8)
        png_set_expand_gray_1_2_4_to_8(png);
    /* palette expansion also turns a tRNS chunk into alpha: dropped too */
    if ((color_type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS))
        png_set_strip_alpha(png);
    int is_grey = !(color_type & PNG_COLOR_MASK_COLOR);
    if (is_grey && channels == 3) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return is_grey ? channels : 3;
}

static int decode_png(const uint8_t *bytes, size_t size, int channels, data_scratch *scratch,
                      int *width, int *height, char *error, size_t error_size) {
    png_source source = {bytes, size, 0, ""};
    png_structp png =
        png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        png_destroy_read_struct(&png, NULL, NULL);
        return fail(error, error_size, "out of host memory decoding a PNG");
    }
    if (setjmp(png_jmpbuf(png))) {
        snprintf(error, error_size, "%s", source.message);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    png_set_read_fn(png, &source, png_read_bytes);
    png_set_user_limits(png, 65535, 65535);
    png_read_info(png, info);
    int w = (int)png_get_image_width(png, info), h = (int)png_get_image_height(png, info);
    char reason[128];
    if (check_dimensions(w, h, reason, sizeof reason) != 0) png_error(png, reason);
    int delivered = png_set_transforms(png, info, channels);
    if (png_get_rowbytes(png, info) != (size_t)w * delivered) png_error(png, "unexpected row size");
    uint8_t *pixels = digcl_data_buffer_reserve(&scratch->pixels, (size_t)w * h * delivered);
    png_bytepp rows =
        (png_bytepp)digcl_data_buffer_reserve(&scratch->rows, (size_t)h * sizeof(png_bytep));
    if (!pixels || !rows) png_error(png, "out of host memory");
    for (int y = 0; y < h; y++) rows[y] = pixels + (size_t)y * w * delivered;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    if (delivered == 3 && channels == 1) rgb_to_grey(pixels, (size_t)w * h);
    *width = w;
    *height = h;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

/* ----------------------------------------------------------------- JPEG */

/* 1 when an APP14 "Adobe" marker precedes the first scan. */
static int jpeg_has_adobe_marker(const uint8_t *bytes, size_t size) {
    size_t i = 2;
    while (i + 4 <= size && bytes[i] == 0xFF) {
        int marker = bytes[i + 1];
        size_t length = ((size_t)bytes[i + 2] << 8) | bytes[i + 3];
        if (marker == 0xDA || length < 2) break;
        if (marker == 0xEE && length >= 7 && i + 9 <= size &&
            memcmp(bytes + i + 4, "Adobe", 5) == 0)
            return 1;
        i += 2 + length;
    }
    return 0;
}

static uint8_t mul_div_255(unsigned a, unsigned b) { /* PIL's MULDIV255 */
    unsigned t = a * b + 128;
    return (uint8_t)(((t >> 8) + t) >> 8);
}

static void cmyk_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t count, int inverted) {
    for (size_t i = 0; i < count; i++) {
        unsigned c[4];
        for (int k = 0; k < 4; k++) c[k] = inverted ? 255u - cmyk[4 * i + k] : cmyk[4 * i + k];
        unsigned not_k = 255u - c[3];
        for (int k = 0; k < 3; k++) rgb[3 * i + k] = (uint8_t)(not_k - mul_div_255(c[k], not_k));
    }
}

/* After an error a TurboJPEG handle can keep stale state (a later header read
 * returned garbage sizes): the worker gets a fresh one for its next file. */
static int jpeg_failed(data_scratch *scratch, char *error, size_t error_size) {
    snprintf(error, error_size, "JPEG: %s", tjGetErrorStr2(scratch->jpeg));
    tjDestroy(scratch->jpeg);
    scratch->jpeg = NULL;
    return -1;
}

static int decode_jpeg(const uint8_t *bytes, size_t size, int channels, data_scratch *scratch,
                       int *width, int *height, char *error, size_t error_size) {
    if (!scratch->jpeg && !(scratch->jpeg = tjInitDecompress()))
        return fail(error, error_size, "JPEG: cannot start the TurboJPEG decoder");
    tjhandle tj = scratch->jpeg;
    int w, h, subsampling, colorspace;
    if (tjDecompressHeader3(tj, bytes, (unsigned long)size, &w, &h, &subsampling, &colorspace) != 0)
        return jpeg_failed(scratch, error, error_size);
    if (check_dimensions(w, h, error, error_size) != 0) return -1;
    int is_cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
    int is_grey = colorspace == TJCS_GRAY;
    int format = is_cmyk ? TJPF_CMYK : (is_grey && channels == 1) ? TJPF_GRAY : TJPF_RGB;
    int decoded_channels = tjPixelSize[format];
    uint8_t *pixels = digcl_data_buffer_reserve(&scratch->pixels, (size_t)w * h * 3);
    uint8_t *target =
        is_cmyk ? digcl_data_buffer_reserve(&scratch->rows, (size_t)w * h * 4) : pixels;
    if (!target || !pixels) return fail(error, error_size, "out of host memory decoding a JPEG");
    if (tjDecompress2(tj, bytes, (unsigned long)size, target, w, 0, h, format, 0) != 0)
        return jpeg_failed(scratch, error, error_size);
    if (is_cmyk) cmyk_to_rgb(target, pixels, (size_t)w * h, jpeg_has_adobe_marker(bytes, size));
    if (decoded_channels != 1 && channels == 1) rgb_to_grey(pixels, (size_t)w * h);
    *width = w;
    *height = h;
    return 0;
}

int digcl_data_decode_image(const uint8_t *bytes, size_t size, int channels, data_scratch *scratch,
                            int *width, int *height, char *error, size_t error_size) {
    static const uint8_t png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    if (size >= 8 && memcmp(bytes, png_signature, 8) == 0)
        return decode_png(bytes, size, channels, scratch, width, height, error, error_size);
    if (size >= 3 && bytes[0] == 0xFF && bytes[1] == 0xD8 && bytes[2] == 0xFF)
        return decode_jpeg(bytes, size, channels, scratch, width, height, error, error_size);
    return fail(error, error_size, "unsupported file format (expected PNG or JPEG)");
}

void digcl_data_scratch_free(data_scratch *scratch) {
    data_buffer *buffers[] = {&scratch->file,    &scratch->pixels,     &scratch->halved,
                              &scratch->resized, &scratch->rows,       &scratch->stb,
                              &scratch->floats,  &scratch->floats_out, &scratch->weights};
    for (size_t i = 0; i < sizeof buffers / sizeof buffers[0]; i++) {
        free(buffers[i]->bytes);
        buffers[i]->bytes = NULL;
        buffers[i]->capacity = 0;
    }
    if (scratch->jpeg) tjDestroy(scratch->jpeg);
    scratch->jpeg = NULL;
}
