/* Host-side embedding tables and double references (include/digcl/embed.h;
 * DIG_MODEL.md §3.2–3.4). */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>

#include "digcl/embed.h"

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

void digcl_pos_embed_2d(int D, int grid_h, int grid_w, float *table) {
    const int quarter = D / 4;
    double *half_row = malloc((size_t)(2 * quarter + 1) * sizeof *half_row);
    for (int i = 0; i < grid_h; i++)
        for (int j = 0; j < grid_w; j++) {
            float *out = table + ((size_t)i * (size_t)grid_w + (size_t)j) * (size_t)D;
            sincos_1d((double)j, quarter, half_row);
            for (int k = 0; k < 2 * quarter; k++) out[k] = (float)half_row[k];
            sincos_1d((double)i, quarter, half_row);
            for (int k = 0; k < 2 * quarter; k++) out[2 * quarter + k] = (float)half_row[k];
        }
    free(half_row);
}

static double timestep_frequency(int k, int half) {
    return exp(-log(10000.0) * (double)k / (double)half);
}

void digcl_timestep_frequency_table(int dim, float *table) {
    const int half = dim / 2;
    for (int k = 0; k < half; k++) {
        const double f = timestep_frequency(k, half);
        table[k] = (float)f;
        table[half + k] = (float)(f - (double)(float)f);
    }
}

void digcl_ref_timestep_embed_forward(int N, int dim, const double *timesteps,
                                      double *embedding) {
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

double digcl_label_rng_uniform(uint64_t *rng_state) {
    uint64_t z = (*rng_state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * (1.0 / 9007199254740992.0); /* 53 bits */
}

void digcl_label_dropout(int N, int num_classes, double drop_prob, uint64_t *rng_state,
                         const int *labels, int *dropped) {
    for (int n = 0; n < N; n++) {
        const int drop = drop_prob > 0.0 && digcl_label_rng_uniform(rng_state) < drop_prob;
        dropped[n] = drop ? num_classes : labels[n];
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
