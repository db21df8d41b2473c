/* `digcl bench gla`: chunkwise gated linear attention, forward and
 * forward+backward, at K = 32, V = 64 (DiG heads), N*H in {6, 192} and
 * T in {256, 1024, 4096, 16384}, token-major [N, T, H, D] layout.
 *
 * GFLOP/s use the FLOP model of docs/GLA.md §5 per (n, h): forward
 * 4TKV + TC(K+V); backward 10TKV + 2TC(K+V) + TCK. GB/s use the minimum
 * bytes: forward reads q, k, g, v and writes o; the backward reads q, k, g,
 * v, do and writes dq, dk, dg, dv. Reference (fla chunk_gla on an H200, fp32,
 * N*H = 6, docs/GPU_ANCHORS.md C): fwd 0.41/0.38/0.42/0.65 ms and fwd+bwd
 * 1.38/1.79/1.74/2.82 ms at T = 256/1024/4096/16384.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "digcl/gla.h"

enum { BENCH_K = 32, BENCH_V = 64 };

typedef struct gla_bench {
    digcl_gla_shape shape;
    cl_mem q, k, v, g, o, do_, dq, dk, dv, dg, workspace;
    int reuse; /* fwd+bwd with DIGCL_GLA_REUSE_STATES */
} gla_bench;

static void run_forward(digcl_context *ctx, void *arg) {
    gla_bench *b = arg;
    digcl_gla_forward(ctx, &b->shape, b->q, b->k, b->v, b->g, NULL, b->o, NULL, b->workspace, 0);
}

static void run_forward_backward(digcl_context *ctx, void *arg) {
    gla_bench *b = arg;
    run_forward(ctx, arg);
    digcl_gla_backward(ctx, &b->shape, b->q, b->k, b->v, b->g, NULL, b->do_, NULL, b->dq, b->dk,
                       b->dv, b->dg, NULL, b->workspace, 0, b->reuse ? DIGCL_GLA_REUSE_STATES : 0);
}

static cl_mem filled(digcl_context *ctx, size_t count, float value, const char *what) {
    digcl_buffer buffer = digcl_buffer_create(ctx, count * sizeof(float), what);
    digcl_fill_f32(ctx, buffer.mem, 0, count, value);
    return buffer.mem;
}

static void release(digcl_context *ctx, cl_mem mem) {
    digcl_buffer buffer = {mem, 0, ctx, "gla bench"};
    digcl_buffer_release(&buffer);
}

/* Per (n, h) FLOPs of docs/GLA.md §5. */
static double forward_flops(double T, double C) {
    return 4 * T * BENCH_K * BENCH_V + T * C * (BENCH_K + BENCH_V);
}

static double backward_flops(double T, double C) {
    return 10 * T * BENCH_K * BENCH_V + 2 * T * C * (BENCH_K + BENCH_V) + T * C * BENCH_K;
}

static void bench_case(digcl_context *ctx, int N, int H, int T, int chunk, double copy_gbps) {
    gla_bench b;
    memset(&b, 0, sizeof b);
    b.shape = digcl_gla_shape_token_major(N, T, H, BENCH_K, BENCH_V, chunk);
    size_t qk = digcl_gla_span(&b.shape, &b.shape.q, BENCH_K);
    size_t value = digcl_gla_span(&b.shape, &b.shape.v, BENCH_V);
    /* constant inputs: timing does not depend on values; g = -0.05 per step */
    b.q = filled(ctx, qk, 0.5f, "gla q"), b.k = filled(ctx, qk, 0.25f, "gla k");
    b.g = filled(ctx, qk, -0.05f, "gla g"), b.dq = filled(ctx, qk, 0, "gla dq");
    b.dk = filled(ctx, qk, 0, "gla dk"), b.dg = filled(ctx, qk, 0, "gla dg");
    b.v = filled(ctx, value, 1.0f, "gla v"), b.o = filled(ctx, value, 0, "gla o");
    b.do_ = filled(ctx, value, 0.1f, "gla do"), b.dv = filled(ctx, value, 0, "gla dv");
    size_t workspace = digcl_gla_backward_workspace_bytes(&b.shape);
    b.workspace = filled(ctx, workspace / sizeof(float), 0, "gla workspace");
    double heads = (double)N * H, C = chunk, tokens = (double)T * heads;
    double forward_bytes = 4.0 * tokens * (3 * BENCH_K + 2 * BENCH_V);
    double backward_bytes = 4.0 * tokens * (6 * BENCH_K + 3 * BENCH_V);
    int repeats = T * heads > 1e6 ? 10 : 30;
    char shape[64], label[64];
    snprintf(shape, sizeof shape, "NH=%d T=%d K=%d V=%d", N * H, T, BENCH_K, BENCH_V);
    snprintf(label, sizeof label, "gla forward C=%d", chunk);
    double ms = bench_time_ms(ctx, run_forward, &b, 3, repeats);
    bench_print_row(label, shape, ms, forward_bytes, heads * forward_flops(T, C), copy_gbps);
    for (b.reuse = 0; b.reuse <= 1; b.reuse++) {
        snprintf(label, sizeof label, "gla fwd+bwd C=%d%s", chunk, b.reuse ? " reuse" : "");
        ms = bench_time_ms(ctx, run_forward_backward, &b, 3, repeats);
        bench_print_row(label, shape, ms, forward_bytes + backward_bytes,
                        heads * (forward_flops(T, C) + backward_flops(T, C)), copy_gbps);
    }
    cl_mem all[] = {b.q, b.k, b.v, b.g, b.o, b.do_, b.dq, b.dk, b.dv, b.dg, b.workspace};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) release(ctx, all[i]);
}

int bench_gla_main(digcl_context *ctx, int argc, char **argv) {
    long chunk = 0, max_t = 16384, only_heads = 0;
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (cli_option_value(argc, argv, &i, "--chunk", &value))
            chunk = cli_parse_long("--chunk", value, 0, 64);
        else if (cli_option_value(argc, argv, &i, "--max-t", &value))
            max_t = cli_parse_long("--max-t", value, 1, 1 << 20);
        else if (cli_option_value(argc, argv, &i, "--heads", &value))
            only_heads = cli_parse_long("--heads", value, 6, 192);
        else
            cli_unknown_argument(
                "bench gla (options: --chunk 0|16|32|64, --max-t T, --heads 6|192)", argv[i]);
    }
    const digcl_device_info *device = digcl_context_device(ctx);
    if (chunk == 0) chunk = digcl_gla_default_chunk(device);
    printf("device: %s (%s, driver %s)\n", device->name, device->platform_name,
           device->driver_version);
    size_t copy_bytes =
        (device->type & CL_DEVICE_TYPE_CPU) ? ((size_t)32 << 20) : ((size_t)256 << 20);
    double copy_gbps = bench_copy_bandwidth(ctx, copy_bytes);
    bench_print_header(copy_gbps);
    const int heads[] = {6, 192}, lengths[] = {256, 1024, 4096, 16384};
    for (int h = 0; h < 2; h++) {
        if (only_heads && heads[h] != only_heads) continue;
        for (int t = 0; t < 4; t++)
            if (lengths[t] <= max_t) /* N*H = 6: N = 1, H = 6; N*H = 192: N = 32, H = 6 */
                bench_case(ctx, heads[h] / 6, 6, lengths[t], (int)chunk, copy_gbps);
    }
    return 0;
}
