/* attention.cl: non-causal multi-head softmax attention, forward and backward,
 * tiled with an online softmax (FlashAttention-2: Dao, arXiv 2307.08691,
 * Algorithms 1 and 2). Memory is O(T): no [T, T] matrix is ever stored.
 *
 * Layout (timm Attention, fused qkv): qkv [N, T, 3, H, DH], out/dout
 * [N, T, H, DH], logsumexp/delta [N, H, T]. Per (n, h), with s = scale:
 *   S_ij = s q_i.k_j,  P_ij = exp(S_ij - L_i),  L_i = log sum_j exp(S_ij)
 *   out_i = sum_j P_ij v_j
 *   delta_i = dout_i . out_i
 *   dS_ij = P_ij (dout_i . v_j - delta_i)
 *   dq_i = s sum_j dS_ij k_j,  dk_j = s sum_i dS_ij q_i,  dv_j = sum_i P_ij dout_i
 *
 * Kernels (no atomics; every output element has one owner):
 *   attention_forward       register-blocked (see above the kernel): 128
 *                           work-items per 32*FRQ query rows; K/V tiles of FBK
 *                           keys in local memory; scores with q in registers,
 *                           P through local memory, P V as 4-row micro-tiles;
 *                           running max m, sum l, accumulator rescaled per tile;
 *                           the next K/V tile is prefetched into registers.
 *   attention_delta         delta_i, one work-item per row.
 *   attention_backward_query  register-blocked (see above the kernel): 128
 *                           work-items per 32 query rows; K/V tiles of BK keys;
 *                           recomputes P from L, dS through local memory, dq as
 *                           4-row micro-tiles.
 *   attention_backward_key_value  register-blocked (see above the kernel):
 *                           128 work-items per 32 keys; Q/dout tiles of BQT
 *                           queries in local memory; p and dS with k (and v)
 *                           in registers, then dk/dv as 4-key micro-tiles.
 * Compile-time: DH (head dim, multiple of 4), BK and BQT (multiples of 4), FRQ,
 * FBK (multiple of 4).
 */

#define DH4 (DH / 4)

/* Copies rows first..first+count-1 of one q/k/v/dout slice into a local tile
 * [rows][DH4] (zero rows past count), cooperatively and coalesced. */
static void load_tile(__global const float *base, int row_stride, int first, int count,
                      int rows, float multiplier, __local float4 *tile) {
    for (int e = get_local_id(0); e < rows * DH4; e += get_local_size(0)) {
        const int row = e / DH4, c = e % DH4;
        tile[e] = row < count ? vload4(c, base + (size_t)(first + row) * row_stride) * multiplier
                              : (float4)(0.0f);
    }
}

/* Forward, register-blocked. A group of FG = 128 work-items owns FBQ = 32*FRQ
 * query rows and walks K/V tiles of FBK keys in two phases per tile:
 *   scores: work-item (quarter = lid / 32, slot = lid % 32) holds q of rows
 *     slot + 32 r (r < FRQ) in registers and scores them against the FBK/4 keys
 *     of its quarter (warp-uniform: each K load is a broadcast feeding FRQ
 *     rows); the row max is combined over the 4 quarters through local memory,
 *     then p = exp(s - m) goes to a local tile pt[key][row].
 *   values: work-item (row group lid / FCG, column group lid % FCG) owns a
 *     4-row x FCW-float4 block of the accumulator: one P load (4 rows) and FCW
 *     V loads feed 16 FCW FMAs.
 * Each quarter keeps its own running sum; they are added at the end. The next
 * K/V tile is loaded into registers while the current one is in use. */
#define FG 128
#define FBQ (32 * FRQ)
#define FQK (FBK / 4)
#define FRG (FBQ / 4)
#define FCG (FG / FRG)
#define FCW ((DH4 + FCG - 1) / FCG)

#define FPF ((FBK * DH4 + FG - 1) / FG) /* float4 of each of K and V per work-item per tile */

/* Rows first.. of K and V (zero past T), element e = lid + FG u of a [FBK][DH4] tile. */
static void prefetch_tile(__global const float *k_base, __global const float *v_base,
                          int row_stride, int first, int T, float4 *k, float4 *v) {
    for (int u = 0; u < FPF; u++) {
        const int e = get_local_id(0) + FG * u, row = e / DH4, c = e % DH4;
        const int inside = e < FBK * DH4 && first + row < T;
        const size_t offset = (size_t)(first + row) * row_stride;
        k[u] = inside ? vload4(c, k_base + offset) : (float4)(0.0f);
        v[u] = inside ? vload4(c, v_base + offset) : (float4)(0.0f);
    }
}

__kernel __attribute__((reqd_work_group_size(FG, 1, 1)))
void attention_forward(__global const float *qkv, /* [N, T, 3, H, DH] */
                       __global float *out,       /* [N, T, H, DH] */
                       __global float *logsumexp, /* [N, H, T] */
                       int T, int H, float scale) {
    __local float4 key_tile[FBK * DH4], value_tile[FBK * DH4];
    __local float4 pt[FBK * FRG]; /* p of (key j, rows 4g..4g+3) at j*FRG + g */
    __local float partial[4 * FBQ], correction_tile[FBQ];
    const int lid = get_local_id(0), quarter = lid / 32, slot = lid % 32;
    const int first_row = get_group_id(0) * FBQ;
    const int h = get_group_id(1), n = get_group_id(2);
    const int token_stride = 3 * H * DH;
    __global const float *q_base = qkv + (size_t)n * T * token_stride + h * DH;
    __global const float *k_base = q_base + H * DH, *v_base = q_base + 2 * H * DH;
    __local float *p_rows = (__local float *)pt;
    float4 q[FRQ][DH4];
    float running_max[FRQ], running_sum[FRQ];
    for (int r = 0; r < FRQ; r++) {
        const int query = first_row + slot + 32 * r;
        for (int c = 0; c < DH4; c++)
            q[r][c] = query < T ? vload4(c, q_base + (size_t)query * token_stride) * scale
                                : (float4)(0.0f);
        running_max[r] = -INFINITY;
        running_sum[r] = 0.0f;
    }
    const int row_group = lid / FCG, column_group = lid % FCG;
    float4 acc[4][FCW];
    for (int i = 0; i < 4; i++)
        for (int w = 0; w < FCW; w++) acc[i][w] = (float4)(0.0f);
    /* The next K/V tile is fetched into registers while this one is used. */
    float4 next_k[FPF], next_v[FPF];
    prefetch_tile(k_base, v_base, token_stride, 0, T, next_k, next_v);
    for (int k0 = 0; k0 < T; k0 += FBK) {
        const int count = min(FBK, T - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int u = 0; u < FPF; u++) {
            const int e = lid + FG * u;
            if (FPF * FG > FBK * DH4 && e >= FBK * DH4) break;
            key_tile[e] = next_k[u];
            value_tile[e] = next_v[u];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (k0 + FBK < T) prefetch_tile(k_base, v_base, token_stride, k0 + FBK, T, next_k, next_v);
        float scores[FRQ][FQK];
        for (int jj = 0; jj < FQK; jj++) {
            const int j = quarter * FQK + jj;
            __local const float4 *k = key_tile + j * DH4;
            float4 sum[FRQ];
            for (int r = 0; r < FRQ; r++) sum[r] = q[r][0] * k[0];
            for (int c = 1; c < DH4; c++) {
                const float4 kc = k[c];
                for (int r = 0; r < FRQ; r++) sum[r] = fma(q[r][c], kc, sum[r]);
            }
            for (int r = 0; r < FRQ; r++)
                scores[r][jj] = j < count ? sum[r].x + sum[r].y + sum[r].z + sum[r].w : -INFINITY;
        }
        for (int r = 0; r < FRQ; r++) {
            float tile_max = scores[r][0];
            for (int jj = 1; jj < FQK; jj++) tile_max = fmax(tile_max, scores[r][jj]);
            partial[quarter * FBQ + slot + 32 * r] = tile_max;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int r = 0; r < FRQ; r++) {
            const int row = slot + 32 * r;
            const float new_max =
                fmax(fmax(running_max[r], fmax(partial[row], partial[FBQ + row])),
                     fmax(partial[2 * FBQ + row], partial[3 * FBQ + row]));
            const float correction = exp(running_max[r] - new_max);
            float sum = running_sum[r] * correction;
            for (int jj = 0; jj < FQK; jj++) { /* past count: score -inf, p = 0 */
                const float p = exp(scores[r][jj] - new_max);
                sum += p;
                p_rows[(quarter * FQK + jj) * FBQ + row] = p;
            }
            if (quarter == 0) correction_tile[row] = correction;
            running_max[r] = new_max;
            running_sum[r] = sum;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < 4; i++) {
            const float correction = correction_tile[4 * row_group + i];
            for (int w = 0; w < FCW; w++) acc[i][w] *= correction;
        }
        for (int j = 0; j < count; j++) {
            const float4 p = pt[j * FRG + row_group];
            for (int w = 0; w < FCW; w++) {
                const int c = column_group + FCG * w;
                if (FCW * FCG > DH4 && c >= DH4) break;
                const float4 v = value_tile[j * DH4 + c];
                acc[0][w] = fma((float4)(p.x), v, acc[0][w]);
                acc[1][w] = fma((float4)(p.y), v, acc[1][w]);
                acc[2][w] = fma((float4)(p.z), v, acc[2][w]);
                acc[3][w] = fma((float4)(p.w), v, acc[3][w]);
            }
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int r = 0; r < FRQ; r++) partial[quarter * FBQ + slot + 32 * r] = running_sum[r];
    barrier(CLK_LOCAL_MEM_FENCE);
    if (quarter == 0)
        for (int r = 0; r < FRQ; r++) {
            const int row = slot + 32 * r, query = first_row + row;
            const float total =
                (partial[row] + partial[FBQ + row]) + (partial[2 * FBQ + row] + partial[3 * FBQ + row]);
            if (query < T) logsumexp[((size_t)n * H + h) * T + query] = running_max[r] + log(total);
        }
    for (int i = 0; i < 4; i++) {
        const int row = 4 * row_group + i, query = first_row + row;
        if (query >= T) break;
        const float inverse = 1.0f / ((partial[row] + partial[FBQ + row]) +
                                      (partial[2 * FBQ + row] + partial[3 * FBQ + row]));
        __global float *out_row = out + (((size_t)n * T + query) * H + h) * DH;
        for (int w = 0; w < FCW; w++) {
            const int c = column_group + FCG * w;
            if (c < DH4) vstore4(acc[i][w] * inverse, c, out_row);
        }
    }
}

/* delta[n, h, t] = dout[n, t, h, :] . out[n, t, h, :]. Global (T, H, N). */
__kernel void attention_delta(__global const float *out,  /* [N, T, H, DH] */
                              __global const float *dout, /* [N, T, H, DH] */
                              __global float *delta,      /* [N, H, T] */
                              int T, int H) {
    const int t = get_global_id(0), h = get_global_id(1), n = get_global_id(2);
    if (t >= T) return;
    const size_t row = (((size_t)n * T + t) * H + h) * DH;
    float4 sum = (float4)(0.0f);
    for (int c = 0; c < DH4; c++) sum = fma(vload4(c, out + row), vload4(c, dout + row), sum);
    delta[((size_t)n * H + h) * T + t] = sum.x + sum.y + sum.z + sum.w;
}

#define BG 128
#define BKB 32
#define BKG (BKB / 4)
#define BQQ (BQT / 4)
#define BCG (BG / BKG)
#define BCW ((DH4 + BCG - 1) / BCG)
#define V_IN_REGISTERS (DH <= 64) /* the second row operand (v in dk/dv, dout in dq) */
#define VPAD (DH4 % 2 == 0 ? DH4 + 1 : DH4) /* odd row stride: no bank conflicts */

/* dq, register-blocked, the transpose of the dk/dv scheme below: a group of
 * BG = 128 work-items owns BKB = 32 query rows and walks K/V tiles of BK keys.
 * Work-item (quarter = lid / 32, slot = lid % 32) holds q (and dout, where
 * DH <= 64; else dout is read from its own padded local row) of row slot and
 * computes dS against the BK/4 keys of its quarter (broadcast k/v loads) into
 * a local tile [key][row]; then work-item (row group lid / BCG, column group
 * lid % BCG) accumulates a 4-row x BCW-float4 block of dq = dS k. */
__kernel __attribute__((reqd_work_group_size(BG, 1, 1)))
void attention_backward_query(__global const float *qkv,       /* [N, T, 3, H, DH] */
                              __global const float *dout,      /* [N, T, H, DH] */
                              __global const float *logsumexp, /* [N, H, T] */
                              __global const float *delta,     /* [N, H, T] */
                              __global float *dqkv,            /* [N, T, 3, H, DH] */
                              int T, int H, float scale) {
    __local float4 key_tile[BK * DH4], value_tile[BK * DH4];
    __local float4 dscore_tile[BK * BKG]; /* (key j, rows 4g..4g+3) at j*BKG + g */
    __local float *dscore_rows = (__local float *)dscore_tile;
    const int lid = get_local_id(0), quarter = lid / 32, slot = lid % 32;
    const int first_row = get_group_id(0) * BKB, query = first_row + slot;
    const int h = get_group_id(1), n = get_group_id(2);
    const int token_stride = 3 * H * DH;
    const size_t q_offset = (size_t)n * T * token_stride + h * DH;
    __global const float *k_base = qkv + q_offset + H * DH, *v_base = qkv + q_offset + 2 * H * DH;
    const int valid = query < T;
    __global const float *q_row = qkv + q_offset + (size_t)query * token_stride;
    __global const float *dout_row = dout + (((size_t)n * T + query) * H + h) * DH;
    float4 q[DH4];
#if V_IN_REGISTERS
    float4 g[DH4];
    for (int c = 0; c < DH4; c++) {
        q[c] = valid ? vload4(c, q_row) * scale : (float4)(0.0f);
        g[c] = valid ? vload4(c, dout_row) : (float4)(0.0f);
    }
#else
    __local float4 dout_rows[BKB * VPAD];
    for (int c = 0; c < DH4; c++) q[c] = valid ? vload4(c, q_row) * scale : (float4)(0.0f);
    for (int c = quarter; c < DH4; c += 4) /* read after the first barrier below */
        dout_rows[slot * VPAD + c] = valid ? vload4(c, dout_row) : (float4)(0.0f);
#endif
    const size_t stat = ((size_t)n * H + h) * T + query;
    const float lse = valid ? logsumexp[stat] : 0.0f, delta_i = valid ? delta[stat] : 0.0f;
    const int row_group = lid / BCG, column_group = lid % BCG;
    float4 dq[4][BCW];
    for (int r = 0; r < 4; r++)
        for (int w = 0; w < BCW; w++) dq[r][w] = (float4)(0.0f);
    for (int k0 = 0; k0 < T; k0 += BK) {
        const int count = min(BK, T - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(k_base, token_stride, k0, count, BK, 1.0f, key_tile);
        load_tile(v_base, token_stride, k0, count, BK, 1.0f, value_tile);
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int jj = 0; jj < BK / 4; jj++) {
            const int j = quarter * (BK / 4) + jj;
            __local const float4 *k = key_tile + j * DH4, *v = value_tile + j * DH4;
            float4 score = q[0] * k[0], dp;
#if V_IN_REGISTERS
            dp = g[0] * v[0];
            for (int c = 1; c < DH4; c++) {
                score = fma(q[c], k[c], score);
                dp = fma(g[c], v[c], dp);
            }
#else
            dp = dout_rows[slot * VPAD] * v[0];
            for (int c = 1; c < DH4; c++) {
                score = fma(q[c], k[c], score);
                dp = fma(dout_rows[slot * VPAD + c], v[c], dp);
            }
#endif
            const float p =
                j < count ? exp(score.x + score.y + score.z + score.w - lse) : 0.0f;
            dscore_rows[j * BKB + slot] = p * (dp.x + dp.y + dp.z + dp.w - delta_i);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int j = 0; j < count; j++) {
            const float4 ds = dscore_tile[j * BKG + row_group];
            for (int w = 0; w < BCW; w++) {
                const int c = column_group + BCG * w;
                if (BCW * BCG > DH4 && c >= DH4) break;
                const float4 kc = key_tile[j * DH4 + c];
                dq[0][w] = fma((float4)(ds.x), kc, dq[0][w]);
                dq[1][w] = fma((float4)(ds.y), kc, dq[1][w]);
                dq[2][w] = fma((float4)(ds.z), kc, dq[2][w]);
                dq[3][w] = fma((float4)(ds.w), kc, dq[3][w]);
            }
        }
    }
    for (int r = 0; r < 4; r++) {
        const int own_query = first_row + 4 * row_group + r;
        if (own_query >= T) break;
        __global float *dq_row = dqkv + q_offset + (size_t)own_query * token_stride;
        for (int w = 0; w < BCW; w++) {
            const int c = column_group + BCG * w;
            if (c < DH4) vstore4(dq[r][w] * scale, c, dq_row);
        }
    }
}

/* dk/dv, register-blocked. A group of BG = 128 work-items owns BKB = 32 keys
 * and walks Q/dout tiles of BQT queries in two phases per tile:
 *   scores: work-item (quarter = lid / 32, slot = lid % 32) holds k of key
 *     slot (and v, where DH <= 64; else v is read from its own padded local
 *     row) and computes p and dS against the BQT/4 queries of its quarter
 *     (warp-uniform: each q/dout load is a broadcast); p and dS go to local
 *     tiles [query][key].
 *   update: work-item (key group lid / BCG, column group lid % BCG) owns a
 *     4-key x BCW-float4 block of dk and of dv: one p and one dS load (4 keys)
 *     and 2 BCW q/dout loads feed 32 BCW FMAs. */
__kernel __attribute__((reqd_work_group_size(BG, 1, 1)))
void attention_backward_key_value(__global const float *qkv,       /* [N, T, 3, H, DH] */
                                  __global const float *dout,      /* [N, T, H, DH] */
                                  __global const float *logsumexp, /* [N, H, T] */
                                  __global const float *delta,     /* [N, H, T] */
                                  __global float *dqkv,            /* [N, T, 3, H, DH] */
                                  int T, int H, float scale) {
    __local float4 query_tile[BQT * DH4], dout_tile[BQT * DH4];
    __local float4 p_tile[BQT * BKG], dscore_tile[BQT * BKG]; /* (i, keys 4g..) at i*BKG + g */
    __local float lse_tile[BQT], delta_tile[BQT];
    __local float *p_keys = (__local float *)p_tile, *dscore_keys = (__local float *)dscore_tile;
    const int lid = get_local_id(0), quarter = lid / 32, slot = lid % 32;
    const int first_key = get_group_id(0) * BKB, key = first_key + slot;
    const int h = get_group_id(1), n = get_group_id(2);
    const int token_stride = 3 * H * DH;
    const size_t q_offset = (size_t)n * T * token_stride + h * DH;
    const int valid = key < T;
    __global const float *key_row = qkv + q_offset + (size_t)key * token_stride + H * DH;
    float4 k[DH4];
#if V_IN_REGISTERS
    float4 v[DH4];
    for (int c = 0; c < DH4; c++) {
        k[c] = valid ? vload4(c, key_row) : (float4)(0.0f);
        v[c] = valid ? vload4(c, key_row + H * DH) : (float4)(0.0f);
    }
#else
    __local float4 value_rows[BKB * VPAD];
    for (int c = 0; c < DH4; c++) k[c] = valid ? vload4(c, key_row) : (float4)(0.0f);
    for (int c = quarter; c < DH4; c += 4) /* read after the first barrier below */
        value_rows[slot * VPAD + c] = valid ? vload4(c, key_row + H * DH) : (float4)(0.0f);
#endif
    const int key_group = lid / BCG, column_group = lid % BCG;
    float4 dk[4][BCW], dv[4][BCW];
    for (int kk = 0; kk < 4; kk++)
        for (int w = 0; w < BCW; w++) dk[kk][w] = dv[kk][w] = (float4)(0.0f);
    __global const float *dout_base = dout + (size_t)n * T * H * DH + h * DH;
    const size_t stat_base = ((size_t)n * H + h) * T;
    for (int q0 = 0; q0 < T; q0 += BQT) {
        const int count = min(BQT, T - q0);
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(qkv + q_offset, token_stride, q0, count, BQT, scale, query_tile);
        load_tile(dout_base, H * DH, q0, count, BQT, 1.0f, dout_tile);
        for (int i = lid; i < BQT; i += BG) {
            lse_tile[i] = i < count ? logsumexp[stat_base + q0 + i] : 0.0f;
            delta_tile[i] = i < count ? delta[stat_base + q0 + i] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int ii = 0; ii < BQQ; ii++) {
            const int i = quarter * BQQ + ii;
            __local const float4 *q_i = query_tile + i * DH4, *dout_i = dout_tile + i * DH4;
            float4 score = k[0] * q_i[0], dp;
#if V_IN_REGISTERS
            dp = v[0] * dout_i[0];
            for (int c = 1; c < DH4; c++) {
                score = fma(k[c], q_i[c], score);
                dp = fma(v[c], dout_i[c], dp);
            }
#else
            dp = value_rows[slot * VPAD] * dout_i[0];
            for (int c = 1; c < DH4; c++) {
                score = fma(k[c], q_i[c], score);
                dp = fma(value_rows[slot * VPAD + c], dout_i[c], dp);
            }
#endif
            /* q carries the scale; queries past count: p = 0 */
            const float p =
                i < count ? exp(score.x + score.y + score.z + score.w - lse_tile[i]) : 0.0f;
            p_keys[i * BKB + slot] = p;
            dscore_keys[i * BKB + slot] = p * (dp.x + dp.y + dp.z + dp.w - delta_tile[i]);
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        for (int i = 0; i < count; i++) {
            const float4 p = p_tile[i * BKG + key_group], ds = dscore_tile[i * BKG + key_group];
            for (int w = 0; w < BCW; w++) {
                const int c = column_group + BCG * w;
                if (BCW * BCG > DH4 && c >= DH4) break;
                const float4 g = dout_tile[i * DH4 + c], q = query_tile[i * DH4 + c];
                dv[0][w] = fma((float4)(p.x), g, dv[0][w]);
                dv[1][w] = fma((float4)(p.y), g, dv[1][w]);
                dv[2][w] = fma((float4)(p.z), g, dv[2][w]);
                dv[3][w] = fma((float4)(p.w), g, dv[3][w]);
                dk[0][w] = fma((float4)(ds.x), q, dk[0][w]);
                dk[1][w] = fma((float4)(ds.y), q, dk[1][w]);
                dk[2][w] = fma((float4)(ds.z), q, dk[2][w]);
                dk[3][w] = fma((float4)(ds.w), q, dk[3][w]);
            }
        }
    }
    for (int kk = 0; kk < 4; kk++) {
        const int own_key = first_key + 4 * key_group + kk;
        if (own_key >= T) break;
        __global float *dk_row = dqkv + q_offset + (size_t)own_key * token_stride + H * DH;
        for (int w = 0; w < BCW; w++) {
            const int c = column_group + BCG * w;
            if (c < DH4) {
                vstore4(dk[kk][w], c, dk_row);
                vstore4(dv[kk][w], c, dk_row + H * DH);
            }
        }
    }
}
