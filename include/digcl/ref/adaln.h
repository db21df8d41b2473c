/* digcl/ref/adaln.h: the plain-C double-precision oracles of digcl/adaln.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_ADALN_H
#define DIGCL_REF_ADALN_H

#include "digcl/adaln.h"

void digcl_ref_modulate_forward(int N, int T, int D, const double *x, const double *shift,
                                const double *scale, double *y);

/* dx overwritten, dshift/dscale overwritten. */
void digcl_ref_modulate_backward(int N, int T, int D, const double *dy, const double *x,
                                 const double *scale, double *dx, double *dshift, double *dscale);

void digcl_ref_gated_residual_forward(int N, int T, int D, const double *h, const double *gate,
                                      const double *y, double *out);

/* dh = dout (copied), dy = gate * dout, dgate = sum_t dout * y; all overwritten. */
void digcl_ref_gated_residual_backward(int N, int T, int D, const double *dout, const double *y,
                                       const double *gate, double *dh, double *dy, double *dgate);

#endif
