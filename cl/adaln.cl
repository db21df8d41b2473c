/* adaln.cl: adaLN modulate and gated residual, forward and backward (digcl/adaln.h;
 * DiT models_dit.py L19-20 `modulate`, DiG block docs/MODEL.md §2.1 steps 2-4).
 *
 *   modulate:       y = x (1 + scale[n]) + shift[n]
 *                   dx (=|+=) dy (1 + scale[n]); dshift[n] = sum_t dy; dscale[n] = sum_t dy x
 *   gated residual: out = h + gate[n] y
 *                   dy (=|+=) gate[n] dout; dgate[n] = sum_t dout y   (dh = dout: no kernel)
 *
 * x, y, h, out: [N, T, D]. A vector v[n, d] is read at v + v_offset + n * v_stride + d
 * (in place from the [N, 6D] adaLN output). The sums over T are stage 1 of a
 * two-stage column sum: a work-group (COLUMN_GROUP vectors x ROW_LANES rows) sums
 * rows_per_chunk tokens of one sample and writes partial[n, chunk, :]; the lanes are
 * combined in a fixed order (deterministic, no atomics).
 *
 * Options: -DVEC=1|4 (float4 when D, offsets and strides are multiples of 4).
 */
#include "vector.cl"

#define COLUMN_GROUP 32
#define ROW_LANES 8
#define LOAD(pointer, index) (((__global const vec *)(pointer))[index])
#define STORE(pointer, index) (((__global vec *)(pointer))[index])

/* Global size (D / VEC, N * T). */
__kernel void modulate_forward(__global const float *x, __global float *y, const int T,
                               const int D, __global const float *shift, const int shift_offset,
                               const int shift_stride, __global const float *scale,
                               const int scale_offset, const int scale_stride, const int rows) {
    const int j = get_global_id(0), row = get_global_id(1), n = row / T;
    if (j >= D / VEC || row >= rows) return;
    const size_t base = (size_t)row * D;
    STORE(y + base, j) = LOAD(x + base, j) *
                             (1.0f + LOAD(scale + scale_offset + (size_t)n * scale_stride, j)) +
                         LOAD(shift + shift_offset + (size_t)n * shift_stride, j);
}

/* Global size (D / VEC, N * T). out may alias h. */
__kernel void gated_residual_forward(__global const float *h, __global const float *y,
                                     __global float *out, const int T, const int D,
                                     __global const float *gate, const int gate_offset,
                                     const int gate_stride, const int rows) {
    const int j = get_global_id(0), row = get_global_id(1), n = row / T;
    if (j >= D / VEC || row >= rows) return;
    const size_t base = (size_t)row * D;
    STORE(out + base, j) =
        LOAD(h + base, j) + LOAD(gate + gate_offset + (size_t)n * gate_stride, j) * LOAD(y + base, j);
}

/* Combines the ROW_LANES lane sums of each column and writes partial[j]. */
void store_partial(const vec value, __local vec *scratch /* [ROW_LANES][COLUMN_GROUP] */,
                   __global float *partial_row, const int j, const int D_vec) {
    const int column = get_local_id(0), lane = get_local_id(1);
    barrier(CLK_LOCAL_MEM_FENCE);
    scratch[lane * COLUMN_GROUP + column] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane != 0 || j >= D_vec) return;
    vec total = 0.0f;
    for (int l = 0; l < ROW_LANES; ++l) total += scratch[l * COLUMN_GROUP + column];
    STORE(partial_row, j) = total;
}

/* Global size (round(D / VEC, COLUMN_GROUP), ROW_LANES * chunks, N).
 * partial: [2, N, chunks, D] = sums of dy, then of dy x (second at partial_second_offset). */
__kernel __attribute__((reqd_work_group_size(COLUMN_GROUP, ROW_LANES, 1)))
void modulate_backward(__global const float *dy, __global const float *x, __global float *dx,
                       const int accumulate, const int T, const int D, const int rows_per_chunk,
                       __global const float *scale, const int scale_offset, const int scale_stride,
                       __global float *partial, const int partial_second_offset) {
    __local vec scratch[ROW_LANES * COLUMN_GROUP];
    const int j = get_global_id(0), lane = get_local_id(1), D_vec = D / VEC;
    const int chunk = get_group_id(1), chunks = get_num_groups(1), n = get_global_id(2);
    const int first = chunk * rows_per_chunk, last = min(T, first + rows_per_chunk);
    vec sum_dy = 0.0f, sum_dy_x = 0.0f;
    if (j < D_vec) {
        const vec one_plus_scale = 1.0f + LOAD(scale + scale_offset + (size_t)n * scale_stride, j);
        for (int t = first + lane; t < last; t += ROW_LANES) {
            const size_t base = ((size_t)n * T + t) * D;
            const vec g = LOAD(dy + base, j);
            sum_dy += g;
            sum_dy_x += g * LOAD(x + base, j);
            STORE(dx + base, j) = accumulate ? LOAD(dx + base, j) + g * one_plus_scale
                                             : g * one_plus_scale;
        }
    }
    const size_t partial_row = ((size_t)n * chunks + chunk) * D;
    store_partial(sum_dy, scratch, partial + partial_row, j, D_vec);
    store_partial(sum_dy_x, scratch, partial + partial_second_offset + partial_row, j, D_vec);
}

/* Global size (round(D / VEC, COLUMN_GROUP), ROW_LANES * chunks, N).
 * partial: [N, chunks, D] = sums of dout y. */
__kernel __attribute__((reqd_work_group_size(COLUMN_GROUP, ROW_LANES, 1)))
void gated_residual_backward(__global const float *dout, __global const float *y,
                             __global float *dy, const int accumulate, const int T, const int D,
                             const int rows_per_chunk, __global const float *gate,
                             const int gate_offset, const int gate_stride,
                             __global float *partial) {
    __local vec scratch[ROW_LANES * COLUMN_GROUP];
    const int j = get_global_id(0), lane = get_local_id(1), D_vec = D / VEC;
    const int chunk = get_group_id(1), chunks = get_num_groups(1), n = get_global_id(2);
    const int first = chunk * rows_per_chunk, last = min(T, first + rows_per_chunk);
    vec sum_dout_y = 0.0f;
    if (j < D_vec) {
        const vec gate_value = LOAD(gate + gate_offset + (size_t)n * gate_stride, j);
        for (int t = first + lane; t < last; t += ROW_LANES) {
            const size_t base = ((size_t)n * T + t) * D;
            const vec g = LOAD(dout + base, j);
            sum_dout_y += g * LOAD(y + base, j);
            STORE(dy + base, j) = accumulate ? LOAD(dy + base, j) + gate_value * g : gate_value * g;
        }
    }
    store_partial(sum_dout_y, scratch, partial + ((size_t)n * chunks + chunk) * D, j, D_vec);
}
