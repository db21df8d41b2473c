/* activation_ref.c: double references of the activations (digcl/activation.h). */
#include <math.h>

#include "digcl/activation.h"
#include "digcl/ref/activation.h"

#define GELU_C 0.7978845608028654 /* sqrt(2/pi) */
#define GELU_A 0.044715

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

void digcl_ref_silu_forward(int count, const double *x, double *y) {
    for (int i = 0; i < count; ++i) y[i] = x[i] * sigmoid(x[i]);
}

void digcl_ref_silu_backward(int count, const double *dy, const double *x, double *dx) {
    for (int i = 0; i < count; ++i) {
        double s = sigmoid(x[i]);
        dx[i] = dy[i] * s * (1.0 + x[i] * (1.0 - s));
    }
}

void digcl_ref_gelu_tanh_forward(int count, const double *x, double *y) {
    for (int i = 0; i < count; ++i) {
        double u = GELU_C * (x[i] + GELU_A * x[i] * x[i] * x[i]);
        y[i] = 0.5 * x[i] * (1.0 + tanh(u));
    }
}

void digcl_ref_gelu_tanh_backward(int count, const double *dy, const double *x, double *dx) {
    for (int i = 0; i < count; ++i) {
        double u = GELU_C * (x[i] + GELU_A * x[i] * x[i] * x[i]), th = tanh(u);
        double du = GELU_C * (1.0 + 3.0 * GELU_A * x[i] * x[i]);
        dx[i] = dy[i] * (0.5 * (1.0 + th) + 0.5 * x[i] * (1.0 - th * th) * du);
    }
}

void digcl_ref_swiglu_forward(int rows, int F, const double *x, double *y) {
    for (int r = 0; r < rows; ++r)
        for (int f = 0; f < F; ++f) {
            double a = x[(size_t)r * 2 * F + f], b = x[(size_t)r * 2 * F + F + f];
            y[(size_t)r * F + f] = a * sigmoid(a) * b;
        }
}

void digcl_ref_swiglu_backward(int rows, int F, const double *dy, const double *x, double *dx) {
    for (int r = 0; r < rows; ++r)
        for (int f = 0; f < F; ++f) {
            size_t ia = (size_t)r * 2 * F + f, ib = ia + F;
            double a = x[ia], b = x[ib], s = sigmoid(a), g = dy[(size_t)r * F + f];
            dx[ia] = g * b * s * (1.0 + a * (1.0 - s));
            dx[ib] = g * a * s;
        }
}

void digcl_ref_forget_gate_forward(int count, double normalizer, const double *x, double *y) {
    for (int i = 0; i < count; ++i) y[i] = (fmin(x[i], 0.0) - log1p(exp(-fabs(x[i])))) / normalizer;
}

/* d logsigmoid(x) / dx = sigmoid(-x). */
void digcl_ref_forget_gate_backward(int count, double normalizer, const double *dy, const double *x,
                                    double *dx) {
    for (int i = 0; i < count; ++i) dx[i] = dy[i] * sigmoid(-x[i]) / normalizer;
}
