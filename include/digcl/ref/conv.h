/* digcl/ref/conv.h: the plain-C double-precision oracles of digcl/conv.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_CONV_H
#define DIGCL_REF_CONV_H

#include "digcl/conv.h"

void digcl_ref_depthwise_conv_forward(const digcl_grid_shape *shape,
                                      const double *x,      /* [N, T, D] */
                                      const double *weight, /* [D, 1, 3, 3] */
                                      const double *bias,   /* [D] */
                                      double *y);           /* [N, T, D] */

void digcl_ref_depthwise_conv_backward(const digcl_grid_shape *shape,
                                       const double *x,      /* [N, T, D] */
                                       const double *weight, /* [D, 1, 3, 3] */
                                       const double *dy,     /* [N, T, D] */
                                       double *dx,           /* [N, T, D] */
                                       double *dweight,      /* [D, 1, 3, 3] accumulate */
                                       double *dbias);       /* [D] accumulate */

#endif
