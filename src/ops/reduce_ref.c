/* reduce_ref.c: double references of the reductions and the MSE loss (digcl/reduce.h). */
#include <math.h>

#include "digcl/reduce.h"
#include "digcl/ref/reduce.h"

void digcl_ref_column_sum(int batch, int rows, int cols, const double *x, double scale,
                          double *out) {
    for (int b = 0; b < batch; ++b)
        for (int c = 0; c < cols; ++c) {
            double sum = 0.0;
            for (int r = 0; r < rows; ++r) sum += x[((size_t)b * rows + r) * cols + c];
            out[(size_t)b * cols + c] = scale * sum;
        }
}

double digcl_ref_sum(int count, const double *x) {
    double sum = 0.0;
    for (int i = 0; i < count; ++i) sum += x[i];
    return sum;
}

double digcl_ref_global_norm(int count, const double *x) {
    double sum = 0.0;
    for (int i = 0; i < count; ++i) sum += x[i] * x[i];
    return sqrt(sum);
}

void digcl_ref_clip_by_norm(int count, double *x, double max_norm) {
    double coefficient = max_norm / (digcl_ref_global_norm(count, x) + (double)DIGCL_CLIP_EPS);
    if (coefficient > 1.0) coefficient = 1.0;
    for (int i = 0; i < count; ++i) x[i] *= coefficient;
}

double digcl_ref_mse_forward(int count, const double *prediction, const double *target) {
    double sum = 0.0;
    for (int i = 0; i < count; ++i)
        sum += (prediction[i] - target[i]) * (prediction[i] - target[i]);
    return sum / count;
}

void digcl_ref_mse_backward(int count, double dloss, const double *prediction, const double *target,
                            double *dprediction) {
    for (int i = 0; i < count; ++i)
        dprediction[i] = dloss * 2.0 * (prediction[i] - target[i]) / count;
}
