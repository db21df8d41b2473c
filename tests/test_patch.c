/* Patch embedding (patchify + GEMM + bias + pos-embed) and unpatchify against
 * the double oracle, for p in {1, 2, 4, 8} and odd channel counts; the
 * oracle's backward against central finite differences. */
#include "digcl/patch.h"
#include "digcl/ref/patch.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

static size_t image_count(const digcl_patch_shape *s) {
    return (size_t)s->N * (size_t)s->C * (size_t)s->H * (size_t)s->W;
}

static size_t token_count(const digcl_patch_shape *s) {
    return (size_t)s->N * (size_t)digcl_patch_tokens(s);
}

/* ---------------------------------------------------------- oracle vs finite differences */

typedef struct embed_problem {
    digcl_patch_shape shape;
    int D;
    double *image, *weight, *bias, *pos, *weights_of_loss, *tokens;
} embed_problem;

static double embed_loss(void *arg) {
    embed_problem *p = arg;
    digcl_ref_patch_embed_forward(&p->shape, p->D, p->image, p->weight, p->bias, p->pos, p->tokens);
    return test_weighted_sum(p->tokens, p->weights_of_loss, token_count(&p->shape) * (size_t)p->D);
}

static double *random_doubles(test_rng *rng, size_t n) {
    double *x = malloc(n * sizeof *x);
    assert_non_null(x);
    test_fill_normal_double(rng, x, n, 1.0);
    return x;
}

static void test_patch_embed_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(301);
    embed_problem p = {.shape = {2, 3, 4, 6, 2}, .D = 5};
    const size_t images = image_count(&p.shape), rows = token_count(&p.shape);
    const size_t K = (size_t)digcl_patch_features(&p.shape), D = (size_t)p.D;
    p.image = random_doubles(&rng, images);
    p.weight = random_doubles(&rng, D * K);
    p.bias = random_doubles(&rng, D);
    p.pos = random_doubles(&rng, (size_t)digcl_patch_tokens(&p.shape) * D);
    p.weights_of_loss = random_doubles(&rng, rows * D);
    p.tokens = test_zeros(rows * D);
    double *dweight = test_zeros(D * K), *dbias = test_zeros(D), *dimage = test_zeros(images);
    digcl_ref_patch_embed_backward(&p.shape, p.D, p.image, p.weight, p.weights_of_loss, dweight,
                                   dbias, dimage);
    test_check_gradient("patch_embed oracle d/dimage", embed_loss, &p, p.image, dimage, images,
                        200);
    test_check_gradient("patch_embed oracle d/dweight", embed_loss, &p, p.weight, dweight, D * K,
                        200);
    test_check_gradient("patch_embed oracle d/dbias", embed_loss, &p, p.bias, dbias, D, 200);
    free(p.image), free(p.weight), free(p.bias), free(p.pos), free(p.weights_of_loss);
    free(p.tokens), free(dweight), free(dbias), free(dimage);
}

typedef struct unpatchify_problem {
    digcl_patch_shape shape;
    double *x, *image, *weights_of_loss;
} unpatchify_problem;

static double unpatchify_loss(void *arg) {
    unpatchify_problem *p = arg;
    digcl_ref_unpatchify_forward(&p->shape, p->x, p->image);
    return test_weighted_sum(p->image, p->weights_of_loss, image_count(&p->shape));
}

static void test_unpatchify_oracle_gradients(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(302);
    unpatchify_problem p = {.shape = {2, 3, 6, 4, 2}};
    const size_t count = image_count(&p.shape);
    p.x = random_doubles(&rng, count);
    p.image = test_zeros(count);
    p.weights_of_loss = random_doubles(&rng, count);
    double *dx = test_zeros(count);
    digcl_ref_unpatchify_backward(&p.shape, p.weights_of_loss, dx);
    test_check_gradient("unpatchify oracle d/dx", unpatchify_loss, &p, p.x, dx, count, 200);
    free(p.x), free(p.image), free(p.weights_of_loss), free(dx);
}

/* Upstream's unpatchify written out as the literal reshape + einsum. */
static void test_unpatchify_matches_einsum(void **state) {
    (void)state;
    const digcl_patch_shape s = {1, 3, 4, 6, 2};
    const int h = s.H / s.p, w = s.W / s.p, p = s.p, C = s.C;
    double x[1 * 12 * 12], image[72];
    for (int i = 0; i < 144 && i < (int)(sizeof x / sizeof *x); i++) x[i] = i;
    digcl_ref_unpatchify_forward(&s, x, image);
    for (int hi = 0; hi < h; hi++)
        for (int wi = 0; wi < w; wi++)
            for (int py = 0; py < p; py++)
                for (int qx = 0; qx < p; qx++)
                    for (int c = 0; c < C; c++) { /* x.reshape(h, w, p, q, c)[hi, wi, py, qx, c] */
                        const double value = x[(((hi * w + wi) * p + py) * p + qx) * C + c];
                        /* -> out[c, hi, py, wi, qx] -> (c, h*p, w*p) */
                        assert_true(image[(c * s.H + hi * p + py) * s.W + wi * p + qx] == value);
                    }
}

/* ---------------------------------------------------------- kernels vs oracle */

static void check_permutations(const digcl_patch_shape *s, test_rng *rng) {
    digcl_context *ctx = test_context();
    const size_t count = image_count(s);
    float *input = test_random_floats(rng, count, 1.0f);
    double *wide = test_widen(input, count), *want = test_zeros(count);
    cl_mem device_input = test_upload(input, count), output = test_poisoned(count);
    char label[96];
    typedef void (*launcher)(digcl_context *, const digcl_patch_shape *, cl_mem, cl_mem);
    typedef void (*oracle)(const digcl_patch_shape *, const double *, double *);
    const launcher launchers[4] = {digcl_patchify_forward, digcl_patchify_backward,
                                   digcl_unpatchify_forward, digcl_unpatchify_backward};
    const oracle oracles[4] = {digcl_ref_patchify_forward, digcl_ref_patchify_backward,
                               digcl_ref_unpatchify_forward, digcl_ref_unpatchify_backward};
    const char *names[4] = {"patchify", "patchify_backward", "unpatchify", "unpatchify_backward"};
    for (int op = 0; op < 4; op++) {
        test_poison(output, count);
        launchers[op](ctx, s, device_input, output);
        oracles[op](s, wide, want);
        float *got = test_download(output, count);
        snprintf(label, sizeof label, "%s N%d C%d %dx%d p%d", names[op], s->N, s->C, s->H, s->W,
                 s->p);
        test_assert_close(label, got, want, count, 1e-7);
        free(got);
    }
    test_release(device_input), test_release(output);
    free(input), free(wide), free(want);
}

static void test_patch_permutations(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(303);
    const int patch_sizes[4] = {1, 2, 4, 8}, channels[4] = {1, 3, 4, 8};
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++) {
            const int p = patch_sizes[i];
            const digcl_patch_shape shape = {1 + (i + j) % 2, channels[j], 3 * p, 5 * p, p};
            check_permutations(&shape, &rng);
        }
}

typedef struct embed_case {
    digcl_patch_shape shape;
    int D, with_pos, with_dimage;
} embed_case;

static void check_embed(const embed_case *c, test_rng *rng) {
    digcl_context *ctx = test_context();
    const digcl_patch_shape *s = &c->shape;
    const size_t images = image_count(s), rows = token_count(s), D = (size_t)c->D;
    const size_t K = (size_t)digcl_patch_features(s), T = (size_t)digcl_patch_tokens(s);
    float *image = test_random_floats(rng, images, 1.0f),
          *weight = test_random_floats(rng, D * K, 0.3f);
    float *bias = test_random_floats(rng, D, 1.0f), *pos = test_random_floats(rng, T * D, 1.0f);
    float *dtokens = test_random_floats(rng, rows * D, 1.0f);
    float *dweight0 = test_random_floats(rng, D * K, 1.0f),
          *dbias0 = test_random_floats(rng, D, 1.0f);
    cl_mem d_image = test_upload(image, images), d_weight = test_upload(weight, D * K);
    cl_mem d_bias = test_upload(bias, D), d_pos = test_upload(pos, T * D);
    cl_mem d_dtokens = test_upload(dtokens, rows * D), d_dweight = test_upload(dweight0, D * K);
    cl_mem d_dbias = test_upload(dbias0, D);
    cl_mem tokens = test_poisoned(rows * D), dimage = test_poisoned(images);
    const size_t workspace_floats = digcl_patch_embed_workspace_bytes(s, c->D) / sizeof(float);
    cl_mem workspace = test_poisoned(workspace_floats);

    digcl_patch_embed_forward(ctx, s, c->D, d_image, d_weight, d_bias, c->with_pos ? d_pos : NULL,
                              tokens, workspace);
    test_poison(workspace, workspace_floats);
    digcl_patch_embed_backward(ctx, s, c->D, d_image, d_weight, d_dtokens, d_dweight, d_dbias,
                               c->with_dimage ? dimage : NULL, workspace);

    double *w_image = test_widen(image, images), *w_weight = test_widen(weight, D * K);
    double *w_bias = test_widen(bias, D), *w_pos = test_widen(pos, T * D),
           *w_dtokens = test_widen(dtokens, rows * D);
    double *want_tokens = test_zeros(rows * D), *want_dimage = test_zeros(images);
    double *want_dweight = test_widen(dweight0, D * K), *want_dbias = test_widen(dbias0, D);
    digcl_ref_patch_embed_forward(s, c->D, w_image, w_weight, w_bias, c->with_pos ? w_pos : NULL,
                                  want_tokens);
    digcl_ref_patch_embed_backward(s, c->D, w_image, w_weight, w_dtokens, want_dweight, want_dbias,
                                   want_dimage);
    char label[96];
    float *got = test_download(tokens, rows * D);
    snprintf(label, sizeof label, "patch_embed N%d C%d %dx%d p%d D%d pos%d", s->N, s->C, s->H, s->W,
             s->p, c->D, c->with_pos);
    test_assert_close(label, got, want_tokens, rows * D, 1e-5);
    free(got);
    got = test_download(d_dweight, D * K);
    test_assert_close("  dweight (accumulated)", got, want_dweight, D * K, 1e-4);
    free(got);
    got = test_download(d_dbias, D);
    test_assert_close("  dbias (accumulated)", got, want_dbias, D, 1e-4);
    free(got);
    if (c->with_dimage) {
        got = test_download(dimage, images);
        test_assert_close("  dimage", got, want_dimage, images, 1e-4);
        free(got);
    }
    free(image), free(weight), free(bias), free(pos), free(dtokens), free(dweight0), free(dbias0);
    free(w_image), free(w_weight), free(w_bias), free(w_pos), free(w_dtokens);
    free(want_tokens), free(want_dimage), free(want_dweight), free(want_dbias);
    cl_mem buffers[] = {d_image,   d_weight, d_bias, d_pos,  d_dtokens,
                        d_dweight, d_dbias,  tokens, dimage, workspace};
    for (size_t i = 0; i < sizeof buffers / sizeof *buffers; i++) test_release(buffers[i]);
}

static void test_patch_embed_kernels(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(304);
    const embed_case cases[] = {
        {{2, 4, 8, 8, 2}, 384, 1, 1},  /* DiG-S/2-like, small grid */
        {{3, 3, 6, 10, 2}, 33, 0, 1},  /* odd sizes */
        {{1, 1, 7, 7, 1}, 1, 1, 0},    /* p = 1, D = 1 */
        {{2, 4, 16, 8, 4}, 33, 1, 1},  /* p = 4 */
        {{1, 3, 24, 8, 8}, 7, 0, 1},   /* p = 8 */
        {{5, 4, 18, 18, 2}, 40, 1, 1}, /* more rows than one bias-sum group */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) check_embed(&cases[i], &rng);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_patch_embed_oracle_gradients),
        cmocka_unit_test(test_unpatchify_oracle_gradients),
        cmocka_unit_test(test_unpatchify_matches_einsum),
        cmocka_unit_test(test_patch_permutations),
        cmocka_unit_test(test_patch_embed_kernels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
