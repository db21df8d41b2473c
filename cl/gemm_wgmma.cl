/* gemm_wgmma.cl: row-major SGEMM in TF32 on Hopper's warpgroup tensor cores
 * (wgmma.mma_async, sm_90a) through inline PTX (docs/PERFORMANCE.md, "wgmma GEMM";
 * PTX ISA, "Asynchronous Warpgroup Level Matrix Multiply-Accumulate").
 *
 *   C[M, N] = alpha * A B^T + beta * C      A [M, K] (lda), B stored [N, K] (ldb)
 *
 * (beta = 0 never reads C; strided batches over dimension 2). The tensor cores read
 * TF32 operands only K-major, so this is the one layout; it is the Linear layers'
 * x W^T, and the host gives the others (dX = dY W, dW = dY^T X) transposed copies.
 * K, lda, ldb and the offsets are multiples of 4 (a 16-byte chunk is then wholly
 * inside the matrix or wholly outside). TF32 as PyTorch's allow_tf32: the tensor
 * cores read the fp32 operands and use their TF32 part (the low 13 mantissa bits
 * are not used).
 *
 * Work-group: one warpgroup (4 warps, 128 threads) computes a 64 x BN tile of C
 * (BN 64 or 128), warp w the rows 16 w .. 16 w + 15. K advances in steps of 32
 * through two local buffers filled by cp.async (16-byte chunks, zero-filled past
 * M, N or K): step s starts its four m64nBNk8 wgmma (k slices of 8) on one buffer,
 * issues the copies of step s + 1 into the other while the tensor cores work, waits
 * for both, and one barrier ends the step.
 *
 * Local layout, both tiles K-major with the 128-byte swizzle the descriptors name:
 * a tile row is 32 floats (128 bytes, eight 16-byte chunks); chunk c of row r is
 * stored at chunk c ^ (r % 8) of that row; 8-row groups are 1024 bytes apart, and
 * every tile starts on a 1024-byte boundary.
 * Descriptor (PTX ISA, "Matrix Descriptor Format"): bits 0-13 start address >> 4,
 * 16-29 leading-dimension byte offset >> 4 (unused with this swizzle: 1), 32-45
 * stride byte offset >> 4 (1024 bytes: 64), 62-63 swizzle mode (1: 128 bytes).
 * The k slice kk..kk+7 starts 4 kk bytes into the tile.
 * Accumulators (m64nNk8 .f32): lane 4 g + t of warp w holds, for i < N / 2,
 * row 16 w + g + 8 ((i % 4) / 2), column 8 (i / 4) + 2 t + i % 2.
 *
 * NVIDIA's OpenCL compiler targets sm_90, which has no wgmma: every wgmma line is
 * written behind ARCH_PTX (a PTX comment marker) and the runtime restores it in the
 * compiled PTX, retargeted to sm_90a (src/runtime/program.c, "arch-specific PTX").
 * TC_EMULATE = 1 (tests on other devices): cp.async becomes a copy and each wgmma
 * the same sums read from the swizzled tiles, the operands truncated to TF32.
 * Options: -D BN, VEC_C (float2 stores), TC_EMULATE. */

#define STAGES 2 /* buffers; cp.async waits for all groups (STAGES - 2 = 0) */
#define BM      64
#define BK      32
#define THREADS 128
#define TILE_A  (BM * BK) /* floats */
#define TILE_B  (BN * BK)
#define STAGE   (TILE_A + TILE_B)
#define ROW_CHUNKS (BK / 4) /* 16-byte chunks of a tile row */

#include "tensor_core.cl"
#include "gemm_common.cl"

/* The float index of element (row, k) of a swizzled tile. */
static inline int swizzled(int row, int k) {
    return row * BK + (((k / 4) ^ (row % 8)) * 4) + k % 4;
}

/* Step k0's 16-byte chunks of rows first.. of an [rows, K] operand -> tile (zero past
 * `limit` rows or past K) by cp.async; the chunks of consecutive threads are consecutive
 * in memory. */
static inline void issue_tile(__global const float *X, int ld, int first, int limit, int K,
                              int k0, int rows, int tid, __local float *tile) {
    for (int c = tid; c < rows * ROW_CHUNKS; c += THREADS) {
        const int row = c / ROW_CHUNKS, k = 4 * (c % ROW_CHUNKS);
        const int valid = first + row < limit && k0 + k < K;
        copy16(tile + swizzled(row, k), valid ? X + (long)(first + row) * ld + k0 + k : X, valid);
    }
}

/* K step k0 of both operands -> a stage's tiles (one group of copies). */
static inline void load_step(__global const float *A, int lda, __global const float *B, int ldb,
                             int M, int N, int K, int m0, int n0, int k0, int tid,
                             __local float *stage) {
    issue_tile(A, lda, m0, M, K, k0, BM, tid, stage);
    issue_tile(B, ldb, n0, N, K, k0, BN, tid, stage + TILE_A);
    copy_commit();
}

#if TC_EMULATE
/* What wgmma_k8 computes for this lane: its accumulators' sums over the k slice. */
static inline void emulated_k8(float *d, __local const float *As, __local const float *Bs,
                               int kk) {
    const int lane = get_local_id(0) % 32, w = get_local_id(0) / 32, g = lane / 4, t = lane % 4;
    for (int i = 0; i < BN / 2; i++) {
        const int row = 16 * w + g + 8 * ((i % 4) / 2), col = 8 * (i / 4) + 2 * t + i % 2;
        float sum = 0.0f;
        for (int k = kk; k < kk + 8; k++)
            sum += truncated(As[swizzled(row, k)]) * truncated(Bs[swizzled(col, k)]);
        d[i] += sum;
    }
}

static inline void wgmma_wait(float *d) { (void)d; /* emulated_k8 has finished */ }
#else
#include "wgmma_common.cl"

/* The descriptor of a K-major tile (128-byte swizzle, 8-row groups 1024 bytes apart) from
 * `tile`, k slice kk. */
static inline ulong descriptor(__local const float *tile, int kk) {
    return smem_descriptor(tile + kk, 1024, 1);
}

/* d[0 .. BN / 2 - 1] += A (64 x 8, descriptor a) B^T (B BN x 8, descriptor b) */
static inline void wgmma_k8(float *d, ulong a, ulong b) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " AFTER_ACC2 ", 0;\n" ARCH_PTX
                 "wgmma.mma_async.sync.aligned." WGMMA_SHAPE ".f32.tf32.tf32 " ACC_REGS
                 ", " AFTER_ACC0 ", " AFTER_ACC1 ", p, 1, 1;\n}\n"
                 : ACC_OPERANDS
                 : "l"(a), "l"(b), "r"(1));
}

#endif

/* Starts acc += the products of one K step from a stage's tiles (emulated: computes them). */
static inline void issue_step(__local const float *As, __local const float *Bs, float *acc) {
#if TC_EMULATE
    for (int kk = 0; kk < BK; kk += 8) emulated_k8(acc, As, Bs, kk);
#else
    asm volatile(ARCH_PTX "wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) wgmma_k8(acc, descriptor(As, kk), descriptor(Bs, kk));
    asm volatile(ARCH_PTX "wgmma.commit_group.sync.aligned;" ::: "memory");
#endif
}

/* This thread's copies have landed and are visible to the tensor cores. */
static inline void loads_landed(void) {
    copy_wait();
#if !TC_EMULATE
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
#endif
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
gemm_wgmma(const int M, const int N, const int K, const float alpha, __global const float *A,
           const ulong a_offset, const int lda, const ulong stride_a, __global const float *B,
           const ulong b_offset, const int ldb, const ulong stride_b, const float beta,
           __global float *C, const ulong c_offset, const int ldc, const ulong stride_c) {
    __local float tiles[2][STAGE] __attribute__((aligned(1024))); /* [stage][A | B] */
    const int tid = get_local_id(0), lane = tid % 32, w = tid / 32, g = lane / 4, t = lane % 4;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM;
    const ulong batch = get_global_id(2);
    A += a_offset + batch * stride_a;
    B += b_offset + batch * stride_b;
    C += c_offset + batch * stride_c;

    float acc[BN / 2]; /* the accumulator layout of the header */
#pragma unroll
    for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f;
    /* step s computes from buffer s % 2 while step s + 1 loads into the other, which
     * step s - 1's products (waited for) no longer read */
    const int steps = (K + BK - 1) / BK;
    load_step(A, lda, B, ldb, M, N, K, m0, n0, 0, tid, tiles[0]);
    loads_landed();
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 0; s < steps; s++) {
        issue_step(tiles[s % 2], tiles[s % 2] + TILE_A, acc);
        if (s + 1 < steps)
            load_step(A, lda, B, ldb, M, N, K, m0, n0, (s + 1) * BK, tid, tiles[(s + 1) % 2]);
        wgmma_wait(acc);
        loads_landed();
        barrier(CLK_LOCAL_MEM_FENCE);
    }

#pragma unroll
    for (int i = 0; i < BN / 2; i += 4) {
        const int m = m0 + 16 * w + g, n = n0 + 8 * (i / 4) + 2 * t;
        store_pair(C, ldc, M, N, m, n, acc[i], acc[i + 1], alpha, beta);
        store_pair(C, ldc, M, N, m + 8, n, acc[i + 2], acc[i + 3], alpha, beta);
    }
}
