/* norm_ref.c: double references of LayerNorm, LayerNorm + modulate (unfused:
 * the composition of the two references) and RMSNorm x swish gate (digcl/norm.h). */
#include <math.h>
#include <stdlib.h>

#include "digcl/norm.h"
#include "digcl/ref/adaln.h"
#include "digcl/ref/norm.h"

void digcl_ref_layernorm_forward(int rows, int D, const double *x, double *y, double *mean,
                                 double *rstd) {
    for (int r = 0; r < rows; ++r) {
        const double *xr = x + (size_t)r * D;
        double sum = 0.0, sum_sq = 0.0;
        for (int d = 0; d < D; ++d) sum += xr[d];
        double mu = sum / D;
        for (int d = 0; d < D; ++d) sum_sq += (xr[d] - mu) * (xr[d] - mu);
        double rs = 1.0 / sqrt(sum_sq / D + (double)DIGCL_LAYERNORM_EPS);
        for (int d = 0; d < D; ++d) y[(size_t)r * D + d] = (xr[d] - mu) * rs;
        mean[r] = mu;
        rstd[r] = rs;
    }
}

/* dx = rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), xhat = (x - mean) * rstd. */
void digcl_ref_layernorm_backward(int rows, int D, const double *dy, const double *x,
                                  const double *mean, const double *rstd, double *dx) {
    for (int r = 0; r < rows; ++r) {
        const double *dyr = dy + (size_t)r * D, *xr = x + (size_t)r * D;
        double sum_dy = 0.0, sum_dy_xhat = 0.0;
        for (int d = 0; d < D; ++d) {
            double xhat = (xr[d] - mean[r]) * rstd[r];
            sum_dy += dyr[d];
            sum_dy_xhat += dyr[d] * xhat;
        }
        for (int d = 0; d < D; ++d) {
            double xhat = (xr[d] - mean[r]) * rstd[r];
            dx[(size_t)r * D + d] = rstd[r] * (dyr[d] - sum_dy / D - xhat * sum_dy_xhat / D);
        }
    }
}

void digcl_ref_layernorm_modulate_forward(int N, int T, int D, const double *x, const double *shift,
                                          const double *scale, double *y, double *mean,
                                          double *rstd) {
    size_t size = (size_t)N * T * D;
    double *normalized = malloc(size * sizeof *normalized);
    digcl_ref_layernorm_forward(N * T, D, x, normalized, mean, rstd);
    digcl_ref_modulate_forward(N, T, D, normalized, shift, scale, y);
    free(normalized);
}

void digcl_ref_layernorm_modulate_backward(int N, int T, int D, const double *dy, const double *x,
                                           const double *mean, const double *rstd,
                                           const double *scale, double *dx, double *dshift,
                                           double *dscale) {
    size_t size = (size_t)N * T * D;
    double *normalized = malloc(size * sizeof *normalized);
    double *dnormalized = malloc(size * sizeof *dnormalized);
    for (size_t i = 0; i < size; ++i) {
        size_t row = i / (size_t)D;
        normalized[i] = (x[i] - mean[row]) * rstd[row];
    }
    digcl_ref_modulate_backward(N, T, D, dy, normalized, scale, dnormalized, dshift, dscale);
    digcl_ref_layernorm_backward(N * T, D, dnormalized, x, mean, rstd, dx);
    free(normalized);
    free(dnormalized);
}

static double sigmoid(double x) { return 1.0 / (1.0 + exp(-x)); }

static double row_rstd(int V, const double *x) {
    double sum_sq = 0.0;
    for (int v = 0; v < V; ++v) sum_sq += x[v] * x[v];
    return 1.0 / sqrt(sum_sq / V + (double)DIGCL_RMSNORM_EPS);
}

void digcl_ref_rmsnorm_gate_forward(int rows, int V, const double *x, const double *gate,
                                    const double *weight, double *y) {
    for (int r = 0; r < rows; ++r) {
        const double *xr = x + (size_t)r * V, *gr = gate + (size_t)r * V;
        double rs = row_rstd(V, xr);
        for (int v = 0; v < V; ++v)
            y[(size_t)r * V + v] = xr[v] * rs * weight[v] * gr[v] * sigmoid(gr[v]);
    }
}

/* With xn = x * rstd and swish(g) = g sigmoid(g):
 *   dg = dy w xn swish'(g),  swish'(g) = s (1 + g (1 - s)),  s = sigmoid(g)
 *   dw += dy xn swish(g)
 *   dxn = dy w swish(g),  dx = rstd (dxn - xn mean(dxn xn)). */
void digcl_ref_rmsnorm_gate_backward(int rows, int V, const double *dy, const double *x,
                                     const double *gate, const double *weight, double *dx,
                                     double *dgate, double *dweight) {
    for (int r = 0; r < rows; ++r) {
        size_t base = (size_t)r * V;
        double rs = row_rstd(V, x + base), sum_dxn_xn = 0.0;
        for (int v = 0; v < V; ++v) {
            double g = gate[base + v], s = sigmoid(g), xn = x[base + v] * rs;
            double dxn = dy[base + v] * weight[v] * g * s;
            dgate[base + v] = dy[base + v] * weight[v] * xn * s * (1.0 + g * (1.0 - s));
            dweight[v] += dy[base + v] * xn * g * s;
            sum_dxn_xn += dxn * xn;
        }
        for (int v = 0; v < V; ++v) {
            double g = gate[base + v], xn = x[base + v] * rs;
            double dxn = dy[base + v] * weight[v] * g * sigmoid(g);
            dx[base + v] = rs * (dxn - xn * sum_dxn_xn / V);
        }
    }
}
