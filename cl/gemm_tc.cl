/* gemm_tc.cl: row-major SGEMM on NVIDIA tensor cores through inline PTX
 * (docs/PERFORMANCE.md, "Tensor-core GEMM"; PTX ISA, "Warp-level matrix
 * multiply-accumulate instructions", mma.m16n8k8 with .tf32 operands).
 *
 *   C[M, N] = alpha * op(A) op(B) + beta * C      (beta = 0 never reads C)
 *
 * TF32 keeps 10 explicit mantissa bits. With SPLIT3 = 1 (the fp32-accurate
 * default) every operand x is split into x = hi + lo with hi the TF32 part of x
 * and lo = x - hi (split3 in cl/tensor_core.cl; the tensor cores read the TF32
 * part of lo), and each product is accumulated in fp32 as
 *   a b ~= a_lo b_hi + a_hi b_lo + a_hi b_hi       (3xTF32; a_lo b_lo dropped)
 * which is nearly as accurate as an fp32 dot product (error below 2^-19 per
 * term). The tensor cores' own fp32 accumulation does not round to nearest
 * (measured on the H200: a long chain of mma into one accumulator drifted to
 * 7e-6 relative at K = 4096, against 2e-7 emulated); with STEP_ACC each K step's
 * products go into a fresh accumulator that is then added with an ordinary
 * fp32 add, so the chain stays six mma long.
 * With SPLIT3 = 0 (TF32, PyTorch's allow_tf32) only a_hi b_hi is used.
 *
 * Work-group: a BM x BN tile of C, (BM/WM) x (BN/WN) warps, each warp a
 * WM x WN tile as (WM/16) x (WN/8) mma tiles of 16 x 8. K advances in steps of
 * BK (16, or 8 for the largest tile) through two local-memory buffers
 * (register-staged prefetch of the next step while the tensor cores work on
 * this one, one barrier per step).
 * Local memory keeps each operand's stored layout, so every staging store runs
 * along the contiguous dimension: As[m][k] for A [M, K] and Bs[n][k] for B
 * stored [N, K], rows padded to BK + 4 floats, and As[k][m] for A^T and Bs[k][n]
 * for B [K, N], rows padded to BM + 8 (BN + 8) floats. Either way the fragment
 * loads of a warp (lane = 4 g + t reads row g, column t) touch 32 different
 * banks: bank 20 g + t, or 8 t + g (BM and BN are multiples of 32).
 *
 * Fragments (PTX ISA, m16n8k8 .tf32; g = lane / 4, t = lane % 4):
 *   A 16x8 row: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
 *   B 8x8 col:  b0 (k = t, n = g), b1 (k = t+4, n = g)
 *   C 16x8:     c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
 *
 * Options: -D BM, BN, BK, WM, WN (tile sizes), TRANS_A, TRANS_B (op(X) = X^T,
 * X stored transposed), SPLIT3 (0 or 1), VEC_A, VEC_B (float4 loads), VEC_C
 * (float2 stores), STEP_ACC (per-step accumulators), PREFETCH (1: the next K
 * step is loaded while this one computes; 2: the one after next), LDMATRIX
 * (fragments of the [m][k] / [n][k] tiles through ldmatrix instead of scalar
 * local loads), ASYNC (1: the
 * operands go from global to local memory by cp.async in a three-stage
 * pipeline, one barrier per K step, no register staging; only for A [M, K]
 * and B stored [N, K] (TRANS_A 0, TRANS_B 1) with float4 chunks; TF32 then
 * rounds at the fragment loads), TC_EMULATE (1: no PTX, for tests on
 * other devices), CONV_KSIZE (the implicit-GEMM convolution conv2d_tc below:
 * op(B) is the im2col matrix of an NCHW image, read from the image itself).
 * Strided batches over dimension 2. Needs sm_80 or newer (mma .tf32,
 * cvt.rna.tf32.f32, cp.async).
 *
 * conv2d_tc (docs/VAE.md "Kernels"): y[o, p] = bias[o] + beta y[o, p] +
 *   sum_{k < C KK} w[o, k] col[k, p], with k = (c K + a) K + b, p = i Wo + j and
 *   col[k, p] = x[c, S i + a - pt, S j + b - pl] (zero outside the image),
 * the GEMM of cl/conv2d.cl's im2col path without its column matrix: each thread
 * gathers its elements of the B tile from x. One image per batch index. */

#ifndef BK
#define BK 16 /* 8 or 16 */
#endif
#ifndef ASYNC
#define ASYNC 0
#endif
#define STAGES 3 /* ASYNC: K steps in flight */
#if ASYNC && (TRANS_A || !TRANS_B || !VEC_A || !VEC_B)
#error "ASYNC needs A [M, K] and B stored [N, K] with float4 chunks"
#endif
#ifndef CONV_KSIZE
#define CONV_KSIZE 0 /* a GEMM */
#endif
#if CONV_KSIZE && (TRANS_A || TRANS_B || VEC_B || ASYNC)
#error "conv2d_tc reads w [O, C K K] and gathers B [C K K, pixels] element by element"
#endif
#define LDS (BK + 4) /* row g at bank offset g * LDS: distinct for BK = 8, 16 */
#define LDA_T (BM + 8) /* As[k][m] rows: k = t at bank offset 8 t */
#define LDB_T (BN + 8)
#define TILE_A (TRANS_A ? BK * LDA_T : BM * LDS)
#define TILE_B (TRANS_B ? BN * LDS : BK * LDB_T)
#define WARPS_M (BM / WM)
#define WARPS_N (BN / WN)
#define THREADS (32 * WARPS_M * WARPS_N)
#define MT (WM / 16) /* mma tiles per warp along M */
#define NT (WN / 8)  /* mma tiles per warp along N */
#define LOADS_A (BM * BK / THREADS)
#define LOADS_B (BN * BK / THREADS)

#if (BM * BK) % THREADS != 0 || (BN * BK) % THREADS != 0
#error "tile sizes must give every thread the same number of loads"
#endif
#if CONV_KSIZE && THREADS % BN != 0
#error "conv2d_tc: each thread gathers one pixel column of the B tile (THREADS a multiple of BN)"
#endif

#include "tensor_core.cl"
#include "gemm_common.cl"

/* Global loads run in chunks of VA (VB) consecutive stored elements: 4 with
 * VEC_A (VEC_B), which the host sets only when the offset, the leading
 * dimension and the contiguous extent are multiples of 4, so a chunk is
 * either wholly inside the matrix or wholly outside. */
#define VA (VEC_A ? 4 : 1)
#define VB (VEC_B ? 4 : 1)
#define CHUNKS_A (LOADS_A / VA)
#define CHUNKS_B (LOADS_B / VB)

/* The first element (m, k) of chunk c of the A tile. A [M, K] is read along
 * k, A^T (stored [K, M]) along m: consecutive threads, consecutive addresses. */
static inline void a_chunk(int c, int *m, int *k) {
#if TRANS_A
    *m = (c % (BM / VA)) * VA, *k = c / (BM / VA);
#else
    *k = (c % (BK / VA)) * VA, *m = c / (BK / VA);
#endif
}

/* The same for op(B)[k, n]: B [K, N] along n, B^T (stored [N, K]) along k. */
static inline void b_chunk(int c, int *n, int *k) {
#if TRANS_B
    *k = (c % (BK / VB)) * VB, *n = c / (BK / VB);
#else
    *n = (c % (BN / VB)) * VB, *k = c / (BN / VB);
#endif
}

/* Where op(B) comes from: a stored matrix, or (conv2d_tc) the image whose im2col it is. */
#if CONV_KSIZE
typedef struct b_source {
    __global const float *x; /* [C, H, W] */
    int H, W, Wo, stride, pad_top, pad_left;
} b_source;
#else
typedef struct b_source {
    __global const float *p;
    int ld;
} b_source;
#endif

#if CONV_KSIZE
/* This thread's elements of the B tile at K step k0, gathered from the image: with
 * THREADS a multiple of BN every chunk of the thread is the same pixel n0 + tid % BN
 * (b_chunk), at k = k0 + tid / BN + c THREADS / BN. */
static inline void gather_b(b_source B, int N, int K, int n0, int k0, int tid, float *rb) {
    const int p = n0 + tid % BN, i = p / B.Wo, j = p - i * B.Wo;
    const int top = i * B.stride - B.pad_top, left = j * B.stride - B.pad_left;
    #pragma unroll
    for (int c = 0; c < CHUNKS_B; c++) {
        const int k = k0 + tid / BN + c * (THREADS / BN);
        const int channel = k / (CONV_KSIZE * CONV_KSIZE), tap = k % (CONV_KSIZE * CONV_KSIZE);
        const int y = top + tap / CONV_KSIZE, x = left + tap % CONV_KSIZE;
        const int valid = p < N && k < K && y >= 0 && y < B.H && x >= 0 && x < B.W;
        rb[c] = valid ? B.x[(channel * B.H + y) * B.W + x] : 0.0f;
    }
}
#endif

/* The next K step of both operands into registers (zero outside). */
static inline void fetch(__global const float *A, int lda, b_source B, int M, int N, int K,
                         int m0, int n0, int k0, int tid, float *ra, float *rb) {
    #pragma unroll
    for (int c = 0; c < CHUNKS_A; c++) {
        int m, k;
        a_chunk(tid + c * THREADS, &m, &k);
        m += m0, k += k0;
        const int valid = m < M && k < K;
        __global const float *p = A + (TRANS_A ? k * lda + m : m * lda + k);
#if VEC_A
        const float4 v = valid ? *(__global const float4 *)p : (float4)(0.0f);
        ra[4 * c] = v.x, ra[4 * c + 1] = v.y, ra[4 * c + 2] = v.z, ra[4 * c + 3] = v.w;
#else
        ra[c] = valid ? *p : 0.0f;
#endif
    }
#if CONV_KSIZE
    gather_b(B, N, K, n0, k0, tid, rb);
#else
    #pragma unroll
    for (int c = 0; c < CHUNKS_B; c++) {
        int n, k;
        b_chunk(tid + c * THREADS, &n, &k);
        n += n0, k += k0;
        const int valid = n < N && k < K;
        __global const float *p = B.p + (TRANS_B ? n * B.ld + k : k * B.ld + n);
#if VEC_B
        const float4 v = valid ? *(__global const float4 *)p : (float4)(0.0f);
        rb[4 * c] = v.x, rb[4 * c + 1] = v.y, rb[4 * c + 2] = v.z, rb[4 * c + 3] = v.w;
#else
        rb[c] = valid ? *p : 0.0f;
#endif
    }
#endif
}

/* Where element (m, k) of op(A) and (n, k) of op(B) sit in their local tiles. */
static inline int a_index(int m, int k) { return TRANS_A ? k * LDA_T + m : m * LDS + k; }
static inline int b_index(int n, int k) { return TRANS_B ? n * LDS + k : k * LDB_T + n; }

/* TF32 mode rounds once here; 3xTF32 splits after the fragment loads. */
static inline float stored(float x) {
#if SPLIT3
    return x;
#else
    return as_float(to_tf32(x));
#endif
}

static inline float4 stored4(float4 x) {
    return (float4)(stored(x.x), stored(x.y), stored(x.z), stored(x.w));
}

/* Registers -> As, Bs. A chunk runs along the contiguous dimension of both the stored
 * matrix and the local tile: one float4 store. */
static inline void stage(__local float *As, __local float *Bs, int tid, const float *ra,
                         const float *rb) {
    #pragma unroll
    for (int c = 0; c < CHUNKS_A; c++) {
        int m, k;
        a_chunk(tid + c * THREADS, &m, &k);
#if VEC_A
        *(__local float4 *)(As + a_index(m, k)) = stored4(vload4(c, ra));
#else
        As[a_index(m, k)] = stored(ra[c]);
#endif
    }
    #pragma unroll
    for (int c = 0; c < CHUNKS_B; c++) {
        int n, k;
        b_chunk(tid + c * THREADS, &n, &k);
#if VEC_B
        *(__local float4 *)(Bs + b_index(n, k)) = stored4(vload4(c, rb));
#else
        Bs[b_index(n, k)] = stored(rb[c]);
#endif
    }
}

/* hi and lo parts of one fragment element */
static inline void split(float x, uint *hi, uint *lo) {
#if SPLIT3
    split3(x, hi, lo);
#elif ASYNC
    *hi = to_tf32(x), *lo = 0u; /* cp.async stores the raw value */
#else
    *hi = as_uint(x), *lo = 0u; /* stage() rounded it */
#endif
}

/* The A fragment (16x8, rows row0.., columns kk..kk+7) that `lane` holds. */
static inline void a_fragment(__local const float *As, int row0, int kk, int lane, float *x) {
    const int m = row0 + lane / 4, k = kk + lane % 4;
    x[0] = As[a_index(m, k)], x[1] = As[a_index(m + 8, k)];
    x[2] = As[a_index(m, k + 4)], x[3] = As[a_index(m + 8, k + 4)];
}

/* The B fragment (8x8, k = kk..kk+7, columns col0..col0+7) that `lane` holds. */
static inline void b_fragment(__local const float *Bs, int col0, int kk, int lane, float *x) {
    const int n = col0 + lane / 4, k = kk + lane % 4;
    x[0] = Bs[b_index(n, k)], x[1] = Bs[b_index(n, k + 4)];
}

#if !TC_EMULATE
#if LDMATRIX
/* Four 8x4 tf32 matrices (8x8 of b16) from local memory, one row address per
 * lane (lanes 8i..8i+7: rows of matrix i, 16-byte aligned): lane L receives
 * element (L / 4, L % 4) of each, which is the mma fragment layout: a 16x8 A
 * fragment is one call (matrices: rows 0-7 / 8-15 x k 0-3 / 4-7), two 8x8 B
 * fragments are another (n 0-7 / 8-15 x k 0-3 / 4-7). */
static inline void ldmatrix_x4(__local const float *row, uint *x) {
    const uint address = (uint)(size_t)row; /* the .shared window offset */
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];"
                 : "=r"(x[0]), "=r"(x[1]), "=r"(x[2]), "=r"(x[3])
                 : "r"(address)
                 : "memory");
}
#endif

/* ldmatrix needs rows of 8 k; the [k][m] and [k][n] tiles load fragments by scalar reads. */
#define LDMATRIX_A (LDMATRIX && !TRANS_A)
#define LDMATRIX_B (LDMATRIX && TRANS_B)

/* This lane's A fragments of the warp's MT 16x8 tiles at columns kk..kk+7, split. */
static inline void a_fragments(__local const float *As, int kk, int wm, int lane, uint a_hi[MT][4],
                               uint a_lo[MT][4]) {
    #pragma unroll
    for (int i = 0; i < MT; i++) {
#if LDMATRIX_A
        uint u[4];
        ldmatrix_x4(As + (wm * WM + i * 16 + lane % 8 + 8 * ((lane / 8) & 1)) * LDS + kk +
                        4 * (lane / 16),
                    u);
        const float x[4] = {as_float(u[0]), as_float(u[1]), as_float(u[2]), as_float(u[3])};
#else
        float x[4];
        a_fragment(As, wm * WM + i * 16, kk, lane, x);
#endif
        #pragma unroll
        for (int r = 0; r < 4; r++) split(x[r], &a_hi[i][r], &a_lo[i][r]);
    }
}

/* This lane's B fragments of the warp's NT 8x8 tiles at k = kk..kk+7, split. */
static inline void b_fragments(__local const float *Bs, int kk, int wn, int lane, uint b_hi[NT][2],
                               uint b_lo[NT][2]) {
#if LDMATRIX_B
    #pragma unroll
    for (int j = 0; j < NT; j += 2) {
        uint x[4];
        ldmatrix_x4(Bs + (wn * WN + j * 8 + 8 * (lane / 16) + lane % 8) * LDS + kk +
                        4 * ((lane / 8) & 1),
                    x);
        #pragma unroll
        for (int r = 0; r < 4; r++)
            split(as_float(x[r]), &b_hi[j + r / 2][r % 2], &b_lo[j + r / 2][r % 2]);
    }
#else
    #pragma unroll
    for (int j = 0; j < NT; j++) {
        float x[2];
        b_fragment(Bs, wn * WN + j * 8, kk, lane, x);
        #pragma unroll
        for (int r = 0; r < 2; r++) split(x[r], &b_hi[j][r], &b_lo[j][r]);
    }
#endif
}

/* One k8 slice of the warp tile: acc[MT][NT][4] += As Bs over columns kk..kk+7. */
static inline void warp_step(__local const float *As, __local const float *Bs, int kk, int wm,
                             int wn, int lane, float acc[MT][NT][4]) {
    uint a_hi[MT][4], a_lo[MT][4], b_hi[NT][2], b_lo[NT][2];
    a_fragments(As, kk, wm, lane, a_hi, a_lo);
    b_fragments(Bs, kk, wn, lane, b_hi, b_lo);
    #pragma unroll
    for (int i = 0; i < MT; i++)
        #pragma unroll
        for (int j = 0; j < NT; j++) {
#if SPLIT3
            mma_tf32(acc[i][j], a_lo[i], b_hi[j]);
            mma_tf32(acc[i][j], a_hi[i], b_lo[j]);
#endif
            mma_tf32(acc[i][j], a_hi[i], b_hi[j]);
        }
}
#else
/* Operand k of the 16x8 A tile at row `row` / of the 8x8 B tile at column
 * `col`, fetched from the lane that holds it in the fragment layout, split. */
static inline void a_element(__local const float *As, int row0, int kk, int row, int k, uint *hi,
                             uint *lo) {
    float x[4];
    a_fragment(As, row0, kk, (row % 8) * 4 + k % 4, x);
    split(x[row / 8 + 2 * (k / 4)], hi, lo);
}
static inline void b_element(__local const float *Bs, int col0, int kk, int col, int k, uint *hi,
                             uint *lo) {
    float x[2];
    b_fragment(Bs, col0, kk, col * 4 + k % 4, x);
    split(x[k / 4], hi, lo);
}

/* What the mma instructions of warp_step compute, element by element: the
 * C layout picks this lane's four outputs of each tile; the products run in
 * the same order (lo hi, hi lo, hi hi). */
static inline void warp_step(__local const float *As, __local const float *Bs, int kk, int wm,
                             int wn, int lane, float acc[MT][NT][4]) {
    const int g = lane / 4, t = lane % 4;
    for (int i = 0; i < MT; i++)
        for (int j = 0; j < NT; j++)
            for (int r = 0; r < 4; r++) {
                const int row = g + 8 * (r / 2), col = 2 * t + r % 2;
                float terms[3] = {0.0f, 0.0f, 0.0f}; /* lo hi, hi lo, hi hi */
                for (int k = 0; k < 8; k++) {
                    uint ah, al, bh, bl;
                    a_element(As, wm * WM + i * 16, kk, row, k, &ah, &al);
                    b_element(Bs, wn * WN + j * 8, kk, col, k, &bh, &bl);
                    terms[0] += tf32_part(al) * tf32_part(bh);
                    terms[1] += tf32_part(ah) * tf32_part(bl);
                    terms[2] += tf32_part(ah) * tf32_part(bh);
                }
#if SPLIT3
                acc[i][j][r] += terms[0];
                acc[i][j][r] += terms[1];
#endif
                acc[i][j][r] += terms[2];
            }
}
#endif

static inline void zero_tile(float acc[MT][NT][4]) {
    #pragma unroll
    for (int i = 0; i < MT; i++)
        #pragma unroll
        for (int j = 0; j < NT; j++)
            #pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] = 0.0f;
}

static inline void add_tile(float acc[MT][NT][4], float part[MT][NT][4]) {
    #pragma unroll
    for (int i = 0; i < MT; i++)
        #pragma unroll
        for (int j = 0; j < NT; j++)
            #pragma unroll
            for (int r = 0; r < 4; r++) acc[i][j][r] += part[i][j][r];
}

/* acc += the products of one K step from (As, Bs). */
static inline void compute_step(__local const float *As, __local const float *Bs, int wm, int wn,
                                int lane, float acc[MT][NT][4]) {
#if STEP_ACC
    float part[MT][NT][4]; /* this K step's products, added to acc with IEEE rounding */
    zero_tile(part);
    #pragma unroll
    for (int kk = 0; kk < BK; kk += 8) warp_step(As, Bs, kk, wm, wn, lane, part);
    add_tile(acc, part);
#else
    #pragma unroll
    for (int kk = 0; kk < BK; kk += 8) warp_step(As, Bs, kk, wm, wn, lane, acc);
#endif
}

/* K step s of `steps`: fetches step s + ahead into (free_a, free_b) (the
 * registers this step's operands came from, already staged), computes from
 * (As, Bs), stages step s + 1 from (next_a, next_b) into (As_next, Bs_next)
 * and waits for the work-group. ahead = 1: one register set (free = next). */
static inline void k_step(__global const float *A, int lda, b_source B, int M, int N, int K,
                          int m0, int n0, int tid, int wm, int wn, int lane, int s, int steps,
                          int ahead, __local const float *As, __local const float *Bs,
                          __local float *As_next, __local float *Bs_next, float *free_a,
                          float *free_b, const float *next_a, const float *next_b,
                          float acc[MT][NT][4]) {
    if (s + ahead < steps)
        fetch(A, lda, B, M, N, K, m0, n0, (s + ahead) * BK, tid, free_a, free_b);
    compute_step(As, Bs, wm, wn, lane, acc);
    if (s + 1 < steps) stage(As_next, Bs_next, tid, next_a, next_b);
    barrier(CLK_LOCAL_MEM_FENCE);
}

#if ASYNC
/* K step k0 of both operands -> (As, Bs) by cp.async (one commit group). */
static inline void issue(__global const float *A, int lda, b_source B, int M, int N, int K,
                         int m0, int n0, int k0, int tid, __local float *As, __local float *Bs) {
    #pragma unroll
    for (int c = 0; c < CHUNKS_A; c++) {
        int m, k;
        a_chunk(tid + c * THREADS, &m, &k);
        const int valid = m0 + m < M && k0 + k < K;
        copy16(As + a_index(m, k), valid ? A + (long)(m0 + m) * lda + k0 + k : A, valid);
    }
    #pragma unroll
    for (int c = 0; c < CHUNKS_B; c++) {
        int n, k;
        b_chunk(tid + c * THREADS, &n, &k);
        const int valid = n0 + n < N && k0 + k < K;
        copy16(Bs + b_index(n, k), valid ? B.p + (long)(n0 + n) * B.ld + k0 + k : B.p, valid);
    }
    copy_commit();
}
#endif

/* [buffer][tile] (a_index, b_index) */
#if ASYNC
#define BUFFERS STAGES
#else
#define BUFFERS 2
#endif

/* acc = op(A) op(B) over all of K for the work-group's tile at (m0, n0). */
static inline void multiply(__global const float *A, int lda, b_source B, int M, int N, int K,
                            int m0, int n0, int tid, int wm, int wn, int lane,
                            __local float (*As)[TILE_A], __local float (*Bs)[TILE_B],
                            float acc[MT][NT][4]) {
    zero_tile(acc);
    const int steps = (K + BK - 1) / BK;
#if ASYNC
    /* STAGES buffers: wait for step s, one barrier (step s - 1's buffer is then free), issue
     * step s + STAGES - 1 into it, compute step s. */
    for (int s = 0; s < STAGES - 1; s++)
        if (s < steps) issue(A, lda, B, M, N, K, m0, n0, s * BK, tid, As[s], Bs[s]);
        else copy_commit(); /* empty groups keep the count uniform */
    for (int s = 0; s < steps; s++) {
        copy_wait();
        barrier(CLK_LOCAL_MEM_FENCE);
        const int next = s + STAGES - 1;
        if (next < steps)
            issue(A, lda, B, M, N, K, m0, n0, next * BK, tid, As[next % STAGES],
                  Bs[next % STAGES]);
        else copy_commit();
        compute_step(As[s % STAGES], Bs[s % STAGES], wm, wn, lane, acc);
    }
#elif PREFETCH == 2
    /* two register sets: step s + 2 is fetched while step s computes */
    float ra0[LOADS_A], rb0[LOADS_B], ra1[LOADS_A], rb1[LOADS_B];
    fetch(A, lda, B, M, N, K, m0, n0, 0, tid, ra0, rb0);
    stage(As[0], Bs[0], tid, ra0, rb0);
    if (steps > 1) fetch(A, lda, B, M, N, K, m0, n0, BK, tid, ra1, rb1);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 0; s < steps; s += 2) {
        k_step(A, lda, B, M, N, K, m0, n0, tid, wm, wn, lane, s, steps, 2, As[0], Bs[0], As[1],
               Bs[1], ra0, rb0, ra1, rb1, acc);
        if (s + 1 < steps)
            k_step(A, lda, B, M, N, K, m0, n0, tid, wm, wn, lane, s + 1, steps, 2, As[1], Bs[1],
                   As[0], Bs[0], ra1, rb1, ra0, rb0, acc);
    }
#else
    float ra[LOADS_A], rb[LOADS_B];
    fetch(A, lda, B, M, N, K, m0, n0, 0, tid, ra, rb);
    stage(As[0], Bs[0], tid, ra, rb);
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int s = 0; s < steps; s++)
        k_step(A, lda, B, M, N, K, m0, n0, tid, wm, wn, lane, s, steps, 1, As[s & 1], Bs[s & 1],
               As[(s + 1) & 1], Bs[(s + 1) & 1], ra, rb, ra, rb, acc);
#endif
}

/* C[m, n] = alpha (acc + bias[m]) + beta C[m, n] for this lane's elements of the warp's tile
 * (bias may be 0: none). */
static inline void store_tile(__global float *C, int ldc, int M, int N, int m0, int n0, int wm,
                              int wn, int lane, float acc[MT][NT][4], float alpha, float beta,
                              __global const float *bias) {
    const int g = lane / 4, t = lane % 4;
    #pragma unroll
    for (int i = 0; i < MT; i++) {
        const int m = m0 + wm * WM + i * 16 + g;
        const float b0 = bias && m < M ? bias[m] : 0.0f;
        const float b8 = bias && m + 8 < M ? bias[m + 8] : 0.0f;
        #pragma unroll
        for (int j = 0; j < NT; j++) {
            const int n = n0 + wn * WN + j * 8 + 2 * t;
            store_pair(C, ldc, M, N, m, n, bias ? acc[i][j][0] + b0 : acc[i][j][0],
                       bias ? acc[i][j][1] + b0 : acc[i][j][1], alpha, beta);
            store_pair(C, ldc, M, N, m + 8, n, bias ? acc[i][j][2] + b8 : acc[i][j][2],
                       bias ? acc[i][j][3] + b8 : acc[i][j][3], alpha, beta);
        }
    }
}

#if !CONV_KSIZE
__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
gemm_tc(const int M, const int N, const int K, const float alpha, __global const float *A,
        const ulong a_offset, const int lda, const ulong stride_a, __global const float *B,
        const ulong b_offset, const int ldb, const ulong stride_b, const float beta,
        __global float *C, const ulong c_offset, const int ldc, const ulong stride_c) {
    /* 16-byte aligned for the float4 stores */
    __local float As[BUFFERS][TILE_A] __attribute__((aligned(16)));
    __local float Bs[BUFFERS][TILE_B] __attribute__((aligned(16)));
    const int tid = get_local_id(0), lane = tid % 32, warp = tid / 32;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM;
    const ulong batch = get_global_id(2);
    A += a_offset + batch * stride_a;
    C += c_offset + batch * stride_c;
    const b_source source = {B + b_offset + batch * stride_b, ldb};

    float acc[MT][NT][4];
    multiply(A, lda, source, M, N, K, m0, n0, tid, wm, wn, lane, As, Bs, acc);
    store_tile(C, ldc, M, N, m0, n0, wm, wn, lane, acc, alpha, beta, 0);
}
#else
/* One image per batch index: w [O, C KK] (M = O, K = C KK), x [C, H, W] at x_offset +
 * image * stride_x, y [O, Ho Wo] (N = Ho Wo) at y_offset + image * stride_y; beta = 1 adds
 * onto y (the fused residual), beta = 0 never reads it; bias [O] unless has_bias is 0. */
__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
conv2d_tc(const int M, const int N, const int K, __global const float *w, const ulong w_offset,
          __global const float *x, const ulong x_offset, const ulong stride_x, const int H,
          const int W, const int Wo, const int stride, const int pad_top, const int pad_left,
          __global const float *bias, const ulong bias_offset, const int has_bias,
          const float beta, __global float *y, const ulong y_offset, const ulong stride_y) {
    __local float As[BUFFERS][TILE_A] __attribute__((aligned(16)));
    __local float Bs[BUFFERS][TILE_B] __attribute__((aligned(16)));
    const int tid = get_local_id(0), lane = tid % 32, warp = tid / 32;
    const int wm = warp / WARPS_N, wn = warp % WARPS_N;
    const int n0 = get_group_id(0) * BN, m0 = get_group_id(1) * BM;
    const ulong image = get_global_id(2);
    y += y_offset + image * stride_y;
    const b_source source = {x + x_offset + image * stride_x, H, W, Wo, stride, pad_top, pad_left};

    float acc[MT][NT][4];
    multiply(w + w_offset, K, source, M, N, K, m0, n0, tid, wm, wn, lane, As, Bs, acc);
    __global const float *bias_or_none = has_bias ? bias + bias_offset : 0;
    store_tile(y, N, M, N, m0, n0, wm, wn, lane, acc, 1.0f, beta, bias_or_none);
}
#endif
