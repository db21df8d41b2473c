/* gemm_tc.c: the host side of cl/gemm_tc.cl, SGEMM on NVIDIA tensor cores
 * (mma.sync m16n8k8 TF32 through inline PTX), fp32-accurate through 3xTF32 or
 * plain TF32 when the context's precision allows it; on compute capability 9.0 the
 * wgmma kernels (cl/gemm_wgmma.cl TF32, cl/gemm_wgmma_split.cl 3xTF32) where they apply.
 *
 * Tile choice: the largest work-group tile that still gives every compute
 * unit at least one tile (fewer, larger tiles reuse each loaded operand more;
 * more, smaller tiles fill the device when the output is small).
 * DIGCL_GEMM_TILE=NAME forces one of the table below (benchmarks). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_backend.h"

typedef struct tc_tile {
    const char *name;
    int bm, bn, bk, wm, wn; /* work-group tile, K step, warp tile */
    int automatic;          /* in the automatic choice (largest first) */
} tc_tile;

/* Local memory: 2 buffers x (BM + BN) x (BK + 4) floats, at most 48 KiB.
 * The automatic ones were the fastest on the H200 (docs/PERFORMANCE.md,
 * "Tensor-core GEMM"); the others stay for DIGCL_GEMM_TILE. */
static const tc_tile tiles[] = {
    {"128x64", 128, 64, 16, 64, 32, 1},      /* 4 warps of 64x32: fastest at 4096^3 */
    {"64x64", 64, 64, 16, 32, 32, 1},        /* 4 warps */
    {"128x128", 128, 128, 16, 64, 32, 0},    /* 8 warps of 64x32 */
    {"128x128w64", 128, 128, 16, 64, 64, 0}, /* 4 warps of 64x64 (more registers) */
    {"256x128", 256, 128, 8, 64, 64, 0},     /* 8 warps of 64x64, K steps of 8 */
};
enum { TILE_COUNT = sizeof tiles / sizeof *tiles, INT_LIMIT = 2147483647 };

int digcl_gemm_tc_supported(const digcl_device_info *device) {
    return (device->type & CL_DEVICE_TYPE_GPU) && device->nv_compute_capability >= 80;
}

static const tc_tile *read_forced_tile(void) {
    const char *value = getenv("DIGCL_GEMM_TILE");
    if (!value || !*value) return NULL;
    for (int i = 0; i < TILE_COUNT; i++)
        if (strcmp(value, tiles[i].name) == 0) return &tiles[i];
    digcl_fatal("DIGCL_GEMM_TILE='%s' is not a tile (expected 128x128, 128x64, 64x64, "
                "128x128w64 or 256x128)",
                value);
}

/* DIGCL_GEMM_TILE, read once per process (as DIGCL_GEMM is): not on every GEMM. */
static const tc_tile *forced_tile(void) {
    static int read;
    static const tc_tile *forced;
    if (!read) forced = read_forced_tile(), read = 1;
    return forced;
}

static size_t tile_count(const tc_tile *t, const digcl_gemm_args *a, size_t batch) {
    return ((a->M + t->bm - 1) / t->bm) * ((a->N + t->bn - 1) / t->bn) * batch;
}

static const tc_tile *choose_tile(const digcl_context *ctx, const digcl_gemm_args *a,
                                  size_t batch) {
    const tc_tile *forced = forced_tile();
    if (forced) return forced;
    size_t units = digcl_context_device(ctx)->compute_units;
    const tc_tile *smallest = NULL;
    for (int i = 0; i < TILE_COUNT; i++) {
        if (!tiles[i].automatic) continue;
        if (tiles[i].bm > 64 && a->M <= 64) continue; /* half its rows would be empty */
        if (tile_count(&tiles[i], a, batch) >= units) return &tiles[i];
        smallest = &tiles[i];
    }
    return smallest;
}

/* Largest element index the kernel forms inside one matrix of the batch
 * (32-bit arithmetic there); offsets and batch strides are 64-bit. */
static int fits_int(const digcl_gemm_args *a) {
    size_t a_rows = a->transpose_a ? a->K : a->M, b_rows = a->transpose_b ? a->N : a->K;
    return a_rows * a->lda < INT_LIMIT && b_rows * a->ldb < INT_LIMIT &&
           a->M * a->ldc < INT_LIMIT && a->lda < INT_LIMIT && a->ldb < INT_LIMIT &&
           a->ldc < INT_LIMIT && a->K < INT_LIMIT;
}

/* Kernel variants for benchmarks, from the environment (cl/gemm_tc.cl):
 * DIGCL_GEMM_STEP_ACC=0 (3xTF32 without per-step accumulators),
 * DIGCL_GEMM_PREFETCH=2 (operands two K steps ahead), DIGCL_GEMM_LDMATRIX=1
 * (ldmatrix fragment loads; not on emulated runs), DIGCL_GEMM_ASYNC=1 (a
 * three-stage cp.async pipeline where the layout allows it: A [M, K], B
 * stored [N, K], float4-aligned, and the stages fit the local memory). The
 * defaults are the measured choice on the H200 (docs/PERFORMANCE.md): ldmatrix
 * for 3xTF32 (DiG-S/2 step 52.2 -> 49.0 ms), cp.async for TF32 (35.4 -> 34.8
 * ms; ldmatrix costs TF32 14 %), for 3xTF32 with A [M, K] and B stored [N, K]
 * the operands two K steps ahead (2-4 % faster there, 3-5 % slower in the other
 * layouts). -1 below: the default of the precision and layout. */
typedef struct tc_variant {
    int step_acc, prefetch, ldmatrix, async;
} tc_variant;

static int env_int(const char *name, int fallback, int min, int max) {
    const char *value = getenv(name);
    if (!value || !*value) return fallback;
    char *end = NULL;
    long parsed = strtol(value, &end, 10);
    if (*end || parsed < min || parsed > max)
        digcl_fatal("%s='%s' is not valid (expected an integer in [%d, %d])", name, value, min,
                    max);
    return (int)parsed;
}

/* Read once per process, like forced_tile. */
static tc_variant variant(void) {
    static int read;
    static tc_variant v;
    if (read) return v;
    v = (tc_variant){
        env_int("DIGCL_GEMM_STEP_ACC", 1, 0, 1), env_int("DIGCL_GEMM_PREFETCH", -1, 1, 2),
        env_int("DIGCL_GEMM_LDMATRIX", -1, 0, 1), env_int("DIGCL_GEMM_ASYNC", -1, 0, 1)};
    read = 1;
    return v;
}

/* float4 loads of an operand: offset, leading dimension and the extent
 * along its contiguous dimension all multiples of 4 (batch strides too). */
static int vector_ok(size_t offset, size_t ld, size_t contiguous, size_t stride) {
    return offset % 4 == 0 && ld % 4 == 0 && contiguous % 4 == 0 && stride % 4 == 0;
}

/* float2 stores of C: offset, leading dimension, N and the batch stride all even. */
static int vector_c_ok(const digcl_gemm_args *a, size_t stride_c) {
    return a->c_offset % 2 == 0 && a->ldc % 2 == 0 && a->N % 2 == 0 && stride_c % 2 == 0;
}

/* The options of cl/gemm_tc.cl for tile t and this layout; conv_ksize > 0: conv2d_tc. */
static void tc_options(char *options, size_t size, digcl_context *ctx, const tc_tile *t,
                       int trans_a, int trans_b, int vec_a, int vec_b, int vec_c, int conv_ksize) {
    const int split3 = digcl_context_precision(ctx) != DIGCL_PRECISION_TF32;
    tc_variant v = variant();
    if (v.ldmatrix < 0) v.ldmatrix = split3;
    if (v.async < 0) v.async = !split3;
    if (v.prefetch < 0) v.prefetch = split3 && !trans_a && trans_b ? 2 : 1;
    if (digcl_gemm_tc_emulated()) v.ldmatrix = 0;
    /* three stages of both tiles, padded rows of BK + 4 floats, within the local memory */
    const size_t stage_bytes = (size_t)(t->bm + t->bn) * (t->bk + 4) * sizeof(float);
    const int async = v.async && !trans_a && trans_b && vec_a && vec_b && !conv_ksize &&
                      3 * stage_bytes + 1024 <= digcl_context_device(ctx)->local_mem_bytes;
    snprintf(options, size,
             "-D BM=%d -D BN=%d -D BK=%d -D WM=%d -D WN=%d -D TRANS_A=%d -D TRANS_B=%d "
             "-D SPLIT3=%d -D VEC_A=%d -D VEC_B=%d -D VEC_C=%d -D STEP_ACC=%d -D PREFETCH=%d "
             "-D LDMATRIX=%d -D ASYNC=%d -D TC_EMULATE=%d -D CONV_KSIZE=%d",
             t->bm, t->bn, t->bk, t->wm, t->wn, trans_a, trans_b, split3, vec_a, vec_b, vec_c,
             split3 && v.step_acc, v.prefetch, v.ldmatrix, async, digcl_gemm_tc_emulated(),
             conv_ksize);
}

static cl_kernel tc_kernel(digcl_context *ctx, const tc_tile *t, const digcl_gemm_args *a,
                           size_t stride_a, size_t stride_b, size_t stride_c) {
    char options[320];
    const int vec_a = vector_ok(a->a_offset, a->lda, a->transpose_a ? a->M : a->K, stride_a);
    const int vec_b = vector_ok(a->b_offset, a->ldb, a->transpose_b ? a->K : a->N, stride_b);
    tc_options(options, sizeof options, ctx, t, a->transpose_a ? 1 : 0, a->transpose_b ? 1 : 0,
               vec_a, vec_b, vector_c_ok(a, stride_c), 0);
    return digcl_kernel(ctx, "gemm_tc", "gemm_tc", options);
}

/* The arguments both kernels take, in their order. */
static void set_gemm_args(cl_kernel kernel, const digcl_gemm_args *a, size_t stride_a,
                          size_t stride_b, size_t stride_c) {
    unsigned i = 0;
    digcl_arg_int(kernel, i++, (int)a->M);
    digcl_arg_int(kernel, i++, (int)a->N);
    digcl_arg_int(kernel, i++, (int)a->K);
    digcl_arg_float(kernel, i++, a->alpha);
    digcl_arg_mem(kernel, i++, a->A);
    digcl_arg_ulong(kernel, i++, a->a_offset);
    digcl_arg_int(kernel, i++, (int)a->lda);
    digcl_arg_ulong(kernel, i++, stride_a);
    digcl_arg_mem(kernel, i++, a->B);
    digcl_arg_ulong(kernel, i++, a->b_offset);
    digcl_arg_int(kernel, i++, (int)a->ldb);
    digcl_arg_ulong(kernel, i++, stride_b);
    digcl_arg_float(kernel, i++, a->beta);
    digcl_arg_mem(kernel, i++, a->C);
    digcl_arg_ulong(kernel, i++, a->c_offset);
    digcl_arg_int(kernel, i++, (int)a->ldc);
    digcl_arg_ulong(kernel, i++, stride_c);
}

/* ---------------------------------------------------------------- wgmma (sm_90a) */

/* DIGCL_GEMM_WGMMA: unset (-1), TF32 GEMMs of A [M, K] and B stored [N, K] with K a multiple
 * of 4 run on cl/gemm_wgmma.cl on compute capability 9.0, and so do TF32 GEMMs of A [M, K] and
 * B [K, N] whose B is at most a quarter of A (a layer's input gradient dY W) through a K-major
 * copy of B (wgmma reads TF32 operands K-major only); every other GEMM runs on the mma.sync
 * kernel, which is faster there for fp32-accurate GEMMs since the truncating split and, in a
 * whole TF32 step, than the wgmma kernel with K-major copies of large operands
 * (docs/PERFORMANCE.md, "The truncating split" and "Column slices in place"); 0 never; 1 both
 * kernels wherever they can run (other TF32 layouts through K-major copies, fp32-accurate
 * GEMMs whose B has 16-byte chunks on cl/gemm_wgmma_split.cl), also where the kernels are
 * emulated (DIGCL_GEMM=tensor-emulate, tests).
 * DIGCL_GEMM_WGMMA_BN=64|128 forces the tile width (benchmarks). */
static int wgmma_setting(void) {
    static int read, setting;
    if (!read) setting = env_int("DIGCL_GEMM_WGMMA", -1, 0, 1), read = 1;
    return setting;
}

/* A [M, K] times B [K, N] with B at most a quarter of A: the K-major copy of B costs little
 * against the GEMM (8192x384x1536 TF32: 78.8 -> 99.5 TFLOP/s on the H200, copy included). */
static int small_b_layout(const digcl_gemm_args *a) {
    return !a->transpose_a && !a->transpose_b && 4 * a->N <= a->M;
}

int digcl_gemm_tc_wgmma(const digcl_context *ctx) {
    const int setting = wgmma_setting();
    if (digcl_gemm_tc_emulated()) return setting == 1;
    if (digcl_context_device(ctx)->nv_compute_capability != 90) return 0;
    return digcl_context_precision(ctx) == DIGCL_PRECISION_TF32 ? setting != 0 : setting == 1;
}

/* The kernel reads A [M, K] and B stored [N, K] directly where they are float4-aligned; an
 * operand stored the other way (a small B by default, any with DIGCL_GEMM_WGMMA=1) gets a
 * K-major copy first (transposed_copy). */
static int wgmma_eligible(const digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a,
                          size_t stride_b) {
    return digcl_context_precision(ctx) == DIGCL_PRECISION_TF32 && a->K % 4 == 0 &&
           ((!a->transpose_a && a->transpose_b) || small_b_layout(a) || wgmma_setting() == 1) &&
           (a->transpose_a || vector_ok(a->a_offset, a->lda, a->K, stride_a)) &&
           (!a->transpose_b || vector_ok(a->b_offset, a->ldb, a->K, stride_b)) &&
           digcl_gemm_tc_wgmma(ctx);
}

/* a's output tiles of `rows` x 128 (all batches): what the wgmma kernels' shape choices
 * count. */
static size_t wide_tiles(const digcl_gemm_args *a, size_t batch, int rows) {
    return ((a->M + (size_t)rows - 1) / (size_t)rows) * ((a->N + 127) / 128) * batch;
}

/* BM x 128 tiles where they give every compute unit two, else BM x 64. */
static int wgmma_width(const digcl_context *ctx, const digcl_gemm_args *a, size_t batch, int bm) {
    static int read, forced;
    if (!read) forced = env_int("DIGCL_GEMM_WGMMA_BN", 0, 0, 128), read = 1;
    if (forced == 64 || forced == 128) return forced;
    if (forced)
        digcl_fatal("DIGCL_GEMM_WGMMA_BN=%d is not a tile width (expected 64 or 128)", forced);
    return wide_tiles(a, batch, bm) >= 2 * digcl_context_device(ctx)->compute_units ? 128 : 64;
}

/* X stored [K, rows] (offset, ld, batch stride) -> scratch `key` as [batch][rows][K]. */
static cl_mem transposed_copy(digcl_context *ctx, const char *key, cl_mem X, size_t offset,
                              size_t ld, size_t stride, size_t K, size_t rows, size_t batch) {
    cl_mem copy = digcl_context_scratch(ctx, key, batch * rows * K * sizeof(float),
                                        "K-major GEMM operand (wgmma)");
    cl_kernel kernel = digcl_kernel(ctx, "util", "transpose_batched", "");
    unsigned i = 0;
    digcl_arg_mem(kernel, i++, X);
    digcl_arg_ulong(kernel, i++, offset);
    digcl_arg_int(kernel, i++, (int)ld);
    digcl_arg_ulong(kernel, i++, stride);
    digcl_arg_int(kernel, i++, (int)K);
    digcl_arg_int(kernel, i++, (int)rows);
    digcl_arg_mem(kernel, i++, copy);
    digcl_arg_ulong(kernel, i++, 0);
    digcl_arg_int(kernel, i++, (int)K);
    digcl_arg_ulong(kernel, i++, rows * K);
    size_t global[3] = {((rows + 31) / 32) * 32, ((K + 31) / 32) * 8, batch};
    size_t local[3] = {32, 8, 1};
    digcl_launch(ctx, kernel, "transpose_batched", 3, global, local);
    return copy;
}

/* The options of a wgmma kernel: the tile width bn, `layout` (the rest but the C stores). */
static void wgmma_options(char *options, size_t size, int bn, const char *layout,
                          const digcl_gemm_args *a, size_t stride_c) {
    snprintf(options, size, "-D BN=%d%s -D VEC_C=%d -D TC_EMULATE=%d", bn, layout,
             vector_c_ok(a, stride_c), digcl_gemm_tc_emulated());
}

/* `kernel` over a's 64 wg x bn tiles, wg warpgroups each. */
static void launch_tiles(digcl_context *ctx, cl_kernel kernel, const char *label,
                         const digcl_gemm_args *a, size_t batch, int wg, int bn) {
    size_t global[3] = {((a->N + bn - 1) / bn) * 128 * wg, (a->M + 64 * wg - 1) / (64 * wg), batch};
    size_t local[3] = {128 * (size_t)wg, 1, 1};
    digcl_launch(ctx, kernel, label, 3, global, local);
}

/* cl/gemm_wgmma.cl's pipeline: K steps of bk through `stages` local buffers, the wgmma
 * drained every step or one step kept in flight, `groups` warpgroups per work-group. */
typedef struct wgmma_pipe {
    int bk, stages, drain, groups;
} wgmma_pipe;

/* DIGCL_GEMM_WGMMA_BK=8|16|32, DIGCL_GEMM_WGMMA_STAGES, DIGCL_GEMM_WGMMA_DRAIN=0|1 and
 * DIGCL_GEMM_WGMMA_TF32_WG=1|2 force a part of the pipeline (benchmarks); 0 (-1 for drain):
 * the automatic choice. Read once per process. */
static wgmma_pipe forced_pipe(void) {
    static int read;
    static wgmma_pipe p;
    if (read) return p;
    p = (wgmma_pipe){
        env_int("DIGCL_GEMM_WGMMA_BK", 0, 0, 32), env_int("DIGCL_GEMM_WGMMA_STAGES", 0, 0, 16),
        env_int("DIGCL_GEMM_WGMMA_DRAIN", -1, 0, 1), env_int("DIGCL_GEMM_WGMMA_TF32_WG", 0, 0, 2)};
    if (p.bk && p.bk != 8 && p.bk != 16 && p.bk != 32)
        digcl_fatal("DIGCL_GEMM_WGMMA_BK=%d is not a K step (expected 8, 16 or 32)", p.bk);
    if (p.stages == 1)
        digcl_fatal("DIGCL_GEMM_WGMMA_STAGES=1 is not a pipeline (expected at least 2)");
    read = 1;
    return p;
}

/* Automatic (the fastest on the H200, docs/PERFORMANCE.md "A deeper wgmma pipeline"): two
 * warpgroups on 128 x 128 tiles, three buffers, drained every step, where those tiles give
 * every compute unit four (with fewer, the last wave of two work-groups per unit runs
 * part-empty: 12544 x 384 lost 8 %); else one warpgroup on 64 x BN tiles, four buffers, a
 * step in flight (two buffers, when forced, are always drained). K steps of 16 (8 costs a
 * barrier per wgmma, 32 leaves room for only two buffers). */
static wgmma_pipe tf32_pipe(const digcl_context *ctx, const digcl_gemm_args *a, size_t batch) {
    const wgmma_pipe f = forced_pipe();
    const size_t wide = wide_tiles(a, batch, 128);
    wgmma_pipe p;
    p.groups = f.groups ? f.groups : wide >= 4 * digcl_context_device(ctx)->compute_units ? 2 : 1;
    p.bk = f.bk ? f.bk : 16;
    p.stages = f.stages ? f.stages : p.groups == 2 ? 3 : 4;
    p.drain = f.drain >= 0 ? f.drain : p.groups == 2 || p.stages < 3;
    if (!p.drain && p.stages < 3)
        digcl_fatal("DIGCL_GEMM_WGMMA_DRAIN=0 keeps a step in flight: it needs at least 3 "
                    "buffers (DIGCL_GEMM_WGMMA_STAGES)");
    const size_t bytes = (size_t)p.stages * (64 * p.groups + 128) * p.bk * sizeof(float);
    if (bytes > 48 * 1024)
        digcl_fatal("the wgmma TF32 pipeline of %d buffers of K steps of %d with %d warpgroups "
                    "needs %zu bytes of local memory (at most 49152; DIGCL_GEMM_WGMMA_*)",
                    p.stages, p.bk, p.groups, bytes);
    return p;
}

static void launch_wgmma(digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a,
                         size_t stride_b, size_t stride_c, size_t batch) {
    digcl_gemm_args k_major = *a; /* A [M, K], B stored [N, K] */
    if (a->transpose_a) {
        k_major.A = transposed_copy(ctx, "gemm wgmma A", a->A, a->a_offset, a->lda, stride_a, a->K,
                                    a->M, batch);
        k_major.a_offset = 0, k_major.lda = a->K, stride_a = a->M * a->K;
    }
    if (!a->transpose_b) {
        k_major.B = transposed_copy(ctx, "gemm wgmma B", a->B, a->b_offset, a->ldb, stride_b, a->K,
                                    a->N, batch);
        k_major.b_offset = 0, k_major.ldb = a->K, stride_b = a->N * a->K;
    }
    const wgmma_pipe p = tf32_pipe(ctx, a, batch);
    const int bn = wgmma_width(ctx, a, batch, 64 * p.groups);
    char layout[96], options[192];
    snprintf(layout, sizeof layout, " -D BK=%d -D STAGES=%d -D DRAIN=%d -D WG=%d", p.bk, p.stages,
             p.drain, p.groups);
    wgmma_options(options, sizeof options, bn, layout, a, stride_c);
    cl_kernel kernel = digcl_kernel(ctx, "gemm_wgmma", "gemm_wgmma", options);
    set_gemm_args(kernel, &k_major, stride_a, stride_b, stride_c);
    launch_tiles(ctx, kernel, "gemm (wgmma)", a, batch, p.groups, bn);
}

/* DIGCL_GEMM_WGMMA_TF32=split: TF32 GEMMs too run on cl/gemm_wgmma_split.cl (one product,
 * every layout without copies) where it can (benchmarks). */
static int wgmma_split_tf32(void) {
    static int read, split;
    if (!read) {
        const char *value = getenv("DIGCL_GEMM_WGMMA_TF32");
        if (value && *value && strcmp(value, "split") != 0)
            digcl_fatal("DIGCL_GEMM_WGMMA_TF32='%s' is not a TF32 kernel choice (expected split)",
                        value);
        split = value && *value, read = 1;
    }
    return split;
}

/* cl/gemm_wgmma_split.cl reads both operands in their stored layout, A element by element
 * and B in 16-byte chunks along its contiguous dimension. */
static int wgmma_split_eligible(const digcl_context *ctx, const digcl_gemm_args *a,
                                size_t stride_b) {
    return (digcl_context_precision(ctx) != DIGCL_PRECISION_TF32 || wgmma_split_tf32()) &&
           vector_ok(a->b_offset, a->ldb, a->transpose_b ? a->K : a->N, stride_b) &&
           digcl_gemm_tc_wgmma(ctx);
}

/* DIGCL_GEMM_WGMMA_WG=1..4 forces the warpgroups per work-group; unset, two (128-row tiles)
 * where 128 x 128 tiles give every compute unit one. */
static int wgmma_split_groups(const digcl_context *ctx, const digcl_gemm_args *a, size_t batch) {
    static int read, forced;
    if (!read) forced = env_int("DIGCL_GEMM_WGMMA_WG", 0, 0, 4), read = 1;
    if (forced) return forced;
    return wide_tiles(a, batch, 128) >= digcl_context_device(ctx)->compute_units ? 2 : 1;
}

/* DIGCL_GEMM_WGMMA_CHAIN: K steps of 16 per fresh tensor-core accumulation (3xTF32), 4. */
static int wgmma_split_chain(void) {
    static int read, chain;
    if (!read) chain = env_int("DIGCL_GEMM_WGMMA_CHAIN", 4, 1, 1 << 20), read = 1;
    return chain;
}

static void launch_wgmma_split(digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a,
                               size_t stride_b, size_t stride_c, size_t batch) {
    const int split = digcl_context_precision(ctx) != DIGCL_PRECISION_TF32;
    const int wg = wgmma_split_groups(ctx, a, batch), bn = wgmma_width(ctx, a, batch, 64 * wg);
    char layout[128], options[192];
    snprintf(layout, sizeof layout, " -D TRANS_A=%d -D TRANS_B=%d -D WG=%d -D SPLIT=%d -D CHAIN=%d",
             a->transpose_a ? 1 : 0, a->transpose_b ? 1 : 0, wg, split,
             split ? wgmma_split_chain() : 0);
    wgmma_options(options, sizeof options, bn, layout, a, stride_c);
    cl_kernel kernel = digcl_kernel(ctx, "gemm_wgmma_split", "gemm_wgmma_split", options);
    set_gemm_args(kernel, a, stride_a, stride_b, stride_c);
    launch_tiles(ctx, kernel, split ? "gemm (wgmma, 3xTF32)" : "gemm (wgmma, TF32 split kernel)", a,
                 batch, wg, bn);
}

/* ---------------------------------------------------------------- implicit-GEMM conv */

/* conv2d_tc gathers one pixel column of the B tile per thread: THREADS a multiple of BN. */
static int gathers_columns(const tc_tile *t) {
    return (32 * (t->bm / t->wm) * (t->bn / t->wn)) % t->bn == 0;
}

int digcl_conv2d_tc(digcl_context *ctx, const digcl_conv2d_shape *s, cl_mem x, size_t x_offset,
                    cl_mem weight, size_t w_offset, cl_mem bias, size_t b_offset, cl_mem y,
                    size_t y_offset, int accumulate) {
    const size_t Wo = (size_t)digcl_conv2d_out_width(s);
    const size_t pixels = (size_t)digcl_conv2d_out_height(s) * Wo;
    const size_t rows = (size_t)s->C * s->K * s->K, in_image = (size_t)s->C * s->H * s->W;
    if (s->O * rows >= INT_LIMIT || s->O * pixels >= INT_LIMIT || in_image >= INT_LIMIT) return 0;
    digcl_gemm_args g = {0}; /* w [O, C K K] times col [C K K, pixels] */
    g.M = (size_t)s->O, g.N = pixels, g.K = rows, g.a_offset = w_offset, g.lda = rows;
    g.c_offset = y_offset, g.ldc = pixels;
    const tc_tile *t = choose_tile(ctx, &g, (size_t)s->N);
    if (!gathers_columns(t)) t = &tiles[0];
    char options[320];
    tc_options(options, sizeof options, ctx, t, 0, 0, vector_ok(w_offset, rows, rows, 0), 0,
               vector_c_ok(&g, (size_t)s->O * pixels), s->K);
    cl_kernel kernel = digcl_kernel(ctx, "gemm_tc", "conv2d_tc", options);
    unsigned i = 0;
    digcl_arg_int(kernel, i++, s->O);
    digcl_arg_int(kernel, i++, (int)pixels);
    digcl_arg_int(kernel, i++, (int)rows);
    digcl_arg_mem(kernel, i++, weight);
    digcl_arg_ulong(kernel, i++, w_offset);
    digcl_arg_mem(kernel, i++, x);
    digcl_arg_ulong(kernel, i++, x_offset);
    digcl_arg_ulong(kernel, i++, in_image);
    digcl_arg_int(kernel, i++, s->H);
    digcl_arg_int(kernel, i++, s->W);
    digcl_arg_int(kernel, i++, (int)Wo);
    digcl_arg_int(kernel, i++, s->stride);
    digcl_arg_int(kernel, i++, s->pad_top);
    digcl_arg_int(kernel, i++, s->pad_left);
    digcl_arg_mem(kernel, i++, bias ? bias : weight);
    digcl_arg_ulong(kernel, i++, b_offset);
    digcl_arg_int(kernel, i++, bias != NULL);
    digcl_arg_float(kernel, i++, accumulate ? 1.0f : 0.0f);
    digcl_arg_mem(kernel, i++, y);
    digcl_arg_ulong(kernel, i++, y_offset);
    digcl_arg_ulong(kernel, i++, (size_t)s->O * pixels);
    const size_t threads = 32 * (size_t)(t->bm / t->wm) * (size_t)(t->bn / t->wn);
    size_t global[3] = {((pixels + t->bn - 1) / t->bn) * threads, (g.M + t->bm - 1) / t->bm,
                        (size_t)s->N};
    size_t local[3] = {threads, 1, 1};
    digcl_launch(ctx, kernel, "conv2d (tensor cores)", 3, global, local);
    return 1;
}

/* ---------------------------------------------------------------- entry */

int digcl_gemm_tc(digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a, size_t stride_b,
                  size_t stride_c, size_t batch) {
    if (!fits_int(a)) return 0;
    if (!wgmma_split_tf32() && wgmma_eligible(ctx, a, stride_a, stride_b)) {
        launch_wgmma(ctx, a, stride_a, stride_b, stride_c, batch);
        return 1;
    }
    if (wgmma_split_eligible(ctx, a, stride_b)) {
        launch_wgmma_split(ctx, a, stride_a, stride_b, stride_c, batch);
        return 1;
    }
    const tc_tile *t = choose_tile(ctx, a, batch);
    cl_kernel kernel = tc_kernel(ctx, t, a, stride_a, stride_b, stride_c);
    set_gemm_args(kernel, a, stride_a, stride_b, stride_c);
    const size_t threads = 32 * (size_t)(t->bm / t->wm) * (size_t)(t->bn / t->wn);
    size_t global[3] = {((a->N + t->bn - 1) / t->bn) * threads, (a->M + t->bm - 1) / t->bm, batch};
    size_t local[3] = {threads, 1, 1};
    digcl_launch(ctx, kernel, "gemm (tensor cores)", 3, global, local);
    return 1;
}
