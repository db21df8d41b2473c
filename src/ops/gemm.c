/* Row-major SGEMM through CLBlast, with one reusable temp buffer per context. */
#include <clblast_c.h>
#include <stdio.h>

#include "digcl/gemm.h"
#include "runtime/context_internal.h"

static CLBlastTranspose transpose_flag(int transpose) { return transpose ? CLBlastTransposeYes : CLBlastTransposeNo; }

static _Noreturn void clblast_failed(const char *routine, CLBlastStatusCode status, const digcl_gemm_args *a) {
    digcl_fatal("CLBlast %s failed with status %d (M=%zu N=%zu K=%zu, transpose %d/%d, lda %zu ldb %zu ldc %zu)\n"
                "---> HINT: status -4/-5 means out of device memory; other codes are listed in clblast_c.h",
                routine, (int)status, a->M, a->N, a->K, a->transpose_a, a->transpose_b, a->lda, a->ldb, a->ldc);
}

/* Grows the context's temp buffer to `bytes` (never shrinks). Allocation only
 * happens the first time a larger GEMM is seen, i.e. outside the steady state. */
static cl_mem temp_buffer(digcl_context *ctx, size_t bytes) {
    if (bytes == 0) return NULL;
    if (bytes > ctx->gemm_temp_bytes) {
        if (ctx->gemm_temp) {
            clReleaseMemObject(ctx->gemm_temp);
            ctx->in_use_bytes -= ctx->gemm_temp_bytes;
        }
        digcl_buffer buffer = digcl_buffer_create(ctx, bytes, "GEMM temporary buffer");
        ctx->gemm_temp = buffer.mem;
        ctx->gemm_temp_bytes = buffer.bytes;
    }
    return ctx->gemm_temp;
}

void digcl_gemm(digcl_context *ctx, const digcl_gemm_args *a) {
    if (a->M == 0 || a->N == 0) return;
    CLBlastTranspose ta = transpose_flag(a->transpose_a), tb = transpose_flag(a->transpose_b);
    size_t temp_bytes = 0;
    CLBlastStatusCode status = CLBlastSGemmTempBufferSize(CLBlastLayoutRowMajor, ta, tb, a->M, a->N, a->K,
                                                          a->a_offset, a->lda, a->b_offset, a->ldb,
                                                          a->c_offset, a->ldc, &ctx->queue, &temp_bytes);
    if (status != CLBlastSuccess) clblast_failed("SGemmTempBufferSize", status, a);
    cl_mem temp = temp_buffer(ctx, temp_bytes);
    double begin = digcl_profile_begin(ctx);
    status = CLBlastSgemmWithTempBuffer(CLBlastLayoutRowMajor, ta, tb, a->M, a->N, a->K, a->alpha, a->A,
                                        a->a_offset, a->lda, a->B, a->b_offset, a->ldb, a->beta, a->C,
                                        a->c_offset, a->ldc, &ctx->queue, NULL, temp);
    if (status != CLBlastSuccess) clblast_failed("SgemmWithTempBuffer", status, a);
    digcl_profile_end(ctx, "gemm (CLBlast, host-timed)", begin);
}

void digcl_gemm_strided_batched(digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a,
                                size_t stride_b, size_t stride_c, size_t batch) {
    if (a->M == 0 || a->N == 0 || batch == 0) return;
    double begin = digcl_profile_begin(ctx);
    CLBlastStatusCode status = CLBlastSgemmStridedBatched(
        CLBlastLayoutRowMajor, transpose_flag(a->transpose_a), transpose_flag(a->transpose_b), a->M, a->N,
        a->K, a->alpha, a->A, a->a_offset, a->lda, stride_a, a->B, a->b_offset, a->ldb, stride_b, a->beta,
        a->C, a->c_offset, a->ldc, stride_c, batch, &ctx->queue, NULL);
    if (status != CLBlastSuccess) clblast_failed("SgemmStridedBatched", status, a);
    digcl_profile_end(ctx, "gemm batched (CLBlast, host-timed)", begin);
}

void digcl_gemm_release(digcl_context *ctx) {
    if (ctx->gemm_temp) {
        clReleaseMemObject(ctx->gemm_temp);
        ctx->in_use_bytes -= ctx->gemm_temp_bytes;
    }
    ctx->gemm_temp = NULL;
    ctx->gemm_temp_bytes = 0;
}
