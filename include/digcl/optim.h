/* digcl/optim.h: AdamW and the EMA update, each ONE kernel over the whole
 * flat parameter buffer.
 *
 * AdamW, PyTorch torch.optim.AdamW semantics (decoupled weight decay):
 *   param *= 1 - lr * weight_decay
 *   m = beta1 m + (1 - beta1) g
 *   v = beta2 v + (1 - beta2) g^2
 *   param -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps)
 * with step counted from 1. DiG: lr 1e-4, betas (0.9, 0.999), eps 1e-8, wd 0
 * (docs/MODEL.md (Training recipe)).
 *
 * EMA (DiT update_ema): ema = decay * ema + (1 - decay) * param, decay 0.9999.
 */
#ifndef DIGCL_OPTIM_H
#define DIGCL_OPTIM_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_adamw_hparams {
    float lr;
    double beta1, beta2; /* double: 1 - beta and beta^step as PyTorch computes them */
    float eps;
    float weight_decay;
} digcl_adamw_hparams;

/* PyTorch defaults with DiG's lr and wd: lr 1e-4, (0.9, 0.999), 1e-8, wd 0. */
digcl_adamw_hparams digcl_adamw_defaults(void);

/* One step (step >= 1) on count floats; params, m, v updated in place. */
void digcl_adamw_step(digcl_context *ctx, int count, const digcl_adamw_hparams *hparams, long step,
                      cl_mem params, /* [count] */
                      cl_mem grads,  /* [count] */
                      cl_mem m,      /* [count] */
                      cl_mem v);     /* [count] */

void digcl_ema_update(digcl_context *ctx, int count, float decay, cl_mem ema, /* [count] */
                      cl_mem params);                                         /* [count] */
#endif
