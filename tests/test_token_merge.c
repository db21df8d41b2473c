/* U-DiG token rearrangements (include/digcl/token_merge.h): token merge and
 * depth-to-space against their definition and each other, scan-to-rows
 * against the SREM orders, the oracles' backward against finite differences,
 * and the kernels (overwrite and accumulate) against the oracles. */
#include "digcl/token_merge.h"
#include "digcl/ref/srem.h"
#include "digcl/ref/token_merge.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

/* Merge written from docs/MODEL.md "U-DiG": channel (2*dy + dx)*D + c of coarse
 * token (i, j) is channel c of fine token (2i + dy, 2j + dx). */
static void test_merge_matches_definition(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1501);
    const int N = 2, side = 6, D = 3, half = side / 2;
    const size_t count = (size_t)N * side * side * D;
    double *x = test_random_doubles(&rng, count), *y = test_zeros(count), *back = test_zeros(count);
    digcl_ref_token_merge_forward(N, side, D, x, y);
    for (int n = 0; n < N; n++)
        for (int i = 0; i < half; i++)
            for (int j = 0; j < half; j++)
                for (int dy = 0; dy < 2; dy++)
                    for (int dx = 0; dx < 2; dx++)
                        for (int c = 0; c < D; c++) {
                            size_t merged = ((size_t)(n * half + i) * half + j) * 4 * D +
                                            (size_t)(2 * dy + dx) * D + c;
                            size_t fine =
                                ((size_t)(n * side + 2 * i + dy) * side + 2 * j + dx) * D + c;
                            assert_true(y[merged] == x[fine]);
                        }
    digcl_ref_depth_to_space_forward(N, side, D, y,
                                     back); /* the inverse, same sub-position order */
    for (size_t k = 0; k < count; k++) assert_true(back[k] == x[k]);
    free(x), free(y), free(back);
}

/* A sequence left in order o by a stage (cells labelled through the SREM
 * cycle itself) comes back to R; every order, sides 1..7. */
static void test_scan_to_rows_restores_rows(void **state) {
    (void)state;
    for (int side = 1; side <= 7; side++) {
        const int T = side * side;
        double *tokens = test_zeros((size_t)T), *next = test_zeros((size_t)T),
               *rows = test_zeros((size_t)T);
        for (int t = 0; t < T; t++) tokens[t] = t;
        for (int blocks = 1; blocks <= 8; blocks++) {
            digcl_ref_srem_forward(digcl_srem_block_order(blocks - 1), 1, side, 1, tokens, next);
            for (int t = 0; t < T; t++) tokens[t] = next[t];
            digcl_scan_order order = digcl_srem_block_order(blocks);
            digcl_ref_scan_to_rows_forward(order, 1, side, 1, tokens, rows);
            for (int t = 0; t < T; t++) assert_int_equal((int)rows[t], t);
            digcl_ref_scan_to_rows_backward(order, 1, side, 1, rows, next);
            for (int t = 0; t < T; t++) assert_true(next[t] == tokens[t]);
        }
        free(tokens), free(next), free(rows);
    }
}

typedef enum which_op { OP_MERGE, OP_DEPTH_TO_SPACE, OP_SCAN } which_op;

typedef struct oracle_problem {
    which_op op;
    digcl_scan_order order;
    int N, side, D;
    double *x, *y, *weights_of_loss;
    size_t count;
} oracle_problem;

static void oracle_forward(const oracle_problem *p, const double *x, double *y) {
    if (p->op == OP_MERGE) digcl_ref_token_merge_forward(p->N, p->side, p->D, x, y);
    else if (p->op == OP_DEPTH_TO_SPACE)
        digcl_ref_depth_to_space_forward(p->N, p->side, p->D, x, y);
    else digcl_ref_scan_to_rows_forward(p->order, p->N, p->side, p->D, x, y);
}

static void oracle_backward(const oracle_problem *p, const double *dy, double *dx, int accumulate) {
    if (p->op == OP_MERGE) digcl_ref_token_merge_backward(p->N, p->side, p->D, dy, dx, accumulate);
    else if (p->op == OP_DEPTH_TO_SPACE)
        digcl_ref_depth_to_space_backward(p->N, p->side, p->D, dy, dx, accumulate);
    else digcl_ref_scan_to_rows_backward(p->order, p->N, p->side, p->D, dy, dx);
}

static double oracle_loss(void *arg) {
    oracle_problem *p = arg;
    oracle_forward(p, p->x, p->y);
    return test_weighted_sum(p->y, p->weights_of_loss, p->count);
}

static void test_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1502);
    const char *labels[] = {"token merge oracle d/dx", "depth-to-space oracle d/dx",
                            "scan-to-rows oracle d/dx"};
    for (int op = 0; op < 3; op++)
        for (int order = 0; order < (op == OP_SCAN ? 4 : 1); order++) {
            oracle_problem p = {
                (which_op)op, (digcl_scan_order)order, 2, 4, 3, NULL, NULL, NULL, 96};
            p.x = test_random_doubles(&rng, p.count);
            p.y = test_zeros(p.count);
            p.weights_of_loss = test_random_doubles(&rng, p.count);
            double *dx = test_zeros(p.count);
            oracle_backward(&p, p.weights_of_loss, dx, 0);
            test_check_gradient(labels[op], oracle_loss, &p, p.x, dx, p.count, p.count);
            free(p.x), free(p.y), free(p.weights_of_loss), free(dx);
        }
}

static void device_forward(const oracle_problem *p, cl_mem x, cl_mem y) {
    digcl_context *ctx = test_context();
    if (p->op == OP_MERGE) digcl_token_merge_forward(ctx, p->N, p->side, p->D, x, y);
    else if (p->op == OP_DEPTH_TO_SPACE)
        digcl_depth_to_space_forward(ctx, p->N, p->side, p->D, x, y);
    else digcl_scan_to_rows_forward(ctx, p->order, p->N, p->side, p->D, x, y);
}

static void device_backward(const oracle_problem *p, cl_mem dy, cl_mem dx, int accumulate) {
    digcl_context *ctx = test_context();
    if (p->op == OP_MERGE) digcl_token_merge_backward(ctx, p->N, p->side, p->D, dy, dx, accumulate);
    else if (p->op == OP_DEPTH_TO_SPACE)
        digcl_depth_to_space_backward(ctx, p->N, p->side, p->D, dy, dx, accumulate);
    else digcl_scan_to_rows_backward(ctx, p->order, p->N, p->side, p->D, dy, dx);
}

/* Forward, backward (overwrite) and, for merge / depth-to-space, backward accumulating onto random values. */
static void check_kernels(oracle_problem *p, test_rng *rng) {
    float *x = test_random_floats(rng, p->count, 1.0f),
          *dy = test_random_floats(rng, p->count, 1.0f);
    float *base = test_random_floats(rng, p->count, 1.0f);
    double *wide_x = test_widen(x, p->count), *wide_dy = test_widen(dy, p->count);
    double *want = test_zeros(p->count), *want_dx = test_widen(base, p->count);
    cl_mem d_x = test_upload(x, p->count), y = test_poisoned(p->count),
           d_dy = test_upload(dy, p->count);
    cl_mem dx = test_poisoned(p->count);
    char label[128];
    snprintf(label, sizeof label, "op %d order %d N%d side %d D%d", (int)p->op, (int)p->order, p->N,
             p->side, p->D);
    device_forward(p, d_x, y);
    oracle_forward(p, wide_x, want);
    float *got = test_download(y, p->count);
    test_assert_close(label, got, want, p->count, 1e-7);
    free(got);
    device_backward(p, d_dy, dx, 0);
    oracle_backward(p, wide_dy, want, 0);
    got = test_download(dx, p->count);
    test_assert_close("  backward", got, want, p->count, 1e-7);
    free(got);
    if (p->op != OP_SCAN) {
        test_release(dx);
        dx = test_upload(base, p->count);
        device_backward(p, d_dy, dx, 1);
        oracle_backward(p, wide_dy, want_dx, 1);
        got = test_download(dx, p->count);
        test_assert_close("  backward (accumulate)", got, want_dx, p->count, 1e-6);
        free(got);
    }
    free(x), free(dy), free(base), free(wide_x), free(wide_dy), free(want), free(want_dx);
    test_release(d_x), test_release(y), test_release(d_dy), test_release(dx);
}

static void test_kernels(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1503);
    const int shapes[][3] = {{1, 2, 1}, {2, 6, 33}, {3, 4, 384}, {1, 16, 7}, {2, 8, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int op = 0; op < 3; op++)
            for (int order = 0; order < (op == OP_SCAN ? 4 : 1); order++) {
                oracle_problem p = {(which_op)op,
                                    (digcl_scan_order)order,
                                    shapes[s][0],
                                    shapes[s][1],
                                    shapes[s][2],
                                    NULL,
                                    NULL,
                                    NULL,
                                    0};
                p.count = (size_t)p.N * p.side * p.side * p.D;
                check_kernels(&p, &rng);
            }
}

static void merge_odd_side(void *arg) {
    cl_mem *buffers = arg;
    digcl_token_merge_forward(test_context(), 1, 3, 1, buffers[0], buffers[1]);
}

static void test_odd_side_is_refused(void **state) {
    (void)state;
    char message[256];
    cl_mem buffers[2] = {test_poisoned(9), test_poisoned(9)};
    assert_int_equal(test_expect_fatal(merge_odd_side, buffers, message, sizeof message), 1);
    assert_non_null(strstr(message, "side must be even"));
    test_release(buffers[0]), test_release(buffers[1]);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_merge_matches_definition),
        cmocka_unit_test(test_scan_to_rows_restores_rows),
        cmocka_unit_test(test_oracle_gradients),
        cmocka_unit_test(test_kernels),
        cmocka_unit_test(test_odd_side_is_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
