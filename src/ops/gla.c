/* Host launchers for cl/gla.cl: chunkwise gated linear attention.
 * See include/digcl/gla.h and docs/GLA_DESIGN.md (section GLA).
 *
 * Forward (3 launches): prepass U_n, Gamma_n -> state scan H_n, hT -> output o.
 * Backward (4 launches): prepass W_n (+ U_n unless states are reused) ->
 * scan D_n, dh0 (+ H_n) -> dv -> dq, dk, dg.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/gla.h"
#include "ops_common.h"

enum { SCAN_GROUP = 256, KEY_TILE = 32 };

typedef struct gla_tiles {
    int key, value; /* KT, VT */
} gla_tiles;

static digcl_gla_strides dense_layout(size_t token, size_t head, size_t batch) {
    return (digcl_gla_strides){0, token, head, batch};
}

digcl_gla_shape digcl_gla_shape_token_major(int N, int T, int H, int K, int V, int chunk) {
    digcl_gla_shape s;
    memset(&s, 0, sizeof s);
    s.N = N, s.T = T, s.H = H, s.K = K, s.V = V, s.chunk = chunk;
    s.q = s.k = s.g = dense_layout((size_t)H * K, (size_t)K, (size_t)T * H * K);
    s.v = s.o = dense_layout((size_t)H * V, (size_t)V, (size_t)T * H * V);
    return s;
}

digcl_gla_shape digcl_gla_shape_head_major(int N, int T, int H, int K, int V, int chunk) {
    digcl_gla_shape s = digcl_gla_shape_token_major(N, T, H, K, V, chunk);
    s.q = s.k = s.g = dense_layout((size_t)K, (size_t)T * K, (size_t)T * H * K);
    s.v = s.o = dense_layout((size_t)V, (size_t)T * V, (size_t)T * H * V);
    return s;
}

/* Measured (docs/GLA_DESIGN.md, "Default chunk"): 32 on an H200 (best or within
 * 10 % at every size); 16 on PoCL on a CPU (fwd+bwd 1.1-1.9x faster than 32 and
 * 3x faster than 64 at T = 256 and 1024). Other device types take the GPU value. */
int digcl_gla_default_chunk(const digcl_device_info *device) {
    return device && (device->type & CL_DEVICE_TYPE_CPU) ? 16 : 32;
}

size_t digcl_gla_span(const digcl_gla_shape *s, const digcl_gla_strides *x, int width) {
    return x->offset + (size_t)(s->N - 1) * x->batch + (size_t)(s->H - 1) * x->head +
           (size_t)(s->T - 1) * x->token + (size_t)width;
}

/* The chunk in use; shape->chunk 0 needs a device (ctx) to pick the default. */
static int chunk_of(digcl_context *ctx, const digcl_gla_shape *shape) {
    if (shape->chunk) return shape->chunk;
    return digcl_gla_default_chunk(ctx ? digcl_context_device(ctx) : NULL);
}

static size_t chunk_count(const digcl_gla_shape *s, int chunk) {
    return ops_ceil_div((size_t)s->T, (size_t)chunk);
}

/* Element counts of the workspace parts: states, gammas (then state grads). */
static size_t states_elements(const digcl_gla_shape *s, int chunk) {
    return (size_t)s->N * s->H * chunk_count(s, chunk) * s->K * s->V;
}

static size_t gammas_elements(const digcl_gla_shape *s, int chunk) {
    return (size_t)s->N * s->H * chunk_count(s, chunk) * s->K;
}

/* Sizes for the largest chunk when shape->chunk is 0 (device unknown here). */
static int sizing_chunk(const digcl_gla_shape *s) { return s->chunk ? s->chunk : 16; }

size_t digcl_gla_forward_workspace_bytes(const digcl_gla_shape *shape) {
    int chunk = sizing_chunk(shape);
    return (states_elements(shape, chunk) + gammas_elements(shape, chunk)) * sizeof(float);
}

size_t digcl_gla_backward_workspace_bytes(const digcl_gla_shape *shape) {
    int chunk = sizing_chunk(shape);
    return (2 * states_elements(shape, chunk) + gammas_elements(shape, chunk)) * sizeof(float);
}

static void check_strides(const char *what, const digcl_gla_strides *x, int T, int H, int D) {
    int overlap = (T > 1 && x->token < (size_t)D) || (H > 1 && x->head < (size_t)D);
    if (overlap)
        digcl_fatal("gla: %s strides (token %zu, head %zu) overlap rows of %d elements", what,
                    x->token, x->head, D);
    if (x->token > 0x7fffffff || x->head > 0x7fffffff || x->batch > 0x7fffffff)
        digcl_fatal("gla: %s strides exceed 2^31 elements", what);
    if (x->token > 0x7fffffff / 64) /* a chunk's rows are indexed in 32 bits (cl/gla.cl) */
        digcl_fatal("gla: %s token stride %zu exceeds 2^31 / 64 elements", what, x->token);
}

/* The layouts in the kernels' order (cl/gla.cl, LAYOUTS): q, k, g ([.., K]), v, o ([.., V]). */
enum { LAYOUT_COUNT = 5 };

static void layouts_of(const digcl_gla_shape *s, const digcl_gla_strides *layouts[LAYOUT_COUNT]) {
    layouts[0] = &s->q, layouts[1] = &s->k, layouts[2] = &s->g, layouts[3] = &s->v;
    layouts[4] = &s->o;
}

static void check_layouts(const digcl_gla_shape *s) {
    const digcl_gla_strides *layouts[LAYOUT_COUNT];
    const char *names[LAYOUT_COUNT] = {"q", "k", "g", "v", "o"};
    layouts_of(s, layouts);
    for (int i = 0; i < LAYOUT_COUNT; i++)
        check_strides(names[i], layouts[i], s->T, s->H, i < 3 ? s->K : s->V);
}

static void check_shape(const digcl_gla_shape *s, int chunk) {
    if (s->N < 1 || s->T < 1 || s->H < 1 || s->K < 1 || s->V < 1)
        digcl_fatal("gla: bad shape N=%d T=%d H=%d K=%d V=%d", s->N, s->T, s->H, s->K, s->V);
    if (chunk != 16 && chunk != 32 && chunk != 64)
        digcl_fatal("gla: chunk %d is not 16, 32 or 64", chunk);
    check_layouts(s);
}

static void check_workspace(cl_mem workspace, size_t needed) {
    size_t bytes = 0;
    DIGCL_CL_CHECK(clGetMemObjectInfo(workspace, CL_MEM_SIZE, sizeof bytes, &bytes, NULL));
    if (bytes < needed)
        digcl_fatal("gla: workspace has %zu bytes, needs %zu (digcl_gla_*_workspace_bytes)", bytes,
                    needed);
}

/* Value tile: at most `limit` wide, tiles of equal width, a multiple of 4. */
static int value_tile(int V, int limit) {
    int width = (int)ops_ceil_div((size_t)V, ops_ceil_div((size_t)V, (size_t)limit));
    return (int)ops_round_up((size_t)width, 4);
}

static cl_kernel gla_kernel(digcl_context *ctx, const char *name, const char *program, int chunk,
                            const digcl_gla_shape *s, gla_tiles tiles, const char *flags) {
    char options[256];
    snprintf(options, sizeof options, "-D%s -DCHUNK=%d -DK_DIM=%d -DV_DIM=%d -DKT=%d -DVT=%d %s",
             program, chunk, s->K, s->V, tiles.key, tiles.value, flags);
    return digcl_kernel(ctx, "gla", name, options);
}

static void arg_offset(cl_kernel kernel, unsigned index, size_t elements) {
    cl_ulong value = elements;
    DIGCL_CL_CHECK(clSetKernelArg(kernel, index, sizeof value, &value));
}

/* The arguments shared by the chunk kernels, from `index` on: T, H, then the layouts
 * of q, k, g, v and o (cl/gla.cl, LAYOUTS), then the scale. */
static void layout_args(cl_kernel kernel, unsigned index, const digcl_gla_shape *s, float scale) {
    digcl_arg_int(kernel, index++, s->T);
    digcl_arg_int(kernel, index++, s->H);
    const digcl_gla_strides *layouts[LAYOUT_COUNT];
    layouts_of(s, layouts);
    for (int i = 0; i < LAYOUT_COUNT; i++) {
        arg_offset(kernel, index++, layouts[i]->offset);
        digcl_arg_int(kernel, index++, (int)layouts[i]->token);
        digcl_arg_int(kernel, index++, (int)layouts[i]->head);
        digcl_arg_int(kernel, index++, (int)layouts[i]->batch);
    }
    digcl_arg_float(kernel, index, scale);
}

static void launch_chunks(digcl_context *ctx, cl_kernel kernel, const char *label, int chunk,
                          int groups, const digcl_gla_shape *s) {
    const size_t local[3] = {(size_t)(4 * chunk), 1, 1};
    const size_t global[3] = {(size_t)groups * local[0], chunk_count(s, chunk),
                              (size_t)s->N * s->H};
    digcl_launch(ctx, kernel, label, 3, global, local);
}

typedef struct gla_plan {
    int chunk;
    size_t gammas_offset, dstates_offset; /* elements into the workspace */
} gla_plan;

static gla_plan plan_of(digcl_context *ctx, const digcl_gla_shape *s) {
    gla_plan p;
    p.chunk = chunk_of(ctx, s);
    check_shape(s, p.chunk);
    p.gammas_offset = states_elements(s, p.chunk);
    p.dstates_offset = p.gammas_offset + gammas_elements(s, p.chunk);
    return p;
}

/* Serial kernels (one work-item per chunk and head, private arrays, no
 * barriers) on CPU devices, where PoCL runs each work-item's loops as plain
 * vectorised C; the work-group kernels everywhere else. They keep [C, K]
 * arrays in private memory: only up to SERIAL_MAX_CHUNK_K elements per array.
 * DIGCL_GLA_KERNELS=workgroup|serial overrides the choice (tests use it to
 * cover both on PoCL). */
enum { SERIAL_MAX_CHUNK_K = 2048 };

static int use_serial(digcl_context *ctx, const digcl_gla_shape *s, int chunk) {
    const char *forced = getenv("DIGCL_GLA_KERNELS");
    const int fits = chunk * s->K <= SERIAL_MAX_CHUNK_K && chunk * s->V <= 2 * SERIAL_MAX_CHUNK_K;
    if (forced && *forced) {
        if (strcmp(forced, "workgroup") == 0) return 0;
        if (strcmp(forced, "serial") == 0) return fits;
        digcl_fatal("DIGCL_GLA_KERNELS='%s' is not a GLA kernel family (workgroup or serial)",
                    forced);
    }
    return fits && (digcl_context_device(ctx)->type & CL_DEVICE_TYPE_CPU) != 0;
}

/* One work-item per chunk x head: the serial kernels' launch. */
static void launch_serial(digcl_context *ctx, cl_kernel kernel, const char *label, int chunk,
                          const digcl_gla_shape *s) {
    const size_t global[2] = {chunk_count(s, chunk), (size_t)s->N * s->H}, local[2] = {1, 1};
    digcl_launch(ctx, kernel, label, 2, global, local);
}

/* U_n, Gamma_n (with GLA_STATES) and/or W_n (with GLA_STATE_GRADS). */
static void launch_prepass(digcl_context *ctx, const digcl_gla_shape *s, const gla_plan *p,
                           const char *flags, cl_mem q, cl_mem k, cl_mem g, cl_mem v, cl_mem do_,
                           cl_mem workspace, float scale) {
    /* both products at once hold two [C, VT] tiles: narrower V tiles */
    int both = strstr(flags, "GLA_STATES") && strstr(flags, "GLA_STATE_GRADS");
    gla_tiles tiles = {KEY_TILE, value_tile(s->V, both ? 32 : 64)};
    const int serial = use_serial(ctx, s, p->chunk);
    cl_kernel kernel =
        serial ? gla_kernel(ctx, "gla_chunk_prepass_serial", "GLA_PREPASS_SERIAL", p->chunk, s,
                            tiles, flags)
               : gla_kernel(ctx, "gla_chunk_prepass", "GLA_PREPASS", p->chunk, s, tiles, flags);
    cl_mem inputs[5] = {q, k, g, v, do_};
    for (unsigned i = 0; i < 5; i++) digcl_arg_mem(kernel, i, inputs[i]);
    digcl_arg_mem(kernel, 5, workspace);
    arg_offset(kernel, 6, p->gammas_offset);
    arg_offset(kernel, 7, p->dstates_offset);
    layout_args(kernel, 8, s, scale);
    if (serial) {
        launch_serial(ctx, kernel, "gla_chunk_prepass", p->chunk, s);
        return;
    }
    int groups = (int)ops_ceil_div((size_t)s->K, (size_t)tiles.key) *
                 (int)ops_ceil_div((size_t)s->V, (size_t)tiles.value);
    launch_chunks(ctx, kernel, "gla_chunk_prepass", p->chunk, groups, s);
}

/* Chunks per batch of loads in gla_state_scan: all of them, rounded up to 8, 16 or 32
 * (a larger batch than the chunks costs registers and occupancy for nothing). */
static int scan_batch(size_t chunks) { return chunks <= 8 ? 8 : chunks <= 16 ? 16 : 32; }

typedef struct gla_boundary {
    cl_mem h0, hT, dhT, dh0; /* [N, H, K, V] each, or NULL */
} gla_boundary;

/* Directions [first, last]: 0 forward states, 1 reverse state gradients. */
static void launch_scan(digcl_context *ctx, const digcl_gla_shape *s, const gla_plan *p, int first,
                        int last, gla_boundary b, cl_mem workspace) {
    gla_tiles tiles = {KEY_TILE, 4};
    const int serial = use_serial(ctx, s, p->chunk);
    char batch[32];
    snprintf(batch, sizeof batch, "-DSCAN_BATCH_AUTO=%d", scan_batch(chunk_count(s, p->chunk)));
    cl_kernel kernel = gla_kernel(ctx, serial ? "gla_state_scan_serial" : "gla_state_scan",
                                  "GLA_SCAN", p->chunk, s, tiles, serial ? "" : batch);
    digcl_arg_mem(kernel, 0, workspace);
    arg_offset(kernel, 1, p->gammas_offset);
    arg_offset(kernel, 2, p->dstates_offset);
    cl_mem ends[4] = {b.h0, b.hT, b.dhT, b.dh0};
    /* absent ends are NULL buffers, never the workspace again: PoCL 3.1 lost
     * the ordering of later commands when one buffer was passed twice */
    for (unsigned i = 0; i < 4; i++) digcl_arg_mem(kernel, 3 + i, ends[i]);
    digcl_arg_int(kernel, 7, (int)chunk_count(s, p->chunk));
    digcl_arg_int(kernel, 8, first);
    for (unsigned i = 0; i < 4; i++) digcl_arg_int(kernel, 9 + i, ends[i] != NULL);
    const size_t directions = (size_t)(last - first + 1), heads = (size_t)s->N * s->H;
    if (serial) { /* one work-item per state row */
        const size_t global[3] = {(size_t)s->K, heads, directions}, local[3] = {1, 1, 1};
        digcl_launch(ctx, kernel, "gla_state_scan", 3, global, local);
        return;
    }
    const size_t local[3] = {SCAN_GROUP, 1, 1};
    const size_t global[3] = {ops_round_up((size_t)s->K * s->V, SCAN_GROUP), heads, directions};
    digcl_launch(ctx, kernel, "gla_state_scan", 3, global, local);
}

/* o (forward) or dv (flags "-DGLA_DV": values = do, states = D_n). */
static void launch_output(digcl_context *ctx, const digcl_gla_shape *s, const gla_plan *p,
                          const char *flags, cl_mem q, cl_mem k, cl_mem g, cl_mem values,
                          cl_mem workspace, size_t states_offset, cl_mem out, float scale) {
    /* K tiles of 16 at C = 64 keep the register-blocked kernel's tiles under 48 KiB */
    gla_tiles tiles = {p->chunk > 32 ? 16 : KEY_TILE, value_tile(s->V, 64)};
    const int serial = use_serial(ctx, s, p->chunk);
    cl_kernel kernel =
        serial ? gla_kernel(ctx, "gla_chunk_output_serial", "GLA_OUTPUT_SERIAL", p->chunk, s, tiles,
                            flags)
               : gla_kernel(ctx, "gla_chunk_output", "GLA_OUTPUT", p->chunk, s, tiles, flags);
    cl_mem inputs[4] = {q, k, g, values};
    for (unsigned i = 0; i < 4; i++) digcl_arg_mem(kernel, i, inputs[i]);
    digcl_arg_mem(kernel, 4, workspace);
    arg_offset(kernel, 5, states_offset);
    digcl_arg_mem(kernel, 6, out);
    layout_args(kernel, 7, s, scale);
    const char *label = strstr(flags, "GLA_DV") ? "gla_chunk_dv" : "gla_chunk_output";
    if (serial) {
        launch_serial(ctx, kernel, label, p->chunk, s);
        return;
    }
    launch_chunks(ctx, kernel, label, p->chunk,
                  (int)ops_ceil_div((size_t)s->V, (size_t)tiles.value), s);
}

/* PoCL 3.1's optimised build of gla_chunk_grad_qk gave work-group-sized
 * blocks of wrong dq/dk/dg in about 1 run in 10 with several worker threads
 * (identical inputs; deterministic with one thread or -cl-opt-disable; oclgrind
 * reports no data race). Unoptimised there until the cause is found. */
static const char *grad_qk_options(digcl_context *ctx) {
    const digcl_device_info *device = digcl_context_device(ctx);
    return strstr(device->platform_name, "Portable Computing Language") ? "-cl-opt-disable" : "";
}

static void launch_grad_qk(digcl_context *ctx, const digcl_gla_shape *s, const gla_plan *p,
                           cl_mem q, cl_mem k, cl_mem g, cl_mem v, cl_mem do_, cl_mem workspace,
                           cl_mem dq, cl_mem dk, cl_mem dg, float scale) {
    const int serial = use_serial(ctx, s, p->chunk);
    /* K tiles of 8 at C = 64 keep the register-blocked kernel's tiles under 48 KiB */
    gla_tiles tiles = {p->chunk > 32 ? 8 : 32, value_tile(s->V, 32)};
    cl_kernel kernel = serial ? gla_kernel(ctx, "gla_chunk_grad_qk_serial", "GLA_GRAD_QK_SERIAL",
                                           p->chunk, s, tiles, "")
                              : gla_kernel(ctx, "gla_chunk_grad_qk", "GLA_GRAD_QK", p->chunk, s,
                                           tiles, grad_qk_options(ctx));
    cl_mem inputs[5] = {q, k, g, v, do_};
    for (unsigned i = 0; i < 5; i++) digcl_arg_mem(kernel, i, inputs[i]);
    digcl_arg_mem(kernel, 5, workspace);
    arg_offset(kernel, 6, p->dstates_offset);
    digcl_arg_mem(kernel, 7, dq);
    digcl_arg_mem(kernel, 8, dk);
    digcl_arg_mem(kernel, 9, dg);
    layout_args(kernel, 10, s, scale);
    if (serial) {
        launch_serial(ctx, kernel, "gla_chunk_grad_qk", p->chunk, s);
        return;
    }
    launch_chunks(ctx, kernel, "gla_chunk_grad_qk", p->chunk,
                  (int)ops_ceil_div((size_t)s->K, (size_t)tiles.key), s);
}

static float scale_of(const digcl_gla_shape *s, float scale) {
    return scale > 0 ? scale : (float)(1.0 / sqrt((double)s->K));
}

static size_t workspace_bytes(const digcl_gla_shape *s, const gla_plan *p, int backward) {
    return (p->dstates_offset + (backward ? states_elements(s, p->chunk) : 0)) * sizeof(float);
}

void digcl_gla_forward(digcl_context *ctx, const digcl_gla_shape *shape, cl_mem q, cl_mem k,
                       cl_mem v, cl_mem g, cl_mem h0, cl_mem o, cl_mem hT, cl_mem workspace,
                       float scale) {
    gla_plan p = plan_of(ctx, shape);
    check_workspace(workspace, workspace_bytes(shape, &p, 0));
    scale = scale_of(shape, scale);
    launch_prepass(ctx, shape, &p, "-DGLA_STATES", q, k, g, v, NULL, workspace, scale);
    gla_boundary b = {h0, hT, NULL, NULL};
    launch_scan(ctx, shape, &p, 0, 0, b, workspace);
    launch_output(ctx, shape, &p, "", q, k, g, v, workspace, 0, o, scale);
}

void digcl_gla_backward(digcl_context *ctx, const digcl_gla_shape *shape, cl_mem q, cl_mem k,
                        cl_mem v, cl_mem g, cl_mem h0, cl_mem do_, cl_mem dhT, cl_mem dq, cl_mem dk,
                        cl_mem dv, cl_mem dg, cl_mem dh0, cl_mem workspace, float scale,
                        int flags) {
    gla_plan p = plan_of(ctx, shape);
    check_workspace(workspace, workspace_bytes(shape, &p, 1));
    scale = scale_of(shape, scale);
    int reuse = (flags & DIGCL_GLA_REUSE_STATES) != 0;
    const char *prepass = reuse ? "-DGLA_STATE_GRADS" : "-DGLA_STATES -DGLA_STATE_GRADS";
    launch_prepass(ctx, shape, &p, prepass, q, k, g, v, do_, workspace, scale);
    gla_boundary b = {h0, NULL, dhT, dh0};
    launch_scan(ctx, shape, &p, reuse ? 1 : 0, 1, b, workspace);
    launch_output(ctx, shape, &p, "-DGLA_DV", q, k, g, do_, workspace, p.dstates_offset, dv, scale);
    launch_grad_qk(ctx, shape, &p, q, k, g, v, do_, workspace, dq, dk, dg, scale);
}
