/* groupnorm.cl: GroupNorm (Wu & He 2018; PyTorch nn.GroupNorm) over NCHW activations, with an
 * optional fused SiLU (docs/VAE.md "Kernels"). The C channels form G groups of Cg = C / G
 * consecutive channels; group (n, g) is the contiguous range of L = Cg H W floats starting at
 * (n C + g Cg) H W. With the biased variance over that range,
 *   y[n, c, p] = (x[n, c, p] - mean[n, g]) / sqrt(var[n, g] + eps) * gamma[c] + beta[c]
 *   (then y = y sigmoid(y) when SILU is defined).
 * Statistics in three passes, all deterministic (fixed orders, no atomics):
 *   groupnorm_partial:  each work-group takes one chunk of one group and writes its
 *                       (mean, M2) from a two-pass sum over the chunk,
 *   groupnorm_finalize: one work-item per group merges the chunks in order (Chan et al.:
 *                       M2 = M2a + M2b + delta^2 na nb / n) into (mean, rstd), or with
 *                       raw = 1 into (mean, M2) for a caller that merges the moments of
 *                       several parts of one image (the streamed VAE, docs/VAE.md "Tiling"),
 *   groupnorm_apply:    the elementwise normalisation (may run in place, y = x). */

#define LOCAL 256

static float local_sum(__local float *scratch, float value) {
    const int l = get_local_id(0);
    scratch[l] = value;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int stride = LOCAL / 2; stride > 0; stride >>= 1) {
        if (l < stride) scratch[l] += scratch[l + stride];
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    const float sum = scratch[0];
    barrier(CLK_LOCAL_MEM_FENCE);
    return sum;
}

/* global (LOCAL chunks, groups), local (LOCAL, 1); partial[(group chunks + chunk) 2 + {0, 1}]. */
__kernel void groupnorm_partial(__global const float *x, const int group_length,
                                const int chunk_length, const int chunks, __global float *partial) {
    __local float scratch[LOCAL];
    const int chunk = get_group_id(0), group = get_global_id(1), l = get_local_id(0);
    const size_t base = (size_t)group * group_length;
    const int begin = chunk * chunk_length;
    const int end = min(group_length, begin + chunk_length);
    float sum = 0.0f;
    for (int i = begin + l; i < end; i += LOCAL) sum += x[base + i];
    const float count = (float)max(end - begin, 1);
    const float mean = local_sum(scratch, sum) / count;
    float squares = 0.0f;
    for (int i = begin + l; i < end; i += LOCAL) {
        const float d = x[base + i] - mean;
        squares += d * d;
    }
    const float m2 = local_sum(scratch, squares);
    if (l == 0) {
        partial[((size_t)group * chunks + chunk) * 2] = mean;
        partial[((size_t)group * chunks + chunk) * 2 + 1] = m2;
    }
}

/* global (groups): stats[group 2 + {0, 1}] = (mean, rstd), or (mean, M2) when raw. */
__kernel void groupnorm_finalize(__global const float *partial, const int groups,
                                 const int group_length, const int chunk_length, const int chunks,
                                 const float eps, __global float *stats, const int stats_offset,
                                 const int raw) {
    const int group = get_global_id(0);
    if (group >= groups) return;
    float n = 0.0f, mean = 0.0f, m2 = 0.0f;
    for (int c = 0; c < chunks; ++c) {
        const float nb = (float)min(chunk_length, group_length - c * chunk_length);
        const float mb = partial[((size_t)group * chunks + c) * 2];
        const float m2b = partial[((size_t)group * chunks + c) * 2 + 1];
        const float total = n + nb, delta = mb - mean;
        mean += delta * (nb / total);
        m2 += m2b + delta * delta * (n * nb / total);
        n = total;
    }
    stats[stats_offset + (size_t)group * 2] = mean;
    stats[stats_offset + (size_t)group * 2 + 1] = raw ? m2 : rsqrt(m2 / n + eps);
}

/* global (count): element i of [N, C, pixels]. gamma/beta at their offsets (floats). */
__kernel void groupnorm_apply(__global const float *x, __global float *y,
                              __global const float *stats, const int stats_offset,
                              __global const float *params, const int gamma_offset,
                              const int beta_offset, const int channels, const int group_channels,
                              const int pixels, const int count) {
    const int i = get_global_id(0);
    if (i >= count) return;
    const int image_channel = i / pixels, c = image_channel % channels;
    const int group = (image_channel - c) / group_channels + c / group_channels;
    const float mean = stats[stats_offset + (size_t)group * 2];
    const float rstd = stats[stats_offset + (size_t)group * 2 + 1];
    float v = (x[i] - mean) * rstd * params[gamma_offset + c] + params[beta_offset + c];
#ifdef SILU
    v = v / (1.0f + exp(-v));
#endif
    y[i] = v;
}
