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
 *   attention_forward       one work-item per query row (BQ per group); K/V
 *                           tiles of BK keys staged in local memory; running
 *                           max m, sum l and accumulator rescaled per CHUNK keys.
 *   attention_delta         delta_i, one work-item per row.
 *   attention_backward_query  one work-item per query row: loops over K/V
 *                           tiles, recomputes P from L, accumulates dq.
 *   attention_backward_key_value  one work-item per key row (BKV per group):
 *                           keeps k_j, dk_j, dv_j in registers and v_j in a
 *                           transposed local column; loops over Q/dout tiles
 *                           of BQT queries.
 * Compile-time: DH (head dim, multiple of 4), BQ, BK, BKV, BQT (even).
 */

#define DH4 (DH / 4)
#define CHUNK 16

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

static float dot_row(const float4 *a, __local const float4 *b) {
    float4 sum = a[0] * b[0];
    for (int c = 1; c < DH4; c++) sum = fma(a[c], b[c], sum);
    return sum.x + sum.y + sum.z + sum.w;
}

/* The online-softmax update for `count` keys of the staged tiles. */
static void online_softmax_tile(const float4 *q, float4 *acc, float *running_max,
                                float *running_sum, __local const float4 *key_tile,
                                __local const float4 *value_tile, int count) {
    for (int j0 = 0; j0 < count; j0 += CHUNK) {
        float scores[CHUNK];
        float chunk_max = -INFINITY;
        for (int jj = 0; jj < CHUNK; jj++) {
            scores[jj] = j0 + jj < count ? dot_row(q, key_tile + (j0 + jj) * DH4) : -INFINITY;
            chunk_max = fmax(chunk_max, scores[jj]);
        }
        const float new_max = fmax(*running_max, chunk_max);
        const float correction = exp(*running_max - new_max);
        float sum = *running_sum * correction;
        for (int c = 0; c < DH4; c++) acc[c] *= correction;
        for (int jj = 0; jj < CHUNK; jj++) { /* past count: score -inf, p = 0, zero row */
            const float p = exp(scores[jj] - new_max);
            sum += p;
            __local const float4 *v = value_tile + (j0 + jj) * DH4;
            for (int c = 0; c < DH4; c++) acc[c] = fma((float4)(p), v[c], acc[c]);
        }
        *running_max = new_max;
        *running_sum = sum;
    }
}

__kernel __attribute__((reqd_work_group_size(BQ, 1, 1)))
void attention_forward(__global const float *qkv, /* [N, T, 3, H, DH] */
                       __global float *out,       /* [N, T, H, DH] */
                       __global float *logsumexp, /* [N, H, T] */
                       int T, int H, float scale) {
    __local float4 key_tile[BK * DH4], value_tile[BK * DH4];
    const int query = get_group_id(0) * BQ + get_local_id(0);
    const int h = get_group_id(1), n = get_group_id(2);
    const int token_stride = 3 * H * DH;
    __global const float *q_base = qkv + (size_t)n * T * token_stride + h * DH;
    __global const float *k_base = q_base + H * DH, *v_base = q_base + 2 * H * DH;
    const int valid = query < T;
    float4 q[DH4], acc[DH4];
    for (int c = 0; c < DH4; c++) {
        q[c] = valid ? vload4(c, q_base + (size_t)query * token_stride) * scale : (float4)(0.0f);
        acc[c] = (float4)(0.0f);
    }
    float running_max = -INFINITY, running_sum = 0.0f;
    for (int k0 = 0; k0 < T; k0 += BK) {
        const int count = min(BK, T - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(k_base, token_stride, k0, count, BK, 1.0f, key_tile);
        load_tile(v_base, token_stride, k0, count, BK, 1.0f, value_tile);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (valid)
            online_softmax_tile(q, acc, &running_max, &running_sum, key_tile, value_tile, count);
    }
    if (!valid) return;
    const float inverse = 1.0f / running_sum;
    __global float *out_row = out + (((size_t)n * T + query) * H + h) * DH;
    for (int c = 0; c < DH4; c++) vstore4(acc[c] * inverse, c, out_row);
    logsumexp[((size_t)n * H + h) * T + query] = running_max + log(running_sum);
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

__kernel __attribute__((reqd_work_group_size(BQ, 1, 1)))
void attention_backward_query(__global const float *qkv,       /* [N, T, 3, H, DH] */
                              __global const float *dout,      /* [N, T, H, DH] */
                              __global const float *logsumexp, /* [N, H, T] */
                              __global const float *delta,     /* [N, H, T] */
                              __global float *dqkv,            /* [N, T, 3, H, DH] */
                              int T, int H, float scale) {
    __local float4 key_tile[BK * DH4], value_tile[BK * DH4];
    const int query = get_group_id(0) * BQ + get_local_id(0);
    const int h = get_group_id(1), n = get_group_id(2);
    const int token_stride = 3 * H * DH;
    const size_t q_offset = (size_t)n * T * token_stride + h * DH;
    __global const float *k_base = qkv + q_offset + H * DH, *v_base = qkv + q_offset + 2 * H * DH;
    const int valid = query < T;
    const size_t row = (size_t)query * token_stride;
    __global const float *dout_row = dout + (((size_t)n * T + query) * H + h) * DH;
    float4 q[DH4], dout_i[DH4], dq[DH4];
    for (int c = 0; c < DH4; c++) {
        q[c] = valid ? vload4(c, qkv + q_offset + row) * scale : (float4)(0.0f);
        dout_i[c] = valid ? vload4(c, dout_row) : (float4)(0.0f);
        dq[c] = (float4)(0.0f);
    }
    const size_t stat = ((size_t)n * H + h) * T + query;
    const float lse = valid ? logsumexp[stat] : 0.0f, delta_i = valid ? delta[stat] : 0.0f;
    for (int k0 = 0; k0 < T; k0 += BK) {
        const int count = min(BK, T - k0);
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(k_base, token_stride, k0, count, BK, 1.0f, key_tile);
        load_tile(v_base, token_stride, k0, count, BK, 1.0f, value_tile);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!valid) continue;
        for (int j = 0; j < count; j++) {
            const float p = exp(dot_row(q, key_tile + j * DH4) - lse);
            const float dscore = p * (dot_row(dout_i, value_tile + j * DH4) - delta_i);
            for (int c = 0; c < DH4; c++) dq[c] = fma((float4)(dscore), key_tile[j * DH4 + c], dq[c]);
        }
    }
    if (!valid) return;
    for (int c = 0; c < DH4; c++) vstore4(dq[c] * scale, c, dqkv + q_offset + row);
}

__kernel __attribute__((reqd_work_group_size(BKV, 1, 1)))
void attention_backward_key_value(__global const float *qkv,       /* [N, T, 3, H, DH] */
                                  __global const float *dout,      /* [N, T, H, DH] */
                                  __global const float *logsumexp, /* [N, H, T] */
                                  __global const float *delta,     /* [N, H, T] */
                                  __global float *dqkv,            /* [N, T, 3, H, DH] */
                                  int T, int H, float scale) {
    __local float value_columns[DH * BKV]; /* v_j[c] at c*BKV + j: own column, no conflicts */
    __local float4 query_tile[BQT * DH4], dout_tile[BQT * DH4];
    __local float lse_tile[BQT], delta_tile[BQT];
    const int j = get_local_id(0), key = get_group_id(0) * BKV + j;
    const int h = get_group_id(1), n = get_group_id(2);
    const int token_stride = 3 * H * DH;
    const size_t q_offset = (size_t)n * T * token_stride + h * DH;
    const size_t key_row = q_offset + (size_t)key * token_stride;
    const int valid = key < T;
    float4 k[DH4], dk[DH4], dv[DH4];
    for (int c = 0; c < DH4; c++) {
        k[c] = valid ? vload4(c, qkv + key_row + H * DH) : (float4)(0.0f);
        const float4 v = valid ? vload4(c, qkv + key_row + 2 * H * DH) : (float4)(0.0f);
        value_columns[(4 * c + 0) * BKV + j] = v.x;
        value_columns[(4 * c + 1) * BKV + j] = v.y;
        value_columns[(4 * c + 2) * BKV + j] = v.z;
        value_columns[(4 * c + 3) * BKV + j] = v.w;
        dk[c] = dv[c] = (float4)(0.0f);
    }
    __global const float *dout_base = dout + (size_t)n * T * H * DH + h * DH;
    const size_t stat_base = ((size_t)n * H + h) * T;
    for (int q0 = 0; q0 < T; q0 += BQT) {
        const int count = min(BQT, T - q0);
        barrier(CLK_LOCAL_MEM_FENCE);
        load_tile(qkv + q_offset, token_stride, q0, count, BQT, scale, query_tile);
        load_tile(dout_base, H * DH, q0, count, BQT, 1.0f, dout_tile);
        for (int i = get_local_id(0); i < BQT; i += BKV) {
            lse_tile[i] = i < count ? logsumexp[stat_base + q0 + i] : 0.0f;
            delta_tile[i] = i < count ? delta[stat_base + q0 + i] : 0.0f;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
        if (!valid) continue;
        /* Queries in pairs, so each v_j[c] read from local memory serves two dot
         * products. Tile rows past count are zero (q = dout = 0, L = delta = 0),
         * so their p = 1 and dS = 0 contribute nothing: BQT is even. */
        for (int i = 0; i < count; i += 2) {
            __local const float4 *q_a = query_tile + i * DH4, *dout_a = dout_tile + i * DH4;
            __local const float4 *q_b = q_a + DH4, *dout_b = dout_a + DH4;
            const float p_a = exp(dot_row(k, q_a) - lse_tile[i]);
            const float p_b = exp(dot_row(k, q_b) - lse_tile[i + 1]);
            float4 dp_a = (float4)(0.0f), dp_b = (float4)(0.0f);
            for (int c = 0; c < DH4; c++) {
                const float4 v = (float4)(value_columns[(4 * c + 0) * BKV + j],
                                          value_columns[(4 * c + 1) * BKV + j],
                                          value_columns[(4 * c + 2) * BKV + j],
                                          value_columns[(4 * c + 3) * BKV + j]);
                dp_a = fma(dout_a[c], v, dp_a);
                dp_b = fma(dout_b[c], v, dp_b);
            }
            const float dscore_a = p_a * (dp_a.x + dp_a.y + dp_a.z + dp_a.w - delta_tile[i]);
            const float dscore_b = p_b * (dp_b.x + dp_b.y + dp_b.z + dp_b.w - delta_tile[i + 1]);
            for (int c = 0; c < DH4; c++) { /* q already carries the scale */
                dv[c] = fma((float4)(p_a), dout_a[c], fma((float4)(p_b), dout_b[c], dv[c]));
                dk[c] = fma((float4)(dscore_a), q_a[c], fma((float4)(dscore_b), q_b[c], dk[c]));
            }
        }
    }
    if (!valid) return;
    for (int c = 0; c < DH4; c++) {
        vstore4(dk[c], c, dqkv + key_row + H * DH);
        vstore4(dv[c], c, dqkv + key_row + 2 * H * DH);
    }
}
