/* adaln_ref.c: double references of modulate and the gated residual (digcl/adaln.h). */
#include "digcl/adaln.h"
#include "digcl/ref/adaln.h"

void digcl_ref_modulate_forward(int N, int T, int D, const double *x, const double *shift,
                                const double *scale, double *y) {
    for (int n = 0; n < N; ++n)
        for (int t = 0; t < T; ++t)
            for (int d = 0; d < D; ++d) {
                size_t i = ((size_t)n * T + t) * D + d;
                y[i] = x[i] * (1.0 + scale[(size_t)n * D + d]) + shift[(size_t)n * D + d];
            }
}

void digcl_ref_modulate_backward(int N, int T, int D, const double *dy, const double *x,
                                 const double *scale, double *dx, double *dshift, double *dscale) {
    for (int n = 0; n < N; ++n)
        for (int d = 0; d < D; ++d) {
            double sum_dy = 0.0, sum_dy_x = 0.0;
            for (int t = 0; t < T; ++t) {
                size_t i = ((size_t)n * T + t) * D + d;
                dx[i] = dy[i] * (1.0 + scale[(size_t)n * D + d]);
                sum_dy += dy[i];
                sum_dy_x += dy[i] * x[i];
            }
            dshift[(size_t)n * D + d] = sum_dy;
            dscale[(size_t)n * D + d] = sum_dy_x;
        }
}

void digcl_ref_gated_residual_forward(int N, int T, int D, const double *h, const double *gate,
                                      const double *y, double *out) {
    for (int n = 0; n < N; ++n)
        for (int t = 0; t < T; ++t)
            for (int d = 0; d < D; ++d) {
                size_t i = ((size_t)n * T + t) * D + d;
                out[i] = h[i] + gate[(size_t)n * D + d] * y[i];
            }
}

void digcl_ref_gated_residual_backward(int N, int T, int D, const double *dout, const double *y,
                                       const double *gate, double *dh, double *dy, double *dgate) {
    for (int n = 0; n < N; ++n)
        for (int d = 0; d < D; ++d) {
            double sum = 0.0;
            for (int t = 0; t < T; ++t) {
                size_t i = ((size_t)n * T + t) * D + d;
                dh[i] = dout[i];
                dy[i] = gate[(size_t)n * D + d] * dout[i];
                sum += dout[i] * y[i];
            }
            dgate[(size_t)n * D + d] = sum;
        }
}
