/* util.cl: small helper kernels.
 *
 * copy_float4:  dst[i] = src[i] for i < count4 (float4 elements); the measured
 *               device copy bandwidth that `digcl bench` reports beside each
 *               kernel (bytes read + bytes written per second).
 * scale_float:  x[i] = alpha * x[i] for i < count.
 * axpy_float:   y[i] += alpha * x[i] for i < count (gradient sums).
 * gemm_sum_slices: the reduction of a split-K GEMM (below).
 * copy_columns: a block of columns between matrices of different row strides
 *               (copy_columns4: in float4 chunks).
 * transpose_batched: out[b, c, r] = in[b, r, c] for a strided batch (the wgmma GEMM's
 *               K-major operands, src/ops/gemm_tc.c).
 */
__kernel void copy_float4(__global const float4 *src, __global float4 *dst, const int count4) {
    int i = get_global_id(0);
    if (i < count4) dst[i] = src[i];
}

__kernel void scale_float(__global float *x, const float alpha, const int count) {
    int i = get_global_id(0);
    if (i < count) x[i] = alpha * x[i];
}

/* axpy_float: y[i] += alpha * x[i] for i < count. */
__kernel void axpy_float(__global const float *x, __global float *y, const float alpha, const int count) {
    int i = get_global_id(0);
    if (i < count) y[i] += alpha * x[i];
}

/* gemm_sum_slices: the second half of a split-K GEMM,
 *   C[m, n] = alpha * sum_{s < slices} partial[s, m, n] + beta * C[m, n],
 * summed in slice order (deterministic); beta = 0 never reads C.
 * partial: [slices, M, N]; C: rows of ldc starting at c_offset. */
__kernel void gemm_sum_slices(__global const float *partial, __global float *C, const int c_offset,
                              const int ldc, const int M, const int N, const int slices, const float alpha,
                              const float beta) {
    const int n = get_global_id(0), m = get_global_id(1);
    if (n >= N || m >= M) return;
    float sum = 0.0f;
    for (int s = 0; s < slices; s++) sum += partial[((size_t)s * M + m) * N + n];
    const size_t at = (size_t)c_offset + (size_t)m * ldc + n;
    C[at] = beta == 0.0f ? alpha * sum : alpha * sum + beta * C[at];
}

/* copy_columns: dst[r, dst_column + c] = src[r, src_column + c] for r < rows,
 * c < columns; row strides in elements. One work-item per element, c fastest. */
__kernel void copy_columns(__global const float *src, const int src_stride, const int src_column,
                           __global float *dst, const int dst_stride, const int dst_column, const int rows,
                           const int columns) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= columns || r >= rows) return;
    dst[(size_t)r * dst_stride + dst_column + c] = src[(size_t)r * src_stride + src_column + c];
}

/* copy_columns4: the same in float4 chunks, where both strides, both first columns and
 * the column count are multiples of 4 (counted in float4 here). */
__kernel void copy_columns4(__global const float4 *src, const int src_stride, const int src_column,
                            __global float4 *dst, const int dst_stride, const int dst_column,
                            const int rows, const int columns) {
    const int c = get_global_id(0), r = get_global_id(1);
    if (c >= columns || r >= rows) return;
    dst[(size_t)r * dst_stride + dst_column + c] = src[(size_t)r * src_stride + src_column + c];
}

/* transpose_batched: out[out_offset + b out_stride + c out_ld + r] =
 *   in[in_offset + b in_stride + r in_ld + c]   for r < rows, c < cols, b < batch.
 * 32 x 32 tiles through local memory (rows padded by one: no bank conflicts), so that
 * both the reads and the writes of a warp are consecutive. Work-group (32, 8). */
__kernel __attribute__((reqd_work_group_size(32, 8, 1))) void
transpose_batched(__global const float *in, const ulong in_offset, const int in_ld,
                  const ulong in_stride, const int rows, const int cols, __global float *out,
                  const ulong out_offset, const int out_ld, const ulong out_stride) {
    __local float tile[32][33];
    const int tx = get_local_id(0), ty = get_local_id(1);
    const int c0 = get_group_id(0) * 32, r0 = get_group_id(1) * 32;
    const ulong b = get_global_id(2);
    in += in_offset + b * in_stride;
    out += out_offset + b * out_stride;
    for (int y = ty; y < 32; y += 8)
        if (r0 + y < rows && c0 + tx < cols) tile[y][tx] = in[(size_t)(r0 + y) * in_ld + c0 + tx];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int y = ty; y < 32; y += 8)
        if (c0 + y < cols && r0 + tx < rows) out[(size_t)(c0 + y) * out_ld + r0 + tx] = tile[tx][y];
}
