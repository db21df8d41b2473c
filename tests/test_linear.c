/* nn.Linear forward and backward (CLBlast GEMMs, bias add, db column sum)
 * against the double oracle, with weights and gradients at offsets inside flat
 * buffers, dweight/dbias accumulating, dx overwritten or accumulated, with and
 * without bias; the oracle's backward against central finite differences. */
#include "dense_helpers.h"
#include "digcl/linear.h"
#include "digcl/ref/linear.h"

typedef struct linear_case {
    int rows, in, out;
    int has_bias, accumulate_dx;
} linear_case;

static void run_case(test_rng *rng, const linear_case *c) {
    digcl_context *ctx = test_context();
    const digcl_linear_shape shape = {c->rows, c->in, c->out};
    const size_t nx = (size_t)c->rows * c->in, ny = (size_t)c->rows * c->out;
    const size_t nw = (size_t)c->out * c->in, w_offset = 5, b_offset = w_offset + nw + 3;
    const size_t flat = b_offset + c->out + 2;
    float *x = test_random_floats(rng, nx, 1.0f), *dy = test_random_floats(rng, ny, 1.0f);
    float *params = test_random_floats(rng, flat, 0.3f),
          *grads = test_random_floats(rng, flat, 1.0f);
    float *prior = test_random_floats(rng, nx, 1.0f);
    double *xw = test_widen(x, nx), *dyw = test_widen(dy, ny);
    double *weight = test_widen(params + w_offset, nw),
           *bias = test_widen(params + b_offset, c->out);
    double *y_want = test_zeros(ny), *dx_want = test_zeros(nx),
           *grads_want = test_widen(grads, flat);
    digcl_ref_linear_forward(shape, xw, weight, c->has_bias ? bias : NULL, y_want);
    digcl_ref_linear_backward(shape, dyw, xw, weight, dx_want, grads_want + w_offset,
                              c->has_bias ? grads_want + b_offset : NULL);
    for (size_t i = 0; c->accumulate_dx && i < nx; ++i) dx_want[i] += prior[i];

    cl_mem xm = test_upload(x, nx), dym = test_upload(dy, ny), pm = test_upload(params, flat);
    cl_mem gm = test_upload(grads, flat), y = test_poisoned(ny);
    cl_mem dx = c->accumulate_dx ? test_upload(prior, nx) : test_poisoned(nx);
    size_t ws = digcl_linear_backward_workspace_bytes(shape);
    cl_mem workspace = ws ? test_poisoned(ws / sizeof(float) + 1) : NULL;
    digcl_linear_forward_args forward = {xm, pm, w_offset, c->has_bias ? pm : NULL, b_offset, y};
    digcl_linear_forward(ctx, shape, &forward);
    digcl_linear_backward_args backward = {dym,      xm,       pm,
                                           w_offset, dx,       c->accumulate_dx,
                                           gm,       w_offset, c->has_bias ? gm : NULL,
                                           b_offset, workspace};
    digcl_linear_backward(ctx, shape, &backward);
    char label[112];
    snprintf(label, sizeof label, "linear forward rows=%d in=%d out=%d bias=%d", c->rows, c->in,
             c->out, c->has_bias);
    dense_expect(label, y, y_want, ny, DENSE_FORWARD_TOLERANCE);
    snprintf(label, sizeof label, "linear dx acc=%d", c->accumulate_dx);
    dense_expect(label, dx, dx_want, nx, DENSE_BACKWARD_TOLERANCE);
    float *got = test_download(gm, flat);
    test_assert_close("linear dweight (+=)", got + w_offset, grads_want + w_offset, nw,
                      DENSE_BACKWARD_TOLERANCE);
    test_assert_close("linear dbias (+= or untouched)", got + b_offset, grads_want + b_offset,
                      (size_t)c->out, DENSE_BACKWARD_TOLERANCE);
    test_assert_close("linear flat gradient elsewhere untouched", got, grads_want, w_offset, 1e-12);
    test_release(xm), test_release(dym), test_release(pm), test_release(gm), test_release(y);
    test_release(dx);
    if (workspace) test_release(workspace);
    free(x), free(dy), free(params), free(grads), free(prior), free(xw), free(dyw), free(weight);
    free(bias), free(y_want), free(dx_want), free(grads_want), free(got);
}

static void test_linear(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(61);
    const linear_case cases[] = {
        {1, 1, 1, 1, 0},      {7, 33, 5, 1, 1},    {36, 384, 33, 0, 0},
        {257, 33, 384, 1, 0}, {300, 17, 20, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(&rng, &cases[i]);
}

typedef struct linear_problem {
    digcl_linear_shape shape;
    double *x, *weight, *bias, *weights, *y;
} linear_problem;

static double linear_loss(void *problem) {
    linear_problem *p = problem;
    digcl_ref_linear_forward(p->shape, p->x, p->weight, p->bias, p->y);
    return test_weighted_sum(p->y, p->weights, (size_t)p->shape.rows * p->shape.out);
}

static void test_linear_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(62);
    linear_problem p = {{3, 4, 5}, NULL, NULL, NULL, NULL, NULL};
    p.x = test_random_doubles(&rng, 12), p.weight = test_random_doubles(&rng, 20);
    p.bias = test_random_doubles(&rng, 5), p.weights = test_random_doubles(&rng, 15);
    p.y = test_zeros(15);
    double *dx = test_zeros(12), *dw = test_zeros(20), *db = test_zeros(5);
    digcl_ref_linear_backward(p.shape, p.weights, p.x, p.weight, dx, dw, db);
    test_check_gradient("linear oracle d/dx", linear_loss, &p, p.x, dx, 12, 12);
    test_check_gradient("linear oracle d/dweight", linear_loss, &p, p.weight, dw, 20, 20);
    test_check_gradient("linear oracle d/dbias", linear_loss, &p, p.bias, db, 5, 5);
    free(p.x), free(p.weight), free(p.bias), free(p.weights), free(p.y), free(dx), free(dw);
    free(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_linear_oracle_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
