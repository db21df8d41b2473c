/* digcl/conv2d.h: dense 2-D convolution forward (nn.Conv2d, groups = 1) on NCHW activations,
 * the convolutions of the Stable Diffusion VAE and TAESD (docs/VAE.md "Kernels").
 *
 *   y[n, o, i, j] = bias[o] + sum_{c < C, a, b < K} w[o, c, a, b] x[n, c, S i + a - pt, S j + b - pl]
 *   Ho = (H + pt + pb - K) / S + 1,  Wo = (W + pl + pr - K) / S + 1
 * zero padding; (pt, pl, pb, pr) = (1, 1, 1, 1) for the 3x3 "same" convs, (0, 0, 1, 1) for the
 * VAE's downsampler (F.pad(x, (0, 1, 0, 1)) then a stride-2 3x3 conv), 0 for 1x1 convs.
 * Computed as im2col (cl/conv2d.cl) + digcl_gemm, one image and one range of output pixels at a
 * time, so the column scratch is bounded by the caller's workspace; 1x1 stride-1 convs skip the
 * im2col. With `accumulate` the result is added onto y (a fused residual: y += conv(x) + bias).
 */
#ifndef DIGCL_CONV2D_H
#define DIGCL_CONV2D_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_conv2d_shape {
    int N;       /* batch */
    int C, H, W; /* input channels and size */
    int O;       /* output channels */
    int K;       /* kernel side: 1 or 3 (any odd or even K >= 1 works) */
    int stride;  /* S >= 1 */
    int pad_top, pad_left, pad_bottom, pad_right;
} digcl_conv2d_shape;

/* Output height and width. */
int digcl_conv2d_out_height(const digcl_conv2d_shape *shape);
int digcl_conv2d_out_width(const digcl_conv2d_shape *shape);

/* Whether convolutions on this context run as implicit GEMMs (NVIDIA tensor cores, unless
 * DIGCL_CONV2D=im2col), which use no workspace: callers may then pass none. */
int digcl_conv2d_implicit(const digcl_context *ctx);

/* Workspace floats that let the conv run in one im2col chunk per image (C K K Ho Wo; 0 for
 * 1x1 stride 1 unpadded). Any workspace of at least C K K * 64 floats works (more chunks). */
size_t digcl_conv2d_full_workspace_floats(const digcl_conv2d_shape *shape);
size_t digcl_conv2d_min_workspace_floats(const digcl_conv2d_shape *shape);

/* y = conv(x) + bias (accumulate = 0) or y += conv(x) + bias (accumulate = 1). bias may be NULL.
 * x and y must not overlap. workspace holds workspace_floats floats (may be NULL when 0). */
void digcl_conv2d_forward(digcl_context *ctx, const digcl_conv2d_shape *shape, cl_mem x,
                          size_t x_offset,                /* [N, C, H, W] (offset in floats) */
                          cl_mem weight, size_t w_offset, /* [O, C, K, K] */
                          cl_mem bias, size_t b_offset,   /* [O] or NULL */
                          cl_mem y, size_t y_offset,      /* [N, O, Ho, Wo] */
                          int accumulate, cl_mem workspace, size_t workspace_floats);
#endif
