/* `digcl bench gemm --tune`: tries CLBlast kernel parameter sets on the
 * DiG-S/2 training GEMM shapes (CLBlastOverrideParameters), checks each shape
 * against digcl_ref_gemm and prints one row of timings per set.
 *
 * CLBlast keeps overrides for the rest of the process, so the table runs in
 * order: the parameters in force first (CLBlast's own with DIGCL_GEMM_TUNING=0),
 * then full "Xgemm" sets, then sets that also change "XgemmDirect" or the
 * direct/indirect threshold ("GemmRoutine" XGEMM_MIN_INDIRECT_SIZE), which
 * stay in force afterwards. */
#include <clblast_c.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "digcl/gemm.h"
#include "digcl/ref/gemm.h"

enum { XGEMM_PARAMS = 16, DIRECT_PARAMS = 10, CHECK_ROWS = 64, SHAPES = 7 };

static const char *xgemm_names[XGEMM_PARAMS] = {"MWG",   "NWG", "KWG",  "MDIMC", "NDIMC", "MDIMA",
                                                "NDIMB", "KWI", "VWM",  "VWN",   "STRM",  "STRN",
                                                "SA",    "SB",  "KREG", "GEMMK"};
static const char *direct_names[DIRECT_PARAMS] = {"WGD",  "MDIMCD", "NDIMCD", "MDIMAD", "NDIMBD",
                                                  "KWID", "VWMD",   "VWND",   "PADA",   "PADB"};

typedef struct tune_set {
    const char *name;
    size_t xgemm[XGEMM_PARAMS];   /* all zero: leave Xgemm as it is */
    size_t direct[DIRECT_PARAMS]; /* all zero: leave XgemmDirect as it is */
    size_t min_indirect;          /* 0: leave GemmRoutine as it is */
} tune_set;

/* Constraints (CLBlast src/tuning/kernels/xgemm.hpp): KWG % KWI, MWG % (MDIMC*VWM),
 * NWG % (NDIMC*VWN), MWG % (MDIMA*VWM), NWG % (NDIMB*VWN), KWG % (MDIMC*NDIMC/MDIMA),
 * KWG % (MDIMC*NDIMC/NDIMB) all 0. Row-major C = op(A) op(B) is column-major
 * C^T, so CLBlast's M (MWG) is our N and its N (NWG) our M = 8192. */
static const tune_set tune_sets[] = {
    {"in force", {0}, {0}, 0}, /* CLBlast's own with DIGCL_GEMM_TUNING=0 */
    {"128x128k16 v4", {128, 128, 16, 16, 16, 16, 16, 2, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"128x128k32 v4", {128, 128, 32, 16, 16, 16, 16, 2, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"128x128k16 v4 kwi8", {128, 128, 16, 16, 16, 16, 16, 8, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"128x128k16 v4 str0", {128, 128, 16, 16, 16, 16, 16, 2, 4, 4, 0, 0, 1, 1, 1, 0}, {0}, 0},
    {"128x128k32 32x8", {128, 128, 32, 32, 8, 32, 8, 2, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"128x64k32", {128, 64, 32, 16, 8, 16, 8, 2, 4, 2, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"64x128k32", {64, 128, 32, 8, 16, 8, 16, 2, 2, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"64x128k16 16x16", {64, 128, 16, 16, 16, 16, 16, 2, 2, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"64x64k32 16x16", {64, 64, 32, 16, 16, 16, 16, 2, 2, 2, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"64x64k16 8x8", {64, 64, 16, 8, 8, 8, 8, 2, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    {"64x64k32 8x8", {64, 64, 32, 8, 8, 8, 8, 2, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 0},
    /* from here on the direct/indirect threshold stays overridden */
    {"128x64k32 +ind512", {128, 64, 32, 16, 8, 16, 8, 2, 4, 2, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"128x64k32 kwi8", {128, 64, 32, 16, 8, 16, 8, 8, 4, 2, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"128x64k16", {128, 64, 16, 16, 8, 16, 8, 2, 4, 2, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"128x64k32 v2v2", {128, 64, 32, 16, 8, 16, 8, 2, 2, 2, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"128x64k32 16x16", {128, 64, 32, 16, 16, 16, 16, 2, 4, 2, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"128x32k32", {128, 32, 32, 16, 8, 16, 8, 2, 4, 1, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"64x64k16 8x8", {64, 64, 16, 8, 8, 8, 8, 2, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"128x128k16 kwi8", {128, 128, 16, 16, 16, 16, 16, 8, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 512},
    {"128x128k16 +ind64", {128, 128, 16, 16, 16, 16, 16, 2, 4, 4, 1, 1, 1, 1, 1, 0}, {0}, 64},
    {"128x64k32 +ind64", {128, 64, 32, 16, 8, 16, 8, 2, 4, 2, 1, 1, 1, 1, 1, 0}, {0}, 64},
    {"64x64k32 +ind64", {64, 64, 32, 16, 16, 16, 16, 2, 2, 2, 1, 1, 1, 1, 1, 0}, {0}, 64},
    /* XgemmDirect too (used by the split-K slices below the threshold) */
    {"64x64k32 +direct64",
     {64, 64, 32, 16, 16, 16, 16, 2, 2, 2, 1, 1, 1, 1, 1, 0},
     {64, 16, 16, 16, 16, 2, 4, 4, 1, 1},
     2048},
};

/* One DiG-S/2 shape: op(A) [M, K] op(B) [K, N], `batch` of them K-strided. */
typedef struct tune_shape {
    const char *label;
    size_t M, N, K;
    int ta, tb;
    size_t batch;
} tune_shape;

static const tune_shape tune_shapes[SHAPES] = {
    {"8192x384x384 NT", 8192, 384, 384, 0, 1, 1},   {"8192x384x384 NN", 8192, 384, 384, 0, 0, 1},
    {"8192x2048x384 NT", 8192, 2048, 384, 0, 1, 1}, {"8192x384x1024 NT", 8192, 384, 1024, 0, 1, 1},
    {"8192x1168x384 NT", 8192, 1168, 384, 0, 1, 1}, {"8192x384x1168 NN", 8192, 384, 1168, 0, 0, 1},
    {"16x384x384x512 TN", 384, 384, 512, 1, 0, 16},
};

typedef struct tune_case {
    digcl_gemm_args args;
    size_t stride_a, stride_b, stride_c, batch;
} tune_case;

/* Operands for the largest shape, shared by all: A, B [32 Mi floats max], C. */
typedef struct tune_buffers {
    digcl_buffer a, b, c;
    float *host_a, *host_b, *host_c;
    size_t a_count, b_count, c_count;
} tune_buffers;

static size_t max_count(int which) {
    size_t most = 0;
    for (int s = 0; s < SHAPES; s++) {
        const tune_shape *t = &tune_shapes[s];
        size_t count = which == 0 ? t->M * t->K : which == 1 ? t->K * t->N : t->M * t->N;
        count *= t->batch;
        if (count > most) most = count;
    }
    return most;
}

static tune_buffers buffers_create(digcl_context *ctx) {
    tune_buffers b;
    b.a_count = max_count(0), b.b_count = max_count(1), b.c_count = max_count(2);
    b.host_a = malloc(b.a_count * sizeof(float));
    b.host_b = malloc(b.b_count * sizeof(float));
    b.host_c = malloc(b.c_count * sizeof(float));
    if (!b.host_a || !b.host_b || !b.host_c) digcl_fatal("out of host memory");
    bench_fill_uniform(b.host_a, b.a_count, 11, 1.0f);
    bench_fill_uniform(b.host_b, b.b_count, 12, 1.0f);
    b.a = digcl_buffer_create(ctx, b.a_count * sizeof(float), "tune A");
    b.b = digcl_buffer_create(ctx, b.b_count * sizeof(float), "tune B");
    b.c = digcl_buffer_create(ctx, b.c_count * sizeof(float), "tune C");
    digcl_write(ctx, b.a.mem, 0, b.a_count * sizeof(float), b.host_a);
    digcl_write(ctx, b.b.mem, 0, b.b_count * sizeof(float), b.host_b);
    return b;
}

static void buffers_release(tune_buffers *b) {
    digcl_buffer_release(&b->a), digcl_buffer_release(&b->b), digcl_buffer_release(&b->c);
    free(b->host_a), free(b->host_b), free(b->host_c);
}

static tune_case make_case(const tune_shape *t, const tune_buffers *b) {
    tune_case c;
    /* batch > 1: split-K slices, consecutive K ranges of one [M, K * batch] product */
    size_t lda = t->ta ? t->M : t->K * t->batch, ldb = t->tb ? t->K * t->batch : t->N;
    c.args = (digcl_gemm_args){t->ta, t->tb, t->M,     t->N, t->K, 1.0f,     0.0f, b->a.mem,
                               0,     lda,   b->b.mem, 0,    ldb,  b->c.mem, 0,    t->N};
    c.stride_a = t->ta ? t->K * c.args.lda : t->K;
    c.stride_b = t->tb ? t->K : t->K * c.args.ldb;
    c.stride_c = t->M * t->N;
    c.batch = t->batch;
    return c;
}

static void run_case(digcl_context *ctx, void *arg) {
    tune_case *c = arg;
    if (c->batch > 1)
        digcl_gemm_strided_batched(ctx, &c->args, c->stride_a, c->stride_b, c->stride_c, c->batch);
    else digcl_gemm_split_k(ctx, &c->args, 1);
}

/* One call straight into CLBlast, so that a set it rejects is reported, not fatal. */
static CLBlastStatusCode probe_case(digcl_context *ctx, const tune_case *c) {
    const digcl_gemm_args *a = &c->args;
    cl_command_queue queue = digcl_context_queue(ctx);
    CLBlastTranspose ta = a->transpose_a ? CLBlastTransposeYes : CLBlastTransposeNo;
    CLBlastTranspose tb = a->transpose_b ? CLBlastTransposeYes : CLBlastTransposeNo;
    if (c->batch > 1)
        return CLBlastSgemmStridedBatched(CLBlastLayoutRowMajor, ta, tb, a->M, a->N, a->K, a->alpha,
                                          a->A, 0, a->lda, c->stride_a, a->B, 0, a->ldb,
                                          c->stride_b, a->beta, a->C, 0, a->ldc, c->stride_c,
                                          c->batch, &queue, NULL);
    return CLBlastSgemm(CLBlastLayoutRowMajor, ta, tb, a->M, a->N, a->K, a->alpha, a->A, 0, a->lda,
                        a->B, 0, a->ldb, a->beta, a->C, 0, a->ldc, &queue, NULL);
}

/* Relative L2 error of the last CHECK_ROWS rows of the last batch entry of C. */
static double check_case(digcl_context *ctx, const tune_case *c, tune_buffers *b) {
    const digcl_gemm_args *a = &c->args;
    size_t rows = CHECK_ROWS, first = a->M - rows, last = c->batch - 1;
    size_t a_off = last * c->stride_a + (a->transpose_a ? first : first * a->lda);
    size_t c_off = last * c->stride_c + first * a->ldc, count = rows * a->ldc;
    float *expected = malloc(count * sizeof *expected);
    if (!expected) digcl_fatal("out of host memory");
    digcl_read(ctx, a->C, c_off * sizeof(float), count * sizeof(float), b->host_c);
    digcl_ref_gemm(a->transpose_a, a->transpose_b, rows, a->N, a->K, 1.0f, b->host_a, a_off, a->lda,
                   b->host_b, last * c->stride_b, a->ldb, 0.0f, expected, 0, a->ldc);
    double diff = 0, norm = 0;
    for (size_t i = 0; i < count; i++) {
        double d = (double)b->host_c[i] - expected[i];
        diff += d * d, norm += (double)expected[i] * expected[i];
    }
    free(expected);
    return isfinite(diff) ? sqrt(diff / norm) : INFINITY;
}

static int any_set(const size_t *values, int count) {
    for (int i = 0; i < count; i++)
        if (values[i]) return 1;
    return 0;
}

static CLBlastStatusCode apply_set(cl_device_id device, const tune_set *set) {
    CLBlastStatusCode status = CLBlastSuccess;
    if (any_set(set->xgemm, XGEMM_PARAMS))
        status = CLBlastOverrideParameters(device, "Xgemm", CLBlastPrecisionSingle, XGEMM_PARAMS,
                                           xgemm_names, set->xgemm);
    if (status == CLBlastSuccess && any_set(set->direct, DIRECT_PARAMS))
        status = CLBlastOverrideParameters(device, "XgemmDirect", CLBlastPrecisionSingle,
                                           DIRECT_PARAMS, direct_names, set->direct);
    if (status == CLBlastSuccess && set->min_indirect) {
        const char *name = "XGEMM_MIN_INDIRECT_SIZE";
        status = CLBlastOverrideParameters(device, "GemmRoutine", CLBlastPrecisionSingle, 1, &name,
                                           &set->min_indirect);
    }
    return status;
}

/* Times every shape under one set; returns 0 when the set failed or was wrong. */
static int tune_row(digcl_context *ctx, const tune_set *set, tune_buffers *b, double *total) {
    printf("%-20s", set->name);
    fflush(stdout);
    CLBlastStatusCode status = apply_set(digcl_context_device(ctx)->device, set);
    if (status != CLBlastSuccess) return printf(" override failed (status %d)\n", (int)status), 0;
    *total = 0;
    for (int s = 0; s < SHAPES; s++) {
        tune_case c = make_case(&tune_shapes[s], b);
        status = probe_case(ctx, &c);
        if (status != CLBlastSuccess)
            return printf(" %s: CLBlast status %d\n", tune_shapes[s].label, (int)status), 0;
        digcl_finish(ctx);
        double error = check_case(ctx, &c, b);
        if (!(error < 1e-5))
            return printf(" %s: rel L2 error %.2e WRONG\n", tune_shapes[s].label, error), 0;
        double ms = bench_time_ms(ctx, run_case, &c, 3, 20);
        *total += ms;
        printf(" %8.4f", ms);
        fflush(stdout);
    }
    printf(" %9.4f\n", *total);
    return 1;
}

int bench_gemm_tune(digcl_context *ctx) {
    const digcl_device_info *device = digcl_context_device(ctx);
    printf("CLBlast parameter search on %s (%s); shapes:\n", device->name, device->platform_name);
    for (int s = 0; s < SHAPES; s++) printf("  [%d] %s\n", s, tune_shapes[s].label);
    printf(
        "first row: the parameters in force (digcl's table; CLBlast's own with DIGCL_GEMM_TUNING=0)\n");
    tune_buffers b = buffers_create(ctx);
    double baseline = 0, best = INFINITY, total = 0;
    const char *best_name = "-";
    for (size_t i = 0; i < sizeof tune_sets / sizeof *tune_sets; i++) {
        if (i == 0)
            printf("%-20s %8s %8s %8s %8s %8s %8s %8s %9s\n", "set", "[0]", "[1]", "[2]", "[3]",
                   "[4]", "[5]", "[6]", "total ms");
        if (!tune_row(ctx, &tune_sets[i], &b, &total)) continue;
        if (i == 0) baseline = total;
        if (total < best) best = total, best_name = tune_sets[i].name;
    }
    printf("best: %s, %.4f ms against %.4f ms (%.1f%% less)\n", best_name, best, baseline,
           baseline > 0 ? 100.0 * (1.0 - best / baseline) : 0.0);
    buffers_release(&b);
    return 0;
}
