/* Host launchers for cl/token_merge.cl (include/digcl/token_merge.h). */
#include "digcl/token_merge.h"

static void check_shape(const char *what, int N, int side, int D, int even) {
    if (N < 1 || side < 1 || D < 1 || (even && side % 2))
        digcl_fatal("%s: bad shape N=%d side=%d D=%d%s", what, N, side, D,
                    even ? " (side must be even)" : "");
}

static cl_kernel vector_kernel(digcl_context *ctx, const char *name, int D, int *chunks) {
    const int vector = D % 4 == 0 ? 4 : 1;
    *chunks = D / vector;
    return digcl_kernel(ctx, "token_merge", name, vector == 4 ? "-DVECTOR=4" : "-DVECTOR=1");
}

static void launch(digcl_context *ctx, cl_kernel kernel, const char *label, int N, int side,
                   int chunks) {
    const size_t count = (size_t)N * (size_t)side * (size_t)side * (size_t)chunks;
    const size_t local = 256, global = (count + local - 1) / local * local;
    digcl_launch(ctx, kernel, label, 1, &global, &local);
}

/* Both kernels take (in, out, N, side, chunks, mode_a, mode_b). */
static void rearrange(digcl_context *ctx, const char *kernel_name, const char *label, int N,
                      int side, int D, cl_mem in, cl_mem out, int mode_a, int mode_b) {
    int chunks = 0;
    cl_kernel kernel = vector_kernel(ctx, kernel_name, D, &chunks);
    digcl_arg_mem(kernel, 0, in);
    digcl_arg_mem(kernel, 1, out);
    digcl_arg_int(kernel, 2, N);
    digcl_arg_int(kernel, 3, side);
    digcl_arg_int(kernel, 4, chunks);
    digcl_arg_int(kernel, 5, mode_a);
    digcl_arg_int(kernel, 6, mode_b);
    launch(ctx, kernel, label, N, side, chunks);
}

static void shuffle(digcl_context *ctx, const char *label, int N, int side, int D, cl_mem in,
                    cl_mem out, int to_merged, int accumulate) {
    check_shape(label, N, side, D, 1);
    rearrange(ctx, "token_shuffle", label, N, side, D, in, out, to_merged, accumulate != 0);
}

void digcl_token_merge_forward(digcl_context *ctx, int N, int side, int D, cl_mem x, cl_mem y) {
    shuffle(ctx, "token_merge_forward", N, side, D, x, y, 1, 0);
}

void digcl_token_merge_backward(digcl_context *ctx, int N, int side, int D, cl_mem dy, cl_mem dx,
                                int accumulate) {
    shuffle(ctx, "token_merge_backward", N, side, D, dy, dx, 0, accumulate);
}

void digcl_depth_to_space_forward(digcl_context *ctx, int N, int side, int D, cl_mem x, cl_mem y) {
    shuffle(ctx, "depth_to_space_forward", N, side, D, x, y, 0, 0);
}

void digcl_depth_to_space_backward(digcl_context *ctx, int N, int side, int D, cl_mem dy, cl_mem dx,
                                   int accumulate) {
    shuffle(ctx, "depth_to_space_backward", N, side, D, dy, dx, 1, accumulate);
}

static void reorder(digcl_context *ctx, const char *label, digcl_scan_order order, int N, int side,
                    int D, cl_mem in, cl_mem out, int scatter) {
    check_shape(label, N, side, D, 0);
    if ((int)order < 0 || (int)order > 3)
        digcl_fatal("%s: scan order %d is not R, Rr, C or Cr", label, (int)order);
    rearrange(ctx, "scan_to_rows", label, N, side, D, in, out, (int)order, scatter);
}

void digcl_scan_to_rows_forward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                                cl_mem x, cl_mem y) {
    reorder(ctx, "scan_to_rows_forward", order, N, side, D, x, y, 1);
}

void digcl_scan_to_rows_backward(digcl_context *ctx, digcl_scan_order order, int N, int side, int D,
                                 cl_mem dy, cl_mem dx) {
    reorder(ctx, "scan_to_rows_backward", order, N, side, D, dy, dx, 0);
}
