/* digcl/conv.h: the SREM depthwise 3x3 convolution on the token grid
 * (docs/MODEL.md §2.1 step 5: Conv2d(D, D, 3, stride 1, pad 1, groups=D, bias)).
 *
 * Tokens x [N, T, D] in the block's current scan order are read as the grid
 * (N, height, width, D), token t = row*width + col; this equals upstream's
 * reshape to (N, D, E, E), conv, flatten back. Cross-correlation, zero padding:
 *   y[n, r, c, d] = bias[d] + sum_{a,b in 0..2} weight[d, a, b] x[n, r+a-1, c+b-1, d]
 * Backward:
 *   dx[n, r, c, d]   = sum_{a,b} weight[d, a, b] dy[n, r-a+1, c-b+1, d]   (overwritten)
 *   dweight[d, a, b] += sum_{n,r,c} dy[n, r, c, d] x[n, r+a-1, c+b-1, d]
 *   dbias[d]         += sum_{n,r,c} dy[n, r, c, d]
 * The backward is one fused pass over dy and x (dx and per-tile dweight/dbias partials
 * in the workspace), then a fixed-order sum of the partials: deterministic, no atomics.
 */
#ifndef DIGCL_CONV_H
#define DIGCL_CONV_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_grid_shape {
    int N;             /* batch */
    int height, width; /* token grid; T = height*width (E x E in DiG) */
    int D;             /* channels */
} digcl_grid_shape;

/* y = depthwise_conv3x3(x) + bias. */
void digcl_depthwise_conv_forward(digcl_context *ctx, const digcl_grid_shape *shape,
                                  cl_mem x,      /* [N, T, D] */
                                  cl_mem weight, /* [D, 1, 3, 3] */
                                  cl_mem bias,   /* [D] */
                                  cl_mem y);     /* [N, T, D] */

/* Scratch of digcl_depthwise_conv_backward, in bytes. */
size_t digcl_depthwise_conv_workspace_bytes(const digcl_grid_shape *shape);

/* dx (overwritten; skipped when NULL), dweight and dbias (accumulated). */
void digcl_depthwise_conv_backward(digcl_context *ctx, const digcl_grid_shape *shape,
                                   cl_mem x,       /* [N, T, D] */
                                   cl_mem weight,  /* [D, 1, 3, 3] */
                                   cl_mem dy,      /* [N, T, D] */
                                   cl_mem dx,      /* [N, T, D] or NULL */
                                   cl_mem dweight, /* [D, 1, 3, 3] accumulate */
                                   cl_mem dbias,   /* [D] accumulate */
                                   cl_mem workspace);
#endif
