/* attention_tc.cl: the attention of cl/attention.cl on NVIDIA tensor cores
 * through inline PTX (docs/PERFORMANCE.md "Attention on tensor cores"; the
 * mma.m16n8k8 .tf32 fragments and the 3xTF32 split of cl/gemm_tc.cl).
 *
 * Layout and math as cl/attention.cl: qkv [N, T, 3, H, DH], out [N, T, H, DH],
 * logsumexp [N, H, T]; per (n, h), with s = scale,
 *   S_ij = s q_i.k_j,  L_i = log sum_j exp(S_ij),  out_i = sum_j exp(S_ij - L_i) v_j
 * Backward (FlashAttention-2's two passes, no atomics; P recomputed from L,
 * delta_i = dout_i.out_i from cl/attention.cl's attention_delta):
 *   dP_ij = dout_i.v_j,  dS_ij = P_ij (dP_ij - delta_i),
 *   dq_i = s sum_j dS_ij k_j,  dk_j = s sum_i dS_ij q_i,  dv_j = sum_i P_ij dout_i
 *
 * Work-group: 4 warps of 16 rows (64 queries, or 64 keys for dk/dv); blocks of
 * BKV keys (queries) stream through two local buffers, the next block stored
 * into one while the other is used (one barrier per block fewer than a single
 * buffer; cp.async here broke NVIDIA's compiler, driver 580). Everything
 * per row stays in registers in the mma C layout (FlashAttention-2):
 *   forward   S = (s log2 e) Q K^T;  online softmax in base 2 on the C
 *             fragments (row max and sum over the 4 lanes of a row by warp
 *             shuffles; the sum is kept per lane and reduced once at the end);
 *             O = alpha O + P V with the P fragments used as A fragments.
 *   dq        S = s Q K^T, dP = dout V^T, dS in registers, dq += dS K.
 *   dk, dv    S^T = s K Q^T, dP^T = V dout^T, P^T and dS^T in registers,
 *             dv += P^T dout, dk += dS^T Q.
 * A C fragment is an A fragment under a permutation of the k index: lane
 * (g, t) holds C (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1) and an A fragment
 * wants (g, t), (g+8, t), (g, t+4), (g+8, t+4); reading logical k = t as key
 * 2t and k = t + 4 as key 2t+1 of each 8-key group (and loading the B rows in
 * the same order) makes them the same registers, no exchange needed.
 *
 * With SPLIT3 (the fp32-accurate default) every product is 3xTF32
 * (a_lo b_hi + a_hi b_lo + a_hi b_hi, each k8 step summed in a fresh
 * accumulator); with SPLIT3 = 0, TF32. Local rows have LD = DH + 4 floats
 * (4 mod 8): the B fragment loads, (row g, column t) and (row 2t, column g),
 * then hit 32 distinct banks.
 *
 * Fragments (PTX ISA, m16n8k8 .tf32; g = lane / 4, t = lane % 4):
 *   A 16x8 row: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
 *   B 8x8 col:  b0 (k = t, n = g), b1 (k = t+4, n = g)
 *   C 16x8:     c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
 * TC_EMULATE = 1 runs the same code on devices without tensor cores: each mma
 * and each shuffle exchanges the lanes' registers through local memory.
 * Options: -D DH (a multiple of 8), BKV (16 or 32), SPLIT3, TC_EMULATE. */

#define WARP_ROWS 16
#define THREADS   128
#define LD        (DH + 4)
#define KT        (DH / 8)  /* k8 steps over the head dimension */
#define NS        (BKV / 8) /* 8-column tiles of S */
#define NO        (DH / 8)  /* 8-column tiles of an accumulator */
#define XCHG      12        /* emulation: uints a lane exchanges per mma */

#include "tensor_core.cl"

#ifndef SHUFFLE
#define SHUFFLE 1 /* 0: row reductions through local memory (as emulated) */
#endif
#define LOCAL_QUADS (TC_EMULATE || !SHUFFLE)

#if TC_EMULATE
#define XCHG_DECLARE __local uint xchg_all[4][32 * XCHG];
#elif !SHUFFLE
#define XCHG_DECLARE __local uint xchg_all[4][32];
#else
#define XCHG_DECLARE __local uint xchg_all[4][1]; /* a valid pointer the mma path ignores */
#endif
#define XCHG_WARP xchg_all[get_local_id(0) / 32]

static inline void split(float x, uint *hi, uint *lo) {
#if SPLIT3
    split3(x, hi, lo);
#else
    *hi = to_tf32(x), *lo = 0u;
#endif
}

#if TC_EMULATE
/* The warp's mma of one k8 step, each lane's C elements from the others' fragments. */
static inline void products(float *d, const uint *a_hi, const uint *a_lo, const uint *b_hi,
                            const uint *b_lo, __local uint *xchg, int lane) {
    __local uint *own = xchg + lane * XCHG;
    for (int i = 0; i < 4; i++) own[i] = a_hi[i], own[4 + i] = a_lo[i];
    for (int i = 0; i < 2; i++) own[8 + i] = b_hi[i], own[10 + i] = b_lo[i];
    barrier(CLK_LOCAL_MEM_FENCE);
    const int g = lane / 4, t = lane % 4;
    for (int r = 0; r < 4; r++) {
        const int row = g + 8 * (r / 2), col = 2 * t + r % 2;
        float terms[3] = {0.0f, 0.0f, 0.0f}; /* lo hi, hi lo, hi hi */
        for (int k = 0; k < 8; k++) {
            __local const uint *a = xchg + ((row % 8) * 4 + k % 4) * XCHG + row / 8 + 2 * (k / 4);
            __local const uint *b = xchg + (col * 4 + k % 4) * XCHG + 8 + k / 4;
            terms[0] += tf32_part(a[4]) * tf32_part(b[0]);
            terms[1] += tf32_part(a[0]) * tf32_part(b[2]);
            terms[2] += tf32_part(a[0]) * tf32_part(b[0]);
        }
        d[r] += SPLIT3 ? terms[0] + terms[1] + terms[2] : terms[2];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}
#else
static inline void products(float *d, const uint *a_hi, const uint *a_lo, const uint *b_hi,
                            const uint *b_lo, __local uint *xchg, int lane) {
    (void)xchg, (void)lane;
#if SPLIT3
    mma_tf32(d, a_lo, b_hi);
    mma_tf32(d, a_hi, b_lo);
#else
    (void)a_lo, (void)b_lo;
#endif
    mma_tf32(d, a_hi, b_hi);
}
#endif

#if LOCAL_QUADS
/* (x0 op x1) op (x2 op x3) over the 4 lanes of this lane's row, as the shuffles pair them. */
static inline float quad_reduce(float x, int is_max, __local uint *xchg, int lane) {
    __local float *v = (__local float *)xchg;
    v[lane] = x;
    barrier(CLK_LOCAL_MEM_FENCE);
    const int q = lane & ~3;
    const float r = is_max ? fmax(fmax(v[q], v[q + 1]), fmax(v[q + 2], v[q + 3]))
                           : (v[q] + v[q + 1]) + (v[q + 2] + v[q + 3]);
    barrier(CLK_LOCAL_MEM_FENCE);
    return r;
}
#else
static inline float quad_reduce(float x, int is_max, __local uint *xchg, int lane) {
    (void)xchg, (void)lane;
    for (int mask = 1; mask <= 2; mask <<= 1) {
        const float y = shuffle_xor(x, mask);
        x = is_max ? fmax(x, y) : x + y;
    }
    return x;
}
#endif

/* c[NS][4] = A B^T over the head dimension: A (16 x DH) this warp's rows as raw A fragments
 * a[KT][4] (rows g, g + 8; columns 8 kk + t, 8 kk + t + 4), B (BKV x DH) a local block. */
static inline void scores(const float a[KT][4], __local const float *B, int lane, float c[NS][4],
                          __local uint *xchg) {
    const int g = lane / 4, t = lane % 4;
    for (int j = 0; j < NS; j++)
        for (int r = 0; r < 4; r++) c[j][r] = 0.0f;
    for (int kk = 0; kk < KT; kk++) {
        uint a_hi[4], a_lo[4];
        for (int r = 0; r < 4; r++) split(a[kk][r], &a_hi[r], &a_lo[r]);
        for (int j = 0; j < NS; j++) {
            __local const float *b = B + (j * 8 + g) * LD + kk * 8 + t;
            uint b_hi[2], b_lo[2];
            split(b[0], &b_hi[0], &b_lo[0]);
            split(b[4], &b_hi[1], &b_lo[1]);
            float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            products(d, a_hi, a_lo, b_hi, b_lo, xchg, lane);
            for (int r = 0; r < 4; r++) c[j][r] += d[r];
        }
    }
}

/* o[NO][4] += P B: P (16 x BKV) in the C layout, B (BKV x DH) a local block whose rows are
 * P's columns, read in the permuted k order of the header. */
static inline void accumulate(const float p[NS][4], __local const float *B, int lane,
                              float o[NO][4], __local uint *xchg) {
    const int g = lane / 4, t = lane % 4;
    for (int kk = 0; kk < NS; kk++) {
        const float x[4] = {p[kk][0], p[kk][2], p[kk][1], p[kk][3]};
        uint a_hi[4], a_lo[4];
        for (int r = 0; r < 4; r++) split(x[r], &a_hi[r], &a_lo[r]);
        for (int j = 0; j < NO; j++) {
            __local const float *b = B + (kk * 8 + 2 * t) * LD + j * 8 + g;
            uint b_hi[2], b_lo[2];
            split(b[0], &b_hi[0], &b_lo[0]);
            split(b[LD], &b_hi[1], &b_lo[1]);
            float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            products(d, a_hi, a_lo, b_hi, b_lo, xchg, lane);
            for (int r = 0; r < 4; r++) o[j][r] += d[r];
        }
    }
}

/* This warp's rows row0 + g and row0 + g + 8 of a slice (row stride), times m (zero past
 * T), as raw A fragments. */
static inline void load_fragments(__global const float *base, int stride, int row0, int T, float m,
                                  int lane, float a[KT][4]) {
    const int g = lane / 4, t = lane % 4, r0 = row0 + g, r8 = row0 + g + 8;
    __global const float *x0 = base + (size_t)(r0 < T ? r0 : 0) * stride;
    __global const float *x8 = base + (size_t)(r8 < T ? r8 : 0) * stride;
    const float m0 = r0 < T ? m : 0.0f, m8 = r8 < T ? m : 0.0f;
    for (int kk = 0; kk < KT; kk++) {
        a[kk][0] = x0[kk * 8 + t] * m0, a[kk][1] = x8[kk * 8 + t] * m8;
        a[kk][2] = x0[kk * 8 + t + 4] * m0, a[kk][3] = x8[kk * 8 + t + 4] * m8;
    }
}

/* Rows first .. first + BKV - 1 of a slice (row stride) -> local [BKV][LD], zeros past T. */
static inline void stage_block(__global const float *base, int stride, int first, int T,
                               __local float *tile) {
    enum { CHUNKS = BKV * (DH / 4) };
    for (int e = get_local_id(0); e < CHUNKS; e += THREADS) {
        const int row = e / (DH / 4), c = 4 * (e % (DH / 4)), valid = first + row < T;
        __global const float *from = base + (size_t)(valid ? first + row : 0) * stride + c;
        vstore4(valid ? vload4(0, from) : (float4)(0.0f), 0, tile + row * LD + c);
    }
}

/* Block `block` of two slices (row strides sa, sb) -> local A, B: the K/V (or Q/dout) pair
 * every kernel streams. */
static inline void stage_pair(__global const float *a, int sa, __global const float *b, int sb,
                              int block, int T, __local float *A, __local float *B) {
    stage_block(a, sa, block * BKV, T, A);
    stage_block(b, sb, block * BKV, T, B);
}

/* The rows of block `block` that lie before T. */
static inline int block_rows(int block, int T) {
    return T - block * BKV < BKV ? T - block * BKV : BKV;
}

/* Rows row0 + g and row0 + g + 8 of this warp's 16: o * multiplier -> base rows (stride). */
static inline void store_rows(const float o[NO][4], float m0, float m8, __global float *base,
                              int stride, int row0, int T, int lane) {
    const int g = lane / 4, t = lane % 4;
    for (int part = 0; part < 2; part++) {
        const int token = row0 + g + 8 * part;
        if (token >= T) continue;
        const float m = part ? m8 : m0;
        __global float *row = base + (size_t)token * stride;
        for (int j = 0; j < NO; j++)
            vstore2((float2)(o[j][2 * part] * m, o[j][2 * part + 1] * m), 0, row + j * 8 + 2 * t);
    }
}

static inline void zero_acc(float o[NO][4]) {
    for (int j = 0; j < NO; j++)
        for (int r = 0; r < 4; r++) o[j][r] = 0.0f;
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
attention_tc_forward(__global const float *qkv, /* [N, T, 3, H, DH] */
                     __global float *out,       /* [N, T, H, DH] */
                     __global float *logsumexp, /* [N, H, T] */
                     const int T, const int H, const float scale) {
    __local float Ks[2][BKV * LD], Vs[2][BKV * LD];
    XCHG_DECLARE
    __local uint *xchg = XCHG_WARP;
    const int lane = get_local_id(0) % 32, g = lane / 4, t = lane % 4;
    const int h = get_global_id(1), n = get_global_id(2);
    const int row0 = get_group_id(0) * 4 * WARP_ROWS + get_local_id(0) / 32 * WARP_ROWS;
    const int stride = 3 * H * DH, blocks = (T + BKV - 1) / BKV;
    __global const float *q = qkv + (size_t)n * T * stride + h * DH;
    __global const float *k = q + H * DH, *v = q + 2 * H * DH;

    float qf[KT][4]; /* q s log2(e): the softmax in base 2 */
    load_fragments(q, stride, row0, T, scale * 1.4426950408889634f, lane, qf);
    float o[NO][4];
    zero_acc(o);
    float m0 = -INFINITY, m8 = -INFINITY, l0 = 0.0f, l8 = 0.0f; /* l: this lane's columns */
    stage_pair(k, stride, v, stride, 0, T, Ks[0], Vs[0]);
    for (int b = 0; b < blocks; b++) {
        if (b + 1 < blocks)
            stage_pair(k, stride, v, stride, b + 1, T, Ks[(b + 1) % 2], Vs[(b + 1) % 2]);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int count = block_rows(b, T);
        float s[NS][4]; /* [16 rows][BKV keys], C layout */
        scores(qf, Ks[b % 2], lane, s, xchg);
        float x0 = -INFINITY, x8 = -INFINITY;
        for (int j = 0; j < NS; j++)
            for (int r = 0; r < 4; r++) {
                if (j * 8 + 2 * t + r % 2 >= count) s[j][r] = -INFINITY;
                if (r < 2) x0 = fmax(x0, s[j][r]);
                else x8 = fmax(x8, s[j][r]);
            }
        x0 = fmax(m0, quad_reduce(x0, 1, xchg, lane));
        x8 = fmax(m8, quad_reduce(x8, 1, xchg, lane));
        const float alpha0 = exp2(m0 - x0), alpha8 = exp2(m8 - x8);
        m0 = x0, m8 = x8;
        float sum0 = 0.0f, sum8 = 0.0f;
        for (int j = 0; j < NS; j++)
            for (int r = 0; r < 4; r++) {
                s[j][r] = exp2(s[j][r] - (r < 2 ? m0 : m8));
                if (r < 2) sum0 += s[j][r];
                else sum8 += s[j][r];
            }
        l0 = l0 * alpha0 + sum0, l8 = l8 * alpha8 + sum8;
        for (int j = 0; j < NO; j++)
            o[j][0] *= alpha0, o[j][1] *= alpha0, o[j][2] *= alpha8, o[j][3] *= alpha8;
        accumulate(s, Vs[b % 2], lane, o, xchg);
        barrier(CLK_LOCAL_MEM_FENCE); /* this buffer is free for block b + 2 */
    }
    l0 = quad_reduce(l0, 0, xchg, lane), l8 = quad_reduce(l8, 0, xchg, lane);
    store_rows(o, 1.0f / l0, 1.0f / l8, out + (size_t)n * T * H * DH + h * DH, H * DH, row0, T,
               lane);
    for (int part = 0; part < 2; part++) {
        const int token = row0 + g + 8 * part;
        if (t == 0 && token < T)
            logsumexp[((size_t)n * H + h) * T + token] =
                0.6931471805599453f * (part ? m8 + log2(l8) : m0 + log2(l0));
    }
}

/* ---------------------------------------------------------------- backward */

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
attention_tc_backward_query(__global const float *qkv,       /* [N, T, 3, H, DH] */
                            __global const float *dout,      /* [N, T, H, DH] */
                            __global const float *logsumexp, /* [N, H, T] */
                            __global const float *delta,     /* [N, H, T] */
                            __global float *dqkv,            /* [N, T, 3, H, DH] */
                            const int T, const int H, const float scale) {
    __local float Ks[2][BKV * LD], Vs[2][BKV * LD];
    XCHG_DECLARE
    __local uint *xchg = XCHG_WARP;
    const int lane = get_local_id(0) % 32, g = lane / 4, t = lane % 4;
    const int h = get_global_id(1), n = get_global_id(2);
    const int row0 = get_group_id(0) * 4 * WARP_ROWS + get_local_id(0) / 32 * WARP_ROWS;
    const int stride = 3 * H * DH, dstride = H * DH, blocks = (T + BKV - 1) / BKV;
    __global const float *q = qkv + (size_t)n * T * stride + h * DH;
    __global const float *k = q + H * DH, *v = q + 2 * H * DH;
    float qf[KT][4], df[KT][4];
    load_fragments(q, stride, row0, T, scale, lane, qf);
    load_fragments(dout + (size_t)n * T * dstride + h * DH, dstride, row0, T, 1.0f, lane, df);
    const size_t stats = ((size_t)n * H + h) * T;
    const int qa = row0 + g, qb = row0 + g + 8;
    const float L0 = qa < T ? logsumexp[stats + qa] : 0.0f;
    const float L8 = qb < T ? logsumexp[stats + qb] : 0.0f;
    const float e0 = qa < T ? delta[stats + qa] : 0.0f, e8 = qb < T ? delta[stats + qb] : 0.0f;
    float dq[NO][4];
    zero_acc(dq);
    stage_pair(k, stride, v, stride, 0, T, Ks[0], Vs[0]);
    for (int b = 0; b < blocks; b++) {
        if (b + 1 < blocks)
            stage_pair(k, stride, v, stride, b + 1, T, Ks[(b + 1) % 2], Vs[(b + 1) % 2]);
        barrier(CLK_LOCAL_MEM_FENCE);
        const int count = block_rows(b, T);
        float s[NS][4], dp[NS][4]; /* [16 queries][BKV keys] */
        scores(qf, Ks[b % 2], lane, s, xchg);
        scores(df, Vs[b % 2], lane, dp, xchg);
        for (int j = 0; j < NS; j++)
            for (int r = 0; r < 4; r++) {
                const float p =
                    j * 8 + 2 * t + r % 2 < count ? exp(s[j][r] - (r < 2 ? L0 : L8)) : 0.0f;
                s[j][r] = p * (dp[j][r] - (r < 2 ? e0 : e8)); /* dS */
            }
        accumulate(s, Ks[b % 2], lane, dq, xchg);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    store_rows(dq, scale, scale, dqkv + (size_t)n * T * stride + h * DH, stride, row0, T, lane);
}

/* count values of a [N, H, T] statistic from position first -> local (zero past T). */
static inline void load_stats(__global const float *base, int first, int T, __local float *to) {
    for (int i = get_local_id(0); i < BKV; i += THREADS)
        to[i] = first + i < T ? base[first + i] : 0.0f;
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
attention_tc_backward_key_value(__global const float *qkv,       /* [N, T, 3, H, DH] */
                                __global const float *dout,      /* [N, T, H, DH] */
                                __global const float *logsumexp, /* [N, H, T] */
                                __global const float *delta,     /* [N, H, T] */
                                __global float *dqkv,            /* [N, T, 3, H, DH] */
                                const int T, const int H, const float scale) {
    __local float Qs[2][BKV * LD], Gs[2][BKV * LD], Ls[2][BKV], Es[2][BKV];
    XCHG_DECLARE
    __local uint *xchg = XCHG_WARP;
    const int lane = get_local_id(0) % 32, t = lane % 4;
    const int h = get_global_id(1), n = get_global_id(2);
    const int key0 = get_group_id(0) * 4 * WARP_ROWS + get_local_id(0) / 32 * WARP_ROWS;
    const int stride = 3 * H * DH, dstride = H * DH, blocks = (T + BKV - 1) / BKV;
    __global const float *q = qkv + (size_t)n * T * stride + h * DH;
    __global const float *k = q + H * DH, *v = q + 2 * H * DH;
    __global const float *g_out = dout + (size_t)n * T * dstride + h * DH;
    __global const float *L = logsumexp + ((size_t)n * H + h) * T;
    __global const float *E = delta + ((size_t)n * H + h) * T;
    float kf[KT][4], vf[KT][4]; /* this warp's 16 keys: s k and v */
    load_fragments(k, stride, key0, T, scale, lane, kf);
    load_fragments(v, stride, key0, T, 1.0f, lane, vf);
    float dk[NO][4], dv[NO][4];
    zero_acc(dk);
    zero_acc(dv);
    stage_pair(q, stride, g_out, dstride, 0, T, Qs[0], Gs[0]);
    load_stats(L, 0, T, Ls[0]);
    load_stats(E, 0, T, Es[0]);
    for (int b = 0; b < blocks; b++) {
        const int next = (b + 1) % 2;
        if (b + 1 < blocks) {
            stage_pair(q, stride, g_out, dstride, b + 1, T, Qs[next], Gs[next]);
            load_stats(L, (b + 1) * BKV, T, Ls[next]);
            load_stats(E, (b + 1) * BKV, T, Es[next]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        const int count = block_rows(b, T);
        __local const float *Lb = Ls[b % 2], *Eb = Es[b % 2];
        float st[NS][4], dpt[NS][4]; /* [16 keys][BKV queries] */
        scores(kf, Qs[b % 2], lane, st, xchg);
        scores(vf, Gs[b % 2], lane, dpt, xchg);
        for (int j = 0; j < NS; j++)
            for (int r = 0; r < 4; r++) {
                const int col = j * 8 + 2 * t + r % 2;
                const float p = col < count ? exp(st[j][r] - Lb[col]) : 0.0f;
                st[j][r] = p;                          /* P^T */
                dpt[j][r] = p * (dpt[j][r] - Eb[col]); /* dS^T */
            }
        accumulate(st, Gs[b % 2], lane, dv, xchg);
        accumulate(dpt, Qs[b % 2], lane, dk, xchg);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    __global float *dk_base = dqkv + (size_t)n * T * stride + H * DH + h * DH;
    store_rows(dk, scale, scale, dk_base, stride, key0, T, lane);
    store_rows(dv, 1.0f, 1.0f, dk_base + H * DH, stride, key0, T, lane);
}
