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

/* The two halves of digcl_groupnorm_forward, for normalising an image that is processed in
 * parts (the streamed VAE, docs/VAE.md "Tiling"): merge the moments of every part with Chan's
 * formula, then apply the image's statistics to each part.
 * moments[2 i + {0, 1}] = (mean, M2) of group i = n G + g of x (M2: the sum of squared
 * deviations over its Cg pixels floats), read back to the host (blocking). */
void digcl_groupnorm_moments(digcl_context *ctx, const digcl_groupnorm_shape *shape,
                             cl_mem x, /* [N, C, pixels] */
                             cl_mem workspace, float *moments /* host [N G, 2] */);
/* y = digcl_groupnorm_forward's y with the given statistics: stats[2 i + {0, 1}] =
 * (mean, 1 / sqrt(var + eps)) of group i (host [N G, 2]). */
void digcl_groupnorm_apply_stats(digcl_context *ctx, const digcl_groupnorm_shape *shape, cl_mem x,
                                 cl_mem params, size_t gamma_offset, size_t beta_offset, int silu,
                                 cl_mem y, cl_mem workspace, const float *stats);

/* Host-side merge of the moments of parts (in double, Chan et al.), N = 1. */
#define DIGCL_GROUPNORM_MAX_GROUPS 128
typedef struct digcl_groupnorm_total {
    int groups;
    double count; /* floats per group so far */
    double mean[DIGCL_GROUPNORM_MAX_GROUPS], m2[DIGCL_GROUPNORM_MAX_GROUPS];
} digcl_groupnorm_total;

/* An empty total of `groups` groups (at most DIGCL_GROUPNORM_MAX_GROUPS). */
digcl_groupnorm_total digcl_groupnorm_total_empty(int groups);
/* Adds a part whose groups hold part_count floats each, moments as digcl_groupnorm_moments. */
void digcl_groupnorm_total_add(digcl_groupnorm_total *total, double part_count,
                               const float *moments);
/* stats[2 g + {0, 1}] = (mean, 1 / sqrt(M2 / count + eps)) for digcl_groupnorm_apply_stats. */
void digcl_groupnorm_total_stats(const digcl_groupnorm_total *total, float eps, float *stats);
#endif
