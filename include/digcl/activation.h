/* digcl/activation.h: elementwise activations, forward and backward.
 *
 *   SiLU       y = x * sigmoid(x)                      (adaLN conditioning, docs/MODEL.md §2.1)
 *   GELU-tanh  y = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
 *              (PyTorch GELU(approximate='tanh'); DiT's MLP)
 *   SwiGLU     [.., 2F] -> [.., F]: y = swish(a) * b, a = first half (the gate),
 *              b = second half (fla GLAMLP / swiglu, docs/MODEL.md §2.1)
 *   forget gate y = logsigmoid(x) / normalizer, logsigmoid(x) = min(x, 0) - log1p(exp(-|x|))
 *              (fla gla.py `gk = logsigmoid(gk) / gate_logit_normalizer`, docs/GLA.md §1.2;
 *               DiG uses normalizer 16)
 *
 * Gradients: dx is overwritten unless `accumulate` (then +=).
 * count is the number of elements.
 */
#ifndef DIGCL_ACTIVATION_H
#define DIGCL_ACTIVATION_H

#include <stddef.h>

#include "digcl/runtime.h"

#define DIGCL_FORGET_GATE_NORMALIZER 16.0f

void digcl_silu_forward(digcl_context *ctx, int count, cl_mem x /* [count] */,
                        cl_mem y /* [count] */);
void digcl_silu_backward(digcl_context *ctx, int count, cl_mem dy /* [count] */,
                         cl_mem x /* [count] */, cl_mem dx /* [count] */, int accumulate);

void digcl_gelu_tanh_forward(digcl_context *ctx, int count, cl_mem x /* [count] */,
                             cl_mem y /* [count] */);
void digcl_gelu_tanh_backward(digcl_context *ctx, int count, cl_mem dy /* [count] */,
                              cl_mem x /* [count] */, cl_mem dx /* [count] */, int accumulate);

void digcl_swiglu_forward(digcl_context *ctx, int rows, int F, cl_mem x /* [rows, 2F] */,
                          cl_mem y /* [rows, F] */);
void digcl_swiglu_backward(digcl_context *ctx, int rows, int F, cl_mem dy /* [rows, F] */,
                           cl_mem x /* [rows, 2F] */, cl_mem dx /* [rows, 2F] */, int accumulate);

void digcl_forget_gate_forward(digcl_context *ctx, int count, float normalizer,
                               cl_mem x /* [count] */, cl_mem y /* [count] */);
void digcl_forget_gate_backward(digcl_context *ctx, int count, float normalizer,
                                cl_mem dy /* [count] */, cl_mem x /* [count] */,
                                cl_mem dx /* [count] */, int accumulate);
#endif
