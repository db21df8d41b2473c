/* digcl/ref/norm.h: the plain-C double-precision oracles of digcl/norm.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_NORM_H
#define DIGCL_REF_NORM_H

#include "digcl/norm.h"

void digcl_ref_layernorm_forward(int rows, int D, const double *x, double *y, double *mean,
                                 double *rstd);

/* dx overwritten. */
void digcl_ref_layernorm_backward(int rows, int D, const double *dy, const double *x,
                                  const double *mean, const double *rstd, double *dx);

/* Unfused: layernorm then modulate. shift, scale contiguous [N, D]. */
void digcl_ref_layernorm_modulate_forward(int N, int T, int D, const double *x, const double *shift,
                                          const double *scale, double *y, double *mean,
                                          double *rstd);

/* dx, dshift, dscale overwritten. */
void digcl_ref_layernorm_modulate_backward(int N, int T, int D, const double *dy, const double *x,
                                           const double *mean, const double *rstd,
                                           const double *scale, double *dx, double *dshift,
                                           double *dscale);

void digcl_ref_rmsnorm_gate_forward(int rows, int V, const double *x, const double *gate,
                                    const double *weight, double *y);

/* dx, dgate overwritten; dweight accumulates (+=). */
void digcl_ref_rmsnorm_gate_backward(int rows, int V, const double *dy, const double *x,
                                     const double *gate, const double *weight, double *dx,
                                     double *dgate, double *dweight);

#endif
