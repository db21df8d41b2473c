/* digcl/ref/srem.h: the plain-C double-precision oracles of digcl/srem.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_SREM_H
#define DIGCL_REF_SREM_H

#include "digcl/srem.h"

void digcl_ref_srem_forward(digcl_scan_order order, int N, int side, int D,
                            const double *x, /* [N, side*side, D] */
                            double *y);      /* [N, side*side, D] */

void digcl_ref_srem_backward(digcl_scan_order order, int N, int side, int D,
                             const double *dy, /* [N, side*side, D] */
                             double *dx);      /* [N, side*side, D] */

#endif
