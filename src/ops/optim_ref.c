/* optim_ref.c: double references of AdamW (PyTorch semantics) and the EMA (digcl/optim.h). */
#include <math.h>

#include "digcl/optim.h"
#include "digcl/ref/optim.h"

void digcl_ref_adamw_step(int count, const digcl_adamw_hparams *hp, long step, double *params,
                          const double *grads, double *m, double *v) {
    double bias_correction1 = 1.0 - pow(hp->beta1, (double)step);
    double bias_correction2 = 1.0 - pow(hp->beta2, (double)step);
    for (int i = 0; i < count; ++i) {
        params[i] *= 1.0 - (double)hp->lr * hp->weight_decay;
        m[i] = hp->beta1 * m[i] + (1.0 - hp->beta1) * grads[i];
        v[i] = hp->beta2 * v[i] + (1.0 - hp->beta2) * grads[i] * grads[i];
        double denominator = sqrt(v[i]) / sqrt(bias_correction2) + hp->eps;
        params[i] -= hp->lr / bias_correction1 * m[i] / denominator;
    }
}

void digcl_ref_ema_update(int count, double decay, double *ema, const double *params) {
    for (int i = 0; i < count; ++i) ema[i] = decay * ema[i] + (1.0 - decay) * params[i];
}
