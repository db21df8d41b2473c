/* norm.cl: row normalisations over the last dimension (digcl/norm.h).
 *
 * LayerNorm, no affine, eps 1e-6 (PyTorch nn.LayerNorm(D, elementwise_affine=False);
 * docs/MODEL.md §2.1), optionally fused with adaLN modulate (DiT models_dit.py L19-20):
 *   xhat = (x - mean) rstd,  rstd = 1 / sqrt(mean((x - mean)^2) + eps)
 *   y    = xhat (1 + scale[n]) + shift[n]          (modulate) or y = xhat
 * backward, with dxhat = dy (1 + scale[n]) (or dy):
 *   dx (=|+=) rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat))
 *   dshift[n] = sum_t dy,  dscale[n] = sum_t dy xhat      (stage 1 here: per-chunk partials)
 *
 * RMSNorm x swish gate (fla FusedRMSNormSwishGate; docs/GLA.md §1.3), eps 1e-6:
 *   xn = x rsqrt(mean(x^2) + eps),  y = xn w g sigmoid(g)
 *   dg = dy w xn s (1 + g (1 - s)),  dw += dy xn g s,  dxn = dy w g s
 *   dx = rstd (dxn - xn mean(dxn xn))
 *
 * Layout: a work-group is LANES x ROWS items; ROWS rows are processed side by side,
 * each by LANES items that own COLS vectors (of VEC floats) at columns
 * lane + k LANES. Row sums go through local memory; every lane adds the LANES
 * values in the same order (deterministic, same result in every lane).
 * Backward kernels walk `iterations` batches of ROWS rows per group and keep
 * per-column sums in registers, written as one partial row per group (no atomics).
 *
 * Options: -DVEC=1|4, -DLANES (power of 2), -DCOLS, -DROWS; -DPREFETCH (LayerNorm
 * backward: loads the next row batch before reducing the current one).
 */
#include "vector.cl"

#define EPS 1e-6f
#define LOAD(pointer, index) (((__global const vec *)(pointer))[index])
#define STORE(pointer, index) (((__global vec *)(pointer))[index])

/* Sum over the LANES lanes of this item's row; identical in every lane. */
float row_sum(float value, __local float *scratch /* [ROWS * LANES] */) {
    const int base = get_local_id(1) * LANES;
    scratch[base + get_local_id(0)] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    float total = 0.0f;
    for (int i = 0; i < LANES; ++i) total += scratch[base + i];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

float2 row_sum2(float2 value, __local float2 *scratch /* [ROWS * LANES] */) {
    const int base = get_local_id(1) * LANES;
    scratch[base + get_local_id(0)] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    float2 total = 0.0f;
    for (int i = 0; i < LANES; ++i) total += scratch[base + i];
    barrier(CLK_LOCAL_MEM_FENCE);
    return total;
}

/* Sums each column over the ROWS rows of the group and writes it to out[j]
 * (vector index j = lane + k LANES < D_vec): the stage-1 partial of a column sum. */
void store_column_partial(const vec *value /* [COLS] */, __local vec *scratch /* [ROWS * LANES] */,
                          __global float *out /* [D] */, const int D_vec) {
    const int lane = get_local_id(0), row = get_local_id(1);
    for (int k = 0; k < COLS; ++k) {
        scratch[row * LANES + lane] = value[k];
        barrier(CLK_LOCAL_MEM_FENCE);
        const int j = lane + k * LANES;
        if (row == 0 && j < D_vec) {
            vec total = 0.0f;
            for (int r = 0; r < ROWS; ++r) total += scratch[r * LANES + lane];
            STORE(out, j) = total;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
}

/* Loads this item's COLS vectors of one row (zeros outside the row or when !valid). */
void load_row(__global const float *row_start, const int D_vec, const int valid, vec *value) {
    for (int k = 0; k < COLS; ++k) {
        const int j = get_local_id(0) + k * LANES;
        value[k] = (valid && j < D_vec) ? LOAD(row_start, j) : (vec)0.0f;
    }
}

/* ------------------------------------------------------------------ LayerNorm */

/* Global size (LANES * ceil(rows / ROWS), ROWS). shift/scale: [N, D] views at
 * offset + n * stride, n = row / T; ignored unless modulate. */
__kernel __attribute__((reqd_work_group_size(LANES, ROWS, 1)))
void layernorm_forward(__global const float *x, __global float *y, /* [rows, D] */
                       __global float *mean_out, __global float *rstd_out, /* [rows] */
                       const int rows, const int D, const int T, const int modulate,
                       __global const float *shift, const int shift_offset, const int shift_stride,
                       __global const float *scale, const int scale_offset, const int scale_stride) {
    __local float scratch[ROWS * LANES];
    const int row = get_group_id(0) * ROWS + get_local_id(1);
    const int valid = row < rows, D_vec = D / VEC;
    __global const float *x_row = x + (size_t)(valid ? row : 0) * D;
    vec value[COLS];
    load_row(x_row, D_vec, valid, value);
    float sum = 0.0f;
    for (int k = 0; k < COLS; ++k) sum += HSUM(value[k]);
    const float mean = row_sum(sum, scratch) / D;
    float sum_sq = 0.0f;
    for (int k = 0; k < COLS; ++k) {
        const vec centered = value[k] - mean;
        if (get_local_id(0) + k * LANES < D_vec) sum_sq += HSUM(centered * centered);
    }
    const float rstd = rsqrt(row_sum(sum_sq, scratch) / D + EPS);
    if (!valid) return;
    const int n = row / T;
    for (int k = 0; k < COLS; ++k) {
        const int j = get_local_id(0) + k * LANES;
        if (j >= D_vec) continue;
        vec out = (value[k] - mean) * rstd;
        if (modulate)
            out = out * (1.0f + LOAD(scale + scale_offset + (size_t)n * scale_stride, j)) +
                  LOAD(shift + shift_offset + (size_t)n * shift_stride, j);
        STORE(y + (size_t)row * D, j) = out;
    }
    if (get_local_id(0) == 0) {
        mean_out[row] = mean;
        rstd_out[row] = rstd;
    }
}

/* Loads this item's row of row batch `batch` of sample n: dy, x, mean, rstd (zeros past T). */
void load_batch(__global const float *dy, __global const float *x, /* [N, T, D] */
                __global const float *mean, __global const float *rstd, /* [N * T] */
                const int n, const int batch, const int T, const int D_vec, int *valid,
                size_t *row, float *row_mean, float *row_rstd, vec *dy_value, vec *x_value) {
    const int t = batch * ROWS + get_local_id(1);
    *valid = t < T;
    *row = (size_t)n * T + (*valid ? t : 0);
    *row_mean = *valid ? mean[*row] : 0.0f;
    *row_rstd = *valid ? rstd[*row] : 0.0f;
    load_row(dy + *row * D_vec * VEC, D_vec, *valid, dy_value);
    load_row(x + *row * D_vec * VEC, D_vec, *valid, x_value);
}

/* Global size (LANES * N * chunks_per_n, ROWS). Group g handles sample n = g / chunks_per_n,
 * tokens [c * iterations * ROWS, (c + 1) * iterations * ROWS), c = g % chunks_per_n.
 * With modulate, writes partial_shift[n, c, :] and partial_scale[n, c, :]
 * (partial + partial_scale_offset) for a later column sum over c. */
__kernel __attribute__((reqd_work_group_size(LANES, ROWS, 1)))
void layernorm_backward(__global const float *dy, __global const float *x, /* [N, T, D] */
                        __global const float *mean, __global const float *rstd, /* [N * T] */
                        __global float *dx, const int accumulate,               /* [N, T, D] */
                        const int T, const int D, const int chunks_per_n, const int iterations,
                        const int modulate,
                        __global const float *scale, const int scale_offset, const int scale_stride,
                        __global float *partial, const int partial_scale_offset) {
    __local float2 scratch[ROWS * LANES];
    __local vec column_scratch[ROWS * LANES];
    const int n = get_group_id(0) / chunks_per_n, chunk = get_group_id(0) % chunks_per_n;
    const int D_vec = D / VEC, lane = get_local_id(0);
    vec one_plus_scale[COLS], sum_dy[COLS], sum_dy_xhat[COLS];
    for (int k = 0; k < COLS; ++k) {
        const int j = lane + k * LANES;
        one_plus_scale[k] = (modulate && j < D_vec)
                                ? 1.0f + LOAD(scale + scale_offset + (size_t)n * scale_stride, j)
                                : (vec)1.0f;
        sum_dy[k] = 0.0f;
        sum_dy_xhat[k] = 0.0f;
    }
    vec dy_value[COLS], xhat[COLS];
    float row_mean, row_rstd;
    int valid;
    size_t row;
#ifdef PREFETCH
    vec dy_next[COLS], x_next[COLS];
    float mean_next, rstd_next;
    int valid_next;
    size_t row_next;
    load_batch(dy, x, mean, rstd, n, chunk * iterations, T, D_vec, &valid_next, &row_next,
               &mean_next, &rstd_next, dy_next, x_next);
#endif
    for (int it = 0; it < iterations; ++it) {
#ifdef PREFETCH
        valid = valid_next, row = row_next, row_mean = mean_next, row_rstd = rstd_next;
        for (int k = 0; k < COLS; ++k) dy_value[k] = dy_next[k], xhat[k] = x_next[k];
        if (it + 1 < iterations)
            load_batch(dy, x, mean, rstd, n, chunk * iterations + it + 1, T, D_vec, &valid_next,
                       &row_next, &mean_next, &rstd_next, dy_next, x_next);
#else
        load_batch(dy, x, mean, rstd, n, chunk * iterations + it, T, D_vec, &valid, &row,
                   &row_mean, &row_rstd, dy_value, xhat);
#endif
        float2 sums = 0.0f;
        for (int k = 0; k < COLS; ++k) {
            xhat[k] = (xhat[k] - row_mean) * row_rstd;
            const vec dxhat = dy_value[k] * one_plus_scale[k];
            if (lane + k * LANES < D_vec) sums += (float2)(HSUM(dxhat), HSUM(dxhat * xhat[k]));
            sum_dy[k] += dy_value[k];
            sum_dy_xhat[k] += dy_value[k] * xhat[k];
        }
        sums = row_sum2(sums, scratch) / D;
        for (int k = 0; k < COLS; ++k) {
            const int j = lane + k * LANES;
            if (!valid || j >= D_vec) continue;
            const vec dxhat = dy_value[k] * one_plus_scale[k];
            const vec gradient = row_rstd * (dxhat - sums.x - xhat[k] * sums.y);
            __global float *dx_row = dx + row * D;
            STORE(dx_row, j) = accumulate ? LOAD(dx_row, j) + gradient : gradient;
        }
    }
    if (!modulate) return;
    const size_t partial_row = ((size_t)n * chunks_per_n + chunk) * D;
    store_column_partial(sum_dy, column_scratch, partial + partial_row, D_vec);
    store_column_partial(sum_dy_xhat, column_scratch, partial + partial_scale_offset + partial_row,
                         D_vec);
}

/* ------------------------------------------------------------------ RMSNorm x swish gate */

float rms_rstd(const vec *value, const int D, const int D_vec, __local float *scratch) {
    float sum_sq = 0.0f;
    for (int k = 0; k < COLS; ++k)
        if (get_local_id(0) + k * LANES < D_vec) sum_sq += HSUM(value[k] * value[k]);
    return rsqrt(row_sum(sum_sq, scratch) / D + EPS);
}

vec sigmoid_of(vec x) { return 1.0f / (1.0f + exp(-x)); }

/* Row r = t * heads + h of the gate (and of its gradient) starts at
 * offset + t * token_stride + h * V: the dense [rows, V] (heads 1, token_stride V),
 * or the g columns of DiG's fused projection rows (docs/MODEL.md). */
#define GATE_ROWS ulong gate_offset, const int gate_token, const int gate_heads
size_t gate_row(int row, int V, GATE_ROWS) {
    return (size_t)gate_offset + (size_t)(row / gate_heads) * gate_token +
           (size_t)(row % gate_heads) * V;
}

/* Global size (LANES * ceil(rows / ROWS), ROWS). */
__kernel __attribute__((reqd_work_group_size(LANES, ROWS, 1)))
void rmsnorm_gate_forward(__global const float *x,                               /* [rows, V] */
                          __global const float *gate, GATE_ROWS,                 /* [rows, V] */
                          __global const float *weight, const int weight_offset, /* [V] */
                          __global float *y, const int rows, const int V) {
    __local float scratch[ROWS * LANES];
    const int row = get_group_id(0) * ROWS + get_local_id(1);
    const int valid = row < rows, V_vec = V / VEC;
    const size_t base = (size_t)(valid ? row : 0) * V;
    const size_t gate_base = gate_row(valid ? row : 0, V, gate_offset, gate_token, gate_heads);
    vec value[COLS];
    load_row(x + base, V_vec, valid, value);
    const float rstd = rms_rstd(value, V, V_vec, scratch);
    if (!valid) return;
    for (int k = 0; k < COLS; ++k) {
        const int j = get_local_id(0) + k * LANES;
        if (j >= V_vec) continue;
        const vec g = LOAD(gate + gate_base, j);
        STORE(y + base, j) = value[k] * rstd * LOAD(weight + weight_offset, j) * g * sigmoid_of(g);
    }
}

/* Global size (LANES * chunks, ROWS); group c handles rows [c * iterations * ROWS, ...)
 * and writes partial[c, :] = its sum of dy xn swish(g) (the dweight stage 1). */
__kernel __attribute__((reqd_work_group_size(LANES, ROWS, 1)))
void rmsnorm_gate_backward(__global const float *dy, __global const float *x,
                           __global const float *gate, GATE_ROWS, /* [rows, V]; dgate alike */
                           __global const float *weight, const int weight_offset, /* [V] */
                           __global float *dx, __global float *dgate, const int accumulate,
                           const int rows, const int V, const int iterations,
                           __global float *partial) {                             /* [chunks, V] */
    __local float scratch[ROWS * LANES];
    __local vec column_scratch[ROWS * LANES];
    const int V_vec = V / VEC, lane = get_local_id(0);
    vec w[COLS], sum_dweight[COLS];
    for (int k = 0; k < COLS; ++k) {
        const int j = lane + k * LANES;
        w[k] = j < V_vec ? LOAD(weight + weight_offset, j) : (vec)0.0f;
        sum_dweight[k] = 0.0f;
    }
    for (int it = 0; it < iterations; ++it) {
        const int row = (get_group_id(0) * iterations + it) * ROWS + get_local_id(1);
        const int valid = row < rows;
        const size_t base = (size_t)(valid ? row : 0) * V;
        const size_t gate_base =
            gate_row(valid ? row : 0, V, gate_offset, gate_token, gate_heads);
        vec xn[COLS], dy_value[COLS], g[COLS];
        load_row(x + base, V_vec, valid, xn);
        load_row(dy + base, V_vec, valid, dy_value);
        load_row(gate + gate_base, V_vec, valid, g);
        const float rstd = rms_rstd(xn, V, V_vec, scratch);
        float sum_dxn_xn = 0.0f;
        for (int k = 0; k < COLS; ++k) {
            xn[k] *= rstd;
            const vec swish = g[k] * sigmoid_of(g[k]);
            sum_dweight[k] += dy_value[k] * xn[k] * swish;
            if (lane + k * LANES < V_vec) sum_dxn_xn += HSUM(dy_value[k] * w[k] * swish * xn[k]);
        }
        const float mean_dxn_xn = row_sum(sum_dxn_xn, scratch) / V;
        for (int k = 0; k < COLS; ++k) {
            const int j = lane + k * LANES;
            if (!valid || j >= V_vec) continue;
            const vec s = sigmoid_of(g[k]);
            const vec dgate_value = dy_value[k] * w[k] * xn[k] * s * (1.0f + g[k] * (1.0f - s));
            const vec dx_value = rstd * (dy_value[k] * w[k] * g[k] * s - xn[k] * mean_dxn_xn);
            STORE(dgate + gate_base, j) =
                accumulate ? LOAD(dgate + gate_base, j) + dgate_value : dgate_value;
            STORE(dx + base, j) = accumulate ? LOAD(dx + base, j) + dx_value : dx_value;
        }
    }
    store_column_partial(sum_dweight, column_scratch, partial + (size_t)get_group_id(0) * V, V_vec);
}
