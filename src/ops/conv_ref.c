/* Double reference of the depthwise 3x3 convolution (include/digcl/conv.h). */
#include <stddef.h>

#include "digcl/conv.h"
#include "digcl/ref/conv.h"

/* Element index of grid cell (n, row, col), channel d, or -1 outside the grid. */
static long grid_index(const digcl_grid_shape *s, int n, int row, int col, int d) {
    if (row < 0 || row >= s->height || col < 0 || col >= s->width) return -1;
    return (((long)n * s->height + row) * s->width + col) * s->D + d;
}

void digcl_ref_depthwise_conv_forward(const digcl_grid_shape *s, const double *x,
                                      const double *weight, const double *bias, double *y) {
    for (int n = 0; n < s->N; n++)
        for (int row = 0; row < s->height; row++)
            for (int col = 0; col < s->width; col++)
                for (int d = 0; d < s->D; d++) {
                    double sum = bias[d];
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++) {
                            const long source = grid_index(s, n, row + a - 1, col + b - 1, d);
                            if (source >= 0) sum += weight[d * 9 + a * 3 + b] * x[source];
                        }
                    y[grid_index(s, n, row, col, d)] = sum;
                }
}

void digcl_ref_depthwise_conv_backward(const digcl_grid_shape *s, const double *x,
                                       const double *weight, const double *dy, double *dx,
                                       double *dweight, double *dbias) {
    const size_t count = (size_t)s->N * (size_t)s->height * (size_t)s->width * (size_t)s->D;
    for (size_t i = 0; i < count; i++) dx[i] = 0.0;
    for (int n = 0; n < s->N; n++)
        for (int row = 0; row < s->height; row++)
            for (int col = 0; col < s->width; col++)
                for (int d = 0; d < s->D; d++) {
                    const double g = dy[grid_index(s, n, row, col, d)];
                    dbias[d] += g;
                    for (int a = 0; a < 3; a++)
                        for (int b = 0; b < 3; b++) {
                            const long source = grid_index(s, n, row + a - 1, col + b - 1, d);
                            if (source < 0) continue;
                            dweight[d * 9 + a * 3 + b] += g * x[source];
                            dx[source] += g * weight[d * 9 + a * 3 + b];
                        }
                }
}
