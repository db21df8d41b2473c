/* image_crop.c: ADM's center_crop_arr (guided-diffusion image_datasets.py,
 * used by DiT's and DiG's train.py) on u8 images, reproducing PIL:
 *
 *   while min(w, h) >= 2 * S: (w, h) = (w // 2, h // 2), PIL BOX filter
 *   scale = S / min(w, h); (w, h) = (round(w * scale), round(h * scale)), PIL BICUBIC
 *   crop rows [(h - S) // 2, + S), columns [(w - S) // 2, + S)
 *
 * PIL resizes one axis at a time (horizontal, then vertical) and rounds to
 * u8 in between; each output pixel is a normalised weighted sum of the input
 * pixels whose centres fall inside the filter's support around it:
 *   - BOX: support 1/2 per unit of scale, weight 1 for centres in
 *     (centre - scale/2, centre + scale/2], i.e. a plain average of 2 or 3
 *     pixels when halving an odd size. That average is computed here with
 *     PIL's 22-bit fixed-point weights (stb's box filter weighs partial
 *     coverage instead, 6 grey levels away from PIL on odd sizes).
 *   - BICUBIC: Catmull-Rom (a = -0.5), support widened by the scale when
 *     shrinking (antialiasing), taps outside the image dropped and the rest
 *     renormalised. This is stb_image_resize's CATMULLROM filter; its zero
 *     edge mode drops the outside taps, and dividing by the response of an
 *     all-ones line renormalises exactly as PIL does.
 * Python's round() is round-half-even (nearbyint). Measured against PIL:
 * docs/TRAINING.md ("Data"). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "data_internal.h"

/* stb_image_resize's working memory comes from the worker's scratch. */
#define STBIR_MALLOC(size, context) \
    ((void *)digcl_data_buffer_reserve((data_buffer *)(context), (size)))
#define STBIR_FREE(pointer, context) ((void)(pointer), (void)(context))
#define STB_IMAGE_RESIZE_IMPLEMENTATION
#define STB_IMAGE_RESIZE_STATIC
#if defined(__GNUC__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wdouble-promotion"
#endif
#include <stb/stb_image_resize.h>
#if defined(__GNUC__)
#pragma GCC diagnostic pop
#endif

#define PIL_PRECISION_BITS 22         /* PIL's 8-bit resampling: 32 - 8 - 2 */
#define MAX_RESIZED        (1u << 28) /* bytes of a resized image */

static int out_of_memory(char *error, size_t error_size, int w, int h) {
    snprintf(error, error_size, "out of host memory resizing a %dx%d image", w, h);
    return -1;
}

static uint8_t clip_u8(int64_t v) { return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v); }

/* ------------------------------------------------------------ box halving */

typedef struct box_tap {
    int first, count;
    int32_t weight; /* 1 / count in PIL's fixed point */
} box_tap;

/* PIL's precompute_coeffs for BOX from `in` to `out` = in / 2 pixels. */
static void box_taps(int in, int out, box_tap *taps) {
    const double scale = (double)in / out, support = 0.5 * scale;
    for (int i = 0; i < out; i++) {
        const double centre = (i + 0.5) * scale;
        int low = (int)(centre - support + 0.5), high = (int)(centre + support + 0.5);
        if (low < 0) low = 0;
        if (high > in) high = in;
        int first = -1, count = 0;
        for (int x = low; x < high; x++) {
            double t = (x - centre + 0.5) / scale;
            if (t > -0.5 && t <= 0.5) {
                if (first < 0) first = x;
                count++;
            }
        }
        taps[i].first = first;
        taps[i].count = count;
        taps[i].weight = (int32_t)(0.5 + (1.0 / count) * (1 << PIL_PRECISION_BITS));
    }
}

/* One axis: `lines` lines of `in` pixels spaced `pixel_step` bytes apart
 * (a line starts every `line_step` bytes), channels interleaved. */
static void box_pass(const uint8_t *src, uint8_t *dst, int lines, int in, int out, int channels,
                     size_t in_pixel, size_t in_line, size_t out_pixel, size_t out_line,
                     const box_tap *taps) {
    for (int line = 0; line < lines; line++) {
        const uint8_t *s = src + (size_t)line * in_line;
        uint8_t *d = dst + (size_t)line * out_line;
        for (int i = 0; i < out; i++) {
            for (int c = 0; c < channels; c++) {
                int64_t sum = 1 << (PIL_PRECISION_BITS - 1);
                for (int k = 0; k < taps[i].count; k++)
                    sum += (int64_t)taps[i].weight * s[(size_t)(taps[i].first + k) * in_pixel + c];
                d[(size_t)i * out_pixel + c] = clip_u8(sum >> PIL_PRECISION_BITS);
            }
        }
    }
    (void)in;
}

/* [h, w, c] -> [h / 2, w / 2, c], horizontal pass first (into `middle`). */
static int box_halve(const uint8_t *src, int w, int h, int channels, uint8_t *dst,
                     data_scratch *scratch, char *error, size_t error_size) {
    const int half_w = w / 2, half_h = h / 2;
    const size_t c = (size_t)channels;
    uint8_t *middle = digcl_data_buffer_reserve(&scratch->resized, (size_t)h * half_w * c);
    box_tap *taps = (box_tap *)digcl_data_buffer_reserve(&scratch->weights,
                                                         (size_t)(half_w + half_h) * sizeof *taps);
    if (!middle || !taps) return out_of_memory(error, error_size, w, h);
    box_taps(w, half_w, taps);
    box_taps(h, half_h, taps + half_w);
    box_pass(src, middle, h, w, half_w, channels, c, (size_t)w * c, c, (size_t)half_w * c, taps);
    box_pass(middle, dst, half_w, h, half_h, channels, (size_t)half_w * c, c, (size_t)half_w * c, c,
             taps + half_w);
    return 0;
}

/* --------------------------------------------------------------- bicubic */

/* stb's Catmull-Rom with outside taps weighted 0 (float, interleaved). */
static int stb_resize(const float *in, int w, int h, float *out, int out_w, int out_h, int channels,
                      data_buffer *memory) {
    return stbir_resize_float_generic(in, w, h, 0, out, out_w, out_h, 0, channels,
                                      STBIR_ALPHA_CHANNEL_NONE, 0, STBIR_EDGE_ZERO,
                                      STBIR_FILTER_CATMULLROM, STBIR_COLORSPACE_LINEAR, memory);
}

/* The weight each output pixel of a line of `in` -> `out` gives to pixels
 * inside the image (the response to all ones): 1 except near the edges. */
static int inside_weights(int in, int out, float *weights, data_scratch *scratch) {
    float *ones =
        (float *)digcl_data_buffer_reserve(&scratch->floats_out, (size_t)in * sizeof *ones);
    if (!ones) return 0;
    for (int i = 0; i < in; i++) ones[i] = 1.0f;
    return stb_resize(ones, in, 1, weights, out, 1, 1, &scratch->stb);
}

/* One axis of PIL's BICUBIC: horizontal (w -> out_w) when `horizontal`, else
 * vertical (h -> out_h); u8 in, u8 out, renormalised at the edges. */
static int bicubic_pass(const uint8_t *src, int w, int h, int channels, uint8_t *dst, int out_w,
                        int out_h, int horizontal, data_scratch *scratch) {
    const size_t in_count = (size_t)w * h * channels, out_count = (size_t)out_w * out_h * channels;
    const int line = horizontal ? out_w : out_h;
    float *weights =
        (float *)digcl_data_buffer_reserve(&scratch->weights, (size_t)line * sizeof(float));
    if (!weights || !inside_weights(horizontal ? w : h, line, weights, scratch)) return 0;
    float *in = (float *)digcl_data_buffer_reserve(&scratch->floats, in_count * sizeof(float));
    float *out =
        (float *)digcl_data_buffer_reserve(&scratch->floats_out, out_count * sizeof(float));
    if (!in || !out) return 0;
    for (size_t i = 0; i < in_count; i++) in[i] = src[i];
    if (!stb_resize(in, w, h, out, out_w, out_h, channels, &scratch->stb)) return 0;
    for (int y = 0; y < out_h; y++)
        for (int x = 0; x < out_w; x++) {
            const float norm = weights[horizontal ? x : y];
            const size_t at = ((size_t)y * out_w + x) * channels;
            for (int c = 0; c < channels; c++)
                dst[at + c] = clip_u8((int64_t)floorf(out[at + c] / norm + 0.5f));
        }
    return 1;
}

/* [h, w, c] -> [out_h, out_w, c]: horizontal pass (into `middle`), then vertical. */
static int bicubic_resize(const uint8_t *src, int w, int h, int channels, uint8_t *dst, int out_w,
                          int out_h, data_scratch *scratch, char *error, size_t error_size) {
    uint8_t *middle = digcl_data_buffer_reserve(&scratch->halved, (size_t)h * out_w * channels);
    const uint8_t *rows = src;
    if (!middle) return out_of_memory(error, error_size, w, h);
    if (out_w != w) {
        if (!bicubic_pass(src, w, h, channels, middle, out_w, h, 1, scratch))
            return out_of_memory(error, error_size, w, h);
        rows = middle;
    }
    if (out_h != h) {
        if (!bicubic_pass(rows, out_w, h, channels, dst, out_w, out_h, 0, scratch))
            return out_of_memory(error, error_size, w, h);
    } else {
        memcpy(dst, rows, (size_t)out_w * h * channels);
    }
    return 0;
}

int digcl_data_center_crop(data_scratch *scratch, int width, int height, int channels, int size,
                           uint8_t *out, char *error, size_t error_size) {
    data_buffer *source = &scratch->pixels, *spare = &scratch->halved;
    int w = width, h = height;
    while ((w < h ? w : h) >= 2 * size) {
        uint8_t *dst = digcl_data_buffer_reserve(spare, (size_t)(w / 2) * (h / 2) * channels);
        if (!dst || box_halve(source->bytes, w, h, channels, dst, scratch, error, error_size) != 0)
            return out_of_memory(error, error_size, w, h);
        data_buffer *t = source;
        source = spare;
        spare = t;
        w /= 2;
        h /= 2;
    }
    if (source != &scratch->pixels) { /* the bicubic passes use `halved` */
        uint8_t *dst = digcl_data_buffer_reserve(&scratch->pixels, (size_t)w * h * channels);
        if (!dst) return out_of_memory(error, error_size, w, h);
        memcpy(dst, source->bytes, (size_t)w * h * channels);
    }
    const double scale = (double)size / (double)(w < h ? w : h);
    const int new_w = (int)nearbyint((double)w * scale), new_h = (int)nearbyint((double)h * scale);
    if ((uint64_t)new_w * (uint64_t)new_h * (uint64_t)channels > MAX_RESIZED) {
        snprintf(error, error_size,
                 "a %dx%d image resizes to %dx%d for --image-size %d, more "
                 "than 2^28 bytes (extreme aspect ratio)",
                 width, height, new_w, new_h, size);
        return -1;
    }
    const uint8_t *resized = scratch->pixels.bytes;
    if (new_w != w || new_h != h) { /* PIL returns a copy for an unchanged size */
        uint8_t *dst =
            digcl_data_buffer_reserve(&scratch->resized, (size_t)new_w * new_h * channels);
        if (!dst || bicubic_resize(scratch->pixels.bytes, w, h, channels, dst, new_w, new_h,
                                   scratch, error, error_size) != 0)
            return out_of_memory(error, error_size, w, h);
        resized = dst;
    }
    const int top = (new_h - size) / 2, left = (new_w - size) / 2;
    const size_t row_bytes = (size_t)size * channels;
    for (int y = 0; y < size; y++)
        memcpy(out + (size_t)y * row_bytes, resized + ((size_t)(top + y) * new_w + left) * channels,
               row_bytes);
    return 0;
}
