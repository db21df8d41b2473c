/* apps/bench.h: shared timing and reporting for `digcl bench`.
 *
 * A case is timed by running it `warmup` times, then `repeats` times with a
 * digcl_finish after each, and taking the median wall-clock time. Reports go to
 * stdout as one aligned table row per case.
 */
#ifndef DIGCL_APPS_BENCH_H
#define DIGCL_APPS_BENCH_H

#include "digcl/runtime.h"

typedef void (*bench_fn)(digcl_context *ctx, void *arg);

/* x[i] = scale * u, u uniform in [-0.5, 0.5) from digcl_rng: inputs for
 * timing and self-checks (never all zero). */
void bench_fill_uniform(float *x, size_t n, unsigned seed, float scale);

/* Median milliseconds of fn over `repeats` runs after `warmup` runs. */
double bench_time_ms(digcl_context *ctx, bench_fn fn, void *arg, int warmup, int repeats);

/* Measured device copy bandwidth in GB/s (bytes read + bytes written), on a
 * buffer of `bytes` bytes (about 256 MiB on a GPU). */
double bench_copy_bandwidth(digcl_context *ctx, size_t bytes);

/* Prints the table header once, then rows:
 *   kernel, shape, ms, GB/s (bytes/ms), GFLOP/s (flops/ms), % of copy bandwidth.
 * bytes or flops may be 0 (column left blank). */
void bench_print_header(double copy_gbps);
void bench_print_row(const char *kernel, const char *shape, double ms, double bytes, double flops,
                     double copy_gbps);

/* `digcl bench report` collects rows: while a cJSON array is set (NULL: off),
 * bench_print_row appends {"name","shape","ms","gb_per_s","gflop_per_s"} and
 * bench_record_model {"model","phase","batch","resolution","ms","images_per_s",
 * "peak_memory_bytes"} (bench model's rows) to it. */
struct cJSON;
void bench_record_to(struct cJSON *rows);
void bench_record_model(const char *phase, const char *model, int batch, int resolution, double ms,
                        double peak_bytes);

/* {name, platform, platform_version, driver, opencl_c, global_memory_bytes,
 * compute_units} of the context's device (bench sweep and report JSON). */
struct cJSON *bench_device_json(digcl_context *ctx);
/* root printed to path atomically; 0, or 1 after "digcl <command>: --json PATH: why". */
int bench_write_json(const char *command, const char *path, const struct cJSON *root);

/* Subcommand entry points: argc/argv start after "bench <what>". */
int bench_gemm_main(digcl_context *ctx, int argc, char **argv);
int bench_ops_main(digcl_context *ctx, int argc, char **argv);
int bench_gla_main(digcl_context *ctx, int argc, char **argv);
int bench_model_main(digcl_context *ctx, int argc, char **argv);
int bench_vae_main(digcl_context *ctx, int argc, char **argv);
int bench_data_main(digcl_context *ctx, int argc, char **argv);   /* apps/bench_data.c */
int bench_sample_main(digcl_context *ctx, int argc, char **argv); /* apps/bench_sample.c */
int bench_sweep_main(digcl_context *ctx, int argc, char **argv);  /* apps/bench_sweep.c */
int bench_report_main(digcl_context *ctx, int argc, char **argv); /* apps/bench_report.c */

/* `digcl bench gemm --tune` (apps/bench_gemm_tune.c): CLBlast parameter sets
 * tried on the DiG-S/2 GEMM shapes, one row of timings per set. */
int bench_gemm_tune(digcl_context *ctx);

/* Families of `digcl bench ops`, each in its own apps/bench_ops_<family>.c.
 * Each times its kernels at DiG-S/2 training shapes (N=32, T=256, D=384) and at
 * high resolution (N=1, T=12544) and prints rows with bench_print_row. */
void bench_ops_dense(digcl_context *ctx,
                     double copy_gbps); /* linear, norms, activations, adaLN, losses, AdamW, EMA */
void bench_ops_spatial(digcl_context *ctx,
                       double copy_gbps); /* patchify, embeddings, dwconv, SREM, attention */

#endif
