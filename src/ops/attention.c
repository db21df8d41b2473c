/* Host launchers for cl/attention.cl: tiled online-softmax attention
 * (include/digcl/attention.h). Tile sizes follow the head dimension so that
 * every kernel stays within ~40 KiB of local memory (NVIDIA: 48 KiB). */
#include <math.h>
#include <stdio.h>

#include "digcl/attention.h"

enum {
    QUERY_ROWS = 64,      /* BQ: work-items (query rows) per group, forward and dq */
    KEY_ROWS = 64,        /* BKV: work-items (key rows) per group, dk/dv */
    LOCAL_BUDGET = 40960, /* bytes of local memory a kernel may plan for */
    MAX_HEAD_DIM = 128
};

typedef struct attention_tiles {
    int query_rows;     /* BQ */
    int key_tile;       /* BK: keys staged per step, forward and dq */
    int key_rows;       /* BKV */
    int query_tile;     /* BQT: queries staged per step, dk/dv (even) */
} attention_tiles;

static int local_budget(digcl_context *ctx) {
    const long device = (long)digcl_context_device(ctx)->local_mem_bytes - 1024;
    return device < LOCAL_BUDGET ? (int)device : LOCAL_BUDGET;
}

static attention_tiles choose_tiles(digcl_context *ctx, int head_dim) {
    const int budget = local_budget(ctx), row_bytes = head_dim * (int)sizeof(float);
    attention_tiles tiles = {QUERY_ROWS, 64, KEY_ROWS, 32};
    while (tiles.key_tile > 8 && 2 * tiles.key_tile * row_bytes > budget) tiles.key_tile /= 2;
    const int value_columns = KEY_ROWS * row_bytes;
    while (tiles.query_tile > 2 &&
           value_columns + tiles.query_tile * (2 * row_bytes + 8) > budget)
        tiles.query_tile -= 2; /* stays even: the dk/dv kernel takes queries in pairs */
    return tiles;
}

static void check_shape(const digcl_attention_shape *s) {
    if (s->N < 1 || s->T < 1 || s->H < 1 || s->head_dim < 4 || s->head_dim % 4 ||
        s->head_dim > MAX_HEAD_DIM)
        digcl_fatal("attention: bad shape N=%d T=%d H=%d head_dim=%d (head_dim must be a "
                    "multiple of 4, at most %d)",
                    s->N, s->T, s->H, s->head_dim, MAX_HEAD_DIM);
}

static cl_kernel attention_kernel(digcl_context *ctx, const char *name, int head_dim) {
    const attention_tiles tiles = choose_tiles(ctx, head_dim);
    char options[128];
    snprintf(options, sizeof options, "-DDH=%d -DBQ=%d -DBK=%d -DBKV=%d -DBQT=%d", head_dim,
             tiles.query_rows, tiles.key_tile, tiles.key_rows, tiles.query_tile);
    return digcl_kernel(ctx, "attention", name, options);
}

static float attention_scale(const digcl_attention_shape *s) {
    return (float)(1.0 / sqrt((double)s->head_dim));
}

/* One group per (rows of T, head, batch item). */
static void launch_rows(digcl_context *ctx, cl_kernel kernel, const char *label,
                        const digcl_attention_shape *s, int rows_per_group) {
    const size_t groups = (size_t)(s->T + rows_per_group - 1) / (size_t)rows_per_group;
    const size_t local[3] = {(size_t)rows_per_group, 1, 1};
    const size_t global[3] = {groups * (size_t)rows_per_group, (size_t)s->H, (size_t)s->N};
    digcl_launch(ctx, kernel, label, 3, global, local);
}

void digcl_attention_forward(digcl_context *ctx, const digcl_attention_shape *shape, cl_mem qkv,
                             cl_mem out, cl_mem logsumexp) {
    check_shape(shape);
    cl_kernel kernel = attention_kernel(ctx, "attention_forward", shape->head_dim);
    digcl_arg_mem(kernel, 0, qkv);
    digcl_arg_mem(kernel, 1, out);
    digcl_arg_mem(kernel, 2, logsumexp);
    digcl_arg_int(kernel, 3, shape->T);
    digcl_arg_int(kernel, 4, shape->H);
    digcl_arg_float(kernel, 5, attention_scale(shape));
    launch_rows(ctx, kernel, "attention_forward", shape, QUERY_ROWS);
}

size_t digcl_attention_backward_workspace_bytes(const digcl_attention_shape *shape) {
    return (size_t)shape->N * (size_t)shape->H * (size_t)shape->T * sizeof(float);
}

static void launch_delta(digcl_context *ctx, const digcl_attention_shape *s, cl_mem out,
                         cl_mem dout, cl_mem delta) {
    cl_kernel kernel = attention_kernel(ctx, "attention_delta", s->head_dim);
    digcl_arg_mem(kernel, 0, out);
    digcl_arg_mem(kernel, 1, dout);
    digcl_arg_mem(kernel, 2, delta);
    digcl_arg_int(kernel, 3, s->T);
    digcl_arg_int(kernel, 4, s->H);
    launch_rows(ctx, kernel, "attention_delta", s, 64);
}

/* Both backward passes take the same arguments. */
static void launch_backward_pass(digcl_context *ctx, const char *name,
                                 const digcl_attention_shape *s, int rows_per_group, cl_mem qkv,
                                 cl_mem logsumexp, cl_mem dout, cl_mem delta, cl_mem dqkv) {
    cl_kernel kernel = attention_kernel(ctx, name, s->head_dim);
    digcl_arg_mem(kernel, 0, qkv);
    digcl_arg_mem(kernel, 1, dout);
    digcl_arg_mem(kernel, 2, logsumexp);
    digcl_arg_mem(kernel, 3, delta);
    digcl_arg_mem(kernel, 4, dqkv);
    digcl_arg_int(kernel, 5, s->T);
    digcl_arg_int(kernel, 6, s->H);
    digcl_arg_float(kernel, 7, attention_scale(s));
    launch_rows(ctx, kernel, name, s, rows_per_group);
}

void digcl_attention_backward(digcl_context *ctx, const digcl_attention_shape *shape, cl_mem qkv,
                              cl_mem out, cl_mem logsumexp, cl_mem dout, cl_mem dqkv,
                              cl_mem workspace) {
    check_shape(shape);
    cl_mem delta = workspace; /* [N, H, T] */
    launch_delta(ctx, shape, out, dout, delta);
    launch_backward_pass(ctx, "attention_backward_query", shape, QUERY_ROWS, qkv, logsumexp, dout,
                         delta, dqkv);
    launch_backward_pass(ctx, "attention_backward_key_value", shape, KEY_ROWS, qkv, logsumexp,
                         dout, delta, dqkv);
}
