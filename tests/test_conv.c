/* Depthwise 3x3 convolution on the token grid against the double oracle
 * (odd grids and channel counts, non-square grids, many row groups), and the
 * oracle's backward against finite differences. */
#include "digcl/conv.h"
#include "digcl/ref/conv.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

static size_t grid_count(const digcl_grid_shape *s) {
    return (size_t)s->N * (size_t)s->height * (size_t)s->width * (size_t)s->D;
}

typedef struct conv_problem {
    digcl_grid_shape shape;
    double *x, *weight, *bias, *y, *weights_of_loss;
} conv_problem;

static double conv_loss(void *arg) {
    conv_problem *p = arg;
    digcl_ref_depthwise_conv_forward(&p->shape, p->x, p->weight, p->bias, p->y);
    return test_weighted_sum(p->y, p->weights_of_loss, grid_count(&p->shape));
}

static void test_conv_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(401);
    conv_problem p = {.shape = {2, 4, 5, 3}};
    const size_t count = grid_count(&p.shape), D = (size_t)p.shape.D;
    double **arrays[5] = {&p.x, &p.weight, &p.bias, &p.y, &p.weights_of_loss};
    const size_t sizes[5] = {count, 9 * D, D, count, count};
    for (int a = 0; a < 5; a++) {
        *arrays[a] = test_zeros(sizes[a]);
        test_fill_normal_double(&rng, *arrays[a], sizes[a], 1.0);
    }
    double *dx = test_zeros(count), *dweight = test_zeros(9 * D), *dbias = test_zeros(D);
    digcl_ref_depthwise_conv_backward(&p.shape, p.x, p.weight, p.weights_of_loss, dx, dweight,
                                      dbias);
    test_check_gradient("dwconv oracle d/dx", conv_loss, &p, p.x, dx, count, 200);
    test_check_gradient("dwconv oracle d/dweight", conv_loss, &p, p.weight, dweight, 9 * D, 200);
    test_check_gradient("dwconv oracle d/dbias", conv_loss, &p, p.bias, dbias, D, 200);
    for (int a = 0; a < 5; a++) free(*arrays[a]);
    free(dx), free(dweight), free(dbias);
}

/* The identity init of docs/MODEL.md §3.6 (centre tap 1, bias 0) gives y = x. */
static void test_conv_identity_init(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(402);
    const digcl_grid_shape s = {2, 5, 5, 7};
    const size_t count = grid_count(&s);
    float *x = test_random_floats(&rng, count, 1.0f), weight[63] = {0}, bias[7] = {0};
    for (int d = 0; d < 7; d++) weight[d * 9 + 4] = 1.0f;
    cl_mem d_x = test_upload(x, count), d_w = test_upload(weight, 63), d_b = test_upload(bias, 7);
    cl_mem y = test_poisoned(count);
    digcl_depthwise_conv_forward(test_context(), &s, d_x, d_w, d_b, y);
    float *got = test_download(y, count);
    assert_true(test_rel_l2_f(got, x, count) == 0.0);
    free(x), free(got);
    test_release(d_x), test_release(d_w), test_release(d_b), test_release(y);
}

static void check_conv(const digcl_grid_shape *s, test_rng *rng, int with_dx) {
    digcl_context *ctx = test_context();
    const size_t count = grid_count(s), D = (size_t)s->D;
    float *x = test_random_floats(rng, count, 1.0f), *weight = test_random_floats(rng, 9 * D, 0.5f);
    float *bias = test_random_floats(rng, D, 1.0f), *dy = test_random_floats(rng, count, 1.0f);
    float *dweight0 = test_random_floats(rng, 9 * D, 1.0f),
          *dbias0 = test_random_floats(rng, D, 1.0f);
    cl_mem d_x = test_upload(x, count), d_weight = test_upload(weight, 9 * D);
    cl_mem d_bias = test_upload(bias, D), d_dy = test_upload(dy, count);
    cl_mem d_dweight = test_upload(dweight0, 9 * D), d_dbias = test_upload(dbias0, D);
    cl_mem y = test_poisoned(count), dx = test_poisoned(count);
    cl_mem workspace = test_poisoned(digcl_depthwise_conv_workspace_bytes(s) / sizeof(float));
    digcl_depthwise_conv_forward(ctx, s, d_x, d_weight, d_bias, y);
    digcl_depthwise_conv_backward(ctx, s, d_x, d_weight, d_dy, with_dx ? dx : NULL, d_dweight,
                                  d_dbias, workspace);

    double *w_x = test_widen(x, count), *w_weight = test_widen(weight, 9 * D),
           *w_bias = test_widen(bias, D);
    double *w_dy = test_widen(dy, count), *want_y = test_zeros(count), *want_dx = test_zeros(count);
    double *want_dweight = test_widen(dweight0, 9 * D), *want_dbias = test_widen(dbias0, D);
    digcl_ref_depthwise_conv_forward(s, w_x, w_weight, w_bias, want_y);
    digcl_ref_depthwise_conv_backward(s, w_x, w_weight, w_dy, want_dx, want_dweight, want_dbias);
    char label[96];
    snprintf(label, sizeof label, "dwconv N%d %dx%d D%d y", s->N, s->height, s->width, s->D);
    float *got = test_download(y, count);
    test_assert_close(label, got, want_y, count, 1e-5);
    free(got);
    if (with_dx) {
        got = test_download(dx, count);
        test_assert_close("  dx", got, want_dx, count, 1e-4);
        free(got);
    }
    got = test_download(d_dweight, 9 * D);
    test_assert_close("  dweight (accumulated)", got, want_dweight, 9 * D, 1e-4);
    free(got);
    got = test_download(d_dbias, D);
    test_assert_close("  dbias (accumulated)", got, want_dbias, D, 1e-4);
    free(got);
    free(x), free(weight), free(bias), free(dy), free(dweight0), free(dbias0);
    free(w_x), free(w_weight), free(w_bias), free(w_dy), free(want_y), free(want_dx);
    free(want_dweight), free(want_dbias);
    cl_mem buffers[] = {d_x, d_weight, d_bias, d_dy, d_dweight, d_dbias, y, dx, workspace};
    for (size_t i = 0; i < sizeof buffers / sizeof *buffers; i++) test_release(buffers[i]);
}

static void test_conv_kernels(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(403);
    const digcl_grid_shape shapes[] = {
        {1, 1, 1, 1},    /* T = 1 */
        {2, 5, 5, 33},   /* odd grid and channels */
        {3, 6, 6, 384},  /* T = 36, DiG-S width */
        {2, 12, 3, 7},   /* non-square, more rows than one strip */
        {5, 16, 16, 40}, /* several row groups */
        {3, 200, 2, 5},  /* more than 64 groups' worth of rows */
        {2, 5, 37, 12},  /* wide rows: several column groups in the fused backward */
        {1, 19, 70, 65}, /* partial last column block, column group, row strip and channel group */
        {2, 9, 4, 300},  /* one column block per row, D over a channel group */
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) check_conv(&shapes[i], &rng, 1);
}

/* dx = NULL: only the parameter gradients (the -DNO_DX variant of the fused pass). */
static void test_conv_backward_without_dx(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(404);
    const digcl_grid_shape shapes[] = {{2, 5, 37, 12}, {3, 6, 6, 384}};
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) check_conv(&shapes[i], &rng, 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_oracle_gradients),
        cmocka_unit_test(test_conv_identity_init),
        cmocka_unit_test(test_conv_kernels),
        cmocka_unit_test(test_conv_backward_without_dx),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
