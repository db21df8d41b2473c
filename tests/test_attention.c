/* Tiled online-softmax attention against the naive double oracle (T = 1, 7,
 * 36, 257; dh = 32 and 64; H > 1, N > 1; register-block edges: T = 31..130,
 * dh = 4, 44, 68, 72, 96, 128), the oracle's backward against
 * finite differences, and a T = 4096 run whose device-memory peak shows that
 * no [T, T] buffer exists. */
#include <string.h>

#include "digcl/attention.h"
#include "digcl/ref/attention.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

static size_t qkv_count(const digcl_attention_shape *s) {
    return (size_t)s->N * (size_t)s->T * 3 * (size_t)s->H * (size_t)s->head_dim;
}

static size_t out_count(const digcl_attention_shape *s) {
    return (size_t)s->N * (size_t)s->T * (size_t)s->H * (size_t)s->head_dim;
}

static size_t stat_count(const digcl_attention_shape *s) {
    return (size_t)s->N * (size_t)s->H * (size_t)s->T;
}

/* ---------------------------------------------------------- oracle vs finite differences */

typedef struct attention_problem {
    digcl_attention_shape shape;
    double *qkv, *out, *weights_of_loss;
} attention_problem;

static double attention_loss(void *arg) {
    attention_problem *p = arg;
    digcl_ref_attention_forward(&p->shape, p->qkv, p->out, NULL);
    return test_weighted_sum(p->out, p->weights_of_loss, out_count(&p->shape));
}

static void test_attention_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(501);
    attention_problem p = {.shape = {2, 5, 2, 4}};
    const size_t count = qkv_count(&p.shape), outs = out_count(&p.shape);
    p.qkv = test_zeros(count);
    p.out = test_zeros(outs);
    p.weights_of_loss = test_zeros(outs);
    test_fill_normal_double(&rng, p.qkv, count, 1.0);
    test_fill_normal_double(&rng, p.weights_of_loss, outs, 1.0);
    double *dqkv = test_zeros(count);
    digcl_ref_attention_backward(&p.shape, p.qkv, p.weights_of_loss, dqkv);
    test_check_gradient("attention oracle d/dqkv", attention_loss, &p, p.qkv, dqkv, count, count);
    free(p.qkv), free(p.out), free(p.weights_of_loss), free(dqkv);
}

/* ---------------------------------------------------------- kernels vs oracle */

/* Copies part `which` (0 q, 1 k, 2 v) of a [N, T, 3, H, dh] array. */
static void extract_part(const digcl_attention_shape *s, int which, const float *packed_f,
                         const double *packed_d, float *out_f, double *out_d) {
    const size_t rows = (size_t)s->N * (size_t)s->T, width = (size_t)s->H * (size_t)s->head_dim;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < width; c++) {
            const size_t from = (r * 3 + (size_t)which) * width + c;
            if (packed_f) out_f[r * width + c] = packed_f[from];
            if (packed_d) out_d[r * width + c] = packed_d[from];
        }
}

static double norm2(const double *x, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += x[i] * x[i];
    return sqrt(sum);
}

/* Each of dq, dk, dv within 1e-4 relative L2. A part that is exactly zero (T = 1: one key,
 * P = 1, dS = 0) has no relative error; its error is measured against the norm of the whole
 * dqkv instead (a forward whose arithmetic differs from the backward's recomputation leaves
 * dS at rounding level there, not exactly 0). */
static void compare_dqkv(const digcl_attention_shape *s, const float *got, const double *want) {
    const size_t part = out_count(s);
    float *got_part = malloc(part * sizeof *got_part);
    double *want_part = malloc(part * sizeof *want_part);
    const char *labels[3] = {"  dq", "  dk", "  dv"};
    const double whole = norm2(want, qkv_count(s));
    for (int which = 0; which < 3; which++) {
        extract_part(s, which, got, want, got_part, want_part);
        if (norm2(want_part, part) > 0.0) {
            test_assert_close(labels[which], got_part, want_part, part, 1e-4);
            continue;
        }
        double sum = 0.0;
        for (size_t i = 0; i < part; i++) sum += (double)got_part[i] * got_part[i];
        const double error = isfinite(sum) ? sqrt(sum) / whole : INFINITY;
        print_message("  %-48s L2 %.3e of |dqkv| (exactly zero; tolerance 1e-04)\n", labels[which],
                      error);
        assert_true(error < 1e-4);
    }
    free(got_part), free(want_part);
}

static void check_attention(const digcl_attention_shape *s, test_rng *rng) {
    digcl_context *ctx = test_context();
    const size_t count = qkv_count(s), outs = out_count(s), stats = stat_count(s);
    float *qkv = test_random_floats(rng, count, 1.0f), *dout = test_random_floats(rng, outs, 1.0f);
    cl_mem d_qkv = test_upload(qkv, count), d_dout = test_upload(dout, outs);
    cl_mem out = test_poisoned(outs), lse = test_poisoned(stats), dqkv = test_poisoned(count);
    cl_mem workspace = test_poisoned(digcl_attention_backward_workspace_bytes(s) / sizeof(float));
    digcl_attention_forward(ctx, s, d_qkv, out, lse);
    digcl_attention_backward(ctx, s, d_qkv, out, lse, d_dout, dqkv, workspace);

    double *w_qkv = test_widen(qkv, count), *w_dout = test_widen(dout, outs);
    double *want_out = test_zeros(outs), *want_lse = test_zeros(stats);
    double *want_dqkv = test_zeros(count);
    digcl_ref_attention_forward(s, w_qkv, want_out, want_lse);
    digcl_ref_attention_backward(s, w_qkv, w_dout, want_dqkv);
    char label[96];
    snprintf(label, sizeof label, "attention N%d T%d H%d dh%d out", s->N, s->T, s->H, s->head_dim);
    float *got = test_download(out, outs);
    test_assert_close(label, got, want_out, outs, 1e-5);
    free(got);
    got = test_download(lse, stats);
    test_assert_close("  logsumexp", got, want_lse, stats, 1e-5);
    free(got);
    got = test_download(dqkv, count);
    test_assert_close("  dqkv", got, want_dqkv, count, 1e-4);
    compare_dqkv(s, got, want_dqkv);
    free(got);
    free(qkv), free(dout), free(w_qkv), free(w_dout), free(want_out), free(want_lse),
        free(want_dqkv);
    test_release(d_qkv), test_release(d_dout), test_release(out), test_release(lse);
    test_release(dqkv), test_release(workspace);
}

static void test_attention_kernels(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(502);
    const int tokens[4] = {1, 7, 36, 257}, head_dims[2] = {64, 32};
    for (int d = 0; d < 2; d++)
        for (int t = 0; t < 4; t++) {
            const digcl_attention_shape shape = {2, tokens[t], 3 - d, head_dims[d]};
            check_attention(&shape, &rng);
        }
    const digcl_attention_shape odd_head = {2, 37, 2, 72}; /* DiT-XL head size */
    check_attention(&odd_head, &rng);
    const digcl_attention_shape widest_head = {1, 33, 2, 128}; /* smallest tiles */
    check_attention(&widest_head, &rng);
}

/* Edges of the register-blocked kernels: 32-row / 32-key groups and 4-row
 * micro-tiles that T does not fill, head dims whose float4 columns do not
 * divide among the column groups (dh 4, 44: odd, 96), and dh > 64, where
 * the second row operand lives in local memory. */
static void test_attention_register_blocks(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(504);
    const digcl_attention_shape shapes[5] = {
        {1, 65, 1, 4}, {2, 70, 1, 44}, {1, 100, 2, 96}, {1, 130, 1, 64}, {3, 31, 1, 68},
    };
    for (int i = 0; i < 5; i++) check_attention(&shapes[i], &rng);
}

static void call_forward_with_head_dim_6(void *arg) {
    (void)arg;
    const digcl_attention_shape shape = {1, 4, 1, 6};
    digcl_attention_forward(test_context(), &shape, NULL, NULL, NULL);
}

/* head_dim 6 is not a multiple of 4: the launcher fails before any launch. */
static void test_attention_rejects_bad_head_dim(void **state) {
    (void)state;
    char message[512];
    assert_int_equal(test_expect_fatal(call_forward_with_head_dim_6, NULL, message, sizeof message),
                     1);
    assert_non_null(strstr(message, "head_dim"));
}

/* ---------------------------------------------------------- long sequence, O(T) memory */

/* dq of query row t from the oracle's forward row (O(T dh)). */
static void oracle_dq_row(const digcl_attention_shape *s, const double *qkv, const double *dout,
                          int t, double *dq) {
    const int dh = s->head_dim, stride = 3 * s->H * dh;
    const double scale = 1.0 / sqrt((double)dh);
    double *out_row = test_zeros((size_t)dh), lse = 0.0;
    digcl_ref_attention_forward_row(s, qkv, 0, t, 0, out_row, &lse);
    const double *q = qkv + (size_t)t * (size_t)stride, *g = dout + (size_t)t * (size_t)(s->H * dh);
    double delta = 0.0;
    for (int c = 0; c < dh; c++) delta += g[c] * out_row[c];
    for (int c = 0; c < dh; c++) dq[c] = 0.0;
    for (int j = 0; j < s->T; j++) {
        const double *k = qkv + (size_t)j * (size_t)stride + dh, *v = k + dh;
        double score = 0.0, dp = 0.0;
        for (int c = 0; c < dh; c++) score += q[c] * k[c], dp += g[c] * v[c];
        const double dscore = exp(scale * score - lse) * (dp - delta);
        for (int c = 0; c < dh; c++) dq[c] += scale * dscore * k[c];
    }
    free(out_row);
}

/* dk and dv of key row j (N = H = 1) given the oracle's out rows and
 * logsumexp of every query: O(T dh). */
static void oracle_dk_dv_row(const digcl_attention_shape *s, const double *qkv, const double *dout,
                             const double *out, const double *lse, int j, double *dk, double *dv) {
    const int dh = s->head_dim, stride = 3 * dh;
    const double scale = 1.0 / sqrt((double)dh);
    const double *k = qkv + (size_t)j * (size_t)stride + dh, *v = k + dh;
    for (int c = 0; c < dh; c++) dk[c] = dv[c] = 0.0;
    for (int i = 0; i < s->T; i++) {
        const double *q = qkv + (size_t)i * (size_t)stride, *g = dout + (size_t)i * (size_t)dh;
        const double *o = out + (size_t)i * (size_t)dh;
        double score = 0.0, dp = 0.0, delta = 0.0;
        for (int c = 0; c < dh; c++) score += q[c] * k[c], dp += g[c] * v[c], delta += g[c] * o[c];
        const double p = exp(scale * score - lse[i]), dscore = p * (dp - delta);
        for (int c = 0; c < dh; c++) dk[c] += scale * dscore * q[c], dv[c] += p * g[c];
    }
}

static void test_attention_long_sequence_memory(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    test_rng rng = test_rng_seeded(503);
    const digcl_attention_shape s = {1, 4096, 1, 64};
    const size_t count = qkv_count(&s), outs = out_count(&s), stats = stat_count(&s);
    float *qkv = test_random_floats(&rng, count, 1.0f),
          *dout = test_random_floats(&rng, outs, 1.0f);
    digcl_finish(ctx);
    digcl_memory_reset_peak(ctx);
    const uint64_t before = digcl_memory_stats_get(ctx).in_use_bytes;
    cl_mem d_qkv = test_upload(qkv, count), d_dout = test_upload(dout, outs);
    cl_mem out = test_poisoned(outs), lse = test_poisoned(stats), dqkv = test_poisoned(count);
    cl_mem workspace = test_poisoned(digcl_attention_backward_workspace_bytes(&s) / sizeof(float));
    digcl_finish(ctx);
    const uint64_t buffers = digcl_memory_stats_get(ctx).in_use_bytes - before;
    digcl_memory_reset_peak(ctx);
    digcl_attention_forward(ctx, &s, d_qkv, out, lse);
    digcl_attention_backward(ctx, &s, d_qkv, out, lse, d_dout, dqkv, workspace);
    digcl_finish(ctx);
    const uint64_t growth = digcl_memory_stats_get(ctx).peak_bytes - before - buffers;
    const double peak = (double)(buffers + growth);
    const double bound = 64.0 * s.T * s.H * s.head_dim * 4.0, square = (double)s.T * s.T * 4.0;
    print_message("  attention T=%d: device peak %.2f MiB for all buffers, %.0f bytes more during "
                  "the calls (bound %.1f MiB; T^2 floats %.1f MiB)\n",
                  s.T, peak / 1048576.0, (double)growth, bound / 1048576.0, square / 1048576.0);
    assert_true(growth == 0 && peak < bound && peak < square / 4.0);

    float *got_out = test_download(out, outs), *got_dqkv = test_download(dqkv, count);
    assert_true(test_all_finite(got_out, outs) && test_all_finite(got_dqkv, count));
    double *w_qkv = test_widen(qkv, count), *w_dout = test_widen(dout, outs);
    const int rows[6] = {0, 1, 777, 2048, 4000, 4095};
    enum { DH = 64 };
    float got_rows[6 * DH], got_dq[6 * DH];
    double want_rows[6 * DH], want_dq[6 * DH];
    for (int r = 0; r < 6; r++) {
        digcl_ref_attention_forward_row(&s, w_qkv, 0, rows[r], 0, want_rows + r * DH, NULL);
        oracle_dq_row(&s, w_qkv, w_dout, rows[r], want_dq + r * DH);
        for (int c = 0; c < DH; c++) {
            got_rows[r * DH + c] = got_out[(size_t)rows[r] * DH + (size_t)c];
            got_dq[r * DH + c] = got_dqkv[(size_t)rows[r] * 3 * DH + (size_t)c];
        }
    }
    test_assert_close("attention T4096 out (6 sampled rows)", got_rows, want_rows, 6 * DH, 1e-5);
    test_assert_close("attention T4096 dq (6 sampled rows)", got_dq, want_dq, 6 * DH, 1e-4);
    /* dk, dv of sampled keys need every query's out row and logsumexp. */
    double *all_out = test_zeros(outs), *all_lse = test_zeros((size_t)s.T);
    for (int t = 0; t < s.T; t++)
        digcl_ref_attention_forward_row(&s, w_qkv, 0, t, 0, all_out + (size_t)t * DH, all_lse + t);
    float got_dk[6 * DH], got_dv[6 * DH];
    double want_dk[6 * DH], want_dv[6 * DH];
    for (int r = 0; r < 6; r++) {
        oracle_dk_dv_row(&s, w_qkv, w_dout, all_out, all_lse, rows[r], want_dk + r * DH,
                         want_dv + r * DH);
        for (int c = 0; c < DH; c++) {
            got_dk[r * DH + c] = got_dqkv[((size_t)rows[r] * 3 + 1) * DH + (size_t)c];
            got_dv[r * DH + c] = got_dqkv[((size_t)rows[r] * 3 + 2) * DH + (size_t)c];
        }
    }
    test_assert_close("attention T4096 dk (6 sampled keys)", got_dk, want_dk, 6 * DH, 1e-4);
    test_assert_close("attention T4096 dv (6 sampled keys)", got_dv, want_dv, 6 * DH, 1e-4);
    free(all_out), free(all_lse);
    free(qkv), free(dout), free(got_out), free(got_dqkv), free(w_qkv), free(w_dout);
    test_release(d_qkv), test_release(d_dout), test_release(out), test_release(lse);
    test_release(dqkv), test_release(workspace);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attention_oracle_gradients),
        cmocka_unit_test(test_attention_kernels),
        cmocka_unit_test(test_attention_register_blocks),
        cmocka_unit_test(test_attention_rejects_bad_head_dim),
        cmocka_unit_test(test_attention_long_sequence_memory),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
