/* Activations (SiLU, GELU-tanh, SwiGLU, forget gate) forward and backward
 * against the double oracle, float and float4 paths, overwrite and accumulate;
 * each oracle's backward against central finite differences. */
#include "dense_helpers.h"
#include "digcl/activation.h"
#include "digcl/ref/activation.h"

typedef void (*ref_forward_fn)(int count, const double *x, double *y);
typedef void (*ref_backward_fn)(int count, const double *dy, const double *x, double *dx);
typedef void (*dev_forward_fn)(digcl_context *ctx, int count, cl_mem x, cl_mem y);
typedef void (*dev_backward_fn)(digcl_context *ctx, int count, cl_mem dy, cl_mem x, cl_mem dx,
                                int accumulate);

/* The forget gate with DiG's normalizer, in the shapes of the other activations. */
static void ref_forget_forward(int n, const double *x, double *y) {
    digcl_ref_forget_gate_forward(n, DIGCL_FORGET_GATE_NORMALIZER, x, y);
}
static void ref_forget_backward(int n, const double *dy, const double *x, double *dx) {
    digcl_ref_forget_gate_backward(n, DIGCL_FORGET_GATE_NORMALIZER, dy, x, dx);
}
static void dev_forget_forward(digcl_context *ctx, int n, cl_mem x, cl_mem y) {
    digcl_forget_gate_forward(ctx, n, DIGCL_FORGET_GATE_NORMALIZER, x, y);
}
static void dev_forget_backward(digcl_context *ctx, int n, cl_mem dy, cl_mem x, cl_mem dx,
                                int accumulate) {
    digcl_forget_gate_backward(ctx, n, DIGCL_FORGET_GATE_NORMALIZER, dy, x, dx, accumulate);
}

typedef struct unary_op {
    const char *name;
    ref_forward_fn ref_forward;
    ref_backward_fn ref_backward;
    dev_forward_fn forward;
    dev_backward_fn backward;
    float stddev; /* input scale: the forget gate also sees large logits */
} unary_op;

static const unary_op unary_ops[] = {
    {"silu", digcl_ref_silu_forward, digcl_ref_silu_backward, digcl_silu_forward,
     digcl_silu_backward, 3.0f},
    {"gelu_tanh", digcl_ref_gelu_tanh_forward, digcl_ref_gelu_tanh_backward,
     digcl_gelu_tanh_forward, digcl_gelu_tanh_backward, 3.0f},
    {"forget_gate", ref_forget_forward, ref_forget_backward, dev_forget_forward,
     dev_forget_backward, 8.0f},
};

static void run_unary(test_rng *rng, const unary_op *op, int n, int accumulate) {
    digcl_context *ctx = test_context();
    float *x = test_random_floats(rng, (size_t)n, op->stddev),
          *dy = test_random_floats(rng, (size_t)n, 1.0f);
    float *prior = test_random_floats(rng, (size_t)n, 1.0f);
    double *xw = test_widen(x, (size_t)n), *dyw = test_widen(dy, (size_t)n);
    double *y_want = test_zeros((size_t)n), *dx_want = test_zeros((size_t)n);
    op->ref_forward(n, xw, y_want);
    op->ref_backward(n, dyw, xw, dx_want);
    for (int i = 0; accumulate && i < n; ++i) dx_want[i] += prior[i];
    cl_mem xm = test_upload(x, (size_t)n), dym = test_upload(dy, (size_t)n);
    cl_mem y = test_poisoned((size_t)n);
    cl_mem dx = accumulate ? test_upload(prior, (size_t)n) : test_poisoned((size_t)n);
    op->forward(ctx, n, xm, y);
    op->backward(ctx, n, dym, xm, dx, accumulate);
    char label[96];
    snprintf(label, sizeof label, "%s forward n=%d", op->name, n);
    dense_expect(label, y, y_want, (size_t)n, DENSE_FORWARD_TOLERANCE);
    snprintf(label, sizeof label, "%s backward n=%d acc=%d", op->name, n, accumulate);
    dense_expect(label, dx, dx_want, (size_t)n, DENSE_BACKWARD_TOLERANCE);
    test_release(xm), test_release(dym), test_release(y), test_release(dx);
    free(x), free(dy), free(prior), free(xw), free(dyw), free(y_want), free(dx_want);
}

static void test_unary_activations(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(21);
    const int counts[] = {1, 7, 33 * 7, 4 * 1001, 16 * 37}; /* float, float4, float16 (CPU) */
    for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; ++o)
        for (size_t k = 0; k < sizeof counts / sizeof counts[0]; ++k)
            run_unary(&rng, &unary_ops[o], counts[k], k == 2);
}

static void run_swiglu(test_rng *rng, int rows, int F, int accumulate) {
    digcl_context *ctx = test_context();
    const size_t in = (size_t)rows * 2 * F, out = (size_t)rows * F;
    float *x = test_random_floats(rng, in, 2.0f), *dy = test_random_floats(rng, out, 1.0f);
    float *prior = test_random_floats(rng, in, 1.0f);
    double *xw = test_widen(x, in), *dyw = test_widen(dy, out);
    double *y_want = test_zeros(out), *dx_want = test_zeros(in);
    digcl_ref_swiglu_forward(rows, F, xw, y_want);
    digcl_ref_swiglu_backward(rows, F, dyw, xw, dx_want);
    for (size_t i = 0; accumulate && i < in; ++i) dx_want[i] += prior[i];
    cl_mem xm = test_upload(x, in), dym = test_upload(dy, out), y = test_poisoned(out);
    cl_mem dx = accumulate ? test_upload(prior, in) : test_poisoned(in);
    digcl_swiglu_forward(ctx, rows, F, xm, y);
    digcl_swiglu_backward(ctx, rows, F, dym, xm, dx, accumulate);
    char label[96];
    snprintf(label, sizeof label, "swiglu forward rows=%d F=%d", rows, F);
    dense_expect(label, y, y_want, out, DENSE_FORWARD_TOLERANCE);
    snprintf(label, sizeof label, "swiglu backward rows=%d F=%d acc=%d", rows, F, accumulate);
    dense_expect(label, dx, dx_want, in, DENSE_BACKWARD_TOLERANCE);
    test_release(xm), test_release(dym), test_release(y), test_release(dx);
    free(x), free(dy), free(prior), free(xw), free(dyw), free(y_want), free(dx_want);
}

static void test_swiglu(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(22);
    run_swiglu(&rng, 1, 1, 0);
    run_swiglu(&rng, 7, 33, 1);
    run_swiglu(&rng, 36, 64, 0);
    run_swiglu(&rng, 257, 12, 1);
}

/* ---------------------------------------------------------------- oracle gradients */

typedef struct unary_problem {
    const unary_op *op;
    int n;
    double *x, *weights, *y;
} unary_problem;

static double unary_loss(void *problem) {
    unary_problem *p = problem;
    p->op->ref_forward(p->n, p->x, p->y);
    return test_weighted_sum(p->y, p->weights, (size_t)p->n);
}

typedef struct swiglu_problem {
    int rows, F;
    double *x, *weights, *y;
} swiglu_problem;

static double swiglu_loss(void *problem) {
    swiglu_problem *p = problem;
    digcl_ref_swiglu_forward(p->rows, p->F, p->x, p->y);
    return test_weighted_sum(p->y, p->weights, (size_t)p->rows * p->F);
}

static void test_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(23);
    for (size_t o = 0; o < sizeof unary_ops / sizeof unary_ops[0]; ++o) {
        unary_problem p = {&unary_ops[o], 40, NULL, NULL, NULL};
        p.x = test_random_doubles(&rng, 40);
        for (int i = 0; i < 40; ++i) p.x[i] *= unary_ops[o].stddev;
        p.weights = test_random_doubles(&rng, 40);
        p.y = test_zeros(40);
        double *analytic = test_zeros(40);
        unary_ops[o].ref_backward(40, p.weights, p.x, analytic);
        char label[64];
        snprintf(label, sizeof label, "%s oracle d/dx", unary_ops[o].name);
        test_check_gradient(label, unary_loss, &p, p.x, analytic, 40, 40);
        free(p.x), free(p.weights), free(p.y), free(analytic);
    }
    swiglu_problem s = {3, 5, NULL, NULL, NULL};
    s.x = test_random_doubles(&rng, 30);
    s.weights = test_random_doubles(&rng, 15);
    s.y = test_zeros(15);
    double *analytic = test_zeros(30);
    digcl_ref_swiglu_backward(3, 5, s.weights, s.x, analytic);
    test_check_gradient("swiglu oracle d/dx", swiglu_loss, &s, s.x, analytic, 30, 30);
    free(s.x), free(s.weights), free(s.y), free(analytic);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unary_activations),
        cmocka_unit_test(test_swiglu),
        cmocka_unit_test(test_oracle_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
