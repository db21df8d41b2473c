/* util.cl: small helper kernels.
 *
 * copy_float4:  dst[i] = src[i] for i < count4 (float4 elements); the measured
 *               device copy bandwidth that `digcl bench` reports beside each
 *               kernel (bytes read + bytes written per second).
 * scale_float:  x[i] = alpha * x[i] for i < count.
 * axpy_float:   y[i] += alpha * x[i] for i < count (gradient sums).
 * gemm_sum_slices: the reduction of a split-K GEMM (below).
 * copy_columns: a block of columns between matrices of different row strides.
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
