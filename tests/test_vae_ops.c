/* The VAE's op families against their double references on random inputs, outputs poisoned
 * with NaN: conv2d (3x3 stride 1 and 2 with the downsampler's (0, 1, 0, 1) padding, 1x1,
 * accumulate, no bias, chunked im2col), GroupNorm (+ SiLU, several chunks per group), nearest
 * upsampling, ReLU, tanh clamp, affine, the posterior sample and the blocked spatial attention. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "dense_helpers.h"
#include "digcl/conv2d.h"
#include "digcl/groupnorm.h"
#include <string.h>
#include "digcl/upsample.h"
#include "digcl/vae_ops.h"
#include "digcl/ref/conv2d.h"
#include "digcl/ref/groupnorm.h"
#include "digcl/ref/upsample.h"
#include "digcl/ref/vae_ops.h"

/* ---------------------------------------------------------------- conv2d */

typedef struct conv_case {
    digcl_conv2d_shape shape;
    int has_bias, accumulate;
    size_t workspace_floats; /* 0: the full size */
} conv_case;

static void run_conv(test_rng *rng, const conv_case *c) {
    digcl_context *ctx = test_context();
    const digcl_conv2d_shape *s = &c->shape;
    const int Ho = digcl_conv2d_out_height(s), Wo = digcl_conv2d_out_width(s);
    const size_t nx = (size_t)s->N * s->C * s->H * s->W, ny = (size_t)s->N * s->O * Ho * Wo;
    const size_t nw = (size_t)s->O * s->C * s->K * s->K, w_pad = 5, b_pad = 3;
    float *x = test_random_floats(rng, nx, 1.0f), *w = test_random_floats(rng, nw + w_pad, 0.3f);
    float *b = test_random_floats(rng, (size_t)s->O + b_pad, 1.0f);
    float *prior = test_random_floats(rng, ny, 1.0f);
    double *xw = test_widen(x, nx), *ww = test_widen(w + w_pad, nw);
    double *bw = test_widen(b + b_pad, (size_t)s->O), *want = test_zeros(ny);
    digcl_ref_conv2d_forward(s, xw, ww, c->has_bias ? bw : NULL, want);
    for (size_t i = 0; c->accumulate && i < ny; ++i) want[i] += prior[i];
    size_t ws = c->workspace_floats ? c->workspace_floats : digcl_conv2d_full_workspace_floats(s);
    cl_mem xm = test_upload(x, nx), wm = test_upload(w, nw + w_pad);
    cl_mem bm = test_upload(b, (size_t)s->O + b_pad);
    cl_mem y = c->accumulate ? test_upload(prior, ny) : test_poisoned(ny);
    cl_mem workspace = test_poisoned(ws + 1);
    digcl_conv2d_forward(ctx, s, xm, 0, wm, w_pad, c->has_bias ? bm : NULL, b_pad, y, 0,
                         c->accumulate, workspace, ws);
    char label[160];
    snprintf(label, sizeof label,
             "conv2d N=%d C=%d %dx%d O=%d K=%d S=%d pad=%d%d%d%d bias=%d "
             "acc=%d ws=%zu",
             s->N, s->C, s->H, s->W, s->O, s->K, s->stride, s->pad_top, s->pad_left, s->pad_bottom,
             s->pad_right, c->has_bias, c->accumulate, ws);
    dense_expect(label, y, want, ny, DENSE_FORWARD_TOLERANCE);
    test_release(xm), test_release(wm), test_release(bm), test_release(y);
    test_release(workspace);
    free(x), free(w), free(b), free(prior), free(xw), free(ww), free(bw), free(want);
}

static void test_conv2d(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1201);
    const conv_case cases[] = {
        {{1, 3, 9, 7, 5, 3, 1, 1, 1, 1, 1}, 1, 0, 0},
        {{2, 8, 16, 12, 16, 3, 1, 1, 1, 1, 1}, 1, 1, 0},
        {{2, 6, 10, 9, 7, 3, 2, 0, 0, 1, 1}, 1, 0, 0},  /* the VAE downsampler */
        {{1, 5, 9, 5, 4, 3, 2, 1, 1, 1, 1}, 0, 0, 0},   /* TAESD's stride-2 conv, no bias */
        {{2, 9, 6, 11, 13, 1, 1, 0, 0, 0, 0}, 1, 1, 0}, /* 1x1 shortcut, accumulate */
        {{1, 4, 7, 7, 3, 1, 1, 0, 0, 0, 0}, 0, 0, 0},   /* 1x1 without bias */
        {{1, 7, 17, 19, 6, 3, 1, 1, 1, 1, 1}, 1, 0, 7 * 9 * 64}, /* chunked im2col */
        {{1, 3, 1, 1, 2, 3, 1, 1, 1, 1, 1}, 1, 0, 0},            /* a single pixel */
        /* several tiles along O, pixels and C K K (the implicit GEMM's edges), float4 rows */
        {{2, 20, 23, 21, 70, 3, 1, 1, 1, 1, 1}, 1, 1, 0},
        {{3, 12, 16, 16, 36, 3, 2, 0, 0, 1, 1}, 0, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; ++i) run_conv(&rng, &cases[i]);
}

/* ---------------------------------------------------------------- GroupNorm */

static void run_groupnorm(test_rng *rng, digcl_groupnorm_shape s, int silu) {
    digcl_context *ctx = test_context();
    const size_t n = (size_t)s.N * s.C * s.pixels, offset = 11;
    float *x = test_random_floats(rng, n, 2.0f);
    for (size_t i = 0; i < n; ++i) x[i] += 1.5f; /* a non-zero mean */
    float *params = test_random_floats(rng, offset + 2 * (size_t)s.C, 1.0f);
    double *xw = test_widen(x, n), *gamma = test_widen(params + offset, (size_t)s.C);
    double *beta = test_widen(params + offset + s.C, (size_t)s.C), *want = test_zeros(n);
    digcl_ref_groupnorm_forward(&s, xw, gamma, beta, silu, want);
    cl_mem xm = test_upload(x, n), pm = test_upload(params, offset + 2 * (size_t)s.C);
    cl_mem y = test_poisoned(n);
    cl_mem ws = test_poisoned(digcl_groupnorm_workspace_floats(&s));
    digcl_groupnorm_forward(ctx, &s, xm, pm, offset, offset + s.C, silu, y, ws);
    char label[128];
    snprintf(label, sizeof label, "groupnorm N=%d C=%d pixels=%d G=%d silu=%d", s.N, s.C, s.pixels,
             s.groups, silu);
    dense_expect(label, y, want, n, DENSE_FORWARD_TOLERANCE);
    digcl_groupnorm_forward(ctx, &s, xm, pm, offset, offset + s.C, silu, xm, ws); /* in place */
    snprintf(label, sizeof label, "groupnorm in place C=%d pixels=%d", s.C, s.pixels);
    dense_expect(label, xm, want, n, DENSE_FORWARD_TOLERANCE);
    test_release(xm), test_release(pm), test_release(y), test_release(ws);
    free(x), free(params), free(xw), free(gamma), free(beta), free(want);
}

static void test_groupnorm(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1202);
    run_groupnorm(&rng, (digcl_groupnorm_shape){1, 4, 1, 4, 1e-6f}, 0);
    run_groupnorm(&rng, (digcl_groupnorm_shape){2, 64, 49, 32, 1e-6f}, 1);
    run_groupnorm(&rng, (digcl_groupnorm_shape){1, 96, 37 * 29, 32, 1e-6f}, 0);
    run_groupnorm(&rng, (digcl_groupnorm_shape){2, 8, 128 * 130, 2, 1e-6f}, 1); /* many chunks */
}

/* An image [C, H, W] normalised in row strips: the moments of each strip merged on the host,
 * then each strip normalised with the image's statistics, must equal the whole-image
 * GroupNorm (the streamed VAE's use). */
static void run_groupnorm_strips(test_rng *rng, int C, int H, int W, int G, const int *cuts,
                                 int strips) {
    digcl_context *ctx = test_context();
    const size_t n = (size_t)C * H * W, offset = 5;
    float *x = test_random_floats(rng, n, 2.0f);
    for (size_t i = 0; i < n; ++i) x[i] += 0.75f;
    float *params = test_random_floats(rng, offset + 2 * (size_t)C, 1.0f);
    const digcl_groupnorm_shape whole = {1, C, H * W, G, 1e-6f};
    double *xw = test_widen(x, n), *gamma = test_widen(params + offset, (size_t)C);
    double *beta = test_widen(params + offset + C, (size_t)C), *want = test_zeros(n);
    digcl_ref_groupnorm_forward(&whole, xw, gamma, beta, 1, want);
    cl_mem pm = test_upload(params, offset + 2 * (size_t)C);
    float *strip = malloc(n * sizeof *strip), moments[2 * 64], stats[2 * 64];
    digcl_groupnorm_total total = digcl_groupnorm_total_empty(G);
    for (int pass = 0; pass < 2; ++pass)
        for (int k = 0; k < strips; ++k) {
            const int r0 = cuts[k], rows = cuts[k + 1] - cuts[k];
            for (int c = 0; c < C; ++c) /* rows [r0, r0 + rows) of every channel */
                memcpy(strip + (size_t)c * rows * W, x + ((size_t)c * H + r0) * W,
                       (size_t)rows * W * sizeof *x);
            const digcl_groupnorm_shape part = {1, C, rows * W, G, 1e-6f};
            const size_t m = (size_t)C * rows * W;
            cl_mem xm = test_upload(strip, m), y = test_poisoned(m);
            cl_mem ws = test_poisoned(digcl_groupnorm_workspace_floats(&part));
            if (pass == 0) {
                digcl_groupnorm_moments(ctx, &part, xm, ws, moments);
                digcl_groupnorm_total_add(&total, (double)C / G * rows * W, moments);
            } else {
                digcl_groupnorm_apply_stats(ctx, &part, xm, pm, offset, offset + C, 1, y, ws,
                                            stats);
                double *part_want = test_zeros(m);
                for (int c = 0; c < C; ++c)
                    for (size_t i = 0; i < (size_t)rows * W; ++i)
                        part_want[(size_t)c * rows * W + i] = want[((size_t)c * H + r0) * W + i];
                char label[128];
                snprintf(label, sizeof label, "groupnorm strip %d of %d, rows %d-%d of %dx%dx%d", k,
                         strips, r0, r0 + rows, C, H, W);
                dense_expect(label, y, part_want, m, DENSE_FORWARD_TOLERANCE);
                free(part_want);
            }
            if (pass == 0 && k == strips - 1) digcl_groupnorm_total_stats(&total, 1e-6f, stats);
            test_release(xm), test_release(y), test_release(ws);
        }
    test_release(pm);
    free(x), free(params), free(xw), free(gamma), free(beta), free(want), free(strip);
}

static void test_groupnorm_strips(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1203);
    const int three[] = {0, 1, 6, 11}, two[] = {0, 70, 131};
    run_groupnorm_strips(&rng, 16, 11, 9, 4, three, 3);
    run_groupnorm_strips(&rng, 8, 131, 130, 2, two, 2); /* many chunks per strip */
}

/* ---------------------------------------------------------------- upsample, elementwise */

static void test_upsample(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1203);
    const int planes = 6, H = 5, W = 7;
    for (int factor = 1; factor <= 3; ++factor) {
        const size_t n = (size_t)planes * H * W, m = n * factor * factor;
        float *x = test_random_floats(&rng, n, 1.0f);
        double *xw = test_widen(x, n), *want = test_zeros(m);
        digcl_ref_upsample_nearest_forward(planes, H, W, factor, xw, want);
        cl_mem xm = test_upload(x, n), y = test_poisoned(m);
        digcl_upsample_nearest_forward(test_context(), planes, H, W, factor, xm, y);
        dense_expect("upsample nearest", y, want, m, 0.0 + 1e-12);
        test_release(xm), test_release(y);
        free(x), free(xw), free(want);
    }
}

static void test_elementwise(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1204);
    digcl_context *ctx = test_context();
    const size_t n = 1037;
    float *x = test_random_floats(&rng, n, 4.0f);
    double *relu = test_zeros(n), *clamp = test_zeros(n), *affine = test_zeros(n);
    for (size_t i = 0; i < n; ++i) {
        relu[i] = x[i] > 0 ? x[i] : 0.0;
        clamp[i] = 3.0 * tanh(x[i] / 3.0);
        affine[i] = 0.5 * x[i] + 0.5;
    }
    cl_mem a = test_upload(x, n), b = test_upload(x, n), c = test_poisoned(n);
    digcl_relu_inplace(ctx, n, a);
    dense_expect("relu", a, relu, n, DENSE_FORWARD_TOLERANCE);
    digcl_tanh_clamp_forward(ctx, n, b, c);
    dense_expect("tanh clamp", c, clamp, n, DENSE_FORWARD_TOLERANCE);
    digcl_affine_inplace(ctx, n, 0.5f, 0.5f, b);
    dense_expect("affine", b, affine, n, DENSE_FORWARD_TOLERANCE);
    test_release(a), test_release(b), test_release(c);
    free(x), free(relu), free(clamp), free(affine);
}

/* z = scale (mean + exp(logvar / 2) eps), with logvar beyond the clamp on both sides. */
static void test_posterior_sample(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1206);
    const size_t n = 777;
    float *mean = test_random_floats(&rng, n, 3.0f), *logvar = test_random_floats(&rng, n, 8.0f);
    float *eps = test_random_floats(&rng, n, 2.0f);
    logvar[0] = -45.0f, logvar[1] = 25.0f, eps[1] = 1e-6f;
    double *mw = test_widen(mean, n), *lw = test_widen(logvar, n), *ew = test_widen(eps, n);
    double *want = test_zeros(n);
    digcl_ref_posterior_sample_forward(n, 0.18215, mw, lw, ew, want);
    assert_true(fabs(want[1] - 0.18215 * (mean[1] + exp(10.0) * eps[1])) < 1e-9);
    cl_mem z = test_upload(mean, n), l = test_upload(logvar, n), e = test_upload(eps, n);
    digcl_posterior_sample_forward(test_context(), n, 0.18215f, z, l, e);
    dense_expect("posterior sample", z, want, n, DENSE_FORWARD_TOLERANCE);
    test_release(z), test_release(l), test_release(e);
    free(mean), free(logvar), free(eps), free(mw), free(lw), free(ew), free(want);
}

/* ---------------------------------------------------------------- attention */

static void run_attention(test_rng *rng, int C, int T, size_t score_floats) {
    const size_t n = (size_t)C * T, q_offset = 3;
    float *qkv = test_random_floats(rng, q_offset + 3 * n, 1.0f);
    double *q = test_widen(qkv + q_offset, n), *k = test_widen(qkv + q_offset + n, n);
    double *v = test_widen(qkv + q_offset + 2 * n, n), *want = test_zeros(n);
    digcl_ref_spatial_attention_forward(C, T, q, k, v, want);
    cl_mem qkv_mem = test_upload(qkv, q_offset + 3 * n), out = test_poisoned(n + 2);
    cl_mem scores = test_poisoned(score_floats);
    digcl_plane_ref qr = {qkv_mem, q_offset}, kr = {qkv_mem, q_offset + n};
    digcl_plane_ref vr = {qkv_mem, q_offset + 2 * n}, outr = {out, 2};
    digcl_spatial_attention_forward(test_context(), C, T, qr, kr, vr, outr, scores, score_floats);
    char label[96];
    snprintf(label, sizeof label, "spatial attention C=%d T=%d block rows %d", C, T,
             digcl_spatial_attention_block_rows(T, score_floats));
    dense_expect_at(label, out, 2, want, n, DENSE_FORWARD_TOLERANCE);
    test_release(qkv_mem), test_release(out), test_release(scores);
    free(qkv), free(q), free(k), free(v), free(want);
}

static void test_attention(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(1205);
    run_attention(&rng, 32, 1, 1);
    run_attention(&rng, 64, 45, 45 * 45);   /* whole matrix */
    run_attention(&rng, 48, 300, 300 * 37); /* blocks of 37 query rows, ragged last block */
    run_attention(&rng, 512, 64, 64 * 64);  /* the VAE's width */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv2d),           cmocka_unit_test(test_groupnorm),
        cmocka_unit_test(test_groupnorm_strips), cmocka_unit_test(test_upsample),
        cmocka_unit_test(test_elementwise),      cmocka_unit_test(test_attention),
        cmocka_unit_test(test_posterior_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
