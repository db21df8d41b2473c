/* Chunkwise GLA kernels (cl/gla.cl) against the float64 token recurrence
 * (src/ops/gla_ref.c), forward and backward, with h0 / hT / dhT / dh0.
 *
 * Pass: relative L2 (RMS) error < 1e-5 forward (o, hT), < 1e-4 gradients,
 * never NaN/Inf, no writes into the gaps of strided views; results agree
 * across chunk sizes to 1e-5. The CI subset covers every T, chunk, (K, V) and
 * gate at least once; DIGCL_LONG_TESTS=1 runs the full cartesian sweep.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/gla.h"
#include "digcl/ref/gla.h"
#include "test_util.h"

/* LAYOUT_FUSED: q, k, v are column slices of one buffer of rows (and dq, dk, dv of one
 * gradient buffer), as in DiG's projection rows; g and o dense. */
enum { LAYOUT_TOKEN_MAJOR, LAYOUT_HEAD_MAJOR, LAYOUT_PADDED, LAYOUT_FUSED, LAYOUTS };
enum { GATE_LOGSIGMOID, GATE_ZERO, GATE_MINUS_20 };

typedef struct gla_case {
    int N, T, H, K, V, chunk;
    int layout;
    int gate;   /* GATE_* */
    double tau; /* GATE_LOGSIGMOID: g = logsigmoid(x) / tau */
    int with_h0, with_dhT;
    uint64_t seed;
} gla_case;

/* Worst relative errors seen per category, printed at the end of a test. */
typedef struct gla_errors {
    double o, hT, dq, dk, dv, dg, dh0;
} gla_errors;

static gla_errors worst;

static double maxd(double a, double b) { return a > b ? a : b; }

static digcl_gla_shape shape_of(const gla_case *c) {
    if (c->layout == LAYOUT_HEAD_MAJOR)
        return digcl_gla_shape_head_major(c->N, c->T, c->H, c->K, c->V, c->chunk);
    digcl_gla_shape s = digcl_gla_shape_token_major(c->N, c->T, c->H, c->K, c->V, c->chunk);
    if (c->layout == LAYOUT_PADDED) { /* column slices of wider rows: each its own layout */
        digcl_gla_strides *layouts[5] = {&s.q, &s.k, &s.g, &s.v, &s.o};
        for (int i = 0; i < 5; i++) {
            digcl_gla_strides *x = layouts[i];
            x->offset = (size_t)(3 * i + 1);
            x->head = (size_t)(i < 3 ? c->K : c->V) + (size_t)(i + 2);
            x->token = x->head * c->H + (size_t)(2 * i + 1);
            x->batch = x->token * c->T + (size_t)(i + 7);
        }
    }
    if (c->layout == LAYOUT_FUSED) { /* [q | k | v | 3 more] per token */
        size_t qk = (size_t)c->H * c->K, row = 2 * qk + (size_t)c->H * c->V + 3;
        digcl_gla_strides q = {0, row, (size_t)c->K, row * c->T};
        s.q = q;
        s.k = q, s.k.offset = qk;
        s.v = q, s.v.offset = 2 * qk, s.v.head = (size_t)c->V;
    }
    return s;
}

enum { TENSOR_Q, TENSOR_K, TENSOR_G, TENSOR_V, TENSOR_O, TENSORS };

static const digcl_gla_strides *layout_of(const digcl_gla_shape *s, int tensor) {
    const digcl_gla_strides *layouts[TENSORS] = {&s->q, &s->k, &s->g, &s->v, &s->o};
    return layouts[tensor];
}

static int width_of(const digcl_gla_shape *s, int tensor) {
    return tensor < TENSOR_V ? s->K : s->V;
}

/* Host tensor in the view's layout: float (uploaded) and double (oracle). */
typedef struct host_tensor {
    size_t span;   /* elements of the whole buffer, gaps included */
    float *values; /* [span] */
    double *wide;  /* [span] */
} host_tensor;

static host_tensor tensor_random(test_rng *rng, size_t span) {
    host_tensor x = {span, malloc(span * sizeof(float)), malloc(span * sizeof(double))};
    assert_non_null(x.values);
    assert_non_null(x.wide);
    test_fill_normal(rng, x.values, span, 1.0f);
    for (size_t i = 0; i < span; i++) x.wide[i] = x.values[i];
    return x;
}

static host_tensor tensor_copy(const host_tensor *x) {
    host_tensor y = {x->span, malloc(x->span * sizeof(float)), malloc(x->span * sizeof(double))};
    assert_non_null(y.values);
    assert_non_null(y.wide);
    memcpy(y.values, x->values, x->span * sizeof(float));
    memcpy(y.wide, x->wide, x->span * sizeof(double));
    return y;
}

static void tensor_free(host_tensor *x) {
    free(x->values);
    free(x->wide);
}

static void fill_gate(test_rng *rng, host_tensor *g, const gla_case *c) {
    for (size_t i = 0; i < g->span; i++) {
        double x = test_normal(rng), value = 0;
        if (c->gate == GATE_MINUS_20) value = -20;
        if (c->gate == GATE_LOGSIGMOID)
            value = (x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x))) / c->tau;
        g->values[i] = (float)value;
        g->wide[i] = g->values[i];
    }
}

/* Copies the view's elements [N, T, H, D] out of a strided buffer into dense
 * order and marks them in `inside`. */
static void gather(const digcl_gla_shape *s, const digcl_gla_strides *x, int D,
                   const float *strided, char *inside, float *dense) {
    size_t count = 0;
    for (int n = 0; n < s->N; n++)
        for (int t = 0; t < s->T; t++)
            for (int h = 0; h < s->H; h++)
                for (int d = 0; d < D; d++) {
                    size_t at = x->offset + n * x->batch + h * x->head + t * x->token + d;
                    dense[count++] = strided[at];
                    inside[at] = 1;
                }
}

static void gather_wide(const digcl_gla_shape *s, const digcl_gla_strides *x, int D,
                        const double *strided, double *dense) {
    size_t count = 0;
    for (int n = 0; n < s->N; n++)
        for (int t = 0; t < s->T; t++)
            for (int h = 0; h < s->H; h++)
                for (int d = 0; d < D; d++)
                    dense[count++] =
                        strided[x->offset + n * x->batch + h * x->head + t * x->token + d];
}

/* Device result of one tensor, dense [N, T, H, D] (or [N, H, K, V] states). */
typedef struct gla_outputs {
    float *o, *hT, *dq, *dk, *dv, *dg, *dh0;
} gla_outputs;

static void outputs_free(gla_outputs *x) {
    float *all[] = {x->o, x->hT, x->dq, x->dk, x->dv, x->dg, x->dh0};
    for (size_t i = 0; i < 7; i++) free(all[i]);
}

/* Downloads a buffer of `span` elements holding the outputs (the gradients of
 * `tensors`, or o), returns their dense copies in dense[i] and checks that nothing
 * outside them was written (the poison kept). */
static void download_views(cl_mem mem, size_t span, const digcl_gla_shape *s, const int *tensors,
                           int count, float **dense) {
    float *strided = test_download(mem, span);
    char *inside = calloc(span, 1);
    assert_non_null(inside);
    for (int i = 0; i < count; i++) {
        const int D = width_of(s, tensors[i]);
        dense[i] = malloc((size_t)s->N * s->T * s->H * D * sizeof(float));
        assert_non_null(dense[i]);
        gather(s, layout_of(s, tensors[i]), D, strided, inside, dense[i]);
    }
    size_t touched = 0;
    for (size_t i = 0; i < span; i++) touched += !inside[i] && !isnan(strided[i]);
    if (touched) print_message("gla: %zu elements written outside the views\n", touched);
    assert_int_equal(touched, 0);
    free(inside);
    free(strided);
}

static float *download_view(cl_mem mem, const digcl_gla_shape *s, int tensor) {
    float *dense = NULL;
    download_views(mem, digcl_gla_span(s, layout_of(s, tensor), width_of(s, tensor)), s, &tensor, 1,
                   &dense);
    return dense;
}

static double check(const char *what, const gla_case *c, const float *got, const double *want,
                    size_t n, double tolerance) {
    double error = test_rel_l2(got, want, n);
    if (!(error < tolerance))
        print_message("gla FAIL %s: rel %.3g (N=%d T=%d H=%d K=%d V=%d C=%d layout=%d gate=%d "
                      "tau=%g h0=%d dhT=%d)\n",
                      what, error, c->N, c->T, c->H, c->K, c->V, c->chunk, c->layout, c->gate,
                      c->tau, c->with_h0, c->with_dhT);
    assert_true(error < tolerance);
    return error;
}

typedef struct gla_problem {
    gla_case c;
    digcl_gla_shape shape;
    size_t span[TENSORS]; /* buffer elements of q, k, g, v, o (and their gradients) */
    size_t state_count, qk_dense, value_dense;
    host_tensor q, k, v, g, do_, h0, dhT;
} gla_problem;

static gla_problem problem_create(const gla_case *c) {
    gla_problem p;
    memset(&p, 0, sizeof p);
    p.c = *c;
    p.shape = shape_of(c);
    for (int i = 0; i < TENSORS; i++)
        p.span[i] = digcl_gla_span(&p.shape, layout_of(&p.shape, i), width_of(&p.shape, i));
    if (c->layout == LAYOUT_FUSED) /* one buffer of rows for q, k, v: v ends last */
        p.span[TENSOR_Q] = p.span[TENSOR_K] = p.span[TENSOR_V];
    p.state_count = (size_t)c->N * c->H * c->K * c->V;
    p.qk_dense = (size_t)c->N * c->T * c->H * c->K;
    p.value_dense = (size_t)c->N * c->T * c->H * c->V;
    test_rng rng = test_rng_seeded(c->seed);
    p.q = tensor_random(&rng, p.span[TENSOR_Q]);
    p.k = c->layout == LAYOUT_FUSED ? tensor_copy(&p.q) : tensor_random(&rng, p.span[TENSOR_K]);
    p.v = c->layout == LAYOUT_FUSED ? tensor_copy(&p.q) : tensor_random(&rng, p.span[TENSOR_V]);
    p.do_ = tensor_random(&rng, p.span[TENSOR_O]);
    p.h0 = tensor_random(&rng, p.state_count);
    p.dhT = tensor_random(&rng, p.state_count);
    p.g = tensor_random(&rng, p.span[TENSOR_G]);
    fill_gate(&rng, &p.g, c);
    return p;
}

static void problem_free(gla_problem *p) {
    host_tensor *all[] = {&p->q, &p->k, &p->v, &p->g, &p->do_, &p->h0, &p->dhT};
    for (size_t i = 0; i < 7; i++) tensor_free(all[i]);
}

/* Runs forward and backward on the device with poisoned outputs and
 * workspace; reuse = 1 runs the backward with DIGCL_GLA_REUSE_STATES. */
static gla_outputs run_device(const gla_problem *p, int reuse) {
    digcl_context *ctx = test_context();
    const digcl_gla_shape *s = &p->shape;
    const size_t *span = p->span;
    const int fused = p->c.layout == LAYOUT_FUSED; /* q, k, v (dq, dk, dv) in one buffer */
    cl_mem q = test_upload(p->q.values, span[TENSOR_Q]);
    cl_mem k = fused ? q : test_upload(p->k.values, span[TENSOR_K]);
    cl_mem g = test_upload(p->g.values, span[TENSOR_G]);
    cl_mem v = fused ? q : test_upload(p->v.values, span[TENSOR_V]);
    cl_mem do_ = test_upload(p->do_.values, span[TENSOR_O]);
    cl_mem h0 = p->c.with_h0 ? test_upload(p->h0.values, p->state_count) : NULL;
    cl_mem dhT = p->c.with_dhT ? test_upload(p->dhT.values, p->state_count) : NULL;
    cl_mem o = test_poisoned(span[TENSOR_O]), hT = test_poisoned(p->state_count);
    cl_mem dq = test_poisoned(span[TENSOR_Q]);
    cl_mem dk = fused ? dq : test_poisoned(span[TENSOR_K]);
    cl_mem dg = test_poisoned(span[TENSOR_G]);
    cl_mem dv = fused ? dq : test_poisoned(span[TENSOR_V]);
    cl_mem dh0 = test_poisoned(p->state_count);
    cl_mem workspace = test_poisoned(digcl_gla_backward_workspace_bytes(s) / sizeof(float));
    digcl_gla_forward(ctx, s, q, k, v, g, h0, o, hT, workspace, 0);
    digcl_finish(ctx); /* see below */
    if (!reuse) test_poison(workspace, digcl_gla_backward_workspace_bytes(s) / sizeof(float));
    digcl_gla_backward(ctx, s, q, k, v, g, h0, do_, dhT, dq, dk, dv, dg, dh0, workspace, 0,
                       reuse ? DIGCL_GLA_REUSE_STATES : 0);
    /* The finishes separate forward, poisoning and backward while PoCL 3.1
     * problems were chased (docs/GLA_DESIGN.md, PoCL 3.1 workarounds); the
     * in-order queue should make them unnecessary */
    digcl_finish(ctx);
    gla_outputs out;
    out.o = download_view(o, s, TENSOR_O);
    out.dg = download_view(dg, s, TENSOR_G);
    if (fused) {
        const int rows[3] = {TENSOR_Q, TENSOR_K, TENSOR_V};
        float *dense[3];
        download_views(dq, span[TENSOR_Q], s, rows, 3, dense);
        out.dq = dense[0], out.dk = dense[1], out.dv = dense[2];
    } else {
        out.dv = download_view(dv, s, TENSOR_V);
        out.dq = download_view(dq, s, TENSOR_Q);
        out.dk = download_view(dk, s, TENSOR_K);
    }
    out.hT = test_download(hT, p->state_count);
    out.dh0 = test_download(dh0, p->state_count);
    cl_mem all[] = {q, k, g, v, do_, h0, dhT, o, hT, dq, dk, dg, dv, dh0, workspace};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        int again = 0; /* the fused layout passes one buffer several times */
        for (size_t j = 0; j < i; j++) again |= all[j] == all[i];
        if (all[i] && !again) test_release(all[i]);
    }
    return out;
}

/* Oracle results, dense. */
typedef struct gla_reference {
    double *o, *hT, *dq, *dk, *dv, *dg, *dh0;
} gla_reference;

static double *dense_alloc(size_t n) {
    double *x = malloc((n ? n : 1) * sizeof(double));
    assert_non_null(x);
    return x;
}

static gla_reference run_oracle(const gla_problem *p) {
    const digcl_gla_shape *s = &p->shape;
    const double *h0 = p->c.with_h0 ? p->h0.wide : NULL, *dhT = p->c.with_dhT ? p->dhT.wide : NULL;
    double *o = dense_alloc(p->span[TENSOR_O]), *dv = dense_alloc(p->span[TENSOR_V]);
    double *dq = dense_alloc(p->span[TENSOR_Q]), *dk = dense_alloc(p->span[TENSOR_K]);
    double *dg = dense_alloc(p->span[TENSOR_G]);
    gla_reference r;
    r.hT = dense_alloc(p->state_count);
    r.dh0 = dense_alloc(p->state_count);
    digcl_ref_gla_forward(s, p->q.wide, p->k.wide, p->v.wide, p->g.wide, h0, o, r.hT, 0);
    digcl_ref_gla_backward(s, p->q.wide, p->k.wide, p->v.wide, p->g.wide, h0, p->do_.wide, dhT, dq,
                           dk, dv, dg, r.dh0, 0);
    r.o = dense_alloc(p->value_dense), r.dv = dense_alloc(p->value_dense);
    r.dq = dense_alloc(p->qk_dense), r.dk = dense_alloc(p->qk_dense);
    r.dg = dense_alloc(p->qk_dense);
    gather_wide(s, &s->o, s->V, o, r.o);
    gather_wide(s, &s->v, s->V, dv, r.dv);
    gather_wide(s, &s->q, s->K, dq, r.dq);
    gather_wide(s, &s->k, s->K, dk, r.dk);
    gather_wide(s, &s->g, s->K, dg, r.dg);
    free(o), free(dv), free(dq), free(dk), free(dg);
    return r;
}

static void reference_free(gla_reference *r) {
    double *all[] = {r->o, r->hT, r->dq, r->dk, r->dv, r->dg, r->dh0};
    for (size_t i = 0; i < 7; i++) free(all[i]);
}

static void compare(const gla_problem *p, const gla_outputs *got, const gla_reference *want) {
    const gla_case *c = &p->c;
    worst.o = maxd(worst.o, check("o", c, got->o, want->o, p->value_dense, 1e-5));
    worst.hT = maxd(worst.hT, check("hT", c, got->hT, want->hT, p->state_count, 1e-5));
    worst.dq = maxd(worst.dq, check("dq", c, got->dq, want->dq, p->qk_dense, 1e-4));
    worst.dk = maxd(worst.dk, check("dk", c, got->dk, want->dk, p->qk_dense, 1e-4));
    worst.dv = maxd(worst.dv, check("dv", c, got->dv, want->dv, p->value_dense, 1e-4));
    worst.dg = maxd(worst.dg, check("dg", c, got->dg, want->dg, p->qk_dense, 1e-4));
    worst.dh0 = maxd(worst.dh0, check("dh0", c, got->dh0, want->dh0, p->state_count, 1e-4));
}

/* One case against the oracle; returns the device outputs (caller frees). */
static gla_outputs run_case(const gla_case *c) {
    gla_problem p = problem_create(c);
    gla_reference want = run_oracle(&p);
    gla_outputs got = run_device(&p, 0);
    compare(&p, &got, &want);
    reference_free(&want);
    problem_free(&p);
    return got;
}

static void print_worst(const char *label) {
    print_message("gla %s max rel error: o %.2e hT %.2e dq %.2e dk %.2e dv %.2e dg %.2e dh0 %.2e\n",
                  label, worst.o, worst.hT, worst.dq, worst.dk, worst.dv, worst.dg, worst.dh0);
    memset(&worst, 0, sizeof worst);
}

/* ------------------------------------------------------------------ tests */

/* CI subset: every T, chunk, (K, V), gate and layout appears at least once. */
static void test_gla_against_oracle(void **state) {
    (void)state;
    const gla_case cases[] = {
        /* N  T     H  K    V    C   layout               gate            tau  h0 dhT seed */
        {1, 1, 2, 32, 64, 16, LAYOUT_TOKEN_MAJOR, GATE_LOGSIGMOID, 1, 1, 1, 1},
        {2, 15, 1, 36, 72, 32, LAYOUT_HEAD_MAJOR, GATE_LOGSIGMOID, 0.1, 0, 0, 2},
        {2, 63, 3, 32, 64, 64, LAYOUT_PADDED, GATE_LOGSIGMOID, 16, 1, 0, 3},
        {1, 64, 2, 64, 64, 16, LAYOUT_TOKEN_MAJOR, GATE_ZERO, 1, 1, 1, 4},
        {1, 65, 2, 128, 128, 32, LAYOUT_TOKEN_MAJOR, GATE_MINUS_20, 1, 0, 1, 5},
        {1, 300, 2, 36, 72, 64, LAYOUT_PADDED, GATE_LOGSIGMOID, 1, 1, 1, 6},
        {1, 1024, 2, 32, 64, 32, LAYOUT_HEAD_MAJOR, GATE_LOGSIGMOID, 16, 1, 1, 7},
        /* K and V not multiples of 4: the register blocks' zero padding and edge stores */
        {2, 70, 3, 5, 7, 32, LAYOUT_PADDED, GATE_LOGSIGMOID, 1, 1, 1, 8},
        /* DiG's projection rows: q, k, v read from and dq, dk, dv written to one buffer */
        {2, 100, 3, 32, 64, 32, LAYOUT_FUSED, GATE_LOGSIGMOID, 16, 0, 1, 9},
        {1, 65, 2, 5, 7, 16, LAYOUT_FUSED, GATE_LOGSIGMOID, 1, 1, 0, 10},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        gla_outputs got = run_case(&cases[i]);
        outputs_free(&got);
    }
    print_worst("CI subset");
}

static double outputs_distance(const gla_outputs *a, const gla_outputs *b, const gla_problem *p) {
    double d = test_rel_l2_f(a->o, b->o, p->value_dense);
    d = maxd(d, test_rel_l2_f(a->hT, b->hT, p->state_count));
    d = maxd(d, test_rel_l2_f(a->dq, b->dq, p->qk_dense));
    d = maxd(d, test_rel_l2_f(a->dk, b->dk, p->qk_dense));
    d = maxd(d, test_rel_l2_f(a->dv, b->dv, p->value_dense));
    d = maxd(d, test_rel_l2_f(a->dg, b->dg, p->qk_dense));
    return maxd(d, test_rel_l2_f(a->dh0, b->dh0, p->state_count));
}

/* The same problem with C = 16, 32, 64 gives the same results to 1e-5. */
static void test_gla_chunk_sizes_agree(void **state) {
    (void)state;
    gla_case c = {2, 200, 2, 32, 64, 16, LAYOUT_TOKEN_MAJOR, GATE_LOGSIGMOID, 1, 1, 1, 21};
    gla_problem p = problem_create(&c);
    gla_outputs base = run_device(&p, 0);
    const int chunks[] = {32, 64};
    for (size_t i = 0; i < 2; i++) {
        p.c.chunk = p.shape.chunk = chunks[i];
        gla_outputs other = run_device(&p, 0);
        double distance = outputs_distance(&base, &other, &p);
        print_message("gla chunk 16 vs %d: max rel difference %.2e\n", chunks[i], distance);
        assert_true(distance < 1e-5);
        outputs_free(&other);
    }
    outputs_free(&base);
    problem_free(&p);
}

/* Backward reusing the forward's states matches the recomputing backward. */
static void test_gla_reuse_states(void **state) {
    (void)state;
    gla_case c = {1, 130, 3, 36, 72, 32, LAYOUT_PADDED, GATE_LOGSIGMOID, 1, 1, 1, 31};
    gla_problem p = problem_create(&c);
    gla_reference want = run_oracle(&p);
    gla_outputs recomputed = run_device(&p, 0), reused = run_device(&p, 1);
    compare(&p, &reused, &want);
    double distance = outputs_distance(&recomputed, &reused, &p);
    print_message("gla reuse vs recompute: max rel difference %.2e\n", distance);
    assert_true(distance < 1e-6);
    outputs_free(&recomputed);
    outputs_free(&reused);
    reference_free(&want);
    problem_free(&p);
}

typedef struct bad_call {
    digcl_gla_shape shape;
    size_t workspace_bytes;
} bad_call;

static void call_forward(void *arg) {
    bad_call *b = arg;
    cl_mem x = test_poisoned(1 << 16), workspace = test_poisoned(b->workspace_bytes / 4 + 1);
    digcl_gla_forward(test_context(), &b->shape, x, x, x, x, NULL, x, NULL, workspace, 0);
}

static void test_gla_rejects_bad_arguments(void **state) {
    (void)state;
    char message[512];
    bad_call b = {digcl_gla_shape_token_major(1, 8, 1, 4, 4, 48), 1 << 16};
    assert_true(test_expect_fatal(call_forward, &b, message, sizeof message));
    assert_non_null(strstr(message, "chunk 48"));
    b.shape = digcl_gla_shape_token_major(1, 300, 2, 32, 64, 16);
    b.workspace_bytes = 64;
    assert_true(test_expect_fatal(call_forward, &b, message, sizeof message));
    assert_non_null(strstr(message, "workspace"));
    b.shape.k.token = 3; /* rows of K = 32 overlap */
    assert_true(test_expect_fatal(call_forward, &b, message, sizeof message));
    assert_non_null(strstr(message, "overlap"));
}

/* Full cartesian sweep (DIGCL_LONG_TESTS=1). */
static void test_gla_long_sweep(void **state) {
    (void)state;
    if (!test_long_enabled()) {
        print_message("gla long sweep skipped (DIGCL_LONG_TESTS=1 runs it)\n");
        return;
    }
    const int Ts[] = {1, 15, 63, 64, 65, 300, 1024}, chunks[] = {16, 32, 64};
    const int dims[][2] = {{32, 64}, {36, 72}, {64, 64}, {128, 128}, {5, 7}};
    const double taus[] = {0.1, 1, 16};
    int count = 0;
    for (size_t t = 0; t < 7; t++)
        for (size_t c = 0; c < 3; c++)
            for (size_t d = 0; d < 5; d++)
                for (int gate = 0; gate < 5; gate++)
                    for (int ends = 0; ends < 4; ends++) {
                        gla_case x = {2,
                                      Ts[t],
                                      2,
                                      dims[d][0],
                                      dims[d][1],
                                      chunks[c],
                                      count % LAYOUTS,
                                      gate < 3 ? GATE_LOGSIGMOID : gate - 2,
                                      gate < 3 ? taus[gate] : 1,
                                      ends & 1,
                                      ends >> 1,
                                      (uint64_t)(1000 + count)};
                        gla_outputs got = run_case(&x);
                        outputs_free(&got);
                        count++;
                    }
    print_message("gla long sweep: %d cases\n", count);
    print_worst("long sweep");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gla_rejects_bad_arguments),
        cmocka_unit_test(test_gla_against_oracle),
        cmocka_unit_test(test_gla_chunk_sizes_agree),
        cmocka_unit_test(test_gla_reuse_states),
        cmocka_unit_test(test_gla_long_sweep),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
