/* digcl/norm.h: row normalisations over the last dimension.
 *
 * LayerNorm without affine (DiT/DiG LN1, LN2 and the final layer;
 * docs/MODEL.md §2.1, §3.5), eps = 1e-6, biased variance:
 *   y = (x - mean) * rstd,  rstd = 1 / sqrt(var + eps)
 * forward saves mean and rstd ([rows] each) and backward reuses them.
 *
 * LayerNorm + modulate, fused (DiG computes modulate(LN(h)), adaln.h):
 *   y = LN(x) * (1 + scale[n]) + shift[n],  x [N, T, D]
 * the unfused path is digcl_layernorm_forward + digcl_modulate_forward.
 *
 * Per-head RMSNorm x swish gate (fla FusedRMSNormSwishGate, docs/GLA.md §1.3 step 6,
 * docs/MODEL.md §2.2), over each head's V channels, eps = 1e-6:
 *   y = x * rsqrt(mean(x^2) + eps) * w * g * sigmoid(g)
 * with x, g [N, T, H, V] seen as [rows = N*T*H, V] and w [V] shared by heads.
 *
 * Gradients: dx (and dg) overwritten unless `accumulate` (then +=); dweight
 * accumulates (+=) into the flat gradient buffer; dshift/dscale (activation
 * gradients) are overwritten. All reductions are deterministic (no atomics).
 */
#ifndef DIGCL_NORM_H
#define DIGCL_NORM_H

#include <stddef.h>

#include "digcl/adaln.h"
#include "digcl/runtime.h"

#define DIGCL_LAYERNORM_EPS 1e-6f
#define DIGCL_RMSNORM_EPS   1e-6f

/* The widest row the norm kernels take: 2048 vectors of 4 floats when the
 * width is a multiple of 4, else 2048 floats. */
#define DIGCL_NORM_MAX_ROW_VECTORS 2048
/* 1 when rows of `width` floats fit the norm kernels (see above). */
int digcl_norm_width_supported(int width);

/* ---------------------------------------------------------------- LayerNorm */

void digcl_layernorm_forward(digcl_context *ctx, int rows, int D, cl_mem x, /* [rows, D] */
                             cl_mem y,                                      /* [rows, D] */
                             cl_mem mean,                                   /* [rows] */
                             cl_mem rstd);                                  /* [rows] */

/* dx (=|+=) rstd * (dy - mean(dy) - xhat * mean(dy * xhat)). */
void digcl_layernorm_backward(digcl_context *ctx, int rows, int D, cl_mem dy, /* [rows, D] */
                              cl_mem x,                                       /* [rows, D] */
                              cl_mem mean,                                    /* [rows] */
                              cl_mem rstd,                                    /* [rows] */
                              cl_mem dx,                                      /* [rows, D] */
                              int accumulate);

/* ---------------------------------------------------------------- LayerNorm + modulate */

void digcl_layernorm_modulate_forward(digcl_context *ctx, int N, int T, int D,
                                      cl_mem x,             /* [N, T, D] */
                                      digcl_row_view shift, /* [N, D] */
                                      digcl_row_view scale, /* [N, D] */
                                      cl_mem y,             /* [N, T, D] */
                                      cl_mem mean,          /* [N*T] */
                                      cl_mem rstd);         /* [N*T] */

size_t digcl_layernorm_modulate_backward_workspace_bytes(int N, int T, int D);

/* dx (=|+=) LN^T(dy * (1 + scale[n])); dshift[n] = sum_t dy; dscale[n] = sum_t dy * xhat.
 * Set accumulate=1 to add onto the residual stream's gradient. */
void digcl_layernorm_modulate_backward(digcl_context *ctx, int N, int T, int D,
                                       cl_mem dy,            /* [N, T, D] */
                                       cl_mem x,             /* [N, T, D] */
                                       cl_mem mean,          /* [N*T] */
                                       cl_mem rstd,          /* [N*T] */
                                       digcl_row_view scale, /* [N, D] */
                                       cl_mem dx,            /* [N, T, D] */
                                       int accumulate,
                                       digcl_row_view dshift, /* [N, D] overwritten */
                                       digcl_row_view dscale, /* [N, D] overwritten */
                                       cl_mem workspace);

/* ---------------------------------------------------------------- RMSNorm x swish gate */

/* Where the gate's rows are: row r = t * heads + h starts at offset + t * token_stride
 * + h * V. digcl_gate_rows_dense(V) is the plain [rows, V]; DiG passes the g columns
 * of its fused projection rows. The gate's gradient has the same layout. */
typedef struct digcl_gate_rows {
    size_t offset, token_stride; /* elements */
    int heads;
} digcl_gate_rows;

static inline digcl_gate_rows digcl_gate_rows_dense(int V) {
    digcl_gate_rows rows = {0, (size_t)V, 1};
    return rows;
}

void digcl_rmsnorm_gate_forward(digcl_context *ctx, int rows, int V, cl_mem x, /* [rows, V] */
                                cl_mem gate, digcl_gate_rows gate_rows,        /* [rows, V] */
                                cl_mem weight, size_t weight_offset,           /* [V] */
                                cl_mem y);                                     /* [rows, V] */

size_t digcl_rmsnorm_gate_backward_workspace_bytes(int rows, int V);

/* dx, dgate (=|+=); dweight += sum over rows. rstd is recomputed from x. */
void digcl_rmsnorm_gate_backward(digcl_context *ctx, int rows, int V, cl_mem dy, /* [rows, V] */
                                 cl_mem x,                                       /* [rows, V] */
                                 cl_mem gate, digcl_gate_rows gate_rows,         /* [rows, V] */
                                 cl_mem weight, size_t weight_offset,            /* [V] */
                                 cl_mem dx,                                      /* [rows, V] */
                                 cl_mem dgate, /* [rows, V] in gate_rows' layout */
                                 int accumulate, cl_mem dweight, size_t dweight_offset, /* [V] += */
                                 cl_mem workspace);
#endif
