/* Host launchers for cl/conv.cl: the depthwise 3x3 convolution on the token
 * grid (include/digcl/conv.h). */
#include "digcl/conv.h"

#include <stdio.h>

enum {
    STRIP_ROWS = 8, GRAD_CHANNELS = 32, GRAD_LANES = 8, GRAD_TERMS = 10, MAX_GROUPS = 64,
    SEGMENT = 16 /* columns per unit of the weight-gradient pass 1 */
};

static size_t round_up(size_t value, size_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

static void check_shape(const digcl_grid_shape *s) {
    if (s->N < 1 || s->height < 1 || s->width < 1 || s->D < 1)
        digcl_fatal("depthwise_conv: bad shape N=%d height=%d width=%d D=%d", s->N, s->height,
                    s->width, s->D);
}

/* Units of the weight-gradient pass 1: one grid row, up to SEGMENT columns. */
static int gradient_units(const digcl_grid_shape *s) {
    return s->N * s->height * ((s->width + SEGMENT - 1) / SEGMENT);
}

/* Groups of pass 1: up to MAX_GROUPS, each with at least GRAD_LANES units. */
static int gradient_groups(const digcl_grid_shape *s) {
    const int groups = (gradient_units(s) + GRAD_LANES - 1) / GRAD_LANES;
    return groups < MAX_GROUPS ? groups : MAX_GROUPS;
}

size_t digcl_depthwise_conv_workspace_bytes(const digcl_grid_shape *shape) {
    return (size_t)gradient_groups(shape) * GRAD_TERMS * (size_t)shape->D * sizeof(float);
}

/* y = stencil(x) with the kernel as is (+ bias) or rotated by 180 degrees. */
static void launch_stencil(digcl_context *ctx, const digcl_grid_shape *s, int rotated, cl_mem x,
                           cl_mem weight, cl_mem bias, cl_mem y) {
    check_shape(s);
    /* The kernel can take float4 channels (-DVEC=4), but on an H200 that ran slower
     * (36-41% of copy bandwidth against 49-50% scalar: a quarter of the work-items,
     * each walking STRIP_ROWS rows, leaves too little in flight), so it stays scalar. */
    const int vec = 1;
    char options[32];
    snprintf(options, sizeof options, "-DVEC=%d%s", vec, rotated ? " -DROTATED" : "");
    cl_kernel kernel = digcl_kernel(ctx, "conv", "depthwise_conv_stencil", options);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, weight);
    digcl_arg_mem(kernel, 2, bias);
    digcl_arg_mem(kernel, 3, y);
    digcl_arg_int(kernel, 4, s->N);
    digcl_arg_int(kernel, 5, s->height);
    digcl_arg_int(kernel, 6, s->width);
    digcl_arg_int(kernel, 7, s->D);
    const size_t strips = (size_t)(s->height + STRIP_ROWS - 1) / STRIP_ROWS;
    const size_t channels = (size_t)(s->D / vec);
    const size_t local[3] = {channels >= 64 ? 64 : 32, channels >= 64 ? 2 : 4, 1};
    const size_t global[3] = {round_up(channels, local[0]),
                              round_up((size_t)s->width, local[1]), (size_t)s->N * strips};
    digcl_launch(ctx, kernel, rotated ? "depthwise_conv_input_grad" : "depthwise_conv_forward",
                 3, global, local);
}

void digcl_depthwise_conv_forward(digcl_context *ctx, const digcl_grid_shape *shape, cl_mem x,
                                  cl_mem weight, cl_mem bias, cl_mem y) {
    launch_stencil(ctx, shape, 0, x, weight, bias, y);
}

static void launch_weight_partials(digcl_context *ctx, const digcl_grid_shape *s, cl_mem x,
                                   cl_mem dy, cl_mem workspace) {
    const int groups = gradient_groups(s);
    const int units_per_group = (gradient_units(s) + groups - 1) / groups;
    cl_kernel kernel = digcl_kernel(ctx, "conv", "depthwise_conv_weight_partials", "");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, dy);
    digcl_arg_mem(kernel, 2, workspace);
    digcl_arg_int(kernel, 3, s->N);
    digcl_arg_int(kernel, 4, s->height);
    digcl_arg_int(kernel, 5, s->width);
    digcl_arg_int(kernel, 6, s->D);
    digcl_arg_int(kernel, 7, units_per_group);
    digcl_arg_int(kernel, 8, SEGMENT);
    const size_t local[2] = {GRAD_CHANNELS, GRAD_LANES};
    const size_t global[2] = {round_up((size_t)s->D, GRAD_CHANNELS),
                              (size_t)groups * GRAD_LANES};
    digcl_launch(ctx, kernel, "depthwise_conv_weight_partials", 2, global, local);
}

static void launch_weight_accumulate(digcl_context *ctx, const digcl_grid_shape *s,
                                     cl_mem workspace, cl_mem dweight, cl_mem dbias) {
    cl_kernel kernel = digcl_kernel(ctx, "conv", "depthwise_conv_weight_accumulate", "");
    digcl_arg_mem(kernel, 0, workspace);
    digcl_arg_mem(kernel, 1, dweight);
    digcl_arg_mem(kernel, 2, dbias);
    digcl_arg_int(kernel, 3, gradient_groups(s));
    digcl_arg_int(kernel, 4, s->D);
    const size_t local[2] = {64, 1};
    const size_t global[2] = {round_up((size_t)s->D, 64), GRAD_TERMS};
    digcl_launch(ctx, kernel, "depthwise_conv_weight_accumulate", 2, global, local);
}

void digcl_depthwise_conv_backward(digcl_context *ctx, const digcl_grid_shape *shape, cl_mem x,
                                   cl_mem weight, cl_mem dy, cl_mem dx, cl_mem dweight,
                                   cl_mem dbias, cl_mem workspace) {
    check_shape(shape);
    if (dx) launch_stencil(ctx, shape, 1, dy, weight, weight, dx);
    launch_weight_partials(ctx, shape, x, dy, workspace);
    launch_weight_accumulate(ctx, shape, workspace, dweight, dbias);
}
