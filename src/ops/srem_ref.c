/* SREM index maps (host) and double references (include/digcl/srem.h). */
#include <stddef.h>

#include "digcl/srem.h"

digcl_scan_order digcl_srem_block_order(int block) {
    return (digcl_scan_order)(((block % 4) + 4) % 4);
}

const char *digcl_scan_order_name(digcl_scan_order order) {
    static const char *const names[4] = {"R", "Rr", "C", "Cr"};
    return names[order & 3];
}

static int transpose_position(int side, int position) {
    return position % side * side + position / side;
}

int digcl_scan_order_grid_index(digcl_scan_order order, int side, int position) {
    const int last = side * side - 1;
    switch (order) {
    case DIGCL_SCAN_ROWS: return position;
    case DIGCL_SCAN_ROWS_REVERSED: return last - position;
    case DIGCL_SCAN_COLUMNS: return transpose_position(side, position);
    default: return transpose_position(side, last - position);
    }
}

int digcl_srem_source_index(int block, int backward, int side, int position) {
    const int last = side * side - 1;
    if (block % 2 == 0) return last - position; /* a flip is its own inverse */
    return backward ? transpose_position(side, last - position)
                    : last - transpose_position(side, position);
}

void digcl_srem_index_map(int block, int backward, int side, int *source) {
    for (int s = 0; s < side * side; s++)
        source[s] = digcl_srem_source_index(block, backward, side, s);
}

static void gather_rows(int block, int backward, int N, int side, int D, const double *in,
                        double *out) {
    const size_t T = (size_t)side * (size_t)side;
    for (size_t n = 0; n < (size_t)N; n++)
        for (size_t s = 0; s < T; s++) {
            const size_t source = (size_t)digcl_srem_source_index(block, backward, side, (int)s);
            for (size_t d = 0; d < (size_t)D; d++)
                out[(n * T + s) * (size_t)D + d] = in[(n * T + source) * (size_t)D + d];
        }
}

void digcl_ref_srem_forward(int block, int N, int side, int D, const double *x, double *y) {
    gather_rows(block, 0, N, side, D, x, y);
}

void digcl_ref_srem_backward(int block, int N, int side, int D, const double *dy, double *dx) {
    gather_rows(block, 1, N, side, D, dy, dx);
}
