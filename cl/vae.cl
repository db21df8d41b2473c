/* vae.cl: the elementwise glue of the VAE and TAESD networks (docs/VAE.md):
 *   relu_inplace:   x = max(x, 0)                           (TAESD)
 *   tanh_clamp:     x = 3 tanh(x / 3)                       (TAESD decoder input)
 *   affine_inplace: x = a x + b                             (image range [-1, 1] <-> [0, 1])
 *   softmax_rows:   S[r, :] = softmax(scale S[r, :])        (mid-block attention, rows of
 *                   scores of one query block; docs/VAE.md "Attention")
 *   posterior_sample: z = scale (mean + exp(logvar / 2) eps), logvar clamped to [-30, 20]
 *                   (diffusers' DiagonalGaussianDistribution.sample; docs/VAE.md "Training on
 *                   images")
 *   posterior_draw: the same with spread = std or logvar and eps drawn in the kernel from
 *                   cl/philox.cl at (seed, DIGCL_RNG_LATENT, epoch, data index, element): the
 *                   data layer's posterior latents (docs/TRAINING.md "Data") */

__kernel void relu_inplace(__global float *x, const int count) {
    const int i = get_global_id(0);
    if (i < count) x[i] = fmax(x[i], 0.0f);
}

__kernel void tanh_clamp(__global const float *x, __global float *y, const int count) {
    const int i = get_global_id(0);
    if (i < count) y[i] = 3.0f * tanh(x[i] / 3.0f);
}

__kernel void affine_inplace(__global float *x, const float a, const float b, const int count) {
    const int i = get_global_id(0);
    if (i < count) x[i] = a * x[i] + b;
}

__kernel void posterior_sample(__global float *mean_z, __global const float *logvar,
                               __global const float *eps, const float scale, const int count) {
    const int i = get_global_id(0);
    if (i >= count) return;
    const float lv = clamp(logvar[i], -30.0f, 20.0f);
    mean_z[i] = scale * (mean_z[i] + exp(0.5f * lv) * eps[i]);
}

#define LOCAL 256

/* One work-group of LOCAL items per row: max, sum of exp, then normalise. */
__kernel void softmax_rows(__global float *S, const int columns, const float scale) {
    __local float scratch[LOCAL];
    const int row = get_group_id(0), l = get_local_id(0);
    __global float *s = S + (size_t)row * columns;
    float m = -INFINITY;
    for (int j = l; j < columns; j += LOCAL) m = fmax(m, scale * s[j]);
    scratch[l] = m;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = LOCAL / 2; stride > 0; stride >>= 1) {
        if (l < stride) scratch[l] = fmax(scratch[l], scratch[l + stride]);
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    m = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    float sum = 0.0f;
    for (int j = l; j < columns; j += LOCAL) {
        const float e = exp(scale * s[j] - m);
        s[j] = e;
        sum += e;
    }
    scratch[l] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = LOCAL / 2; stride > 0; stride >>= 1) {
        if (l < stride) scratch[l] += scratch[l + stride];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float inverse = 1.0f / scratch[0];
    for (int j = l; j < columns; j += LOCAL) s[j] *= inverse;
}

#include "philox.cl"

/* posterior_draw: the data layer's posterior latents (docs/TRAINING.md "Data"), in place of
 * mean: z[n, j] = scale (mean[n, j] + sd[n, j] eps), sd = spread, or exp(clamp(spread, -30, 20)
 * / 2) with -DSPREAD_IS_LOGVAR=1, eps the normal draw (seed, stream, step, draw_index[n], j)
 * of cl/philox.cl (lane j % 4 of block j / 4, as the host's digcl_rng_normal). One work-item
 * per block of 4 elements of one row. */
__kernel void posterior_draw(__global float *mean_z, __global const float *spread,
                             __global const int *draw_index, const uint seed_lo,
                             const uint seed_hi, const uint stream, const uint step,
                             const float scale, const int rows, const int row_length) {
    const int block = get_global_id(0), row = get_global_id(1);
    const int column = block * 4;
    if (row >= rows || column >= row_length) return;
    const uint4 draws = philox_block((uint2)(seed_lo, seed_hi), stream, step,
                                     (uint)draw_index[row], (uint)block);
    const float4 z = philox_normal4(draws);
    const float lanes[4] = {z.x, z.y, z.z, z.w};
    const size_t base = (size_t)row * row_length + column;
    for (int lane = 0; lane < 4 && column + lane < row_length; ++lane) {
        float sd = spread[base + lane];
#if SPREAD_IS_LOGVAR
        sd = exp(0.5f * clamp(sd, -30.0f, 20.0f));
#endif
        mean_z[base + lane] = scale * (mean_z[base + lane] + sd * lanes[lane]);
    }
}
