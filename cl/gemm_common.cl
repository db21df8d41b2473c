/* gemm_common.cl: what the tensor-core GEMM kernels (cl/gemm_tc.cl, cl/gemm_wgmma.cl)
 * share: the C update of the epilogue and the cp.async copies (PTX ISA, "cp.async").
 *   store_pair   C[m, n..n+1] = alpha (v0, v1) + beta C[m, n..n+1]   (beta = 0: no read)
 *   copy16       16 bytes global -> local without registers, zero-filled when !valid
 *   copy_commit  closes this thread's group of copies
 *   copy_wait    all but the newest COPIES_IN_FLIGHT groups of this thread have landed
 *                (unless the kernel defines it: STAGES - 2)
 *   copy_wait_all  all groups of this thread have landed
 * Included after tensor_core.cl, with TC_EMULATE, VEC_C and STAGES defined. */

#ifndef COPIES_IN_FLIGHT
#define COPIES_IN_FLIGHT (STAGES - 2)
#endif

static inline float blend(float value, __global const float *c, float alpha, float beta) {
    return beta == 0.0f ? alpha * value : alpha * value + beta * *c;
}

/* n even; VEC_C (ldc, the offset and N even): one float2 access. */
static inline void store_pair(__global float *C, int ldc, int M, int N, int m, int n, float v0,
                              float v1, float alpha, float beta) {
    if (m >= M || n >= N) return;
    __global float *c = C + (long)m * ldc + n;
#if VEC_C
    float2 old = beta == 0.0f ? (float2)(0.0f) : *(__global float2 *)c;
    *(__global float2 *)c = (float2)(alpha * v0 + beta * old.x, alpha * v1 + beta * old.y);
#else
    c[0] = blend(v0, c, alpha, beta);
    if (n + 1 < N) c[1] = blend(v1, c + 1, alpha, beta);
#endif
}

static inline void copy16(__local float *to, __global const float *from, int valid) {
#if TC_EMULATE
    vstore4(valid ? vload4(0, from) : (float4)(0.0f), 0, to);
#else
    const uint address = (uint)(size_t)to; /* the .shared window offset */
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(address), "l"(from),
                 "r"(valid ? 16 : 0)
                 : "memory");
#endif
}

static inline void copy_commit(void) {
#if !TC_EMULATE
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

static inline void copy_wait(void) {
#if !TC_EMULATE
    asm volatile("cp.async.wait_group %0;" ::"n"(COPIES_IN_FLIGHT) : "memory");
#endif
}

static inline void copy_wait_all(void) {
#if !TC_EMULATE
    asm volatile("cp.async.wait_group 0;" ::: "memory");
#endif
}
