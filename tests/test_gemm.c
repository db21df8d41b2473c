/* GEMM wrapper against the double C reference: odd shapes (1, 7, 33, 257,
 * 1000), all transpose combinations, non-zero offsets and leading dimensions,
 * alpha/beta (beta = 0 must ignore a NaN-poisoned C), and strided batches. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/gemm.h"
#include "digcl/ref/gemm.h"
#include "test_util.h"

typedef struct gemm_case {
    size_t M, N, K;
    int transpose_a, transpose_b;
    size_t pad; /* extra leading-dimension columns and offset */
    float alpha, beta;
    size_t slices; /* 0: digcl_gemm's own choice; else digcl_gemm_split_k */
} gemm_case;

/* Stored rows x cols of op(X) before any transpose. */
static void stored_shape(int transpose, size_t rows, size_t cols, size_t *stored_rows,
                         size_t *stored_cols) {
    *stored_rows = transpose ? cols : rows;
    *stored_cols = transpose ? rows : cols;
}

static void run_case(const gemm_case *c, test_rng *rng) {
    size_t a_rows, a_cols, b_rows, b_cols;
    stored_shape(c->transpose_a, c->M, c->K, &a_rows, &a_cols);
    stored_shape(c->transpose_b, c->K, c->N, &b_rows, &b_cols);
    size_t lda = a_cols + c->pad, ldb = b_cols + 2 * c->pad, ldc = c->N + 3 * c->pad;
    size_t a_offset = c->pad, b_offset = 2 * c->pad, c_offset = 5 * c->pad;
    size_t a_count = a_offset + a_rows * lda, b_count = b_offset + b_rows * ldb;
    size_t c_count = c_offset + c->M * ldc;
    float *a = malloc(a_count * sizeof *a), *b = malloc(b_count * sizeof *b);
    float *initial_c = malloc(c_count * sizeof *initial_c), *want = malloc(c_count * sizeof *want);
    assert_true(a && b && initial_c && want);
    test_fill_normal(rng, a, a_count, 1.0f);
    test_fill_normal(rng, b, b_count, 1.0f);
    test_fill_normal(rng, initial_c, c_count, 1.0f);
    for (size_t i = 0; i < c_count; i++) want[i] = initial_c[i];
    cl_mem da = test_upload(a, a_count), db = test_upload(b, b_count),
           dc = test_upload(initial_c, c_count);
    if (c->beta == 0.0f) { /* beta = 0: C is output only, so poison it */
        for (size_t m = 0; m < c->M; m++)
            digcl_fill_f32(test_context(), dc, c_offset + m * ldc, c->N, NAN);
    }
    digcl_gemm_args args = {.transpose_a = c->transpose_a,
                            .transpose_b = c->transpose_b,
                            .M = c->M,
                            .N = c->N,
                            .K = c->K,
                            .alpha = c->alpha,
                            .beta = c->beta,
                            .A = da,
                            .a_offset = a_offset,
                            .lda = lda,
                            .B = db,
                            .b_offset = b_offset,
                            .ldb = ldb,
                            .C = dc,
                            .c_offset = c_offset,
                            .ldc = ldc};
    if (c->slices) digcl_gemm_split_k(test_context(), &args, c->slices);
    else digcl_gemm(test_context(), &args);
    float *got = test_download(dc, c_count);
    digcl_ref_gemm(c->transpose_a, c->transpose_b, c->M, c->N, c->K, c->alpha, a, a_offset, lda, b,
                   b_offset, ldb, c->beta, want, c_offset, ldc);
    double *wide = malloc(c_count * sizeof *wide);
    for (size_t i = 0; i < c_count; i++) wide[i] = want[i];
    /* padding between rows must be untouched */
    for (size_t m = 0; m < c->M; m++)
        for (size_t j = c->N; j < ldc && m * ldc + c_offset + j < c_count; j++)
            assert_true(got[c_offset + m * ldc + j] == initial_c[c_offset + m * ldc + j]);
    char label[128];
    snprintf(label, sizeof label, "gemm %zux%zux%zu t%d%d pad %zu a%.2g b%.2g split %zu", c->M,
             c->N, c->K, c->transpose_a, c->transpose_b, c->pad, c->alpha, c->beta, c->slices);
    test_assert_close(label, got + c_offset, wide + c_offset, c_count - c_offset, 1e-5);
    free(a), free(b), free(initial_c), free(want), free(got), free(wide);
    test_release(da), test_release(db), test_release(dc);
}

static void test_gemm_shapes_and_transposes(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(11);
    const size_t shapes[][3] = {{1, 1, 1},     {7, 1, 33},     {1, 257, 7},
                                {33, 7, 257},  {257, 33, 1},   {7, 1000, 33},
                                {1000, 7, 33}, {33, 33, 1000}, {257, 257, 257}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        for (int t = 0; t < 4; t++) {
            gemm_case c = {shapes[s][0],
                           shapes[s][1],
                           shapes[s][2],
                           t & 1,
                           (t >> 1) & 1,
                           (size_t)(s % 3) * 3,
                           t == 3 ? -0.5f : 1.0f,
                           (t == 1 || t == 3) ? 0.75f : 0.0f,
                           0};
            run_case(&c, &rng);
        }
    }
}

/* Shapes whose offsets, leading dimensions and extents are multiples of 4,
 * so the tensor-core kernels take their float4-load / float2-store variants
 * (K = 36 and 20 end inside a K step; 132 and 260 inside a tile). */
static void test_gemm_vector_paths(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(15);
    const size_t shapes[][3] = {{128, 192, 64}, {260, 132, 36}, {64, 8, 20}, {4, 260, 132}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (int t = 0; t < 4; t++) {
            gemm_case c = {shapes[s][0], shapes[s][1],          shapes[s][2],
                           t & 1,        (t >> 1) & 1,          (size_t)(s % 2) * 4,
                           1.0f,         (t & 1) ? 0.5f : 0.0f, 0};
            run_case(&c, &rng);
        }
}

static void test_gemm_large(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(12);
    gemm_case c = {1000, 1000, 257, 0, 1, 1, 1.25f, 1.0f, 0};
    run_case(&c, &rng);
}

/* Split-K: every transpose combination, K divisible by the slices and not
 * (the remainder goes into slice 0), beta = 0 over a NaN-poisoned C, offsets. */
static void test_gemm_split_k(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(14);
    const size_t shapes[][4] = {
        {33, 7, 1000, 3}, {7, 65, 2048, 8}, {96, 128, 4096, 16}, {1, 1, 33, 2}, {5, 3, 9, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
        for (int t = 0; t < 4; t++) {
            gemm_case c = {
                shapes[s][0], shapes[s][1],        shapes[s][2],          t & 1,
                (t >> 1) & 1, (size_t)(s % 2) * 5, t == 2 ? -1.5f : 1.0f, (t % 2) ? 1.0f : 0.0f,
                shapes[s][3]};
            run_case(&c, &rng);
        }
    }
}

/* The automatic choice splits only thin outputs with a long K. */
static void test_gemm_auto_slices(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    unsigned units = digcl_context_device(ctx)->compute_units;
    digcl_gemm_args wide = {
        .transpose_a = 1, .M = 8192, .N = 8192, .K = 8192, .alpha = 1.0f, .beta = 0.0f};
    assert_int_equal(digcl_gemm_auto_slices(ctx, &wide), 1);
    digcl_gemm_args short_k = {
        .transpose_a = 1, .M = 16, .N = 16, .K = 1024, .alpha = 1.0f, .beta = 0.0f};
    assert_int_equal(digcl_gemm_auto_slices(ctx, &short_k), 1);
    digcl_gemm_args thin = {
        .transpose_a = 1, .M = 128, .N = 128, .K = 65536, .alpha = 1.0f, .beta = 0.0f};
    size_t slices = digcl_gemm_auto_slices(ctx, &thin);
    assert_true(slices >= 1 && slices <= 16);
    assert_int_equal(slices & (slices - 1), 0); /* a power of two: no tail GEMM for K = 2^n */
    /* OpenBLAS (CPU devices) splits the work over its threads instead. */
    const int blas = strcmp(digcl_gemm_backend_name(ctx), "OpenBLAS") == 0;
    if (blas) assert_int_equal(slices, 1);
    if (units >= 2 && !blas) assert_true(slices > 1);
}

static void test_gemm_strided_batched(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(13);
    const size_t M = 33, N = 7, K = 65, batch = 5, stride_a = M * K + 3, stride_b = K * N + 1,
                 stride_c = M * N + 2;
    size_t a_count = batch * stride_a, b_count = batch * stride_b, c_count = batch * stride_c;
    float *a = malloc(a_count * 4), *b = malloc(b_count * 4), *c0 = malloc(c_count * 4),
          *want = malloc(c_count * 4);
    test_fill_normal(&rng, a, a_count, 1.0f);
    test_fill_normal(&rng, b, b_count, 1.0f);
    test_fill_normal(&rng, c0, c_count, 1.0f);
    for (size_t i = 0; i < c_count; i++) want[i] = c0[i];
    cl_mem da = test_upload(a, a_count), db = test_upload(b, b_count),
           dc = test_upload(c0, c_count);
    /* op(A) = A [M, K] row-major; op(B) = B^T with B stored [N, K] */
    digcl_gemm_args args = {.transpose_b = 1,
                            .M = M,
                            .N = N,
                            .K = K,
                            .alpha = 0.5f,
                            .beta = 2.0f,
                            .A = da,
                            .lda = K,
                            .B = db,
                            .ldb = K,
                            .C = dc,
                            .ldc = N};
    digcl_gemm_strided_batched(test_context(), &args, stride_a, stride_b, stride_c, batch);
    for (size_t i = 0; i < batch; i++)
        digcl_ref_gemm(0, 1, M, N, K, 0.5f, a, i * stride_a, K, b, i * stride_b, K, 2.0f, want,
                       i * stride_c, N);
    float *got = test_download(dc, c_count);
    double *wide = malloc(c_count * sizeof *wide);
    for (size_t i = 0; i < c_count; i++) wide[i] = want[i];
    test_assert_close("strided batched 5 x 33x7x65", got, wide, c_count, 1e-5);
    free(a), free(b), free(c0), free(want), free(got), free(wide);
    test_release(da), test_release(db), test_release(dc);
}

/* --precision tf32: where the GEMM runs on tensor cores, one TF32 product per
 * term (relative L2 error at most 2e-3, and visibly above fp32's); elsewhere
 * the products stay fp32. A context of its own holds the precision. */
/* One TF32 GEMM C = A op(B) (op(B) = B^T when transpose_b: B stored [N, K], the layout of
 * the cp.async variant) against float32's reference: within the TF32 tolerance, and on tensor
 * cores measurably not fp32. */
static void run_tf32_case(digcl_context *ctx, test_rng *rng, int transpose_b) {
    enum { M = 257, N = 130, K = 300 };
    float *a = malloc(sizeof(float) * M * K), *b = malloc(sizeof(float) * K * N);
    float *want = malloc(sizeof(float) * M * N), *got = malloc(sizeof(float) * M * N);
    assert_true(a && b && want && got);
    test_fill_normal(rng, a, (size_t)M * K, 1.0f);
    test_fill_normal(rng, b, (size_t)K * N, 1.0f);
    digcl_buffer da = digcl_buffer_create(ctx, sizeof(float) * M * K, "tf32 A"),
                 db = digcl_buffer_create(ctx, sizeof(float) * K * N, "tf32 B"),
                 dc = digcl_buffer_create(ctx, sizeof(float) * M * N, "tf32 C");
    digcl_write(ctx, da.mem, 0, sizeof(float) * M * K, a);
    digcl_write(ctx, db.mem, 0, sizeof(float) * K * N, b);
    digcl_fill_f32(ctx, dc.mem, 0, (size_t)M * N, NAN);
    const int ldb = transpose_b ? K : N;
    digcl_gemm_args args = {.M = M,
                            .N = N,
                            .K = K,
                            .alpha = 1.0f,
                            .beta = 0.0f,
                            .A = da.mem,
                            .lda = K,
                            .B = db.mem,
                            .ldb = ldb,
                            .transpose_b = transpose_b,
                            .C = dc.mem,
                            .ldc = N};
    digcl_gemm(ctx, &args);
    digcl_read(ctx, dc.mem, 0, sizeof(float) * M * N, got);
    for (size_t i = 0; i < (size_t)M * N; i++) want[i] = 0.0f;
    digcl_ref_gemm(0, transpose_b, M, N, K, 1.0f, a, 0, K, b, 0, ldb, 0.0f, want, 0, N);
    double *wide = malloc(sizeof(double) * M * N);
    for (size_t i = 0; i < (size_t)M * N; i++) wide[i] = want[i];
    double error = test_rel_l2(got, wide, (size_t)M * N);
    const int tensor = digcl_gemm_uses_tf32(ctx);
    printf("  tf32 GEMM %dx%dx%d t0%d through %s: rel L2 %.3e\n", M, N, K, transpose_b,
           digcl_gemm_backend_name(ctx), error);
    assert_true(error <= 2e-3);
    if (tensor) assert_true(error > 1e-5); /* really one TF32 product */
    else assert_true(error < 1e-5);        /* no tensor cores: fp32 */
    digcl_buffer_release(&da), digcl_buffer_release(&db), digcl_buffer_release(&dc);
    free(a), free(b), free(want), free(got), free(wide);
}

/* TF32 C = alpha op(A) op(B) + beta C (the wgmma kernel on compute capability 9.0,
 * emulated with DIGCL_GEMM_WGMMA=1) over `batch` strided products, with padded leading
 * dimensions and offsets (multiples of 4), edges in M, N and K, and a NaN-poisoned C
 * when beta = 0. */
typedef struct tf32_case {
    int M, N, K, transpose_a, transpose_b, pad, batch; /* batch 0: one digcl_gemm (split-K) */
    float alpha, beta;
} tf32_case;

static void run_tf32_layout_case(digcl_context *ctx, test_rng *rng, const tf32_case *given) {
    tf32_case one = *given;
    const tf32_case *c = &one;
    one.batch = given->batch ? given->batch : 1;
    size_t a_rows, a_cols, b_rows, b_cols;
    stored_shape(c->transpose_a, c->M, c->K, &a_rows, &a_cols);
    stored_shape(c->transpose_b, c->K, c->N, &b_rows, &b_cols);
    const size_t lda = a_cols + c->pad, ldb = b_cols + 2 * c->pad, ldc = c->N + c->pad;
    const size_t sa = a_rows * lda + 4, sb = b_rows * ldb + 8, sc = c->M * ldc + 2;
    const size_t na = c->pad + c->batch * sa, nb = c->pad + c->batch * sb,
                 nc = c->pad + c->batch * sc;
    float *a = malloc(sizeof(float) * na), *b = malloc(sizeof(float) * nb);
    float *c0 = malloc(sizeof(float) * nc), *got = malloc(sizeof(float) * nc);
    float *slice = malloc(sizeof(float) * c->M * ldc);
    double *want = malloc(sizeof(double) * nc);
    assert_true(a && b && c0 && got && want && slice);
    test_fill_normal(rng, a, na, 1.0f), test_fill_normal(rng, b, nb, 1.0f);
    test_fill_normal(rng, c0, nc, 1.0f);
    if (c->beta == 0.0f)
        for (size_t i = 0; i < nc; i++) c0[i] = NAN;
    digcl_buffer da = digcl_buffer_create(ctx, sizeof(float) * na, "tf32 A"),
                 db = digcl_buffer_create(ctx, sizeof(float) * nb, "tf32 B"),
                 dc = digcl_buffer_create(ctx, sizeof(float) * nc, "tf32 C");
    digcl_write(ctx, da.mem, 0, sizeof(float) * na, a);
    digcl_write(ctx, db.mem, 0, sizeof(float) * nb, b);
    digcl_write(ctx, dc.mem, 0, sizeof(float) * nc, c0);
    digcl_gemm_args args = {.M = c->M,
                            .N = c->N,
                            .K = c->K,
                            .alpha = c->alpha,
                            .beta = c->beta,
                            .A = da.mem,
                            .a_offset = c->pad,
                            .lda = lda,
                            .B = db.mem,
                            .b_offset = c->pad,
                            .ldb = ldb,
                            .transpose_a = c->transpose_a,
                            .transpose_b = c->transpose_b,
                            .C = dc.mem,
                            .c_offset = c->pad,
                            .ldc = ldc};
    if (given->batch) digcl_gemm_strided_batched(ctx, &args, sa, sb, sc, c->batch);
    else digcl_gemm(ctx, &args);
    digcl_read(ctx, dc.mem, 0, sizeof(float) * nc, got);
    for (size_t i = 0; i < nc; i++) want[i] = c0[i];
    for (int p = 0; p < c->batch; p++) {
        const size_t at = c->pad + p * sc;
        for (size_t i = 0; i < c->M * ldc; i++) slice[i] = c->beta == 0.0f ? 0.0f : c0[at + i];
        digcl_ref_gemm(c->transpose_a, c->transpose_b, c->M, c->N, c->K, c->alpha, a,
                       c->pad + p * sa, lda, b, c->pad + p * sb, ldb, c->beta, slice, 0, ldc);
        for (int m = 0; m < c->M; m++)
            for (int n = 0; n < c->N; n++) want[at + m * ldc + n] = slice[m * ldc + n];
    }
    for (size_t i = 0; i < nc; i++) /* outside the products C stays as it was (NaN too) */
        if (isnan(want[i]) && isnan(got[i])) want[i] = 0.0, got[i] = 0.0f;
    char label[96];
    snprintf(label, sizeof label, "tf32 %d x %dx%dx%d t%d%d pad %d beta %g", c->batch, c->M, c->N,
             c->K, c->transpose_a, c->transpose_b, c->pad, c->beta);
    test_assert_close(label, got, want, nc, 2e-3);
    free(a), free(b), free(c0), free(got), free(want), free(slice);
    digcl_buffer_release(&da), digcl_buffer_release(&db), digcl_buffer_release(&dc);
}

static void test_gemm_tf32_layouts(void **state) {
    (void)state;
    digcl_context *ctx =
        digcl_context_create(&(digcl_context_options){.precision = DIGCL_PRECISION_TF32});
    test_rng rng = test_rng_seeded(17);
    const tf32_case cases[] = {
        {64, 128, 32, 0, 1, 0, 1, 1.0f, 0.0f},     /* one tile, one K step */
        {1000, 384, 36, 0, 1, 4, 1, 1.0f, 0.0f},   /* K past one step, edges in M */
        {70, 200, 516, 0, 1, 8, 3, -1.5f, 0.5f},   /* batches, alpha, beta, edges in N */
        {132, 68, 1024, 0, 1, 4, 2, 0.25f, 1.0f},  /* N not a multiple of 64 */
        {260, 136, 100, 0, 0, 4, 2, 1.0f, 0.0f},   /* B [K, N]: dX = dY W */
        {1000, 200, 100, 0, 0, 4, 2, -1.5f, 0.5f}, /* B at most A / 4: wgmma, B copied K-major */
        {132, 200, 300, 1, 0, 0, 1, 1.0f, 0.5f},   /* A^T, B [K, N]: dW = dY^T X */
        {68, 72, 92, 1, 1, 4, 2, 2.0f, 0.0f},      /* A^T, B stored [N, K] */
        {68, 72, 90, 1, 1, 4, 2, 2.0f, 0.0f},      /* K not a multiple of 4: the mma.sync kernel */
        {96, 64, 8192, 1, 0, 0, 0, 1.0f, 0.0f},    /* dW: split-K slices as a batch */
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        run_tf32_layout_case(ctx, &rng, &cases[i]);
    digcl_context_release(ctx);
}

static void test_gemm_tf32_precision(void **state) {
    (void)state;
    digcl_context *ctx =
        digcl_context_create(&(digcl_context_options){.precision = DIGCL_PRECISION_TF32});
    assert_int_equal(digcl_context_precision(ctx), DIGCL_PRECISION_TF32);
    test_rng rng = test_rng_seeded(16);
    run_tf32_case(ctx, &rng, 0);
    run_tf32_case(ctx, &rng, 1);
    digcl_context_release(ctx);
}

static void test_reference_detects_errors(void **state) {
    (void)state; /* the comparison itself must be able to fail */
    float got[3] = {1.0f, 2.0f, 3.0f};
    double want[3] = {1.0, 2.0, 3.1};
    assert_true(test_rel_l2(got, want, 3) > 1e-3);
    got[1] = NAN;
    assert_true(test_rel_l2(got, want, 3) == INFINITY);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_detects_errors),
        cmocka_unit_test(test_gemm_shapes_and_transposes),
        cmocka_unit_test(test_gemm_vector_paths),
        cmocka_unit_test(test_gemm_large),
        cmocka_unit_test(test_gemm_split_k),
        cmocka_unit_test(test_gemm_auto_slices),
        cmocka_unit_test(test_gemm_strided_batched),
        cmocka_unit_test(test_gemm_tf32_precision),
        cmocka_unit_test(test_gemm_tf32_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
