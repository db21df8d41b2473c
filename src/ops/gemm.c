/* Row-major SGEMM: the dispatch to the device's path (gemm_backend.c),
 * CLBlast, and split-K. CLBlast's temp buffer and the split-K partial
 * products are context scratch (digcl_context_scratch). */
#include <clblast_c.h>
#include <stdio.h>

#include "digcl/gemm.h"
#include "gemm_backend.h"
#include "gemm_tuning.h"

static CLBlastTranspose transpose_flag(int transpose) {
    return transpose ? CLBlastTransposeYes : CLBlastTransposeNo;
}

static _Noreturn void clblast_failed(const char *routine, CLBlastStatusCode status,
                                     const digcl_gemm_args *a) {
    digcl_fatal(
        "CLBlast %s failed with status %d (M=%zu N=%zu K=%zu, transpose %d/%d, lda %zu ldb %zu ldc %zu)\n"
        "---> HINT: status -4/-5 means out of device memory; other codes are listed in clblast_c.h",
        routine, (int)status, a->M, a->N, a->K, a->transpose_a, a->transpose_b, a->lda, a->ldb,
        a->ldc);
}

/* CLBlast's padding/transpose scratch, reused (runtime.h: digcl_context_scratch). */
static cl_mem temp_buffer(digcl_context *ctx, size_t bytes) {
    if (bytes == 0) return NULL;
    return digcl_context_scratch(ctx, "gemm.temp", bytes, "GEMM temporary buffer");
}

static void plain_gemm(digcl_context *ctx, const digcl_gemm_args *a) {
    digcl_gemm_backend_kind backend = digcl_gemm_backend(ctx);
    if (backend == DIGCL_GEMM_BACKEND_BLAS) {
        digcl_gemm_blas(ctx, a, 0, 0, 0, 1);
        return;
    }
    if (backend == DIGCL_GEMM_BACKEND_TENSOR && digcl_gemm_tc(ctx, a, 0, 0, 0, 1)) return;
    digcl_gemm_tuning_apply(ctx);
    CLBlastTranspose ta = transpose_flag(a->transpose_a), tb = transpose_flag(a->transpose_b);
    cl_command_queue queue = digcl_context_queue(ctx);
    size_t temp_bytes = 0;
    CLBlastStatusCode status = CLBlastSGemmTempBufferSize(
        CLBlastLayoutRowMajor, ta, tb, a->M, a->N, a->K, a->a_offset, a->lda, a->b_offset, a->ldb,
        a->c_offset, a->ldc, &queue, &temp_bytes);
    if (status != CLBlastSuccess) clblast_failed("SGemmTempBufferSize", status, a);
    cl_mem temp = temp_buffer(ctx, temp_bytes);
    double begin = digcl_profile_begin(ctx);
    status = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, a->M, a->N, a->K, a->alpha,
                                        a->A, a->a_offset, a->lda, a->B, a->b_offset, a->ldb,
                                        a->beta, a->C, a->c_offset, a->ldc, &queue, NULL, temp);
    if (status != CLBlastSuccess) clblast_failed("SgemmWithTempBuffer", status, a);
    digcl_profile_end(ctx, "gemm (CLBlast, host-timed)", begin);
}

void digcl_gemm_strided_batched(digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a,
                                size_t stride_b, size_t stride_c, size_t batch) {
    if (a->M == 0 || a->N == 0 || batch == 0) return;
    digcl_gemm_backend_kind backend = digcl_gemm_backend(ctx);
    if (backend == DIGCL_GEMM_BACKEND_BLAS) {
        digcl_gemm_blas(ctx, a, stride_a, stride_b, stride_c, batch);
        return;
    }
    if (backend == DIGCL_GEMM_BACKEND_TENSOR &&
        digcl_gemm_tc(ctx, a, stride_a, stride_b, stride_c, batch))
        return;
    digcl_gemm_tuning_apply(ctx);
    cl_command_queue queue = digcl_context_queue(ctx);
    double begin = digcl_profile_begin(ctx);
    CLBlastStatusCode status = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, transpose_flag(a->transpose_a), transpose_flag(a->transpose_b), a->M,
        a->N, a->K, a->alpha, a->A, a->a_offset, a->lda, stride_a, a->B, a->b_offset, a->ldb,
        stride_b, a->beta, a->C, a->c_offset, a->ldc, stride_c, batch, &queue, NULL);
    if (status != CLBlastSuccess) clblast_failed("SgemmStridedBatched", status, a);
    digcl_profile_end(ctx, "gemm batched (CLBlast, host-timed)", begin);
}

/* ------------------------------------------------------------ split-K */

/* The scratch for partial products. */
static cl_mem slices_buffer(digcl_context *ctx, size_t bytes) {
    return digcl_context_scratch(ctx, "gemm.slices", bytes, "GEMM split-K partial products");
}

/* Offsets of K slice `slice` (width Ks) of op(A) [M, K] and op(B) [K, N]. */
static size_t a_slice_offset(const digcl_gemm_args *a, size_t first_k) {
    return a->a_offset + (a->transpose_a ? first_k * a->lda : first_k);
}
static size_t b_slice_offset(const digcl_gemm_args *a, size_t first_k) {
    return a->b_offset + (a->transpose_b ? first_k : first_k * a->ldb);
}

/* C[m, n] = alpha * sum_s partial[s, m, n] + beta * C[m, n]. */
static void sum_slices(digcl_context *ctx, const digcl_gemm_args *a, cl_mem partial,
                       size_t slices) {
    cl_kernel kernel = digcl_kernel(ctx, "util", "gemm_sum_slices", "");
    digcl_arg_mem(kernel, 0, partial);
    digcl_arg_mem(kernel, 1, a->C);
    digcl_arg_int(kernel, 2, (int)a->c_offset);
    digcl_arg_int(kernel, 3, (int)a->ldc);
    digcl_arg_int(kernel, 4, (int)a->M);
    digcl_arg_int(kernel, 5, (int)a->N);
    digcl_arg_int(kernel, 6, (int)slices);
    digcl_arg_float(kernel, 7, a->alpha);
    digcl_arg_float(kernel, 8, a->beta);
    size_t global[2] = {a->N, a->M}, local[2] = {64, 1};
    digcl_launch(ctx, kernel, "gemm_sum_slices", 2, global, local);
}

void digcl_gemm_split_k(digcl_context *ctx, const digcl_gemm_args *a, size_t slices) {
    if (a->M == 0 || a->N == 0) return;
    if (slices <= 1 || a->K < 2 * slices) {
        plain_gemm(ctx, a);
        return;
    }
    /* slices of a multiple of 4 where K is one, so that every slice keeps the float4
     * alignment of the whole (the vector and wgmma kernels need it) */
    size_t width = a->K / slices, plane = a->M * a->N;
    if (a->K % 4 == 0 && width >= 4) width -= width % 4;
    const size_t rest = a->K - width * slices;
    if ((slices * plane + 2) > 2147483647u || a->c_offset + a->M * a->ldc > 2147483647u)
        digcl_fatal("split-K GEMM of %zux%zu in %zu slices exceeds the int range", a->M, a->N,
                    slices);
    cl_mem partial = slices_buffer(ctx, slices * plane * sizeof(float));
    digcl_gemm_args batch = *a; /* slice s covers K range [s*width, (s+1)*width) */
    batch.K = width, batch.alpha = 1.0f, batch.beta = 0.0f;
    batch.C = partial, batch.c_offset = 0, batch.ldc = a->N;
    size_t stride_a = a->transpose_a ? width * a->lda : width,
           stride_b = a->transpose_b ? width : width * a->ldb;
    digcl_gemm_strided_batched(ctx, &batch, stride_a, stride_b, plane, slices);
    if (rest) { /* the last K columns that do not fill a slice go into slice 0 */
        digcl_gemm_args tail = batch;
        tail.K = rest, tail.beta = 1.0f;
        tail.a_offset = a_slice_offset(a, width * slices);
        tail.b_offset = b_slice_offset(a, width * slices);
        plain_gemm(ctx, &tail);
    }
    sum_slices(ctx, a, partial, slices);
}

/* Heuristic: 128x128 output tiles; split when they cover under half the
 * compute units twice over and K is long enough to keep slices >= 512 wide. The
 * count is rounded to the nearest power of two (5 -> 4, 7 -> 8, 11 -> 8), so that
 * the slices of the usual K (rows of a batch) divide it: a rest costs one more GEMM
 * launch (the tail in digcl_gemm_split_k). */
size_t digcl_gemm_auto_slices(const digcl_context *ctx, const digcl_gemm_args *a) {
    if (digcl_gemm_backend(ctx) == DIGCL_GEMM_BACKEND_BLAS) return 1; /* threads split the work */
    size_t units = digcl_context_device(ctx)->compute_units;
    size_t tiles = ((a->M + 127) / 128) * ((a->N + 127) / 128);
    if (a->K < 2048 || 2 * tiles > units) return 1;
    size_t slices = (2 * units) / tiles, limit = a->K / 512 < 16 ? a->K / 512 : 16;
    size_t power = 1;
    while (2 * power <= slices) power *= 2;
    if (2 * slices >= 3 * power) power *= 2; /* nearer the next power up */
    while (power > limit && power > 1) power /= 2;
    return power;
}

void digcl_gemm(digcl_context *ctx, const digcl_gemm_args *a) {
    if (a->M == 0 || a->N == 0) return;
    digcl_gemm_split_k(ctx, a, digcl_gemm_auto_slices(ctx, a));
}
