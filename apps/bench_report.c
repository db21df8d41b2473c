/* `digcl bench report`: one fixed set of timings in one versioned JSON
 * (docs/PERFORMANCE.md "bench report"), so that cards and vendors compare line by
 * line. The set, at the two report resolutions (256 and 1024 px):
 *   copy       float4 copy bandwidth (bench_copy_bandwidth)
 *   gemm       SGEMM 1024^3 and the DiT-S/2 qkv projection at batch 32, 256 px
 *              (8192 x 1152 x 384)
 *   gla        `bench gla --heads 6 --max-t T` with T the tokens of the larger resolution
 *   attention  the DiT-S/2 attention (H 6, dh 64) forward and fwd+bwd at each resolution
 *   models     DiG-S/2 and DiT-S/2 forward, fwd+bwd and step (`bench model`): batch 32
 *              at 256 px, batch 1 at 1024 px
 * --quick: one repeat after one warm-up (the CPU is slow); the JSON says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "cli.h"
#include "digcl/attention.h"
#include "digcl/gemm.h"

#define REPORT_SCHEMA      "digcl-bench-report/1"
#define REPORT_RESOLUTIONS 2

typedef struct report_options {
    const char *json;
    int quick, repeats, warmup;
    int resolutions[REPORT_RESOLUTIONS]; /* 256, 1024; --resolutions A,B for smoke tests */
} report_options;

static void usage_report(void) {
    printf("usage: digcl bench report [--json FILE] [--quick]\n"
           "A fixed set: copy bandwidth, SGEMM, GLA, attention, DiG-S/2 and DiT-S/2 forward,\n"
           "fwd+bwd and step at 256 px (batch 32) and 1024 px (batch 1), written as one JSON\n"
           "(schema " REPORT_SCHEMA ", docs/PERFORMANCE.md). --quick: 1 repeat after 1\n"
           "warm-up instead of 10 after 3. --resolutions A,B replaces 256,1024 (smoke tests:\n"
           "such a report is not comparable with others; the JSON records the resolutions).\n");
}

static void parse_resolutions(report_options *o, const char *value) {
    int a = 0, b = 0, used = 0;
    if (sscanf(value, "%d,%d%n", &a, &b, &used) != 2 || value[used] != '\0' || a < 16 || b < 16 ||
        a % 16 != 0 || b % 16 != 0) {
        fprintf(stderr,
                "digcl bench report: --resolutions expects two multiples of 16 (A,B), got '%s'\n",
                value);
        exit(2);
    }
    o->resolutions[0] = a, o->resolutions[1] = b;
}

static void parse_options(int argc, char **argv, report_options *o) {
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (cli_is_help(argv[i])) {
            usage_report();
            exit(0);
        } else if (strcmp(argv[i], "--quick") == 0) o->quick = 1;
        else if (cli_option_value(argc, argv, &i, "--json", &value)) o->json = value;
        else if (cli_option_value(argc, argv, &i, "--resolutions", &value))
            parse_resolutions(o, value);
        else cli_unknown_argument("bench report", argv[i]);
    }
    if (o->json && cli_check_output("bench report", "--json", o->json, NULL, NULL, 0) != 0) exit(2);
    o->repeats = o->quick ? 1 : 10, o->warmup = o->quick ? 1 : 3;
}

/* ---------------------------------------------------------------- kernels */

static digcl_buffer filled(digcl_context *ctx, size_t count, unsigned seed, const char *what) {
    float *host = malloc(count * sizeof *host);
    if (!host) digcl_fatal("out of host memory");
    bench_fill_uniform(host, count, seed, 1.0f);
    digcl_buffer buffer = digcl_buffer_create(ctx, count * sizeof *host, what);
    digcl_write(ctx, buffer.mem, 0, count * sizeof *host, host);
    free(host);
    return buffer;
}

static void run_gemm(digcl_context *ctx, void *arg) { digcl_gemm(ctx, arg); }

static void report_gemm(digcl_context *ctx, const report_options *o, size_t M, size_t N, size_t K,
                        double copy_gbps) {
    digcl_buffer a = filled(ctx, M * K, 1, "report gemm A"); /* [M, K] */
    digcl_buffer b = filled(ctx, K * N, 2, "report gemm B"); /* [K, N] */
    digcl_buffer c = filled(ctx, M * N, 3, "report gemm C"); /* [M, N] */
    digcl_gemm_args args = {0, 0, M, N, K, 1.0f, 0.0f, a.mem, 0, K, b.mem, 0, N, c.mem, 0, N};
    double ms = bench_time_ms(ctx, run_gemm, &args, o->warmup, o->repeats);
    char shape[64];
    snprintf(shape, sizeof shape, "%zux%zux%zu", M, N, K);
    bench_print_row("sgemm", shape, ms, 4.0 * (double)(M * K + K * N + M * N), 2.0 * M * N * K,
                    copy_gbps);
    digcl_buffer_release(&a), digcl_buffer_release(&b), digcl_buffer_release(&c);
}

typedef struct attention_case {
    digcl_attention_shape shape;
    digcl_buffer qkv, out, lse, dout, dqkv, workspace;
} attention_case;

static void run_attention_forward(digcl_context *ctx, void *arg) {
    attention_case *a = arg;
    digcl_attention_forward(ctx, &a->shape, a->qkv.mem, a->out.mem, a->lse.mem);
}

static void run_attention_backward(digcl_context *ctx, void *arg) {
    attention_case *a = arg;
    run_attention_forward(ctx, arg);
    digcl_attention_backward(ctx, &a->shape, a->qkv.mem, a->out.mem, a->lse.mem, a->dout.mem,
                             a->dqkv.mem, a->workspace.mem);
}

/* DiT-S/2 attention (H 6, dh 64) at `batch` images of `px` pixels: T = (px/16)^2. */
static void report_attention(digcl_context *ctx, const report_options *o, int batch, int px,
                             double copy_gbps) {
    int side = px / 16;
    attention_case a = {0};
    a.shape = (digcl_attention_shape){batch, side * side, 6, 64};
    size_t rows = (size_t)batch * a.shape.T, D = 6 * 64;
    a.qkv = filled(ctx, rows * 3 * D, 4, "report qkv");                  /* [N, T, 3, H, dh] */
    a.out = filled(ctx, rows * D, 5, "report attention out");            /* [N, T, H, dh] */
    a.lse = filled(ctx, (size_t)batch * 6 * a.shape.T, 6, "report lse"); /* [N, H, T] */
    a.dout = filled(ctx, rows * D, 7, "report attention dout");          /* [N, T, H, dh] */
    a.dqkv = filled(ctx, rows * 3 * D, 8, "report dqkv");                /* [N, T, 3, H, dh] */
    a.workspace = digcl_buffer_create(ctx, digcl_attention_backward_workspace_bytes(&a.shape),
                                      "report attention workspace");
    double flops = 4.0 * batch * 6 * (double)a.shape.T * a.shape.T * 64;
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d T=%d H=6 dh=64", batch, a.shape.T);
    bench_print_row("attention forward", shape,
                    bench_time_ms(ctx, run_attention_forward, &a, o->warmup, o->repeats),
                    4.0 * rows * 4 * D, flops, copy_gbps);
    bench_print_row("attention fwd+bwd", shape,
                    bench_time_ms(ctx, run_attention_backward, &a, o->warmup, o->repeats),
                    4.0 * rows * 12 * D, 3.5 * flops, copy_gbps);
    digcl_buffer *all[] = {&a.qkv, &a.out, &a.lse, &a.dout, &a.dqkv, &a.workspace};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) digcl_buffer_release(all[i]);
}

/* ---------------------------------------------------------------- models */

static void report_model(digcl_context *ctx, const report_options *o, const char *model, int px,
                         int batch) {
    char size[16], batch_text[16], repeats[16], warmup[16];
    snprintf(size, sizeof size, "%d", px);
    snprintf(batch_text, sizeof batch_text, "%d", batch);
    snprintf(repeats, sizeof repeats, "%d", o->repeats);
    snprintf(warmup, sizeof warmup, "%d", o->warmup);
    char *argv[] = {"--model",  (char *)model, "--image-size", size,       "--batch",
                    batch_text, "--repeats",   repeats,        "--warmup", warmup};
    digcl_memory_reset_peak(ctx); /* the rows' peak: this model's */
    if (bench_model_main(ctx, 10, argv) != 0)
        digcl_fatal("bench report: %s at %d px failed", model, px);
}

/* ---------------------------------------------------------------- JSON */

static cJSON *report_header(digcl_context *ctx, const report_options *o) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", REPORT_SCHEMA);
    cJSON_AddStringToObject(root, "digcl_version", DIGCL_VERSION);
    cJSON_AddStringToObject(root, "gemm_backend", digcl_gemm_backend_name(ctx));
    char date[32];
    time_t now = time(NULL);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    cJSON_AddStringToObject(root, "date", date);
    cJSON_AddBoolToObject(root, "quick", o->quick);
    cJSON_AddNumberToObject(root, "repeats", o->repeats);
    cJSON_AddNumberToObject(root, "warmup", o->warmup);
    cJSON_AddItemToObject(root, "resolutions", cJSON_CreateIntArray(o->resolutions, 2));
    cJSON_AddItemToObject(root, "device", bench_device_json(ctx));
    return root;
}

int bench_report_main(digcl_context *ctx, int argc, char **argv) {
    report_options o = {.resolutions = {256, 1024}};
    parse_options(argc, argv, &o);
    cJSON *root = report_header(ctx, &o);
    const digcl_device_info *device = digcl_context_device(ctx);
    size_t copy_bytes =
        (device->type & CL_DEVICE_TYPE_CPU) ? ((size_t)32 << 20) : ((size_t)256 << 20);
    double copy_gbps = bench_copy_bandwidth(ctx, copy_bytes);
    cJSON_AddNumberToObject(root, "copy_gb_per_s", copy_gbps);
    bench_print_header(copy_gbps);
    bench_record_to(cJSON_AddArrayToObject(root, "kernels"));
    report_gemm(ctx, &o, 1024, 1024, 1024, copy_gbps);
    report_gemm(ctx, &o, 8192, 1152, 384, copy_gbps);
    const int batches[REPORT_RESOLUTIONS] = {32, 1};
    for (int r = 0; r < REPORT_RESOLUTIONS; r++)
        report_attention(ctx, &o, batches[r], o.resolutions[r], copy_gbps);
    char max_t[16];
    snprintf(max_t, sizeof max_t, "%d", (o.resolutions[1] / 16) * (o.resolutions[1] / 16));
    char *gla_argv[] = {"--heads", "6", "--max-t", max_t};
    bench_gla_main(ctx, 4, gla_argv);
    bench_record_to(cJSON_AddArrayToObject(root, "models"));
    const char *models[] = {"DiG-S/2", "DiT-S/2"};
    for (int m = 0; m < 2; m++)
        for (int r = 0; r < REPORT_RESOLUTIONS; r++)
            report_model(ctx, &o, models[m], o.resolutions[r], batches[r]);
    bench_record_to(NULL);
    int status = o.json ? bench_write_json("bench report", o.json, root) : 0;
    cJSON_Delete(root);
    return status;
}
