/* Naive (materialised) attention, digcl_attention_naive_* and its row softmax:
 * the softmax oracle's backward against finite differences; the softmax
 * kernels against the oracle (row lengths 1 to 1000, rows shifted by +-100
 * that overflow without the max subtraction); and the whole naive forward and
 * backward against the double attention oracle that also checks the tiled
 * kernels (dh 32, 64, 72; odd T 37 and 257; T = 1; batches over heads and
 * over samples), the saved probabilities against the oracle's softmax. Every
 * output is poisoned first; rel L2 < 1e-5 forward, < 1e-4 backward. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/attention.h"
#include "digcl/ref/attention.h"
#include "test_util.h"

static size_t qkv_count(const digcl_attention_shape *s) {
    return (size_t)s->N * (size_t)s->T * 3 * (size_t)s->H * (size_t)s->head_dim;
}

static size_t out_count(const digcl_attention_shape *s) {
    return (size_t)s->N * (size_t)s->T * (size_t)s->H * (size_t)s->head_dim;
}

/* ---------------------------------------------------------- softmax oracle vs finite differences */

typedef struct softmax_problem {
    size_t rows;
    int cols;
    double *x, *p, *weights_of_loss;
} softmax_problem;

static double softmax_loss(void *arg) {
    softmax_problem *s = arg;
    digcl_ref_softmax_rows_forward(s->rows, s->cols, s->x, s->p);
    return test_weighted_sum(s->p, s->weights_of_loss, s->rows * (size_t)s->cols);
}

static void test_softmax_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(601);
    softmax_problem s = {3, 7, NULL, NULL, NULL};
    const size_t count = s.rows * (size_t)s.cols;
    s.x = test_random_doubles(&rng, count);
    s.weights_of_loss = test_random_doubles(&rng, count);
    s.p = test_zeros(count);
    double *dx = test_zeros(count);
    softmax_loss(&s);
    digcl_ref_softmax_rows_backward(s.rows, s.cols, s.p, s.weights_of_loss, dx);
    test_check_gradient("softmax oracle d/dx", softmax_loss, &s, s.x, dx, count, count);
    free(s.x), free(s.p), free(s.weights_of_loss), free(dx);
}

/* ---------------------------------------------------------- softmax kernels vs oracle */

static void check_softmax(size_t rows, int cols, test_rng *rng) {
    digcl_context *ctx = test_context();
    const size_t count = rows * (size_t)cols;
    float *x = test_random_floats(rng, count, 3.0f), *dp = test_random_floats(rng, count, 1.0f);
    for (int j = 0; j < cols; j++) { /* exp overflows or underflows without the max shift */
        x[j] += 100.0f;
        if (rows > 1) x[(size_t)cols + (size_t)j] -= 100.0f;
    }
    double *want_p = test_zeros(count), *w_x = test_widen(x, count);
    digcl_ref_softmax_rows_forward(rows, cols, w_x, want_p);
    cl_mem d_x = test_upload(x, count);
    digcl_softmax_rows_forward(ctx, rows, cols, d_x);
    float *got_p = test_download(d_x, count);
    char label[96];
    snprintf(label, sizeof label, "softmax rows %zu cols %d forward", rows, cols);
    test_assert_close(label, got_p, want_p, count, 1e-5);

    /* backward from the kernel's own p (the oracle gets the same floats) */
    double *w_p = test_widen(got_p, count), *w_dp = test_widen(dp, count);
    double *want_dx = test_zeros(count);
    digcl_ref_softmax_rows_backward(rows, cols, w_p, w_dp, want_dx);
    cl_mem d_dp = test_upload(dp, count);
    digcl_softmax_rows_backward(ctx, rows, cols, d_x, d_dp);
    float *got_dx = test_download(d_dp, count);
    snprintf(label, sizeof label, "softmax rows %zu cols %d backward", rows, cols);
    if (cols > 1) test_assert_close(label, got_dx, want_dx, count, 1e-4);
    else /* one column: p = 1, dx = 0 exactly */
        for (size_t i = 0; i < count; i++) assert_true(got_dx[i] == 0.0f);
    free(x), free(dp), free(want_p), free(w_x), free(got_p), free(w_p), free(w_dp);
    free(want_dx), free(got_dx);
    test_release(d_x), test_release(d_dp);
}

static void test_softmax_kernels(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(602);
    const size_t rows[6] = {5, 7, 4, 3, 2, 3};
    const int cols[6] = {1, 37, 64, 257, 1000, 31};
    for (int i = 0; i < 6; i++) check_softmax(rows[i], cols[i], &rng);
}

/* ---------------------------------------------------------- naive attention vs oracle */

/* probs [N, H, T, T] = softmax_rows(scale q k^T), in double. */
static void oracle_probs(const digcl_attention_shape *s, const double *qkv, double *probs) {
    const int T = s->T, dh = s->head_dim, H = s->H;
    const double scale = 1.0 / sqrt((double)dh);
    const size_t stride = 3 * (size_t)H * (size_t)dh;
    for (int n = 0; n < s->N; n++)
        for (int h = 0; h < H; h++) {
            const double *base = qkv + (size_t)n * (size_t)T * stride + (size_t)h * (size_t)dh;
            double *plane = probs + ((size_t)n * (size_t)H + (size_t)h) * (size_t)T * (size_t)T;
            for (int i = 0; i < T; i++)
                for (int j = 0; j < T; j++) {
                    const double *q = base + (size_t)i * stride;
                    const double *k = base + (size_t)j * stride + (size_t)H * (size_t)dh;
                    double dot = 0.0;
                    for (int c = 0; c < dh; c++) dot += q[c] * k[c];
                    plane[(size_t)i * (size_t)T + (size_t)j] = scale * dot;
                }
        }
    const size_t rows = (size_t)s->N * (size_t)H * (size_t)T;
    digcl_ref_softmax_rows_forward(rows, T, probs, probs);
}

static void check_naive(const digcl_attention_shape *s, test_rng *rng) {
    digcl_context *ctx = test_context();
    const size_t count = qkv_count(s), outs = out_count(s);
    const size_t squares = digcl_attention_naive_probs_floats(s);
    assert_int_equal(squares, (size_t)s->N * s->H * s->T * s->T);
    float *qkv = test_random_floats(rng, count, 1.0f), *dout = test_random_floats(rng, outs, 1.0f);
    cl_mem d_qkv = test_upload(qkv, count), d_dout = test_upload(dout, outs);
    cl_mem out = test_poisoned(outs), probs = test_poisoned(squares);
    cl_mem dqkv = test_poisoned(count), dprobs = test_poisoned(squares);
    digcl_attention_naive_forward(ctx, s, d_qkv, out, probs);
    digcl_attention_naive_backward(ctx, s, d_qkv, probs, d_dout, dqkv, dprobs);

    double *w_qkv = test_widen(qkv, count), *w_dout = test_widen(dout, outs);
    double *want_out = test_zeros(outs), *want_probs = test_zeros(squares);
    double *want_dqkv = test_zeros(count);
    digcl_ref_attention_forward(s, w_qkv, want_out, NULL);
    digcl_ref_attention_backward(s, w_qkv, w_dout, want_dqkv);
    oracle_probs(s, w_qkv, want_probs);
    char label[96];
    snprintf(label, sizeof label, "naive attention N%d T%d H%d dh%d out", s->N, s->T, s->H,
             s->head_dim);
    float *got = test_download(out, outs);
    test_assert_close(label, got, want_out, outs, 1e-5);
    free(got);
    got = test_download(probs, squares);
    test_assert_close("  probs (saved)", got, want_probs, squares, 1e-5);
    free(got);
    got = test_download(dqkv, count);
    test_assert_close("  dqkv", got, want_dqkv, count, 1e-4);
    free(got);
    free(qkv), free(dout), free(w_qkv), free(w_dout), free(want_out), free(want_probs);
    free(want_dqkv);
    test_release(d_qkv), test_release(d_dout), test_release(out), test_release(probs);
    test_release(dqkv), test_release(dprobs);
}

/* H >= N batches the GEMMs over heads, N > H over samples: both are covered. */
static void test_naive_attention(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(603);
    const digcl_attention_shape shapes[] = {
        {2, 37, 3, 32},  /* over heads */
        {2, 37, 2, 64},  /* over heads, N = H */
        {3, 37, 2, 72},  /* over samples; DiT-XL head size */
        {2, 1, 3, 64},   /* one token: P = 1 */
        {3, 257, 1, 32}, /* over samples, long odd T */
        {1, 16, 4, 6},   /* a head size the tiled kernels refuse */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_naive(&shapes[i], &rng);
}

/* The saved probabilities are what the backward reads: a backward from
 * other probabilities gives other gradients (dq, dk and dv all use P). */
static void test_naive_backward_reads_probs(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    test_rng rng = test_rng_seeded(604);
    const digcl_attention_shape s = {1, 9, 2, 8};
    const size_t count = qkv_count(&s), outs = out_count(&s);
    const size_t squares = digcl_attention_naive_probs_floats(&s);
    float *qkv = test_random_floats(&rng, count, 1.0f),
          *dout = test_random_floats(&rng, outs, 1.0f);
    cl_mem d_qkv = test_upload(qkv, count), d_dout = test_upload(dout, outs);
    cl_mem out = test_poisoned(outs), probs = test_poisoned(squares);
    cl_mem dqkv = test_poisoned(count), dprobs = test_poisoned(squares);
    digcl_attention_naive_forward(ctx, &s, d_qkv, out, probs);
    digcl_attention_naive_backward(ctx, &s, d_qkv, probs, d_dout, dqkv, dprobs);
    float *first = test_download(dqkv, count);
    float *uniform = malloc(squares * sizeof *uniform);
    for (size_t i = 0; i < squares; i++) uniform[i] = 1.0f / (float)s.T;
    digcl_write(ctx, probs, 0, squares * sizeof *uniform, uniform);
    test_poison(dqkv, count);
    digcl_attention_naive_backward(ctx, &s, d_qkv, probs, d_dout, dqkv, dprobs);
    float *second = test_download(dqkv, count);
    assert_true(test_all_finite(second, count));
    const double change = test_rel_l2_f(second, first, count);
    print_message("  backward with uniform P differs by rel L2 %.3f\n", change);
    assert_true(change > 0.1);
    free(qkv), free(dout), free(first), free(uniform), free(second);
    test_release(d_qkv), test_release(d_dout), test_release(out), test_release(probs);
    test_release(dqkv), test_release(dprobs);
}

static void call_forward_with_zero_heads(void *arg) {
    (void)arg;
    const digcl_attention_shape shape = {1, 4, 0, 8};
    digcl_attention_naive_forward(test_context(), &shape, NULL, NULL, NULL);
}

static void test_naive_rejects_bad_shape(void **state) {
    (void)state;
    char message[512];
    assert_int_equal(test_expect_fatal(call_forward_with_zero_heads, NULL, message, sizeof message),
                     1);
    assert_non_null(strstr(message, "naive attention"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_softmax_oracle_gradients),
        cmocka_unit_test(test_softmax_kernels),
        cmocka_unit_test(test_naive_attention),
        cmocka_unit_test(test_naive_backward_reads_probs),
        cmocka_unit_test(test_naive_rejects_bad_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
