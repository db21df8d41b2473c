/* groupnorm_ref.c: the double reference of digcl/groupnorm.h. */
#include <math.h>

#include "digcl/groupnorm.h"
#include "digcl/ref/groupnorm.h"

void digcl_ref_groupnorm_forward(const digcl_groupnorm_shape *s, const double *x,
                                 const double *gamma, const double *beta, int silu, double *y) {
    const int Cg = s->C / s->groups;
    const size_t length = (size_t)Cg * s->pixels;
    for (int n = 0; n < s->N; ++n)
        for (int g = 0; g < s->groups; ++g) {
            const size_t base = ((size_t)n * s->C + (size_t)g * Cg) * s->pixels;
            double mean = 0.0, var = 0.0;
            for (size_t i = 0; i < length; ++i) mean += x[base + i];
            mean /= (double)length;
            for (size_t i = 0; i < length; ++i) var += (x[base + i] - mean) * (x[base + i] - mean);
            const double rstd = 1.0 / sqrt(var / (double)length + (double)s->eps);
            for (size_t i = 0; i < length; ++i) {
                const int c = g * Cg + (int)(i / (size_t)s->pixels);
                double v = (x[base + i] - mean) * rstd * gamma[c] + beta[c];
                y[base + i] = silu ? v / (1.0 + exp(-v)) : v;
            }
        }
}
