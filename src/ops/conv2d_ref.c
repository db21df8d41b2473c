/* conv2d_ref.c: the double reference of digcl/conv2d.h (direct loops). */
#include "digcl/conv2d.h"
#include "digcl/ref/conv2d.h"

void digcl_ref_conv2d_forward(const digcl_conv2d_shape *s, const double *x, const double *weight,
                              const double *bias, double *y) {
    const int Ho = digcl_conv2d_out_height(s), Wo = digcl_conv2d_out_width(s), K = s->K;
    for (int n = 0; n < s->N; ++n)
        for (int o = 0; o < s->O; ++o)
            for (int i = 0; i < Ho; ++i)
                for (int j = 0; j < Wo; ++j) {
                    double sum = bias ? bias[o] : 0.0;
                    for (int c = 0; c < s->C; ++c)
                        for (int a = 0; a < K; ++a) {
                            const int iy = i * s->stride + a - s->pad_top;
                            if (iy < 0 || iy >= s->H) continue;
                            for (int b = 0; b < K; ++b) {
                                const int ix = j * s->stride + b - s->pad_left;
                                if (ix < 0 || ix >= s->W) continue;
                                sum += weight[((size_t)(o * s->C + c) * K + a) * K + b] *
                                       x[((size_t)(n * s->C + c) * s->H + iy) * s->W + ix];
                            }
                        }
                    y[((size_t)(n * s->O + o) * Ho + i) * Wo + j] = sum;
                }
}
