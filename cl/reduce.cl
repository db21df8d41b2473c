/* reduce.cl: deterministic reductions and the MSE loss (digcl/reduce.h).
 *
 *   reduce_columns:      out[b, k, c] (=|+=) scale * sum_{r in chunk k} x[b, r, c]
 *                        work-group = 32 column vectors x 8 row lanes; lanes summed in a fixed
 *                        order (the same order for VEC = 1 and 4).
 *                        One launch is a whole column sum (one chunk) or stage 1 (many chunks,
 *                        written to a workspace that a second launch sums).
 *   reduce_total_stage1: partial[g] = sum over the items of group g of f(x, y), with
 *                        f = x (mode 0), x^2 (mode 1) or (x - y)^2 (mode 2); fixed grid-stride
 *                        partition and a fixed local tree.
 *   reduce_total_stage2: result = scale * sum_g partial[g] (sqrt when take_sqrt): one group.
 *   clip_by_norm:        x *= min(1, max_norm / (norm + 1e-6))   (torch clip_grad_norm_)
 *   mse_backward:        dprediction (=|+=) coefficient * (prediction - target),
 *                        coefficient = dloss * 2 / count.
 *
 * Options: -DVEC=1|4 (float4 access where count and offsets allow).
 */
#include "vector.cl"

#define COLUMN_GROUP 32
#define COLUMN_LANES 8
#define TOTAL_GROUP 256

/* Columns are VEC-wide (x_offset, cols, the out offsets and strides are multiples of
 * VEC when VEC = 4). Batches b >= split go to out2 at out2_offset + (b - split) * stride
 * (two column sums of one [2, batch, rows, cols] tensor in one launch); split = batch
 * for a single output. */
__kernel __attribute__((reqd_work_group_size(COLUMN_GROUP, COLUMN_LANES, 1)))
void reduce_columns(__global const float *x, const int x_offset, /* [batch, rows, cols] */
                    const int rows, const int cols, const int rows_per_chunk, const float scale,
                    __global float *out, const int out_offset, const int out_batch_stride,
                    const int out_chunk_stride, const int accumulate,
                    __global float *out2, const int out2_offset, const int split) {
    __local vec partial[COLUMN_LANES][COLUMN_GROUP];
    const int column = get_global_id(0), lane = get_local_id(1), cols_vec = cols / VEC;
    const int chunk = get_group_id(1), batch = get_global_id(2);
    const int first = chunk * rows_per_chunk;
    const int last = min(rows, first + rows_per_chunk);
    vec sum = 0.0f;
    if (column < cols_vec) {
        __global const vec *source =
            (__global const vec *)(x + x_offset + (size_t)batch * rows * cols) + column;
        for (int r = first + lane; r < last; r += COLUMN_LANES) sum += source[(size_t)r * cols_vec];
    }
    partial[lane][get_local_id(0)] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane != 0 || column >= cols_vec) return;
    vec total = 0.0f;
    for (int l = 0; l < COLUMN_LANES; ++l) total += partial[l][get_local_id(0)];
    const int second = batch >= split;
    __global float *target = second ? out2 : out;
    const size_t index = (second ? out2_offset : out_offset) +
                         (size_t)(second ? batch - split : batch) * out_batch_stride +
                         (size_t)chunk * out_chunk_stride;
    __global vec *destination = (__global vec *)(target + index) + column;
    *destination = accumulate ? *destination + scale * total : scale * total;
}

/* Sums the TOTAL_GROUP values of `values` in a fixed tree; the result is in values[0]. */
void tree_sum(__local float *values) {
    const int id = get_local_id(0);
    for (int stride = TOTAL_GROUP / 2; stride > 0; stride >>= 1) {
        barrier(CLK_LOCAL_MEM_FENCE);
        if (id < stride) values[id] += values[id + stride];
    }
    barrier(CLK_LOCAL_MEM_FENCE);
}

__kernel __attribute__((reqd_work_group_size(TOTAL_GROUP, 1, 1)))
void reduce_total_stage1(__global const vec *x, __global const vec *y, /* [count / VEC] */
                         const int count_vec, const int mode, __global float *partial) {
    __local float values[TOTAL_GROUP];
    const int stride = get_global_size(0);
    vec sum = 0.0f;
    for (int i = get_global_id(0); i < count_vec; i += stride) {
        vec value = x[i];
        if (mode == 2) value -= y[i];
        sum += mode == 0 ? value : value * value;
    }
    values[get_local_id(0)] = HSUM(sum);
    tree_sum(values);
    if (get_local_id(0) == 0) partial[get_group_id(0)] = values[0];
}

__kernel __attribute__((reqd_work_group_size(TOTAL_GROUP, 1, 1)))
void reduce_total_stage2(__global const float *partial, const int partial_count, const float scale,
                         const int take_sqrt, __global float *result, const int result_offset) {
    __local float values[TOTAL_GROUP];
    float sum = 0.0f;
    for (int i = get_local_id(0); i < partial_count; i += TOTAL_GROUP) sum += partial[i];
    values[get_local_id(0)] = sum;
    tree_sum(values);
    if (get_local_id(0) == 0) {
        float total = scale * values[0];
        result[result_offset] = take_sqrt ? sqrt(total) : total;
    }
}

__kernel void clip_by_norm(__global vec *x, const int count_vec, __global const float *norm,
                           const int norm_offset, const float max_norm) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    const float coefficient = fmin(1.0f, max_norm / (norm[norm_offset] + 1e-6f));
    x[i] *= coefficient;
}

__kernel void mse_backward(__global const vec *prediction, __global const vec *target,
                           __global vec *dprediction, const int count_vec,
                           const float coefficient, const int accumulate) {
    const int i = get_global_id(0);
    if (i >= count_vec) return;
    const vec gradient = coefficient * (prediction[i] - target[i]);
    dprediction[i] = accumulate ? dprediction[i] + gradient : gradient;
}
