/* reduce.c: launchers of the reductions and the MSE loss (digcl/reduce.h, cl/reduce.cl). */
#include "digcl/reduce.h"

#include <stdio.h>

#include "ops_common.h"

#define COLUMN_GROUP             32
#define COLUMN_LANES             8
#define COLUMN_SINGLE_STAGE_ROWS 256 /* up to this many rows: one launch */
#define COLUMN_MIN_CHUNK_ROWS    64
#define TOTAL_GROUP              256
#define TOTAL_MAX_GROUPS         1024
#define TOTAL_VECTORS_PER_ITEM   8

/* ---------------------------------------------------------------- column sums */

static int column_chunk_rows(int rows) {
    size_t per_chunk = ops_ceil_div((size_t)rows, COLUMN_SINGLE_STAGE_ROWS);
    return (int)(per_chunk < COLUMN_MIN_CHUNK_ROWS ? COLUMN_MIN_CHUNK_ROWS : per_chunk);
}

size_t digcl_column_sum_workspace_bytes(int batch, int rows, int cols) {
    if (rows <= COLUMN_SINGLE_STAGE_ROWS) return 0;
    size_t chunks = ops_ceil_div((size_t)rows, (size_t)column_chunk_rows(rows));
    return (size_t)batch * chunks * (size_t)cols * sizeof(float);
}

typedef struct column_launch {
    cl_mem x;
    size_t x_offset;
    int batch, rows, cols, rows_per_chunk, chunks;
    float scale;
    cl_mem out;
    size_t out_offset, out_batch_stride, out_chunk_stride;
    int accumulate;
    cl_mem out2;
    size_t out2_offset;
    int split; /* batches >= split go to out2 */
} column_launch;

/* float4 columns when cols and every offset and stride are multiples of 4. */
static int column_vec(const column_launch *l) {
    size_t values[6] = {(size_t)l->cols,     l->x_offset,         l->out_offset,
                        l->out_batch_stride, l->out_chunk_stride, l->out2_offset};
    return ops_vec_width(values, 6);
}

static void launch_reduce_columns(digcl_context *ctx, const column_launch *l) {
    const int vec = column_vec(l);
    cl_kernel kernel =
        digcl_kernel(ctx, "reduce", "reduce_columns", vec == 4 ? "-DVEC=4" : "-DVEC=1");
    ops_check_int(l->x_offset + (size_t)l->batch * l->rows * l->cols, "x extent", "column_sum");
    ops_check_int(l->out_offset + (size_t)l->batch * l->out_batch_stride, "out extent",
                  "column_sum");
    ops_check_int(l->out2_offset + (size_t)l->batch * l->out_batch_stride, "out2 extent",
                  "column_sum");
    digcl_arg_mem(kernel, 0, l->x);
    digcl_arg_int(kernel, 1, (int)l->x_offset);
    digcl_arg_int(kernel, 2, l->rows);
    digcl_arg_int(kernel, 3, l->cols);
    digcl_arg_int(kernel, 4, l->rows_per_chunk);
    digcl_arg_float(kernel, 5, l->scale);
    digcl_arg_mem(kernel, 6, l->out);
    digcl_arg_int(kernel, 7, (int)l->out_offset);
    digcl_arg_int(kernel, 8, (int)l->out_batch_stride);
    digcl_arg_int(kernel, 9, (int)l->out_chunk_stride);
    digcl_arg_int(kernel, 10, l->accumulate);
    digcl_arg_mem(kernel, 11, l->out2 ? l->out2 : l->out);
    digcl_arg_int(kernel, 12, (int)l->out2_offset);
    digcl_arg_int(kernel, 13, l->out2 ? l->split : l->batch);
    size_t global[3] = {ops_round_up((size_t)(l->cols / vec), COLUMN_GROUP),
                        (size_t)l->chunks * COLUMN_LANES, (size_t)l->batch};
    size_t local[3] = {COLUMN_GROUP, COLUMN_LANES, 1};
    digcl_launch(ctx, kernel, "reduce_columns", 3, global, local);
}

void digcl_column_sum(digcl_context *ctx, int batch, int rows, int cols, cl_mem x, size_t x_offset,
                      float scale, cl_mem out, size_t out_offset, size_t out_row_stride,
                      int accumulate, cl_mem workspace, size_t workspace_offset) {
    ops_check_positive(batch, "batch", "column_sum");
    ops_check_positive(rows, "rows", "column_sum");
    ops_check_positive(cols, "cols", "column_sum");
    column_launch final = {x,   x_offset,   batch,          rows, cols,       rows, 1, scale,
                           out, out_offset, out_row_stride, 0,    accumulate, NULL, 0, batch};
    if (rows > COLUMN_SINGLE_STAGE_ROWS) {
        if (!workspace) digcl_fatal("column_sum: %d rows need a workspace", rows);
        int per_chunk = column_chunk_rows(rows);
        int chunks = (int)ops_ceil_div((size_t)rows, (size_t)per_chunk);
        column_launch stage1 = {x,
                                x_offset,
                                batch,
                                rows,
                                cols,
                                per_chunk,
                                chunks,
                                1.0f,
                                workspace,
                                workspace_offset,
                                (size_t)chunks * cols,
                                (size_t)cols,
                                0,
                                NULL,
                                0,
                                batch};
        launch_reduce_columns(ctx, &stage1);
        final.x = workspace;
        final.x_offset = workspace_offset;
        final.rows = final.rows_per_chunk = chunks;
    }
    launch_reduce_columns(ctx, &final);
}

void digcl_column_sum_pair(digcl_context *ctx, int batch, int rows, int cols, cl_mem x,
                           size_t x_offset, float scale, cl_mem out, size_t out_offset, cl_mem out2,
                           size_t out2_offset, size_t out_row_stride, int accumulate) {
    ops_check_positive(batch, "batch", "column_sum_pair");
    ops_check_positive(rows, "rows", "column_sum_pair");
    ops_check_positive(cols, "cols", "column_sum_pair");
    if (rows > COLUMN_SINGLE_STAGE_ROWS)
        digcl_fatal("column_sum_pair: %d rows exceed the single-launch limit %d", rows,
                    COLUMN_SINGLE_STAGE_ROWS);
    column_launch pair = {x,          x_offset, 2 * batch,   rows,       cols,           rows,
                          1,          scale,    out,         out_offset, out_row_stride, 0,
                          accumulate, out2,     out2_offset, batch};
    launch_reduce_columns(ctx, &pair);
}

/* ---------------------------------------------------------------- totals */

static int total_vec(int count) {
    size_t values[1] = {(size_t)count};
    return ops_vec_width(values, 1);
}

static int total_groups(int count) {
    size_t per_group = (size_t)TOTAL_GROUP * TOTAL_VECTORS_PER_ITEM * total_vec(count);
    size_t groups = ops_ceil_div((size_t)count, per_group);
    return (int)(groups > TOTAL_MAX_GROUPS ? TOTAL_MAX_GROUPS : groups);
}

size_t digcl_reduce_workspace_bytes(int count) {
    return (size_t)total_groups(count) * sizeof(float);
}

static const char *vec_option(int vec) { return vec == 4 ? "-DVEC=4" : "-DVEC=1"; }

enum { TOTAL_SUM = 0, TOTAL_SUM_SQUARES = 1, TOTAL_SQUARED_DIFFERENCE = 2 };

static void reduce_total(digcl_context *ctx, int count, cl_mem x, cl_mem y, int mode, float scale,
                         int take_sqrt, cl_mem result, size_t result_offset, cl_mem workspace,
                         const char *op) {
    ops_check_positive(count, "count", op);
    ops_check_int(result_offset, "result_offset", op);
    if (!workspace) digcl_fatal("%s: needs a workspace (digcl_reduce_workspace_bytes)", op);
    const int vec = total_vec(count), groups = total_groups(count);
    cl_kernel stage1 = digcl_kernel(ctx, "reduce", "reduce_total_stage1", vec_option(vec));
    digcl_arg_mem(stage1, 0, x);
    digcl_arg_mem(stage1, 1, y ? y : x);
    digcl_arg_int(stage1, 2, count / vec);
    digcl_arg_int(stage1, 3, mode);
    digcl_arg_mem(stage1, 4, workspace);
    size_t global = (size_t)groups * TOTAL_GROUP, local = TOTAL_GROUP;
    digcl_launch(ctx, stage1, op, 1, &global, &local);

    cl_kernel stage2 = digcl_kernel(ctx, "reduce", "reduce_total_stage2", vec_option(vec));
    digcl_arg_mem(stage2, 0, workspace);
    digcl_arg_int(stage2, 1, groups);
    digcl_arg_float(stage2, 2, scale);
    digcl_arg_int(stage2, 3, take_sqrt);
    digcl_arg_mem(stage2, 4, result);
    digcl_arg_int(stage2, 5, (int)result_offset);
    global = TOTAL_GROUP;
    digcl_launch(ctx, stage2, op, 1, &global, &local);
}

void digcl_sum(digcl_context *ctx, int count, cl_mem x, float scale, cl_mem result,
               size_t result_offset, cl_mem workspace) {
    reduce_total(ctx, count, x, NULL, TOTAL_SUM, scale, 0, result, result_offset, workspace, "sum");
}

void digcl_global_norm(digcl_context *ctx, int count, cl_mem x, cl_mem result, size_t result_offset,
                       cl_mem workspace) {
    reduce_total(ctx, count, x, NULL, TOTAL_SUM_SQUARES, 1.0f, 1, result, result_offset, workspace,
                 "global_norm");
}

void digcl_mse_forward(digcl_context *ctx, int count, cl_mem prediction, cl_mem target, cl_mem loss,
                       size_t loss_offset, cl_mem workspace) {
    reduce_total(ctx, count, prediction, target, TOTAL_SQUARED_DIFFERENCE, 1.0f / (float)count, 0,
                 loss, loss_offset, workspace, "mse_forward");
}

void digcl_clip_by_norm(digcl_context *ctx, int count, cl_mem x, cl_mem norm, size_t norm_offset,
                        float max_norm) {
    ops_check_positive(count, "count", "clip_by_norm");
    ops_check_int(norm_offset, "norm_offset", "clip_by_norm");
    const int vec = total_vec(count);
    cl_kernel kernel = digcl_kernel(ctx, "reduce", "clip_by_norm", vec_option(vec));
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_int(kernel, 1, count / vec);
    digcl_arg_mem(kernel, 2, norm);
    digcl_arg_int(kernel, 3, (int)norm_offset);
    digcl_arg_float(kernel, 4, max_norm);
    size_t global = (size_t)(count / vec), local = TOTAL_GROUP;
    digcl_launch(ctx, kernel, "clip_by_norm", 1, &global, &local);
}

void digcl_mse_backward(digcl_context *ctx, int count, float dloss, cl_mem prediction,
                        cl_mem target, cl_mem dprediction, int accumulate) {
    ops_check_positive(count, "count", "mse_backward");
    const int vec = total_vec(count);
    cl_kernel kernel = digcl_kernel(ctx, "reduce", "mse_backward", vec_option(vec));
    digcl_arg_mem(kernel, 0, prediction);
    digcl_arg_mem(kernel, 1, target);
    digcl_arg_mem(kernel, 2, dprediction);
    digcl_arg_int(kernel, 3, count / vec);
    digcl_arg_float(kernel, 4, (float)(2.0 * dloss / count));
    digcl_arg_int(kernel, 5, accumulate);
    size_t global = (size_t)(count / vec), local = TOTAL_GROUP;
    digcl_launch(ctx, kernel, "mse_backward", 1, &global, &local);
}

float digcl_read_scalar(digcl_context *ctx, cl_mem mem, size_t offset) {
    float value = 0.0f;
    digcl_read(ctx, mem, offset * sizeof(float), sizeof value, &value);
    return value;
}
