/* Host launcher for cl/srem.cl (include/digcl/srem.h). */
#include "digcl/srem.h"

static void launch_gather(digcl_context *ctx, int mode, int N, int side, int D, cl_mem in,
                          cl_mem out, const char *label) {
    if (N < 1 || side < 1 || D < 1)
        digcl_fatal("srem: bad shape N=%d side=%d D=%d", N, side, D);
    const int vector = D % 4 == 0 ? 4 : 1;
    cl_kernel kernel = digcl_kernel(ctx, "srem", "srem_gather",
                                    vector == 4 ? "-DVECTOR=4" : "-DVECTOR=1");
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

void digcl_srem_forward(digcl_context *ctx, int block, int N, int side, int D, cl_mem x,
                        cl_mem y) {
    launch_gather(ctx, block % 2 ? 1 : 0, N, side, D, x, y, "srem_forward");
}

void digcl_srem_backward(digcl_context *ctx, int block, int N, int side, int D, cl_mem dy,
                         cl_mem dx) {
    launch_gather(ctx, block % 2 ? 2 : 0, N, side, D, dy, dx, "srem_backward");
}
