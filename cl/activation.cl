/* activation.cl: elementwise activations, forward and backward (digcl/activation.h).
 *
 *   SiLU        y = x s,  s = sigmoid(x);           dx = dy s (1 + x (1 - s))
 *   GELU-tanh   y = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
 *               dx = dy (0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3 0.044715 x^2))
 *               (PyTorch nn.GELU(approximate='tanh'))
 *   SwiGLU      x [rows, 2F] = [a | b]:  y = a sigmoid(a) b   (fla swiglu; docs/MODEL.md §2.1)
 *               da = dy b s (1 + a (1 - s)),  db = dy a s
 *   forget gate y = logsigmoid(x) / normalizer,  logsigmoid(x) = min(x, 0) - log1p(exp(-|x|))
 *               dx = dy sigmoid(-x) / normalizer   (fla gla.py; docs/GLA.md §1.2)
 *
 * Gradients overwrite dx unless accumulate != 0 (then +=).
 * Options: -DVEC=1|4|16 (float4, or float16 on CPU devices, when the element counts allow).
 */
#include "vector.cl"

#define GELU_C 0.7978845608028654f
#define GELU_A 0.044715f

vec sigmoid_of(vec x) { return 1.0f / (1.0f + exp(-x)); }

#define STORE_GRADIENT(dx, i, value, accumulate) \
    ((dx)[i] = (accumulate) ? (dx)[i] + (value) : (value))

__kernel void silu_forward(__global const vec *x, __global vec *y, const int count_vec) {
    const int i = get_global_id(0);
    if (i < count_vec) y[i] = x[i] * sigmoid_of(x[i]);
}

__kernel void silu_backward(__global const vec *dy, __global const vec *x, __global vec *dx,
                            const int count_vec, const int accumulate) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    const vec s = sigmoid_of(x[i]);
    STORE_GRADIENT(dx, i, dy[i] * s * (1.0f + x[i] * (1.0f - s)), accumulate);
}

__kernel void gelu_tanh_forward(__global const vec *x, __global vec *y, const int count_vec) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    const vec v = x[i];
    y[i] = 0.5f * v * (1.0f + tanh(GELU_C * (v + GELU_A * v * v * v)));
}

__kernel void gelu_tanh_backward(__global const vec *dy, __global const vec *x, __global vec *dx,
                                 const int count_vec, const int accumulate) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    const vec v = x[i];
    const vec th = tanh(GELU_C * (v + GELU_A * v * v * v));
    const vec du = GELU_C * (1.0f + 3.0f * GELU_A * v * v);
    STORE_GRADIENT(dx, i, dy[i] * (0.5f * (1.0f + th) + 0.5f * v * (1.0f - th * th) * du),
                   accumulate);
}

/* Global size (F / VEC, rows). */
__kernel void swiglu_forward(__global const vec *x, __global vec *y, const int rows,
                             const int F_vec) {
    const int f = get_global_id(0), r = get_global_id(1);
    if (f >= F_vec || r >= rows) return;
    const vec a = x[(size_t)r * 2 * F_vec + f], b = x[(size_t)r * 2 * F_vec + F_vec + f];
    y[(size_t)r * F_vec + f] = a * sigmoid_of(a) * b;
}

__kernel void swiglu_backward(__global const vec *dy, __global const vec *x, __global vec *dx,
                              const int rows, const int F_vec, const int accumulate) {
    const int f = get_global_id(0), r = get_global_id(1);
    if (f >= F_vec || r >= rows) return;
    const size_t ia = (size_t)r * 2 * F_vec + f, ib = ia + F_vec;
    const vec a = x[ia], b = x[ib], s = sigmoid_of(a), g = dy[(size_t)r * F_vec + f];
    STORE_GRADIENT(dx, ia, g * b * s * (1.0f + a * (1.0f - s)), accumulate);
    STORE_GRADIENT(dx, ib, g * a * s, accumulate);
}

__kernel void forget_gate_forward(__global const vec *x, __global vec *y, const int count_vec,
                                  const float normalizer) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    const vec v = x[i];
    y[i] = (fmin(v, 0.0f) - log1p(exp(-fabs(v)))) / normalizer;
}

__kernel void forget_gate_backward(__global const vec *dy, __global const vec *x,
                                   __global vec *dx, const int count_vec, const float normalizer,
                                   const int accumulate) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    STORE_GRADIENT(dx, i, dy[i] * sigmoid_of(-x[i]) / normalizer, accumulate);
}
