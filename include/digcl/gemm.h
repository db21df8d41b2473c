/* digcl/gemm.h: row-major single-precision GEMM on the device: our
 * tensor-core kernels on NVIDIA sm_80+, OpenBLAS on CPU devices, CLBlast
 * elsewhere.
 *
 *   C[M, N] = alpha * op(A) op(B) + beta * C,  op(X) = X or X^T (row-major)
 *
 * Offsets and leading dimensions are in elements. CLBlast's temporary buffer is
 * context scratch (digcl_context_scratch: grown on demand, never shrunk), so
 * the hot loop does not allocate. Each call is asynchronous on the context's queue.
 */
#ifndef DIGCL_GEMM_H
#define DIGCL_GEMM_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_gemm_args {
    int transpose_a, transpose_b;
    size_t M, N, K;
    float alpha, beta;
    cl_mem A;
    size_t a_offset, lda;
    cl_mem B;
    size_t b_offset, ldb;
    cl_mem C;
    size_t c_offset, ldc;
} digcl_gemm_args;

/* C = alpha op(A) op(B) + beta C. GEMMs whose output has too few tiles to
 * fill the device but a long K (the weight gradients dW = dY^T X of a
 * training step: 384x384 outputs with K = N*T) run split-K: see below. */
void digcl_gemm(digcl_context *ctx, const digcl_gemm_args *args);

/* Split-K: op(A) op(B) is computed as `slices` partial products over
 * consecutive K ranges (one strided-batched GEMM into a reusable scratch
 * [slices, M, N]), then C = alpha * sum over slices + beta * C in a fixed
 * order (deterministic; beta = 0 never reads C). slices = 1 is a plain GEMM. */
void digcl_gemm_split_k(digcl_context *ctx, const digcl_gemm_args *args, size_t slices);

/* The number of K slices digcl_gemm uses for these arguments on this device
 * (1: no split). */
size_t digcl_gemm_auto_slices(const digcl_context *ctx, const digcl_gemm_args *args);

/* The same for `batch` matrices, each offset by the given strides (elements). */
void digcl_gemm_strided_batched(digcl_context *ctx, const digcl_gemm_args *args, size_t stride_a,
                                size_t stride_b, size_t stride_c, size_t batch);

/* The path that runs this context's GEMMs: "OpenBLAS" on CPU devices (host
 * memory, mapped buffers) when digcl was built with it, "tensor cores
 * (3xTF32)" or "(TF32)" on NVIDIA compute capability 8.0 and newer, else
 * "CLBlast". DIGCL_GEMM=clblast|blas|tensor|tensor-emulate overrides the
 * choice (src/ops/gemm_backend.c). */
const char *digcl_gemm_backend_name(const digcl_context *ctx);

/* 1 when the products are single TF32 products (--precision tf32 on a
 * tensor-core path): relative L2 error about 1e-3 instead of fp32's 1e-7. */
int digcl_gemm_uses_tf32(const digcl_context *ctx);

/* The kernels OpenBLAS runs in this process ("Prescott", "SkylakeX", ...), or
 * NULL when built without OpenBLAS. */
const char *digcl_openblas_core(void);

/* The OPENBLAS_CORETYPE that would run this CPU's GEMMs on wider kernels than
 * the ones OpenBLAS picked when it was loaded ("SkylakeX" on an AVX-512 CPU
 * that an older OpenBLAS does not know and runs with its SSE3 "Prescott"
 * kernels, about 3x slower), or NULL: nothing better known, OPENBLAS_CORETYPE
 * already set, or built without OpenBLAS. OpenBLAS reads the variable once, at
 * load time, so only a new process can follow the hint (the CLI re-executes
 * itself with it). */
const char *digcl_openblas_core_hint(void);
#endif
