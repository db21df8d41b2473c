/* attention_tc_staged.cl: the attention of cl/attention.cl on NVIDIA tensor
 * cores through inline PTX, with S and P staged through local memory: the
 * fp32-accurate (3xTF32) default, 15 % faster there than the register-resident
 * kernels of cl/attention_tc.cl, which win with single TF32 products
 * (docs/PERFORMANCE.md "Attention on tensor cores"; the mma.m16n8k8 .tf32
 * fragments and the 3xTF32 split of cl/gemm_tc.cl).
 *
 * Layout and math as cl/attention.cl: qkv [N, T, 3, H, DH], out [N, T, H, DH],
 * logsumexp [N, H, T]; per (n, h), with s = scale,
 *   S_ij = s q_i.k_j,  L_i = log sum_j exp(S_ij),  out_i = sum_j exp(S_ij - L_i) v_j
 * computed with an online softmax in base 2 (q is multiplied by s log2(e)
 * once, so exp2 replaces exp; L = ln 2 (m + log2 l)).
 *
 * Work-group: 4 warps, 16 query rows each (BQ = 64 rows); K/V blocks of BKV
 * keys in local memory. Per block, warp w:
 *   S (16 x BKV) = Q_w K^T    mma, Q fragments in registers (split once),
 *                              K fragments from local Ks[key][d]
 *   -> local Ps (the C layout written out), masked past T
 *   row max and sum: two lanes per row over half the block each, merged
 *   through local memory; P = exp2(S - m_new) in place; alpha = exp2(m - m_new)
 *   O (16 x DH) = alpha O + P V   mma, P fragments from Ps, V from Vs[key][d]
 * Only the K/V blocks, which all warps read, need work-group barriers (two per
 * block); a warp's own tiles (Ps, its rows' m, l, alpha) order their writes and
 * reads with warp_sync (bar.warp.sync), as the backward's dS tiles do.
 * With SPLIT3 (the fp32-accurate default) every product is 3xTF32
 * (a_lo b_hi + a_hi b_lo + a_hi b_hi); with SPLIT3 = 0, TF32. Row strides are
 * padded so that fragment loads hit 32 distinct banks: LDK = 4 (mod 32) for
 * K (lanes read key g, column t), LDV = 8 (mod 32) for V (key t, column g),
 * LDP = BKV + 4 for P.
 *
 * Fragments (PTX ISA, m16n8k8 .tf32; g = lane / 4, t = lane % 4):
 *   A 16x8 row: a0 (g, t), a1 (g+8, t), a2 (g, t+4), a3 (g+8, t+4)
 *   B 8x8 col:  b0 (k = t, n = g), b1 (k = t+4, n = g)
 *   C 16x8:     c0 (g, 2t), c1 (g, 2t+1), c2 (g+8, 2t), c3 (g+8, 2t+1)
 * TC_EMULATE = 1 computes each lane's C elements directly (Q from global,
 * K, V, P from local), for tests on devices without tensor cores.
 *
 * Backward (FlashAttention-2's two passes, no atomics; P recomputed from the
 * saved logsumexp in base e as cl/attention.cl does, delta from its
 * attention_delta kernel):
 *   attention_tc_backward_query: 64 queries per work-group, K/V blocks of BKV:
 *     S = s q K^T, dP = dout V^T (A fragments read from the warp's global rows),
 *     P = exp(S - L), dS = P (dP - delta) in the C layout -> local tile,
 *     dq += dS K;  dq *= s at the end.
 *   attention_tc_backward_key_value: 64 keys per work-group, Q/dout blocks of
 *     BKV queries: S^T = s k Q^T, dP^T = v dout^T, P^T and dS^T -> local tiles,
 *     dv += P^T dout,  dk += dS^T q;  dk *= s at the end.
 * The tensor cores' fp32 accumulation truncates, so the products of KCHAIN
 * k8 steps (1 to 4) go into a fresh accumulator that is then added to the
 * running sum in fp32: 2 (as the GEMM's STEP_ACC) where the head dimension
 * has an even number of k8 steps, which saved half of those adds (DiT-S/2 at
 * 1792 px fwd+bwd 447.6 -> 415.8 ms on the H200, T = 4,096 errors out 8.2e-7
 * -> 9.1e-7, dq 1.18e-6 -> 1.29e-6), else 1 (DH 72: DiT-XL/2 was not faster
 * with 2; docs/PERFORMANCE.md "Attention on tensor cores").
 * Options: -D DH (a multiple of 8, at most 128), BKV (16 or 32), SPLIT3, KCHAIN,
 * TC_EMULATE. */

#ifndef KCHAIN
#if DH % 16 == 0
#define KCHAIN 2
#else
#define KCHAIN 1
#endif
#endif
#define BQ 64
#define WARP_ROWS 16
#define THREADS 128
#define LDK (DH + ((36 - DH % 32) % 32))
#define LDV (DH + ((40 - DH % 32) % 32))
#define LDP (BKV + 4)
#define KT (DH / 8)  /* k steps of S over the head dimension */
#define NS (BKV / 8) /* 8-key tiles of S */
#define NO (DH / 8)  /* 8-column tiles of O */

#include "tensor_core.cl"

static inline void split(float x, uint *hi, uint *lo) {
#if SPLIT3
    split3(x, hi, lo);
#else
    *hi = to_tf32(x), *lo = 0u;
#endif
}

/* The three products of one k8 step in the order the mma chain runs them. */
static inline void products(float *d, const uint *a_hi, const uint *a_lo, const uint *b_hi,
                            const uint *b_lo) {
#if TC_EMULATE
    (void)d, (void)a_hi, (void)a_lo, (void)b_hi, (void)b_lo;
#else
#if SPLIT3
    mma_tf32(d, a_lo, b_hi);
    mma_tf32(d, a_hi, b_lo);
#endif
    mma_tf32(d, a_hi, b_hi);
#endif
}

/* Rows first..first+count-1 of one q/k/v slice -> local [rows][ld] (zero past count). */
static void load_block(__global const float *base, int row_stride, int first, int count, int ld,
                       __local float *tile, int rows) {
    for (int e = get_local_id(0); e < rows * (DH / 4); e += THREADS) {
        const int row = e / (DH / 4), c = e % (DH / 4);
        const float4 v =
            row < count ? vload4(c, base + (size_t)(first + row) * row_stride) : (float4)(0.0f);
        vstore4(v, 0, tile + row * ld + 4 * c);
    }
}

#if TC_EMULATE
/* One element of a 3xTF32 (or TF32) dot product over k8 steps, in the mma's order. */
static inline float emulated_step(const float *a, const float *b) {
    float terms[3] = {0.0f, 0.0f, 0.0f}; /* lo hi, hi lo, hi hi */
    for (int k = 0; k < 8; k++) {
        uint ah, al, bh, bl;
        split(a[k], &ah, &al);
        split(b[k], &bh, &bl);
        terms[0] += tf32_part(al) * tf32_part(bh);
        terms[1] += tf32_part(ah) * tf32_part(bl);
        terms[2] += tf32_part(ah) * tf32_part(bh);
    }
#if SPLIT3
    return terms[0] + terms[1] + terms[2];
#else
    return terms[2];
#endif
}
#endif

/* c[NS][4] = A B^T over the head dimension: A (16 x DH) is this warp's rows a0 (rows g) and
 * a8 (rows g + 8) in global memory times m0 / m8 (0 for rows past T), B (BKV x DH) a local
 * block of row stride ldb. The fragments of A are read on the fly. */
static inline void scores_rows(__global const float *a0, __global const float *a8, float m0,
                               float m8, __local const float *B, int ldb, int lane,
                               float c[NS][4]) {
    const int g = lane / 4, t = lane % 4;
    for (int j = 0; j < NS; j++)
        for (int r = 0; r < 4; r++) c[j][r] = 0.0f;
#if TC_EMULATE
    for (int j = 0; j < NS; j++)
        for (int r = 0; r < 4; r++) {
            __global const float *a = r < 2 ? a0 : a8;
            const float m = r < 2 ? m0 : m8;
            __local const float *b = B + (j * 8 + 2 * t + r % 2) * ldb;
            for (int kk = 0; kk < KT; kk++) {
                float x[8], y[8];
                for (int i = 0; i < 8; i++) x[i] = a[kk * 8 + i] * m, y[i] = b[kk * 8 + i];
                c[j][r] += emulated_step(x, y);
            }
        }
#else
    for (int k0 = 0; k0 < KT; k0 += KCHAIN) {
        uint a_hi[KCHAIN][4], a_lo[KCHAIN][4];
        for (int u = 0; u < KCHAIN && k0 + u < KT; u++) {
            const int kk = k0 + u;
            const float x[4] = {a0[kk * 8 + t] * m0, a8[kk * 8 + t] * m8,
                                a0[kk * 8 + t + 4] * m0, a8[kk * 8 + t + 4] * m8};
            for (int r = 0; r < 4; r++) split(x[r], &a_hi[u][r], &a_lo[u][r]);
        }
        for (int j = 0; j < NS; j++) {
            float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int u = 0; u < KCHAIN && k0 + u < KT; u++) {
                __local const float *b = B + (j * 8 + g) * ldb + (k0 + u) * 8 + t;
                uint b_hi[2], b_lo[2];
                split(b[0], &b_hi[0], &b_lo[0]);
                split(b[4], &b_hi[1], &b_lo[1]);
                products(d, a_hi[u], a_lo[u], b_hi, b_lo);
            }
            for (int r = 0; r < 4; r++) c[j][r] += d[r];
        }
    }
#endif
}

/* S of this warp's 16 rows against the block's keys: s[NS][4] in the C layout. */
static inline void scores(const uint q_hi[KT][4], const uint q_lo[KT][4],
                          __global const float *qrow0, __global const float *qrow8, float m0,
                          float m8, __local const float *Ks, int lane, float s[NS][4]) {
#if TC_EMULATE
    (void)q_hi, (void)q_lo;
    scores_rows(qrow0, qrow8, m0, m8, Ks, LDK, lane, s);
#else
    (void)qrow0, (void)qrow8, (void)m0, (void)m8;
    const int g = lane / 4, t = lane % 4;
    for (int j = 0; j < NS; j++)
        for (int r = 0; r < 4; r++) s[j][r] = 0.0f;
    for (int k0 = 0; k0 < KT; k0 += KCHAIN)
        for (int j = 0; j < NS; j++) {
            float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int kk = k0; kk < k0 + KCHAIN && kk < KT; kk++) {
                __local const float *k = Ks + (j * 8 + g) * LDK + kk * 8 + t;
                uint b_hi[2], b_lo[2];
                split(k[0], &b_hi[0], &b_lo[0]);
                split(k[4], &b_hi[1], &b_lo[1]);
                products(d, q_hi[kk], q_lo[kk], b_hi, b_lo);
            }
            for (int r = 0; r < 4; r++) s[j][r] += d[r];
        }
#endif
}

/* o[NO][4] += P (16 x BKV, this warp's local tile, row stride LDP) V (BKV x DH, local, row
 * stride ldv): the forward's P V, and the backward's dS K, P^T dout and dS^T q. */
static inline void values(__local const float *Ps, __local const float *Vs, int ldv, int lane,
                          float o[NO][4]) {
    const int g = lane / 4, t = lane % 4;
#if TC_EMULATE
    for (int j = 0; j < NO; j++)
        for (int r = 0; r < 4; r++) {
            const int row = g + 8 * (r / 2), col = j * 8 + 2 * t + r % 2;
            for (int kk = 0; kk < BKV / 8; kk++) {
                float a[8], b[8];
                for (int i = 0; i < 8; i++)
                    a[i] = Ps[row * LDP + kk * 8 + i], b[i] = Vs[(kk * 8 + i) * ldv + col];
                o[j][r] += emulated_step(a, b);
            }
        }
#else
    for (int k0 = 0; k0 < BKV / 8; k0 += KCHAIN) {
        uint a_hi[KCHAIN][4], a_lo[KCHAIN][4];
        for (int u = 0; u < KCHAIN && k0 + u < BKV / 8; u++) {
            __local const float *p = Ps + g * LDP + (k0 + u) * 8 + t;
            split(p[0], &a_hi[u][0], &a_lo[u][0]);
            split(p[8 * LDP], &a_hi[u][1], &a_lo[u][1]);
            split(p[4], &a_hi[u][2], &a_lo[u][2]);
            split(p[8 * LDP + 4], &a_hi[u][3], &a_lo[u][3]);
        }
        for (int j = 0; j < NO; j++) {
            float d[4] = {0.0f, 0.0f, 0.0f, 0.0f};
            for (int u = 0; u < KCHAIN && k0 + u < BKV / 8; u++) {
                __local const float *v = Vs + ((k0 + u) * 8 + t) * ldv + j * 8 + g;
                uint b_hi[2], b_lo[2];
                split(v[0], &b_hi[0], &b_lo[0]);
                split(v[4 * ldv], &b_hi[1], &b_lo[1]);
                products(d, a_hi[u], a_lo[u], b_hi, b_lo);
            }
            for (int r = 0; r < 4; r++) o[j][r] += d[r];
        }
    }
#endif
}

/* The online-softmax step of one block for this warp's rows: S in Ps becomes
 * P = exp2(S - m_new); m, l (per row, local) advance; alpha (local) = the
 * rescale of the old accumulator. Two lanes per row, half a block each. */
static inline void softmax_block(__local float *Ps, __local float *m, __local float *l,
                                 __local float *alpha, __local float *partial, int lane) {
    const int row = lane / 2, part = lane % 2, width = BKV / 2;
    __local float *p = Ps + row * LDP + part * width;
    float mx = -INFINITY;
    for (int c = 0; c < width; c++) mx = fmax(mx, p[c]);
    partial[lane] = mx;
    warp_sync();
    const float m_new = fmax(m[row], fmax(partial[2 * row], partial[2 * row + 1]));
    warp_sync();
    float sum = 0.0f;
    for (int c = 0; c < width; c++) {
        const float e = exp2(p[c] - m_new);
        p[c] = e;
        sum += e;
    }
    partial[lane] = sum;
    warp_sync();
    if (part == 0) {
        const float a = exp2(m[row] - m_new);
        alpha[row] = a;
        l[row] = l[row] * a + partial[2 * row] + partial[2 * row + 1];
        m[row] = m_new;
    }
    warp_sync();
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
attention_tc_forward(__global const float *qkv, /* [N, T, 3, H, DH] */
                     __global float *out,       /* [N, T, H, DH] */
                     __global float *logsumexp, /* [N, H, T] */
                     const int T, const int H, const float scale) {
    __local float Ks[BKV * LDK], Vs[BKV * LDV];
    __local float Ps_all[4][WARP_ROWS * LDP];
    __local float m_all[4][WARP_ROWS], l_all[4][WARP_ROWS], alpha_all[4][WARP_ROWS];
    __local float partial_all[4][32];
    const int lid = get_local_id(0), warp = lid / 32, lane = lid % 32, g = lane / 4, t = lane % 4;
    const int h = get_global_id(1), n = get_global_id(2);
    const int row0 = get_group_id(0) * BQ + warp * WARP_ROWS; /* this warp's first query */
    const int stride = 3 * H * DH;
    __global const float *q = qkv + (size_t)n * T * stride + h * DH;
    __global const float *k = q + H * DH, *v = q + 2 * H * DH;
    __local float *Ps = Ps_all[warp], *m = m_all[warp], *l = l_all[warp];
    __local float *alpha = alpha_all[warp], *partial = partial_all[warp];
    const float qscale = scale * 1.4426950408889634f; /* log2(e): base-2 softmax */

    /* Q fragments of rows row0 + g and row0 + g + 8 (zero past T), split once. */
    uint q_hi[KT][4], q_lo[KT][4];
    const int qa = row0 + g, qb = row0 + g + 8;
    __global const float *qrow0 = q + (size_t)(qa < T ? qa : 0) * stride;
    __global const float *qrow8 = q + (size_t)(qb < T ? qb : 0) * stride;
    for (int kk = 0; kk < KT; kk++) {
        const float x[4] = {qa < T ? qrow0[kk * 8 + t] * qscale : 0.0f,
                            qb < T ? qrow8[kk * 8 + t] * qscale : 0.0f,
                            qa < T ? qrow0[kk * 8 + t + 4] * qscale : 0.0f,
                            qb < T ? qrow8[kk * 8 + t + 4] * qscale : 0.0f};
        for (int r = 0; r < 4; r++) split(x[r], &q_hi[kk][r], &q_lo[kk][r]);
    }
    if (lane < WARP_ROWS) m[lane] = -INFINITY, l[lane] = 0.0f;
    float o[NO][4];
    for (int j = 0; j < NO; j++)
        for (int r = 0; r < 4; r++) o[j][r] = 0.0f;

    for (int key0 = 0; key0 < T; key0 += BKV) {
        const int count = T - key0 < BKV ? T - key0 : BKV;
        barrier(CLK_LOCAL_MEM_FENCE); /* the previous block's K, V, P are used up */
        load_block(k, stride, key0, count, LDK, Ks, BKV);
        load_block(v, stride, key0, count, LDV, Vs, BKV);
        barrier(CLK_LOCAL_MEM_FENCE);
        float s[NS][4];
        scores(q_hi, q_lo, qrow0, qrow8, qa < T ? qscale : 0.0f, qb < T ? qscale : 0.0f, Ks, lane,
               s);
        for (int j = 0; j < NS; j++)
            for (int r = 0; r < 4; r++) {
                const int row = g + 8 * (r / 2), col = j * 8 + 2 * t + r % 2;
                Ps[row * LDP + col] = col < count ? s[j][r] : -INFINITY;
            }
        warp_sync(); /* Ps, m, l, alpha and partial belong to this warp */
        softmax_block(Ps, m, l, alpha, partial, lane);
        const float a0 = alpha[g], a8 = alpha[g + 8];
        for (int j = 0; j < NO; j++) o[j][0] *= a0, o[j][1] *= a0, o[j][2] *= a8, o[j][3] *= a8;
        values(Ps, Vs, LDV, lane, o);
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int part = 0; part < 2; part++) {
        const int row = g + 8 * part, token = row0 + row;
        if (token >= T) continue;
        const float inverse = 1.0f / l[row];
        __global float *o_row = out + ((size_t)n * T + token) * H * DH + h * DH;
        for (int j = 0; j < NO; j++) {
            o_row[j * 8 + 2 * t] = o[j][2 * part] * inverse;
            o_row[j * 8 + 2 * t + 1] = o[j][2 * part + 1] * inverse;
        }
        if (t == 0)
            logsumexp[((size_t)n * H + h) * T + token] =
                0.6931471805599453f * (m[row] + log2(l[row]));
    }
}

/* ---------------------------------------------------------------- backward */

/* count values of a [N, H, T] statistic from position first -> local (zero past count). */
static void load_stats(__global const float *base, int first, int count, __local float *to) {
    for (int i = get_local_id(0); i < BKV; i += THREADS) to[i] = i < count ? base[first + i] : 0.0f;
}

static inline void zero_acc(float o[NO][4]) {
    for (int j = 0; j < NO; j++)
        for (int r = 0; r < 4; r++) o[j][r] = 0.0f;
}

/* Rows row0 + g and row0 + g + 8 of this warp's 16: o * multiplier -> base rows (stride). */
static inline void store_rows(const float o[NO][4], float multiplier, __global float *base,
                              int stride, int row0, int T, int lane) {
    const int g = lane / 4, t = lane % 4;
    for (int part = 0; part < 2; part++) {
        const int token = row0 + g + 8 * part;
        if (token >= T) continue;
        __global float *row = base + (size_t)token * stride;
        for (int j = 0; j < NO; j++) {
            row[j * 8 + 2 * t] = o[j][2 * part] * multiplier;
            row[j * 8 + 2 * t + 1] = o[j][2 * part + 1] * multiplier;
        }
    }
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
attention_tc_backward_query(__global const float *qkv,       /* [N, T, 3, H, DH] */
                            __global const float *dout,      /* [N, T, H, DH] */
                            __global const float *logsumexp, /* [N, H, T] */
                            __global const float *delta,     /* [N, H, T] */
                            __global float *dqkv,            /* [N, T, 3, H, DH] */
                            const int T, const int H, const float scale) {
    __local float Ks[BKV * LDK], Vs[BKV * LDK];
    __local float Ds_all[4][WARP_ROWS * LDP];
    const int lid = get_local_id(0), warp = lid / 32, lane = lid % 32, g = lane / 4, t = lane % 4;
    const int h = get_global_id(1), n = get_global_id(2);
    const int row0 = get_group_id(0) * BQ + warp * WARP_ROWS;
    const int stride = 3 * H * DH, dstride = H * DH;
    __global const float *q = qkv + (size_t)n * T * stride + h * DH;
    __global const float *k = q + H * DH, *v = q + 2 * H * DH;
    __global const float *g_out = dout + (size_t)n * T * dstride + h * DH;
    __local float *Ds = Ds_all[warp];
    const int qa = row0 + g, qb = row0 + g + 8, va = qa < T, vb = qb < T;
    __global const float *q0 = q + (size_t)(va ? qa : 0) * stride;
    __global const float *q8 = q + (size_t)(vb ? qb : 0) * stride;
    __global const float *d0 = g_out + (size_t)(va ? qa : 0) * dstride;
    __global const float *d8 = g_out + (size_t)(vb ? qb : 0) * dstride;
    const size_t stats = ((size_t)n * H + h) * T;
    const float L0 = va ? logsumexp[stats + qa] : 0.0f, L8 = vb ? logsumexp[stats + qb] : 0.0f;
    const float e0 = va ? delta[stats + qa] : 0.0f, e8 = vb ? delta[stats + qb] : 0.0f;
    float dq[NO][4];
    zero_acc(dq);
    for (int key0 = 0; key0 < T; key0 += BKV) {
        const int count = T - key0 < BKV ? T - key0 : BKV;
        barrier(CLK_LOCAL_MEM_FENCE);
        load_block(k, stride, key0, count, LDK, Ks, BKV);
        load_block(v, stride, key0, count, LDK, Vs, BKV);
        barrier(CLK_LOCAL_MEM_FENCE);
        float s[NS][4], dp[NS][4];
        scores_rows(q0, q8, va ? scale : 0.0f, vb ? scale : 0.0f, Ks, LDK, lane, s);
        scores_rows(d0, d8, va ? 1.0f : 0.0f, vb ? 1.0f : 0.0f, Vs, LDK, lane, dp);
        for (int j = 0; j < NS; j++)
            for (int r = 0; r < 4; r++) {
                const int row = g + 8 * (r / 2), col = j * 8 + 2 * t + r % 2;
                const float p = col < count ? exp(s[j][r] - (r < 2 ? L0 : L8)) : 0.0f;
                Ds[row * LDP + col] = p * (dp[j][r] - (r < 2 ? e0 : e8));
            }
        warp_sync(); /* Ds belongs to this warp */
        values(Ds, Ks, LDK, lane, dq);
    }
    store_rows(dq, scale, dqkv + (size_t)n * T * stride + h * DH, stride, row0, T, lane);
}

__kernel __attribute__((reqd_work_group_size(THREADS, 1, 1))) void
attention_tc_backward_key_value(__global const float *qkv,       /* [N, T, 3, H, DH] */
                                __global const float *dout,      /* [N, T, H, DH] */
                                __global const float *logsumexp, /* [N, H, T] */
                                __global const float *delta,     /* [N, H, T] */
                                __global float *dqkv,            /* [N, T, 3, H, DH] */
                                const int T, const int H, const float scale) {
    __local float Qs[BKV * LDK], Gs[BKV * LDK], Ls[BKV], Es[BKV];
    __local float Pt_all[4][WARP_ROWS * LDP], Dt_all[4][WARP_ROWS * LDP];
    const int lid = get_local_id(0), warp = lid / 32, lane = lid % 32, g = lane / 4, t = lane % 4;
    const int h = get_global_id(1), n = get_global_id(2);
    const int key_row0 = get_group_id(0) * BQ + warp * WARP_ROWS; /* this warp's first key */
    const int stride = 3 * H * DH, dstride = H * DH;
    __global const float *q = qkv + (size_t)n * T * stride + h * DH;
    __global const float *k = q + H * DH, *v = q + 2 * H * DH;
    __global const float *g_out = dout + (size_t)n * T * dstride + h * DH;
    __local float *Pt = Pt_all[warp], *Dt = Dt_all[warp];
    const int ka = key_row0 + g, kb = key_row0 + g + 8, va = ka < T, vb = kb < T;
    __global const float *k0 = k + (size_t)(va ? ka : 0) * stride;
    __global const float *k8 = k + (size_t)(vb ? kb : 0) * stride;
    __global const float *v0 = v + (size_t)(va ? ka : 0) * stride;
    __global const float *v8 = v + (size_t)(vb ? kb : 0) * stride;
    const size_t stats = ((size_t)n * H + h) * T;
    float dk[NO][4], dv[NO][4];
    zero_acc(dk);
    zero_acc(dv);
    for (int query0 = 0; query0 < T; query0 += BKV) {
        const int count = T - query0 < BKV ? T - query0 : BKV;
        barrier(CLK_LOCAL_MEM_FENCE);
        load_block(q, stride, query0, count, LDK, Qs, BKV);
        load_block(g_out, dstride, query0, count, LDK, Gs, BKV);
        load_stats(logsumexp + stats, query0, count, Ls);
        load_stats(delta + stats, query0, count, Es);
        barrier(CLK_LOCAL_MEM_FENCE);
        float st[NS][4], dpt[NS][4]; /* (key, query) */
        scores_rows(k0, k8, va ? scale : 0.0f, vb ? scale : 0.0f, Qs, LDK, lane, st);
        scores_rows(v0, v8, va ? 1.0f : 0.0f, vb ? 1.0f : 0.0f, Gs, LDK, lane, dpt);
        for (int j = 0; j < NS; j++)
            for (int r = 0; r < 4; r++) {
                const int row = g + 8 * (r / 2), col = j * 8 + 2 * t + r % 2;
                const float p = col < count ? exp(st[j][r] - Ls[col]) : 0.0f;
                Pt[row * LDP + col] = p;
                Dt[row * LDP + col] = p * (dpt[j][r] - Es[col]);
            }
        warp_sync(); /* Pt and Dt belong to this warp */
        values(Pt, Gs, LDK, lane, dv);
        values(Dt, Qs, LDK, lane, dk);
    }
    __global float *dk_base = dqkv + (size_t)n * T * stride + H * DH + h * DH;
    store_rows(dk, scale, dk_base, stride, key_row0, T, lane);
    store_rows(dv, 1.0f, dk_base + H * DH, stride, key_row0, T, lane);
}
