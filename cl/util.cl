/* util.cl: small helper kernels.
 *
 * copy_float4:  dst[i] = src[i] for i < count4 (float4 elements); the measured
 *               device copy bandwidth that `digcl bench` reports beside each
 *               kernel (bytes read + bytes written per second).
 * scale_float:  x[i] = alpha * x[i] for i < count.
 * axpy_float:   y[i] += alpha * x[i] for i < count (gradient sums).
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
