/* conv2d.c: launchers of the dense 2-D convolution (digcl/conv2d.h, cl/conv2d.cl):
 * im2col of a range of output pixels into the workspace, then one GEMM
 *   y[:, p0 : p0 + P] (+)= w [O, C K K] x col [C K K, P]
 * per range, after the bias was written (or added) into y. Where GEMMs run on tensor cores the
 * whole convolution is one implicit GEMM instead (digcl_conv2d_tc: no column matrix, the bias in
 * the epilogue, every image in one launch); DIGCL_CONV2D=im2col|implicit overrides the choice
 * (implicit only where the tensor-core kernels run). */
#include "digcl/conv2d.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/gemm.h"
#include "gemm_backend.h"

#define MIN_CHUNK_PIXELS 64

int digcl_conv2d_out_height(const digcl_conv2d_shape *s) {
    return (s->H + s->pad_top + s->pad_bottom - s->K) / s->stride + 1;
}

int digcl_conv2d_out_width(const digcl_conv2d_shape *s) {
    return (s->W + s->pad_left + s->pad_right - s->K) / s->stride + 1;
}

static int is_pointwise(const digcl_conv2d_shape *s) {
    return s->K == 1 && s->stride == 1 && s->pad_top == 0 && s->pad_left == 0 &&
           s->pad_bottom == 0 && s->pad_right == 0;
}

static size_t column_rows(const digcl_conv2d_shape *s) { return (size_t)s->C * s->K * s->K; }

size_t digcl_conv2d_full_workspace_floats(const digcl_conv2d_shape *s) {
    if (is_pointwise(s)) return 0;
    return column_rows(s) * (size_t)digcl_conv2d_out_height(s) * digcl_conv2d_out_width(s);
}

size_t digcl_conv2d_min_workspace_floats(const digcl_conv2d_shape *s) {
    if (is_pointwise(s)) return 0;
    return column_rows(s) * MIN_CHUNK_PIXELS;
}

static void check_shape(const digcl_conv2d_shape *s) {
    if (s->N < 1 || s->C < 1 || s->H < 1 || s->W < 1 || s->O < 1 || s->K < 1 || s->stride < 1 ||
        s->pad_top < 0 || s->pad_left < 0 || s->pad_bottom < 0 || s->pad_right < 0)
        digcl_fatal("conv2d: invalid shape N=%d C=%d H=%d W=%d O=%d K=%d stride=%d", s->N, s->C,
                    s->H, s->W, s->O, s->K, s->stride);
    if (digcl_conv2d_out_height(s) < 1 || digcl_conv2d_out_width(s) < 1)
        digcl_fatal("conv2d: %dx%d input is smaller than the %dx%d kernel", s->H, s->W, s->K, s->K);
    const size_t in = (size_t)s->N * s->C * s->H * s->W;
    const size_t out = (size_t)s->N * s->O * digcl_conv2d_out_height(s) * digcl_conv2d_out_width(s);
    if (in > 2147483647u || out > 2147483647u)
        digcl_fatal("conv2d: tensors of %zu / %zu floats exceed the int range", in, out);
}

static void write_bias(digcl_context *ctx, cl_mem y, size_t y_offset, cl_mem bias, size_t b_offset,
                       int pixels, int channels, int accumulate) {
    if (!bias) return; /* y keeps its values (accumulate) or the GEMM overwrites it (beta 0) */
    cl_kernel kernel = digcl_kernel(ctx, "conv2d", "conv2d_bias", "");
    digcl_arg_mem(kernel, 0, y);
    digcl_arg_int(kernel, 1, (int)y_offset);
    digcl_arg_mem(kernel, 2, bias ? bias : y);
    digcl_arg_int(kernel, 3, (int)b_offset);
    digcl_arg_int(kernel, 4, bias != NULL);
    digcl_arg_int(kernel, 5, pixels);
    digcl_arg_int(kernel, 6, channels);
    digcl_arg_int(kernel, 7, accumulate);
    const size_t global[2] = {(size_t)pixels, (size_t)channels}, local[2] = {64, 1};
    digcl_launch(ctx, kernel, "conv2d_bias", 2, global, local);
}

static void im2col(digcl_context *ctx, const digcl_conv2d_shape *s, cl_mem x, size_t x_offset,
                   int p0, int P, cl_mem col) {
    char options[32];
    snprintf(options, sizeof options, "-DKSIZE=%d", s->K);
    cl_kernel kernel = digcl_kernel(ctx, "conv2d", "conv2d_im2col", options);
    const int rows = (int)column_rows(s);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_int(kernel, 1, (int)x_offset);
    digcl_arg_int(kernel, 2, s->H);
    digcl_arg_int(kernel, 3, s->W);
    digcl_arg_int(kernel, 4, digcl_conv2d_out_width(s));
    digcl_arg_int(kernel, 5, s->stride);
    digcl_arg_int(kernel, 6, s->pad_top);
    digcl_arg_int(kernel, 7, s->pad_left);
    digcl_arg_int(kernel, 8, p0);
    digcl_arg_int(kernel, 9, P);
    digcl_arg_int(kernel, 10, rows);
    digcl_arg_mem(kernel, 11, col);
    const size_t global[2] = {(size_t)P, (size_t)rows}, local[2] = {64, 1};
    digcl_launch(ctx, kernel, "conv2d_im2col", 2, global, local);
}

/* Output pixels per im2col chunk: all of them if they fit, else a multiple of 64. */
static int chunk_pixels(const digcl_conv2d_shape *s, size_t workspace_floats) {
    const size_t pixels = (size_t)digcl_conv2d_out_height(s) * digcl_conv2d_out_width(s);
    size_t chunk = workspace_floats / column_rows(s);
    if (chunk >= pixels) return (int)pixels;
    chunk -= chunk % MIN_CHUNK_PIXELS;
    if (chunk < MIN_CHUNK_PIXELS)
        digcl_fatal("conv2d: workspace of %zu floats is below the minimum %zu (C K K x %d)",
                    workspace_floats, digcl_conv2d_min_workspace_floats(s), MIN_CHUNK_PIXELS);
    return (int)chunk;
}

/* DIGCL_CONV2D, read once per process: 1 implicit (the default where it can run), 0 im2col. */
static int implicit_setting(void) {
    static int read, implicit = 1;
    if (read) return implicit;
    const char *value = getenv("DIGCL_CONV2D");
    if (value && *value && strcmp(value, "implicit") != 0) {
        if (strcmp(value, "im2col") != 0)
            digcl_fatal("DIGCL_CONV2D='%s' is not a convolution path (expected im2col or implicit)",
                        value);
        implicit = 0;
    }
    read = 1;
    return implicit;
}

int digcl_conv2d_implicit(const digcl_context *ctx) {
    return implicit_setting() && digcl_gemm_backend(ctx) == DIGCL_GEMM_BACKEND_TENSOR;
}

void digcl_conv2d_forward(digcl_context *ctx, const digcl_conv2d_shape *s, cl_mem x,
                          size_t x_offset, cl_mem weight, size_t w_offset, cl_mem bias,
                          size_t b_offset, cl_mem y, size_t y_offset, int accumulate,
                          cl_mem workspace, size_t workspace_floats) {
    check_shape(s);
    if (digcl_conv2d_implicit(ctx) && digcl_conv2d_tc(ctx, s, x, x_offset, weight, w_offset, bias,
                                                      b_offset, y, y_offset, accumulate))
        return;
    const int pixels = digcl_conv2d_out_height(s) * digcl_conv2d_out_width(s);
    const size_t in_image = (size_t)s->C * s->H * s->W, out_image = (size_t)s->O * pixels;
    const size_t rows = column_rows(s);
    const int pointwise = is_pointwise(s);
    const int chunk = pointwise ? pixels : chunk_pixels(s, workspace_floats);
    for (int n = 0; n < s->N; ++n) {
        const size_t xo = x_offset + n * in_image, yo = y_offset + n * out_image;
        write_bias(ctx, y, yo, bias, b_offset, pixels, s->O, accumulate);
        const float beta = (!bias && !accumulate) ? 0.0f : 1.0f;
        for (int p0 = 0; p0 < pixels; p0 += chunk) {
            const int P = pixels - p0 < chunk ? pixels - p0 : chunk;
            digcl_gemm_args g = {0};
            g.M = (size_t)s->O, g.N = (size_t)P, g.K = rows, g.alpha = 1.0f, g.beta = beta;
            g.A = weight, g.a_offset = w_offset, g.lda = rows;
            g.C = y, g.c_offset = yo + (size_t)p0, g.ldc = (size_t)pixels;
            if (pointwise) {
                g.B = x, g.b_offset = xo, g.ldb = (size_t)pixels;
            } else {
                im2col(ctx, s, x, xo, p0, P, workspace);
                g.B = workspace, g.b_offset = 0, g.ldb = (size_t)P;
            }
            digcl_gemm(ctx, &g);
        }
    }
}
