/* digcl/gla.h: chunkwise gated linear attention (GLA), forward and backward.
 *
 * Per batch element n and head h, with q_t, k_t, g_t in R^K and v_t in R^V:
 *
 *   S_t = Diag(exp(g_t)) S_{t-1} + k_t v_t^T,   S_{-1} = h0 (zero when NULL)
 *   o_t = scale * S_t^T q_t,                     hT = S_{T-1}
 *
 * g is a log gate and must be <= 0 (not checked on the device; a positive g
 * can overflow exp). scale <= 0 selects the default K^-1/2. The algorithm is
 * the chunk form of docs/GLA.md sections 2-3 (Yang et al., "Gated
 * Linear Attention Transformers with Hardware-Efficient Training", arXiv
 * 2312.06635); docs/GLA_DESIGN.md describes the kernels.
 *
 * Layout: each of q, k, g, v and o has its own element offset and strides, and
 * a gradient has its tensor's layout (dq q's, dk k's, dg g's, dv v's, do o's),
 * so that the token-major [N, T, H, D] output of the linear layers, column
 * slices of one fused projection and the head-major [N, H, T, D] layout are all
 * read and written in place. Element (n, t, h, d) of a tensor lives at
 * offset + n*batch + h*head + t*token + d (d contiguous).
 * States h0, hT, dh0, dhT are contiguous fp32 [N, H, K, V].
 *
 * Workspace: the caller passes a device buffer of at least
 * digcl_gla_*_workspace_bytes(shape) bytes; launchers never allocate. The
 * forward leaves the chunk-entry states H_n in the workspace; a backward run on
 * the same, untouched workspace with DIGCL_GLA_REUSE_STATES skips their
 * recomputation (costs the state memory between forward and backward).
 */
#ifndef DIGCL_GLA_H
#define DIGCL_GLA_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_gla_strides {
    size_t offset; /* elements before element (0, 0, 0, 0) */
    size_t token;  /* elements between t and t+1 */
    size_t head;   /* elements between h and h+1 */
    size_t batch;  /* elements between n and n+1 */
} digcl_gla_strides;

typedef struct digcl_gla_shape {
    int N, T, H, K, V;
    int chunk;                 /* 16, 32 or 64; 0: digcl_gla_default_chunk of the device */
    digcl_gla_strides q, k, g; /* [N, T, H, K]; dq, dk, dg alike */
    digcl_gla_strides v, o;    /* [N, T, H, V]; dv, do alike */
} digcl_gla_shape;

/* Flags of digcl_gla_backward. */
enum {
    DIGCL_GLA_REUSE_STATES = 1 /* workspace still holds this call's forward states */
};

/* Token-major [N, T, H, K] / [N, T, H, V] (the linear layers' output). */
digcl_gla_shape digcl_gla_shape_token_major(int N, int T, int H, int K, int V, int chunk);
/* Head-major [N, H, T, K] / [N, H, T, V] (fla's pinned layout). */
digcl_gla_shape digcl_gla_shape_head_major(int N, int T, int H, int K, int V, int chunk);

/* The default chunk: 32 on GPUs (measured on an H200, docs/GLA_DESIGN.md),
 * 64 on CPUs and other devices (fewer, larger work-groups; not tuned). */
int digcl_gla_default_chunk(const digcl_device_info *device);

/* Elements a buffer holding one tensor of this layout needs (its largest index + 1);
 * width: K for q, k, g and V for v, o. */
size_t digcl_gla_span(const digcl_gla_shape *shape, const digcl_gla_strides *layout, int width);

/* Workspace bytes: forward (states [N*H, T/C, K, V] and chunk decays
 * [N*H, T/C, K]); backward adds state gradients [N*H, T/C, K, V]. With
 * shape->chunk 0 the size is for C = 16, an upper bound for any device. */
size_t digcl_gla_forward_workspace_bytes(const digcl_gla_shape *shape);
size_t digcl_gla_backward_workspace_bytes(const digcl_gla_shape *shape);

/* o = GLA(q, k, v, g; h0); hT written when not NULL. scale <= 0: K^-1/2. */
void digcl_gla_forward(digcl_context *ctx, const digcl_gla_shape *shape,
                       cl_mem q,         /* [N, T, H, K] (shape->q, ->k, ->g) */
                       cl_mem k,         /* [N, T, H, K] (shape->q, ->k, ->g) */
                       cl_mem v,         /* [N, T, H, V] (shape->v, ->o) */
                       cl_mem g,         /* [N, T, H, K] (shape->q, ->k, ->g), <= 0 */
                       cl_mem h0,        /* [N, H, K, V] or NULL */
                       cl_mem o,         /* [N, T, H, V] (shape->v, ->o), overwritten */
                       cl_mem hT,        /* [N, H, K, V] or NULL, overwritten */
                       cl_mem workspace, /* digcl_gla_forward_workspace_bytes */
                       float scale);

/* Input gradients, all overwritten. dhT may be NULL (zero); dh0 may be NULL
 * (not written). workspace: digcl_gla_backward_workspace_bytes; with
 * DIGCL_GLA_REUSE_STATES it must be the forward's workspace, unchanged. */
void digcl_gla_backward(digcl_context *ctx, const digcl_gla_shape *shape,
                        cl_mem q,   /* [N, T, H, K] */
                        cl_mem k,   /* [N, T, H, K] */
                        cl_mem v,   /* [N, T, H, V] */
                        cl_mem g,   /* [N, T, H, K] */
                        cl_mem h0,  /* [N, H, K, V] or NULL */
                        cl_mem do_, /* [N, T, H, V] gradient of o */
                        cl_mem dhT, /* [N, H, K, V] gradient of hT, or NULL */
                        cl_mem dq,  /* [N, T, H, K] */
                        cl_mem dk,  /* [N, T, H, K] */
                        cl_mem dv,  /* [N, T, H, V] */
                        cl_mem dg,  /* [N, T, H, K] */
                        cl_mem dh0, /* [N, H, K, V] or NULL */
                        cl_mem workspace, float scale, int flags);
#endif
