/* digcl/ref/gla.h: the plain-C double-precision oracles of digcl/gla.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_GLA_H
#define DIGCL_REF_GLA_H

#include "digcl/gla.h"

/* Token-by-token recurrence in double on host arrays with the same layout.
 * h0, hT, dhT, dh0 may be NULL. scale <= 0: K^-1/2. */
void digcl_ref_gla_forward(const digcl_gla_shape *shape, const double *q, /* [N, T, H, K] strided */
                           const double *k,                               /* [N, T, H, K] strided */
                           const double *v,                               /* [N, T, H, V] strided */
                           const double *g,                               /* [N, T, H, K] strided */
                           const double *h0,                              /* [N, H, K, V] or NULL */
                           double *o,                                     /* [N, T, H, V] strided */
                           double *hT,                                    /* [N, H, K, V] or NULL */
                           double scale);

/* Reverse-mode gradients: dq_t = s S_t do_t, dk_t = dS_t v_t, dv_t = dS_t^T k_t,
 * dg_t = exp(g_t) * rowsum(dS_t * S_{t-1}), dS_{t-1} = exp(g_t) dS_t; states
 * are recomputed from checkpoints (memory O((T/32 + 32) K V) per head). */
void digcl_ref_gla_backward(const digcl_gla_shape *shape, const double *q, /* [N, T, H, K] */
                            const double *k,                               /* [N, T, H, K] */
                            const double *v,                               /* [N, T, H, V] */
                            const double *g,                               /* [N, T, H, K] */
                            const double *h0,  /* [N, H, K, V] or NULL */
                            const double *do_, /* [N, T, H, V] */
                            const double *dhT, /* [N, H, K, V] or NULL */
                            double *dq,        /* [N, T, H, K] */
                            double *dk,        /* [N, T, H, K] */
                            double *dv,        /* [N, T, H, V] */
                            double *dg,        /* [N, T, H, K] */
                            double *dh0,       /* [N, H, K, V] or NULL */
                            double scale);

#endif
