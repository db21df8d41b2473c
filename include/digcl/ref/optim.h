/* digcl/ref/optim.h: the plain-C double-precision oracles of digcl/optim.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_OPTIM_H
#define DIGCL_REF_OPTIM_H

#include "digcl/optim.h"

void digcl_ref_adamw_step(int count, const digcl_adamw_hparams *hparams, long step, double *params,
                          const double *grads, double *m, double *v);

void digcl_ref_ema_update(int count, double decay, double *ema, const double *params);

#endif
