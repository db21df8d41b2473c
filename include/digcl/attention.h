/* digcl/attention.h: non-causal multi-head softmax attention for the DiT
 * baseline (timm Attention with a fused qkv Linear D -> 3D), forward and
 * backward as tiled online-softmax kernels (FlashAttention-2, Dao 2023,
 * arXiv 2307.08691): memory O(T), never a [T, T] buffer.
 *
 * Layout: qkv [N, T, 3, H, dh] (q, k, v of head h at token t), out
 * [N, T, H, dh] (= [N, T, D] for the proj Linear), scale = dh^-0.5:
 *   S = scale q k^T,  P = softmax_rows(S),  out = P v
 *   logsumexp[n, h, i] = log sum_j exp(S_ij)   (saved for the backward)
 * Backward:
 *   delta_i = sum_c dout_ic out_ic,  dP = dout v^T,  dS = P (dP - delta)
 *   dq = scale dS k,  dk = scale dS^T q,  dv = P^T dout
 * dqkv has the layout of qkv and is overwritten. head_dim must be a multiple
 * of 4, at most 128.
 *
 * Naive attention (digcl_attention_naive_*, src/ops/attention_naive.c): the
 * same function computed as timm's Attention does without fused attention,
 *   attn = (q @ k.transpose(-2, -1)) * scale;  attn = attn.softmax(-1);  x = attn @ v
 * with the probabilities P [N, H, T, T] materialised (per (n, h) GEMMs through
 * digcl/gemm.h and a row softmax, cl/attention_naive.cl) and kept for the
 * backward, which also needs a [N, H, T, T] buffer for dP:
 *   dP = dout v^T,  dS = P (dP - rowsum(dP P)),
 *   dq = scale dS k,  dk = scale dS^T q,  dv = P^T dout.
 * Memory O(T^2) per head: the baseline whose memory curve the DiG paper plots
 * (docs/MODEL.md "DiT attention modes"). Any head_dim >= 1.
 */
#ifndef DIGCL_ATTENTION_H
#define DIGCL_ATTENTION_H

/* head_dim: a multiple of 4, at most this. */
#define DIGCL_ATTENTION_MAX_HEAD_DIM 128

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_attention_shape {
    int N;        /* batch */
    int T;        /* tokens */
    int H;        /* heads */
    int head_dim; /* dh; D = H*dh */
} digcl_attention_shape;

void digcl_attention_forward(digcl_context *ctx, const digcl_attention_shape *shape,
                             cl_mem qkv,        /* [N, T, 3, H, dh] */
                             cl_mem out,        /* [N, T, H, dh] */
                             cl_mem logsumexp); /* [N, H, T] */

/* Scratch of the backward (delta), in bytes: N*H*T floats. */
size_t digcl_attention_backward_workspace_bytes(const digcl_attention_shape *shape);

void digcl_attention_backward(digcl_context *ctx, const digcl_attention_shape *shape,
                              cl_mem qkv,       /* [N, T, 3, H, dh] */
                              cl_mem out,       /* [N, T, H, dh] */
                              cl_mem logsumexp, /* [N, H, T] */
                              cl_mem dout,      /* [N, T, H, dh] */
                              cl_mem dqkv,      /* [N, T, 3, H, dh] */
                              cl_mem workspace);

/* ---------------------------------------------------------------- naive */

/* Floats of one probability (or dP) buffer [N, H, T, T]. */
size_t digcl_attention_naive_probs_floats(const digcl_attention_shape *shape);

void digcl_attention_naive_forward(digcl_context *ctx, const digcl_attention_shape *shape,
                                   cl_mem qkv,    /* [N, T, 3, H, dh] */
                                   cl_mem out,    /* [N, T, H, dh] */
                                   cl_mem probs); /* [N, H, T, T] P, written */

/* dprobs is scratch (dP, then dS in place). */
void digcl_attention_naive_backward(digcl_context *ctx, const digcl_attention_shape *shape,
                                    cl_mem qkv,     /* [N, T, 3, H, dh] */
                                    cl_mem probs,   /* [N, H, T, T] from the forward */
                                    cl_mem dout,    /* [N, T, H, dh] */
                                    cl_mem dqkv,    /* [N, T, 3, H, dh] */
                                    cl_mem dprobs); /* [N, H, T, T] scratch */

/* The row softmax of the naive path, in place on `rows` rows of `cols` floats:
 * forward x <- softmax(x); backward dp <- p (dp - rowsum(dp p)) (the gradient
 * with respect to the softmax input, given p = softmax output and dp = dL/dp). */
void digcl_softmax_rows_forward(digcl_context *ctx, size_t rows, int cols,
                                cl_mem x); /* [rows, cols] */
void digcl_softmax_rows_backward(digcl_context *ctx, size_t rows, int cols,
                                 cl_mem p,   /* [rows, cols] */
                                 cl_mem dp); /* [rows, cols] in: dL/dp, out: dL/dx */
#endif
