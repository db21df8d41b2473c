/* digcl/reduce.h: reductions and losses.
 *
 *   column sum   out[b, c] (=|+=) scale * sum_r x[b, r, c]   (db of a linear, means over T)
 *   sum          result = scale * sum_i x[i]                   (mean: scale = 1/count)
 *   global norm  result = sqrt(sum_i x[i]^2)                   (gradient L2 norm)
 *   clip         x *= min(1, max_norm / (norm + 1e-6))         (torch.nn.utils.clip_grad_norm_)
 *   MSE          loss = mean_i (prediction[i] - target[i])^2,
 *                dprediction = dloss * 2 (prediction - target) / count
 *
 * Every reduction is two-stage (fixed partition into work-groups, then one
 * work-group sums the partials in a fixed order): deterministic run to run, no
 * atomics. Scalar results stay on the device (a float at `result_offset`
 * elements into `result`), so clip can read the norm without a host sync;
 * digcl_read_scalar reads one to the host.
 *
 * Scratch comes from the caller: *_workspace_bytes.
 */
#ifndef DIGCL_REDUCE_H
#define DIGCL_REDUCE_H

#include <stddef.h>

#include "digcl/runtime.h"

#define DIGCL_CLIP_EPS 1e-6f

/* ---------------------------------------------------------------- column sums */

size_t digcl_column_sum_workspace_bytes(int batch, int rows, int cols);

/* out[out_offset + b * out_row_stride + c] (=|+=) scale * sum_r x[x_offset + (b*rows + r)*cols + c].
 * Up to 256 rows it is one launch and needs no workspace (NULL); beyond, the
 * partials go to workspace from element workspace_offset on. */
void digcl_column_sum(digcl_context *ctx, int batch, int rows, int cols, cl_mem x,
                      size_t x_offset, /* [batch, rows, cols] */
                      float scale, cl_mem out, size_t out_offset,
                      size_t out_row_stride, /* [batch, cols] */
                      int accumulate, cl_mem workspace, size_t workspace_offset);

/* Two column sums in one launch, for x = [2, batch, rows, cols] at x_offset (rows <= 256):
 *   out [out_offset  + b * out_row_stride + c] (=|+=) scale * sum_r x[0, b, r, c]
 *   out2[out2_offset + b * out_row_stride + c] (=|+=) scale * sum_r x[1, b, r, c]
 * (dshift and dscale, each summed exactly as digcl_column_sum would). */
#define DIGCL_COLUMN_SUM_PAIR_MAX_ROWS 256
void digcl_column_sum_pair(digcl_context *ctx, int batch, int rows, int cols, cl_mem x,
                           size_t x_offset, float scale, cl_mem out, size_t out_offset, cl_mem out2,
                           size_t out2_offset, size_t out_row_stride, int accumulate);

/* ---------------------------------------------------------------- totals */

size_t digcl_reduce_workspace_bytes(int count);

/* result[result_offset] = scale * sum(x). */
void digcl_sum(digcl_context *ctx, int count, cl_mem x /* [count] */, float scale, cl_mem result,
               size_t result_offset, cl_mem workspace);

/* result[result_offset] = ||x||_2. */
void digcl_global_norm(digcl_context *ctx, int count, cl_mem x /* [count] */, cl_mem result,
                       size_t result_offset, cl_mem workspace);

/* x *= min(1, max_norm / (norm[norm_offset] + 1e-6)), norm read on the device. */
void digcl_clip_by_norm(digcl_context *ctx, int count, cl_mem x /* [count] */, cl_mem norm,
                        size_t norm_offset, float max_norm);

/* loss[loss_offset] = mean((prediction - target)^2). */
void digcl_mse_forward(digcl_context *ctx, int count, cl_mem prediction /* [count] */,
                       cl_mem target /* [count] */, cl_mem loss, size_t loss_offset,
                       cl_mem workspace);

/* dprediction (=|+=) dloss * 2 (prediction - target) / count. */
void digcl_mse_backward(digcl_context *ctx, int count, float dloss, cl_mem prediction /* [count] */,
                        cl_mem target /* [count] */, cl_mem dprediction /* [count] */,
                        int accumulate);

/* Blocking read of one float. */
float digcl_read_scalar(digcl_context *ctx, cl_mem mem, size_t offset);
#endif
