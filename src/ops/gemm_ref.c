/* Plain-C GEMM oracle: row-major, double accumulation. */
#include "digcl/gemm.h"
#include "digcl/ref/gemm.h"

void digcl_ref_gemm(int transpose_a, int transpose_b, size_t M, size_t N, size_t K, float alpha,
                    const float *A, size_t a_offset, size_t lda, const float *B, size_t b_offset,
                    size_t ldb, float beta, float *C, size_t c_offset, size_t ldc) {
    A += a_offset;
    B += b_offset;
    C += c_offset;
    for (size_t m = 0; m < M; m++) {
        for (size_t n = 0; n < N; n++) {
            double sum = 0.0;
            for (size_t k = 0; k < K; k++) {
                double a = transpose_a ? A[k * lda + m] : A[m * lda + k]; // op(A)[m, k]
                double b = transpose_b ? B[n * ldb + k] : B[k * ldb + n]; // op(B)[k, n]
                sum += a * b;
            }
            double previous = beta == 0.0f ? 0.0 : (double)beta * C[m * ldc + n];
            C[m * ldc + n] = (float)((double)alpha * sum + previous);
        }
    }
}
