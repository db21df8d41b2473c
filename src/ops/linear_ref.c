/* linear_ref.c: double reference of nn.Linear (digcl/linear.h). */
#include "digcl/linear.h"
#include "digcl/ref/linear.h"

void digcl_ref_linear_forward(digcl_linear_shape shape, const double *x, const double *weight,
                              const double *bias, double *y) {
    for (int r = 0; r < shape.rows; ++r)
        for (int o = 0; o < shape.out; ++o) {
            double sum = bias ? bias[o] : 0.0;
            for (int i = 0; i < shape.in; ++i)
                sum += x[(size_t)r * shape.in + i] * weight[(size_t)o * shape.in + i];
            y[(size_t)r * shape.out + o] = sum;
        }
}

void digcl_ref_linear_backward(digcl_linear_shape shape, const double *dy, const double *x,
                               const double *weight, double *dx, double *dweight, double *dbias) {
    for (int r = 0; dx && r < shape.rows; ++r)
        for (int i = 0; i < shape.in; ++i) {
            double sum = 0.0;
            for (int o = 0; o < shape.out; ++o)
                sum += dy[(size_t)r * shape.out + o] * weight[(size_t)o * shape.in + i];
            dx[(size_t)r * shape.in + i] = sum;
        }
    for (int o = 0; dweight && o < shape.out; ++o)
        for (int i = 0; i < shape.in; ++i) {
            double sum = 0.0;
            for (int r = 0; r < shape.rows; ++r)
                sum += dy[(size_t)r * shape.out + o] * x[(size_t)r * shape.in + i];
            dweight[(size_t)o * shape.in + i] += sum;
        }
    for (int o = 0; dbias && o < shape.out; ++o) {
        double sum = 0.0;
        for (int r = 0; r < shape.rows; ++r) sum += dy[(size_t)r * shape.out + o];
        dbias[o] += sum;
    }
}
