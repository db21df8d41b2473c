/* digcl/ref/gemm.h: the plain-C double-precision oracles of digcl/gemm.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_GEMM_H
#define DIGCL_REF_GEMM_H

#include "digcl/gemm.h"

/* Plain-C reference in double accumulation, same argument meaning, on host
 * arrays (A, B, C are the whole host buffers; offsets apply). */
void digcl_ref_gemm(int transpose_a, int transpose_b, size_t M, size_t N, size_t K, float alpha,
                    const float *A, size_t a_offset, size_t lda, const float *B, size_t b_offset,
                    size_t ldb, float beta, float *C, size_t c_offset, size_t ldc);

#endif
