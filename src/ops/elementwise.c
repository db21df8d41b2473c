/* Launchers for cl/util.cl's elementwise kernels. */
#include "digcl/elementwise.h"

static size_t checked_count(size_t count) {
    if (count > 2147483647u)
        digcl_fatal("elementwise op over %zu elements exceeds the int range", count);
    return count;
}

void digcl_axpy(digcl_context *ctx, size_t count, float alpha, cl_mem x, cl_mem y) {
    cl_kernel kernel = digcl_kernel(ctx, "util", "axpy_float", "");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_float(kernel, 2, alpha);
    digcl_arg_int(kernel, 3, (int)checked_count(count));
    size_t global = count, local = 256;
    digcl_launch(ctx, kernel, "axpy_float", 1, &global, &local);
}
