/* Embeddings: the 2-D sin-cos table against upstream's literal construction,
 * the timestep frequency kernel against the double oracle (t up to 999, odd
 * dim), label dropout determinism and rate, and the label table gather and
 * deterministic scatter-add against the oracle (plus finite differences). */
#include <string.h>

#include "digcl/embed.h"
#include "digcl/ref/embed.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

/* MAE/DiT get_2d_sincos_pos_embed written as upstream does it: grid =
 * meshgrid(arange(w), arange(h)) ('xy'), emb_h from grid[0], emb_w from
 * grid[1], concatenated; each 1-D part is [sin(pos omega), cos(pos omega)]
 * with omega = 1 / 10000^(arange(D/4) / (D/4)). */
static void upstream_pos_embed(int D, int grid_h, int grid_w, double *table) {
    const int half = D / 2, quarter = D / 4;
    for (int a = 0; a < grid_h; a++)
        for (int b = 0; b < grid_w; b++) {
            const double grid0 = b, grid1 = a; /* meshgrid(w, h): grid[0][a][b] = w[b] */
            double *row = table + ((size_t)a * (size_t)grid_w + (size_t)b) * (size_t)D;
            for (int k = 0; k < quarter; k++) {
                double omega = (double)k;
                omega /= D / 2.0 / 2.0;
                omega = 1.0 / pow(10000.0, omega);
                row[k] = sin(grid0 * omega);
                row[quarter + k] = cos(grid0 * omega);
                row[half + k] = sin(grid1 * omega);
                row[half + quarter + k] = cos(grid1 * omega);
            }
        }
}

static void test_pos_embed_table(void **state) {
    (void)state;
    const int cases[][3] = {{384, 16, 16}, {8, 3, 5}, {1152, 4, 4}};
    for (int c = 0; c < 3; c++) {
        const int D = cases[c][0], gh = cases[c][1], gw = cases[c][2];
        const size_t count = (size_t)gh * (size_t)gw * (size_t)D;
        double *want = test_zeros(count), *got = test_zeros(count);
        float *table = malloc(count * sizeof *table);
        upstream_pos_embed(D, gh, gw, want);
        digcl_ref_pos_embed_2d(D, gh, gw, got);
        for (size_t i = 0; i < count; i++) assert_true(fabs(got[i] - want[i]) < 1e-15);
        digcl_pos_embed_2d(D, gh, gw, table);
        test_assert_close("pos_embed float table", table, want, count, 1e-7);
        free(want), free(got), free(table);
    }
    /* token (row 0, column 1), D = 8: column part first */
    double table[3 * 5 * 8];
    digcl_ref_pos_embed_2d(8, 3, 5, table);
    assert_true(fabs(table[8 + 0] - sin(1.0)) < 1e-15 && fabs(table[8 + 2] - cos(1.0)) < 1e-15);
    assert_true(table[8 + 4] == 0.0 && table[8 + 6] == 1.0);
}

static void check_timestep(int N, int dim, const float *timesteps) {
    digcl_context *ctx = test_context();
    const size_t count = (size_t)N * (size_t)dim;
    float *frequencies = malloc((size_t)(dim / 2) * 2 * sizeof *frequencies);
    digcl_timestep_frequency_table(dim, frequencies);
    cl_mem d_t = test_upload(timesteps, (size_t)N);
    cl_mem d_f = test_upload(frequencies, (size_t)(dim / 2) * 2), out = test_poisoned(count);
    digcl_timestep_embed_forward(ctx, N, dim, d_t, d_f, out);
    double *w_t = test_widen(timesteps, (size_t)N), *want = test_zeros(count);
    digcl_ref_timestep_embed_forward(N, dim, w_t, want);
    float *got = test_download(out, count);
    char label[64];
    snprintf(label, sizeof label, "timestep_embed N%d dim%d", N, dim);
    test_assert_close(label, got, want, count, 1e-5);
    double worst = 0.0;
    for (size_t i = 0; i < count; i++) worst = fmax(worst, fabs(got[i] - want[i]));
    print_message("  %-48s max abs error %.2e\n", label, worst);
    assert_true(worst < 2e-6);
    free(frequencies), free(w_t), free(want), free(got);
    test_release(d_t), test_release(d_f), test_release(out);
}

static void test_timestep_embedding(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(701);
    float timesteps[67];
    for (int n = 0; n < 64; n++) timesteps[n] = (float)floor(test_uniform(&rng) * 1000.0);
    timesteps[64] = 0.0f, timesteps[65] = 999.0f, timesteps[66] = 1.5f;
    check_timestep(67, DIGCL_TIMESTEP_FREQUENCY_DIM, timesteps);
    check_timestep(7, 33, timesteps + 60); /* odd dim: zero last column */
}

static void test_label_dropout(void **state) {
    (void)state;
    enum { N = 20000, CLASSES = 1000 };
    int *labels = malloc(N * sizeof *labels), *first = malloc(N * sizeof *first);
    int *second = malloc(N * sizeof *second);
    for (int n = 0; n < N; n++) labels[n] = (n * 7919) % CLASSES;
    digcl_label_dropout(N, CLASSES, 0.1, 42, 7, 0, labels, first);
    digcl_label_dropout(N / 3, CLASSES, 0.1, 42, 7, 0, labels,
                        second); /* a batch split: same drops */
    digcl_label_dropout(N - N / 3, CLASSES, 0.1, 42, 7, N / 3, labels + N / 3, second + N / 3);
    assert_memory_equal(first, second, N * sizeof *first);
    int dropped = 0;
    for (int n = 0; n < N; n++) {
        dropped += first[n] == CLASSES;
        assert_true(first[n] == CLASSES || first[n] == labels[n]);
    }
    print_message("  label dropout p=0.1: %d of %d dropped\n", dropped, N);
    assert_true(dropped > 1800 && dropped < 2200);
    digcl_label_dropout(N, CLASSES, 0.1, 42, 8, 0, labels, second); /* another step, other drops */
    assert_true(memcmp(first, second, N * sizeof *first) != 0);
    digcl_label_dropout(N, CLASSES, 0.1, 43, 7, 0, labels, second); /* another seed, other drops */
    assert_true(memcmp(first, second, N * sizeof *first) != 0);
    digcl_label_dropout(N, CLASSES, 0.0, 42, 7, 0, labels, second); /* p = 0: no drops */
    assert_memory_equal(labels, second, N * sizeof *labels);
    free(labels), free(first), free(second);
}

typedef struct label_problem {
    int N, D;
    const int *labels;
    double *table, *out, *weights_of_loss;
} label_problem;

static double label_loss(void *arg) {
    label_problem *p = arg;
    digcl_ref_label_embed_forward(p->N, p->D, 0, p->labels, p->table, p->out);
    return test_weighted_sum(p->out, p->weights_of_loss, (size_t)p->N * (size_t)p->D);
}

static void test_label_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(702);
    const int labels[6] = {3, 0, 3, 4, 1, 3}; /* repeats; row 2 unused; 4 = null class */
    label_problem p = {6, 5, labels, test_zeros(25), test_zeros(30), test_zeros(30)};
    test_fill_normal_double(&rng, p.table, 25, 1.0);
    test_fill_normal_double(&rng, p.weights_of_loss, 30, 1.0);
    double *dtable = test_zeros(25);
    digcl_ref_label_embed_backward(6, 5, labels, p.weights_of_loss, dtable);
    test_check_gradient("label oracle d/dtable", label_loss, &p, p.table, dtable, 25, 25);
    free(p.table), free(p.out), free(p.weights_of_loss), free(dtable);
}

static void check_labels(int N, int D, int num_classes, test_rng *rng) {
    digcl_context *ctx = test_context();
    const int rows = num_classes + 1;
    const size_t table_count = (size_t)rows * (size_t)D, out_count = (size_t)N * (size_t)D;
    int *raw = malloc((size_t)N * sizeof *raw), *labels = malloc((size_t)N * sizeof *labels);
    for (int n = 0; n < N; n++)
        raw[n] = (int)(test_uniform(rng) * (num_classes < 4 ? num_classes : 4));
    digcl_label_dropout(N, num_classes, 0.3, 7, 0, 0, raw, labels);
    float *table = test_random_floats(rng, table_count, 1.0f),
          *dout = test_random_floats(rng, out_count, 1.0f);
    float *dtable0 = test_random_floats(rng, table_count, 1.0f),
          *base = test_random_floats(rng, out_count, 1.0f);
    digcl_buffer label_buffer = digcl_buffer_create(ctx, (size_t)N * sizeof(int), "test labels");
    digcl_write(ctx, label_buffer.mem, 0, (size_t)N * sizeof(int), labels);
    cl_mem d_table = test_upload(table, table_count), d_dout = test_upload(dout, out_count);
    cl_mem d_dtable = test_upload(dtable0, table_count), out = test_poisoned(out_count);
    cl_mem summed = test_upload(base, out_count);
    digcl_label_embed_forward(ctx, N, D, rows, 0, label_buffer.mem, d_table, out);
    digcl_label_embed_forward(ctx, N, D, rows, 1, label_buffer.mem, d_table, summed);
    digcl_label_embed_backward(ctx, N, D, rows, label_buffer.mem, d_dout, d_dtable);

    double *w_table = test_widen(table, table_count), *w_dout = test_widen(dout, out_count);
    double *want = test_zeros(out_count), *want_summed = test_widen(base, out_count);
    double *want_dtable = test_widen(dtable0, table_count);
    digcl_ref_label_embed_forward(N, D, 0, labels, w_table, want);
    digcl_ref_label_embed_forward(N, D, 1, labels, w_table, want_summed);
    digcl_ref_label_embed_backward(N, D, labels, w_dout, want_dtable);
    char label[64];
    snprintf(label, sizeof label, "label_embed N%d D%d classes%d", N, D, num_classes);
    float *got = test_download(out, out_count);
    test_assert_close(label, got, want, out_count, 1e-7);
    free(got);
    got = test_download(summed, out_count);
    test_assert_close("  accumulate", got, want_summed, out_count, 1e-5);
    free(got);
    got = test_download(d_dtable, table_count);
    test_assert_close("  dtable (accumulated)", got, want_dtable, table_count, 1e-4);
    free(got);
    free(raw), free(labels), free(table), free(dout), free(dtable0), free(base);
    free(w_table), free(w_dout), free(want), free(want_summed), free(want_dtable);
    digcl_buffer_release(&label_buffer);
    test_release(d_table), test_release(d_dout), test_release(d_dtable), test_release(out);
    test_release(summed);
}

static void test_label_kernels(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(703);
    check_labels(7, 33, 10, &rng);
    check_labels(1, 1, 1, &rng);
    check_labels(32, 384, 1000, &rng);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pos_embed_table), cmocka_unit_test(test_timestep_embedding),
        cmocka_unit_test(test_label_dropout),   cmocka_unit_test(test_label_oracle_gradients),
        cmocka_unit_test(test_label_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
