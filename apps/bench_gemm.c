/* `digcl bench gemm`: checks one CLBlast SGEMM against the C reference, then
 * repeats an N×N×N SGEMM for about --seconds and prints GFLOP/s. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "digcl/gemm.h"
#include "digcl/ref/gemm.h"
#include "digcl/runtime.h"

/* A small odd-shaped GEMM with transposes and offsets against the reference. */
static double self_check(digcl_context *ctx) {
    enum { M = 67, N = 45, K = 33 };
    float *a = malloc(sizeof(float) * K * M), *b = malloc(sizeof(float) * N * K);
    float *c = malloc(sizeof(float) * M * N), *expected = malloc(sizeof(float) * M * N);
    if (!a || !b || !c || !expected) digcl_fatal("out of host memory");
    bench_fill_uniform(a, (size_t)K * M, 1, 1.0f);
    bench_fill_uniform(b, (size_t)N * K, 2, 1.0f);
    bench_fill_uniform(expected, (size_t)M * N, 3, 1.0f);
    memcpy(c, expected, sizeof(float) * M * N);
    digcl_buffer da = digcl_buffer_create(ctx, sizeof(float) * K * M, "self-check A");
    digcl_buffer db = digcl_buffer_create(ctx, sizeof(float) * N * K, "self-check B");
    digcl_buffer dc = digcl_buffer_create(ctx, sizeof(float) * M * N, "self-check C");
    digcl_write(ctx, da.mem, 0, sizeof(float) * K * M, a);
    digcl_write(ctx, db.mem, 0, sizeof(float) * N * K, b);
    digcl_write(ctx, dc.mem, 0, sizeof(float) * M * N, c);
    /* A^T: A stored [K, M]; B^T: B stored [N, K] */
    digcl_gemm_args args = {.transpose_a = 1,
                            .transpose_b = 1,
                            .M = M,
                            .N = N,
                            .K = K,
                            .alpha = 0.75f,
                            .beta = 0.5f,
                            .A = da.mem,
                            .lda = M,
                            .B = db.mem,
                            .ldb = K,
                            .C = dc.mem,
                            .ldc = N};
    digcl_gemm(ctx, &args);
    digcl_read(ctx, dc.mem, 0, sizeof(float) * M * N, c);
    digcl_ref_gemm(1, 1, M, N, K, 0.75f, a, 0, M, b, 0, K, 0.5f, expected, 0, N);
    double diff = 0, norm = 0;
    for (int i = 0; i < M * N; i++) {
        diff += ((double)c[i] - expected[i]) * ((double)c[i] - expected[i]);
        norm += (double)expected[i] * expected[i];
    }
    digcl_buffer_release(&da);
    digcl_buffer_release(&db);
    digcl_buffer_release(&dc);
    free(a), free(b), free(c), free(expected);
    return isfinite(diff) ? sqrt(diff / norm) : INFINITY;
}

typedef struct shape_case {
    digcl_gemm_args args;
    size_t slices;
} shape_case;

static void run_shape(digcl_context *ctx, void *arg) {
    shape_case *c = arg;
    digcl_gemm_split_k(ctx, &c->args, c->slices);
}

typedef struct gemm_shape {
    size_t M, N, K;
    int ta, tb;
} gemm_shape;

/* --shape M,N,K,ta,tb: five comma-separated integers, M, N, K in [1, 65536]
 * and the transposes 0 or 1; anything else exits 2 naming the field. */
static int parse_shape(const char *spec, gemm_shape *shape) {
    static const char *const fields[5] = {"M", "N", "K", "transpose_a", "transpose_b"};
    long values[5];
    const char *p = spec;
    for (int i = 0; i < 5; i++) {
        char *end = NULL;
        errno = 0;
        values[i] = isdigit((unsigned char)*p) ? strtol(p, &end, 10) : -1;
        long max = i < 3 ? 65536 : 1, min = i < 3 ? 1 : 0;
        int separator_ok = end && (i < 4 ? *end == ',' : *end == '\0');
        if (!end || errno || values[i] < min || values[i] > max || !separator_ok) {
            fprintf(
                stderr,
                "digcl bench gemm: --shape expects M,N,K,transpose_a,transpose_b (M, N, K integers in "
                "[1, 65536], transposes 0 or 1); field %s of '%s' is not valid\n",
                fields[i], spec);
            return 2;
        }
        p = end + 1;
    }
    *shape = (gemm_shape){(size_t)values[0], (size_t)values[1], (size_t)values[2], (int)values[3],
                          (int)values[4]};
    return 0;
}

/* The plain GEMM of `shape` against split-K with 2..16 slices and the
 * automatic choice, on random operands. */
static int bench_shape(digcl_context *ctx, const gemm_shape *shape) {
    size_t M = shape->M, N = shape->N, K = shape->K;
    int ta = shape->ta, tb = shape->tb;
    size_t a_count = (size_t)M * K, b_count = (size_t)K * N, c_count = (size_t)M * N;
    float *host = malloc((a_count > b_count ? a_count : b_count) * sizeof *host);
    if (!host) digcl_fatal("out of host memory");
    digcl_buffer a = digcl_buffer_create(ctx, a_count * 4, "bench A"),
                 b = digcl_buffer_create(ctx, b_count * 4, "bench B");
    digcl_buffer c = digcl_buffer_create(ctx, c_count * 4, "bench C");
    bench_fill_uniform(host, a_count, 6, 1.0f);
    digcl_write(ctx, a.mem, 0, a_count * 4, host);
    bench_fill_uniform(host, b_count, 7, 1.0f);
    digcl_write(ctx, b.mem, 0, b_count * 4, host);
    free(host);
    shape_case sc = {.args = {.transpose_a = ta,
                              .transpose_b = tb,
                              .M = M,
                              .N = N,
                              .K = K,
                              .alpha = 1.0f,
                              .beta = 0.0f,
                              .A = a.mem,
                              .lda = ta ? M : K,
                              .B = b.mem,
                              .ldb = tb ? K : N,
                              .C = c.mem,
                              .ldc = N},
                     .slices = 1};
    size_t automatic = digcl_gemm_auto_slices(ctx, &sc.args);
    const size_t choices[] = {1, 2, 4, 8, 16};
    for (size_t i = 0; i < sizeof choices / sizeof *choices; i++) {
        sc.slices = choices[i];
        double ms = bench_time_ms(ctx, run_shape, &sc, 3, 20);
        printf("SGEMM %zux%zux%zu t%d%d split-K %2zu%s: %8.4f ms %9.1f GFLOP/s\n", M, N, K, ta, tb,
               choices[i], choices[i] == automatic ? " (auto)" : "       ", ms,
               2.0 * M * N * K / (ms * 1e6));
    }
    digcl_buffer_release(&a), digcl_buffer_release(&b), digcl_buffer_release(&c);
    return 0;
}

int bench_gemm_main(digcl_context *ctx, int argc, char **argv) {
    long size = 1024;
    double seconds = 1.0;
    const char *shape_spec = NULL;
    gemm_shape shape = {0, 0, 0, 0, 0};
    int tune = 0;
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (strcmp(argv[i], "--tune") == 0) tune = 1;
        else if (cli_option_value(argc, argv, &i, "--shape", &value)) shape_spec = value;
        else if (cli_option_value(argc, argv, &i, "--size", &value))
            size = cli_parse_long("--size", value, 1, 32768);
        else if (cli_option_value(argc, argv, &i, "--seconds", &value))
            seconds = cli_parse_double("--seconds", value, 0.01, 600);
        else cli_unknown_argument("bench gemm", argv[i]);
    }
    if (shape_spec && parse_shape(shape_spec, &shape) != 0) return 2;
    const digcl_device_info *device = digcl_context_device(ctx);
    printf("device: %s (%s)\n", device->name, device->platform_name);
    printf("GEMM path: %s\n", digcl_gemm_backend_name(ctx));
    /* one TF32 product per term (--precision tf32 on tensor cores) is allowed 2e-3 */
    const double tolerance = digcl_gemm_uses_tf32(ctx) ? 2e-3 : 1e-5;
    double error = self_check(ctx);
    printf("GEMM self-check (67x45x33, A^T B^T, alpha 0.75, beta 0.5): rel L2 error %.2e %s\n",
           error, error < tolerance ? "ok" : "FAILED");
    if (!(error < tolerance)) return 1;
    if (tune) return bench_gemm_tune(ctx);
    if (shape_spec) return bench_shape(ctx, &shape);

    size_t n = (size_t)size, bytes = n * n * sizeof(float);
    float *host = malloc(bytes);
    if (!host) digcl_fatal("out of host memory");
    digcl_buffer a = digcl_buffer_create(ctx, bytes, "bench A"),
                 b = digcl_buffer_create(ctx, bytes, "bench B");
    digcl_buffer c = digcl_buffer_create(ctx, bytes, "bench C");
    bench_fill_uniform(host, n * n, 4, 1.0f);
    digcl_write(ctx, a.mem, 0, bytes, host);
    bench_fill_uniform(host, n * n, 5, 1.0f);
    digcl_write(ctx, b.mem, 0, bytes, host);
    free(host);
    digcl_gemm_args args = {.M = n,
                            .N = n,
                            .K = n,
                            .alpha = 1.0f,
                            .beta = 0.0f,
                            .A = a.mem,
                            .lda = n,
                            .B = b.mem,
                            .ldb = n,
                            .C = c.mem,
                            .ldc = n};
    digcl_gemm(ctx, &args); /* warm-up: CLBlast compiles its kernels here */
    digcl_finish(ctx);
    long runs = 0;
    double start = digcl_seconds_now(), elapsed = 0;
    while (elapsed < seconds) {
        digcl_gemm(ctx, &args);
        digcl_finish(ctx);
        runs++;
        elapsed = digcl_seconds_now() - start;
    }
    double gflops = 2.0 * (double)n * n * n * runs / elapsed * 1e-9;
    printf("SGEMM %zux%zux%zu: %ld runs in %.2f s, %.2f ms each, %.1f GFLOP/s\n", n, n, n, runs,
           elapsed, 1e3 * elapsed / runs, gflops);
    digcl_buffer_release(&a);
    digcl_buffer_release(&b);
    digcl_buffer_release(&c);
    size_t copy_bytes =
        (device->type & CL_DEVICE_TYPE_CPU) ? ((size_t)32 << 20) : ((size_t)512 << 20);
    printf("copy bandwidth (float4 kernel, %zu MiB): %.1f GB/s (read + write)\n", copy_bytes >> 20,
           bench_copy_bandwidth(ctx, copy_bytes));
    return 0;
}
