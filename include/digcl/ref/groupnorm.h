/* digcl/ref/groupnorm.h: the plain-C double-precision oracles of digcl/groupnorm.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_GROUPNORM_H
#define DIGCL_REF_GROUPNORM_H

#include "digcl/groupnorm.h"

void digcl_ref_groupnorm_forward(const digcl_groupnorm_shape *shape,
                                 const double *x,      /* [N, C, pixels] */
                                 const double *gamma,  /* [C] */
                                 const double *beta,   /* [C] */
                                 int silu, double *y); /* [N, C, pixels] */

#endif
