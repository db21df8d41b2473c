/* digcl/ref/activation.h: the plain-C double-precision oracles of digcl/activation.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_ACTIVATION_H
#define DIGCL_REF_ACTIVATION_H

#include "digcl/activation.h"

void digcl_ref_silu_forward(int count, const double *x, double *y);

void digcl_ref_silu_backward(int count, const double *dy, const double *x, double *dx);

void digcl_ref_gelu_tanh_forward(int count, const double *x, double *y);

void digcl_ref_gelu_tanh_backward(int count, const double *dy, const double *x, double *dx);

void digcl_ref_swiglu_forward(int rows, int F, const double *x, double *y);

void digcl_ref_swiglu_backward(int rows, int F, const double *dy, const double *x, double *dx);

void digcl_ref_forget_gate_forward(int count, double normalizer, const double *x, double *y);

void digcl_ref_forget_gate_backward(int count, double normalizer, const double *dy, const double *x,
                                    double *dx);

#endif
