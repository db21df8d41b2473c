/* adaLN modulate and gated residual against the double oracle, with the vectors
 * read in place from an [N, 6D] tensor (packed and padded strides), forward and
 * backward, overwrite and accumulate; the oracles' backward against central
 * finite differences. */
#include "dense_helpers.h"
#include "digcl/adaln.h"
#include "digcl/ref/adaln.h"

typedef struct adaln_case {
    int N, T, D;
    size_t pad; /* extra columns per adaLN row; non-zero also shifts the start by 1 */
    int accumulate;
} adaln_case;

static double *extract(const float *packed, size_t stride, size_t offset, int N, int D) {
    double *out = test_zeros((size_t)N * D);
    for (int n = 0; n < N; ++n)
        for (int d = 0; d < D; ++d) out[(size_t)n * D + d] = packed[n * stride + offset + d];
    return out;
}

/* The [N, D] block at offset of a downloaded [N, stride] tensor vs want. */
static void expect_block(const char *label, cl_mem mem, size_t stride, size_t offset, int N, int D,
                         const double *want) {
    float *all = test_download(mem, (size_t)N * stride);
    float *block = malloc((size_t)N * D * sizeof *block);
    for (int n = 0; n < N; ++n)
        for (int d = 0; d < D; ++d) block[(size_t)n * D + d] = all[n * stride + offset + d];
    test_assert_close(label, block, want, (size_t)N * D, DENSE_BACKWARD_TOLERANCE);
    free(all), free(block);
}

static void run_case(test_rng *rng, const adaln_case *c) {
    digcl_context *ctx = test_context();
    const int N = c->N, T = c->T, D = c->D;
    const size_t n = (size_t)N * T * D, stride = 6 * (size_t)D + c->pad, ada = (size_t)N * stride;
    const size_t base = c->pad ? 1 : 0;
    float *x = test_random_floats(rng, n, 1.0f), *y_branch = test_random_floats(rng, n, 1.0f);
    float *dy = test_random_floats(rng, n, 1.0f), *prior = test_random_floats(rng, n, 1.0f);
    float *adaln = test_random_floats(rng, ada, 0.5f);
    cl_mem xm = test_upload(x, n), ym = test_upload(y_branch, n), dym = test_upload(dy, n);
    cl_mem ada_mem = test_upload(adaln, ada), dada = test_poisoned(ada);
    digcl_row_view shift = {ada_mem, base, stride}, scale = {ada_mem, base + D, stride};
    digcl_row_view gate = {ada_mem, base + 2 * (size_t)D, stride};
    digcl_row_view dshift = {dada, shift.offset, stride}, dscale = {dada, scale.offset, stride};
    digcl_row_view dgate = {dada, gate.offset, stride};
    double *xw = test_widen(x, n), *yw = test_widen(y_branch, n), *dyw = test_widen(dy, n);
    double *shift_w = extract(adaln, stride, shift.offset, N, D);
    double *scale_w = extract(adaln, stride, scale.offset, N, D);
    double *gate_w = extract(adaln, stride, gate.offset, N, D);
    double *out_want = test_zeros(n), *dx_want = test_zeros(n), *dh_want = test_zeros(n);
    double *dshift_w = test_zeros((size_t)N * D), *dscale_w = test_zeros((size_t)N * D);
    double *dgate_w = test_zeros((size_t)N * D);
    size_t ws = digcl_modulate_backward_workspace_bytes(N, T, D);
    size_t ws2 = digcl_gated_residual_backward_workspace_bytes(N, T, D);
    cl_mem workspace = test_poisoned((ws > ws2 ? ws : ws2) / sizeof(float) + 1);
    char label[112];

    /* modulate */
    cl_mem out = test_poisoned(n), dx = c->accumulate ? test_upload(prior, n) : test_poisoned(n);
    digcl_modulate_forward(ctx, N, T, D, xm, shift, scale, out);
    digcl_modulate_backward(ctx, N, T, D, dym, xm, scale, dx, c->accumulate, dshift, dscale,
                            workspace);
    digcl_ref_modulate_forward(N, T, D, xw, shift_w, scale_w, out_want);
    digcl_ref_modulate_backward(N, T, D, dyw, xw, scale_w, dx_want, dshift_w, dscale_w);
    for (size_t i = 0; c->accumulate && i < n; ++i) dx_want[i] += prior[i];
    snprintf(label, sizeof label, "modulate forward N=%d T=%d D=%d pad=%zu", N, T, D, c->pad);
    dense_expect(label, out, out_want, n, DENSE_FORWARD_TOLERANCE);
    snprintf(label, sizeof label, "modulate dx acc=%d", c->accumulate);
    dense_expect(label, dx, dx_want, n, DENSE_BACKWARD_TOLERANCE);
    expect_block("modulate dshift", dada, stride, dshift.offset, N, D, dshift_w);
    expect_block("modulate dscale", dada, stride, dscale.offset, N, D, dscale_w);

    /* gated residual: out = h + gate y, here with h = x, then in place (out = h) */
    digcl_gated_residual_forward(ctx, N, T, D, xm, gate, ym, out);
    digcl_ref_gated_residual_forward(N, T, D, xw, gate_w, yw, out_want);
    snprintf(label, sizeof label, "gated_residual forward T=%d D=%d", T, D);
    dense_expect(label, out, out_want, n, DENSE_FORWARD_TOLERANCE);
    digcl_gated_residual_forward(ctx, N, T, D, xm, gate, ym, xm);
    dense_expect("gated_residual forward in place", xm, out_want, n, DENSE_FORWARD_TOLERANCE);
    if (c->accumulate) digcl_write(ctx, dx, 0, n * sizeof(float), prior);
    else test_poison(dx, n);
    digcl_gated_residual_backward(ctx, N, T, D, dym, ym, gate, dx, c->accumulate, dgate, workspace);
    digcl_ref_gated_residual_backward(N, T, D, dyw, yw, gate_w, dh_want, dx_want, dgate_w);
    for (size_t i = 0; c->accumulate && i < n; ++i) dx_want[i] += prior[i];
    snprintf(label, sizeof label, "gated_residual dy acc=%d", c->accumulate);
    dense_expect(label, dx, dx_want, n, DENSE_BACKWARD_TOLERANCE);
    expect_block("gated_residual dgate", dada, stride, dgate.offset, N, D, dgate_w);

    test_release(xm), test_release(ym), test_release(dym), test_release(ada_mem);
    test_release(dada), test_release(out), test_release(dx), test_release(workspace);
    free(x), free(y_branch), free(dy), free(prior), free(adaln), free(xw), free(yw), free(dyw);
    free(shift_w), free(scale_w), free(gate_w), free(out_want), free(dx_want), free(dh_want);
    free(dshift_w), free(dscale_w), free(dgate_w);
}

static void test_modulate_and_gated_residual(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(41);
    const adaln_case cases[] = {
        {2, 1, 1, 0, 0},    {2, 7, 33, 0, 1},    {2, 36, 384, 0, 0},
        {2, 257, 33, 0, 1}, {1, 257, 384, 0, 0}, {3, 7, 384, 1, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_case(&rng, &cases[i]);
}

/* ---------------------------------------------------------------- oracle gradients */

typedef struct adaln_problem {
    int N, T, D;
    double *x, *y, *shift, *scale, *gate, *weights, *out;
} adaln_problem;

static double modulate_loss(void *problem) {
    adaln_problem *p = problem;
    digcl_ref_modulate_forward(p->N, p->T, p->D, p->x, p->shift, p->scale, p->out);
    return test_weighted_sum(p->out, p->weights, (size_t)p->N * p->T * p->D);
}

static double gated_residual_loss(void *problem) {
    adaln_problem *p = problem;
    digcl_ref_gated_residual_forward(p->N, p->T, p->D, p->x, p->gate, p->y, p->out);
    return test_weighted_sum(p->out, p->weights, (size_t)p->N * p->T * p->D);
}

static void test_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(42);
    adaln_problem p = {2, 3, 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const size_t n = 24, v = 8;
    p.x = test_random_doubles(&rng, n), p.y = test_random_doubles(&rng, n);
    p.shift = test_random_doubles(&rng, v), p.scale = test_random_doubles(&rng, v);
    p.gate = test_random_doubles(&rng, v), p.weights = test_random_doubles(&rng, n);
    p.out = test_zeros(n);
    double *dx = test_zeros(n), *dy = test_zeros(n), *dshift = test_zeros(v);
    double *dscale = test_zeros(v), *dgate = test_zeros(v);
    digcl_ref_modulate_backward(2, 3, 4, p.weights, p.x, p.scale, dx, dshift, dscale);
    test_check_gradient("modulate oracle d/dx", modulate_loss, &p, p.x, dx, n, n);
    test_check_gradient("modulate oracle d/dshift", modulate_loss, &p, p.shift, dshift, v, v);
    test_check_gradient("modulate oracle d/dscale", modulate_loss, &p, p.scale, dscale, v, v);
    digcl_ref_gated_residual_backward(2, 3, 4, p.weights, p.y, p.gate, dx, dy, dgate);
    test_check_gradient("gated_residual oracle d/dh", gated_residual_loss, &p, p.x, dx, n, n);
    test_check_gradient("gated_residual oracle d/dy", gated_residual_loss, &p, p.y, dy, n, n);
    test_check_gradient("gated_residual oracle d/dgate", gated_residual_loss, &p, p.gate, dgate, v,
                        v);
    free(p.x), free(p.y), free(p.shift), free(p.scale), free(p.gate), free(p.weights);
    free(p.out), free(dx), free(dy), free(dshift), free(dscale), free(dgate);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_modulate_and_gated_residual),
        cmocka_unit_test(test_oracle_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
