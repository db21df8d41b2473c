/* digcl/adaln.h: adaLN-Zero modulation (DiT, docs/MODEL.md §2.1 steps 2-4).
 *
 * Dimensions: N samples, T tokens, D width.
 *
 *   modulate(x, shift, scale) = x * (1 + scale[n]) + shift[n]   (DiT models_dit.py L19-20)
 *   gated residual            = h + gate[n] * y
 *
 * with [N, D] vectors broadcast over T. In DiG the six vectors of a block come
 * out of one Linear as [N, 6D] (order shift1, scale1, gate1, shift2, scale2,
 * gate2), so every vector is passed as a digcl_row_view that reads them in
 * place: element (n, d) is mem[offset + n * row_stride + d].
 *
 * Gradients: dx / dy are overwritten unless `accumulate` is set (then +=).
 * dshift, dscale and dgate are gradients of an activation (the [N, 6D] adaLN
 * output), so they are **overwritten**. They are reduced over T in two stages
 * (per-chunk partials, then digcl_column_sum): deterministic, no atomics.
 * The fused LayerNorm + modulate lives in digcl/norm.h; SiLU on the
 * conditioning vector in digcl/activation.h.
 */
#ifndef DIGCL_ADALN_H
#define DIGCL_ADALN_H

#include <stddef.h>

#include "digcl/runtime.h"

/* A generic [N, D] view of rows read in place from a wider [N, row_stride]
 * tensor (here: one of the adaLN vectors). */
typedef struct digcl_row_view {
    cl_mem mem;
    size_t offset;     /* elements: start of row 0 */
    size_t row_stride; /* elements between consecutive n */
} digcl_row_view;

/* Chunk `index` of `chunks` blocks of width D packed per row (as the adaLN
 * Linear writes its vectors): [N, chunks * D] -> view of columns
 * [index*D, (index+1)*D). */
digcl_row_view digcl_row_view_chunk(cl_mem mem, int index, int chunks, int D);

/* ---------------------------------------------------------------- modulate */

/* y = x * (1 + scale[n]) + shift[n]. */
void digcl_modulate_forward(digcl_context *ctx, int N, int T, int D, cl_mem x, /* [N, T, D] */
                            digcl_row_view shift,                              /* [N, D] */
                            digcl_row_view scale,                              /* [N, D] */
                            cl_mem y);                                         /* [N, T, D] */

size_t digcl_modulate_backward_workspace_bytes(int N, int T, int D);

/* dx (=|+=) dy * (1 + scale[n]); dshift[n] = sum_t dy; dscale[n] = sum_t dy * x. */
void digcl_modulate_backward(digcl_context *ctx, int N, int T, int D, cl_mem dy, /* [N, T, D] */
                             cl_mem x,                                           /* [N, T, D] */
                             digcl_row_view scale,                               /* [N, D] */
                             cl_mem dx,                                          /* [N, T, D] */
                             int accumulate, digcl_row_view dshift, /* [N, D] overwritten */
                             digcl_row_view dscale,                 /* [N, D] overwritten */
                             cl_mem workspace);

/* ---------------------------------------------------------------- gated residual */

/* out = h + gate[n] * y; out may be h itself (in-place residual update). */
void digcl_gated_residual_forward(digcl_context *ctx, int N, int T, int D, cl_mem h, /* [N, T, D] */
                                  digcl_row_view gate,                               /* [N, D] */
                                  cl_mem y,                                          /* [N, T, D] */
                                  cl_mem out);                                       /* [N, T, D] */

size_t digcl_gated_residual_backward_workspace_bytes(int N, int T, int D);

/* dy (=|+=) gate[n] * dout; dgate[n] = sum_t dout * y. The gradient with
 * respect to h is dout itself (identity): the caller keeps using dout. */
void digcl_gated_residual_backward(digcl_context *ctx, int N, int T, int D,
                                   cl_mem dout,                          /* [N, T, D] */
                                   cl_mem y,                             /* [N, T, D] */
                                   digcl_row_view gate,                  /* [N, D] */
                                   cl_mem dy,                            /* [N, T, D] */
                                   int accumulate, digcl_row_view dgate, /* [N, D] overwritten */
                                   cl_mem workspace);
#endif
