/* norm.c: launchers of LayerNorm, LayerNorm + modulate and RMSNorm x swish gate
 * (digcl/norm.h, cl/norm.cl).
 *
 * Row layout: LANES items per row, each owning COLS vectors of VEC floats, ROWS rows
 * per 256-item group (cl/norm.cl). Backward column sums (dshift, dscale, dweight)
 * are per-group partials in the workspace, then digcl_column_sum. */
#include "digcl/norm.h"

#include <stdio.h>
#include <string.h>

#include "ops_common.h"
#include "digcl/reduce.h"

#define GROUP_ITEMS             256
#define MAX_COLS                8
#define LAYERNORM_TARGET_GROUPS 1024 /* modulate backward: enough groups to fill the device */
#define RMSNORM_TARGET_GROUPS   1024

typedef struct row_layout {
    int vec, lanes, cols, rows;
    char options[96];
} row_layout;

static row_layout make_layout_items(int D, int vec, int items) {
    row_layout layout = {vec, 1, 1, 1, {0}};
    const size_t D_vec = (size_t)(D / vec);
    size_t lanes = ops_pow2_at_least(D_vec);
    if (lanes > 32) lanes = 32;
    if (D_vec > 32 * MAX_COLS) lanes = ops_pow2_at_least(ops_ceil_div(D_vec, MAX_COLS));
    if (lanes > GROUP_ITEMS)
        digcl_fatal("norm: row width %d is too wide (at most %d vectors of %d floats)", D,
                    DIGCL_NORM_MAX_ROW_VECTORS, vec);
    layout.lanes = (int)lanes;
    layout.cols = (int)ops_ceil_div(D_vec, lanes);
    layout.rows = items / layout.lanes;
    snprintf(layout.options, sizeof layout.options, "-DVEC=%d -DLANES=%d -DCOLS=%d -DROWS=%d",
             layout.vec, layout.lanes, layout.cols, layout.rows);
    return layout;
}

int digcl_norm_width_supported(int width) {
    return width >= 1 && (width % 4 == 0 ? width / 4 : width) <= DIGCL_NORM_MAX_ROW_VECTORS;
}

static row_layout make_layout(int D, int vec) { return make_layout_items(D, vec, GROUP_ITEMS); }

/* Forward kernels on CPU devices: one item per row (LANES = 1, the whole row in its
 * registers), CPU_ROWS rows per group. PoCL runs a group's items as a loop between
 * barriers, so the lane reductions of the GPU layout (32 lanes x 8 rows) cost more
 * than the rows themselves. Backward kernels keep the GPU layout: their workspace size
 * is planned without a device. */
enum { CPU_ROWS = 16 };

static row_layout make_forward_layout(digcl_context *ctx, int D, int vec) {
    if (!(digcl_context_device(ctx)->type & CL_DEVICE_TYPE_CPU)) return make_layout(D, vec);
    row_layout layout = {vec, 1, D / vec, CPU_ROWS, {0}};
    snprintf(layout.options, sizeof layout.options, "-DVEC=%d -DLANES=1 -DCOLS=%d -DROWS=%d",
             layout.vec, layout.cols, layout.rows);
    return layout;
}

static void launch_groups(digcl_context *ctx, cl_kernel kernel, const char *label,
                          const row_layout *layout, size_t groups) {
    size_t global[2] = {(size_t)layout->lanes * groups, (size_t)layout->rows};
    size_t local[2] = {(size_t)layout->lanes, (size_t)layout->rows};
    digcl_launch(ctx, kernel, label, 2, global, local);
}

static void check_rows(int rows, int D, const char *op) {
    ops_check_positive(rows, "rows", op);
    ops_check_positive(D, "D", op);
    ops_check_int((size_t)rows * D, "rows * D", op);
}

static unsigned set_view(cl_kernel kernel, unsigned index, digcl_row_view view) {
    digcl_arg_mem(kernel, index, view.mem);
    digcl_arg_int(kernel, index + 1, (int)view.offset);
    digcl_arg_int(kernel, index + 2, (int)view.row_stride);
    return index + 3;
}

static int views_vec_width(int D, const digcl_row_view *views, int count) {
    size_t values[5] = {(size_t)D};
    for (int i = 0; i < count; ++i) {
        values[1 + 2 * i] = views[i].offset;
        values[2 + 2 * i] = views[i].row_stride;
    }
    return ops_vec_width(values, 1 + 2 * count);
}

/* ---------------------------------------------------------------- LayerNorm (+ modulate) */

static void layernorm_forward(digcl_context *ctx, int N, int T, int D, cl_mem x,
                              const digcl_row_view *shift, const digcl_row_view *scale, cl_mem y,
                              cl_mem mean, cl_mem rstd) {
    const int modulate = shift != NULL;
    const int vec = modulate ? views_vec_width(D, (digcl_row_view[]){*shift, *scale}, 2)
                             : views_vec_width(D, NULL, 0);
    const row_layout layout = make_forward_layout(ctx, D, vec);
    const int rows = N * T;
    digcl_row_view unused = {x, 0, 0};
    cl_kernel kernel = digcl_kernel(ctx, "norm", "layernorm_forward", layout.options);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_mem(kernel, 2, mean);
    digcl_arg_mem(kernel, 3, rstd);
    digcl_arg_int(kernel, 4, rows);
    digcl_arg_int(kernel, 5, D);
    digcl_arg_int(kernel, 6, T);
    digcl_arg_int(kernel, 7, modulate);
    unsigned index = set_view(kernel, 8, modulate ? *shift : unused);
    set_view(kernel, index, modulate ? *scale : unused);
    launch_groups(ctx, kernel, modulate ? "layernorm_modulate_forward" : "layernorm_forward",
                  &layout, ops_ceil_div((size_t)rows, (size_t)layout.rows));
}

void digcl_layernorm_forward(digcl_context *ctx, int rows, int D, cl_mem x, cl_mem y, cl_mem mean,
                             cl_mem rstd) {
    check_rows(rows, D, "layernorm_forward");
    layernorm_forward(ctx, 1, rows, D, x, NULL, NULL, y, mean, rstd);
}

void digcl_layernorm_modulate_forward(digcl_context *ctx, int N, int T, int D, cl_mem x,
                                      digcl_row_view shift, digcl_row_view scale, cl_mem y,
                                      cl_mem mean, cl_mem rstd) {
    ops_check_positive(N, "N", "layernorm_modulate_forward");
    check_rows(N * T, D, "layernorm_modulate_forward");
    ops_check_int(shift.offset + (size_t)N * shift.row_stride, "shift extent",
                  "layernorm_modulate");
    ops_check_int(scale.offset + (size_t)N * scale.row_stride, "scale extent",
                  "layernorm_modulate");
    layernorm_forward(ctx, N, T, D, x, &shift, &scale, y, mean, rstd);
}

typedef struct layernorm_backward_plan {
    int N, T, D;
    int iterations, chunks_per_n;
    size_t partial_floats; /* one of dshift / dscale partials: N * chunks_per_n * D */
    row_layout layout;
} layernorm_backward_plan;

/* Row batches per group so that the chunks per sample stay within `target`. */
static int batches_per_group(int T, int rows, size_t target) {
    return (int)ops_ceil_div(ops_ceil_div((size_t)T, (size_t)rows), target);
}

static layernorm_backward_plan plan_layernorm_backward(int N, int T, int D, int modulate, int vec) {
    /* With modulate, each group writes one partial row per output, and the dshift/dscale
     * column sums over the chunks must stay one launch (at most
     * DIGCL_COLUMN_SUM_PAIR_MAX_ROWS chunks per sample): one row batch per group where that
     * allows, else the fewest row batches that keep the chunks within the limit. A group
     * that walks several batches loads the next one before reducing the current one
     * (-DPREFETCH), and half-size groups (128 items) are used where they need at most two
     * batches (measured on an H200: DiG-S/2 19.7 -> 18.0 us, T = 12544 36.2 -> 31.0 us). */
    layernorm_backward_plan plan = {N, T, D, 1, 0, 0, make_layout(D, vec)};
    if (modulate) {
        size_t target = ops_ceil_div(LAYERNORM_TARGET_GROUPS, (size_t)N);
        if (target > DIGCL_COLUMN_SUM_PAIR_MAX_ROWS) target = DIGCL_COLUMN_SUM_PAIR_MAX_ROWS;
        const row_layout half = make_layout_items(D, vec, GROUP_ITEMS / 2);
        if (half.rows >= 1 && half.rows * half.lanes == GROUP_ITEMS / 2 &&
            batches_per_group(T, half.rows, target) <= 2)
            plan.layout = half;
        plan.iterations = batches_per_group(T, plan.layout.rows, target);
        if (plan.iterations > 1) strcat(plan.layout.options, " -DPREFETCH");
    }
    plan.chunks_per_n = (int)ops_ceil_div(ops_ceil_div((size_t)T, (size_t)plan.layout.rows),
                                          (size_t)plan.iterations);
    plan.partial_floats = modulate ? (size_t)N * plan.chunks_per_n * D : 0;
    return plan;
}

/* The larger of the float and float4 layouts (the views decide which one runs). */
size_t digcl_layernorm_modulate_backward_workspace_bytes(int N, int T, int D) {
    size_t bytes = 0;
    for (int vec = 1; vec <= (D % 4 == 0 ? 4 : 1); vec += 3) {
        const layernorm_backward_plan plan = plan_layernorm_backward(N, T, D, 1, vec);
        size_t need = 2 * plan.partial_floats * sizeof(float);
        if (need > bytes) bytes = need;
    }
    return bytes;
}

/* Launches the kernel; returns the plan it used (for the column sums). */
static layernorm_backward_plan layernorm_backward(digcl_context *ctx, int N, int T, int D,
                                                  cl_mem dy, cl_mem x, cl_mem mean, cl_mem rstd,
                                                  const digcl_row_view *scale, cl_mem dx,
                                                  int accumulate, cl_mem workspace) {
    const int modulate = scale != NULL;
    const int vec = views_vec_width(D, scale, modulate);
    const layernorm_backward_plan plan = plan_layernorm_backward(N, T, D, modulate, vec);
    const row_layout layout = plan.layout;
    digcl_row_view unused = {x, 0, 0};
    cl_kernel kernel = digcl_kernel(ctx, "norm", "layernorm_backward", layout.options);
    digcl_arg_mem(kernel, 0, dy);
    digcl_arg_mem(kernel, 1, x);
    digcl_arg_mem(kernel, 2, mean);
    digcl_arg_mem(kernel, 3, rstd);
    digcl_arg_mem(kernel, 4, dx);
    digcl_arg_int(kernel, 5, accumulate);
    digcl_arg_int(kernel, 6, T);
    digcl_arg_int(kernel, 7, D);
    digcl_arg_int(kernel, 8, plan.chunks_per_n);
    digcl_arg_int(kernel, 9, plan.iterations);
    digcl_arg_int(kernel, 10, modulate);
    unsigned index = set_view(kernel, 11, modulate ? *scale : unused);
    digcl_arg_mem(kernel, index, modulate ? workspace : dx);
    digcl_arg_int(kernel, index + 1, (int)plan.partial_floats);
    launch_groups(ctx, kernel, modulate ? "layernorm_modulate_backward" : "layernorm_backward",
                  &layout, (size_t)N * plan.chunks_per_n);
    return plan;
}

void digcl_layernorm_backward(digcl_context *ctx, int rows, int D, cl_mem dy, cl_mem x, cl_mem mean,
                              cl_mem rstd, cl_mem dx, int accumulate) {
    check_rows(rows, D, "layernorm_backward");
    layernorm_backward(ctx, 1, rows, D, dy, x, mean, rstd, NULL, dx, accumulate, NULL);
}

void digcl_layernorm_modulate_backward(digcl_context *ctx, int N, int T, int D, cl_mem dy, cl_mem x,
                                       cl_mem mean, cl_mem rstd, digcl_row_view scale, cl_mem dx,
                                       int accumulate, digcl_row_view dshift, digcl_row_view dscale,
                                       cl_mem workspace) {
    ops_check_positive(N, "N", "layernorm_modulate_backward");
    check_rows(N * T, D, "layernorm_modulate_backward");
    if (!workspace) digcl_fatal("layernorm_modulate_backward: needs a workspace");
    const layernorm_backward_plan plan =
        layernorm_backward(ctx, N, T, D, dy, x, mean, rstd, &scale, dx, accumulate, workspace);
    if (dshift.row_stride != dscale.row_stride) {
        const size_t scratch = 2 * plan.partial_floats; /* unused: chunks_per_n <= 256 */
        digcl_column_sum(ctx, N, plan.chunks_per_n, D, workspace, 0, 1.0f, dshift.mem,
                         dshift.offset, dshift.row_stride, 0, workspace, scratch);
        digcl_column_sum(ctx, N, plan.chunks_per_n, D, workspace, plan.partial_floats, 1.0f,
                         dscale.mem, dscale.offset, dscale.row_stride, 0, workspace, scratch);
        return;
    }
    /* The partials are [2, N, chunks, D]: both sums in one launch. */
    digcl_column_sum_pair(ctx, N, plan.chunks_per_n, D, workspace, 0, 1.0f, dshift.mem,
                          dshift.offset, dscale.mem, dscale.offset, dshift.row_stride, 0);
}

/* ---------------------------------------------------------------- RMSNorm x swish gate */

static int rmsnorm_vec_width(int V, size_t weight_offset, digcl_gate_rows gate_rows) {
    size_t values[4] = {(size_t)V, weight_offset, gate_rows.offset, gate_rows.token_stride};
    return ops_vec_width(values, 4);
}

/* The gate_rows arguments (cl/norm.cl, GATE_ROWS) from `index` on; rows split into
 * whole tokens of heads rows of V that do not overlap. */
static unsigned set_gate_rows(cl_kernel kernel, unsigned index, int rows, int V, digcl_gate_rows g,
                              const char *op) {
    if (g.heads < 1 || rows % g.heads != 0 || g.token_stride < (size_t)g.heads * V)
        digcl_fatal("%s: gate rows of %d heads x %d with token stride %zu do not tile %d rows", op,
                    g.heads, V, g.token_stride, rows);
    ops_check_int(g.token_stride, "gate token stride", op);
    cl_ulong offset = g.offset;
    DIGCL_CL_CHECK(clSetKernelArg(kernel, index, sizeof offset, &offset));
    digcl_arg_int(kernel, index + 1, (int)g.token_stride);
    digcl_arg_int(kernel, index + 2, g.heads);
    return index + 3;
}

/* gate, its rows and the RMSNorm weight, from `index` on (both kernels take them in this
 * order); returns the next index. */
static unsigned set_gate_and_weight(cl_kernel kernel, unsigned index, cl_mem gate,
                                    digcl_gate_rows gate_rows, cl_mem weight, size_t weight_offset,
                                    int rows, int V, const char *op) {
    digcl_arg_mem(kernel, index, gate);
    index = set_gate_rows(kernel, index + 1, rows, V, gate_rows, op);
    digcl_arg_mem(kernel, index, weight);
    digcl_arg_int(kernel, index + 1, (int)weight_offset);
    return index + 2;
}

void digcl_rmsnorm_gate_forward(digcl_context *ctx, int rows, int V, cl_mem x, cl_mem gate,
                                digcl_gate_rows gate_rows, cl_mem weight, size_t weight_offset,
                                cl_mem y) {
    check_rows(rows, V, "rmsnorm_gate_forward");
    ops_check_int(weight_offset + (size_t)V, "weight extent", "rmsnorm_gate_forward");
    const row_layout layout =
        make_forward_layout(ctx, V, rmsnorm_vec_width(V, weight_offset, gate_rows));
    cl_kernel kernel = digcl_kernel(ctx, "norm", "rmsnorm_gate_forward", layout.options);
    digcl_arg_mem(kernel, 0, x);
    unsigned index = set_gate_and_weight(kernel, 1, gate, gate_rows, weight, weight_offset, rows, V,
                                         "rmsnorm_gate_forward");
    digcl_arg_mem(kernel, index, y);
    digcl_arg_int(kernel, index + 1, rows);
    digcl_arg_int(kernel, index + 2, V);
    launch_groups(ctx, kernel, "rmsnorm_gate_forward", &layout,
                  ops_ceil_div((size_t)rows, (size_t)layout.rows));
}

typedef struct rmsnorm_backward_plan {
    int iterations, chunks;
} rmsnorm_backward_plan;

static rmsnorm_backward_plan plan_rmsnorm_backward(int rows, const row_layout *layout) {
    size_t groups = ops_ceil_div((size_t)rows, (size_t)layout->rows);
    rmsnorm_backward_plan plan;
    plan.iterations = (int)ops_ceil_div(groups, RMSNORM_TARGET_GROUPS);
    plan.chunks = (int)ops_ceil_div(groups, (size_t)plan.iterations);
    return plan;
}

/* The larger of the float and float4 layouts (weight_offset decides which one runs). */
size_t digcl_rmsnorm_gate_backward_workspace_bytes(int rows, int V) {
    size_t bytes = 0;
    for (int vec = 1; vec <= (V % 4 == 0 ? 4 : 1); vec += 3) {
        const row_layout layout = make_layout(V, vec);
        const rmsnorm_backward_plan plan = plan_rmsnorm_backward(rows, &layout);
        size_t need = (size_t)plan.chunks * V * sizeof(float) +
                      digcl_column_sum_workspace_bytes(1, plan.chunks, V);
        if (need > bytes) bytes = need;
    }
    return bytes;
}

void digcl_rmsnorm_gate_backward(digcl_context *ctx, int rows, int V, cl_mem dy, cl_mem x,
                                 cl_mem gate, digcl_gate_rows gate_rows, cl_mem weight,
                                 size_t weight_offset, cl_mem dx, cl_mem dgate, int accumulate,
                                 cl_mem dweight, size_t dweight_offset, cl_mem workspace) {
    check_rows(rows, V, "rmsnorm_gate_backward");
    ops_check_int(weight_offset + (size_t)V, "weight extent", "rmsnorm_gate_backward");
    if (!workspace) digcl_fatal("rmsnorm_gate_backward: needs a workspace");
    const row_layout layout = make_layout(V, rmsnorm_vec_width(V, weight_offset, gate_rows));
    const rmsnorm_backward_plan plan = plan_rmsnorm_backward(rows, &layout);
    cl_kernel kernel = digcl_kernel(ctx, "norm", "rmsnorm_gate_backward", layout.options);
    digcl_arg_mem(kernel, 0, dy);
    digcl_arg_mem(kernel, 1, x);
    unsigned index = set_gate_and_weight(kernel, 2, gate, gate_rows, weight, weight_offset, rows, V,
                                         "rmsnorm_gate_backward");
    digcl_arg_mem(kernel, index, dx);
    digcl_arg_mem(kernel, index + 1, dgate);
    digcl_arg_int(kernel, index + 2, accumulate);
    digcl_arg_int(kernel, index + 3, rows);
    digcl_arg_int(kernel, index + 4, V);
    digcl_arg_int(kernel, index + 5, plan.iterations);
    digcl_arg_mem(kernel, index + 6, workspace);
    launch_groups(ctx, kernel, "rmsnorm_gate_backward", &layout, (size_t)plan.chunks);
    digcl_column_sum(ctx, 1, plan.chunks, V, workspace, 0, 1.0f, dweight, dweight_offset, 0, 1,
                     workspace, (size_t)plan.chunks * V);
}
