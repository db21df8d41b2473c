/* LayerNorm, fused LayerNorm + modulate (vectors read in place from an [N, 6D]
 * tensor) and RMSNorm x swish gate against the double oracle, forward and
 * backward, float and float4 layouts, overwrite and accumulate; each oracle's
 * backward against central finite differences. */
#include "dense_helpers.h"
#include "digcl/norm.h"
#include "digcl/ref/norm.h"

/* ---------------------------------------------------------------- LayerNorm */

static void run_layernorm(test_rng *rng, int rows, int D, int accumulate) {
    digcl_context *ctx = test_context();
    const size_t n = (size_t)rows * D;
    float *x = test_random_floats(rng, n, 2.0f), *dy = test_random_floats(rng, n, 1.0f);
    float *prior = test_random_floats(rng, n, 1.0f);
    for (size_t i = 0; i < n; ++i) x[i] += 3.0f; /* a non-zero mean */
    double *xw = test_widen(x, n), *dyw = test_widen(dy, n);
    double *y_want = test_zeros(n), *dx_want = test_zeros(n);
    double *mean_want = test_zeros((size_t)rows), *rstd_want = test_zeros((size_t)rows);
    digcl_ref_layernorm_forward(rows, D, xw, y_want, mean_want, rstd_want);
    digcl_ref_layernorm_backward(rows, D, dyw, xw, mean_want, rstd_want, dx_want);
    for (size_t i = 0; accumulate && i < n; ++i) dx_want[i] += prior[i];
    cl_mem xm = test_upload(x, n), dym = test_upload(dy, n), y = test_poisoned(n);
    cl_mem mean = test_poisoned((size_t)rows), rstd = test_poisoned((size_t)rows);
    cl_mem dx = accumulate ? test_upload(prior, n) : test_poisoned(n);
    digcl_layernorm_forward(ctx, rows, D, xm, y, mean, rstd);
    digcl_layernorm_backward(ctx, rows, D, dym, xm, mean, rstd, dx, accumulate);
    char label[96];
    snprintf(label, sizeof label, "layernorm forward rows=%d D=%d", rows, D);
    dense_expect(label, y, y_want, n, DENSE_FORWARD_TOLERANCE);
    dense_expect("  mean", mean, mean_want, (size_t)rows, DENSE_FORWARD_TOLERANCE);
    if (D > 1) dense_expect("  rstd", rstd, rstd_want, (size_t)rows, DENSE_FORWARD_TOLERANCE);
    snprintf(label, sizeof label, "layernorm backward rows=%d D=%d acc=%d", rows, D, accumulate);
    dense_expect(label, dx, dx_want, n, DENSE_BACKWARD_TOLERANCE);
    test_release(xm), test_release(dym), test_release(y), test_release(mean), test_release(rstd);
    test_release(dx);
    free(x), free(dy), free(prior), free(xw), free(dyw), free(y_want), free(dx_want);
    free(mean_want), free(rstd_want);
}

static void test_layernorm(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(31);
    run_layernorm(&rng, 1, 1, 0);
    run_layernorm(&rng, 7, 33, 1);
    run_layernorm(&rng, 36, 384, 0);
    run_layernorm(&rng, 257, 33, 0);
    run_layernorm(&rng, 5, 1152, 1);
}

/* ---------------------------------------------------------------- LayerNorm + modulate */

typedef struct modulate_case {
    int N, T, D;
    size_t pad; /* extra columns per row of the adaLN tensor (0: packed [N, 6D]) */
    int accumulate;
} modulate_case;

/* Column block k of a [N, stride] host tensor as contiguous [N, D] doubles. */
static double *extract(const float *packed, size_t stride, size_t offset, int N, int D) {
    double *out = test_zeros((size_t)N * D);
    for (int n = 0; n < N; ++n)
        for (int d = 0; d < D; ++d) out[(size_t)n * D + d] = packed[n * stride + offset + d];
    return out;
}

/* want: [N, stride] with the [N, D] block at offset replaced by value. */
static void place(double *want, size_t stride, size_t offset, int N, int D, const double *value) {
    for (int n = 0; n < N; ++n)
        for (int d = 0; d < D; ++d) want[n * stride + offset + d] = value[(size_t)n * D + d];
}

static void run_layernorm_modulate(test_rng *rng, const modulate_case *c) {
    digcl_context *ctx = test_context();
    const int N = c->N, T = c->T, D = c->D;
    const size_t n = (size_t)N * T * D, rows = (size_t)N * T;
    const size_t stride = 6 * (size_t)D + c->pad, base = c->pad ? 1 : 0, ada = (size_t)N * stride;
    digcl_row_view shift = {NULL, base + 3 * (size_t)D, stride};
    digcl_row_view scale = {NULL, base + 4 * (size_t)D, stride};
    float *x = test_random_floats(rng, n, 1.5f), *dy = test_random_floats(rng, n, 1.0f);
    float *prior = test_random_floats(rng, n, 1.0f), *adaln = test_random_floats(rng, ada, 0.5f);
    double *xw = test_widen(x, n), *dyw = test_widen(dy, n);
    double *shift_w = extract(adaln, stride, shift.offset, N, D);
    double *scale_w = extract(adaln, stride, scale.offset, N, D);
    double *y_want = test_zeros(n), *dx_want = test_zeros(n), *mean_w = test_zeros(rows);
    double *rstd_w = test_zeros(rows), *dshift = test_zeros((size_t)N * D);
    double *dscale = test_zeros((size_t)N * D), *dada_want = test_zeros(ada);
    digcl_ref_layernorm_modulate_forward(N, T, D, xw, shift_w, scale_w, y_want, mean_w, rstd_w);
    digcl_ref_layernorm_modulate_backward(N, T, D, dyw, xw, mean_w, rstd_w, scale_w, dx_want,
                                          dshift, dscale);
    for (size_t i = 0; c->accumulate && i < n; ++i) dx_want[i] += prior[i];
    place(dada_want, stride, shift.offset, N, D, dshift);
    place(dada_want, stride, scale.offset, N, D, dscale);

    cl_mem xm = test_upload(x, n), dym = test_upload(dy, n), ada_mem = test_upload(adaln, ada);
    cl_mem y = test_poisoned(n), mean = test_poisoned(rows), rstd = test_poisoned(rows);
    cl_mem dx = c->accumulate ? test_upload(prior, n) : test_poisoned(n);
    cl_mem dada = test_upload(adaln, ada); /* untouched columns keep these values */
    size_t ws = digcl_layernorm_modulate_backward_workspace_bytes(N, T, D);
    cl_mem workspace = test_poisoned(ws / sizeof(float) + 1);
    shift.mem = scale.mem = ada_mem;
    digcl_layernorm_modulate_forward(ctx, N, T, D, xm, shift, scale, y, mean, rstd);
    digcl_row_view dshift_view = {dada, shift.offset, stride};
    digcl_row_view dscale_view = {dada, scale.offset, stride};
    digcl_layernorm_modulate_backward(ctx, N, T, D, dym, xm, mean, rstd, scale, dx, c->accumulate,
                                      dshift_view, dscale_view, workspace);
    double *dada_full = test_widen(adaln, ada);
    place(dada_full, stride, shift.offset, N, D, dshift);
    place(dada_full, stride, scale.offset, N, D, dscale);
    char label[112];
    snprintf(label, sizeof label, "ln+modulate forward N=%d T=%d D=%d pad=%zu", N, T, D, c->pad);
    dense_expect(label, y, y_want, n, DENSE_FORWARD_TOLERANCE);
    snprintf(label, sizeof label, "ln+modulate dx T=%d D=%d acc=%d", T, D, c->accumulate);
    dense_expect(label, dx, dx_want, n, DENSE_BACKWARD_TOLERANCE);
    snprintf(label, sizeof label, "ln+modulate dshift T=%d D=%d", T, D);
    float *got = test_download(dada, ada);
    double *got_shift = extract(got, stride, shift.offset, N, D);
    double *got_scale = extract(got, stride, scale.offset, N, D);
    float *as_float = malloc(ada * sizeof *as_float);
    for (size_t i = 0; i < (size_t)N * D; ++i) as_float[i] = (float)got_shift[i];
    test_assert_close(label, as_float, dshift, (size_t)N * D, DENSE_BACKWARD_TOLERANCE);
    for (size_t i = 0; i < (size_t)N * D; ++i) as_float[i] = (float)got_scale[i];
    snprintf(label, sizeof label, "ln+modulate dscale T=%d D=%d", T, D);
    test_assert_close(label, as_float, dscale, (size_t)N * D, DENSE_BACKWARD_TOLERANCE);
    test_assert_close("  whole adaLN gradient tensor", got, dada_full, ada,
                      DENSE_BACKWARD_TOLERANCE);
    test_release(xm), test_release(dym), test_release(ada_mem), test_release(y);
    test_release(mean), test_release(rstd), test_release(dx), test_release(dada);
    test_release(workspace);
    free(x), free(dy), free(prior), free(adaln), free(xw), free(dyw), free(shift_w), free(scale_w);
    free(y_want), free(dx_want), free(mean_w), free(rstd_w), free(dshift), free(dscale);
    free(dada_want), free(got), free(got_shift), free(got_scale), free(as_float), free(dada_full);
}

static void test_layernorm_modulate(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(32);
    const modulate_case cases[] = {
        {2, 1, 1, 0, 0},     {2, 7, 33, 0, 1},     {2, 36, 384, 0, 0},
        {2, 257, 33, 0, 0},  {1, 257, 384, 0, 1},  {2, 7, 384, 1, 0},
        {3, 1, 384, 0, 0},   {1, 2100, 384, 0, 1}, /* several row batches per group (prefetch), partial last chunk */
        {2, 1100, 33, 1, 0},                       /* the same with scalar rows */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i)
        run_layernorm_modulate(&rng, &cases[i]);
}

/* ---------------------------------------------------------------- RMSNorm x swish gate */

/* The gate (and dgate) in a digcl_gate_rows layout: heads rows of V per token, each
 * token's rows `pad` elements short of the token stride, after `offset` elements. */
typedef struct gate_layout {
    int heads;
    size_t pad, offset;
} gate_layout;

static digcl_gate_rows gate_rows_of(gate_layout l, int V) {
    digcl_gate_rows rows = {l.offset, (size_t)l.heads * V + l.pad, l.heads};
    return rows;
}

/* Element j of gate row r in the layout. */
static size_t gate_at(digcl_gate_rows g, int V, int r, int j) {
    return g.offset + (size_t)(r / g.heads) * g.token_stride + (size_t)(r % g.heads) * V + j;
}

static size_t gate_span(digcl_gate_rows g, int rows, int V) {
    return gate_at(g, V, rows - 1, V - 1) + 1;
}

/* dgate read back from its layout; the gaps must keep `gaps` (NULL: NaN poison). */
static void expect_gate_gradient(const char *label, cl_mem dg, digcl_gate_rows g, int rows, int V,
                                 const double *want, const float *gaps) {
    size_t span = gate_span(g, rows, V), n = (size_t)rows * V, touched = 0;
    float *got = test_download(dg, span), *dense = malloc(n * sizeof(float));
    char *inside = calloc(span, 1);
    assert_non_null(dense);
    assert_non_null(inside);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < V; j++) {
            size_t at = gate_at(g, V, r, j);
            dense[(size_t)r * V + j] = got[at], inside[at] = 1;
        }
    for (size_t i = 0; i < span; i++)
        if (!inside[i]) touched += gaps ? got[i] != gaps[i] : !isnan(got[i]);
    double error = test_rel_l2(dense, want, n);
    if (!(error < DENSE_BACKWARD_TOLERANCE) || touched)
        print_message("%s: rel %.3g, %zu gap elements written\n", label, error, touched);
    assert_true(error < DENSE_BACKWARD_TOLERANCE);
    assert_int_equal(touched, 0);
    free(got), free(dense), free(inside);
}

static const gate_layout DENSE_GATE = {1, 0, 0};

static void run_rmsnorm_gate(test_rng *rng, int rows, int V, size_t weight_offset, int accumulate,
                             gate_layout layout) {
    digcl_context *ctx = test_context();
    const size_t n = (size_t)rows * V;
    const digcl_gate_rows gate_rows = gate_rows_of(layout, V);
    const size_t span = gate_span(gate_rows, rows, V);
    float *x = test_random_floats(rng, n, 1.0f), *g = test_random_floats(rng, span, 2.0f);
    float *dy = test_random_floats(rng, n, 1.0f), *prior = test_random_floats(rng, span, 1.0f);
    float *params = test_random_floats(rng, weight_offset + V, 1.0f);
    float *grads = test_random_floats(rng, weight_offset + V, 1.0f);
    double *gw = test_zeros(n), *prior_dense = test_zeros(n);
    for (int r = 0; r < rows; r++)
        for (int j = 0; j < V; j++) {
            gw[(size_t)r * V + j] = g[gate_at(gate_rows, V, r, j)];
            prior_dense[(size_t)r * V + j] = prior[gate_at(gate_rows, V, r, j)];
        }
    double *xw = test_widen(x, n), *dyw = test_widen(dy, n);
    double *ww = test_widen(params + weight_offset, (size_t)V);
    double *y_want = test_zeros(n), *dx_want = test_zeros(n), *dg_want = test_zeros(n);
    double *dw_want = test_widen(grads, weight_offset + V);
    digcl_ref_rmsnorm_gate_forward(rows, V, xw, gw, ww, y_want);
    digcl_ref_rmsnorm_gate_backward(rows, V, dyw, xw, gw, ww, dx_want, dg_want,
                                    dw_want + weight_offset);
    for (size_t i = 0; accumulate && i < n; ++i)
        dx_want[i] += prior[i], dg_want[i] += prior_dense[i];
    cl_mem xm = test_upload(x, n), gm = test_upload(g, span), dym = test_upload(dy, n);
    cl_mem pm = test_upload(params, weight_offset + V), dwm = test_upload(grads, weight_offset + V);
    cl_mem y = test_poisoned(n);
    cl_mem dx = accumulate ? test_upload(prior, n) : test_poisoned(n);
    cl_mem dg = accumulate ? test_upload(prior, span) : test_poisoned(span);
    cl_mem workspace =
        test_poisoned(digcl_rmsnorm_gate_backward_workspace_bytes(rows, V) / sizeof(float) + 1);
    digcl_rmsnorm_gate_forward(ctx, rows, V, xm, gm, gate_rows, pm, weight_offset, y);
    digcl_rmsnorm_gate_backward(ctx, rows, V, dym, xm, gm, gate_rows, pm, weight_offset, dx, dg,
                                accumulate, dwm, weight_offset, workspace);
    char label[128];
    snprintf(label, sizeof label, "rmsnorm_gate forward rows=%d V=%d off=%zu heads=%d", rows, V,
             weight_offset, layout.heads);
    dense_expect(label, y, y_want, n, DENSE_FORWARD_TOLERANCE);
    /* V = 1 is degenerate: dx = rstd dxn (1 - xn^2) with 1 - xn^2 ~ eps / x^2, which float
     * cannot resolve (cancellation); DiG uses V = 64. */
    snprintf(label, sizeof label, "rmsnorm_gate dx rows=%d V=%d acc=%d", rows, V, accumulate);
    if (V > 1) dense_expect(label, dx, dx_want, n, DENSE_BACKWARD_TOLERANCE);
    snprintf(label, sizeof label, "rmsnorm_gate dgate rows=%d V=%d heads=%d", rows, V,
             layout.heads);
    expect_gate_gradient(label, dg, gate_rows, rows, V, dg_want, accumulate ? prior : NULL);
    snprintf(label, sizeof label, "rmsnorm_gate dweight (+=) rows=%d V=%d", rows, V);
    dense_expect(label, dwm, dw_want, weight_offset + V, DENSE_BACKWARD_TOLERANCE);
    test_release(xm), test_release(gm), test_release(dym), test_release(pm), test_release(dwm);
    test_release(y), test_release(dx), test_release(dg), test_release(workspace);
    free(x), free(g), free(dy), free(prior), free(params), free(grads), free(xw), free(gw);
    free(dyw), free(ww), free(y_want), free(dx_want), free(dg_want), free(dw_want);
    free(prior_dense);
}

static void test_rmsnorm_gate(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(33);
    run_rmsnorm_gate(&rng, 1, 1, 0, 0, DENSE_GATE);
    run_rmsnorm_gate(&rng, 7 * 6, 33, 2, 1, DENSE_GATE);
    run_rmsnorm_gate(&rng, 36 * 6 * 2, 64, 0, 0, DENSE_GATE);
    run_rmsnorm_gate(&rng, 257 * 6, 64, 4, 1, DENSE_GATE);
    run_rmsnorm_gate(&rng, 9, 64, 3, 0, DENSE_GATE);
    /* g columns of DiG's fused projection rows: [q | k | v | g | low-rank] (float4 path) */
    const gate_layout fused = {6, 2 * 192 + 2 * 384 + 16 - 6 * 64, 2 * 192 + 384};
    run_rmsnorm_gate(&rng, 37 * 6, 64, 0, 0, fused);
    run_rmsnorm_gate(&rng, 37 * 6, 64, 4, 1, fused);
    const gate_layout odd = {3, 5, 3}; /* scalar path */
    run_rmsnorm_gate(&rng, 11 * 3, 33, 1, 1, odd);
}

/* ---------------------------------------------------------------- oracle gradients */

typedef struct ln_problem {
    int N, T, D;
    double *x, *shift, *scale, *weights, *y, *mean, *rstd;
} ln_problem;

static double ln_modulate_loss(void *problem) {
    ln_problem *p = problem;
    digcl_ref_layernorm_modulate_forward(p->N, p->T, p->D, p->x, p->shift, p->scale, p->y, p->mean,
                                         p->rstd);
    return test_weighted_sum(p->y, p->weights, (size_t)p->N * p->T * p->D);
}

static double ln_loss(void *problem) {
    ln_problem *p = problem;
    digcl_ref_layernorm_forward(p->N * p->T, p->D, p->x, p->y, p->mean, p->rstd);
    return test_weighted_sum(p->y, p->weights, (size_t)p->N * p->T * p->D);
}

static void test_layernorm_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(34);
    ln_problem p = {2, 3, 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const size_t n = 30, v = 10;
    p.x = test_random_doubles(&rng, n), p.shift = test_random_doubles(&rng, v);
    p.scale = test_random_doubles(&rng, v), p.weights = test_random_doubles(&rng, n);
    p.y = test_zeros(n), p.mean = test_zeros(6), p.rstd = test_zeros(6);
    double *dx = test_zeros(n), *dshift = test_zeros(v), *dscale = test_zeros(v);
    ln_loss(&p);
    digcl_ref_layernorm_backward(6, 5, p.weights, p.x, p.mean, p.rstd, dx);
    test_check_gradient("layernorm oracle d/dx", ln_loss, &p, p.x, dx, n, n);
    ln_modulate_loss(&p);
    digcl_ref_layernorm_modulate_backward(2, 3, 5, p.weights, p.x, p.mean, p.rstd, p.scale, dx,
                                          dshift, dscale);
    test_check_gradient("ln+modulate oracle d/dx", ln_modulate_loss, &p, p.x, dx, n, n);
    test_check_gradient("ln+modulate oracle d/dshift", ln_modulate_loss, &p, p.shift, dshift, v, v);
    test_check_gradient("ln+modulate oracle d/dscale", ln_modulate_loss, &p, p.scale, dscale, v, v);
    free(p.x), free(p.shift), free(p.scale), free(p.weights), free(p.y), free(p.mean);
    free(p.rstd), free(dx), free(dshift), free(dscale);
}

typedef struct rms_problem {
    int rows, V;
    double *x, *gate, *weight, *weights, *y;
} rms_problem;

static double rms_loss(void *problem) {
    rms_problem *p = problem;
    digcl_ref_rmsnorm_gate_forward(p->rows, p->V, p->x, p->gate, p->weight, p->y);
    return test_weighted_sum(p->y, p->weights, (size_t)p->rows * p->V);
}

static void test_rmsnorm_gate_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(35);
    rms_problem p = {4, 6, NULL, NULL, NULL, NULL, NULL};
    const size_t n = 24;
    p.x = test_random_doubles(&rng, n), p.gate = test_random_doubles(&rng, n);
    p.weight = test_random_doubles(&rng, 6), p.weights = test_random_doubles(&rng, n);
    p.y = test_zeros(n);
    double *dx = test_zeros(n), *dg = test_zeros(n), *dw = test_zeros(6);
    digcl_ref_rmsnorm_gate_backward(4, 6, p.weights, p.x, p.gate, p.weight, dx, dg, dw);
    test_check_gradient("rmsnorm_gate oracle d/dx", rms_loss, &p, p.x, dx, n, n);
    test_check_gradient("rmsnorm_gate oracle d/dgate", rms_loss, &p, p.gate, dg, n, n);
    test_check_gradient("rmsnorm_gate oracle d/dweight", rms_loss, &p, p.weight, dw, 6, 6);
    free(p.x), free(p.gate), free(p.weight), free(p.weights), free(p.y), free(dx), free(dg);
    free(dw);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_layernorm_modulate),
        cmocka_unit_test(test_rmsnorm_gate),
        cmocka_unit_test(test_layernorm_oracle_gradients),
        cmocka_unit_test(test_rmsnorm_gate_oracle_gradients),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
