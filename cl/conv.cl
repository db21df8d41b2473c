/* conv.cl: depthwise 3x3 convolution, stride 1, zero padding 1, on the token
 * grid (N, height, width, D) channels-last (docs/MODEL.md §2.1 step 5; PyTorch
 * Conv2d with groups = D, which is a cross-correlation):
 *   y[n, r, c, d] = bias[d] + sum_{a,b} w[d, a, b] x[n, r+a-1, c+b-1, d]
 * Backward, one fused pass over dy and x (dx is the same stencil with the kernel
 * rotated by 180 degrees and no bias):
 *   dx[n, r, c, d]  = sum_{a,b} w[d, 2-a, 2-b] dy[n, r+a-1, c+b-1, d]
 *   partial[t, k, d] = sum over the cells (r, c) of tile t of
 *                      dy[n, r, c, d] x[n, r+a-1, c+b-1, d]   (k = 3a + b < 9)
 *                      dy[n, r, c, d]                          (k = 9, the bias)
 * then a deterministic sum over the tiles (no atomics, fixed order):
 *   dweight[d, k] += sum_t partial[t, k, d];  dbias[d] += sum_t partial[t, 9, d]
 *
 * Layout: d is the fastest index everywhere, so consecutive work-items touch
 * consecutive addresses. A work-item owns one channel, COLS consecutive columns
 * and a strip of STRIP_ROWS rows: it slides a 3 x (COLS + 2) window down the
 * strip, loading COLS + 2 new values per row for COLS outputs. A work-group is
 * (channels, column blocks); a backward tile is one work-group's columns x one strip.
 *
 * Options: -DCOLS (columns per work-item), -DSTRIP_ROWS, -DGROUP_CHANNELS and
 * -DGROUP_BLOCKS (local size of the fused backward), -DNO_DX (backward: skip dx).
 */

#ifndef COLS
#define COLS 4
#endif
#ifndef STRIP_ROWS
#define STRIP_ROWS 8
#endif
#ifndef GROUP_CHANNELS
#define GROUP_CHANNELS 32
#endif
#ifndef GROUP_BLOCKS
#define GROUP_BLOCKS 8
#endif
#define SPAN (COLS + 2)
#define TERMS 10

/* out[b] = x[n, row, col0 - 1 + b, d] for b < SPAN (zero outside the grid or if !active). */
static void load_span(__global const float *x, int n, int row, int col0, int d, int height,
                      int width, int D, int active, float *out /* [SPAN] */) {
    const int row_inside = active && row >= 0 && row < height;
    __global const float *base = x + ((size_t)(n * height + row) * width) * D + d;
    for (int b = 0; b < SPAN; b++) {
        const int c = col0 + b - 1;
        out[b] = (row_inside && c >= 0 && c < width) ? base[(size_t)c * D] : 0.0f;
    }
}

/* Slides rows: above <- middle <- below. */
static void shift_rows(float *above, float *middle, const float *below /* [SPAN] */) {
    for (int b = 0; b < SPAN; b++) {
        above[b] = middle[b];
        middle[b] = below[b];
    }
}

/* sum_{a,b} w[3a + b] rows_a[j + b] for output column j of the block. */
static float stencil_at(const float *w /* [9] */, const float *above, const float *middle,
                        const float *below, int j) {
    float sum = 0.0f;
    for (int b = 0; b < 3; b++)
        sum += w[b] * above[j + b] + w[3 + b] * middle[j + b] + w[6 + b] * below[j + b];
    return sum;
}

/* Stores out[j] at columns col0 + j < width of one row. */
static void store_block(__global float *y, int n, int row, int col0, int d, int height, int width,
                        int D, const float *out /* [COLS] */) {
    __global float *base = y + ((size_t)(n * height + row) * width) * D + d;
    for (int j = 0; j < COLS; j++)
        if (col0 + j < width) base[(size_t)(col0 + j) * D] = out[j];
}

/* Forward. Global (D, ceil(width / COLS), N * strips); any local size. */
__kernel void depthwise_conv_forward(__global const float *x,      /* [N, height*width, D] */
                                     __global const float *weight, /* [D, 3, 3] */
                                     __global const float *bias,   /* [D] */
                                     __global float *y,            /* [N, height*width, D] */
                                     int N, int height, int width, int D) {
    const int d = get_global_id(0), col0 = get_global_id(1) * COLS;
    const int strips = (height + STRIP_ROWS - 1) / STRIP_ROWS;
    const int n = get_global_id(2) / strips, first = get_global_id(2) % strips * STRIP_ROWS;
    if (d >= D || col0 >= width || n >= N) return;
    float w[9], above[SPAN], middle[SPAN], below[SPAN], out[COLS];
    for (int k = 0; k < 9; k++) w[k] = weight[d * 9 + k];
    const float offset = bias[d];
    load_span(x, n, first - 1, col0, d, height, width, D, 1, above);
    load_span(x, n, first, col0, d, height, width, D, 1, middle);
    const int last = min(height, first + STRIP_ROWS);
    for (int row = first; row < last; row++) {
        load_span(x, n, row + 1, col0, d, height, width, D, 1, below);
        for (int j = 0; j < COLS; j++) out[j] = offset + stencil_at(w, above, middle, below, j);
        store_block(y, n, row, col0, d, height, width, D, out);
        shift_rows(above, middle, below);
    }
}

#ifndef ROW_CHANNELS
#define ROW_CHANNELS 64
#endif
/* Forward on CPU devices: one work-item per (channel block, row, sample) walks
 * the row's columns, ROW_CHANNELS channels at a time in the innermost loops
 * (contiguous, so they vectorise), with the grid edges tested once per tap
 * rather than per element. Global (ceil(D / ROW_CHANNELS), height, N), local (1, 1, 1). */
__kernel void depthwise_conv_forward_rows(__global const float *x,      /* [N, height*width, D] */
                                          __global const float *weight, /* [D, 3, 3] */
                                          __global const float *bias,   /* [D] */
                                          __global float *y,            /* [N, height*width, D] */
                                          int N, int height, int width, int D) {
    const int d0 = get_global_id(0) * ROW_CHANNELS, row = get_global_id(1), n = get_global_id(2);
    if (d0 >= D || row >= height || n >= N) return;
    const int count = min(ROW_CHANNELS, D - d0);
    float w[9][ROW_CHANNELS], acc[ROW_CHANNELS];
    for (int k = 0; k < 9; k++)
        for (int d = 0; d < count; d++) w[k][d] = weight[(size_t)(d0 + d) * 9 + k];
    for (int col = 0; col < width; col++) {
        for (int d = 0; d < count; d++) acc[d] = 0.0f;
        for (int a = 0; a < 3; a++) {
            const int r = row + a - 1;
            if (r < 0 || r >= height) continue;
            for (int b = 0; b < 3; b++) {
                const int c = col + b - 1;
                if (c < 0 || c >= width) continue;
                __global const float *src = x + ((size_t)(n * height + r) * width + c) * D + d0;
                for (int d = 0; d < count; d++) acc[d] += w[3 * a + b][d] * src[d];
            }
        }
        __global float *out = y + ((size_t)(n * height + row) * width + col) * D + d0;
        for (int d = 0; d < count; d++) out[d] = bias[d0 + d] + acc[d];
    }
}

/* Adds this row's parameter-gradient terms: dy of the middle row against the x window. */
static void add_weight_terms(const float *g /* dy middle [SPAN] */, const float *xa,
                             const float *xm, const float *xb /* x rows [SPAN] */,
                             float *sums /* [TERMS] */) {
    for (int j = 0; j < COLS; j++) {
        const float gy = g[j + 1]; /* zero outside the grid */
        for (int b = 0; b < 3; b++) {
            sums[b] += gy * xa[j + b];
            sums[3 + b] += gy * xm[j + b];
            sums[6 + b] += gy * xb[j + b];
        }
        sums[9] += gy;
    }
}

/* Sums the GROUP_BLOCKS lanes' terms in lane order and writes this tile's partial row. */
static void store_tile_partial(const float *sums, int d, int D,
                               __local float *lane_sums, /* [GROUP_BLOCKS, 10, GROUP_CHANNELS] */
                               __global float *partial /* [10, D] */) {
    const int channel = get_local_id(0), lane = get_local_id(1);
    for (int k = 0; k < TERMS; k++) lane_sums[(lane * TERMS + k) * GROUP_CHANNELS + channel] = sums[k];
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int k = lane; k < TERMS; k += GROUP_BLOCKS) {
        float sum = 0.0f;
        for (int l = 0; l < GROUP_BLOCKS; l++)
            sum += lane_sums[(l * TERMS + k) * GROUP_CHANNELS + channel];
        if (d < D) partial[k * D + d] = sum;
    }
}

/* Fused backward: dx and the tile's weight/bias partials in one pass over dy and x.
 * Local (GROUP_CHANNELS, GROUP_BLOCKS); global (ceil(D), blocks rounded up to
 * GROUP_BLOCKS, N * strips). Tile t = get_group_id(2) * groups(1) + get_group_id(1). */
__kernel __attribute__((reqd_work_group_size(GROUP_CHANNELS, GROUP_BLOCKS, 1)))
void depthwise_conv_backward(__global const float *x,      /* [N, height*width, D] */
                             __global const float *weight, /* [D, 3, 3] */
                             __global const float *dy,     /* [N, height*width, D] */
                             __global float *dx,           /* [N, height*width, D] */
                             __global float *partial,      /* [tiles, 10, D] */
                             int height, int width, int D) {
    __local float lane_sums[GROUP_BLOCKS * TERMS * GROUP_CHANNELS];
    const int d = get_global_id(0), col0 = get_global_id(1) * COLS;
    const int strips = (height + STRIP_ROWS - 1) / STRIP_ROWS;
    const int n = get_group_id(2) / strips, first = get_group_id(2) % strips * STRIP_ROWS;
    const int active = d < D && col0 < width;
    float w[9], sums[TERMS];
    float ga[SPAN], gm[SPAN], gb[SPAN], xa[SPAN], xm[SPAN], xb[SPAN];
    for (int k = 0; k < 9; k++) w[k] = active ? weight[d * 9 + 8 - k] : 0.0f; /* rotated */
    for (int k = 0; k < TERMS; k++) sums[k] = 0.0f;
    load_span(dy, n, first - 1, col0, d, height, width, D, active, ga);
    load_span(dy, n, first, col0, d, height, width, D, active, gm);
    load_span(x, n, first - 1, col0, d, height, width, D, active, xa);
    load_span(x, n, first, col0, d, height, width, D, active, xm);
    const int last = min(height, first + STRIP_ROWS);
    for (int row = first; row < last; row++) {
        load_span(dy, n, row + 1, col0, d, height, width, D, active, gb);
        load_span(x, n, row + 1, col0, d, height, width, D, active, xb);
#ifndef NO_DX
        float out[COLS];
        for (int j = 0; j < COLS; j++) out[j] = stencil_at(w, ga, gm, gb, j);
        if (active) store_block(dx, n, row, col0, d, height, width, D, out);
#endif
        add_weight_terms(gm, xa, xm, xb, sums);
        shift_rows(ga, gm, gb);
        shift_rows(xa, xm, xb);
    }
    const int tile = get_group_id(2) * get_num_groups(1) + get_group_id(1);
    store_tile_partial(sums, d, D, lane_sums, partial + (size_t)tile * TERMS * D);
}

#define SUM_CHANNELS 32
#define SUM_LANES 8

/* Sum over the tiles. Local (SUM_CHANNELS, SUM_LANES); global (ceil(D), 10 * SUM_LANES):
 * group (., k) owns term k; lane l adds tiles l, l + SUM_LANES, ... in order, then
 * lane 0 adds the lanes in order. */
__kernel __attribute__((reqd_work_group_size(SUM_CHANNELS, SUM_LANES, 1)))
void depthwise_conv_weight_accumulate(__global const float *partial, /* [tiles, 10, D] */
                                      __global float *dweight,       /* [D, 9] accumulate */
                                      __global float *dbias,         /* [D] accumulate */
                                      int tiles, int D) {
    __local float lane_sums[SUM_LANES][SUM_CHANNELS];
    const int d = get_global_id(0), channel = get_local_id(0), lane = get_local_id(1);
    const int k = get_group_id(1);
    float sum = 0.0f;
    if (d < D)
        for (int t = lane; t < tiles; t += SUM_LANES) sum += partial[((size_t)t * TERMS + k) * D + d];
    lane_sums[lane][channel] = sum;
    barrier(CLK_LOCAL_MEM_FENCE);
    if (lane != 0 || d >= D) return;
    float total = 0.0f;
    for (int l = 0; l < SUM_LANES; l++) total += lane_sums[l][channel];
    if (k < 9)
        dweight[d * 9 + k] += total;
    else
        dbias[d] += total;
}
