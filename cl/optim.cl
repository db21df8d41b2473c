/* optim.cl: AdamW and EMA, one kernel each over the flat parameter buffer (digcl/optim.h).
 *
 * AdamW (PyTorch torch.optim.AdamW, https://pytorch.org/docs/stable/generated/torch.optim.AdamW.html):
 *   p *= 1 - lr wd;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2
 *   p -= step_size m / (sqrt(v) / bias_correction2_sqrt + eps)
 * with step_size = lr / (1 - b1^t), bias_correction2_sqrt = sqrt(1 - b2^t) and the
 * weights 1 - b1, 1 - b2 computed on the host in double (as PyTorch does with Python
 * floats; 1.0f - 0.999f in float would be off by 1.3e-5 relative).
 * EMA (DiT update_ema): ema = decay ema + (1 - decay) p.
 *
 * Options: -DVEC=1|4.
 */
#include "vector.cl"

__kernel void adamw_step(__global vec *params, __global const vec *grads, __global vec *m,
                         __global vec *v, const int count_vec, const float decay_factor,
                         const float beta1, const float one_minus_beta1, const float beta2,
                         const float one_minus_beta2, const float eps,
                         const float step_size, const float bias_correction2_sqrt) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    const vec g = grads[i];
    const vec m_new = beta1 * m[i] + one_minus_beta1 * g;
    const vec v_new = beta2 * v[i] + one_minus_beta2 * g * g;
    const vec denominator = sqrt(v_new) / bias_correction2_sqrt + eps;
    params[i] = params[i] * decay_factor - step_size * m_new / denominator;
    m[i] = m_new;
    v[i] = v_new;
}

__kernel void ema_update(__global vec *ema, __global const vec *params, const int count_vec,
                         const float decay) {
    const int i = get_global_id(0);
    if (i < count_vec) ema[i] = decay * ema[i] + (1.0f - decay) * params[i];
}
