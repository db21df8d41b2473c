/* Timing and table printing shared by the bench_*.c files. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "digcl/rng.h"
#include "digcl/safetensors.h"
#include "digcl/runtime.h"

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void bench_fill_uniform(float *x, size_t n, unsigned seed, float scale) {
    const digcl_rng_key key = {seed, DIGCL_RNG_TEST};
    for (size_t i = 0; i < n; i++) x[i] = scale * (digcl_rng_uniform(key, 0, 0, i) - 0.5f);
}

double bench_time_ms(digcl_context *ctx, bench_fn fn, void *arg, int warmup, int repeats) {
    for (int i = 0; i < warmup; i++) fn(ctx, arg);
    digcl_finish(ctx);
    if (repeats < 1) repeats = 1;
    double *times = malloc((size_t)repeats * sizeof *times);
    if (!times) digcl_fatal("out of host memory in bench");
    for (int i = 0; i < repeats; i++) {
        double start = (1e3 * digcl_seconds_now());
        fn(ctx, arg);
        digcl_finish(ctx);
        times[i] = (1e3 * digcl_seconds_now()) - start;
    }
    qsort(times, (size_t)repeats, sizeof *times, compare_double);
    double median = times[repeats / 2];
    free(times);
    return median;
}

typedef struct copy_case {
    cl_kernel kernel;
    size_t count4;
} copy_case;

/* A float4 copy kernel of our own (cl/util.cl), the yardstick for every
 * memory-bound kernel: it moves bytes the way our kernels do. */
static void run_copy(digcl_context *ctx, void *arg) {
    copy_case *c = arg;
    size_t global = c->count4, local = 256;
    digcl_launch(ctx, c->kernel, "copy_float4", 1, &global, &local);
}

double bench_copy_bandwidth(digcl_context *ctx, size_t bytes) {
    const digcl_device_info *device = digcl_context_device(ctx);
    if (bytes > device->max_alloc_bytes / 2) bytes = (size_t)(device->max_alloc_bytes / 2);
    digcl_buffer src = digcl_buffer_create(ctx, bytes, "bandwidth source");
    digcl_buffer dst = digcl_buffer_create(ctx, bytes, "bandwidth destination");
    bytes = bytes / 16 * 16;
    digcl_fill_f32(ctx, src.mem, 0, bytes / sizeof(float), 1.5f);
    copy_case c = {digcl_kernel(ctx, "util", "copy_float4", ""), bytes / 16};
    digcl_arg_mem(c.kernel, 0, src.mem);
    digcl_arg_mem(c.kernel, 1, dst.mem);
    digcl_arg_int(c.kernel, 2, (int)c.count4);
    double ms = bench_time_ms(ctx, run_copy, &c, 3, 15);
    digcl_buffer_release(&src);
    digcl_buffer_release(&dst);
    return 2.0 * (double)bytes / (ms * 1e6);
}

static cJSON *recorded_rows; /* bench_record_to */

void bench_record_to(cJSON *rows) { recorded_rows = rows; }

static void record_kernel_row(const char *kernel, const char *shape, double ms, double bytes,
                              double flops) {
    if (!recorded_rows) return;
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "name", kernel);
    cJSON_AddStringToObject(row, "shape", shape);
    cJSON_AddNumberToObject(row, "ms", ms);
    if (bytes > 0) cJSON_AddNumberToObject(row, "gb_per_s", bytes / (ms * 1e6));
    if (flops > 0) cJSON_AddNumberToObject(row, "gflop_per_s", flops / (ms * 1e6));
    cJSON_AddItemToArray(recorded_rows, row);
}

void bench_record_model(const char *phase, const char *model, int batch, int resolution, double ms,
                        double peak_bytes) {
    if (!recorded_rows) return;
    cJSON *row = cJSON_CreateObject();
    cJSON_AddStringToObject(row, "model", model);
    cJSON_AddStringToObject(row, "phase", phase);
    cJSON_AddNumberToObject(row, "batch", batch);
    cJSON_AddNumberToObject(row, "resolution", resolution);
    cJSON_AddNumberToObject(row, "ms", ms);
    cJSON_AddNumberToObject(row, "images_per_s", 1000.0 * batch / ms);
    cJSON_AddNumberToObject(row, "peak_memory_bytes", peak_bytes);
    cJSON_AddItemToArray(recorded_rows, row);
}

void bench_print_header(double copy_gbps) {
    printf("device copy bandwidth: %.1f GB/s (read + write)\n", copy_gbps);
    printf("%-34s %-28s %10s %9s %10s %7s\n", "kernel", "shape", "ms", "GB/s", "GFLOP/s", "%copy");
}

void bench_print_row(const char *kernel, const char *shape, double ms, double bytes, double flops,
                     double copy_gbps) {
    char gbps[32] = "", gflops[32] = "", percent[32] = "";
    if (bytes > 0) {
        double rate = bytes / (ms * 1e6);
        snprintf(gbps, sizeof gbps, "%.1f", rate);
        if (copy_gbps > 0) snprintf(percent, sizeof percent, "%.0f%%", 100.0 * rate / copy_gbps);
    }
    if (flops > 0) snprintf(gflops, sizeof gflops, "%.1f", flops / (ms * 1e6));
    printf("%-34s %-28s %10.4f %9s %10s %7s\n", kernel, shape, ms, gbps, gflops, percent);
    record_kernel_row(kernel, shape, ms, bytes, flops);
    fflush(stdout);
}

cJSON *bench_device_json(digcl_context *ctx) {
    const digcl_device_info *d = digcl_context_device(ctx);
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "name", d->name);
    cJSON_AddStringToObject(j, "platform", d->platform_name);
    cJSON_AddStringToObject(j, "platform_version", d->platform_version);
    cJSON_AddStringToObject(j, "driver", d->driver_version);
    cJSON_AddStringToObject(j, "opencl_c", d->opencl_c_version);
    cJSON_AddNumberToObject(j, "global_memory_bytes", (double)d->global_mem_bytes);
    cJSON_AddNumberToObject(j, "compute_units", d->compute_units);
    return j;
}

static int write_text(void *file, void *user, digcl_st_error *err) {
    const char *text = user;
    size_t n = strlen(text);
    if (fwrite(text, 1, n, file) == n && fputc('\n', file) != EOF) return 0;
    snprintf(err->message, sizeof err->message, "write failed");
    return -1;
}

int bench_write_json(const char *command, const char *path, const cJSON *root) {
    char *text = cJSON_Print(root);
    if (!text) digcl_fatal("out of host memory");
    digcl_st_error err;
    int status = digcl_st_write_atomic(path, write_text, text, &err);
    free(text);
    if (status == 0) return 0;
    fprintf(stderr, "digcl %s: --json %s: %s\n", command, path, err.message);
    return 1;
}
