/* digcl/ref/attention.h: the plain-C double-precision oracles of digcl/attention.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_ATTENTION_H
#define DIGCL_REF_ATTENTION_H

#include "digcl/attention.h"

/* Naive O(T^2) references in double. logsumexp may be NULL. */
void digcl_ref_attention_forward(const digcl_attention_shape *shape,
                                 const double *qkv,  /* [N, T, 3, H, dh] */
                                 double *out,        /* [N, T, H, dh] */
                                 double *logsumexp); /* [N, H, T] or NULL */

void digcl_ref_attention_backward(const digcl_attention_shape *shape,
                                  const double *qkv,  /* [N, T, 3, H, dh] */
                                  const double *dout, /* [N, T, H, dh] */
                                  double *dqkv);      /* [N, T, 3, H, dh] */

/* The forward output of the single query row (n, t, h) only: O(T dh). */
void digcl_ref_attention_forward_row(const digcl_attention_shape *shape, const double *qkv, int n,
                                     int t, int h, double *out_row, /* [dh] */
                                     double *logsumexp);            /* scalar, or NULL */

/* Row softmax (the naive attention's kernels) on [rows, cols]: p = softmax(x)
 * per row; dx = p (dp - rowsum(dp p)). */
void digcl_ref_softmax_rows_forward(size_t rows, int cols, const double *x, double *p);
void digcl_ref_softmax_rows_backward(size_t rows, int cols, const double *p, const double *dp,
                                     double *dx);

#endif
