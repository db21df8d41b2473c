/* adaln.c: launchers of modulate and the gated residual (digcl/adaln.h, cl/adaln.cl).
 * Backward sums over T: cl/adaln.cl writes per-chunk partials [N, chunks, D] into the
 * workspace, then digcl_column_sum adds the chunks into the [N, D] views. */
#include "digcl/adaln.h"

#include "ops_common.h"
#include "digcl/reduce.h"

#define COLUMN_GROUP       32
#define ROW_LANES          8
#define MIN_ROWS_PER_CHUNK 32
#define TARGET_CHUNKS      2048 /* over all samples: enough groups to fill the device */

digcl_row_view digcl_row_view_chunk(cl_mem mem, int index, int chunks, int D) {
    digcl_row_view view = {mem, (size_t)index * D, (size_t)chunks * D};
    return view;
}

static void check_sizes(int N, int T, int D, const char *op) {
    ops_check_positive(N, "N", op);
    ops_check_positive(T, "T", op);
    ops_check_positive(D, "D", op);
    ops_check_int((size_t)N * T * D, "N * T * D", op);
}

static void check_view(digcl_row_view view, int N, int D, const char *op) {
    if (view.row_stride < (size_t)D && N > 1)
        digcl_fatal("%s: vector row stride %zu is below D = %d", op, view.row_stride, D);
    ops_check_int(view.offset + (size_t)N * view.row_stride, "vector extent", op);
}

/* float4 when D and every view's offset and stride are multiples of 4. */
static int views_vec_width(int D, const digcl_row_view *views, int count) {
    size_t values[7] = {(size_t)D};
    for (int i = 0; i < count; ++i) {
        values[1 + 2 * i] = views[i].offset;
        values[2 + 2 * i] = views[i].row_stride;
    }
    return ops_vec_width(values, 1 + 2 * count);
}

static cl_kernel adaln_kernel(digcl_context *ctx, const char *name, int vec) {
    return digcl_kernel(ctx, "adaln", name, vec == 4 ? "-DVEC=4" : "-DVEC=1");
}

static unsigned set_view(cl_kernel kernel, unsigned index, digcl_row_view view) {
    digcl_arg_mem(kernel, index, view.mem);
    digcl_arg_int(kernel, index + 1, (int)view.offset);
    digcl_arg_int(kernel, index + 2, (int)view.row_stride);
    return index + 3;
}

/* Tokens per chunk: at least MIN_ROWS_PER_CHUNK, about TARGET_CHUNKS chunks in all, and
 * at most DIGCL_COLUMN_SUM_PAIR_MAX_ROWS chunks per sample, so that the column sum over
 * the chunks is a single launch. */
static int rows_per_chunk(int N, int T) {
    size_t chunks = ops_ceil_div(TARGET_CHUNKS, (size_t)N);
    if (chunks > DIGCL_COLUMN_SUM_PAIR_MAX_ROWS) chunks = DIGCL_COLUMN_SUM_PAIR_MAX_ROWS;
    size_t rows = ops_ceil_div((size_t)T, chunks);
    return (int)(rows < MIN_ROWS_PER_CHUNK ? MIN_ROWS_PER_CHUNK : rows);
}

static int chunk_count(int N, int T) {
    return (int)ops_ceil_div((size_t)T, (size_t)rows_per_chunk(N, T));
}

static size_t partial_floats(int N, int T, int D) { return (size_t)N * chunk_count(N, T) * D; }

/* Adds the chunk partials [N, chunks, D] at partial_offset into the view. */
static void sum_chunks(digcl_context *ctx, int N, int T, int D, cl_mem workspace,
                       size_t partial_offset, digcl_row_view out) {
    digcl_column_sum(ctx, N, chunk_count(N, T), D, workspace, partial_offset, 1.0f, out.mem,
                     out.offset, out.row_stride, 0, NULL, 0);
}

static size_t backward_workspace_bytes(int N, int T, int D, int outputs) {
    return outputs * partial_floats(N, T, D) * sizeof(float);
}

static void launch_chunked(digcl_context *ctx, cl_kernel kernel, const char *label, int N, int T,
                           int D_vec) {
    size_t global[3] = {ops_round_up((size_t)D_vec, COLUMN_GROUP),
                        (size_t)chunk_count(N, T) * ROW_LANES, (size_t)N};
    size_t local[3] = {COLUMN_GROUP, ROW_LANES, 1};
    digcl_launch(ctx, kernel, label, 3, global, local);
}

/* ---------------------------------------------------------------- modulate */

void digcl_modulate_forward(digcl_context *ctx, int N, int T, int D, cl_mem x, digcl_row_view shift,
                            digcl_row_view scale, cl_mem y) {
    check_sizes(N, T, D, "modulate_forward");
    check_view(shift, N, D, "modulate_forward");
    check_view(scale, N, D, "modulate_forward");
    digcl_row_view views[2] = {shift, scale};
    const int vec = views_vec_width(D, views, 2);
    cl_kernel kernel = adaln_kernel(ctx, "modulate_forward", vec);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_int(kernel, 2, T);
    digcl_arg_int(kernel, 3, D);
    unsigned index = set_view(kernel, 4, shift);
    index = set_view(kernel, index, scale);
    digcl_arg_int(kernel, index, N * T);
    ops_launch_rows(ctx, kernel, "modulate_forward", (size_t)(D / vec), (size_t)N * T);
}

size_t digcl_modulate_backward_workspace_bytes(int N, int T, int D) {
    return backward_workspace_bytes(N, T, D, 2);
}

void digcl_modulate_backward(digcl_context *ctx, int N, int T, int D, cl_mem dy, cl_mem x,
                             digcl_row_view scale, cl_mem dx, int accumulate, digcl_row_view dshift,
                             digcl_row_view dscale, cl_mem workspace) {
    check_sizes(N, T, D, "modulate_backward");
    check_view(scale, N, D, "modulate_backward");
    check_view(dshift, N, D, "modulate_backward");
    check_view(dscale, N, D, "modulate_backward");
    const int vec = views_vec_width(D, &scale, 1);
    const size_t partial = partial_floats(N, T, D);
    cl_kernel kernel = adaln_kernel(ctx, "modulate_backward", vec);
    digcl_arg_mem(kernel, 0, dy);
    digcl_arg_mem(kernel, 1, x);
    digcl_arg_mem(kernel, 2, dx);
    digcl_arg_int(kernel, 3, accumulate);
    digcl_arg_int(kernel, 4, T);
    digcl_arg_int(kernel, 5, D);
    digcl_arg_int(kernel, 6, rows_per_chunk(N, T));
    unsigned index = set_view(kernel, 7, scale);
    digcl_arg_mem(kernel, index, workspace);
    digcl_arg_int(kernel, index + 1, (int)partial);
    launch_chunked(ctx, kernel, "modulate_backward", N, T, D / vec);
    if (dshift.row_stride != dscale.row_stride) {
        sum_chunks(ctx, N, T, D, workspace, 0, dshift);
        sum_chunks(ctx, N, T, D, workspace, partial, dscale);
        return;
    }
    /* The partials are [2, N, chunks, D]: both sums in one launch. */
    digcl_column_sum_pair(ctx, N, chunk_count(N, T), D, workspace, 0, 1.0f, dshift.mem,
                          dshift.offset, dscale.mem, dscale.offset, dshift.row_stride, 0);
}

/* ---------------------------------------------------------------- gated residual */

void digcl_gated_residual_forward(digcl_context *ctx, int N, int T, int D, cl_mem h,
                                  digcl_row_view gate, cl_mem y, cl_mem out) {
    check_sizes(N, T, D, "gated_residual_forward");
    check_view(gate, N, D, "gated_residual_forward");
    const int vec = views_vec_width(D, &gate, 1);
    cl_kernel kernel = adaln_kernel(ctx, "gated_residual_forward", vec);
    digcl_arg_mem(kernel, 0, h);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_mem(kernel, 2, out);
    digcl_arg_int(kernel, 3, T);
    digcl_arg_int(kernel, 4, D);
    unsigned index = set_view(kernel, 5, gate);
    digcl_arg_int(kernel, index, N * T);
    ops_launch_rows(ctx, kernel, "gated_residual_forward", (size_t)(D / vec), (size_t)N * T);
}

size_t digcl_gated_residual_backward_workspace_bytes(int N, int T, int D) {
    return backward_workspace_bytes(N, T, D, 1);
}

void digcl_gated_residual_backward(digcl_context *ctx, int N, int T, int D, cl_mem dout, cl_mem y,
                                   digcl_row_view gate, cl_mem dy, int accumulate,
                                   digcl_row_view dgate, cl_mem workspace) {
    check_sizes(N, T, D, "gated_residual_backward");
    check_view(gate, N, D, "gated_residual_backward");
    check_view(dgate, N, D, "gated_residual_backward");
    const int vec = views_vec_width(D, &gate, 1);
    cl_kernel kernel = adaln_kernel(ctx, "gated_residual_backward", vec);
    digcl_arg_mem(kernel, 0, dout);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_mem(kernel, 2, dy);
    digcl_arg_int(kernel, 3, accumulate);
    digcl_arg_int(kernel, 4, T);
    digcl_arg_int(kernel, 5, D);
    digcl_arg_int(kernel, 6, rows_per_chunk(N, T));
    unsigned index = set_view(kernel, 7, gate);
    digcl_arg_mem(kernel, index, workspace);
    launch_chunked(ctx, kernel, "gated_residual_backward", N, T, D / vec);
    sum_chunks(ctx, N, T, D, workspace, 0, dgate);
}
