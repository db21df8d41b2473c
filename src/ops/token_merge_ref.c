/* Double references of token merge, depth-to-space and scan-to-rows
 * (include/digcl/token_merge.h). */
#include <stddef.h>

#include "digcl/token_merge.h"
#include "digcl/ref/token_merge.h"

/* Element of the merged [N, side*side/4, 4D] tensor holding fine element
 * (n, row, col, c) of [N, side*side, D]. */
static size_t merged_index(int side, int D, size_t n, int row, int col, int c) {
    const size_t half = (size_t)side / 2, coarse = (size_t)(row / 2) * half + (size_t)(col / 2);
    const size_t sub = (size_t)(2 * (row % 2) + col % 2);
    return ((n * half * half + coarse) * 4 + sub) * (size_t)D + (size_t)c;
}

static size_t fine_index(int side, int D, size_t n, int row, int col, int c) {
    return ((n * (size_t)side + (size_t)row) * (size_t)side + (size_t)col) * (size_t)D + (size_t)c;
}

/* to_merged: merged = fine; else fine = merged; the target is added to when accumulate. */
static void shuffle(int N, int side, int D, const double *in, double *out, int to_merged,
                    int accumulate) {
    for (size_t n = 0; n < (size_t)N; n++)
        for (int row = 0; row < side; row++)
            for (int col = 0; col < side; col++)
                for (int c = 0; c < D; c++) {
                    const size_t fine = fine_index(side, D, n, row, col, c);
                    const size_t merged = merged_index(side, D, n, row, col, c);
                    const size_t from = to_merged ? fine : merged, to = to_merged ? merged : fine;
                    out[to] = (accumulate ? out[to] : 0.0) + in[from];
                }
}

void digcl_ref_token_merge_forward(int N, int side, int D, const double *x, double *y) {
    shuffle(N, side, D, x, y, 1, 0);
}

void digcl_ref_token_merge_backward(int N, int side, int D, const double *dy, double *dx,
                                    int accumulate) {
    shuffle(N, side, D, dy, dx, 0, accumulate);
}

void digcl_ref_depth_to_space_forward(int N, int side, int D, const double *x, double *y) {
    shuffle(N, side, D, x, y, 0, 0);
}

void digcl_ref_depth_to_space_backward(int N, int side, int D, const double *dy, double *dx,
                                       int accumulate) {
    shuffle(N, side, D, dy, dx, 1, accumulate);
}

/* scatter: out[grid_index(s)] = in[s]; gather: out[s] = in[grid_index(s)]. */
static void reorder(digcl_scan_order order, int N, int side, int D, const double *in, double *out,
                    int scatter) {
    const size_t T = (size_t)side * (size_t)side;
    for (size_t n = 0; n < (size_t)N; n++)
        for (size_t s = 0; s < T; s++) {
            const size_t cell = (size_t)digcl_scan_order_grid_index(order, side, (int)s);
            const size_t from = n * T + (scatter ? s : cell), to = n * T + (scatter ? cell : s);
            for (size_t c = 0; c < (size_t)D; c++)
                out[to * (size_t)D + c] = in[from * (size_t)D + c];
        }
}

void digcl_ref_scan_to_rows_forward(digcl_scan_order order, int N, int side, int D, const double *x,
                                    double *y) {
    reorder(order, N, side, D, x, y, 1);
}

void digcl_ref_scan_to_rows_backward(digcl_scan_order order, int N, int side, int D,
                                     const double *dy, double *dx) {
    reorder(order, N, side, D, dy, dx, 0);
}
