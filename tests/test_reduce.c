/* Reductions and the MSE loss against the double oracle: column sums (one and
 * two stages, offsets, strides, accumulate, scale), sum, global norm, clip,
 * MSE forward/backward; determinism; the MSE oracle's backward against central
 * finite differences. */
#include <string.h>

#include "dense_helpers.h"
#include "digcl/reduce.h"
#include "digcl/ref/reduce.h"

static cl_mem workspace_for(size_t bytes) { return test_poisoned(bytes / sizeof(float) + 1); }

typedef struct column_case {
    int batch, rows, cols;
    float scale;
    int accumulate;
    size_t out_offset, out_row_stride; /* 0 stride: contiguous [batch, cols] */
} column_case;

static void run_column_case(test_rng *rng, const column_case *c) {
    const size_t x_offset = 3, x_count = (size_t)c->batch * c->rows * c->cols;
    const size_t stride = c->out_row_stride ? c->out_row_stride : (size_t)c->cols;
    const size_t out_count = c->out_offset + (size_t)(c->batch - 1) * stride + c->cols;
    float *x = test_random_floats(rng, x_offset + x_count, 1.0f);
    float *prior = test_random_floats(rng, out_count, 1.0f);
    double *x_wide = test_widen(x + x_offset, x_count);
    double *sums = test_zeros((size_t)c->batch * c->cols);
    double *want = test_widen(prior, out_count);
    digcl_ref_column_sum(c->batch, c->rows, c->cols, x_wide, c->scale, sums);
    for (int b = 0; b < c->batch; ++b)
        for (int j = 0; j < c->cols; ++j) {
            double *slot = &want[c->out_offset + b * stride + j];
            *slot = (c->accumulate ? *slot : 0.0) + sums[(size_t)b * c->cols + j];
        }
    cl_mem x_mem = test_upload(x, x_offset + x_count), out = test_upload(prior, out_count);
    size_t bytes = digcl_column_sum_workspace_bytes(c->batch, c->rows, c->cols);
    cl_mem workspace = bytes ? workspace_for(bytes + 64) : NULL;
    digcl_column_sum(test_context(), c->batch, c->rows, c->cols, x_mem, x_offset, c->scale, out,
                     c->out_offset, stride, c->accumulate, workspace, 16);
    char label[96];
    snprintf(label, sizeof label, "column_sum %dx%dx%d acc=%d", c->batch, c->rows, c->cols,
             c->accumulate);
    dense_expect(label, out, want, out_count, DENSE_FORWARD_TOLERANCE);
    test_release(x_mem), test_release(out);
    if (workspace) test_release(workspace);
    free(x), free(prior), free(x_wide), free(sums), free(want);
}

static void test_column_sum(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(11);
    const column_case cases[] = {
        {1, 1, 1, 1.0f, 0, 0, 0},    {3, 7, 33, 1.0f, 0, 0, 0},   {2, 36, 384, 0.25f, 1, 5, 1000},
        {1, 257, 33, 1.0f, 1, 0, 0}, {2, 1000, 5, 0.5f, 0, 2, 9}, {1, 8192, 3, 1.0f, 1, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_column_case(&rng, &cases[i]);
}

static const int total_counts[] = {1, 7, 33, 1001, 4096, 262147};

static void test_sum_norm_mse(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(12);
    digcl_context *ctx = test_context();
    for (size_t k = 0; k < sizeof total_counts / sizeof total_counts[0]; ++k) {
        const int n = total_counts[k];
        float *x = test_random_floats(&rng, (size_t)n, 1.0f),
              *y = test_random_floats(&rng, (size_t)n, 1.0f);
        double *xw = test_widen(x, (size_t)n), *yw = test_widen(y, (size_t)n);
        cl_mem xm = test_upload(x, (size_t)n), ym = test_upload(y, (size_t)n);
        cl_mem result = test_poisoned(4),
               workspace = workspace_for(digcl_reduce_workspace_bytes(n));
        digcl_sum(ctx, n, xm, 1.0f / (float)n, result, 0, workspace);
        digcl_global_norm(ctx, n, xm, result, 1, workspace);
        digcl_mse_forward(ctx, n, xm, ym, result, 2, workspace);
        double want[3] = {digcl_ref_sum(n, xw) / n, digcl_ref_global_norm(n, xw),
                          digcl_ref_mse_forward(n, xw, yw)};
        char label[64];
        snprintf(label, sizeof label, "mean n=%d", n);
        dense_expect_at(label, result, 0, &want[0], 1, DENSE_FORWARD_TOLERANCE);
        snprintf(label, sizeof label, "global_norm n=%d", n);
        dense_expect_at(label, result, 1, &want[1], 1, DENSE_FORWARD_TOLERANCE);
        snprintf(label, sizeof label, "mse n=%d", n);
        dense_expect_at(label, result, 2, &want[2], 1, DENSE_FORWARD_TOLERANCE);
        assert_true(fabs(digcl_read_scalar(ctx, result, 1) - want[1]) <= 1e-5 * want[1]);
        test_release(xm), test_release(ym), test_release(result), test_release(workspace);
        free(x), free(y), free(xw), free(yw);
    }
}

static void test_norm_is_deterministic(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(13);
    const int n = 1 << 20;
    float *x = test_random_floats(&rng, (size_t)n, 1.0f);
    cl_mem xm = test_upload(x, (size_t)n), result = test_poisoned(2);
    cl_mem workspace = workspace_for(digcl_reduce_workspace_bytes(n));
    digcl_global_norm(test_context(), n, xm, result, 0, workspace);
    digcl_global_norm(test_context(), n, xm, result, 1, workspace);
    float *got = test_download(result, 2);
    assert_memory_equal(&got[0], &got[1], sizeof(float));
    test_release(xm), test_release(result), test_release(workspace);
    free(x), free(got);
}

static void test_clip_by_norm(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(14);
    digcl_context *ctx = test_context();
    const int counts[] = {7, 4096};
    const float max_norms[] = {0.5f, 1e6f}; /* clipped, untouched */
    for (int k = 0; k < 2; ++k)
        for (int m = 0; m < 2; ++m) {
            const int n = counts[k];
            float *x = test_random_floats(&rng, (size_t)n, 1.0f);
            double *want = test_widen(x, (size_t)n);
            digcl_ref_clip_by_norm(n, want, max_norms[m]);
            cl_mem xm = test_upload(x, (size_t)n), norm = test_poisoned(1);
            cl_mem workspace = workspace_for(digcl_reduce_workspace_bytes(n));
            digcl_global_norm(ctx, n, xm, norm, 0, workspace);
            digcl_clip_by_norm(ctx, n, xm, norm, 0, max_norms[m]);
            char label[64];
            snprintf(label, sizeof label, "clip_by_norm n=%d max=%g", n, max_norms[m]);
            dense_expect(label, xm, want, (size_t)n, DENSE_FORWARD_TOLERANCE);
            test_release(xm), test_release(norm), test_release(workspace);
            free(x), free(want);
        }
}

static void test_mse_backward(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(15);
    for (int accumulate = 0; accumulate <= 1; ++accumulate)
        for (size_t k = 0; k < 4; ++k) {
            const int n = total_counts[k + 1];
            float *p = test_random_floats(&rng, (size_t)n, 1.0f),
                  *t = test_random_floats(&rng, (size_t)n, 1.0f);
            float *prior = test_random_floats(&rng, (size_t)n, 1.0f);
            double *pw = test_widen(p, (size_t)n), *tw = test_widen(t, (size_t)n);
            double *want = test_zeros((size_t)n);
            digcl_ref_mse_backward(n, 0.75, pw, tw, want);
            for (int i = 0; accumulate && i < n; ++i) want[i] += prior[i];
            cl_mem pm = test_upload(p, (size_t)n), tm = test_upload(t, (size_t)n);
            cl_mem dp = accumulate ? test_upload(prior, (size_t)n) : test_poisoned((size_t)n);
            digcl_mse_backward(test_context(), n, 0.75f, pm, tm, dp, accumulate);
            char label[64];
            snprintf(label, sizeof label, "mse_backward n=%d acc=%d", n, accumulate);
            dense_expect(label, dp, want, (size_t)n, DENSE_BACKWARD_TOLERANCE);
            test_release(pm), test_release(tm), test_release(dp);
            free(p), free(t), free(prior), free(pw), free(tw), free(want);
        }
}

typedef struct mse_problem {
    int n;
    double *prediction, *target;
} mse_problem;

static double mse_loss(void *problem) {
    mse_problem *p = problem;
    return digcl_ref_mse_forward(p->n, p->prediction, p->target);
}

static void test_mse_oracle_gradient(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(16);
    mse_problem p = {37, NULL, NULL};
    p.prediction = test_random_doubles(&rng, 37);
    p.target = test_random_doubles(&rng, 37);
    double *analytic = test_zeros(37);
    digcl_ref_mse_backward(p.n, 1.0, p.prediction, p.target, analytic);
    test_check_gradient("mse oracle d/dprediction", mse_loss, &p, p.prediction, analytic, 37, 37);
    free(p.prediction), free(p.target), free(analytic);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_column_sum),
        cmocka_unit_test(test_sum_norm_mse),
        cmocka_unit_test(test_norm_is_deterministic),
        cmocka_unit_test(test_clip_by_norm),
        cmocka_unit_test(test_mse_backward),
        cmocka_unit_test(test_mse_oracle_gradient),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
