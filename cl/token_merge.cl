/* token_merge.cl: token rearrangements between U-DiG's grids (docs/MODEL.md "U-DiG";
 * include/digcl/token_merge.h).
 *
 * token_shuffle: one work-item per VECTOR-wide chunk of a fine-grid token
 * (n, row, col) of [N, side*side, D]; its merged home is coarse token
 * (row/2)*(side/2) + col/2 of [N, side*side/4, 4D], channel block
 * sub = 2*(row%2) + col%2 (sub-positions (0,0) (0,1) (1,0) (1,1)).
 *   TO_MERGED 1: merged[...] (+)= fine[...]   (token merge, depth-to-space backward)
 *   TO_MERGED 0: fine[...] (+)= merged[...]   (depth-to-space, token merge backward)
 *
 * scan_to_rows: row permutation between scan order `order` (R, Rr, C, Cr) and
 * R; cell(s) is the row-major grid cell at sequence position s:
 *   SCATTER 1: out[n, cell(s), :] = in[n, s, :]    (forward: to R)
 *   SCATTER 0: out[n, s, :] = in[n, cell(s), :]    (backward: from R)
 */

#if VECTOR == 4
typedef float4 element;
#else
typedef float element;
#endif

/* Global size N*side*side*chunks, chunks = D / VECTOR. */
__kernel void token_shuffle(__global const element *in, __global element *out, int N, int side,
                            int chunks, int to_merged, int accumulate) {
    const int index = get_global_id(0);
    const int T = side * side;
    if (index >= N * T * chunks) return;
    const int chunk = index % chunks, token = index / chunks;
    const int n = token / T, cell = token % T, row = cell / side, col = cell % side;
    const int half_side = side / 2;
    const int coarse = (n * half_side + row / 2) * half_side + col / 2;
    const int merged = (coarse * 4 + 2 * (row % 2) + col % 2) * chunks + chunk;
    const int source = to_merged ? index : merged, target = to_merged ? merged : index;
    const element value = in[source];
    out[target] = accumulate ? out[target] + value : value;
}

static int grid_cell(int order, int side, int position) {
    const int last = side * side - 1;
    const int p = order == 1 || order == 3 ? last - position : position;
    return order >= 2 ? p % side * side + p / side : p;
}

/* Global size N*side*side*chunks. */
__kernel void scan_to_rows(__global const element *in, __global element *out, int N, int side,
                           int chunks, int order, int scatter) {
    const int index = get_global_id(0);
    const int T = side * side;
    if (index >= N * T * chunks) return;
    const int chunk = index % chunks, token = index / chunks;
    const int n = token / T, position = token % T;
    const int cell = (n * T + grid_cell(order, side, position)) * chunks + chunk;
    if (scatter) out[cell] = in[index];
    else out[index] = in[cell];
}
