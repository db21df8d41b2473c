/* gemm_wgmma_split.cl: fp32-accurate row-major SGEMM (3xTF32) on Hopper's warpgroup
 * tensor cores (wgmma.mma_async with A from registers, sm_90a) through inline PTX
 * (docs/PERFORMANCE.md, "3xTF32 on wgmma"; PTX ISA, "Asynchronous Warpgroup Level
 * Matrix Multiply-Accumulate").
 *
 *   C[M, N] = alpha * op(A) op(B) + beta * C      (beta = 0 never reads C)
 *
 * Every operand x is split into x = hi + lo, hi the TF32 part of x and lo = x - hi, of
 * which the tensor cores read the TF32 part (split3 in cl/tensor_core.cl), and each K
 * step accumulates
 *   a b ~= a_lo b_hi + a_hi b_lo + a_hi b_hi       (a_lo b_lo dropped; cl/gemm_tc.cl)
 * into a fresh accumulator (scale-d 0 on its first wgmma) that is then added to the
 * running sum with an ordinary fp32 add: the tensor cores' own accumulation chain stays
 * six wgmma long (it does not round to nearest; cl/gemm_tc.cl, STEP_ACC).
 *
 * Work-group: one warpgroup (4 warps, 128 threads) computes a 64 x BN tile of C (BN 64
 * or 128), warp w the rows 16 w .. 16 w + 15. K advances in steps of BK = 16:
 *   1. cp.async brings step s + 1's raw operands, in the layout they are stored in
 *      (A [M, K] or A^T [K, M], B [N, K] or B^T [K, N]; 16-byte chunks along the
 *      contiguous dimension, zero-filled past the matrix), into the other raw buffer;
 *   2. the threads split step s's B tile into a hi and a lo tile, K-major with the
 *      64-byte swizzle the descriptors name, and their A fragments into hi and lo
 *      registers (wgmma reads A from registers: any stored layout will do);
 *   3. six m64nBNk8 wgmma (two k slices of 8, three products each); the warpgroup
 *      waits for them before the next step overwrites the hi / lo tiles.
 * Raw rows are padded so the fragment loads of a warp touch 32 banks: A [m][k] rows of
 * BK + 4 floats (row g at bank 20 g), A^T [k][m] rows of BM + 8 (k = t at bank 8 t).
 *
 * The hi / lo tiles: BN rows of 16 floats (64 bytes, four 16-byte chunks), chunk c of
 * row r stored at chunk c ^ ((r / 2) % 4); 8-row groups 512 bytes apart; the tiles start
 * on 1024-byte boundaries. Descriptor (PTX ISA, "Matrix Descriptor Format"): start
 * address >> 4, leading-dimension byte offset 1 (unused with a swizzle), stride byte
 * offset 512 >> 4 = 32, swizzle mode 2 (64 bytes). The k slice kk..kk+7 starts 4 kk
 * bytes into the tile.
 * A fragment of the k slice kk (m64nNk8 .tf32, lane 4 g + t of warp w, row
 * r = 16 w + g): a0 (r, kk + t), a1 (r + 8, kk + t), a2 (r, kk + t + 4),
 * a3 (r + 8, kk + t + 4). Accumulators as in cl/gemm_wgmma.cl.
 *
 * TC_EMULATE = 1 (tests on other devices): cp.async becomes a copy and each wgmma the
 * same sums, read from the raw A tile and the swizzled hi / lo tiles.
 * Options: -D BN, TRANS_A, TRANS_B (op(X) = X^T, X stored transposed), VEC_C (float2
 * stores), TC_EMULATE. The host checks that the contiguous dimension, the leading
 * dimension, the offset and the batch stride of both operands are multiples of 4. */

#define STAGES  2 /* raw buffers; cp.async waits for all groups (STAGES - 2 = 0) */
#define BM      64
#define BK      16
#define THREADS 128
#define PITCH_A (TRANS_A ? BM + 8 : BK + 4) /* raw A row, floats */
#define RAW_A   (TRANS_A ? BK * PITCH_A : BM * PITCH_A)
#define PITCH_B (TRANS_B ? BK : BN) /* raw B row: read in float4 chunks, no padding */
#define RAW_B   (BN * BK)
#define RAW     (RAW_A + RAW_B)
#define TILE_B  (BN * BK) /* a hi or lo tile */

#include "tensor_core.cl"
#include "gemm_common.cl"

/* 16-byte chunks of an operand's step tile by cp.async: `outer` rows from outer0 (below
 * outer_limit), each `inner` floats from inner0 (below inner_limit), to rows `pitch`
 * floats apart. Consecutive threads copy consecutive chunks of a row. */
static inline void issue_chunks(__global const float *X, int ld, int outer0, int outer_limit,
                                int outer, int inner0, int inner_limit, int inner, int pitch,
                                int tid, __local float *to) {
    const int row_chunks = inner / 4;
    for (int c = tid; c < outer * row_chunks; c += THREADS) {
        const int o = c / row_chunks, i = 4 * (c % row_chunks);
        const int valid = outer0 + o < outer_limit && inner0 + i < inner_limit;
        copy16(to + o * pitch + i, valid ? X + (long)(outer0 + o) * ld + inner0 + i : X, valid);
    }
}

/* K step k0 of both operands -> a raw buffer (one group of copies). */
static inline void load_step(__global const float *A, int lda, __global const float *B, int ldb,
                             int M, int N, int K, int m0, int n0, int k0, int tid,
                             __local float *raw) {
#if TRANS_A
    issue_chunks(A, lda, k0, K, BK, m0, M, BM, PITCH_A, tid, raw); /* [k][m] */
#else
    issue_chunks(A, lda, m0, M, BM, k0, K, BK, PITCH_A, tid, raw); /* [m][k] */
#endif
#if TRANS_B
    issue_chunks(B, ldb, n0, N, BN, k0, K, BK, PITCH_B, tid, raw + RAW_A); /* [n][k] */
#else
    issue_chunks(B, ldb, k0, K, BK, n0, N, BN, PITCH_B, tid, raw + RAW_A); /* [k][n] */
#endif
    copy_commit();
}

/* The float index of element (n, k) of a hi / lo tile (64-byte swizzle). */
static inline int swizzled(int n, int k) {
    return n * BK + (((k / 4) ^ ((n / 2) % 4)) * 4) + k % 4;
}

/* truncated() of each component: the hi parts of four elements */
static inline float4 truncated4(float4 x) { return as_float4(as_uint4(x) & (uint4)(0xffffe000u)); }

/* The raw B tile (B [n][k] or B^T [k][n]) -> hi and lo tiles, one 4-float chunk of a
 * K-major row at a time. */
static inline void split_b(__local const float *raw, __local float *hi, __local float *lo,
                           int tid) {
    for (int c = tid; c < BN * BK / 4; c += THREADS) {
#if TRANS_B
        const int n = c / (BK / 4), k = 4 * (c % (BK / 4));
        const float4 x = *(__local const float4 *)(raw + n * BK + k);
#else
        const int n = c % BN, k = 4 * (c / BN);
        const float4 x = (float4)(raw[k * BN + n], raw[(k + 1) * BN + n], raw[(k + 2) * BN + n],
                                  raw[(k + 3) * BN + n]);
#endif
        const float4 h = truncated4(x);
        *(__local float4 *)(hi + swizzled(n, k)) = h;
        *(__local float4 *)(lo + swizzled(n, k)) = x - h;
    }
}

/* Element (m, k) of the raw A tile. */
static inline float raw_a(__local const float *raw, int m, int k) {
#if TRANS_A
    return raw[k * PITCH_A + m];
#else
    return raw[m * PITCH_A + k];
#endif
}

/* This lane's A fragments of both k slices, split: a_hi / a_lo [4 kk / 8 + j]. */
static inline void split_a(__local const float *raw, uint *a_hi, uint *a_lo) {
    const int lane = get_local_id(0) % 32, w = get_local_id(0) / 32;
    const int r = 16 * w + lane / 4, t = lane % 4;
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const int kk = 8 * (i / 4), j = i % 4;
        const float x = raw_a(raw, r + 8 * (j % 2), kk + t + 4 * (j / 2));
        split3(x, &a_hi[i], &a_lo[i]);
    }
}

#if TC_EMULATE
/* What the six wgmma of a step compute for this lane: part = its accumulators' sums. */
static inline void emulated_step(float *part, __local const float *raw, __local const float *hi,
                                 __local const float *lo) {
    const int lane = get_local_id(0) % 32, w = get_local_id(0) / 32, g = lane / 4, t = lane % 4;
    for (int i = 0; i < BN / 2; i++) {
        const int row = 16 * w + g + 8 * ((i % 4) / 2), col = 8 * (i / 4) + 2 * t + i % 2;
        float sum = 0.0f;
        for (int k = 0; k < BK; k++) {
            uint a_hi, a_lo;
            split3(raw_a(raw, row, k), &a_hi, &a_lo);
            /* the tensor cores use the TF32 part of what the tiles hold */
            const float b_hi = truncated(hi[swizzled(col, k)]);
            const float b_lo = truncated(lo[swizzled(col, k)]);
            sum += tf32_part(a_lo) * b_hi + tf32_part(a_hi) * b_lo + tf32_part(a_hi) * b_hi;
        }
        part[i] = sum;
    }
}

static inline void fence_tiles(void) {}
#else
#include "wgmma_common.cl"

/* The descriptor of a K-major hi / lo tile (64-byte swizzle, 8-row groups 512 bytes apart)
 * from `tile`, k slice kk. */
static inline ulong descriptor(__local const float *tile, int kk) {
    return smem_descriptor(tile + kk, 512, 2);
}

/* d[0 .. BN / 2 - 1] (+)= A (64 x 8, fragments a) B^T (B BN x 8, descriptor b); d is
 * overwritten where !accumulate */
static inline void wgmma_k8(float *d, const uint *a, ulong b, int accumulate) {
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, " AFTER_ACC5 ", 0;\n" ARCH_PTX
                 "wgmma.mma_async.sync.aligned." WGMMA_SHAPE ".f32.tf32.tf32 " ACC_REGS
                 ", {" AFTER_ACC0 ", " AFTER_ACC1 ", " AFTER_ACC2 ", " AFTER_ACC3 "}, " AFTER_ACC4
                 ", p, 1, 1;\n}\n"
                 : ACC_OPERANDS
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(accumulate));
}

/* the hi / lo tiles written by this thread are visible to the tensor cores */
static inline void fence_tiles(void) {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
#endif

/* part = the products of one K step (emulated: computed here). */
static inline void step_products(float *part, __local const float *raw, __local const float *hi,
                                 __local const float *lo, const uint *a_hi, const uint *a_lo) {
#if TC_EMULATE
    (void)a_hi, (void)a_lo;
    emulated_step(part, raw, hi, lo);
#else
    (void)raw;
    asm volatile(ARCH_PTX "wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
        const uint *h = a_hi + kk / 2, *l = a_lo + kk / 2;
        wgmma_k8(part, l, descriptor(hi, kk), kk > 0);
        wgmma_k8(part, h, descriptor(lo, kk), 1);
        wgmma_k8(part, h, descriptor(hi, kk), 1);
    }
    asm volatile(ARCH_PTX "wgmma.commit_group.sync.aligned;" ::: "memory");
    wgmma_wait(part);
#endif
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
gemm_wgmma_split(const int M, const int N, const int K, const float alpha,
                 __global const float *A, const ulong a_offset, const int lda,
                 const ulong stride_a, __global const float *B, const ulong b_offset,
                 const int ldb, const ulong stride_b, const float beta, __global float *C,
                 const ulong c_offset, const int ldc, const ulong stride_c) {
    __local float raw[2][RAW] __attribute__((aligned(16)));      /* [buffer][A | B] */
    __local float split[2][TILE_B] __attribute__((aligned(1024))); /* B hi, B lo */
    const int tid = get_local_id(0), lane = tid % 32, w = tid / 32, g = lane / 4, t = lane % 4;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM;
    const ulong batch = get_global_id(2);
    A += a_offset + batch * stride_a;
    B += b_offset + batch * stride_b;
    C += c_offset + batch * stride_c;

    float acc[BN / 2], part[BN / 2]; /* the accumulator layout of cl/gemm_wgmma.cl */
#pragma unroll
    for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f, part[i] = 0.0f;
    const int steps = (K + BK - 1) / BK;
    load_step(A, lda, B, ldb, M, N, K, m0, n0, 0, tid, raw[0]);
    for (int s = 0; s < steps; s++) {
        /* step s has landed for every thread, and step s - 1's wgmma are done: the hi / lo
         * tiles and the other raw buffer are free */
        copy_wait();
        barrier(CLK_LOCAL_MEM_FENCE);
        if (s + 1 < steps)
            load_step(A, lda, B, ldb, M, N, K, m0, n0, (s + 1) * BK, tid, raw[(s + 1) % 2]);
        __local const float *now = raw[s % 2];
        split_b(now + RAW_A, split[0], split[1], tid);
        uint a_hi[8], a_lo[8];
        split_a(now, a_hi, a_lo);
        fence_tiles();
        barrier(CLK_LOCAL_MEM_FENCE);
        step_products(part, now, split[0], split[1], a_hi, a_lo);
#pragma unroll
        for (int i = 0; i < BN / 2; i++) acc[i] += part[i];
    }

#pragma unroll
    for (int i = 0; i < BN / 2; i += 4) {
        const int m = m0 + 16 * w + g, n = n0 + 8 * (i / 4) + 2 * t;
        store_pair(C, ldc, M, N, m, n, acc[i], acc[i + 1], alpha, beta);
        store_pair(C, ldc, M, N, m + 8, n, acc[i + 2], acc[i + 3], alpha, beta);
    }
}
