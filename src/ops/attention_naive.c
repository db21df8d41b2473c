/* Naive attention (include/digcl/attention.h "Naive attention"): the [T, T]
 * scores of every (n, h) through strided-batched GEMMs, the row softmax of
 * cl/attention_naive.cl in place, and the backward in the same pieces.
 *
 * q, k and v of head h are strided inside qkv [N, T, 3, H, dh]: rows 3 H dh
 * apart, heads dh apart, samples T 3 H dh apart. Those strides are not one
 * uniform step over (n, h), so each GEMM batches over the longer axis (heads
 * or samples) and loops on the host over the shorter one. */
#include <math.h>
#include <stdio.h>

#include "digcl/attention.h"
#include "digcl/gemm.h"
#include "ops_common.h"

/* One matrix per (n, h) inside a buffer: element (i, j) of (n, h) is at
 * offset + n * n_stride + h * h_stride + i * ld + j. */
typedef struct head_matrix {
    cl_mem mem;
    size_t offset, ld, n_stride, h_stride;
} head_matrix;

/* q (which 0), k (1) or v (2) of qkv or dqkv [N, T, 3, H, dh]: [T, dh] per (n, h). */
static head_matrix qkv_part(const digcl_attention_shape *s, cl_mem mem, int which) {
    const size_t width = (size_t)s->H * (size_t)s->head_dim;
    head_matrix m = {mem, (size_t)which * width, 3 * width, (size_t)s->T * 3 * width,
                     (size_t)s->head_dim};
    return m;
}

/* out or dout [N, T, H, dh]: [T, dh] per (n, h). */
static head_matrix token_major(const digcl_attention_shape *s, cl_mem mem) {
    const size_t width = (size_t)s->H * (size_t)s->head_dim;
    head_matrix m = {mem, 0, width, (size_t)s->T * width, (size_t)s->head_dim};
    return m;
}

/* probs or dprobs [N, H, T, T]: [T, T] per (n, h). */
static head_matrix square(const digcl_attention_shape *s, cl_mem mem) {
    const size_t plane = (size_t)s->T * (size_t)s->T;
    head_matrix m = {mem, 0, (size_t)s->T, (size_t)s->H * plane, plane};
    return m;
}

/* The product's shape: C [M, cols] = alpha op(A) op(B), K the inner size. */
typedef struct head_product {
    int transpose_a, transpose_b;
    size_t M, cols, K;
    float alpha;
} head_product;

/* Offset of the matrix at position o of the host loop, and the batch stride. */
static size_t outer_offset(const head_matrix *m, int over_heads, size_t o) {
    return m->offset + o * (over_heads ? m->n_stride : m->h_stride);
}
static size_t batch_stride(const head_matrix *m, int over_heads) {
    return over_heads ? m->h_stride : m->n_stride;
}

/* C(n, h) = alpha op(A(n, h)) op(B(n, h)) for every (n, h) (C overwritten). */
static void head_gemm(digcl_context *ctx, const digcl_attention_shape *s, const head_product *p,
                      const head_matrix *a, const head_matrix *b, const head_matrix *c) {
    const int over_heads = s->H >= s->N; /* batch the longer axis */
    const size_t outer = (size_t)(over_heads ? s->N : s->H);
    const size_t batch = (size_t)(over_heads ? s->H : s->N);
    for (size_t o = 0; o < outer; o++) {
        const digcl_gemm_args args = {.transpose_a = p->transpose_a,
                                      .transpose_b = p->transpose_b,
                                      .M = p->M,
                                      .N = p->cols,
                                      .K = p->K,
                                      .alpha = p->alpha,
                                      .beta = 0.0f,
                                      .A = a->mem,
                                      .a_offset = outer_offset(a, over_heads, o),
                                      .lda = a->ld,
                                      .B = b->mem,
                                      .b_offset = outer_offset(b, over_heads, o),
                                      .ldb = b->ld,
                                      .C = c->mem,
                                      .c_offset = outer_offset(c, over_heads, o),
                                      .ldc = c->ld};
        digcl_gemm_strided_batched(ctx, &args, batch_stride(a, over_heads),
                                   batch_stride(b, over_heads), batch_stride(c, over_heads), batch);
    }
}

static void check_shape(const digcl_attention_shape *s) {
    if (s->N < 1 || s->T < 1 || s->H < 1 || s->head_dim < 1)
        digcl_fatal("naive attention: bad shape N=%d T=%d H=%d head_dim=%d", s->N, s->T, s->H,
                    s->head_dim);
}

static float attention_scale(const digcl_attention_shape *s) {
    return (float)(1.0 / sqrt((double)s->head_dim));
}

static size_t score_rows(const digcl_attention_shape *s) {
    return (size_t)s->N * (size_t)s->H * (size_t)s->T;
}

size_t digcl_attention_naive_probs_floats(const digcl_attention_shape *s) {
    return score_rows(s) * (size_t)s->T;
}

void digcl_attention_naive_forward(digcl_context *ctx, const digcl_attention_shape *shape,
                                   cl_mem qkv, cl_mem out, cl_mem probs) {
    check_shape(shape);
    const size_t T = (size_t)shape->T, dh = (size_t)shape->head_dim;
    const head_matrix q = qkv_part(shape, qkv, 0), k = qkv_part(shape, qkv, 1),
                      v = qkv_part(shape, qkv, 2), p = square(shape, probs),
                      o = token_major(shape, out);
    const head_product scores = {0, 1, T, T, dh, attention_scale(shape)}; /* S = scale q k^T */
    head_gemm(ctx, shape, &scores, &q, &k, &p);
    digcl_softmax_rows_forward(ctx, score_rows(shape), shape->T, probs); /* P = softmax(S) */
    const head_product values = {0, 0, T, dh, T, 1.0f};                  /* out = P v */
    head_gemm(ctx, shape, &values, &p, &v, &o);
}

void digcl_attention_naive_backward(digcl_context *ctx, const digcl_attention_shape *shape,
                                    cl_mem qkv, cl_mem probs, cl_mem dout, cl_mem dqkv,
                                    cl_mem dprobs) {
    check_shape(shape);
    const size_t T = (size_t)shape->T, dh = (size_t)shape->head_dim;
    const float scale = attention_scale(shape);
    const head_matrix q = qkv_part(shape, qkv, 0), k = qkv_part(shape, qkv, 1),
                      v = qkv_part(shape, qkv, 2), p = square(shape, probs),
                      dp = square(shape, dprobs), g = token_major(shape, dout);
    const head_matrix dq = qkv_part(shape, dqkv, 0), dk = qkv_part(shape, dqkv, 1),
                      dv = qkv_part(shape, dqkv, 2);
    const head_product d_probs = {0, 1, T, T, dh, 1.0f}; /* dP = dout v^T */
    head_gemm(ctx, shape, &d_probs, &g, &v, &dp);
    digcl_softmax_rows_backward(ctx, score_rows(shape), shape->T, probs, dprobs); /* dS */
    const head_product d_query = {0, 0, T, dh, T, scale}; /* dq = scale dS k */
    head_gemm(ctx, shape, &d_query, &dp, &k, &dq);
    const head_product d_key = {1, 0, T, dh, T, scale}; /* dk = scale dS^T q */
    head_gemm(ctx, shape, &d_key, &dp, &q, &dk);
    const head_product d_value = {1, 0, T, dh, T, 1.0f}; /* dv = P^T dout */
    head_gemm(ctx, shape, &d_value, &p, &g, &dv);
}

/* ---------------------------------------------------------------- row softmax */

/* Items per row: the row length rounded up to a power of 2, 32 to 256. */
static int group_size(int cols) {
    const size_t size = ops_pow2_at_least((size_t)cols);
    return size < 32 ? 32 : size > 256 ? 256 : (int)size;
}

static cl_kernel softmax_kernel(digcl_context *ctx, const char *name, size_t rows, int cols) {
    ops_check_positive((long)rows, "rows", name);
    ops_check_positive(cols, "cols", name);
    char options[32];
    snprintf(options, sizeof options, "-DWG=%d", group_size(cols));
    return digcl_kernel(ctx, "attention_naive", name, options);
}

static void launch_softmax(digcl_context *ctx, cl_kernel kernel, const char *label, size_t rows,
                           int cols) {
    const size_t local[1] = {(size_t)group_size(cols)}, global[1] = {rows * local[0]};
    digcl_launch(ctx, kernel, label, 1, global, local);
}

void digcl_softmax_rows_forward(digcl_context *ctx, size_t rows, int cols, cl_mem x) {
    cl_kernel kernel = softmax_kernel(ctx, "softmax_rows_forward", rows, cols);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_int(kernel, 1, cols);
    launch_softmax(ctx, kernel, "softmax_rows_forward", rows, cols);
}

void digcl_softmax_rows_backward(digcl_context *ctx, size_t rows, int cols, cl_mem p, cl_mem dp) {
    cl_kernel kernel = softmax_kernel(ctx, "softmax_rows_backward", rows, cols);
    digcl_arg_mem(kernel, 0, p);
    digcl_arg_mem(kernel, 1, dp);
    digcl_arg_int(kernel, 2, cols);
    launch_softmax(ctx, kernel, "softmax_rows_backward", rows, cols);
}
