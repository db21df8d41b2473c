/* gla.cl: chunkwise gated linear attention, forward and backward.
 *
 * Math (per batch element and head; docs/GLA.md sections 1-3,
 * Yang et al., arXiv 2312.06635): S_t = Diag(exp(g_t)) S_{t-1} + k_t v_t^T,
 * o_t = s S_t^T q_t, g <= 0. Chunks of C tokens; b = chunk-local inclusive
 * cumsum of g, Gamma = b at the chunk's last row, H_n = state entering chunk n:
 *
 *   A_tj  = s sum_i q_t[i] k_j[i] exp(b_t[i] - b_j[i])                (j <= t)
 *   o_t   = s (q_t * exp(b_t))^T H_n + sum_{j<=t} A_tj v_j
 *   H_n+1 = exp(Gamma) * H_n + U_n,  U_n = sum_j (k_j * exp(Gamma - b_j)) v_j^T
 *   D_n   = dH_n+1;  D_n-1 = exp(Gamma_n) * D_n + W_n,  W_n = s sum_t (q_t * exp(b_t)) do_t^T
 *   dA_tj = s <do_t, v_j>                                                (j <= t)
 *   dv_j  = sum_{t>=j} A_tj do_t + D_n^T (k_j * exp(Gamma - b_j))
 *   dq_t  = s exp(b_t) * (H_n do_t) + sum_{j<=t} dA_tj k_j * exp(b_t - b_j)
 *   dk_j  = exp(Gamma - b_j) * (D_n v_j) + sum_{t>=j} dA_tj q_t * exp(b_t - b_j)
 *   dg_t  = sum_{u>=t in chunk} (q_u dq_u - k_u dk_u) + exp(Gamma) * rowsum(H_n * D_n)
 *           + sum_{u in chunk} k_u * dk_inter_u                  (docs/GLA.md §3.3, chunk-local)
 *         = sum_{u>=t} (q_u dq'_u - k_u dk'_intra_u) + exp(Gamma) * rowsum(H_n * D_n)
 *           + sum_{u<t} k_u * dk_inter_u          (computed form: nothing cancels in fp32;
 *             dq', dk' leave out the self term dA_tt, which cancels exactly)
 *
 * Every exp argument is <= 0: padded rows and columns load g = 0, q = k = v = 0,
 * so b stays flat past T and Gamma = b at the last valid row. A chunk is split
 * into NS = 4 sub-chunks of SUB rows; an off-diagonal block (key sub-chunk J
 * before the query row t) uses exp(b_t - b_lastJ) * exp(b_lastJ - b_j), both
 * factors <= 1; diagonal blocks take exp(b_t - b_j) elementwise, skipping j > t
 * before the exp.
 *
 * Kernels (the host launches 3 forward, 4 backward):
 *   gla_chunk_prepass  per (tile, chunk, head): U_n, Gamma_n and/or W_n
 *   gla_state_scan     per (state element, head, direction): H_n in place of U_n,
 *                      hT; D_n in place of W_n, dh0
 *   gla_chunk_output   per (V tile, chunk, head): o (or dv with -DGLA_DV)
 *   gla_chunk_grad_qk  per (K tile, chunk, head): dq, dk, dg
 * and for CPU devices the same three chunk kernels as `_serial` variants (GLA_*_SERIAL):
 * one work-item per (chunk, head), [C, K] arrays in private memory, no barriers, each
 * pair j < t taking exp(b_t - b_j) elementwise (docs/GLA_DESIGN.md, "CPU kernels"), and
 * gla_state_scan_serial (one work-item per state row).
 *
 * Compile-time: GLA_PREPASS / GLA_SCAN / GLA_OUTPUT / GLA_GRAD_QK (which kernel
 * the program holds), CHUNK (C), K_DIM, V_DIM, KT (K tile, 16 or 32), VT (V
 * tile, multiple of 4). Work-group: 4 * CHUNK items; each kernel says what an item owns
 * (4 x 4 register blocks in the chunk kernels, docs/GLA_DESIGN.md, "Register blocking").
 * Layout: each tensor has its own (LAYOUT below; gradients share their tensor's). Workspace
 * states: [N*H, NT, K, V], gammas: [N*H, NT, K] holding exp(Gamma).
 */

#define NS 4
#define SUB (CHUNK / NS)
#define WG (CHUNK * NS)
#define KPAD (KT + 1) /* row stride of [C, KT] tiles read by scalar loads */
#define SEGMENTS (WG / KT)
#define SEGMENT_ROWS (CHUNK / SEGMENTS)

/* Offset of (n, h) where nh = n * H + h. */
static inline size_t head_offset(int nh, int H, int head, int batch) {
    return (size_t)(nh / H) * (size_t)batch + (size_t)(nh % H) * (size_t)head;
}

/* One tensor's layout: element (n, t, h, d) at offset + n*batch + h*head + t*token + d.
 * Every kernel takes the layouts of q, k, g, v and o; a gradient has its tensor's
 * layout (dq q's, dk k's, dg g's, dv v's, do o's). */
#define LAYOUT(x) ulong x##_offset, int x##_token, int x##_head, int x##_batch
#define LAYOUTS LAYOUT(q), LAYOUT(k), LAYOUT(g), LAYOUT(v), LAYOUT(o)
/* Element (n, 0, h, 0) of tensor x for nh = n * H + h. */
#define BASE(x) ((size_t)x##_offset + head_offset(nh, H, x##_head, x##_batch))

/* The chunk's first row (token t0) of tensor x in `layout`: x + its (n, h) base + t0 *
 * token; row r follows at r * token. The host keeps CHUNK * token below 2^31, so the
 * work-group kernels index inside a chunk in 32 bits. */
#define CHUNK_ROWS(x, layout) ((x) + BASE(layout) + (size_t)t0 * layout##_token)

/* The output kernels read `values` and write `out`: v into o, or with GLA_DV do (o's
 * layout) into dv (v's). The _OF forms expand IN_LAYOUT / OUT_LAYOUT before pasting. */
#ifdef GLA_DV
#define IN_LAYOUT o
#define OUT_LAYOUT v
#else
#define IN_LAYOUT v
#define OUT_LAYOUT o
#endif
#define CHUNK_ROWS_OF(x, layout) CHUNK_ROWS(x, layout)
#define TOKEN_OF_(layout) layout##_token
#define TOKEN_OF(layout) TOKEN_OF_(layout)

/* x[r, col0 + c] of the chunk (rows: CHUNK_ROWS) for `width` columns, zero for r >=
 * rows or col0 + c >= D, at tile[r * row_stride + c * column_stride] (column_stride 1:
 * rows; row_stride 1: the tile transposed). The items run along c: coalesced reads. */
static inline void load_tile(__local float *tile, int row_stride, int column_stride, int width,
                             __global const float *x, int token_stride, int rows, int col0,
                             int D) {
    for (int e = get_local_id(0); e < CHUNK * width; e += WG) {
        const int r = e / width, c = e % width, col = col0 + c;
        tile[r * row_stride + c * column_stride] =
            (r < rows && col < D) ? x[r * token_stride + col] : 0.0f;
    }
}

/* tile[r][c] = x[r, col0 + c] (row stride `pad`), zero outside the chunk's rows x D. */
static inline void load_rows(__local float *tile, int pad, int width, __global const float *x,
                             int token_stride, int rows, int col0, int D) {
    load_tile(tile, pad, 1, width, x, token_stride, rows, col0, D);
}

/* state[k0 + i][v0 + v] of one [K, V] state for the KT x VT tile, zero outside, at
 * tile[i * row_stride + v * column_stride]. */
static inline void load_state_tile(__local float *tile, int row_stride, int column_stride,
                                   __global const float *state, int k0, int v0) {
    for (int e = get_local_id(0); e < KT * VT; e += WG) {
        const int i = e / VT, v = e % VT;
        const int row = k0 + i, col = v0 + v;
        tile[i * row_stride + v * column_stride] =
            (row < K_DIM && col < V_DIM) ? state[(size_t)row * V_DIM + col] : 0.0f;
    }
}

/* Inclusive cumsum down the CHUNK rows of tile[C][KT] (row stride KPAD), in
 * place; reverse = 1 sums from the bottom (suffix sums). totals: [SEGMENTS, KT]. */
static inline void cumsum_rows(__local float *tile, __local float *totals, int reverse) {
    const int lid = get_local_id(0);
    const int col = lid % KT, segment = lid / KT;
    float sum = 0.0f;
    for (int r = 0; r < SEGMENT_ROWS; r++) {
        const int row = segment * SEGMENT_ROWS + r;
        const int at = (reverse ? CHUNK - 1 - row : row) * KPAD + col;
        sum += tile[at];
        tile[at] = sum;
    }
    totals[segment * KT + col] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    float offset = 0.0f;
    for (int s = 0; s < segment; s++)
        offset += totals[s * KT + col];
    for (int r = 0; r < SEGMENT_ROWS; r++) {
        const int row = segment * SEGMENT_ROWS + r;
        tile[(reverse ? CHUNK - 1 - row : row) * KPAD + col] += offset;
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

/* acc[4r + c] += sum_x left[x][r0 + r] right[x][c0 + c] for x in [from, to): a 4 x 4
 * register block of a product of two tiles read as float4 rows (strides multiples
 * of 4), each float4 pair feeding 16 FMAs (docs/GLA_DESIGN.md, "Register blocking"). */
static inline void outer_products_4x4(float *acc, __local const float *left, int left_pad, int r0,
                                      __local const float *right, int right_pad, int c0,
                                      int from, int to) {
    for (int x = from; x < to; x++) {
        const float4 l = *(__local const float4 *)(left + x * left_pad + r0);
        const float4 r = *(__local const float4 *)(right + x * right_pad + c0);
        acc[0] += l.x * r.x, acc[1] += l.x * r.y, acc[2] += l.x * r.z, acc[3] += l.x * r.w;
        acc[4] += l.y * r.x, acc[5] += l.y * r.y, acc[6] += l.y * r.z, acc[7] += l.y * r.w;
        acc[8] += l.z * r.x, acc[9] += l.z * r.y, acc[10] += l.z * r.z, acc[11] += l.z * r.w;
        acc[12] += l.w * r.x, acc[13] += l.w * r.y, acc[14] += l.w * r.z, acc[15] += l.w * r.w;
    }
}

/* ----------------------------------------------------------- chunk prepass */

#ifdef GLA_PREPASS
#define LPAD (KT + 4) /* [C, KT] tiles, float4 rows */
#define RPAD (VT + 4) /* [C, VT] tiles, float4 rows */
#define STATE_BLOCKS (KT / 4 * (VT / 4))

/* For each of `products` (1 or 2) pairs: out[i][v] = sum_j left[j][i] * right[j][v]
 * over the CHUNK rows for a [KT, VT] tile, written to one [K, V] state at (k0 + i,
 * v0 + v); every item takes 4 x 4 blocks. Both products share one loop: two
 * sequential products with barriers between them were miscompiled by PoCL 3.1. */
static inline void rows_outer_products(__local const float *left0, __local const float *right0,
                                       __global float *out0, __local const float *left1,
                                       __local const float *right1, __global float *out1,
                                       const int products, int k0, int v0) {
    for (int u = get_local_id(0); u < products * STATE_BLOCKS; u += WG) {
        const int second = u >= STATE_BLOCKS, block = u % STATE_BLOCKS;
        const int i0 = block / (VT / 4) * 4, c0 = block % (VT / 4) * 4;
        float acc[16];
        for (int r = 0; r < 16; r++) acc[r] = 0.0f;
        outer_products_4x4(acc, second ? left1 : left0, LPAD, i0, second ? right1 : right0, RPAD,
                           c0, 0, CHUNK);
        __global float *out = second ? out1 : out0;
        for (int r = 0; r < 16; r++) {
            const int i = k0 + i0 + r / 4, v = v0 + c0 + r % 4;
            if (i < K_DIM && v < V_DIM) out[(size_t)i * V_DIM + v] = acc[r];
        }
    }
}

/* One work-group per (K tile, V tile) x chunk x head. With GLA_STATES:
 * states[nh, c] = U_c = sum_j (k_j * exp(Gamma - b_j)) v_j^T, gammas[nh, c] =
 * exp(Gamma) (once per state row here, not per state element in the scan). With
 * GLA_STATE_GRADS: dstates[nh, c] = W_c = s sum_t (q_t * exp(b_t)) do_t^T. */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void gla_chunk_prepass(
    __global const float *q,  /* [N, T, H, K] strided */
    __global const float *k,  /* [N, T, H, K] strided */
    __global const float *g,  /* [N, T, H, K] strided */
    __global const float *v,  /* [N, T, H, V] strided */
    __global const float *do_, /* [N, T, H, V] strided */
    __global float *workspace, /* states [N*H, NT, K, V], gammas [N*H, NT, K], dstates */
    ulong gammas_offset, ulong dstates_offset, /* elements into workspace */
    int T, int H, LAYOUTS, float scale) {
    __global float *states = workspace, *gammas = workspace + gammas_offset;
    __global float *dstates = workspace + dstates_offset;
    __local float b[CHUNK * KPAD];      /* [C, KT] chunk-local cumsum of g */
#ifdef GLA_STATES
    __local float4 keys4[CHUNK * LPAD / 4];   /* [C, KT] k_j * exp(Gamma - b_j) */
    __local float4 values4[CHUNK * RPAD / 4]; /* [C, VT] v */
    __local float *keys = (__local float *)keys4, *values = (__local float *)values4;
#endif
#ifdef GLA_STATE_GRADS
    __local float4 queries4[CHUNK * LPAD / 4]; /* [C, KT] s q_t * exp(b_t) */
    __local float4 grads4[CHUNK * RPAD / 4];   /* [C, VT] do */
    __local float *queries = (__local float *)queries4, *grads = (__local float *)grads4;
#endif
    __local float totals[WG];
    const int v_tiles = (V_DIM + VT - 1) / VT;
    const int k0 = get_group_id(0) / v_tiles * KT, v0 = get_group_id(0) % v_tiles * VT;
    const int chunk = get_group_id(1), nh = get_group_id(2);
    const int NT = get_num_groups(1), t0 = chunk * CHUNK, lid = get_local_id(0);
    const size_t state = ((size_t)nh * NT + chunk) * K_DIM * V_DIM;
    const int rows = T - t0; /* tokens left from t0 (rows beyond CHUNK are not read) */
    load_rows(b, KPAD, KT, CHUNK_ROWS(g, g), g_token, rows, k0, K_DIM);
    barrier(CLK_LOCAL_MEM_FENCE);
    cumsum_rows(b, totals, 0);
#ifdef GLA_STATES
    load_rows(keys, LPAD, KT, CHUNK_ROWS(k, k), k_token, rows, k0, K_DIM);
    load_rows(values, RPAD, VT, CHUNK_ROWS(v, v), v_token, rows, v0, V_DIM);
#endif
#ifdef GLA_STATE_GRADS
    load_rows(queries, LPAD, KT, CHUNK_ROWS(q, q), q_token, rows, k0, K_DIM);
    load_rows(grads, RPAD, VT, CHUNK_ROWS(do_, o), o_token, rows, v0, V_DIM);
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < CHUNK * KT; e += WG) {
        const int r = e / KT, i = e % KT;
        const float gamma = b[(CHUNK - 1) * KPAD + i], cumsum = b[r * KPAD + i];
#ifdef GLA_STATES
        keys[r * LPAD + i] *= exp(gamma - cumsum);
#endif
#ifdef GLA_STATE_GRADS
        queries[r * LPAD + i] *= scale * exp(cumsum);
#endif
    }
#ifdef GLA_STATES
    if (v0 == 0 && lid < KT && k0 + lid < K_DIM)
        gammas[((size_t)nh * NT + chunk) * K_DIM + k0 + lid] = exp(b[(CHUNK - 1) * KPAD + lid]);
#endif
    barrier(CLK_LOCAL_MEM_FENCE);
#if defined(GLA_STATES) && defined(GLA_STATE_GRADS)
    rows_outer_products(keys, values, states + state, queries, grads, dstates + state, 2, k0, v0);
#elif defined(GLA_STATES)
    rows_outer_products(keys, values, states + state, keys, values, states + state, 1, k0, v0);
#else
    rows_outer_products(queries, grads, dstates + state, queries, grads, dstates + state, 1, k0,
                        v0);
#endif
}

#endif

/* -------------------------------------------------------------- state scan */
#ifdef GLA_SCAN

/* Chunks whose loads are issued together: the chain is latency-bound (one batch of
 * loads per SCAN_BATCH chunks), so larger batches matter at long T with few heads; a
 * batch beyond the chunk count only costs registers and occupancy, so the host passes
 * SCAN_BATCH_AUTO = the chunk count rounded up to 8, 16 or 32 (docs/GLA_DESIGN.md,
 * "Measured"). -DSCAN_BATCH=n overrides it (benchmarks). */
#ifndef SCAN_BATCH
#ifdef SCAN_BATCH_AUTO
#define SCAN_BATCH SCAN_BATCH_AUTO
#else
#define SCAN_BATCH 32
#endif
#endif

/* Direction 0: H = h0; for each chunk c: states[c] holds U_c, becomes H_c,
 * H = exp(Gamma_c) H + U_c; hT = H. Direction 1: D = dhT; for c from the last:
 * dstates[c] holds W_c, becomes D_c, D = exp(Gamma_c) D + W_c; dh0 = D.
 * One work-item per state element (i, v) of one head; global (K*V, N*H, dirs). */
__kernel void gla_state_scan(__global float *workspace, /* states, gammas, dstates */
                             ulong gammas_offset, ulong dstates_offset,
                             __global const float *initial, /* [N*H, K, V] h0 (if has_h0) */
                             __global float *final_state,   /* [N*H, K, V] hT (if has_hT) */
                             __global const float *final_grad, /* [N*H, K, V] dhT (if has_dhT) */
                             __global float *initial_grad,  /* [N*H, K, V] dh0 (if has_dh0) */
                             int NT, int first_direction, int has_h0, int has_hT, int has_dhT,
                             int has_dh0) {
    const int element = get_global_id(0), nh = get_global_id(1);
    const int direction = first_direction + (int)get_global_id(2);
    if (element >= K_DIM * V_DIM) return;
    __global float *states = workspace, *dstates = workspace + dstates_offset;
    __global const float *gammas = workspace + gammas_offset;
    const size_t KV = (size_t)K_DIM * V_DIM;
    const int i = element / V_DIM;
    __global float *slots = direction == 0 ? states : dstates;
    __global const float *gamma = gammas + (size_t)nh * NT * K_DIM + i;
    const int reverse = direction == 1;
    const int has_start = reverse ? has_dhT : has_h0;
    __global const float *start = reverse ? final_grad : initial;
    float carry = has_start ? start[nh * KV + element] : 0.0f;
    for (int c0 = 0; c0 < NT; c0 += SCAN_BATCH) {
        float contribution[SCAN_BATCH], decay[SCAN_BATCH];
#pragma unroll
        for (int r = 0; r < SCAN_BATCH; r++) {
            const int step = c0 + r, c = reverse ? NT - 1 - step : step;
            const size_t at = ((size_t)nh * NT + c) * KV + element;
            contribution[r] = step < NT ? slots[at] : 0.0f;
            decay[r] = step < NT ? gamma[(size_t)c * K_DIM] : 1.0f;
        }
#pragma unroll
        for (int r = 0; r < SCAN_BATCH; r++) { /* constant trip count: registers, not stack */
            const int step = c0 + r, c = reverse ? NT - 1 - step : step;
            if (step < NT) slots[((size_t)nh * NT + c) * KV + element] = carry;
            carry = decay[r] * carry + contribution[r];
        }
    }
    const int has_end = reverse ? has_dh0 : has_hT;
    __global float *end = reverse ? initial_grad : final_state;
    if (has_end) end[nh * KV + element] = carry;
}

/* gla_state_scan for CPU devices: one work-item per state row i of one head
 * and direction, the V elements of the row carried in a private array (the
 * loops over V vectorise). Global (K, N*H, dirs), work-group (1, 1, 1). */
__kernel void gla_state_scan_serial(__global float *workspace, ulong gammas_offset,
                                    ulong dstates_offset, __global const float *initial,
                                    __global float *final_state, __global const float *final_grad,
                                    __global float *initial_grad, int NT, int first_direction,
                                    int has_h0, int has_hT, int has_dhT, int has_dh0) {
    const int i = get_global_id(0), nh = get_global_id(1);
    const int reverse = first_direction + (int)get_global_id(2) == 1;
    if (i >= K_DIM) return;
    const size_t KV = (size_t)K_DIM * V_DIM, row = (size_t)nh * KV + (size_t)i * V_DIM;
    __global float *slots = reverse ? workspace + dstates_offset : workspace;
    __global const float *gamma = workspace + gammas_offset + (size_t)nh * NT * K_DIM + i;
    __global const float *start = reverse ? final_grad : initial;
    const int has_start = reverse ? has_dhT : has_h0;
    float carry[V_DIM]; /* [V] H (or D) row i */
    for (int c = 0; c < V_DIM; c++) carry[c] = has_start ? start[row + c] : 0.0f;
    for (int step = 0; step < NT; step++) {
        const int chunk = reverse ? NT - 1 - step : step;
        __global float *slot = slots + ((size_t)nh * NT + chunk) * KV + (size_t)i * V_DIM;
        const float decay = gamma[(size_t)chunk * K_DIM];
        for (int c = 0; c < V_DIM; c++) {
            const float contribution = slot[c];
            slot[c] = carry[c];
            carry[c] = decay * carry[c] + contribution;
        }
    }
    __global float *end = reverse ? initial_grad : final_state;
    if (reverse ? has_dh0 : has_hT)
        for (int c = 0; c < V_DIM; c++) end[row + c] = carry[c];
}
#endif

/* ---------------------------------------------------- intra-chunk scores A */

/* The 6 sub-chunk pairs p below the diagonal: (I, J) = (1,0) (2,0) (2,1) (3,0) (3,1) (3,2). */
static inline int pair_query(int p) { return p < 1 ? 1 : p < 3 ? 2 : 3; }
static inline int pair_key(int p) { return p - (p < 1 ? 0 : p < 3 ? 1 : 3); }
/* The pair index of (I, J), I > J. */
static inline int pair_of(int I, int J) { return I * (I - 1) / 2 + J; }

/* (row, column <= row) of entry r of a lower triangle enumerated row by row. */
static inline int2 triangle_entry(int r) {
    int row = 0;
    while (r > row) r -= ++row;
    return (int2)(row, r);
}

/* bridge[p][i] = exp(b_firstI[i] - b_lastJ[i]) for the pairs p = (I, J): the decay
 * between two sub-chunks, <= 1. b: [C, KT] cumsum (stride KPAD); bridge: [6, KT]. */
static inline void sub_chunk_bridges(__local float *bridge, __local const float *b) {
    for (int e = get_local_id(0); e < 6 * KT; e += WG) {
        const int p = e / KT, i = e % KT;
        const int first = pair_query(p) * SUB, last = pair_key(p) * SUB + SUB - 1;
        bridge[e] = exp(b[first * KPAD + i] - b[last * KPAD + i]);
    }
}

/* ------------------------------------------------------ output, or dv */

#ifdef GLA_OUTPUT
/* Forward: o_t = s (q_t * exp(b_t))^T H_n + sum_{j<=t} A_tj v_j.
 * With -DGLA_DV: dv_j = (k_j * exp(Gamma - b_j))^T D_n + sum_{t>=j} A_tj do_t.
 * One work-group per V tile x chunk x head, register-blocked (docs/GLA_DESIGN.md,
 * "Register blocking"): every item owns a 4 x 4 block of the [C, VT] output and,
 * for the intra-chunk scores A, a 4 x 2 block below the diagonal sub-blocks and
 * up to DIAG_PER_ITEM entries of the diagonal sub-blocks; each float4 read from
 * local memory feeds eight FMAs (16 per pair of operand reads; 8 per float4 + float2
 * in the scores). Off-diagonal blocks (query sub-chunk I, key
 * sub-chunk J < I) factor exp(b_t - b_j) as exp(b_t - b_firstI) exp(b_firstI -
 * b_lastJ) exp(b_lastJ - b_j), each factor <= 1; diagonal blocks take it per element. */
#define CPAD (CHUNK + 4)         /* row stride of the [KT, C] transposed tiles */
#define OUT_TILES (CHUNK / 4 * (VT / 4))
#define TRI (SUB * (SUB + 1) / 2) /* entries j <= t of one diagonal sub-block */
#define DIAG_PER_ITEM ((NS * TRI + WG - 1) / WG)
#define PAIR_UNITS (SUB * SUB / 8) /* 4 x 2 units of one off-diagonal sub-block */
#define OFF_UNITS (6 * PAIR_UNITS)
#ifdef GLA_DV
#define SCORE_AT(t, j) ((t) * CPAD + (j)) /* P[t][j] = A_tj: rows of the key block */
#else
#define SCORE_AT(t, j) ((j) * CPAD + (t)) /* P[j][t] = A_tj: rows of the query block */
#endif

/* First query row t0 and key j0 of off-diagonal unit u (4 rows x 2 keys of pair u / PAIR_UNITS). */
static inline int unit_query(int u) {
    return pair_query(u / PAIR_UNITS) * SUB + u % PAIR_UNITS / (SUB / 2) * 4;
}
static inline int unit_key(int u) {
    return pair_key(u / PAIR_UNITS) * SUB + u % PAIR_UNITS % (SUB / 2) * 2;
}

/* Row t and key j <= t of diagonal entry e (sub-block e / TRI, row-major triangle). */
static inline int2 diagonal_entry(int e) { return e / TRI * SUB + triangle_entry(e % TRI); }

/* One K tile's factors from the raw q, k and the cumsum b ([C, KT], stride KPAD):
 *   qs[i][t]     = q_t[i] exp(b_t[i] - b_first(t)[i])       (first row of t's sub-chunk)
 *   ke[i][j]     = k_j[i] exp(b_last(j)[i] - b_j[i])        (last row of j's sub-chunk)
 *   coef[i][t]   = s q_t[i] exp(b_t[i]), or k_t[i] exp(Gamma[i] - b_t[i]) for dv
 * and the sub-chunk bridges (sub_chunk_bridges).                                    */
static inline void chunk_factors(__local float *qs, __local float *ke, __local float *coef,
                                 __local float *bridge, __local const float *q,
                                 __local const float *k, __local const float *b, float scale) {
    for (int e = get_local_id(0); e < CHUNK * KT; e += WG) {
        const int i = e / CHUNK, t = e % CHUNK, first = t / SUB * SUB;
        const float bt = b[t * KPAD + i];
        qs[i * CPAD + t] = q[t * KPAD + i] * exp(bt - b[first * KPAD + i]);
        ke[i * CPAD + t] = k[t * KPAD + i] * exp(b[(first + SUB - 1) * KPAD + i] - bt);
#ifdef GLA_DV
        coef[i * CPAD + t] = k[t * KPAD + i] * exp(b[(CHUNK - 1) * KPAD + i] - bt);
#else
        coef[i * CPAD + t] = scale * q[t * KPAD + i] * exp(bt);
#endif
    }
    sub_chunk_bridges(bridge, b);
}

/* acc[2r + c] += sum_i qs[i][t0 + r] bridge[p][i] ke[i][j0 + c] over this K tile. */
static inline void offdiagonal_scores(float *acc, int u, __local const float *qs,
                                      __local const float *ke, __local const float *bridge) {
    const int t0 = unit_query(u), j0 = unit_key(u);
    __local const float *pair = bridge + u / PAIR_UNITS * KT;
    for (int i = 0; i < KT; i++) {
        const float4 query = *(__local const float4 *)(qs + i * CPAD + t0);
        const float2 key = *(__local const float2 *)(ke + i * CPAD + j0) * pair[i];
        acc[0] += query.x * key.x, acc[1] += query.x * key.y;
        acc[2] += query.y * key.x, acc[3] += query.y * key.y;
        acc[4] += query.z * key.x, acc[5] += query.z * key.y;
        acc[6] += query.w * key.x, acc[7] += query.w * key.y;
    }
}

/* sum_i q_t[i] k_j[i] exp(b_t[i] - b_j[i]) over this K tile, j <= t in one sub-chunk. */
static inline float diagonal_score(int2 tj, __local const float *q, __local const float *k,
                                   __local const float *b) {
    float sum = 0.0f;
    for (int i = 0; i < KT; i++)
        sum += q[tj.x * KPAD + i] * k[tj.y * KPAD + i] *
               exp(b[tj.x * KPAD + i] - b[tj.y * KPAD + i]);
    return sum;
}

/* The scaled scores into P (SCORE_AT), zero above the diagonal. */
static inline void store_scores(__local float *scores, const float *offdiag, const float *diag,
                                float scale) {
    const int lid = get_local_id(0);
    for (int e = lid; e < CHUNK * CHUNK; e += WG) {
        const int t = e / CHUNK, j = e % CHUNK;
        if (j > t) scores[SCORE_AT(t, j)] = 0.0f;
    }
    if (lid < OFF_UNITS)
        for (int r = 0; r < 8; r++)
            scores[SCORE_AT(unit_query(lid) + r / 2, unit_key(lid) + r % 2)] = scale * offdiag[r];
    for (int d = 0; d < DIAG_PER_ITEM; d++) {
        const int e = WG - 1 - lid + d * WG;
        if (e < NS * TRI) {
            const int2 tj = diagonal_entry(e);
            scores[SCORE_AT(tj.x, tj.y)] = scale * diag[d];
        }
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void gla_chunk_output(
    __global const float *q,      /* [N, T, H, K] strided */
    __global const float *k,      /* [N, T, H, K] strided */
    __global const float *g,      /* [N, T, H, K] strided */
    __global const float *values, /* [N, T, H, V] strided: v, or do for dv */
    __global const float *workspace, /* states H_n, or D_n for dv, at states_offset */
    ulong states_offset,
    __global float *out,          /* [N, T, H, V] strided: o, or dv */
    int T, int H, LAYOUTS, float scale) {
#define RAW (3 * CHUNK * KPAD)                   /* q, k, b: [C, KT] */
#define TILES_K (RAW + 3 * KT * CPAD + 8 * KT + KT * VT) /* + qs, ke, coef, bridge, state */
#define TILES_V (CHUNK * CPAD + CHUNK * VT)              /* P [C, C], values [C, VT] */
    __local float4 scratch4[((TILES_K > TILES_V ? TILES_K : TILES_V) + 3) / 4];
    __local float totals[WG];
    __local float *scratch = (__local float *)scratch4;
    /* float4-read tiles first: every offset is a multiple of 4 floats */
    __local float *qs = scratch, *ke = qs + KT * CPAD, *coef = ke + KT * CPAD;
    __local float *state_tile = coef + KT * CPAD, *bridge = state_tile + KT * VT;
    __local float *qt = bridge + 8 * KT, *kt = qt + CHUNK * KPAD, *bt = kt + CHUNK * KPAD;
    __local float *scores = scratch, *value_tile = scratch + CHUNK * CPAD;
    const int v0 = get_group_id(0) * VT, chunk = get_group_id(1), nh = get_group_id(2);
    const int NT = get_num_groups(1), t0 = chunk * CHUNK, lid = get_local_id(0);
    const int y0 = lid / (VT / 4) * 4, c0 = lid % (VT / 4) * 4; /* output block */
    const int rows = T - t0; /* tokens left from t0 */
    __global const float *q_rows = CHUNK_ROWS(q, q), *k_rows = CHUNK_ROWS(k, k);
    __global const float *g_rows = CHUNK_ROWS(g, g);
    __global const float *in_rows = CHUNK_ROWS_OF(values, IN_LAYOUT);
    __global float *out_rows = CHUNK_ROWS_OF(out, OUT_LAYOUT);
    const int in_token = TOKEN_OF(IN_LAYOUT), out_token = TOKEN_OF(OUT_LAYOUT);
    __global const float *state =
        workspace + states_offset + ((size_t)nh * NT + chunk) * K_DIM * V_DIM; /* [K, V] */
    float offdiag[8], diag[DIAG_PER_ITEM], result[16];
    for (int r = 0; r < 8; r++) offdiag[r] = 0.0f;
    for (int d = 0; d < DIAG_PER_ITEM; d++) diag[d] = 0.0f;
    for (int r = 0; r < 16; r++) result[r] = 0.0f;
    for (int k0 = 0; k0 < K_DIM; k0 += KT) {
        load_rows(qt, KPAD, KT, q_rows, q_token, rows, k0, K_DIM);
        load_rows(kt, KPAD, KT, k_rows, k_token, rows, k0, K_DIM);
        load_rows(bt, KPAD, KT, g_rows, g_token, rows, k0, K_DIM);
        load_state_tile(state_tile, VT, 1, state, k0, v0);
        barrier(CLK_LOCAL_MEM_FENCE);
        cumsum_rows(bt, totals, 0);
        chunk_factors(qs, ke, coef, bridge, qt, kt, bt, scale);
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lid < OFF_UNITS) offdiagonal_scores(offdiag, lid, qs, ke, bridge);
        for (int d = 0; d < DIAG_PER_ITEM; d++) {
            const int e = WG - 1 - lid + d * WG; /* from the last item: spread the load */
            if (e < NS * TRI) diag[d] += diagonal_score(diagonal_entry(e), qt, kt, bt);
        }
        if (lid < OUT_TILES) outer_products_4x4(result, coef, CPAD, y0, state_tile, VT, c0, 0, KT);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    store_scores(scores, offdiag, diag, scale);
    load_rows(value_tile, VT, VT, in_rows, in_token, rows, v0, V_DIM);
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lid >= OUT_TILES) return;
#ifdef GLA_DV
    outer_products_4x4(result, scores, CPAD, y0, value_tile, VT, c0, y0, CHUNK); /* t >= key */
#else
    outer_products_4x4(result, scores, CPAD, y0, value_tile, VT, c0, 0, y0 + 4); /* j <= t */
#endif
    for (int r = 0; r < 16; r++) {
        const int row = y0 + r / 4, column = v0 + c0 + r % 4;
        if (row < rows && column < V_DIM) out_rows[row * out_token + column] = result[r];
    }
#undef RAW
#undef TILES_K
#undef TILES_V
}
#endif


/* -------------------------------------------------------- dq, dk, dg */

#ifdef GLA_GRAD_QK
/* One work-group per K tile x chunk x head: dq, dk and the chunk-local dg,
 * register-blocked (docs/GLA_DESIGN.md, "Register blocking"). Phase 1, over V
 * tiles held transposed ([VT, rows], float4 along rows): items own 4 x 4 blocks
 * of dA = do v^T (lower triangle) or of H_n do_t and D_n v_t together. Phase 2:
 * half the items own a 4 x 4 (t, i) block of dq, half one of dk; the off-diagonal
 * sub-blocks factor the decay as the output kernel does (qs, ke, bridge), the
 * diagonal ones take exp(b_t - b_j) per element. */
#define TPAD (CHUNK + 4)                  /* [VT, C] transposed do, v; dA [C, C] */
#define SPAD (KT + 4)                     /* [VT, KT] transposed H, D; qs, ke [C, KT] */
#define QK_BLOCKS (CHUNK / 4 * (KT / 4))  /* 4 x 4 blocks of a [C, KT] tile */
#define DA_BLOCKS (CHUNK / 4 * (CHUNK / 4 + 1) / 2)
#if QK_BLOCKS + DA_BLOCKS > WG || 2 * QK_BLOCKS > WG
#error "gla_chunk_grad_qk: K tile too wide for the work-group's blocks"
#endif

/* qs[t][i] = q_t[i] exp(b_t[i] - b_first(t)[i]), ke[j][i] = k_j[i] exp(b_last(j)[i] - b_j[i])
 * ([C, KT], stride SPAD), and the sub-chunk bridges. */
static inline void grad_factors(__local float *qs, __local float *ke, __local float *bridge,
                                __local const float *q, __local const float *k,
                                __local const float *b) {
    for (int e = get_local_id(0); e < CHUNK * KT; e += WG) {
        const int t = e / KT, i = e % KT, first = t / SUB * SUB;
        const float bt = b[t * KPAD + i];
        qs[t * SPAD + i] = q[t * KPAD + i] * exp(bt - b[first * KPAD + i]);
        ke[t * SPAD + i] = k[t * KPAD + i] * exp(b[(first + SUB - 1) * KPAD + i] - bt);
    }
    sub_chunk_bridges(bridge, b);
}

/* out[0..3] = the lanes of v (vector lanes are not indexed at run time). */
static inline void unpack4(float *out, float4 v) {
    out[0] = v.x, out[1] = v.y, out[2] = v.z, out[3] = v.w;
}

/* acc[r] += bridge[pair][i0 + r % 4] * block[r] for the 4 x 4 block. */
static inline void add_bridged(float *acc, const float *block, __local const float *bridge,
                               int pair, int i0) {
    float bridges[4];
    unpack4(bridges, *(__local const float4 *)(bridge + pair * KT + i0));
#pragma unroll
    for (int r = 0; r < 16; r++) acc[r] += bridges[r % 4] * block[r];
}

/* The intra-chunk dq of rows t0..t0+3, columns i0..i0+3, without the self term:
 * sum_{j<t} dA_tj k_j[i] exp(b_t[i] - b_j[i]). scores: dA [C, C] (stride TPAD). */
static inline void query_grads_intra(float *acc, int t0, int i0, __local const float *scores,
                                     __local const float *ke, __local const float *bridge,
                                     __local const float *k, __local const float *b) {
    const int I = t0 / SUB;
    for (int J = 0; J < I; J++) { /* sum_j dA_tj ke_j, then the bridge per column */
        float block[16];
#pragma unroll
        for (int r = 0; r < 16; r++) block[r] = 0.0f;
        for (int j = J * SUB; j < J * SUB + SUB; j += 4) {
            float a[4][4], key[4][4]; /* dA[t0 + r][j + m], ke[j + m][i0 + c] */
#pragma unroll
            for (int m = 0; m < 4; m++) {
                unpack4(a[m], *(__local const float4 *)(scores + (t0 + m) * TPAD + j));
                unpack4(key[m], *(__local const float4 *)(ke + (j + m) * SPAD + i0));
            }
#pragma unroll
            for (int r = 0; r < 16; r++)
                block[r] += a[r / 4][0] * key[0][r % 4] + a[r / 4][1] * key[1][r % 4] +
                            a[r / 4][2] * key[2][r % 4] + a[r / 4][3] * key[3][r % 4];
        }
        add_bridged(acc, block, bridge, pair_of(I, J), i0);
    }
    float bt[16]; /* b_t[i] of the block */
#pragma unroll
    for (int r = 0; r < 16; r++) { /* exp(b_t - b_firstI) */
        bt[r] = b[(t0 + r / 4) * KPAD + i0 + r % 4];
        acc[r] *= exp(bt[r] - b[I * SUB * KPAD + i0 + r % 4]);
    }
    for (int j = I * SUB; j < t0 + 3; j++) { /* the diagonal sub-block, keys j < t */
        float key[4], bj[4], a[4];
#pragma unroll
        for (int c = 0; c < 4; c++) {
            key[c] = k[j * KPAD + i0 + c], bj[c] = b[j * KPAD + i0 + c];
            a[c] = scores[(t0 + c) * TPAD + j];
        }
#pragma unroll
        for (int r = 0; r < 16; r++)
            if (j < t0 + r / 4) acc[r] += a[r / 4] * key[r % 4] * exp(bt[r] - bj[r % 4]);
    }
}

/* The intra-chunk dk of keys j0..j0+3, columns i0..i0+3, without the self term:
 * sum_{t>j} dA_tj q_t[i] exp(b_t[i] - b_j[i]). */
static inline void key_grads_intra(float *acc, int j0, int i0, __local const float *scores,
                                   __local const float *qs, __local const float *bridge,
                                   __local const float *q, __local const float *b) {
    const int J = j0 / SUB;
    for (int I = J + 1; I < NS; I++) { /* sum_t dA_tj qs_t, then the bridge per column */
        float block[16];
#pragma unroll
        for (int r = 0; r < 16; r++) block[r] = 0.0f;
        for (int t = I * SUB; t < I * SUB + SUB; t++) {
            float a[4], query[4]; /* dA[t][j0 + r], qs[t][i0 + c] */
            unpack4(a, *(__local const float4 *)(scores + t * TPAD + j0));
            unpack4(query, *(__local const float4 *)(qs + t * SPAD + i0));
#pragma unroll
            for (int r = 0; r < 16; r++) block[r] += a[r / 4] * query[r % 4];
        }
        add_bridged(acc, block, bridge, pair_of(I, J), i0);
    }
    float bj[16]; /* b_j[i] of the block */
#pragma unroll
    for (int r = 0; r < 16; r++) { /* exp(b_lastJ - b_j) */
        bj[r] = b[(j0 + r / 4) * KPAD + i0 + r % 4];
        acc[r] *= exp(b[(J * SUB + SUB - 1) * KPAD + i0 + r % 4] - bj[r]);
    }
    for (int t = j0 + 1; t < J * SUB + SUB; t++) { /* the diagonal sub-block, rows t > j */
        float query[4], bt[4], a[4];
        unpack4(a, *(__local const float4 *)(scores + t * TPAD + j0));
#pragma unroll
        for (int c = 0; c < 4; c++) query[c] = q[t * KPAD + i0 + c], bt[c] = b[t * KPAD + i0 + c];
#pragma unroll
        for (int r = 0; r < 16; r++)
            if (t > j0 + r / 4) acc[r] += a[r / 4] * query[r % 4] * exp(bt[r % 4] - bj[r]);
    }
}

__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void gla_chunk_grad_qk(
    __global const float *q,       /* [N, T, H, K] strided */
    __global const float *k,       /* [N, T, H, K] strided */
    __global const float *g,       /* [N, T, H, K] strided */
    __global const float *v,       /* [N, T, H, V] strided */
    __global const float *do_,     /* [N, T, H, V] strided */
    __global const float *workspace, /* H_n [N*H, NT, K, V] at 0, D_n at dstates_offset */
    ulong dstates_offset,
    __global float *dq,            /* [N, T, H, K] strided */
    __global float *dk,            /* [N, T, H, K] strided */
    __global float *dg,            /* [N, T, H, K] strided */
    int T, int H, LAYOUTS, float scale) {
#define PASS_V (2 * VT * TPAD + 2 * VT * SPAD)
#define PASS_K (CHUNK * TPAD + 2 * CHUNK * SPAD + 8 * KT + 6 * CHUNK * KPAD)
    __local float4 scratch4[((PASS_V > PASS_K ? PASS_V : PASS_K) + 3) / 4];
    __local float totals[WG];
    __local float column_terms[KT]; /* exp(Gamma) rowsum(H_n * D_n) */
    __local float *scratch = (__local float *)scratch4;
    const int k0 = get_group_id(0) * KT, chunk = get_group_id(1), nh = get_group_id(2);
    const int NT = get_num_groups(1), t0 = chunk * CHUNK, lid = get_local_id(0);
    const int rows = T - t0; /* tokens left from t0 */
    __global const float *q_rows = CHUNK_ROWS(q, q), *k_rows = CHUNK_ROWS(k, k);
    __global const float *g_rows = CHUNK_ROWS(g, g);
    const size_t state_at = ((size_t)nh * NT + chunk) * K_DIM * V_DIM;
    /* Phase 1: the item's block of [C, KT] (H_n do, D_n v) or of dA [C, C] */
    const int qk_item = lid < QK_BLOCKS, da_item = !qk_item && lid < QK_BLOCKS + DA_BLOCKS;
    const int2 da_block = 4 * triangle_entry(lid - QK_BLOCKS);
    const int r0 = qk_item ? lid / (KT / 4) * 4 : da_block.x;
    const int c0 = qk_item ? lid % (KT / 4) * 4 : da_block.y;
    float first[16], second[16], state_dot = 0.0f; /* H do or dA; D v */
#pragma unroll
    for (int r = 0; r < 16; r++) first[r] = second[r] = 0.0f;
    {
        __local float *do_tile = scratch, *v_tile = do_tile + VT * TPAD;  /* [VT, C] */
        __local float *state_tile = v_tile + VT * TPAD, *dstate_tile = state_tile + VT * SPAD;
        for (int v0 = 0; v0 < V_DIM; v0 += VT) {
            load_tile(do_tile, 1, TPAD, VT, CHUNK_ROWS(do_, o), o_token, rows, v0, V_DIM);
            load_tile(v_tile, 1, TPAD, VT, CHUNK_ROWS(v, v), v_token, rows, v0, V_DIM);
            load_state_tile(state_tile, 1, SPAD, workspace + state_at, k0, v0);
            load_state_tile(dstate_tile, 1, SPAD, workspace + dstates_offset + state_at, k0, v0);
            barrier(CLK_LOCAL_MEM_FENCE);
            if (qk_item) {
                outer_products_4x4(first, do_tile, TPAD, r0, state_tile, SPAD, c0, 0, VT);
                outer_products_4x4(second, v_tile, TPAD, r0, dstate_tile, SPAD, c0, 0, VT);
            } else if (da_item) {
                outer_products_4x4(first, do_tile, TPAD, r0, v_tile, TPAD, c0, 0, VT);
            }
            if (lid < KT)
                for (int c = 0; c < VT; c++)
                    state_dot += state_tile[c * SPAD + lid] * dstate_tile[c * SPAD + lid];
            barrier(CLK_LOCAL_MEM_FENCE);
        }
    }
    /* Phase 2 tiles: float4-read ones first (offsets multiples of 4 floats) */
    __local float *scores = scratch, *qs = scores + CHUNK * TPAD, *ke = qs + CHUNK * SPAD;
    __local float *bridge = ke + CHUNK * SPAD, *qt = bridge + 8 * KT;
    __local float *kt = qt + CHUNK * KPAD, *bt = kt + CHUNK * KPAD;
    __local float *state_do = bt + CHUNK * KPAD, *dstate_v = state_do + CHUNK * KPAD;
    __local float *inter = dstate_v + CHUNK * KPAD; /* [C, KT] each, stride KPAD */
    for (int e = lid; e < CHUNK * CHUNK; e += WG)
        if (e % CHUNK > e / CHUNK) scores[e / CHUNK * TPAD + e % CHUNK] = 0.0f;
#pragma unroll
    for (int r = 0; r < 16; r++) {
        const int row = r0 + r / 4, column = c0 + r % 4;
        if (qk_item) {
            state_do[row * KPAD + column] = first[r];
            dstate_v[row * KPAD + column] = second[r];
        } else if (da_item && column <= row) {
            scores[row * TPAD + column] = scale * first[r];
        }
    }
    load_rows(qt, KPAD, KT, q_rows, q_token, rows, k0, K_DIM);
    load_rows(kt, KPAD, KT, k_rows, k_token, rows, k0, K_DIM);
    load_rows(bt, KPAD, KT, g_rows, g_token, rows, k0, K_DIM);
    barrier(CLK_LOCAL_MEM_FENCE);
    cumsum_rows(bt, totals, 0);
    grad_factors(qs, ke, bridge, qt, kt, bt);
    if (lid < KT) column_terms[lid] = exp(bt[(CHUNK - 1) * KPAD + lid]) * state_dot;
    barrier(CLK_LOCAL_MEM_FENCE);
    /* dq items: lid < QK_BLOCKS; dk items: the next QK_BLOCKS. Both keep the
     * self terms dA_tt k_t, dA_tt q_t out of the gate terms: they cancel exactly
     * in q dq - k dk (g = -20: dg ~ e^-20 q dq). */
    const int unit = lid % QK_BLOCKS, y0 = unit / (KT / 4) * 4, i0 = unit % (KT / 4) * 4;
    const int dq_item = lid < QK_BLOCKS, dk_item = !dq_item && lid < 2 * QK_BLOCKS;
    float grad[16];
#pragma unroll
    for (int r = 0; r < 16; r++) grad[r] = 0.0f;
    if (dq_item) query_grads_intra(grad, y0, i0, scores, ke, bridge, kt, bt);
    if (dk_item) key_grads_intra(grad, y0, i0, scores, qs, bridge, qt, bt);
#pragma unroll
    for (int r = 0; r < 16; r++) {
        if (!dq_item && !dk_item) break;
        const int row = y0 + r / 4, i = i0 + r % 4, at = row * KPAD + i;
        const float bq = bt[at], self = scores[row * TPAD + row];
        const float query = qt[at], key = kt[at];
        float value;
        if (dq_item) {
            const float query_grad = scale * exp(bq) * state_do[at] + grad[r];
            state_do[at] = query * query_grad; /* + gate term */
            value = query_grad + self * key;
        } else {
            const float key_inter = exp(bt[(CHUNK - 1) * KPAD + i] - bq) * dstate_v[at];
            dstate_v[at] = key * grad[r]; /* - gate term */
            /* dg_t gets -k_u dk_inter_u for u >= t and +k_u dk_inter_u for all u:
             * only the exclusive prefix u < t is summed, so nothing cancels */
            if (row + 1 < CHUNK) inter[at + KPAD] = key * key_inter;
            if (row == 0) inter[i] = 0.0f;
            value = key_inter + grad[r] + self * query;
        }
        if (row < rows && k0 + i < K_DIM) {
            if (dq_item) CHUNK_ROWS(dq, q)[row * q_token + k0 + i] = value;
            else CHUNK_ROWS(dk, k)[row * k_token + k0 + i] = value;
        }
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int e = lid; e < CHUNK * KT; e += WG) {
        const int at = e / KT * KPAD + e % KT;
        state_do[at] -= dstate_v[at]; /* the gate terms q dq' - k dk'_intra */
    }
    barrier(CLK_LOCAL_MEM_FENCE);
    cumsum_rows(state_do, totals, 1); /* suffix sums of the gate terms */
    cumsum_rows(inter, totals, 0);    /* exclusive prefix sums of k dk_inter */
    for (int e = lid; e < CHUNK * KT; e += WG) {
        const int row = e / KT, i = e % KT, at = row * KPAD + i;
        if (row < rows && k0 + i < K_DIM)
            CHUNK_ROWS(dg, g)[row * g_token + k0 + i] = state_do[at] + column_terms[i] + inter[at];
    }
#undef PASS_V
#undef PASS_K
}
#endif

/* ------------------------------------------ serial kernels (CPU devices) */

#if defined(GLA_PREPASS_SERIAL) || defined(GLA_OUTPUT_SERIAL) || defined(GLA_GRAD_QK_SERIAL)
/* b[t][i] = inclusive cumsum of g over the chunk's `rows` rows. */
static inline void chunk_cumsum(float b[CHUNK][K_DIM], __global const float *gc, int token,
                                int rows) {
    float running[K_DIM];
    for (int i = 0; i < K_DIM; i++) running[i] = 0.0f;
    for (int t = 0; t < rows; t++)
        for (int i = 0; i < K_DIM; i++) {
            running[i] += gc[(size_t)t * token + i];
            b[t][i] = running[i];
        }
}

/* out[i][c] = sum_t left[t][i] * x_t[c] over the chunk's rows, for one [K, V] state.
 * The [V] accumulator loops of the serial kernels are unrolled (V_DIM is a
 * compile-time constant) so that the accumulator lives in vector registers:
 * rolled, PoCL's LLVM keeps it on the stack (a load and a store per FMA). */
static inline void rows_outer_product(__global float *out, float left[CHUNK][K_DIM],
                                      __global const float *x, int token, int rows) {
    for (int i = 0; i < K_DIM; i++) {
        float acc[V_DIM];
#pragma unroll
        for (int c = 0; c < V_DIM; c++) acc[c] = 0.0f;
        for (int t = 0; t < rows; t++) {
            const float a = left[t][i];
#pragma unroll
            for (int c = 0; c < V_DIM; c++) acc[c] += a * x[(size_t)t * token + c];
        }
#pragma unroll
        for (int c = 0; c < V_DIM; c++) out[i * V_DIM + c] = acc[c];
    }
}
#endif

/* ------------------------------------------- dq, dk, dg on CPU devices */

#ifdef GLA_GRAD_QK_SERIAL
/* The same dq, dk, dg as gla_chunk_grad_qk (same terms, same self-term
 * handling), for CPU devices: one work-item per chunk x head, no local
 * memory and no barriers, so PoCL compiles it optimised and needs no
 * work-item loops (the work-group kernel is built with -cl-opt-disable there,
 * see src/ops/gla.c). Every pair j < t takes exp(b_t - b_j) elementwise
 * (argument <= 0) once, for both dq_t and dk_j. Loops over i innermost so that
 * the compiler vectorises them. Global (NT, N*H), work-group (1, 1). */
__kernel void gla_chunk_grad_qk_serial(
    __global const float *q,       /* [N, T, H, K] strided */
    __global const float *k,       /* [N, T, H, K] strided */
    __global const float *g,       /* [N, T, H, K] strided */
    __global const float *v,       /* [N, T, H, V] strided */
    __global const float *do_,     /* [N, T, H, V] strided */
    __global const float *workspace, /* H_n [N*H, NT, K, V] at 0, D_n at dstates_offset */
    ulong dstates_offset,
    __global float *dq,            /* [N, T, H, K] strided */
    __global float *dk,            /* [N, T, H, K] strided */
    __global float *dg,            /* [N, T, H, K] strided */
    int T, int H, LAYOUTS, float scale) {
    const int chunk = get_global_id(0), nh = get_global_id(1);
    const int NT = (T + CHUNK - 1) / CHUNK, t0 = chunk * CHUNK;
    if (chunk >= NT) return;
    const int rows = min(CHUNK, T - t0);
    __global const float *qc = CHUNK_ROWS(q, q), *kc = CHUNK_ROWS(k, k), *gc = CHUNK_ROWS(g, g);
    __global const float *vc = CHUNK_ROWS(v, v), *doc = CHUNK_ROWS(do_, o);
    __global float *dq_rows = CHUNK_ROWS(dq, q), *dk_rows = CHUNK_ROWS(dk, k);
    __global float *dg_rows = CHUNK_ROWS(dg, g);
    const size_t state_at = ((size_t)nh * NT + chunk) * K_DIM * V_DIM;
    __global const float *state = workspace + state_at;                   /* [K, V] H_n */
    __global const float *dstate = workspace + dstates_offset + state_at; /* [K, V] D_n */
    float b[CHUNK][K_DIM];         /* chunk-local cumsum of g */
    float dA[CHUNK][CHUNK];        /* s <do_t, v_j>, j <= t */
    /* without the self terms dA_tt k_t, dA_tt q_t (they cancel in q dq - k dk) */
    float query_grad[CHUNK][K_DIM], key_intra[CHUNK][K_DIM], key_inter[CHUNK][K_DIM];
    float running[K_DIM];
    chunk_cumsum(b, gc, g_token, rows);
    for (int t = 0; t < rows; t++)
        for (int j = 0; j <= t; j++) {
            float sum = 0.0f;
            for (int c = 0; c < V_DIM; c++)
                sum += doc[(size_t)t * o_token + c] * vc[(size_t)j * v_token + c];
            dA[t][j] = scale * sum;
        }
    /* inter-chunk parts: dq_t = s exp(b_t) H_n do_t, dk_t = exp(Gamma - b_t) D_n v_t */
    for (int t = 0; t < rows; t++)
        for (int i = 0; i < K_DIM; i++) {
            float state_do = 0.0f, dstate_v = 0.0f;
            for (int c = 0; c < V_DIM; c++) {
                state_do += state[i * V_DIM + c] * doc[(size_t)t * o_token + c];
                dstate_v += dstate[i * V_DIM + c] * vc[(size_t)t * v_token + c];
            }
            query_grad[t][i] = scale * exp(b[t][i]) * state_do;
            key_inter[t][i] = exp(b[rows - 1][i] - b[t][i]) * dstate_v;
            key_intra[t][i] = 0.0f;
        }
    /* intra-chunk parts: one exp per pair j < t serves dq_t and dk_j */
    for (int t = 1; t < rows; t++)
        for (int j = 0; j < t; j++) {
            const float a = dA[t][j];
            for (int i = 0; i < K_DIM; i++) {
                const float decay = exp(b[t][i] - b[j][i]);
                query_grad[t][i] += a * kc[(size_t)j * k_token + i] * decay;
                key_intra[j][i] += a * qc[(size_t)t * q_token + i] * decay;
            }
        }
    /* dg_t = sum_{u >= t} (q_u dq'_u - k_u dk'_intra_u) + exp(Gamma) rowsum(H_n * D_n)
     *        + sum_{u < t} k_u dk_inter_u: the exclusive prefix sums go into b (no longer
     *        needed), the suffix sums plus the column term run in `running` */
    for (int i = 0; i < K_DIM; i++) {
        float dot = 0.0f;
        for (int c = 0; c < V_DIM; c++) dot += state[i * V_DIM + c] * dstate[i * V_DIM + c];
        running[i] = exp(b[rows - 1][i]) * dot;
    }
    float prefix[K_DIM];
    for (int i = 0; i < K_DIM; i++) prefix[i] = 0.0f;
    for (int t = 0; t < rows; t++)
        for (int i = 0; i < K_DIM; i++) {
            b[t][i] = prefix[i];
            prefix[i] += kc[(size_t)t * k_token + i] * key_inter[t][i];
        }
    for (int t = rows - 1; t >= 0; t--) {
        const float self = dA[t][t];
        for (int i = 0; i < K_DIM; i++) {
            const size_t q_row = (size_t)t * q_token + i, k_row = (size_t)t * k_token + i;
            const float query = qc[q_row], key = kc[k_row];
            running[i] += query * query_grad[t][i] - key * key_intra[t][i];
            dg_rows[(size_t)t * g_token + i] = running[i] + b[t][i];
            dq_rows[q_row] = query_grad[t][i] + self * key;
            dk_rows[k_row] = key_inter[t][i] + key_intra[t][i] + self * query;
        }
    }
}
#endif

/* --------------------------------- prepass, output and dv on CPU devices */


#ifdef GLA_PREPASS_SERIAL
/* gla_chunk_prepass for CPU devices: one work-item per chunk x head (global (NT, N*H),
 * work-group (1, 1)), the same U_n, Gamma_n (GLA_STATES) and W_n (GLA_STATE_GRADS). */
__kernel void gla_chunk_prepass_serial(
    __global const float *q,  /* [N, T, H, K] strided */
    __global const float *k,  /* [N, T, H, K] strided */
    __global const float *g,  /* [N, T, H, K] strided */
    __global const float *v,  /* [N, T, H, V] strided */
    __global const float *do_, /* [N, T, H, V] strided */
    __global float *workspace, /* states [N*H, NT, K, V], gammas [N*H, NT, K], dstates */
    ulong gammas_offset, ulong dstates_offset,
    int T, int H, LAYOUTS, float scale) {
    const int chunk = get_global_id(0), nh = get_global_id(1);
    const int NT = (T + CHUNK - 1) / CHUNK, t0 = chunk * CHUNK;
    if (chunk >= NT) return;
    const int rows = min(CHUNK, T - t0);
    const size_t state = ((size_t)nh * NT + chunk) * K_DIM * V_DIM;
    float b[CHUNK][K_DIM], left[CHUNK][K_DIM];
    chunk_cumsum(b, CHUNK_ROWS(g, g), g_token, rows);
#ifdef GLA_STATES
    __global float *gammas = workspace + gammas_offset + ((size_t)nh * NT + chunk) * K_DIM;
    __global const float *kc = CHUNK_ROWS(k, k);
    for (int i = 0; i < K_DIM; i++) gammas[i] = exp(b[rows - 1][i]);
    for (int t = 0; t < rows; t++) /* k_j * exp(Gamma - b_j) */
        for (int i = 0; i < K_DIM; i++)
            left[t][i] = kc[(size_t)t * k_token + i] * exp(b[rows - 1][i] - b[t][i]);
    rows_outer_product(workspace + state, left, CHUNK_ROWS(v, v), v_token, rows);
#endif
#ifdef GLA_STATE_GRADS
    __global const float *qc = CHUNK_ROWS(q, q);
    for (int t = 0; t < rows; t++) /* s q_t * exp(b_t) */
        for (int i = 0; i < K_DIM; i++)
            left[t][i] = qc[(size_t)t * q_token + i] * (scale * exp(b[t][i]));
    rows_outer_product(workspace + dstates_offset + state, left, CHUNK_ROWS(do_, o), o_token,
                       rows);
#endif
}
#endif

#ifdef GLA_OUTPUT_SERIAL
/* scores[t][j] = s sum_i q_t[i] k_j[i] exp(b_t[i] - b_j[i]) for j <= t, with
 * exp(b_t - b_j) = prod_{j<u<=t} exp(b_u - b_u-1): one exp per (row, feature)
 * instead of one per (pair, feature); every factor is <= 1. */
static inline void decayed_scores(float scores[CHUNK][CHUNK], __global const float *qc,
                                  int q_token, __global const float *kc, int k_token,
                                  float b[CHUNK][K_DIM], int rows, float scale) {
    float step[CHUNK][K_DIM]; /* exp(b_u - b_u-1), u >= 1 */
    for (int u = 1; u < rows; u++)
        for (int i = 0; i < K_DIM; i++) step[u][i] = exp(b[u][i] - b[u - 1][i]);
    for (int j = 0; j < rows; j++) {
        float key[K_DIM]; /* k_j * exp(b_t - b_j) for the current t */
        for (int i = 0; i < K_DIM; i++) key[i] = kc[(size_t)j * k_token + i];
        for (int t = j; t < rows; t++) {
            if (t > j)
                for (int i = 0; i < K_DIM; i++) key[i] *= step[t][i];
            float sum = 0.0f;
            for (int i = 0; i < K_DIM; i++) sum += qc[(size_t)t * q_token + i] * key[i];
            scores[t][j] = scale * sum;
        }
    }
}

/* gla_chunk_output for CPU devices: one work-item per chunk x head (global (NT, N*H),
 * work-group (1, 1)); o, or dv with -DGLA_DV, with A_tj = s sum_i q_t k_j exp(b_t - b_j). */
__kernel void gla_chunk_output_serial(
    __global const float *q,      /* [N, T, H, K] strided */
    __global const float *k,      /* [N, T, H, K] strided */
    __global const float *g,      /* [N, T, H, K] strided */
    __global const float *values, /* [N, T, H, V] strided: v, or do for dv */
    __global const float *workspace, /* states H_n, or D_n for dv, at states_offset */
    ulong states_offset,
    __global float *out,          /* [N, T, H, V] strided: o, or dv */
    int T, int H, LAYOUTS, float scale) {
    const int chunk = get_global_id(0), nh = get_global_id(1);
    const int NT = (T + CHUNK - 1) / CHUNK, t0 = chunk * CHUNK;
    if (chunk >= NT) return;
    const int rows = min(CHUNK, T - t0);
    __global const float *qc = CHUNK_ROWS(q, q), *kc = CHUNK_ROWS(k, k);
    __global const float *xc = CHUNK_ROWS_OF(values, IN_LAYOUT);
    __global float *out_rows = CHUNK_ROWS_OF(out, OUT_LAYOUT);
    const int in_token = TOKEN_OF(IN_LAYOUT), out_token = TOKEN_OF(OUT_LAYOUT);
    __global const float *state =
        workspace + states_offset + ((size_t)nh * NT + chunk) * K_DIM * V_DIM; /* [K, V] */
    float b[CHUNK][K_DIM], scores[CHUNK][CHUNK], left[CHUNK][K_DIM];
    chunk_cumsum(b, CHUNK_ROWS(g, g), g_token, rows);
    decayed_scores(scores, qc, q_token, kc, k_token, b, rows, scale);
    for (int t = 0; t < rows; t++)
        for (int i = 0; i < K_DIM; i++)
#ifdef GLA_DV
            left[t][i] = kc[(size_t)t * k_token + i] * exp(b[rows - 1][i] - b[t][i]);
#else
            left[t][i] = scale * qc[(size_t)t * q_token + i] * exp(b[t][i]);
#endif
    for (int t = 0; t < rows; t++) {
        float acc[V_DIM];
#pragma unroll
        for (int c = 0; c < V_DIM; c++) acc[c] = 0.0f;
        for (int i = 0; i < K_DIM; i++) {
            const float a = left[t][i];
#pragma unroll
            for (int c = 0; c < V_DIM; c++) acc[c] += a * state[i * V_DIM + c];
        }
#ifdef GLA_DV
        for (int u = t; u < rows; u++) {
            const float a = scores[u][t];
#else
        for (int u = 0; u <= t; u++) {
            const float a = scores[t][u];
#endif
#pragma unroll
            for (int c = 0; c < V_DIM; c++) acc[c] += a * xc[(size_t)u * in_token + c];
        }
#pragma unroll
        for (int c = 0; c < V_DIM; c++) out_rows[(size_t)t * out_token + c] = acc[c];
    }
}
#endif
