/* digcl/groupnorm.h: GroupNorm forward (nn.GroupNorm(G, C, eps, affine=True)) on NCHW
 * activations, optionally followed by SiLU in the same pass (docs/VAE.md "Kernels"):
 *   y[n, c, p] = (x[n, c, p] - mean[n, g]) / sqrt(var[n, g] + eps) gamma[c] + beta[c],
 *   g = c / (C / G), mean and biased var over the C/G channels of g and all pixels p;
 *   silu: y = y sigmoid(y).
 * gamma and beta live in one parameter buffer at float offsets. y may equal x (in place). */
#ifndef DIGCL_GROUPNORM_H
#define DIGCL_GROUPNORM_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_groupnorm_shape {
    int N;      /* batch */
    int C;      /* channels, a multiple of groups */
    int pixels; /* H W */
    int groups; /* G */
    float eps;  /* 1e-6 in the VAE */
} digcl_groupnorm_shape;

/* Scratch floats of digcl_groupnorm_forward. */
size_t digcl_groupnorm_workspace_floats(const digcl_groupnorm_shape *shape);

void digcl_groupnorm_forward(digcl_context *ctx, const digcl_groupnorm_shape *shape,
                             cl_mem x, /* [N, C, pixels] */
                             cl_mem params, size_t gamma_offset, size_t beta_offset, /* [C] each */
                             int silu, cl_mem y, /* [N, C, pixels] */
                             cl_mem workspace);
#endif
