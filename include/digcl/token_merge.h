/* digcl/token_merge.h: token rearrangements between the grids of U-DiG's
 * stages (docs/MODEL.md "U-DiG"). Tokens are rows of [N, T, D] in
 * row-major (R) grid order, T = side*side.
 *
 * Token merge (space-to-depth), side even, Eh = side/2:
 *   y[n, i*Eh + j, (2*dy + dx)*D + c] = x[n, (2i+dy)*side + (2j+dx), c]
 * sub-positions (dy, dx) in the order (0,0) (0,1) (1,0) (1,1). Depth-to-space
 * is its inverse (the same sub-position order), so each one's backward is the
 * other.
 *
 * Scan to rows: a stage whose last block leaves its tokens in scan order
 * `order` (R, Rr, C, Cr; include/digcl/srem.h) restores R order:
 *   y[n, grid_index(order, s), :] = x[n, s, :]
 * and the backward is the gather dx[n, s, :] = dy[n, grid_index(order, s), :].
 *
 * `accumulate` = 1 adds into the output instead of overwriting it.
 */
#ifndef DIGCL_TOKEN_MERGE_H
#define DIGCL_TOKEN_MERGE_H

#include "digcl/runtime.h"
#include "digcl/srem.h"

/* y = token merge of x; side is the fine grid side (even). */
void digcl_token_merge_forward(digcl_context *ctx, int N, int side, int D,
                               cl_mem x,  /* [N, side*side, D] */
                               cl_mem y); /* [N, side*side/4, 4D] */
/* dx (=|+=) depth-to-space of dy. */
void digcl_token_merge_backward(digcl_context *ctx, int N, int side, int D,
                                cl_mem dy, /* [N, side*side/4, 4D] */
                                cl_mem dx, /* [N, side*side, D] */
                                int accumulate);
/* y = depth-to-space of x; side is the fine (output) grid side (even). */
void digcl_depth_to_space_forward(digcl_context *ctx, int N, int side, int D,
                                  cl_mem x,  /* [N, side*side/4, 4D] */
                                  cl_mem y); /* [N, side*side, D] */
/* dx (=|+=) token merge of dy. */
void digcl_depth_to_space_backward(digcl_context *ctx, int N, int side, int D,
                                   cl_mem dy, /* [N, side*side, D] */
                                   cl_mem dx, /* [N, side*side/4, 4D] */
                                   int accumulate);

/* y = x reordered from scan order `order` to R (overwritten). */
void digcl_scan_to_rows_forward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                                cl_mem x,  /* [N, side*side, D] */
                                cl_mem y); /* [N, side*side, D] */
/* dx = dy reordered from R back to `order` (overwritten). */
void digcl_scan_to_rows_backward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                                 cl_mem dy,  /* [N, side*side, D] */
                                 cl_mem dx); /* [N, side*side, D] */
#endif
