/* Double-precision oracles of the embeddings (include/digcl/embed.h;
 * docs/MODEL.md §3.2-3.4). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "digcl/embed.h"
#include "digcl/ref/embed.h"

/* One half of the 2-D table: the 1-D embedding of `position` over D/2 channels. */
static void sincos_1d(double position, int quarter, double *out /* [2*quarter] */) {
    for (int k = 0; k < quarter; k++) {
        const double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
        out[k] = sin(position * omega);
        out[quarter + k] = cos(position * omega);
    }
}

void digcl_ref_pos_embed_2d(int D, int grid_h, int grid_w, double *table) {
    const int quarter = D / 4;
    for (int i = 0; i < grid_h; i++)
        for (int j = 0; j < grid_w; j++) {
            double *row = table + ((size_t)i * (size_t)grid_w + (size_t)j) * (size_t)D;
            sincos_1d((double)j, quarter, row);               /* column index first */
            sincos_1d((double)i, quarter, row + 2 * quarter); /* then the row index */
        }
}

static double timestep_frequency(int k, int half) {
    return exp(-log(10000.0) * (double)k / (double)half);
}

void digcl_ref_timestep_embed_forward(int N, int dim, const double *timesteps, double *embedding) {
    const int half = dim / 2;
    for (int n = 0; n < N; n++) {
        double *row = embedding + (size_t)n * (size_t)dim;
        for (int k = 0; k < half; k++) {
            const double argument = timesteps[n] * timestep_frequency(k, half);
            row[k] = cos(argument);
            row[half + k] = sin(argument);
        }
        if (dim % 2) row[dim - 1] = 0.0;
    }
}

void digcl_ref_label_embed_forward(int N, int D, int accumulate, const int *labels,
                                   const double *table, double *out) {
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++) {
            const double value = table[(size_t)labels[n] * (size_t)D + (size_t)d];
            double *target = out + (size_t)n * (size_t)D + (size_t)d;
            *target = accumulate ? *target + value : value;
        }
}

void digcl_ref_label_embed_backward(int N, int D, const int *labels, const double *dout,
                                    double *dtable) {
    for (int n = 0; n < N; n++)
        for (int d = 0; d < D; d++)
            dtable[(size_t)labels[n] * (size_t)D + (size_t)d] +=
                dout[(size_t)n * (size_t)D + (size_t)d];
}
