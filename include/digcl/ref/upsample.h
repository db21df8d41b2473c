/* digcl/ref/upsample.h: the plain-C double-precision oracles of digcl/upsample.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_UPSAMPLE_H
#define DIGCL_REF_UPSAMPLE_H

#include "digcl/upsample.h"

void digcl_ref_upsample_nearest_forward(int planes, int H, int W, int factor,
                                        const double *x, /* [N, C, H, W] */
                                        double *y);      /* [N, C, F H, F W] */

#endif
