/* upsample.cl: nearest-neighbour upsampling by an integer factor F of NCHW activations
 * (nn.Upsample(scale_factor=F, mode="nearest"), F.interpolate; docs/VAE.md "Kernels"):
 *   y[nc, i, j] = x[nc, i / F, j / F]   (integer division), y of size (F H) x (F W). */
__kernel void upsample_nearest(__global const float *x, __global float *y, const int H,
                               const int W, const int factor, const int planes) {
    const int j = get_global_id(0), i = get_global_id(1), plane = get_global_id(2);
    const int Wo = W * factor, Ho = H * factor;
    if (j >= Wo || i >= Ho || plane >= planes) return;
    y[((size_t)plane * Ho + i) * Wo + j] = x[((size_t)plane * H + i / factor) * W + j / factor];
}
