/* nn.Linear forward and backward (CLBlast GEMMs, bias add, db column sum)
 * against the double oracle, with weights and gradients at offsets inside flat
 * buffers, dweight/dbias accumulating, dx overwritten or accumulated, with and
 * without bias; the oracle's backward against central finite differences. */
#include <string.h>

#include "dense_helpers.h"
#include "digcl/linear.h"
#include "digcl/ref/linear.h"

typedef struct linear_case {
    int rows, in, out;
    int has_bias, accumulate_dx;
    int strided; /* x and dx as column slices of wider rows (x_offset/x_stride, dx_...) */
} linear_case;

enum { X_OFFSET = 2, X_PAD = 3, DX_OFFSET = 1, DX_PAD = 5 };

/* dense [rows, in] scattered into rows of in + pad after offset; the gaps NaN. */
static float *scatter_rows(const float *dense, int rows, int in, size_t offset, size_t pad,
                           size_t *span) {
    *span = offset + (size_t)rows * (in + pad);
    float *wide = malloc(*span * sizeof(float));
    assert_non_null(wide);
    for (size_t i = 0; i < *span; i++) wide[i] = NAN;
    for (int r = 0; r < rows; r++)
        memcpy(wide + offset + (size_t)r * (in + pad), dense + (size_t)r * in, in * sizeof(float));
    return wide;
}

/* The strided dx back to dense; the gaps must still be NaN. */
static float *gather_rows(cl_mem mem, int rows, int in, size_t offset, size_t pad, size_t span) {
    float *wide = test_download(mem, span), *dense = malloc((size_t)rows * in * sizeof(float));
    assert_non_null(dense);
    size_t touched = 0;
    for (size_t i = 0; i < span; i++) {
        size_t row = i < offset ? 0 : (i - offset) / (in + pad);
        int inside = i >= offset && (i - offset) % (in + pad) < (size_t)in && row < (size_t)rows;
        if (inside) dense[row * in + (i - offset) % (in + pad)] = wide[i];
        else touched += !isnan(wide[i]);
    }
    assert_int_equal(touched, 0);
    free(wide);
    return dense;
}

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

    size_t x_span = nx, dx_span = nx;
    float *x_host = c->strided ? scatter_rows(x, c->rows, c->in, X_OFFSET, X_PAD, &x_span) : x;
    float *dx_host =
        c->strided ? scatter_rows(prior, c->rows, c->in, DX_OFFSET, DX_PAD, &dx_span) : prior;
    cl_mem xm = test_upload(x_host, x_span), dym = test_upload(dy, ny);
    cl_mem pm = test_upload(params, flat);
    cl_mem gm = test_upload(grads, flat), y = test_poisoned(ny);
    cl_mem dx = c->accumulate_dx || c->strided ? test_upload(dx_host, dx_span) : test_poisoned(nx);
    if (c->strided && !c->accumulate_dx) test_poison(dx, dx_span); /* gaps and rows NaN */
    size_t ws = digcl_linear_backward_workspace_bytes(shape);
    cl_mem workspace = ws ? test_poisoned(ws / sizeof(float) + 1) : NULL;
    digcl_linear_forward_args forward = {xm,       pm, w_offset, c->has_bias ? pm : NULL,
                                         b_offset, y,  0,        0};
    digcl_linear_backward_args backward = {dym,      xm,        pm,
                                           w_offset, dx,        c->accumulate_dx,
                                           gm,       w_offset,  c->has_bias ? gm : NULL,
                                           b_offset, workspace, 0,
                                           0,        0,         0};
    if (c->strided) {
        forward.x_offset = backward.x_offset = X_OFFSET;
        forward.x_stride = backward.x_stride = (size_t)c->in + X_PAD;
        backward.dx_offset = DX_OFFSET, backward.dx_stride = (size_t)c->in + DX_PAD;
    }
    digcl_linear_forward(ctx, shape, &forward);
    digcl_linear_backward(ctx, shape, &backward);
    char label[112];
    snprintf(label, sizeof label, "linear forward rows=%d in=%d out=%d bias=%d", c->rows, c->in,
             c->out, c->has_bias);
    dense_expect(label, y, y_want, ny, DENSE_FORWARD_TOLERANCE);
    snprintf(label, sizeof label, "linear dx acc=%d strided=%d", c->accumulate_dx, c->strided);
    if (c->strided) {
        float *dx_dense = gather_rows(dx, c->rows, c->in, DX_OFFSET, DX_PAD, dx_span);
        test_assert_close(label, dx_dense, dx_want, nx, DENSE_BACKWARD_TOLERANCE);
        free(dx_dense);
    } else {
        dense_expect(label, dx, dx_want, nx, DENSE_BACKWARD_TOLERANCE);
    }
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
    if (c->strided) free(x_host), free(dx_host);
}

static void test_linear(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(61);
    const linear_case cases[] = {
        {1, 1, 1, 1, 0, 0},      {7, 33, 5, 1, 1, 0},    {36, 384, 33, 0, 0, 0},
        {257, 33, 384, 1, 0, 0}, {300, 17, 20, 1, 1, 0}, {300, 16, 192, 1, 0, 1},
        {65, 16, 33, 1, 1, 1}, /* x and dx column slices (DiG's low-rank gate) */
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
