/* SREM scan reorientation: the index maps against upstream's literal flip and
 * transpose, the R -> Rr -> C -> Cr -> R cycle over blocks 0..3, the kernels
 * against the oracle (forward and backward = inverse), and the oracle's
 * backward against finite differences. */
#include "digcl/srem.h"
#include "digcl/ref/srem.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

/* Upstream (models_dig.py): x = x.flip([1]); if i % 2 == 1: x = x.reshape(N, E, E, D)
 * .transpose(1, 2).reshape(N, T, D). Written out literally in double. */
static void upstream_reorient(int block, int N, int side, int D, const double *x, double *y) {
    const size_t T = (size_t)side * (size_t)side;
    double *flipped = test_zeros((size_t)N * T * (size_t)D);
    for (size_t n = 0; n < (size_t)N; n++)
        for (size_t t = 0; t < T; t++)
            for (size_t d = 0; d < (size_t)D; d++)
                flipped[(n * T + t) * (size_t)D + d] = x[(n * T + (T - 1 - t)) * (size_t)D + d];
    for (size_t n = 0; n < (size_t)N; n++)
        for (size_t a = 0; a < (size_t)side; a++)
            for (size_t b = 0; b < (size_t)side; b++)
                for (size_t d = 0; d < (size_t)D; d++) {
                    /* y[n, a, b] = flipped[n, b, a] for odd blocks */
                    const size_t source = block % 2 ? b * (size_t)side + a : a * (size_t)side + b;
                    y[(n * T + a * (size_t)side + b) * (size_t)D + d] =
                        flipped[(n * T + source) * (size_t)D + d];
                }
    free(flipped);
}

static void test_srem_matches_upstream(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(601);
    const int N = 2, side = 5, D = 3;
    const size_t count = (size_t)N * side * side * D;
    double *x = test_zeros(count), *want = test_zeros(count), *got = test_zeros(count);
    test_fill_normal_double(&rng, x, count, 1.0);
    for (int block = 0; block < 4; block++) {
        upstream_reorient(block, N, side, D, x, want);
        digcl_ref_srem_forward(digcl_srem_block_order(block), N, side, D, x, got);
        for (size_t i = 0; i < count; i++) assert_true(got[i] == want[i]);
        /* the backward map inverts the forward map */
        digcl_ref_srem_backward(digcl_srem_block_order(block), N, side, D, want, got);
        for (size_t i = 0; i < count; i++) assert_true(got[i] == x[i]);
    }
    free(x), free(want), free(got);
}

/* Tokens carry their grid cell; after each block's reorientation the
 * sequence must be in the order the next block is said to see. */
static void test_srem_cycle_returns_to_rows(void **state) {
    (void)state;
    const int sides[3] = {1, 4, 7};
    for (int s = 0; s < 3; s++) {
        const int side = sides[s], T = side * side;
        double *tokens = test_zeros((size_t)T), *next = test_zeros((size_t)T);
        for (int t = 0; t < T; t++) tokens[t] = t; /* R order: cell index */
        for (int block = 0; block < 8; block++) {
            const digcl_scan_order order = digcl_srem_block_order(block);
            for (int t = 0; t < T; t++)
                assert_int_equal((int)tokens[t], digcl_scan_order_grid_index(order, side, t));
            digcl_ref_srem_forward(digcl_srem_block_order(block), 1, side, 1, tokens, next);
            for (int t = 0; t < T; t++) tokens[t] = next[t];
            if (block % 4 == 3)
                for (int t = 0; t < T; t++) assert_int_equal((int)tokens[t], t); /* back to R */
        }
        free(tokens), free(next);
    }
    assert_string_equal(digcl_scan_order_name(digcl_srem_block_order(2)), "C");
    assert_string_equal(digcl_scan_order_name(digcl_srem_block_order(7)), "Cr");
}

typedef struct srem_problem {
    int block;
    double *x, *y, *weights_of_loss;
} srem_problem;

static double srem_loss(void *arg) {
    srem_problem *p = arg;
    digcl_ref_srem_forward(digcl_srem_block_order(p->block), 2, 3, 2, p->x, p->y);
    return test_weighted_sum(p->y, p->weights_of_loss, 36);
}

static void test_srem_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(602);
    for (int block = 0; block < 2; block++) {
        srem_problem p = {block, test_zeros(36), test_zeros(36), test_zeros(36)};
        test_fill_normal_double(&rng, p.x, 36, 1.0);
        test_fill_normal_double(&rng, p.weights_of_loss, 36, 1.0);
        double *dx = test_zeros(36);
        digcl_ref_srem_backward(digcl_srem_block_order(block), 2, 3, 2, p.weights_of_loss, dx);
        test_check_gradient(block ? "srem oracle (odd block) d/dx" : "srem oracle (even) d/dx",
                            srem_loss, &p, p.x, dx, 36, 36);
        free(p.x), free(p.y), free(p.weights_of_loss), free(dx);
    }
}

static void check_srem(int block, int N, int side, int D, test_rng *rng) {
    digcl_context *ctx = test_context();
    const size_t count = (size_t)N * (size_t)side * (size_t)side * (size_t)D;
    float *x = test_random_floats(rng, count, 1.0f);
    double *wide = test_widen(x, count), *want = test_zeros(count);
    cl_mem d_x = test_upload(x, count), y = test_poisoned(count), dx = test_poisoned(count);
    digcl_srem_forward(ctx, digcl_srem_block_order(block), N, side, D, d_x, y);
    digcl_srem_backward(ctx, digcl_srem_block_order(block), N, side, D, y, dx);
    char label[96];
    snprintf(label, sizeof label, "srem block %d N%d E%d D%d", block, N, side, D);
    digcl_ref_srem_forward(digcl_srem_block_order(block), N, side, D, wide, want);
    float *got = test_download(y, count);
    test_assert_close(label, got, want, count, 1e-7);
    free(got);
    got = test_download(dx, count); /* backward(forward(x)) = x */
    test_assert_close("  backward (inverse)", got, wide, count, 1e-7);
    free(got), free(x), free(wide), free(want);
    test_release(d_x), test_release(y), test_release(dx);
}

static void test_srem_kernels(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(603);
    const int shapes[][3] = {{1, 1, 1}, {2, 5, 33}, {3, 6, 384}, {1, 16, 7}, {2, 7, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int block = 0; block < 4; block++)
            check_srem(block, shapes[s][0], shapes[s][1], shapes[s][2], &rng);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_srem_matches_upstream),
        cmocka_unit_test(test_srem_cycle_returns_to_rows),
        cmocka_unit_test(test_srem_oracle_gradients),
        cmocka_unit_test(test_srem_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
