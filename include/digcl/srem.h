/* digcl/srem.h: SREM scan reorientation between DiG blocks (docs/MODEL.md §2.4,
 * upstream models_dig.py L291–302).
 *
 * After block i the token sequence [N, T, D] (T = E*E) is reversed; after odd
 * blocks the E x E grid is then also transposed:
 *   even i:  y[n, s, :] = x[n, T-1-s, :]
 *   odd i:   y[n, s, :] = x[n, T-1-transpose(s), :],  transpose(a*E + b) = b*E + a
 * so block i sees the order R, Rr, C, Cr for i mod 4 = 0, 1, 2, 3:
 *   R:  position s is grid cell s (row-major)     Rr: grid cell T-1-s
 *   C:  grid cell transpose(s) (column-major)     Cr: grid cell transpose(T-1-s)
 * The backward of a reorientation is its inverse permutation (a gather too).
 */
#ifndef DIGCL_SREM_H
#define DIGCL_SREM_H

#include "digcl/runtime.h"

typedef enum digcl_scan_order {
    DIGCL_SCAN_ROWS = 0,            /* R  */
    DIGCL_SCAN_ROWS_REVERSED = 1,   /* Rr */
    DIGCL_SCAN_COLUMNS = 2,         /* C  */
    DIGCL_SCAN_COLUMNS_REVERSED = 3 /* Cr */
} digcl_scan_order;

/* The order block `block` (0-based) sees: block mod 4. */
digcl_scan_order digcl_srem_block_order(int block);
/* "R", "Rr", "C", "Cr". */
const char *digcl_scan_order_name(digcl_scan_order order);
/* The row-major grid cell (row*side + col) at sequence position `position`
 * of a side x side grid scanned in `order`. */
int digcl_scan_order_grid_index(digcl_scan_order order, int side, int position);

/* The reorientations take the scan order of the block that just ran
 * (digcl_srem_block_order(i) after block i): a flip after R and C, flip and
 * transpose after Rr and Cr. */

/* Index maps of the reorientation after a block that saw `order`:
 * y[s] = x[source[s]]. backward = 1 gives the inverse map (dx[s] = dy[source[s]]). */
int digcl_srem_source_index(digcl_scan_order order, int backward, int side, int position);
void digcl_srem_index_map(digcl_scan_order order, int backward, int side,
                          int *source); /* [side*side] */

/* y = reorientation of x after a block that saw `order`. */
void digcl_srem_forward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                        cl_mem x,  /* [N, side*side, D] */
                        cl_mem y); /* [N, side*side, D] */
/* dx = inverse reorientation of dy (overwritten). */
void digcl_srem_backward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                         cl_mem dy,  /* [N, side*side, D] */
                         cl_mem dx); /* [N, side*side, D] */
#endif
