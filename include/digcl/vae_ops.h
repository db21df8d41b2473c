/* digcl/vae_ops.h: the small ops of the VAE and TAESD networks (cl/vae.cl), forward only.
 *
 *   relu:     x = max(x, 0)                  tanh clamp: y = 3 tanh(x / 3)
 *   affine:   x = a x + b                    (in place)
 *   posterior sample: z = scale (mean + exp(clamp(logvar, -30, 20) / 2) eps), in place of mean
 *   spatial attention (the VAE mid block's single-head self-attention over all T = H W
 *   positions of one image, channels C, scale = C^-1/2), on [C, T] planes (NCHW):
 *     out[:, i] = sum_j softmax_j(scale q[:, i] . k[:, j]) v[:, j]
 *   as GEMMs over blocks of B query positions: S = q_b^T k [B, T] (scores workspace),
 *   softmax_rows, out_b = v S^T [C, B]. B = min(T, score_floats / T): the T x T matrix is
 *   only formed when it fits the given workspace (docs/VAE.md "Attention").
 */
#ifndef DIGCL_VAE_OPS_H
#define DIGCL_VAE_OPS_H

#include <stddef.h>

#include "digcl/rng.h"
#include "digcl/runtime.h"

void digcl_relu_inplace(digcl_context *ctx, size_t count, cl_mem x /* [count] */);
void digcl_tanh_clamp_forward(digcl_context *ctx, size_t count, cl_mem x /* [count] */,
                              cl_mem y /* [count] */);
void digcl_affine_inplace(digcl_context *ctx, size_t count, float a, float b,
                          cl_mem x /* [count] */);

void digcl_posterior_sample_forward(digcl_context *ctx, size_t count, float scale,
                                    cl_mem mean_z /* [count] in: mean, out: z */,
                                    cl_mem logvar /* [count] */, cl_mem eps /* [count] */);

/* The data layer's posterior latents, in place of mean (docs/TRAINING.md "Data"):
 * z[n, j] = scale (mean[n, j] + sd[n, j] eps), sd = spread (or exp(clamp(spread, -30, 20) / 2)
 * when spread_is_logvar), eps = digcl_rng_normal(key, step, draw_index[n], j). */
void digcl_posterior_draw_forward(digcl_context *ctx, size_t rows, size_t row_length, float scale,
                                  int spread_is_logvar, digcl_rng_key key, uint64_t step,
                                  cl_mem mean_z /* [rows, row_length] in: mean, out: z */,
                                  cl_mem spread /* [rows, row_length] */,
                                  cl_mem draw_index /* [rows] int32 */);

typedef struct digcl_plane_ref {
    cl_mem mem;
    size_t offset; /* floats */
} digcl_plane_ref;

/* Query rows per block for this workspace (at least 1; fatal when score_floats < T). */
int digcl_spatial_attention_block_rows(int T, size_t score_floats);

void digcl_spatial_attention_forward(digcl_context *ctx, int C, int T,
                                     digcl_plane_ref q,   /* [C, T] */
                                     digcl_plane_ref k,   /* [C, T] */
                                     digcl_plane_ref v,   /* [C, T] */
                                     digcl_plane_ref out, /* [C, T] */
                                     cl_mem scores, size_t score_floats);
#endif
