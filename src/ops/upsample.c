/* upsample.c: the nearest-upsampling launcher and reference (digcl/upsample.h). */
#include "digcl/upsample.h"
#include "digcl/ref/upsample.h"

void digcl_upsample_nearest_forward(digcl_context *ctx, int planes, int H, int W, int factor,
                                    cl_mem x, cl_mem y) {
    if (planes < 1 || H < 1 || W < 1 || factor < 1 ||
        (size_t)planes * H * W * factor * factor > 2147483647u)
        digcl_fatal("upsample: invalid shape planes=%d H=%d W=%d factor=%d", planes, H, W, factor);
    cl_kernel kernel = digcl_kernel(ctx, "upsample", "upsample_nearest", "");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_int(kernel, 2, H);
    digcl_arg_int(kernel, 3, W);
    digcl_arg_int(kernel, 4, factor);
    digcl_arg_int(kernel, 5, planes);
    const size_t global[3] = {(size_t)W * factor, (size_t)H * factor, (size_t)planes};
    const size_t local[3] = {64, 1, 1};
    digcl_launch(ctx, kernel, "upsample_nearest", 3, global, local);
}

void digcl_ref_upsample_nearest_forward(int planes, int H, int W, int factor, const double *x,
                                        double *y) {
    const int Ho = H * factor, Wo = W * factor;
    for (int p = 0; p < planes; ++p)
        for (int i = 0; i < Ho; ++i)
            for (int j = 0; j < Wo; ++j)
                y[((size_t)p * Ho + i) * Wo + j] = x[((size_t)p * H + i / factor) * W + j / factor];
}
