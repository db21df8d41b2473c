/* Host launchers for cl/patch.cl: patchify, patch embedding (fused kernels for
 * K = C p^2 <= 64, else patchify + GEMM through digcl_gemm), unpatchify. See
 * include/digcl/patch.h. */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>

#include "digcl/gemm.h"
#include "digcl/patch.h"
#include "ops_common.h"

enum {
    PATCH_GROUP = 256,
    SUM_COLUMNS = 32,
    SUM_LANES = 8,
    SUM_MAX_GROUPS = 64,
    FUSED_MAX_K = 64, /* up to this many patch features: fused kernels instead of GEMMs */
    EMBED_ROWS = 8    /* rows per work-item of patch_embed_fused_forward */
};

int digcl_patch_tokens(const digcl_patch_shape *shape) {
    const int64_t tokens = (int64_t)(shape->H / shape->p) * (shape->W / shape->p);
    if (tokens > INT_MAX)
        digcl_fatal("patch: %lld tokens exceed the kernels' 32-bit indices", (long long)tokens);
    return (int)tokens;
}

int digcl_patch_features(const digcl_patch_shape *shape) {
    const int64_t features = (int64_t)shape->C * shape->p * shape->p;
    if (features > INT_MAX)
        digcl_fatal("patch: C*p*p = %lld features exceed the kernels' 32-bit indices",
                    (long long)features);
    return (int)features;
}

static void check_shape(const digcl_patch_shape *s) {
    if (s->N < 1 || s->C < 1 || s->p < 1 || s->H < s->p || s->W < s->p || s->H % s->p ||
        s->W % s->p)
        digcl_fatal("patch: bad shape N=%d C=%d H=%d W=%d p=%d (H and W must be multiples of p)",
                    s->N, s->C, s->H, s->W, s->p);
}

/* Launches one of the four permutation kernels over `count` output elements. */
static void launch_permutation(digcl_context *ctx, const char *name, const digcl_patch_shape *s,
                               cl_mem input, cl_mem output, size_t count) {
    check_shape(s);
    cl_kernel kernel = digcl_kernel(ctx, "patch", name, "");
    digcl_arg_mem(kernel, 0, input);
    digcl_arg_mem(kernel, 1, output);
    digcl_arg_int(kernel, 2, s->N);
    digcl_arg_int(kernel, 3, s->C);
    digcl_arg_int(kernel, 4, s->H);
    digcl_arg_int(kernel, 5, s->W);
    digcl_arg_int(kernel, 6, s->p);
    const size_t global = ops_round_up(count, PATCH_GROUP), local = PATCH_GROUP;
    digcl_launch(ctx, kernel, name, 1, &global, &local);
}

static size_t image_elements(const digcl_patch_shape *s) {
    return (size_t)s->N * (size_t)s->C * (size_t)s->H * (size_t)s->W;
}

void digcl_patchify_forward(digcl_context *ctx, const digcl_patch_shape *shape, cl_mem image,
                            cl_mem patches) {
    launch_permutation(ctx, "patchify_forward", shape, image, patches, image_elements(shape));
}

void digcl_patchify_backward(digcl_context *ctx, const digcl_patch_shape *shape, cl_mem dpatches,
                             cl_mem dimage) {
    launch_permutation(ctx, "patchify_backward", shape, dpatches, dimage, image_elements(shape));
}

void digcl_unpatchify_forward(digcl_context *ctx, const digcl_patch_shape *shape, cl_mem x,
                              cl_mem image) {
    launch_permutation(ctx, "unpatchify_forward", shape, x, image, image_elements(shape));
}

void digcl_unpatchify_backward(digcl_context *ctx, const digcl_patch_shape *shape, cl_mem dimage,
                               cl_mem dx) {
    launch_permutation(ctx, "unpatchify_backward", shape, dimage, dx, image_elements(shape));
}

/* ---------------------------------------------------------- patch embedding */

static size_t token_rows(const digcl_patch_shape *s) {
    return (size_t)s->N * (size_t)digcl_patch_tokens(s);
}

/* Number of row groups of the column-sum pass 1 (each >= 64 rows). */
static int sum_groups(size_t rows) {
    size_t groups = (rows + 63) / 64;
    return (int)(groups > SUM_MAX_GROUPS ? SUM_MAX_GROUPS : groups);
}

/* Workspace layout: patches (or dpatches) [N*T, K], then the partials: [groups, D] of
 * the bias (GEMM path) or [groups, K + 1, D] of the weight and bias (fused path). */
size_t digcl_patch_embed_workspace_bytes(const digcl_patch_shape *shape, int D) {
    const size_t rows = token_rows(shape), K = (size_t)digcl_patch_features(shape);
    const size_t patches = rows * K;
    return (patches + (size_t)sum_groups(rows) * (K + 1) * (size_t)D) * sizeof(float);
}

static int use_fused(const digcl_patch_shape *s) { return digcl_patch_features(s) <= FUSED_MAX_K; }

static cl_kernel fused_kernel(digcl_context *ctx, const char *name, const digcl_patch_shape *s,
                              int has_pos) {
    char options[64];
    snprintf(options, sizeof options, "-DPATCH_K=%d%s", digcl_patch_features(s),
             has_pos ? " -DHAS_POS" : "");
    return digcl_kernel(ctx, "patch", name, options);
}

static unsigned set_image_shape(cl_kernel kernel, unsigned index, const digcl_patch_shape *s,
                                int D) {
    digcl_arg_int(kernel, index, (int)token_rows(s));
    digcl_arg_int(kernel, index + 1, s->C);
    digcl_arg_int(kernel, index + 2, s->H);
    digcl_arg_int(kernel, index + 3, s->W);
    digcl_arg_int(kernel, index + 4, s->p);
    digcl_arg_int(kernel, index + 5, D);
    return index + 6;
}

/* tokens = bias (+ pos_embed) + patches W^T in one launch. */
static void fused_forward(digcl_context *ctx, const digcl_patch_shape *s, int D, cl_mem image,
                          cl_mem weight, cl_mem bias, cl_mem pos_embed, cl_mem tokens) {
    check_shape(s);
    cl_kernel kernel = fused_kernel(ctx, "patch_embed_fused_forward", s, pos_embed != NULL);
    digcl_arg_mem(kernel, 0, image);
    digcl_arg_mem(kernel, 1, weight);
    digcl_arg_mem(kernel, 2, bias);
    digcl_arg_mem(kernel, 3, pos_embed ? pos_embed : bias);
    digcl_arg_mem(kernel, 4, tokens);
    set_image_shape(kernel, 5, s, D);
    const size_t local[2] = {D >= 64 ? 64 : 32, D >= 64 ? 4 : 8};
    const size_t global[2] = {
        ops_round_up((size_t)D, local[0]),
        ops_round_up((token_rows(s) + EMBED_ROWS - 1) / EMBED_ROWS, local[1])};
    digcl_launch(ctx, kernel, "patch_embed_forward", 2, global, local);
}

/* dweight += dtokens^T patches, dbias += column sums of dtokens: two passes. */
static void fused_weight_grad(digcl_context *ctx, const digcl_patch_shape *s, int D, cl_mem image,
                              cl_mem dtokens, cl_mem dweight, cl_mem dbias, cl_mem workspace,
                              size_t partial_offset) {
    const size_t rows = token_rows(s);
    const int groups = sum_groups(rows), K = digcl_patch_features(s);
    const int rows_per_group = (int)((rows + (size_t)groups - 1) / (size_t)groups);
    cl_kernel pass1 = fused_kernel(ctx, "patch_embed_weight_partials", s, 0);
    digcl_arg_mem(pass1, 0, image);
    digcl_arg_mem(pass1, 1, dtokens);
    digcl_arg_mem(pass1, 2, workspace);
    unsigned index = set_image_shape(pass1, 3, s, D);
    digcl_arg_int(pass1, index, rows_per_group);
    digcl_arg_int(pass1, index + 1, (int)partial_offset);
    const size_t global1[2] = {ops_round_up((size_t)D, SUM_COLUMNS), (size_t)groups * SUM_LANES};
    const size_t local1[2] = {SUM_COLUMNS, SUM_LANES};
    digcl_launch(ctx, pass1, "patch_embed_weight_partials", 2, global1, local1);
    cl_kernel pass2 = fused_kernel(ctx, "patch_embed_weight_accumulate", s, 0);
    digcl_arg_mem(pass2, 0, workspace);
    digcl_arg_mem(pass2, 1, dweight);
    digcl_arg_mem(pass2, 2, dbias);
    digcl_arg_int(pass2, 3, groups);
    digcl_arg_int(pass2, 4, D);
    digcl_arg_int(pass2, 5, (int)partial_offset);
    const size_t local2[2] = {64, 1};
    const size_t global2[2] = {ops_round_up((size_t)D, 64), (size_t)K + 1};
    digcl_launch(ctx, pass2, "patch_embed_weight_accumulate", 2, global2, local2);
}

static void launch_embed_init(digcl_context *ctx, const digcl_patch_shape *s, int D, cl_mem bias,
                              cl_mem pos_embed, cl_mem tokens) {
    cl_kernel kernel = digcl_kernel(ctx, "patch", "patch_embed_init", pos_embed ? "-DHAS_POS" : "");
    const size_t rows = token_rows(s);
    digcl_arg_mem(kernel, 0, bias);
    digcl_arg_mem(kernel, 1, pos_embed ? pos_embed : bias);
    digcl_arg_mem(kernel, 2, tokens);
    digcl_arg_int(kernel, 3, (int)rows);
    digcl_arg_int(kernel, 4, digcl_patch_tokens(s));
    digcl_arg_int(kernel, 5, D);
    const size_t global = ops_round_up(rows * (size_t)D, PATCH_GROUP), local = PATCH_GROUP;
    digcl_launch(ctx, kernel, "patch_embed_init", 1, &global, &local);
}

void digcl_patch_embed_forward(digcl_context *ctx, const digcl_patch_shape *shape, int D,
                               cl_mem image, cl_mem weight, cl_mem bias, cl_mem pos_embed,
                               cl_mem tokens, cl_mem workspace) {
    if (use_fused(shape)) {
        fused_forward(ctx, shape, D, image, weight, bias, pos_embed, tokens);
        return;
    }
    cl_mem patches = workspace; /* [N*T, K] at offset 0 */
    digcl_patchify_forward(ctx, shape, image, patches);
    launch_embed_init(ctx, shape, D, bias, pos_embed, tokens);
    const size_t K = (size_t)digcl_patch_features(shape);
    const digcl_gemm_args gemm = {.transpose_a = 0,
                                  .transpose_b = 1,
                                  .M = token_rows(shape),
                                  .N = (size_t)D,
                                  .K = K,
                                  .alpha = 1.0f,
                                  .beta = 1.0f,
                                  .A = patches,
                                  .a_offset = 0,
                                  .lda = K,
                                  .B = weight,
                                  .b_offset = 0,
                                  .ldb = K,
                                  .C = tokens,
                                  .c_offset = 0,
                                  .ldc = (size_t)D};
    digcl_gemm(ctx, &gemm);
}

/* out[d] += sum_r x[r, d], two deterministic passes through partial sums
 * ([groups, D] floats starting at element `partial_offset` of workspace). */
static void column_sum_accumulate(digcl_context *ctx, cl_mem x, size_t rows, int D,
                                  cl_mem workspace, size_t partial_offset, cl_mem out) {
    const int groups = sum_groups(rows);
    cl_kernel pass1 = digcl_kernel(ctx, "patch", "column_partial_sums", "");
    const int rows_per_group = (int)((rows + (size_t)groups - 1) / (size_t)groups);
    digcl_arg_mem(pass1, 0, x);
    digcl_arg_mem(pass1, 1, workspace);
    digcl_arg_int(pass1, 2, (int)partial_offset);
    digcl_arg_int(pass1, 3, (int)rows);
    digcl_arg_int(pass1, 4, D);
    digcl_arg_int(pass1, 5, rows_per_group);
    const size_t global1[2] = {ops_round_up((size_t)D, SUM_COLUMNS), (size_t)groups * SUM_LANES};
    const size_t local1[2] = {SUM_COLUMNS, SUM_LANES};
    digcl_launch(ctx, pass1, "column_partial_sums", 2, global1, local1);
    cl_kernel pass2 = digcl_kernel(ctx, "patch", "column_sums_accumulate", "");
    digcl_arg_mem(pass2, 0, workspace);
    digcl_arg_int(pass2, 1, (int)partial_offset);
    digcl_arg_mem(pass2, 2, out);
    digcl_arg_int(pass2, 3, groups);
    digcl_arg_int(pass2, 4, D);
    const size_t global2 = ops_round_up((size_t)D, 64), local2 = 64;
    digcl_launch(ctx, pass2, "column_sums_accumulate", 1, &global2, &local2);
}

void digcl_patch_embed_backward(digcl_context *ctx, const digcl_patch_shape *shape, int D,
                                cl_mem image, cl_mem weight, cl_mem dtokens, cl_mem dweight,
                                cl_mem dbias, cl_mem dimage, cl_mem workspace) {
    const size_t rows = token_rows(shape), K = (size_t)digcl_patch_features(shape);
    const size_t partial_offset = rows * K; /* elements */
    cl_mem patches = workspace;             /* [N*T, K]; reused for dpatches below */
    if (use_fused(shape)) {
        check_shape(shape);
        fused_weight_grad(ctx, shape, D, image, dtokens, dweight, dbias, workspace, partial_offset);
    } else {
        digcl_patchify_forward(ctx, shape, image, patches);
        const digcl_gemm_args weight_grad = {.transpose_a = 1,
                                             .transpose_b = 0,
                                             .M = (size_t)D,
                                             .N = K,
                                             .K = rows,
                                             .alpha = 1.0f,
                                             .beta = 1.0f,
                                             .A = dtokens,
                                             .a_offset = 0,
                                             .lda = (size_t)D,
                                             .B = patches,
                                             .b_offset = 0,
                                             .ldb = K,
                                             .C = dweight,
                                             .c_offset = 0,
                                             .ldc = K};
        digcl_gemm(ctx, &weight_grad);
        column_sum_accumulate(ctx, dtokens, rows, D, workspace, partial_offset, dbias);
    }
    if (!dimage) return;
    const digcl_gemm_args input_grad = {.transpose_a = 0,
                                        .transpose_b = 0,
                                        .M = rows,
                                        .N = K,
                                        .K = (size_t)D,
                                        .alpha = 1.0f,
                                        .beta = 0.0f, /* digcl_gemm ignores C when beta = 0 */
                                        .A = dtokens,
                                        .a_offset = 0,
                                        .lda = (size_t)D,
                                        .B = weight,
                                        .b_offset = 0,
                                        .ldb = K,
                                        .C = patches,
                                        .c_offset = 0,
                                        .ldc = K};
    digcl_gemm(ctx, &input_grad);
    digcl_patchify_backward(ctx, shape, patches, dimage);
}
