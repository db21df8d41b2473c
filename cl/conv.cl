/* conv.cl: depthwise 3x3 convolution, stride 1, zero padding 1, on the token
 * grid (N, height, width, D) channels-last (DIG_MODEL.md §2.1 step 5; PyTorch
 * Conv2d with groups = D, which is a cross-correlation):
 *   y[n, r, c, d] = bias[d] + sum_{a,b} w[d, a, b] x[n, r+a-1, c+b-1, d]
 * dx is the same stencil with the kernel rotated by 180 degrees and no bias
 * (-DROTATED):
 *   dx[n, r, c, d] = sum_{a,b} w[d, 2-a, 2-b] dy[n, r+a-1, c+b-1, d]
 * Parameter gradients, two deterministic passes (no atomics):
 *   partial[g, k, d] = sum over the grid rows of group g of
 *                      dy[n, r, c, d] x[n, r+a-1, c+b-1, d]   (k = 3a + b < 9)
 *                      dy[n, r, c, d]                          (k = 9, the bias)
 *   dweight[d, k] += sum_g partial[g, k, d];  dbias[d] += sum_g partial[g, 9, d]
 *
 * Layout: d is the fastest index everywhere, so consecutive work-items touch
 * consecutive addresses. The stencil kernel slides a 3x3 window down a strip
 * of STRIP_ROWS rows, loading 3 new values per output instead of 9.
 */

#define STRIP_ROWS 8

/* The stencil works on VEC channels at once (-DVEC=4 when D % 4 == 0). */
#ifndef VEC
#define VEC 1
#endif
#if VEC == 4
typedef float4 vec;
#define LOAD_VEC(p, i) vload4(0, (p) + (i))
#define STORE_VEC(v, p, i) vstore4((v), 0, (p) + (i))
#else
typedef float vec;
#define LOAD_VEC(p, i) ((p)[i])
#define STORE_VEC(v, p, i) ((p)[i] = (v))
#endif

/* Loads x[n, row, col-1..col+1, d..d+VEC-1] (zero outside the grid). */
static void load_triple(__global const float *x, int n, int row, int col, int d, int height,
                        int width, int D, vec *out) {
    for (int b = 0; b < 3; b++) {
        const int c = col + b - 1;
        const int inside = row >= 0 && row < height && c >= 0 && c < width;
        out[b] = inside ? LOAD_VEC(x, ((n * height + row) * width + c) * D + d) : (vec)(0.0f);
    }
}

/* Scalar version for the weight-gradient pass. */
static void load_triple_scalar(__global const float *x, int n, int row, int col, int d,
                               int height, int width, int D, float *out) {
    for (int b = 0; b < 3; b++) {
        const int c = col + b - 1;
        const int inside = row >= 0 && row < height && c >= 0 && c < width;
        out[b] = inside ? x[((n * height + row) * width + c) * D + d] : 0.0f;
    }
}

/* One work-item per (VEC channels, col, n, strip of rows). Global (D / VEC, width, N*strips). */
__kernel void depthwise_conv_stencil(__global const float *x,      /* [N, height*width, D] */
                                     __global const float *weight, /* [D, 3, 3] */
                                     __global const float *bias,   /* [D] (unused if ROTATED) */
                                     __global float *y,            /* [N, height*width, D] */
                                     int N, int height, int width, int D) {
    const int d = get_global_id(0) * VEC, col = get_global_id(1);
    const int strips = (height + STRIP_ROWS - 1) / STRIP_ROWS;
    const int n = get_global_id(2) / strips, first = get_global_id(2) % strips * STRIP_ROWS;
    if (d >= D || col >= width || n >= N) return;
    vec w[9];
    for (int k = 0; k < 9; k++) {
#ifdef ROTATED
        const int tap = 8 - k;
#else
        const int tap = k;
#endif
#if VEC == 4
        w[k] = (float4)(weight[d * 9 + tap], weight[(d + 1) * 9 + tap], weight[(d + 2) * 9 + tap],
                        weight[(d + 3) * 9 + tap]);
#else
        w[k] = weight[d * 9 + tap];
#endif
    }
#ifdef ROTATED
    const vec offset = 0.0f;
#else
    const vec offset = LOAD_VEC(bias, d);
#endif
    vec above[3], middle[3], below[3];
    load_triple(x, n, first - 1, col, d, height, width, D, above);
    load_triple(x, n, first, col, d, height, width, D, middle);
    const int last = min(height, first + STRIP_ROWS);
    for (int row = first; row < last; row++) {
        load_triple(x, n, row + 1, col, d, height, width, D, below);
        vec sum = offset;
        for (int b = 0; b < 3; b++)
            sum += w[b] * above[b] + w[3 + b] * middle[b] + w[6 + b] * below[b];
        STORE_VEC(sum, y, ((n * height + row) * width + col) * D + d);
        for (int b = 0; b < 3; b++) {
            above[b] = middle[b];
            middle[b] = below[b];
        }
    }
}

#define GRAD_CHANNELS 32
#define GRAD_LANES 8
#define GRAD_TERMS 10

/* Pass 1. Local size (GRAD_CHANNELS, GRAD_LANES). The work is cut into units of
 * one grid row and up to `segment` columns (N*height*ceil(width/segment) units);
 * group g along dimension 1 owns units [g*units_per_group, ...), lane l takes every
 * GRAD_LANES-th of them and sweeps its columns left to right. */
__kernel __attribute__((reqd_work_group_size(GRAD_CHANNELS, GRAD_LANES, 1)))
void depthwise_conv_weight_partials(__global const float *x,  /* [N, height*width, D] */
                                    __global const float *dy, /* [N, height*width, D] */
                                    __global float *partial,  /* [groups, 10, D] */
                                    int N, int height, int width, int D, int units_per_group,
                                    int segment) {
    __local float lane_sums[GRAD_LANES][GRAD_TERMS][GRAD_CHANNELS];
    const int channel = get_local_id(0), lane = get_local_id(1), group = get_group_id(1);
    const int d = get_global_id(0);
    const int segments = (width + segment - 1) / segment;
    const int first = group * units_per_group;
    const int last = min(N * height * segments, first + units_per_group);
    float sums[GRAD_TERMS];
    for (int k = 0; k < GRAD_TERMS; k++) sums[k] = 0.0f;
    if (d < D)
        for (int unit = first + lane; unit < last; unit += GRAD_LANES) {
            const int grid_row = unit / segments, first_col = unit % segments * segment;
            const int last_col = min(width, first_col + segment);
            const int n = grid_row / height, row = grid_row % height;
            float window[3][3]; /* x at rows row-1..row+1, columns col-1..col+1 */
            for (int a = 0; a < 3; a++)
                load_triple_scalar(x, n, row + a - 1, first_col, d, height, width, D, window[a]);
            for (int col = first_col; col < last_col; col++) {
                const float g = dy[((n * height + row) * width + col) * D + d];
                for (int a = 0; a < 3; a++)
                    for (int b = 0; b < 3; b++) sums[3 * a + b] += g * window[a][b];
                sums[9] += g;
                for (int a = 0; a < 3; a++) {
                    const int r = row + a - 1, c = col + 2;
                    const int inside = r >= 0 && r < height && c < width;
                    window[a][0] = window[a][1];
                    window[a][1] = window[a][2];
                    window[a][2] = inside ? x[((n * height + r) * width + c) * D + d] : 0.0f;
                }
            }
        }
    for (int k = 0; k < GRAD_TERMS; k++) lane_sums[lane][k][channel] = sums[k];
    barrier(CLK_LOCAL_MEM_FENCE);
    /* Lanes now split the 10 terms between them for the reduction over lanes. */
    for (int k = lane; k < GRAD_TERMS; k += GRAD_LANES) {
        float sum = 0.0f;
        for (int l = 0; l < GRAD_LANES; l++) sum += lane_sums[l][k][channel];
        if (d < D) partial[(group * GRAD_TERMS + k) * D + d] = sum;
    }
}

/* Pass 2: one work-item per (d, k); sums the groups in order. */
__kernel void depthwise_conv_weight_accumulate(__global const float *partial, /* [groups, 10, D] */
                                               __global float *dweight,       /* [D, 9] accumulate */
                                               __global float *dbias,         /* [D] accumulate */
                                               int groups, int D) {
    const int d = get_global_id(0), k = get_global_id(1);
    if (d >= D || k >= GRAD_TERMS) return;
    float sum = 0.0f;
    for (int g = 0; g < groups; g++) sum += partial[(g * GRAD_TERMS + k) * D + d];
    if (k < 9)
        dweight[d * 9 + k] += sum;
    else
        dbias[d] += sum;
}
