/* activation.c: launchers of the elementwise activations (digcl/activation.h, cl/activation.cl). */
#include "digcl/activation.h"

#include "ops_common.h"

#include <stdio.h>

#define GROUP 256

static cl_kernel elementwise_kernel(digcl_context *ctx, const char *name, int count, int vec) {
    ops_check_positive(count, "count", name);
    char options[16];
    snprintf(options, sizeof options, "-DVEC=%d", vec);
    return digcl_kernel(ctx, "activation", name, options);
}

/* float16 on CPU devices when the count allows: PoCL does not widen float4
 * work-items into AVX registers, and the exps of sigmoid and logsigmoid then
 * run 4 lanes at a time; float4 elsewhere (GPUs), float when nothing divides. */
static int count_vec_width(digcl_context *ctx, int count) {
    const int cpu = (digcl_context_device(ctx)->type & CL_DEVICE_TYPE_CPU) != 0;
    if (cpu && count % 16 == 0) return 16;
    size_t values[1] = {(size_t)count};
    return ops_vec_width(values, 1);
}

static void launch_1d(digcl_context *ctx, cl_kernel kernel, const char *label, int count_vec) {
    size_t global = (size_t)count_vec, local = GROUP;
    digcl_launch(ctx, kernel, label, 1, &global, &local);
}

/* y = f(x) kernels with arguments (x, y, count_vec [, extra float]). */
static void unary_forward(digcl_context *ctx, const char *name, int count, cl_mem x, cl_mem y,
                          const float *extra) {
    const int vec = count_vec_width(ctx, count);
    cl_kernel kernel = elementwise_kernel(ctx, name, count, vec);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_int(kernel, 2, count / vec);
    if (extra) digcl_arg_float(kernel, 3, *extra);
    launch_1d(ctx, kernel, name, count / vec);
}

/* dx = f'(x) dy kernels with arguments (dy, x, dx, count_vec [, extra float], accumulate). */
static void unary_backward(digcl_context *ctx, const char *name, int count, cl_mem dy, cl_mem x,
                           cl_mem dx, int accumulate, const float *extra) {
    const int vec = count_vec_width(ctx, count);
    cl_kernel kernel = elementwise_kernel(ctx, name, count, vec);
    unsigned index = 0;
    digcl_arg_mem(kernel, index++, dy);
    digcl_arg_mem(kernel, index++, x);
    digcl_arg_mem(kernel, index++, dx);
    digcl_arg_int(kernel, index++, count / vec);
    if (extra) digcl_arg_float(kernel, index++, *extra);
    digcl_arg_int(kernel, index, accumulate);
    launch_1d(ctx, kernel, name, count / vec);
}

void digcl_silu_forward(digcl_context *ctx, int count, cl_mem x, cl_mem y) {
    unary_forward(ctx, "silu_forward", count, x, y, NULL);
}

void digcl_silu_backward(digcl_context *ctx, int count, cl_mem dy, cl_mem x, cl_mem dx,
                         int accumulate) {
    unary_backward(ctx, "silu_backward", count, dy, x, dx, accumulate, NULL);
}

void digcl_gelu_tanh_forward(digcl_context *ctx, int count, cl_mem x, cl_mem y) {
    unary_forward(ctx, "gelu_tanh_forward", count, x, y, NULL);
}

void digcl_gelu_tanh_backward(digcl_context *ctx, int count, cl_mem dy, cl_mem x, cl_mem dx,
                              int accumulate) {
    unary_backward(ctx, "gelu_tanh_backward", count, dy, x, dx, accumulate, NULL);
}

void digcl_forget_gate_forward(digcl_context *ctx, int count, float normalizer, cl_mem x,
                               cl_mem y) {
    unary_forward(ctx, "forget_gate_forward", count, x, y, &normalizer);
}

void digcl_forget_gate_backward(digcl_context *ctx, int count, float normalizer, cl_mem dy,
                                cl_mem x, cl_mem dx, int accumulate) {
    unary_backward(ctx, "forget_gate_backward", count, dy, x, dx, accumulate, &normalizer);
}

/* Global size (F / VEC, rows), 64 x 4 groups. */
static void launch_swiglu(digcl_context *ctx, cl_kernel kernel, const char *label, int rows,
                          int F_vec) {
    size_t global[2] = {(size_t)F_vec, (size_t)rows}, local[2] = {64, 4};
    if (F_vec < 64) local[0] = (size_t)ops_pow2_at_least((size_t)F_vec), local[1] = 1;
    digcl_launch(ctx, kernel, label, 2, global, local);
}

void digcl_swiglu_forward(digcl_context *ctx, int rows, int F, cl_mem x, cl_mem y) {
    ops_check_positive(rows, "rows", "swiglu_forward");
    ops_check_int((size_t)rows * 2 * F, "rows * 2F", "swiglu_forward");
    const int vec = count_vec_width(ctx, F);
    cl_kernel kernel = elementwise_kernel(ctx, "swiglu_forward", F, vec);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_int(kernel, 2, rows);
    digcl_arg_int(kernel, 3, F / vec);
    launch_swiglu(ctx, kernel, "swiglu_forward", rows, F / vec);
}

void digcl_swiglu_backward(digcl_context *ctx, int rows, int F, cl_mem dy, cl_mem x, cl_mem dx,
                           int accumulate) {
    ops_check_positive(rows, "rows", "swiglu_backward");
    ops_check_int((size_t)rows * 2 * F, "rows * 2F", "swiglu_backward");
    const int vec = count_vec_width(ctx, F);
    cl_kernel kernel = elementwise_kernel(ctx, "swiglu_backward", F, vec);
    digcl_arg_mem(kernel, 0, dy);
    digcl_arg_mem(kernel, 1, x);
    digcl_arg_mem(kernel, 2, dx);
    digcl_arg_int(kernel, 3, rows);
    digcl_arg_int(kernel, 4, F / vec);
    digcl_arg_int(kernel, 5, accumulate);
    launch_swiglu(ctx, kernel, "swiglu_backward", rows, F / vec);
}
