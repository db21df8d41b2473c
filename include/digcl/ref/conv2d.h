/* digcl/ref/conv2d.h: the plain-C double-precision oracles of digcl/conv2d.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_CONV2D_H
#define DIGCL_REF_CONV2D_H

#include "digcl/conv2d.h"

/* Reference in double: y = conv(x) + bias (bias may be NULL). */
void digcl_ref_conv2d_forward(const digcl_conv2d_shape *shape, const double *x, /* [N, C, H, W] */
                              const double *weight,                             /* [O, C, K, K] */
                              const double *bias,                               /* [O] or NULL */
                              double *y);                                       /* [N, O, Ho, Wo] */

#endif
