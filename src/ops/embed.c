/* Host launchers for cl/embed.cl, and the host-side tables and label dropout
 * they need (include/digcl/embed.h). */
#include "digcl/embed.h"

#include <math.h>
#include <stdlib.h>

#include "digcl/rng.h"
#include "ops_common.h"

/* ------------------------------------------------------------ host tables */

void digcl_pos_embed_2d(int D, int grid_h, int grid_w, float *table) {
    const int quarter = D / 4;
    for (int i = 0; i < grid_h; i++)
        for (int j = 0; j < grid_w; j++) {
            float *row = table + ((size_t)i * (size_t)grid_w + (size_t)j) * (size_t)D;
            for (int k = 0; k < quarter; k++) {
                const double omega = 1.0 / pow(10000.0, (double)k / (double)quarter);
                row[k] = (float)sin(j * omega); /* the column index first */
                row[quarter + k] = (float)cos(j * omega);
                row[2 * quarter + k] = (float)sin(i * omega); /* then the row index */
                row[3 * quarter + k] = (float)cos(i * omega);
            }
        }
}

void digcl_timestep_frequency_table(int dim, float *table) {
    const int half = dim / 2;
    for (int k = 0; k < half; k++) {
        const double f = exp(-log(10000.0) * (double)k / (double)half);
        table[k] = (float)f;
        table[half + k] = (float)(f - (double)(float)f);
    }
}

void digcl_label_dropout(int N, int num_classes, double drop_prob, uint64_t seed, uint64_t step,
                         uint64_t first_sample, const int *labels, int *dropped) {
    const digcl_rng_key key = {seed, DIGCL_RNG_LABEL_DROP};
    for (int n = 0; n < N; n++) {
        const int drop =
            drop_prob > 0.0 &&
            digcl_rng_uniform_double(key, step, first_sample + (uint64_t)n, 0) < drop_prob;
        dropped[n] = drop ? num_classes : labels[n];
    }
}

/* ------------------------------------------------------------ launchers */

void digcl_timestep_embed_forward(digcl_context *ctx, int N, int dim, cl_mem timesteps,
                                  cl_mem frequency_table, cl_mem embedding) {
    if (N < 1 || dim < 2) digcl_fatal("timestep_embed: bad shape N=%d dim=%d", N, dim);
    cl_kernel kernel = digcl_kernel(ctx, "embed", "timestep_embed_forward", "");
    digcl_arg_mem(kernel, 0, timesteps);
    digcl_arg_mem(kernel, 1, frequency_table);
    digcl_arg_mem(kernel, 2, embedding);
    digcl_arg_int(kernel, 3, N);
    digcl_arg_int(kernel, 4, dim);
    const size_t columns = (size_t)(dim / 2 + dim % 2);
    const size_t local[2] = {64, 1};
    const size_t global[2] = {ops_round_up(columns, local[0]), (size_t)N};
    digcl_launch(ctx, kernel, "timestep_embed_forward", 2, global, local);
}

static void check_label_shape(const char *what, int N, int D, int rows) {
    if (N < 1 || D < 1 || rows < 1)
        digcl_fatal("%s: bad shape N=%d D=%d rows=%d", what, N, D, rows);
}

void digcl_label_embed_forward(digcl_context *ctx, int N, int D, int rows, int accumulate,
                               cl_mem labels, cl_mem table, cl_mem out) {
    check_label_shape("label_embed_forward", N, D, rows);
    cl_kernel kernel =
        digcl_kernel(ctx, "embed", "label_embed_forward", accumulate ? "-DACCUMULATE" : "");
    digcl_arg_mem(kernel, 0, labels);
    digcl_arg_mem(kernel, 1, table);
    digcl_arg_mem(kernel, 2, out);
    digcl_arg_int(kernel, 3, N);
    digcl_arg_int(kernel, 4, D);
    digcl_arg_int(kernel, 5, rows);
    const size_t local[2] = {64, 1};
    const size_t global[2] = {ops_round_up((size_t)D, local[0]), (size_t)N};
    digcl_launch(ctx, kernel, "label_embed_forward", 2, global, local);
}

void digcl_label_embed_backward(digcl_context *ctx, int N, int D, int rows, cl_mem labels,
                                cl_mem dout, cl_mem dtable) {
    check_label_shape("label_embed_backward", N, D, rows);
    cl_kernel kernel = digcl_kernel(ctx, "embed", "label_embed_backward", "");
    digcl_arg_mem(kernel, 0, labels);
    digcl_arg_mem(kernel, 1, dout);
    digcl_arg_mem(kernel, 2, dtable);
    digcl_arg_int(kernel, 3, N);
    digcl_arg_int(kernel, 4, D);
    digcl_arg_int(kernel, 5, rows);
    const size_t local[2] = {64, 4};
    const size_t global[2] = {ops_round_up((size_t)D, local[0]),
                              ops_round_up((size_t)rows, local[1])};
    digcl_launch(ctx, kernel, "label_embed_backward", 2, global, local);
}
