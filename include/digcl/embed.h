/* digcl/embed.h: the fixed 2-D sin-cos position table, the timestep frequency
 * embedding and the class-label table with class dropout (DiT / DiG).
 * Spec: docs/MODEL.md §3.2 (pos-embed), §3.3 (timestep), §3.4 (labels).
 *
 * Position table (MAE/DiT get_2d_sincos_pos_embed), grid_h x grid_w tokens in
 * row-major order, token = i*grid_w + j, D % 4 == 0, Q = D/4,
 * omega_k = 1 / 10000^(k/Q), k < Q:
 *   table[token, 0:Q]     = sin(j omega)   table[token, Q:2Q]  = cos(j omega)   (column j)
 *   table[token, 2Q:3Q]   = sin(i omega)   table[token, 3Q:4Q] = cos(i omega)   (row i)
 *
 * Timestep frequency embedding (DiT TimestepEmbedder.timestep_embedding),
 * half = dim/2, f_k = exp(-ln(10000) k / half):
 *   emb[n, k] = cos(t_n f_k), emb[n, half + k] = sin(t_n f_k), a zero column
 *   last when dim is odd. The MLP after it (linear, SiLU, linear) lives elsewhere.
 *
 * Label embedding (DiT LabelEmbedder): a [num_classes + 1, D] table whose last
 * row is the null class. During training a label is replaced by num_classes
 * when a uniform draw of digcl_rng (stream DIGCL_RNG_LABEL_DROP) is below
 * drop_prob.
 */
#ifndef DIGCL_EMBED_H
#define DIGCL_EMBED_H

#include <stdint.h>

#include "digcl/runtime.h"

#define DIGCL_TIMESTEP_FREQUENCY_DIM 256

/* ---------------------------------------------------------- position table (host) */

/* The 2-D sin-cos position table in float, ready to upload once (the double
 * version is digcl_ref_pos_embed_2d in digcl/ref/embed.h). */
void digcl_pos_embed_2d(int D, int grid_h, int grid_w, float *table); /* [grid_h*grid_w, D] */

/* ---------------------------------------------------------- timestep embedding */

/* The frequencies f_k split as float hi + lo (hi = (float)f_k, lo = f_k - hi),
 * for the kernel's extended-precision argument reduction; upload once. */
void digcl_timestep_frequency_table(int dim, float *table); /* [2, dim/2]: hi row, then lo row */

/* embedding = [cos(t f), sin(t f)] (see above). */
void digcl_timestep_embed_forward(digcl_context *ctx, int N, int dim,
                                  cl_mem timesteps,       /* [N] float */
                                  cl_mem frequency_table, /* [2, dim/2] */
                                  cl_mem embedding);      /* [N, dim] */

/* ---------------------------------------------------------- label embedding */

/* dropped[n] = num_classes when u < drop_prob, else labels[n], with
 * u = digcl_rng_uniform_double({seed, DIGCL_RNG_LABEL_DROP}, step,
 * first_sample + n, 0): the drop of a sample depends only on (seed, step, its
 * global index), not on the batch split or the number of ranks. */
void digcl_label_dropout(int N, int num_classes, double drop_prob, uint64_t seed, uint64_t step,
                         uint64_t first_sample, const int *labels, /* [N] */
                         int *dropped);                            /* [N] */

/* out[n, :] = table[labels[n], :] (accumulate = 1: out += ...). A label outside
 * [0, rows) gives a NaN row. */
void digcl_label_embed_forward(digcl_context *ctx, int N, int D, int rows, int accumulate,
                               cl_mem labels, /* [N] int32 */
                               cl_mem table,  /* [rows, D], rows = num_classes + 1 */
                               cl_mem out);   /* [N, D] */
/* dtable[r, :] += sum_{n: labels[n] = r} dout[n, :], deterministic (no atomics). */
void digcl_label_embed_backward(digcl_context *ctx, int N, int D, int rows,
                                cl_mem labels,  /* [N] int32 */
                                cl_mem dout,    /* [N, D] */
                                cl_mem dtable); /* [rows, D] accumulate */
#endif
