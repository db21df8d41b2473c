/* digcl/ref/linear.h: the plain-C double-precision oracles of digcl/linear.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_LINEAR_H
#define DIGCL_REF_LINEAR_H

#include "digcl/linear.h"

/* bias may be NULL. */
void digcl_ref_linear_forward(digcl_linear_shape shape, const double *x, const double *weight,
                              const double *bias, double *y);

/* dx overwritten (if not NULL); dweight and dbias accumulate (if not NULL). */
void digcl_ref_linear_backward(digcl_linear_shape shape, const double *dy, const double *x,
                               const double *weight, double *dx, double *dweight, double *dbias);

#endif
