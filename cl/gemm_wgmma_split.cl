/* gemm_wgmma_split.cl: fp32-accurate row-major SGEMM (3xTF32) on Hopper's warpgroup
 * tensor cores (wgmma.mma_async with A from registers, sm_90a) through inline PTX
 * (docs/PERFORMANCE.md, "3xTF32 on wgmma"; PTX ISA, "Asynchronous Warpgroup Level
 * Matrix Multiply-Accumulate").
 *
 *   C[M, N] = alpha * op(A) op(B) + beta * C      (beta = 0 never reads C)
 *
 * Every operand x is split into x = hi + lo, hi the TF32 part of x and lo = x - hi, of
 * which the tensor cores read the TF32 part (split3 in cl/tensor_core.cl), and each K
 * step of 16 issues
 *   a b ~= a_lo b_hi + a_hi b_lo + a_hi b_hi       (a_lo b_lo dropped; cl/gemm_tc.cl)
 * as six m64nBNk8 wgmma per warpgroup. The tensor cores' accumulation does not round to
 * nearest, so its chain is kept short: every CHAIN steps the accumulators are added to
 * a running fp32 sum and the next wgmma starts them afresh (scale-d 0); CHAIN 0 never
 * does (TF32 accuracy is enough). SPLIT 0 is plain TF32: one product, no lo tiles.
 *
 * Work-group: WG warpgroups (128 WG threads) compute a 64 WG x BN tile of C (BN 64 or
 * 128); warp w the rows 16 w .. 16 w + 15, with its own A fragments and the shared B
 * tiles. A goes straight from global memory into registers (wgmma reads A from
 * registers, in any stored layout), one step ahead; B goes by cp.async, two steps ahead,
 * into a raw buffer in its stored layout (B [n][k] or B^T [k][n]; 16-byte chunks along
 * the contiguous dimension, zero-filled past the matrix). Step s:
 *   1. (every CHAIN steps) wait for the wgmma, add the accumulators to the sum;
 *   2. issue step s's wgmma from the A registers and the hi / lo tiles of buffer s % 2;
 *   3. wait for step s - 1's wgmma (one group left in flight): its A registers and the
 *      tiles of buffer (s + 1) % 2 are free;
 *   4. split step s + 1's raw A registers into hi / lo registers, load step s + 2's raw
 *      A and issue its B copies into the raw buffer step s's split has emptied;
 *   5. wait for step s + 1's B copies, barrier, split its raw B into K-major hi / lo
 *      tiles with the 64-byte swizzle the descriptors name, barrier.
 *
 * The hi / lo tiles: BN rows of 16 floats (64 bytes, four 16-byte chunks), chunk c of
 * row r stored at chunk c ^ ((r / 2) % 4); 8-row groups 512 bytes apart; every tile
 * starts on a 1024-byte boundary. Descriptor (PTX ISA, "Matrix Descriptor Format"):
 * start address >> 4, leading-dimension byte offset 1 (unused with a swizzle), stride
 * byte offset 512 >> 4 = 32, swizzle mode 2 (64 bytes). The k slice kk..kk+7 starts
 * 4 kk bytes into the tile. Local memory: 2 raw + 2 hi + 2 lo tiles of 4 BN KiB
 * (48 KiB at BN 128, the OpenCL limit there).
 * A fragment of the k slice kk (m64nNk8 .tf32, lane 4 g + t of warp w, row
 * r = 16 w + g): a0 (r, kk + t), a1 (r + 8, kk + t), a2 (r, kk + t + 4),
 * a3 (r + 8, kk + t + 4). Accumulators as in cl/gemm_wgmma.cl.
 *
 * TC_EMULATE = 1 (tests on other devices): cp.async becomes a copy, and each step's
 * wgmma the same sums, the A fragments exchanged through local memory and B read from
 * the swizzled hi / lo tiles.
 * Options: -D BN, WG (1 to 4), CHAIN, SPLIT, TRANS_A, TRANS_B (op(X) = X^T, X stored
 * transposed), VEC_C (float2 stores), TC_EMULATE. The host checks that B's contiguous
 * dimension, leading dimension, offset and batch stride are multiples of 4. */

#define STAGES  3 /* copy_wait leaves one group (the newest) in flight */
#define BM      (64 * WG)
#define BK      16
#define THREADS (128 * WG)
#define PITCH_B (TRANS_B ? BK : BN) /* raw B row: read in float4 chunks, no padding */
#define TILE_B  (BN * BK)           /* floats of a raw, hi or lo tile */
#define TILES   (SPLIT ? 6 : 4)     /* raw[2], hi[2], lo[2] (SPLIT) */
#define FRAG    8                   /* A fragment registers of a step: 2 k slices x 4 */
/* for functions with barriers: PoCL 3.1 passes a non-inlined one another copy of the tiles */
#define INLINE inline __attribute__((always_inline))

#include "tensor_core.cl"
#include "gemm_common.cl"

/* tile `which` (0 raw, 1 hi, 2 lo) of buffer b */
static inline __local float *tile(__local float *tiles, int which, int b) {
    return tiles + (2 * which + b) * TILE_B;
}

/* 16-byte chunks of step k0's B tile by cp.async into `to` (one group of copies): B [n][k]
 * rows of BK or B^T [k][n] rows of BN, consecutive threads on consecutive chunks. */
static inline void load_b(__global const float *B, int ldb, int N, int K, int n0, int k0,
                          __local float *to) {
    const int outer = TRANS_B ? BN : BK, inner = TRANS_B ? BK : BN;
    const int outer0 = TRANS_B ? n0 : k0, inner0 = TRANS_B ? k0 : n0;
    const int outer_limit = TRANS_B ? N : K, inner_limit = TRANS_B ? K : N;
    const int row_chunks = inner / 4;
    for (int c = get_local_id(0); c < outer * row_chunks; c += THREADS) {
        const int o = c / row_chunks, i = 4 * (c % row_chunks);
        const int valid = outer0 + o < outer_limit && inner0 + i < inner_limit;
        copy16(to + o * PITCH_B + i, valid ? B + (long)(outer0 + o) * ldb + inner0 + i : B, valid);
    }
    copy_commit();
}

/* This lane's raw A fragments of step k0 (0 past M or K): x[4 (kk / 8) + j] is element
 * (row + 8 (j % 2), k0 + kk + t + 4 (j / 2)) of op(A). */
static inline void load_a(__global const float *A, int lda, int M, int K, int row, int t, int k0,
                          float *x) {
#pragma unroll
    for (int i = 0; i < FRAG; i++) {
        const int j = i % 4, m = row + 8 * (j % 2), k = k0 + 8 * (i / 4) + t + 4 * (j / 2);
        const int valid = m < M && k < K;
        const long at = TRANS_A ? (long)k * lda + m : (long)m * lda + k;
        x[i] = valid ? A[valid ? at : 0] : 0.0f;
    }
}

/* raw fragments -> hi (a[0 .. 7]) and lo (a[8 .. 15]) registers */
static inline void split_a(const float *x, uint *a) {
#pragma unroll
    for (int i = 0; i < FRAG; i++) split3(x[i], &a[i], &a[FRAG + i]);
}

/* The float index of element (n, k) of a hi / lo tile (64-byte swizzle). */
static inline int swizzled(int n, int k) {
    return n * BK + (((k / 4) ^ ((n / 2) % 4)) * 4) + k % 4;
}

/* truncated() of each component: the hi parts of four elements */
static inline float4 truncated4(float4 x) { return as_float4(as_uint4(x) & (uint4)(0xffffe000u)); }

/* The raw B tile -> hi and (SPLIT) lo tiles, one 4-float chunk of a K-major row at a time. */
static inline void split_b(__local const float *raw, __local float *hi, __local float *lo) {
    for (int c = get_local_id(0); c < BN * BK / 4; c += THREADS) {
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
#if SPLIT
        *(__local float4 *)(lo + swizzled(n, k)) = x - h;
#else
        (void)lo;
#endif
    }
}

#if TC_EMULATE
/* What a step's wgmma compute for this lane, into its accumulators d (afresh where
 * `first`): the lanes' A fragments (a: hi, lo) go through local memory `a_tiles`
 * ([hi | lo][BM][BK], TF32 parts), B is read from the hi / lo tiles. */
static INLINE void emulated_step(float *d, const uint *a, __local const float *hi,
                                 __local const float *lo, int first, __local float *a_tiles) {
    const int lane = get_local_id(0) % 32, w = get_local_id(0) / 32, g = lane / 4, t = lane % 4;
    for (int i = 0; i < FRAG; i++) {
        const int j = i % 4, row = 16 * w + g + 8 * (j % 2), k = 8 * (i / 4) + t + 4 * (j / 2);
        a_tiles[row * BK + k] = tf32_part(a[i]);
        a_tiles[BM * BK + row * BK + k] = tf32_part(a[FRAG + i]);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int i = 0; i < BN / 2; i++) {
        const int row = 16 * w + g + 8 * ((i % 4) / 2), col = 8 * (i / 4) + 2 * t + i % 2;
        float sum = 0.0f;
        for (int k = 0; k < BK; k++) {
            const float a_hi = a_tiles[row * BK + k], a_lo = a_tiles[BM * BK + row * BK + k];
            /* the tensor cores use the TF32 part of what the tiles hold */
            const float b_hi = truncated(hi[swizzled(col, k)]);
            sum += a_hi * b_hi;
#if SPLIT
            sum += a_lo * b_hi + a_hi * truncated(lo[swizzled(col, k)]);
#else
            (void)a_lo, (void)lo;
#endif
        }
        d[i] = first ? sum : d[i] + sum;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

static inline void wait_all(float *d) { (void)d; }
static inline void wait_previous(float *d, uint *a) { (void)d, (void)a; }
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

static inline void wait_all(float *d) { wgmma_wait(d); }

/* All but the newest group of this warpgroup's wgmma are done. Named as operands, the
 * accumulators d and the newest group's A fragments a (hi, lo) stay where it reads them. */
static inline void wait_previous(float *d, uint *a) {
    asm volatile(ARCH_PTX "wgmma.wait_group.sync.aligned 1;"
                 : ACC_OPERANDS, "+r"(a[0]), "+r"(a[1]), "+r"(a[2]), "+r"(a[3]), "+r"(a[4]),
                   "+r"(a[5]), "+r"(a[6]), "+r"(a[7]), "+r"(a[8]), "+r"(a[9]), "+r"(a[10]),
                   "+r"(a[11]), "+r"(a[12]), "+r"(a[13]), "+r"(a[14]), "+r"(a[15])
                 :
                 : "memory");
}

/* the hi / lo tiles written by this thread are visible to the tensor cores */
static inline void fence_tiles(void) {
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}
#endif

/* Issues d (+)= one step's products (emulated: computes them), afresh where `first`. */
static inline void issue_step(float *d, const uint *a, __local const float *hi,
                              __local const float *lo, int first, __local float *a_tiles) {
#if TC_EMULATE
    emulated_step(d, a, hi, lo, first, a_tiles);
#else
    (void)a_tiles;
    asm volatile(ARCH_PTX "wgmma.fence.sync.aligned;" ::: "memory");
#pragma unroll
    for (int kk = 0; kk < BK; kk += 8) {
        const uint *h = a + kk / 2;
#if SPLIT
        wgmma_k8(d, h + FRAG, descriptor(hi, kk), kk > 0 || !first);
        wgmma_k8(d, h, descriptor(lo, kk), 1);
        wgmma_k8(d, h, descriptor(hi, kk), 1);
#else
        (void)lo;
        wgmma_k8(d, h, descriptor(hi, kk), kk > 0 || !first);
#endif
    }
    asm volatile(ARCH_PTX "wgmma.commit_group.sync.aligned;" ::: "memory");
#endif
}

/* Where one step's pipeline stands: the operands, this lane's place, the step count. */
typedef struct gemm_view {
    __global const float *A, *B;
    int lda, ldb, M, N, K, n0, row, t, steps;
} gemm_view;

/* Step s (buffer b = s % 2, a compile-time constant once inlined): a_now holds its split
 * A fragments, a_next receives step s + 1's from the raw registers x, which then load step
 * s + 2's (the pipeline of the header). */
static INLINE void run_step(const gemm_view *v, int s, int b, __local float *tiles,
                            __local float *a_tiles, float *x, uint *a_now, uint *a_next, float *acc,
                            float *sum) {
    const int first = s == 0 || (CHAIN > 0 && s % CHAIN == 0);
    if (first && s > 0) {
        wait_all(acc);
#pragma unroll
        for (int i = 0; i < BN / 2; i++) sum[i] += acc[i];
    }
    issue_step(acc, a_now, tile(tiles, 1, b), tile(tiles, 2, b), first, a_tiles);
    if (s + 1 >= v->steps) return;
    wait_previous(acc, a_now);
    split_a(x, a_next);
    if (s + 2 < v->steps) {
        load_a(v->A, v->lda, v->M, v->K, v->row, v->t, (s + 2) * BK, x);
        load_b(v->B, v->ldb, v->N, v->K, v->n0, (s + 2) * BK, tile(tiles, 0, b));
    } else {
        copy_commit(); /* an empty group: copy_wait still leaves the newest in flight */
    }
    copy_wait();
    barrier(CLK_LOCAL_MEM_FENCE);
    split_b(tile(tiles, 0, 1 - b), tile(tiles, 1, 1 - b), tile(tiles, 2, 1 - b));
    fence_tiles();
    barrier(CLK_LOCAL_MEM_FENCE);
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
gemm_wgmma_split(const int M, const int N, const int K, const float alpha, __global const float *A,
                 const ulong a_offset, const int lda, const ulong stride_a, __global const float *B,
                 const ulong b_offset, const int ldb, const ulong stride_b, const float beta,
                 __global float *C, const ulong c_offset, const int ldc, const ulong stride_c) {
    __local float tiles[TILES * TILE_B] __attribute__((aligned(1024))); /* tile() */
#if TC_EMULATE
    __local float a_tiles[2 * BM * BK]; /* emulated_step */
#else
    __local float *a_tiles = 0;
#endif
    const int tid = get_local_id(0), lane = tid % 32, w = tid / 32, g = lane / 4, t = lane % 4;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM;
    const ulong batch = get_global_id(2);
    A += a_offset + batch * stride_a;
    B += b_offset + batch * stride_b;
    C += c_offset + batch * stride_c;
    const gemm_view v = {A, B, lda, ldb, M, N, K, n0, m0 + 16 * w + g, t, (K + BK - 1) / BK};

    float acc[BN / 2], sum[BN / 2]; /* the accumulator layout of cl/gemm_wgmma.cl */
#pragma unroll
    for (int i = 0; i < BN / 2; i++) acc[i] = 0.0f, sum[i] = 0.0f;
    float x[FRAG];       /* raw A fragments, one step ahead of a */
    uint a[2][2 * FRAG]; /* split A fragments of two steps: [step % 2][hi | lo] */
    load_a(A, lda, M, K, v.row, t, 0, x);
    load_b(B, ldb, N, K, n0, 0, tile(tiles, 0, 0));
    copy_wait_all();
    barrier(CLK_LOCAL_MEM_FENCE);
    split_b(tile(tiles, 0, 0), tile(tiles, 1, 0), tile(tiles, 2, 0));
    split_a(x, a[0]);
    if (v.steps > 1) {
        load_a(A, lda, M, K, v.row, t, BK, x);
        load_b(B, ldb, N, K, n0, BK, tile(tiles, 0, 1));
    }
    fence_tiles();
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 0; s < v.steps; s += 2) {
        run_step(&v, s, 0, tiles, a_tiles, x, a[0], a[1], acc, sum);
        if (s + 1 < v.steps) run_step(&v, s + 1, 1, tiles, a_tiles, x, a[1], a[0], acc, sum);
    }
    wait_all(acc);

#pragma unroll
    for (int i = 0; i < BN / 2; i++) sum[i] += acc[i];
#pragma unroll
    for (int i = 0; i < BN / 2; i += 4) {
        const int m = v.row, n = n0 + 8 * (i / 4) + 2 * t;
        store_pair(C, ldc, M, N, m, n, sum[i], sum[i + 1], alpha, beta);
        store_pair(C, ldc, M, N, m + 8, n, sum[i + 2], sum[i + 3], alpha, beta);
    }
}
