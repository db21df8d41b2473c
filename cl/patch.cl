/* patch.cl: patch embedding and unpatchify (docs/MODEL.md §3.1, §3.5).
 *
 * Patchify (timm PatchEmbed = Conv2d(kernel p, stride p), here as a gather
 * followed by a GEMM on the host side), features in conv weight order (c, py, px):
 *   patches[n, y*w + x, (c*p + py)*p + px] = image[n, c, y*p + py, x*p + px]
 * Unpatchify (DiT: reshape (N, h, w, p, q, C), einsum nhwpqc->nchpwq):
 *   image[n, c, y*p + py, x*p + px] = x[n, y*w + x, (py*p + px)*C + c]
 * Both are permutations; each backward is the inverse permutation. Every
 * kernel owns one *output* element, so writes are coalesced and there are no
 * scatter conflicts.
 *
 * Also: tokens = bias (+ pos_embed) before the GEMM accumulates into them, and
 * the deterministic two-pass column sum for the bias gradient
 * (dbias[d] += sum_r dtokens[r, d]).
 *
 * Dimensions: N, C, H, W image; P patch size; w = W/P; T = (H/P)*(W/P); K = C*P*P.
 */

/* One work-item per patches element. */
__kernel void patchify_forward(__global const float *image, /* [N, C, H, W] */
                               __global float *patches,     /* [N, T, K] */
                               int N, int C, int H, int W, int P) {
    const int index = get_global_id(0);
    const int w = W / P, T = (H / P) * w, K = C * P * P;
    if (index >= N * T * K) return;
    const int feature = index % K, token = index / K % T, n = index / (K * T);
    const int c = feature / (P * P), py = feature / P % P, px = feature % P;
    const int row = token / w * P + py, col = token % w * P + px;
    patches[index] = image[((n * C + c) * H + row) * W + col];
}

/* One work-item per dimage element. */
__kernel void patchify_backward(__global const float *dpatches, /* [N, T, K] */
                                __global float *dimage,         /* [N, C, H, W] */
                                int N, int C, int H, int W, int P) {
    const int index = get_global_id(0);
    if (index >= N * C * H * W) return;
    const int w = W / P, T = (H / P) * w, K = C * P * P;
    const int col = index % W, row = index / W % H, c = index / (W * H) % C;
    const int n = index / (W * H * C);
    const int token = row / P * w + col / P;
    const int feature = (c * P + row % P) * P + col % P;
    dimage[index] = dpatches[(n * T + token) * K + feature];
}

/* One work-item per image element. */
__kernel void unpatchify_forward(__global const float *x, /* [N, T, K], K = P*P*C */
                                 __global float *image,   /* [N, C, H, W] */
                                 int N, int C, int H, int W, int P) {
    const int index = get_global_id(0);
    if (index >= N * C * H * W) return;
    const int w = W / P, T = (H / P) * w, K = C * P * P;
    const int col = index % W, row = index / W % H, c = index / (W * H) % C;
    const int n = index / (W * H * C);
    const int token = row / P * w + col / P;
    const int feature = ((row % P) * P + col % P) * C + c;
    image[index] = x[(n * T + token) * K + feature];
}

/* One work-item per dx element. */
__kernel void unpatchify_backward(__global const float *dimage, /* [N, C, H, W] */
                                  __global float *dx,           /* [N, T, K] */
                                  int N, int C, int H, int W, int P) {
    const int index = get_global_id(0);
    const int w = W / P, T = (H / P) * w, K = C * P * P;
    if (index >= N * T * K) return;
    const int feature = index % K, token = index / K % T, n = index / (K * T);
    const int py = feature / (P * C), px = feature / C % P, c = feature % C;
    const int row = token / w * P + py, col = token % w * P + px;
    dx[index] = dimage[((n * C + c) * H + row) * W + col];
}

/* tokens[r, d] = bias[d] (+ pos_embed[r % T, d]); the GEMM then adds
 * patches W^T with beta = 1. One work-item per element. */
__kernel void patch_embed_init(__global const float *bias,      /* [D] */
                               __global const float *pos_embed, /* [T, D] (unused without HAS_POS) */
                               __global float *tokens,          /* [rows, D] */
                               int rows, int T, int D) {
    const int index = get_global_id(0);
    if (index >= rows * D) return;
    const int d = index % D;
    float value = bias[d];
#ifdef HAS_POS
    value += pos_embed[index / D % T * D + d];
#endif
    tokens[index] = value;
}

#define SUM_COLUMNS 32
#define SUM_LANES 8

/* Pass 1 of the column sum: partial[g, d] = sum of x[r, d] over the rows of
 * group g (rows_per_group consecutive rows). Local size (SUM_COLUMNS, SUM_LANES). */
__kernel __attribute__((reqd_work_group_size(SUM_COLUMNS, SUM_LANES, 1)))
void column_partial_sums(__global const float *x, /* [rows, D] */
                         __global float *partial, /* [groups, D] from element partial_offset */
                         int partial_offset, int rows, int D, int rows_per_group) {
    __local float lane_sums[SUM_LANES][SUM_COLUMNS];
    const int d = get_global_id(0), lane = get_local_id(1), group = get_group_id(1);
    const int first = group * rows_per_group;
    const int last = min(rows, first + rows_per_group);
    float sum = 0.0f;
    if (d < D)
        for (int r = first + lane; r < last; r += SUM_LANES) sum += x[r * D + d];
    lane_sums[lane][get_local_id(0)] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane != 0 || d >= D) return;
    for (int l = 1; l < SUM_LANES; l++) sum += lane_sums[l][get_local_id(0)];
    partial[partial_offset + group * D + d] = sum;
}

/* Pass 2: out[d] += sum_g partial[g, d], in a fixed order (deterministic). */
__kernel void column_sums_accumulate(__global const float *partial, /* [groups, D] from partial_offset */
                                     int partial_offset,
                                     __global float *out,           /* [D] accumulate */
                                     int groups, int D) {
    const int d = get_global_id(0);
    if (d >= D) return;
    float sum = 0.0f;
    for (int g = 0; g < groups; g++) sum += partial[partial_offset + g * D + d];
    out[d] += sum;
}

/* ---------------------------------------------------------- fused patch embedding
 * For K = C*P*P <= 64 (-DPATCH_K=K), the patch embedding without the patches
 * buffer or a GEMM (a GEMM with K = 16 is bound by its own overheads):
 *   tokens[r, d] = (bias[d] (+ pos_embed[r % T, d])) + sum_k weight[d, k] patch(r, k)
 *   partial[g, k, d] = sum over the rows of group g of dtokens[r, d] patch(r, k)   (k < K)
 *   partial[g, K, d] = sum over the rows of group g of dtokens[r, d]              (the bias)
 * patch(r, k) is read straight from the image (the same address for every d of a
 * row: a broadcast). */
#ifdef PATCH_K

/* image offset of patch(r, feature 0) and the per-feature offsets follow (c, py, px). */
static int patch_base(int r, int C, int H, int W, int P) {
    const int w = W / P, T = (H / P) * w;
    const int n = r / T, token = r % T;
    return ((n * C) * H + token / w * P) * W + token % w * P;
}

static int feature_offset(int k, int H, int W, int P) {
    const int c = k / (P * P), py = k / P % P, px = k % P;
    return (c * H + py) * W + px;
}

#define EMBED_ROWS 8

/* One work-item per (d, EMBED_ROWS rows). Global (round(D), ceil(rows / EMBED_ROWS)). */
__kernel void patch_embed_fused_forward(__global const float *image,     /* [N, C, H, W] */
                                        __global const float *weight,    /* [D, K] */
                                        __global const float *bias,      /* [D] */
                                        __global const float *pos_embed, /* [T, D] */
                                        __global float *tokens,          /* [rows, D] */
                                        int rows, int C, int H, int W, int P, int D) {
    const int d = get_global_id(0), first = get_global_id(1) * EMBED_ROWS;
    if (d >= D) return;
    const int T = (H / P) * (W / P);
    float w[PATCH_K];
    int offsets[PATCH_K];
    for (int k = 0; k < PATCH_K; k++) {
        w[k] = weight[d * PATCH_K + k];
        offsets[k] = feature_offset(k, H, W, P);
    }
    const float b = bias[d];
    const int last = min(rows, first + EMBED_ROWS);
    for (int r = first; r < last; r++) {
        const int base = patch_base(r, C, H, W, P);
        float sum = 0.0f;
        for (int k = 0; k < PATCH_K; k++) sum = fma(w[k], image[base + offsets[k]], sum);
        float value = b;
#ifdef HAS_POS
        value += pos_embed[r % T * D + d];
#endif
        tokens[r * D + d] = value + sum;
    }
}

/* Pass 1 of dweight and dbias. Local size (SUM_COLUMNS, SUM_LANES); group g along
 * dimension 1 owns rows [g * rows_per_group, ...), lane l every SUM_LANES-th of them. */
__kernel __attribute__((reqd_work_group_size(SUM_COLUMNS, SUM_LANES, 1)))
void patch_embed_weight_partials(__global const float *image,   /* [N, C, H, W] */
                                 __global const float *dtokens, /* [rows, D] */
                                 __global float *partial,       /* [groups, K + 1, D] */
                                 int rows, int C, int H, int W, int P, int D,
                                 int rows_per_group, int partial_offset) {
    __local float lane_sums[SUM_LANES][SUM_COLUMNS];
    const int d = get_global_id(0), lane = get_local_id(1), group = get_group_id(1);
    const int first = group * rows_per_group, last = min(rows, first + rows_per_group);
    float sums[PATCH_K + 1];
    int offsets[PATCH_K];
    for (int k = 0; k < PATCH_K; k++) {
        sums[k] = 0.0f;
        offsets[k] = feature_offset(k, H, W, P);
    }
    sums[PATCH_K] = 0.0f;
    if (d < D)
        for (int r = first + lane; r < last; r += SUM_LANES) {
            const float g = dtokens[r * D + d];
            const int base = patch_base(r, C, H, W, P);
            for (int k = 0; k < PATCH_K; k++) sums[k] = fma(g, image[base + offsets[k]], sums[k]);
            sums[PATCH_K] += g;
        }
    for (int k = 0; k <= PATCH_K; k++) {
        barrier(CLK_LOCAL_MEM_FENCE);
        lane_sums[lane][get_local_id(0)] = sums[k];
        barrier(CLK_LOCAL_MEM_FENCE);
        if (lane == 0 && d < D) {
            float total = 0.0f;
            for (int l = 0; l < SUM_LANES; l++) total += lane_sums[l][get_local_id(0)];
            partial[partial_offset + (group * (PATCH_K + 1) + k) * D + d] = total;
        }
    }
}

/* Pass 2: one work-item per (d, k <= K); sums the groups in order and accumulates. */
__kernel void patch_embed_weight_accumulate(__global const float *partial, /* [groups, K + 1, D] */
                                            __global float *dweight,       /* [D, K] */
                                            __global float *dbias,         /* [D] */
                                            int groups, int D, int partial_offset) {
    const int d = get_global_id(0), k = get_global_id(1);
    if (d >= D || k > PATCH_K) return;
    float sum = 0.0f;
    for (int g = 0; g < groups; g++)
        sum += partial[partial_offset + (g * (PATCH_K + 1) + k) * D + d];
    if (k < PATCH_K)
        dweight[d * PATCH_K + k] += sum;
    else
        dbias[d] += sum;
}
#endif
