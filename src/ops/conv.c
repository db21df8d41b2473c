/* Host launchers for cl/conv.cl: the depthwise 3x3 convolution on the token
 * grid (include/digcl/conv.h). */
#include "digcl/conv.h"
#include "ops_common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { TERMS = 10, SUM_CHANNELS = 32, SUM_LANES = 8, GROUP_ITEMS = 256, MAX_BLOCKS = 8 };
enum { ROW_CHANNELS = 64 }; /* channels per work-item of the CPU forward (cl/conv.cl) */

/* Work split of one kernel (cl/conv.cl): a work-item owns `cols` columns x
 * `strip_rows` rows of one channel; a work-group is (group_channels, group_blocks). */
typedef struct conv_config {
    int cols, strip_rows, group_channels, group_blocks;
    int blocks, strips,
        column_groups; /* per grid: column blocks, row strips, groups along blocks */
    char options[128];
} conv_config;

static void check_shape(const digcl_grid_shape *s) {
    if (s->N < 1 || s->height < 1 || s->width < 1 || s->D < 1)
        digcl_fatal("depthwise_conv: bad shape N=%d height=%d width=%d D=%d", s->N, s->height,
                    s->width, s->D);
}

static conv_config make_config(const digcl_grid_shape *s, int backward) {
    /* Measured on an H200 (docs/PERFORMANCE.md, issue 3): the forward is best with 8
     * columns x 4 rows per item; the backward with 4 columns where a work-group spans the
     * whole row (width <= 32) and 2 beyond, and one strip per sample up to 16 rows. */
    conv_config c = {0};
    c.cols = backward ? (s->width <= 32 ? 4 : 2) : 8;
    c.strip_rows = backward ? (s->height <= 16 ? 16 : 8) : 4;
    c.blocks = (s->width + c.cols - 1) / c.cols;
    c.strips = (s->height + c.strip_rows - 1) / c.strip_rows;
    c.group_blocks = 1;
    while (c.group_blocks < c.blocks && c.group_blocks < MAX_BLOCKS) c.group_blocks *= 2;
    c.group_channels = GROUP_ITEMS / c.group_blocks;
    c.column_groups = (c.blocks + c.group_blocks - 1) / c.group_blocks;
    snprintf(c.options, sizeof c.options,
             "-DCOLS=%d -DSTRIP_ROWS=%d -DGROUP_CHANNELS=%d -DGROUP_BLOCKS=%d", c.cols,
             c.strip_rows, c.group_channels, c.group_blocks);
    return c;
}

/* Tiles of the fused backward: one work-group's columns x one row strip of one sample. */
static int backward_tiles(const digcl_grid_shape *s, const conv_config *c) {
    return s->N * c->strips * c->column_groups;
}

size_t digcl_depthwise_conv_workspace_bytes(const digcl_grid_shape *shape) {
    const conv_config c = make_config(shape, 1);
    return (size_t)backward_tiles(shape, &c) * TERMS * (size_t)shape->D * sizeof(float);
}

/* The forward's kernel family: per row on CPU devices (PoCL runs a work-item's
 * loops as vectorised C, but not the tiled kernel's edge tests per element), tiled
 * elsewhere. DIGCL_CONV_KERNELS=tiled|rows overrides it (tests cover both on PoCL). */
static int use_rows(digcl_context *ctx) {
    const char *forced = getenv("DIGCL_CONV_KERNELS");
    if (forced && *forced) {
        if (strcmp(forced, "tiled") == 0) return 0;
        if (strcmp(forced, "rows") == 0) return 1;
        digcl_fatal("DIGCL_CONV_KERNELS='%s' is not a depthwise conv kernel family (tiled or rows)",
                    forced);
    }
    return (digcl_context_device(ctx)->type & CL_DEVICE_TYPE_CPU) != 0;
}

static void set_forward_args(cl_kernel kernel, const digcl_grid_shape *shape, cl_mem x,
                             cl_mem weight, cl_mem bias, cl_mem y) {
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, weight);
    digcl_arg_mem(kernel, 2, bias);
    digcl_arg_mem(kernel, 3, y);
    digcl_arg_int(kernel, 4, shape->N);
    digcl_arg_int(kernel, 5, shape->height);
    digcl_arg_int(kernel, 6, shape->width);
    digcl_arg_int(kernel, 7, shape->D);
}

void digcl_depthwise_conv_forward(digcl_context *ctx, const digcl_grid_shape *shape, cl_mem x,
                                  cl_mem weight, cl_mem bias, cl_mem y) {
    check_shape(shape);
    if (use_rows(ctx)) {
        char options[32];
        snprintf(options, sizeof options, "-DROW_CHANNELS=%d", ROW_CHANNELS);
        cl_kernel kernel = digcl_kernel(ctx, "conv", "depthwise_conv_forward_rows", options);
        set_forward_args(kernel, shape, x, weight, bias, y);
        const size_t global[3] = {ops_ceil_div((size_t)shape->D, ROW_CHANNELS),
                                  (size_t)shape->height, (size_t)shape->N},
                     local[3] = {1, 1, 1};
        digcl_launch(ctx, kernel, "depthwise_conv_forward", 3, global, local);
        return;
    }
    const conv_config c = make_config(shape, 0);
    cl_kernel kernel = digcl_kernel(ctx, "conv", "depthwise_conv_forward", c.options);
    set_forward_args(kernel, shape, x, weight, bias, y);
    const size_t local[3] = {(size_t)c.group_channels, (size_t)c.group_blocks, 1};
    const size_t global[3] = {ops_round_up((size_t)shape->D, local[0]),
                              ops_round_up((size_t)c.blocks, local[1]),
                              (size_t)shape->N * (size_t)c.strips};
    digcl_launch(ctx, kernel, "depthwise_conv_forward", 3, global, local);
}

/* dx (unless NULL) and the per-tile weight/bias partials, one pass over dy and x. */
static void launch_fused_backward(digcl_context *ctx, const digcl_grid_shape *s,
                                  const conv_config *c, cl_mem x, cl_mem weight, cl_mem dy,
                                  cl_mem dx, cl_mem workspace) {
    char options[160];
    snprintf(options, sizeof options, "%s%s", c->options, dx ? "" : " -DNO_DX");
    cl_kernel kernel = digcl_kernel(ctx, "conv", "depthwise_conv_backward", options);
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, weight);
    digcl_arg_mem(kernel, 2, dy);
    digcl_arg_mem(kernel, 3, dx ? dx : workspace); /* unused with -DNO_DX */
    digcl_arg_mem(kernel, 4, workspace);
    digcl_arg_int(kernel, 5, s->height);
    digcl_arg_int(kernel, 6, s->width);
    digcl_arg_int(kernel, 7, s->D);
    const size_t local[3] = {(size_t)c->group_channels, (size_t)c->group_blocks, 1};
    const size_t global[3] = {ops_round_up((size_t)s->D, local[0]),
                              (size_t)c->column_groups * local[1],
                              (size_t)s->N * (size_t)c->strips};
    digcl_launch(ctx, kernel, "depthwise_conv_backward", 3, global, local);
}

static void launch_weight_accumulate(digcl_context *ctx, const digcl_grid_shape *s, int tiles,
                                     cl_mem workspace, cl_mem dweight, cl_mem dbias) {
    cl_kernel kernel = digcl_kernel(ctx, "conv", "depthwise_conv_weight_accumulate", "");
    digcl_arg_mem(kernel, 0, workspace);
    digcl_arg_mem(kernel, 1, dweight);
    digcl_arg_mem(kernel, 2, dbias);
    digcl_arg_int(kernel, 3, tiles);
    digcl_arg_int(kernel, 4, s->D);
    const size_t local[2] = {SUM_CHANNELS, SUM_LANES};
    const size_t global[2] = {ops_round_up((size_t)s->D, SUM_CHANNELS), (size_t)TERMS * SUM_LANES};
    digcl_launch(ctx, kernel, "depthwise_conv_weight_accumulate", 2, global, local);
}

void digcl_depthwise_conv_backward(digcl_context *ctx, const digcl_grid_shape *shape, cl_mem x,
                                   cl_mem weight, cl_mem dy, cl_mem dx, cl_mem dweight,
                                   cl_mem dbias, cl_mem workspace) {
    check_shape(shape);
    const conv_config c = make_config(shape, 1);
    launch_fused_backward(ctx, shape, &c, x, weight, dy, dx, workspace);
    launch_weight_accumulate(ctx, shape, backward_tiles(shape, &c), workspace, dweight, dbias);
}
