/* conv2d.cl: dense 2-D convolution (cross-correlation, PyTorch nn.Conv2d, groups = 1) of
 * NCHW activations as im2col + GEMM (docs/VAE.md "Kernels"):
 *   y[n, o, i, j] = bias[o] + sum_{c, a, b} w[o, c, a, b] x[n, c, S i + a - pt, S j + b - pl]
 * with x read as zero outside [0, H) x [0, W) (padding top pt, left pl; bottom and right
 * padding only show in the output size Ho, Wo). For one image and a range [p0, p0 + P) of
 * output pixels p = i Wo + j, conv2d_im2col writes the column matrix
 *   col[(c K + a) K + b, p - p0] = x[c, S i + a - pt, S j + b - pl]
 * ([C K K, P], row-major), and the host multiplies w [O, C K K] by it into y[:, p0 : p0 + P].
 * conv2d_bias sets (or adds) the bias first: y[o, p] = bias[o] (+ y[o, p]).
 * KSIZE (the square kernel side) is a compile-time constant. */

#ifndef KSIZE
#define KSIZE 3
#endif

/* global (P, C K K): work-item (q, r) writes col[r, q]. */
__kernel void conv2d_im2col(__global const float *x, const int x_offset, const int H, const int W,
                            const int Wo, const int stride, const int pad_top, const int pad_left,
                            const int p0, const int P, const int rows, __global float *col) {
    const int q = get_global_id(0), r = get_global_id(1);
    if (q >= P || r >= rows) return;
    const int b = r % KSIZE, a = (r / KSIZE) % KSIZE, c = r / (KSIZE * KSIZE);
    const int p = p0 + q, i = p / Wo, j = p - i * Wo;
    const int iy = i * stride + a - pad_top, ix = j * stride + b - pad_left;
    float v = 0.0f;
    if (iy >= 0 && iy < H && ix >= 0 && ix < W) v = x[x_offset + ((size_t)c * H + iy) * W + ix];
    col[(size_t)r * P + q] = v;
}

/* global (HoWo, O): y[y_offset + o HoWo + p] = bias[o] (+ the old value when accumulate). */
__kernel void conv2d_bias(__global float *y, const int y_offset, __global const float *bias,
                          const int bias_offset, const int has_bias, const int pixels, const int channels,
                          const int accumulate) {
    const int p = get_global_id(0), o = get_global_id(1);
    if (p >= pixels || o >= channels) return;
    const size_t at = (size_t)y_offset + (size_t)o * pixels + p;
    const float value = has_bias ? bias[bias_offset + o] : 0.0f;
    y[at] = accumulate ? y[at] + value : value;
}
