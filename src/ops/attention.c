/* Host launchers for cl/attention.cl: tiled online-softmax attention
 * (include/digcl/attention.h). Tile sizes follow the head dimension so that
 * every kernel stays within ~40 KiB of local memory (NVIDIA: 48 KiB). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/attention.h"
#include "digcl/log.h"
#include "gemm_backend.h"

enum {
    KEY_BLOCK = 32,       /* BKB: query rows per dq group, keys per dk/dv group */
    BACKWARD_GROUP = 128, /* BG: work-items per dq or dk/dv group (32 rows x 4 quarters) */
    FORWARD_GROUP = 128,  /* FG: work-items per forward group (32 row slots x 4 key quarters) */
    LOCAL_BUDGET = 40960, /* bytes of local memory a kernel may plan for */
    MAX_HEAD_DIM = DIGCL_ATTENTION_MAX_HEAD_DIM
};

typedef struct attention_tiles {
    int key_tile;     /* BK: keys staged per step, dq (multiple of 4) */
    int query_tile;   /* BQT: queries staged per step, dk/dv (multiple of 4) */
    int forward_rows; /* FRQ: query rows per work-item, forward (FBQ = 32 FRQ per group) */
    int forward_keys; /* FBK: keys staged per step, forward (multiple of 4) */
} attention_tiles;

static int local_budget(digcl_context *ctx) {
    const long device = (long)digcl_context_device(ctx)->local_mem_bytes - 1024;
    return device < LOCAL_BUDGET ? (int)device : LOCAL_BUDGET;
}

static attention_tiles choose_tiles(digcl_context *ctx, int head_dim) {
    const int budget = local_budget(ctx), row_bytes = head_dim * (int)sizeof(float);
    /* FRQ = 1 above dh 32: 2 rows of q cost 128 more registers at dh 64, which
     * halves occupancy and measured slower on the H200 (docs/PERFORMANCE.md). */
    attention_tiles tiles = {64, 64, head_dim <= 32 ? 2 : 1, 64};
    /* dq: k and v tiles, the dS tile [BK][32], and for head_dim > 64 the
     * group's 32 dout rows (padded to an odd float4 stride). dk/dv: q and dout
     * tiles, p and dS tiles [BQT][32], lse/delta, and for head_dim > 64 the
     * group's 32 v rows. */
    const int head4 = head_dim / 4, padded4 = head4 % 2 ? head4 : head4 + 1;
    const int value_rows = head_dim > 64 ? KEY_BLOCK * padded4 * 16 : 0;
    while (tiles.key_tile > 8 &&
           value_rows + tiles.key_tile * (2 * row_bytes + KEY_BLOCK * 4) > budget)
        tiles.key_tile /= 2;
    while (tiles.query_tile > 4 &&
           value_rows + tiles.query_tile * (2 * row_bytes + 2 * KEY_BLOCK * 4 + 8) > budget)
        tiles.query_tile /= 2;
    const int forward_query_rows = 32 * tiles.forward_rows;
    while (tiles.forward_keys > 4 && 2 * tiles.forward_keys * row_bytes + (tiles.forward_keys + 5) *
                                                                              forward_query_rows *
                                                                              (int)sizeof(float) >
                                         budget)
        tiles.forward_keys /= 2;
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
    char options[160];
    snprintf(options, sizeof options, "-DDH=%d -DBK=%d -DBQT=%d -DFRQ=%d -DFBK=%d", head_dim,
             tiles.key_tile, tiles.query_tile, tiles.forward_rows, tiles.forward_keys);
    return digcl_kernel(ctx, "attention", name, options);
}

static float attention_scale(const digcl_attention_shape *s) {
    return (float)(1.0 / sqrt((double)s->head_dim));
}

/* One group of group_size work-items per (rows_per_group rows of T, head, batch item). */
static void launch_groups(digcl_context *ctx, cl_kernel kernel, const char *label,
                          const digcl_attention_shape *s, int rows_per_group, int group_size) {
    const size_t groups = (size_t)(s->T + rows_per_group - 1) / (size_t)rows_per_group;
    const size_t local[3] = {(size_t)group_size, 1, 1};
    const size_t global[3] = {groups * (size_t)group_size, (size_t)s->H, (size_t)s->N};
    digcl_launch(ctx, kernel, label, 3, global, local);
}

/* One work-item per row. */
static void launch_rows(digcl_context *ctx, cl_kernel kernel, const char *label,
                        const digcl_attention_shape *s, int rows_per_group) {
    launch_groups(ctx, kernel, label, s, rows_per_group, rows_per_group);
}

/* ---------------------------------------------------------------- tensor-core forward */

/* DIGCL_ATTENTION_FORWARD and DIGCL_ATTENTION_BACKWARD: auto (default: tensor where the
 * device has the tensor-core path of the GEMM, else simt), simt (cl/attention.cl), tensor
 * (cl/attention_tc.cl on NVIDIA sm_80+; measured faster on the H200, docs/PERFORMANCE.md),
 * tensor-emulate (the same kernels with the PTX emulated, any device: tests). Each is read
 * once per process; head dims that are not a multiple of 8 keep the SIMT kernels. */
typedef enum attention_path {
    PATH_AUTO,
    PATH_SIMT,
    PATH_TENSOR,
    PATH_TENSOR_EMULATE
} attention_path;

static attention_path parse_path(const char *variable) {
    const char *value = getenv(variable);
    if (!value || !*value || strcmp(value, "auto") == 0) return PATH_AUTO;
    if (strcmp(value, "simt") == 0) return PATH_SIMT;
    if (strcmp(value, "tensor") == 0) return PATH_TENSOR;
    if (strcmp(value, "tensor-emulate") == 0) return PATH_TENSOR_EMULATE;
    digcl_fatal("%s='%s' is not an attention kernel path (expected auto, simt, tensor or "
                "tensor-emulate)",
                variable, value);
}

static attention_path path_choice(const digcl_context *ctx, int backward, int head_dim) {
    static int chosen[2] = {-1, -1};
    const char *variable = backward ? "DIGCL_ATTENTION_BACKWARD" : "DIGCL_ATTENTION_FORWARD";
    if (chosen[backward] < 0) chosen[backward] = (int)parse_path(variable);
    const int supported = digcl_gemm_tc_supported(digcl_context_device(ctx));
    if (chosen[backward] == PATH_TENSOR && !supported)
        digcl_fatal("%s=tensor needs an NVIDIA GPU of compute capability 8.0 or newer; device "
                    "'%s' is not one",
                    variable, digcl_context_device(ctx)->name);
    attention_path path = (attention_path)chosen[backward];
    if (path == PATH_AUTO) path = supported ? PATH_TENSOR : PATH_SIMT;
    return head_dim % 8 == 0 ? path : PATH_SIMT; /* mma k steps */
}

enum { TC_QUERY_ROWS = 64, TC_GROUP = 128 };

/* Two tensor-core designs with the same kernels and arguments (docs/PERFORMANCE.md):
 * registers (cl/attention_tc.cl, S and P in mma registers; the TF32 default) and staged
 * (cl/attention_tc_staged.cl, S and P through local memory; the 3xTF32 default, 15 %
 * faster there on the H200). DIGCL_ATTENTION_TC_KERNELS=registers|staged overrides. */
static int registers_design(const digcl_context *ctx) {
    static int chosen = -1; /* -1 unread, 0 the precision's default, 1 registers, 2 staged */
    if (chosen < 0) {
        const char *value = getenv("DIGCL_ATTENTION_TC_KERNELS");
        if (!value || !*value) chosen = 0;
        else if (strcmp(value, "registers") == 0) chosen = 1;
        else if (strcmp(value, "staged") == 0) chosen = 2;
        else
            digcl_fatal("DIGCL_ATTENTION_TC_KERNELS='%s' is not a tensor-core attention design "
                        "(expected registers or staged)",
                        value);
    }
    if (chosen) return chosen == 1;
    return digcl_context_precision(ctx) == DIGCL_PRECISION_TF32;
}

/* registers: blocks of 32 keys (queries) where two buffers of two [BKV][dh + 4] tiles fit
 * the local memory (dh <= 88 on NVIDIA's 48 KiB), else 16; emulation adds its exchange
 * area. staged: 32, or 16 above dh 96. */
static int tensor_block(digcl_context *ctx, int head_dim, int emulate, int registers) {
    if (!registers) return head_dim > 96 ? 16 : 32;
    const size_t fixed = 1024 + (emulate ? 4 * 32 * 12 * sizeof(float) : 0) + 4 * 32 * 4;
    const size_t tiles = (size_t)4 * 32 * (size_t)(head_dim + 4) * sizeof(float);
    return fixed + tiles <= digcl_context_device(ctx)->local_mem_bytes ? 32 : 16;
}

/* DIGCL_ATTENTION_TC_OPTIONS (benchmarks): more build options for the tensor-core kernels,
 * such as -DSHUFFLE=0 or -cl-nv-maxrregcount=128. */
static cl_kernel tensor_kernel(digcl_context *ctx, const char *name, int head_dim, int emulate) {
    char options[384];
    const char *extra = getenv("DIGCL_ATTENTION_TC_OPTIONS");
    const int registers = registers_design(ctx);
    snprintf(options, sizeof options, "-DDH=%d -DBKV=%d -DSPLIT3=%d -DTC_EMULATE=%d %.200s",
             head_dim, tensor_block(ctx, head_dim, emulate, registers),
             digcl_context_precision(ctx) != DIGCL_PRECISION_TF32, emulate, extra ? extra : "");
    return digcl_kernel(ctx, registers ? "attention_tc" : "attention_tc_staged", name, options);
}

void digcl_attention_forward(digcl_context *ctx, const digcl_attention_shape *shape, cl_mem qkv,
                             cl_mem out, cl_mem logsumexp) {
    check_shape(shape);
    const attention_path path = path_choice(ctx, 0, shape->head_dim);
    const int tensor = path != PATH_SIMT;
    const char *label = tensor ? "attention_tc_forward" : "attention_forward";
    cl_kernel kernel = tensor
                           ? tensor_kernel(ctx, label, shape->head_dim, path == PATH_TENSOR_EMULATE)
                           : attention_kernel(ctx, label, shape->head_dim);
    digcl_arg_mem(kernel, 0, qkv);
    digcl_arg_mem(kernel, 1, out);
    digcl_arg_mem(kernel, 2, logsumexp);
    digcl_arg_int(kernel, 3, shape->T);
    digcl_arg_int(kernel, 4, shape->H);
    digcl_arg_float(kernel, 5, attention_scale(shape));
    const attention_tiles tiles = choose_tiles(ctx, shape->head_dim);
    launch_groups(ctx, kernel, label, shape,
                  tensor ? TC_QUERY_ROWS : FORWARD_GROUP / 4 * tiles.forward_rows,
                  tensor ? TC_GROUP : FORWARD_GROUP);
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
                                 const digcl_attention_shape *s, int rows_per_group, int group_size,
                                 cl_mem qkv, cl_mem logsumexp, cl_mem dout, cl_mem delta,
                                 cl_mem dqkv) {
    const attention_path path = path_choice(ctx, 1, s->head_dim);
    const int tensor = path != PATH_SIMT;
    char tensor_name[64];
    snprintf(tensor_name, sizeof tensor_name, "attention_tc_%s", name + strlen("attention_"));
    cl_kernel kernel =
        tensor ? tensor_kernel(ctx, tensor_name, s->head_dim, path == PATH_TENSOR_EMULATE)
               : attention_kernel(ctx, name, s->head_dim);
    if (tensor) rows_per_group = TC_QUERY_ROWS, group_size = TC_GROUP;
    digcl_arg_mem(kernel, 0, qkv);
    digcl_arg_mem(kernel, 1, dout);
    digcl_arg_mem(kernel, 2, logsumexp);
    digcl_arg_mem(kernel, 3, delta);
    digcl_arg_mem(kernel, 4, dqkv);
    digcl_arg_int(kernel, 5, s->T);
    digcl_arg_int(kernel, 6, s->H);
    digcl_arg_float(kernel, 7, attention_scale(s));
    launch_groups(ctx, kernel, tensor ? tensor_name : name, s, rows_per_group, group_size);
}

void digcl_attention_backward(digcl_context *ctx, const digcl_attention_shape *shape, cl_mem qkv,
                              cl_mem out, cl_mem logsumexp, cl_mem dout, cl_mem dqkv,
                              cl_mem workspace) {
    check_shape(shape);
    cl_mem delta = workspace; /* [N, H, T] */
    launch_delta(ctx, shape, out, dout, delta);
    launch_backward_pass(ctx, "attention_backward_query", shape, KEY_BLOCK, BACKWARD_GROUP, qkv,
                         logsumexp, dout, delta, dqkv);
    launch_backward_pass(ctx, "attention_backward_key_value", shape, KEY_BLOCK, BACKWARD_GROUP, qkv,
                         logsumexp, dout, delta, dqkv);
}
