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
 * Work-group: WG warpgroups (4 warps each) compute a 64 WG x BN tile of C (BN 64 or
 * 128), warpgroup u the rows 64 u .. 64 u + 63 and its warp w the 16 rows from
 * 64 u + 16 w; they share the B tile. K advances in steps of BK (8, 16 or 32)
 * through STAGES local buffers filled by cp.async (16-byte chunks, zero-filled past
 * M, N or K), AHEAD steps ahead of the tensor cores. Step s waits for its own
 * copies, and one barrier makes them visible to the tensor cores and tells every
 * thread that no wgmma still reads the buffer of step s + AHEAD, which then takes
 * its copies; then step s's BK / 8 m64nBNk8 wgmma start, and
 *   DRAIN = 1 (AHEAD = STAGES - 1): the warpgroup waits for them, so the buffer of
 *     step s is free at step s + 1 (other work-groups on the compute unit keep the
 *     tensor cores busy meanwhile);
 *   DRAIN = 0 (AHEAD = STAGES - 2): the warpgroup waits only for those of step
 *     s - 1, so the next step's wgmma can queue behind them; the buffer of step s
 *     is free at step s + 2.
 *
 * Local layout, both tiles K-major with the swizzle the descriptors name: a tile
 * row is BK floats (4 BK bytes, RC = BK / 4 16-byte chunks); chunk c of row r is
 * stored at chunk c ^ ((r RC / 8) % RC) of that row (BK 32: c ^ (r % 8), the
 * 128-byte swizzle; 16: c ^ ((r / 2) % 4), 64 bytes; 8: c ^ ((r / 4) % 2), 32
 * bytes: the XOR of address bits 4.. with bits 7..); 8-row groups are 32 BK bytes
 * apart, and every tile starts on a 1024-byte boundary.
 * Descriptor (PTX ISA, "Matrix Descriptor Format"): bits 0-13 start address >> 4,
 * 16-29 leading-dimension byte offset >> 4 (unused with a swizzle: 1), 32-45
 * stride byte offset >> 4 (the 8-row group, 32 BK bytes), 62-63 swizzle mode
 * (1: 128 bytes, 2: 64, 3: 32). The k slice kk..kk+7 starts 4 kk bytes into the
 * tile.
 * Accumulators (m64nNk8 .f32): lane 4 g + t of warp w holds, for i < N / 2,
 * row 16 w + g + 8 ((i % 4) / 2), column 8 (i / 4) + 2 t + i % 2.
 *
 * NVIDIA's OpenCL compiler targets sm_90, which has no wgmma: every wgmma line is
 * written behind ARCH_PTX (a PTX comment marker) and the runtime restores it in the
 * compiled PTX, retargeted to sm_90a (src/runtime/program.c, "arch-specific PTX").
 * TC_EMULATE = 1 (tests on other devices): cp.async becomes a copy and each wgmma
 * the same sums read from the swizzled tiles, the operands truncated to TF32.
 * Options: -D BN, BK, STAGES, DRAIN, WG, VEC_C (float2 stores), TC_EMULATE. */

#ifndef BK
#define BK 32
#endif
#ifndef STAGES
#define STAGES 2 /* buffers */
#endif
#ifndef DRAIN
#define DRAIN 1
#endif
#ifndef WG
#define WG 1 /* warpgroups */
#endif
#define AHEAD (STAGES - 2 + DRAIN) /* K steps the copies run ahead */
#define COPIES_IN_FLIGHT (AHEAD - 1) /* copy_wait: the groups of the later steps */
#define BM      (64 * WG)
#define THREADS (128 * WG)
#define TILE_A  (BM * BK) /* floats */
#define TILE_B  (BN * BK)
#define STAGE   (TILE_A + TILE_B)
#define ROW_CHUNKS (BK / 4) /* 16-byte chunks of a tile row */
#if BK == 32
#define SWIZZLE_MODE 1 /* 128 bytes */
#elif BK == 16
#define SWIZZLE_MODE 2 /* 64 bytes */
#elif BK == 8
#define SWIZZLE_MODE 3 /* 32 bytes */
#else
#error "BK must be 8, 16 or 32"
#endif
#if AHEAD < 1 || STAGES * STAGE * 4 > 48 * 1024
#error "STAGES buffers must fit in 48 KiB and let the copies run ahead (DRAIN = 0: at least 3)"
#endif

#include "tensor_core.cl"
#include "gemm_common.cl"

/* The float index of element (row, k) of a swizzled tile. */
static inline int swizzled(int row, int k) {
    return row * BK + (((k / 4) ^ ((row * ROW_CHUNKS / 8) % ROW_CHUNKS)) * 4) + k % 4;
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

/* Step s of `steps` -> a stage's tiles, or past the last step an empty group: one group per
 * step, so that the wait counts hold. */
static inline void step_copies(__global const float *A, int lda, __global const float *B,
                               int ldb, int M, int N, int K, int m0, int n0, int s, int steps,
                               int tid, __local float *stage) {
    if (s < steps) load_step(A, lda, B, ldb, M, N, K, m0, n0, s * BK, tid, stage);
    else copy_commit();
}

#if TC_EMULATE
/* What wgmma_k8 computes for this lane: its accumulators' sums over the k slice. */
static inline void emulated_k8(float *d, __local const float *As, __local const float *Bs,
                               int kk) {
    const int lane = get_local_id(0) % 32, w = get_local_id(0) / 32 % 4; /* in its group */
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < BN / 2; i++) {
        const int row = 16 * w + g + 8 * ((i % 4) / 2), col = 8 * (i / 4) + 2 * t + i % 2;
        float sum = 0.0f;
        for (int k = kk; k < kk + 8; k++)
            sum += truncated(As[swizzled(row, k)]) * truncated(Bs[swizzled(col, k)]);
        d[i] += sum;
    }
}

static inline void wgmma_wait(float *d) { (void)d; /* emulated_k8 has finished */ }
static inline void wgmma_wait_previous(float *d) { (void)d; }
#else
#include "wgmma_common.cl"

/* The descriptor of a K-major tile (8-row groups 32 BK bytes apart) from `tile`, k slice
 * kk. */
static inline ulong descriptor(__local const float *tile, int kk) {
    return smem_descriptor(tile + kk, 32 * BK, SWIZZLE_MODE);
}

/* All but the newest group of this warpgroup's wgmma are done (d is named so that the
 * compiler keeps it in place). */
static inline void wgmma_wait_previous(float *d) {
    asm volatile(ARCH_PTX "wgmma.wait_group.sync.aligned 1;" : ACC_OPERANDS : : "memory");
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

/* This thread's copies of the step to compute (all but the newest AHEAD - 1 groups) have
 * landed and are visible to the tensor cores. */
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
    __local float tiles[STAGES][STAGE] __attribute__((aligned(1024))); /* [stage][A | B] */
    const int tid = get_local_id(0), lane = tid % 32, w = tid / 32, g = lane / 4, t = lane % 4;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM; /* warp w: rows 16 w.. */
    const ulong batch = get_global_id(2);
    A += a_offset + batch * stride_a;
    B += b_offset + batch * stride_b;
    C += c_offset + batch * stride_c;

    float acc[BN / 2]; /* the accumulator layout of the header */
#pragma unroll
    for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f;
    const int steps = (K + BK - 1) / BK;
    __local const float *A_rows = tiles[0] + (tid / 128) * 64 * BK; /* this warpgroup's */
    for (int s = 0; s < AHEAD; s++)
        step_copies(A, lda, B, ldb, M, N, K, m0, n0, s, steps, tid, tiles[s]);
    for (int s = 0; s < steps; s++) {
        loads_landed();
        barrier(CLK_LOCAL_MEM_FENCE); /* step s's tiles are in; step s + AHEAD's buffer is free */
        const int ahead = s + AHEAD;
        step_copies(A, lda, B, ldb, M, N, K, m0, n0, ahead, steps, tid, tiles[ahead % STAGES]);
        issue_step(A_rows + (s % STAGES) * STAGE, tiles[s % STAGES] + TILE_A, acc);
#if DRAIN
        wgmma_wait(acc);
#else
        wgmma_wait_previous(acc);
#endif
    }
    wgmma_wait(acc);

#pragma unroll
    for (int i = 0; i < BN / 2; i += 4) {
        const int m = m0 + 16 * w + g, n = n0 + 8 * (i / 4) + 2 * t;
        store_pair(C, ldc, M, N, m, n, acc[i], acc[i + 1], alpha, beta);
        store_pair(C, ldc, M, N, m + 8, n, acc[i + 2], acc[i + 3], alpha, beta);
    }
}
