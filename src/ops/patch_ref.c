/* Double-precision references for patch embedding and unpatchify (see
 * include/digcl/patch.h for the index formulas; docs/MODEL.md §3.1, §3.5). */
#include <stdlib.h>
#include <string.h>

#include "digcl/patch.h"
#include "digcl/ref/patch.h"

/* Sizes in size_t: the oracle never overflows where the device code refuses. */
static size_t ref_tokens(const digcl_patch_shape *s) {
    return (size_t)(s->H / s->p) * (size_t)(s->W / s->p);
}

static size_t ref_features(const digcl_patch_shape *s) {
    return (size_t)s->C * (size_t)s->p * (size_t)s->p;
}

/* Index of image[n, c, row, col] for the element that patchify puts at
 * patches[n, token, feature] (feature in (c, py, px) order). */
static size_t patchify_source(const digcl_patch_shape *s, size_t n, size_t token, size_t feature) {
    const size_t p = (size_t)s->p, w = (size_t)(s->W / s->p);
    const size_t c = feature / (p * p), py = feature / p % p, px = feature % p;
    const size_t row = token / w * p + py, col = token % w * p + px;
    return ((n * (size_t)s->C + c) * (size_t)s->H + row) * (size_t)s->W + col;
}

/* Index of image[n, c, row, col] for x[n, token, feature] of unpatchify
 * (feature in (py, px, c) order). */
static size_t unpatchify_target(const digcl_patch_shape *s, size_t n, size_t token,
                                size_t feature) {
    const size_t p = (size_t)s->p, C = (size_t)s->C, w = (size_t)(s->W / s->p);
    const size_t py = feature / (p * C), px = feature / C % p, c = feature % C;
    const size_t row = token / w * p + py, col = token % w * p + px;
    return ((n * C + c) * (size_t)s->H + row) * (size_t)s->W + col;
}

void digcl_ref_patchify_forward(const digcl_patch_shape *shape, const double *image,
                                double *patches) {
    const size_t T = ref_tokens(shape), K = ref_features(shape);
    for (size_t n = 0; n < (size_t)shape->N; n++)
        for (size_t t = 0; t < T; t++)
            for (size_t f = 0; f < K; f++)
                patches[(n * T + t) * K + f] = image[patchify_source(shape, n, t, f)];
}

void digcl_ref_patchify_backward(const digcl_patch_shape *shape, const double *dpatches,
                                 double *dimage) {
    const size_t T = ref_tokens(shape), K = ref_features(shape);
    for (size_t n = 0; n < (size_t)shape->N; n++)
        for (size_t t = 0; t < T; t++)
            for (size_t f = 0; f < K; f++)
                dimage[patchify_source(shape, n, t, f)] = dpatches[(n * T + t) * K + f];
}

void digcl_ref_patch_embed_forward(const digcl_patch_shape *shape, int D, const double *image,
                                   const double *weight, const double *bias,
                                   const double *pos_embed, double *tokens) {
    const size_t T = ref_tokens(shape), K = ref_features(shape);
    const size_t rows = (size_t)shape->N * T;
    double *patches = malloc(rows * K * sizeof *patches);
    digcl_ref_patchify_forward(shape, image, patches);
    for (size_t r = 0; r < rows; r++)
        for (size_t d = 0; d < (size_t)D; d++) {
            double sum = bias[d] + (pos_embed ? pos_embed[(r % T) * (size_t)D + d] : 0.0);
            for (size_t f = 0; f < K; f++) sum += patches[r * K + f] * weight[d * K + f];
            tokens[r * (size_t)D + d] = sum;
        }
    free(patches);
}

void digcl_ref_patch_embed_backward(const digcl_patch_shape *shape, int D, const double *image,
                                    const double *weight, const double *dtokens, double *dweight,
                                    double *dbias, double *dimage) {
    const size_t T = ref_tokens(shape), K = ref_features(shape);
    const size_t rows = (size_t)shape->N * T;
    double *patches = malloc(rows * K * sizeof *patches);
    double *dpatches = calloc(rows * K, sizeof *dpatches);
    digcl_ref_patchify_forward(shape, image, patches);
    for (size_t r = 0; r < rows; r++)
        for (size_t d = 0; d < (size_t)D; d++) {
            const double g = dtokens[r * (size_t)D + d];
            dbias[d] += g;
            for (size_t f = 0; f < K; f++) {
                dweight[d * K + f] += g * patches[r * K + f];
                dpatches[r * K + f] += g * weight[d * K + f];
            }
        }
    if (dimage) digcl_ref_patchify_backward(shape, dpatches, dimage);
    free(patches);
    free(dpatches);
}

void digcl_ref_unpatchify_forward(const digcl_patch_shape *shape, const double *x, double *image) {
    const size_t T = ref_tokens(shape), K = ref_features(shape);
    for (size_t n = 0; n < (size_t)shape->N; n++)
        for (size_t t = 0; t < T; t++)
            for (size_t f = 0; f < K; f++)
                image[unpatchify_target(shape, n, t, f)] = x[(n * T + t) * K + f];
}

void digcl_ref_unpatchify_backward(const digcl_patch_shape *shape, const double *dimage,
                                   double *dx) {
    const size_t T = ref_tokens(shape), K = ref_features(shape);
    for (size_t n = 0; n < (size_t)shape->N; n++)
        for (size_t t = 0; t < T; t++)
            for (size_t f = 0; f < K; f++)
                dx[(n * T + t) * K + f] = dimage[unpatchify_target(shape, n, t, f)];
}
