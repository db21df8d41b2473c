/* Scan orders, SREM index maps and the launcher of cl/srem.cl
 * (include/digcl/srem.h). */
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

int digcl_srem_source_index(digcl_scan_order order, int backward, int side, int position) {
    const int last = side * side - 1;
    if (order % 2 == 0) return last - position; /* a flip is its own inverse */
    return backward ? transpose_position(side, last - position)
                    : last - transpose_position(side, position);
}

void digcl_srem_index_map(digcl_scan_order order, int backward, int side, int *source) {
    for (int s = 0; s < side * side; s++)
        source[s] = digcl_srem_source_index(order, backward, side, s);
}

static void launch_gather(digcl_context *ctx, int mode, int N, int side, int D, cl_mem in,
                          cl_mem out, const char *label) {
    if (N < 1 || side < 1 || D < 1) digcl_fatal("srem: bad shape N=%d side=%d D=%d", N, side, D);
    const int vector = D % 4 == 0 ? 4 : 1;
    cl_kernel kernel =
        digcl_kernel(ctx, "srem", "srem_gather", vector == 4 ? "-DVECTOR=4" : "-DVECTOR=1");
    const int chunks = D / vector;
    digcl_arg_mem(kernel, 0, in);
    digcl_arg_mem(kernel, 1, out);
    digcl_arg_int(kernel, 2, N);
    digcl_arg_int(kernel, 3, side);
    digcl_arg_int(kernel, 4, chunks);
    digcl_arg_int(kernel, 5, mode);
    const size_t count = (size_t)N * (size_t)side * (size_t)side * (size_t)chunks;
    const size_t local = 256, global = (count + local - 1) / local * local;
    digcl_launch(ctx, kernel, label, 1, &global, &local);
}

void digcl_srem_forward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                        cl_mem x, cl_mem y) {
    launch_gather(ctx, order % 2 ? 1 : 0, N, side, D, x, y, "srem_forward");
}

void digcl_srem_backward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                         cl_mem dy, cl_mem dx) {
    launch_gather(ctx, order % 2 ? 2 : 0, N, side, D, dy, dx, "srem_backward");
}
