/* attention_naive.cl: the row softmax of naive (materialised) attention,
 * forward and backward (digcl/attention.h "Naive attention"; docs/MODEL.md
 * "DiT attention modes"). timm's Attention without fused attention computes
 *   attn = (q @ k.transpose(-2, -1)) * scale;  attn = attn.softmax(-1);  x = attn @ v
 * The products are GEMMs (digcl/gemm.h); this file holds the softmax over the
 * last dimension of the [N, H, T, T] scores, seen as [rows, cols]:
 *   forward (in place):   p_j = exp(x_j - m) / sum_k exp(x_k - m),  m = max_k x_k
 *   backward (in place):  dx_j = p_j (dp_j - sum_k dp_k p_k)
 * (PyTorch softmax and _softmax_backward_data.)
 *
 * One work-group of WG items per row; item lid owns the columns lid + WG k.
 * The row max and sums go through a tree in local memory (a fixed order, so
 * the result is deterministic). Compile-time: WG (a power of 2).
 */

/* Max (is_max) or sum of `value` over the group; the same in every item. */
static float group_reduce(float value, int is_max, __local float *scratch /* [WG] */) {
    const int lid = get_local_id(0);
    scratch[lid] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int span = WG / 2; span > 0; span /= 2) {
        if (lid < span) {
            const float a = scratch[lid], b = scratch[lid + span];
            scratch[lid] = is_max ? fmax(a, b) : a + b;
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float result = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return result;
}

/* x [rows, cols] <- softmax over each row. Global (rows * WG). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
softmax_rows_forward(__global float *x, /* [rows, cols] */
                     int cols) {
    __local float scratch[WG];
    __global float *row = x + get_group_id(0) * (size_t)cols;
    const int lid = get_local_id(0);
    float maximum = -INFINITY;
    for (int j = lid; j < cols; j += WG) maximum = fmax(maximum, row[j]);
    maximum = group_reduce(maximum, 1, scratch);
    float total = 0.0f;
    for (int j = lid; j < cols; j += WG) total += exp(row[j] - maximum);
    const float inverse = 1.0f / group_reduce(total, 0, scratch);
    for (int j = lid; j < cols; j += WG) row[j] = exp(row[j] - maximum) * inverse;
}

/* dp [rows, cols] <- p (dp - rowsum(dp p)). Global (rows * WG). */
__kernel __attribute__((reqd_work_group_size(WG, 1, 1))) void
softmax_rows_backward(__global const float *p, /* [rows, cols] */
                      __global float *dp,      /* [rows, cols] */
                      int cols) {
    __local float scratch[WG];
    const size_t first = get_group_id(0) * (size_t)cols;
    __global const float *p_row = p + first;
    __global float *dp_row = dp + first;
    const int lid = get_local_id(0);
    float inner = 0.0f;
    for (int j = lid; j < cols; j += WG) inner = fma(p_row[j], dp_row[j], inner);
    inner = group_reduce(inner, 0, scratch);
    for (int j = lid; j < cols; j += WG) dp_row[j] = p_row[j] * (dp_row[j] - inner);
}
