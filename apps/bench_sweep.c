/* `digcl bench sweep`: the paper's efficiency figure (DiG against DiT over
 * resolutions, arXiv 2405.18428 Fig. 1): for each model and resolution, batch 1
 * by default, the median ms of forward (inference) and fwd+bwd (training
 * forward + backward of sum(out * dout)), images/s, ln(images/s) and the peak
 * device memory of the phase, then the ratios of the first model against each
 * other one. A cell whose estimated memory (digcl_model_memory_estimate) does
 * not fit the device, or whose batch the model refuses, is an OOM cell and the
 * sweep goes on. Output: a table on stdout, --json FILE, --plot FILE.png (two
 * panels: ln FPS and peak memory against resolution, one line per model and
 * phase). --attention naive runs the DiT models with the materialised
 * [N, H, T, T] attention of the paper's baseline (docs/MODEL.md "DiT attention
 * modes"); DiG models are unaffected. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bench.h"
#include "cli.h"
#include "digcl/model.h"
#include "digcl/plot.h"

#define SWEEP_MAX_MODELS      8
#define SWEEP_MAX_RESOLUTIONS 32
#define SWEEP_WHY             512 /* an OOM cell's reason */

enum { PHASE_FORWARD, PHASE_BACKWARD, PHASE_COUNT };
static const char *const phase_names[PHASE_COUNT] = {"forward", "fwd+bwd"};

typedef struct sweep_cell {
    int oom;             /* 1: did not fit (estimate) or batch refused */
    double ms;           /* median */
    double peak;         /* bytes, device peak during the phase */
    char why[SWEEP_WHY]; /* OOM reason */
} sweep_cell;

typedef struct sweep_options {
    const char *models[SWEEP_MAX_MODELS];
    int model_count;
    int resolutions[SWEEP_MAX_RESOLUTIONS];
    int resolution_count;
    int batch, repeats, phases[PHASE_COUNT];
    long memory_limit_mib;          /* --memory-limit: treat the device as this small (0: off) */
    digcl_attention_mode attention; /* --attention: of the DiT models */
    const char *json, *plot;
    sweep_cell cells[SWEEP_MAX_MODELS][SWEEP_MAX_RESOLUTIONS][PHASE_COUNT];
} sweep_options;

/* ---------------------------------------------------------------- options */

static int split_list(const char *flag, const char *value, char *copy, size_t size, char **items,
                      int max) {
    if (strlen(value) >= size) {
        fprintf(stderr, "digcl bench sweep: %s is too long\n", flag);
        exit(2);
    }
    strcpy(copy, value);
    int n = 0;
    for (char *save = NULL, *item = strtok_r(copy, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        if (n == max) {
            fprintf(stderr, "digcl bench sweep: %s takes at most %d entries\n", flag, max);
            exit(2);
        }
        items[n++] = item;
    }
    if (n == 0) {
        fprintf(stderr, "digcl bench sweep: %s expects a comma-separated list\n", flag);
        exit(2);
    }
    return n;
}

static void parse_models(sweep_options *o, const char *value) {
    static char copy[1024];
    char *items[SWEEP_MAX_MODELS];
    o->model_count = split_list("--models", value, copy, sizeof copy, items, SWEEP_MAX_MODELS);
    for (int i = 0; i < o->model_count; i++) {
        digcl_model_config config;
        digcl_config_error err;
        if (digcl_model_config_preset(items[i], &config, &err) != 0) {
            fprintf(stderr, "digcl bench sweep: --models: %s\n", err.message);
            exit(2);
        }
        o->models[i] = items[i];
    }
}

static void parse_resolutions(sweep_options *o, const char *value) {
    char copy[1024], *items[SWEEP_MAX_RESOLUTIONS];
    o->resolution_count =
        split_list("--resolutions", value, copy, sizeof copy, items, SWEEP_MAX_RESOLUTIONS);
    for (int i = 0; i < o->resolution_count; i++) {
        long px = cli_parse_long("--resolutions", items[i], 8, 65536);
        if (px % 8 != 0) {
            fprintf(stderr, "digcl bench sweep: --resolutions: %ld is not a multiple of 8\n", px);
            exit(2);
        }
        o->resolutions[i] = (int)px;
    }
}

static void parse_only(sweep_options *o, const char *value) {
    o->phases[PHASE_FORWARD] = strcmp(value, "forward") == 0;
    o->phases[PHASE_BACKWARD] = strcmp(value, "fwd+bwd") == 0;
    if (!o->phases[PHASE_FORWARD] && !o->phases[PHASE_BACKWARD]) {
        fprintf(stderr, "digcl bench sweep: --only expects forward or fwd+bwd, got '%s'\n", value);
        exit(2);
    }
}

static void usage_sweep(void) {
    printf("usage: digcl bench sweep [--models A,B,...] [--resolutions 256,512,...] [--batch N]\n"
           "                         [--repeats R] [--only forward|fwd+bwd] [--json FILE]\n"
           "                         [--plot FILE.png] [--memory-limit MIB]\n"
           "                         [--attention tiled|naive]\n"
           "defaults: DiG-S/2,DiT-S/2; 256..2048 step 256; batch 1; 5 repeats; both phases.\n"
           "A cell that does not fit the device memory (the model's estimate against the\n"
           "device, or against --memory-limit MIB to stand for a smaller card), or that the\n"
           "model refuses as too large, is reported as OOM and the sweep goes on.\n"
           "--attention naive: DiT models materialise the [N, H, T, T] attention probabilities\n"
           "(timm without fused attention, the paper's DiT baseline); default tiled.\n");
}

static void parse_options(int argc, char **argv, sweep_options *o) {
    parse_models(o, "DiG-S/2,DiT-S/2");
    parse_resolutions(o, "256,512,768,1024,1280,1536,1792,2048");
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (cli_is_help(argv[i])) {
            usage_sweep();
            exit(0);
        } else if (cli_option_value(argc, argv, &i, "--models", &value)) parse_models(o, value);
        else if (cli_option_value(argc, argv, &i, "--resolutions", &value))
            parse_resolutions(o, value);
        else if (cli_option_value(argc, argv, &i, "--batch", &value))
            o->batch = (int)cli_parse_long("--batch", value, 1, 4096);
        else if (cli_option_value(argc, argv, &i, "--repeats", &value))
            o->repeats = (int)cli_parse_long("--repeats", value, 1, 10000);
        else if (cli_option_value(argc, argv, &i, "--only", &value)) parse_only(o, value);
        else if (cli_option_value(argc, argv, &i, "--memory-limit", &value))
            o->memory_limit_mib = cli_parse_long("--memory-limit", value, 1, 1L << 30);
        else if (cli_option_value(argc, argv, &i, "--attention", &value)) {
            if (digcl_attention_mode_parse(value, &o->attention) != 0) {
                fprintf(stderr, "digcl bench sweep: --attention expects tiled or naive, got '%s'\n",
                        value);
                exit(2);
            }
        } else if (cli_option_value(argc, argv, &i, "--json", &value)) o->json = value;
        else if (cli_option_value(argc, argv, &i, "--plot", &value)) o->plot = value;
        else cli_unknown_argument("bench sweep", argv[i]);
    }
    if (o->json && cli_check_output("bench sweep", "--json", o->json, NULL, NULL, 0) != 0) exit(2);
    if (o->plot && cli_check_output("bench sweep", "--plot", o->plot, NULL, NULL, 0) != 0) exit(2);
    if (o->json && o->plot && strcmp(o->json, o->plot) == 0) {
        fprintf(stderr, "digcl bench sweep: --json and --plot name the same file\n");
        exit(2);
    }
}

/* ---------------------------------------------------------------- running */

typedef struct sweep_case {
    digcl_model *model;
    digcl_model_inputs inputs;
    digcl_buffer x, t, y, out, dout;
} sweep_case;

static digcl_buffer upload(digcl_context *ctx, const void *host, size_t bytes, const char *what) {
    digcl_buffer buffer = digcl_buffer_create(ctx, bytes, what);
    if (host) digcl_write(ctx, buffer.mem, 0, bytes, host);
    return buffer;
}

static void case_inputs(digcl_context *ctx, const digcl_model_config *c, int batch,
                        sweep_case *sc) {
    size_t side = (size_t)c->input_size * c->input_size;
    size_t image = (size_t)batch * c->in_channels * side,
           out = (size_t)batch * c->out_channels * side;
    float *host = malloc((image > out ? image : out) * sizeof *host);
    float *t = malloc((size_t)batch * sizeof *t);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    if (!host || !t || !y) digcl_fatal("out of host memory");
    for (int n = 0; n < batch; n++) t[n] = (float)((n * 97 + 13) % 1000), y[n] = n % c->num_classes;
    bench_fill_uniform(host, image, 1, 2.0f);
    sc->x = upload(ctx, host, image * sizeof *host, "sweep latents");     /* [N, C, S, S] */
    sc->t = upload(ctx, t, (size_t)batch * sizeof *t, "sweep timesteps"); /* [N] */
    sc->y = upload(ctx, y, (size_t)batch * sizeof *y, "sweep labels");    /* [N] */
    bench_fill_uniform(host, out, 2, 2.0f / (float)out);
    sc->dout = upload(ctx, host, out * sizeof *host, "sweep output gradient"); /* [N, 2C, S, S] */
    sc->out = upload(ctx, NULL, out * sizeof *host, "sweep output");           /* [N, 2C, S, S] */
    sc->inputs.x = sc->x.mem, sc->inputs.t = sc->t.mem, sc->inputs.y = sc->y.mem;
    free(host), free(t), free(y);
}

static void case_release(sweep_case *sc) {
    digcl_model_release(sc->model);
    digcl_buffer_release(&sc->x), digcl_buffer_release(&sc->t), digcl_buffer_release(&sc->y);
    digcl_buffer_release(&sc->out), digcl_buffer_release(&sc->dout);
}

static void run_forward(digcl_context *ctx, void *arg) {
    (void)ctx;
    sweep_case *sc = arg;
    digcl_model_forward(sc->model, &sc->inputs, sc->out.mem);
}

static void run_forward_backward(digcl_context *ctx, void *arg) {
    (void)ctx;
    sweep_case *sc = arg;
    digcl_model_forward(sc->model, &sc->inputs, sc->out.mem);
    digcl_model_backward(sc->model, &sc->inputs, sc->dout.mem, NULL);
}

/* Model m at resolution r (input_size = px / 8). Exits 2 naming both when the
 * resolution does not divide into the model's patches (U-DiG: a grid halved
 * twice, so px / 8 a multiple of 4); returns -1 with the message in why when
 * the model refuses the size otherwise (too many tokens for 32-bit indices). */
static int sweep_config(const sweep_options *o, int m, int r, digcl_model_config *config, char *why,
                        size_t size) {
    digcl_config_error err;
    digcl_model_config_preset(o->models[m], config, &err);
    int input = o->resolutions[r] / 8, multiple = config->arch == DIGCL_ARCH_UDIG ? 4 : 1;
    if (input % config->patch_size != 0 || input % multiple != 0) {
        fprintf(stderr,
                "digcl bench sweep: --resolutions: %s needs px / 8 to be a multiple of %d, "
                "got %d px\n",
                o->models[m], config->patch_size * multiple, o->resolutions[r]);
        exit(2);
    }
    config->input_size = input;
    if (config->arch == DIGCL_ARCH_DIT) config->attention = o->attention;
    if (digcl_model_config_finish(config, &err) == 0) return 0;
    snprintf(why, size, "%s", err.message);
    return -1;
}

/* 0 when the phase fits the device: the model's own estimate plus the inputs
 * against the device's global memory and the largest single allocation. */
static int fits(digcl_context *ctx, const sweep_options *o, const digcl_model_config *config,
                int phase, char *why, size_t size) {
    int batch = o->batch;
    digcl_model_memory memory;
    if (digcl_model_check_batch(config, batch, why, size) != 0 ||
        digcl_model_memory_estimate(config, batch, &memory, why, size) != 0)
        return -1;
    const digcl_device_info *device = digcl_context_device(ctx);
    size_t io = (size_t)batch * (config->in_channels + 2 * config->out_channels) *
                config->input_size * config->input_size * sizeof(float);
    size_t activations =
        phase == PHASE_FORWARD ? memory.activations_inference : memory.activations_training;
    size_t total =
        memory.parameters + activations + io + (phase == PHASE_BACKWARD ? memory.gradients : 0);
    digcl_memory_stats stats = digcl_memory_stats_get(ctx);
    uint64_t capacity = device->global_mem_bytes;
    if (o->memory_limit_mib > 0 && (uint64_t)o->memory_limit_mib * 1048576u < capacity)
        capacity = (uint64_t)o->memory_limit_mib * 1048576u;
    if (total + stats.in_use_bytes > capacity) {
        snprintf(why, size, "needs %.1f MiB, device has %.1f MiB", total / 1048576.0,
                 capacity / 1048576.0);
        return -1;
    }
    if (activations > device->max_alloc_bytes) {
        snprintf(why, size, "activations %.1f MiB exceed the largest allocation %.1f MiB",
                 activations / 1048576.0, device->max_alloc_bytes / 1048576.0);
        return -1;
    }
    return 0;
}

static void mark_oom(sweep_cell *cell, const char *why) {
    cell->oom = 1, cell->ms = NAN, cell->peak = NAN;
    snprintf(cell->why, sizeof cell->why, "%s", why);
}

static void time_phase(digcl_context *ctx, sweep_case *sc, int batch, int phase, int repeats,
                       sweep_cell *cell) {
    digcl_model_prepare(sc->model, batch,
                        phase == PHASE_FORWARD ? DIGCL_MODE_INFERENCE : DIGCL_MODE_TRAINING);
    digcl_memory_reset_peak(ctx);
    cell->ms = bench_time_ms(ctx, phase == PHASE_FORWARD ? run_forward : run_forward_backward, sc,
                             1, repeats);
    cell->peak = (double)digcl_memory_stats_get(ctx).peak_bytes;
}

/* One model at one resolution: a fresh model (upstream initialisation) per cell,
 * so each phase's peak counts only what that phase needs. */
static void run_cell(digcl_context *ctx, const sweep_options *o, int m, int r,
                     sweep_cell cells[PHASE_COUNT]) {
    digcl_model_config config;
    char why[SWEEP_WHY];
    int refused = sweep_config(o, m, r, &config, why, sizeof why);
    for (int p = 0; p < PHASE_COUNT; p++) {
        if (!o->phases[p]) continue;
        if (refused || fits(ctx, o, &config, p, why, sizeof why) != 0) {
            mark_oom(&cells[p], why);
            continue;
        }
        sweep_case sc = {0};
        sc.model = digcl_model_create(ctx, &config);
        digcl_model_init(sc.model, 0);
        case_inputs(ctx, &config, o->batch, &sc);
        time_phase(ctx, &sc, o->batch, p, o->repeats, &cells[p]);
        case_release(&sc);
    }
}

/* ---------------------------------------------------------------- output */

static double images_per_s(const sweep_options *o, const sweep_cell *c) {
    return c->oom ? NAN : 1000.0 * o->batch / c->ms;
}

static void print_row(const sweep_options *o, int m, int r, int p) {
    const sweep_cell *c = &o->cells[m][r][p];
    printf("%-16s %-8s %6d", o->models[m], phase_names[p], o->resolutions[r]);
    if (c->oom) {
        printf("  %10s  %9s  %7s  %10s  (%s)\n", "OOM", "-", "-", "-", c->why);
        return;
    }
    double fps = images_per_s(o, c);
    printf("  %10.2f  %9.2f  %7.3f  %10.1f", c->ms, fps, log(fps), c->peak / 1048576.0);
    if (m > 0) {
        const sweep_cell *base = &o->cells[0][r][p];
        if (base->oom) printf("  %s: OOM", o->models[0]);
        else
            printf("  %s %.2fx faster, %.1f%% less memory", o->models[0], c->ms / base->ms,
                   100.0 * (1.0 - base->peak / c->peak));
    }
    printf("\n");
}

static void print_table(const sweep_options *o) {
    printf("%-16s %-8s %6s  %10s  %9s  %7s  %10s  ratios (first model against this one)\n", "model",
           "phase", "px", "ms", "img/s", "ln(FPS)", "peak MiB");
    for (int m = 0; m < o->model_count; m++)
        for (int r = 0; r < o->resolution_count; r++)
            for (int p = 0; p < PHASE_COUNT; p++)
                if (o->phases[p]) print_row(o, m, r, p);
}

static cJSON *cell_json(const sweep_options *o, int m, int r, int p) {
    const sweep_cell *c = &o->cells[m][r][p];
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "model", o->models[m]);
    cJSON_AddStringToObject(j, "phase", phase_names[p]);
    cJSON_AddNumberToObject(j, "resolution", o->resolutions[r]);
    cJSON_AddBoolToObject(j, "oom", c->oom);
    if (c->oom) {
        cJSON_AddStringToObject(j, "reason", c->why);
        return j;
    }
    double fps = images_per_s(o, c);
    cJSON_AddNumberToObject(j, "median_ms", c->ms);
    cJSON_AddNumberToObject(j, "images_per_s", fps);
    cJSON_AddNumberToObject(j, "ln_fps", log(fps));
    cJSON_AddNumberToObject(j, "peak_memory_bytes", c->peak);
    const sweep_cell *base = &o->cells[0][r][p];
    if (m > 0 && !base->oom) {
        cJSON_AddNumberToObject(j, "speedup_of_first", c->ms / base->ms);
        cJSON_AddNumberToObject(j, "memory_saving_of_first", 1.0 - base->peak / c->peak);
    }
    return j;
}

static int write_json(digcl_context *ctx, const sweep_options *o) {
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "schema", "digcl-bench-sweep/1");
    cJSON_AddItemToObject(root, "device", bench_device_json(ctx));
    cJSON_AddNumberToObject(root, "batch", o->batch);
    cJSON_AddNumberToObject(root, "repeats", o->repeats);
    cJSON_AddStringToObject(root, "dit_attention", digcl_attention_mode_name(o->attention));
    cJSON *cells = cJSON_AddArrayToObject(root, "cells");
    for (int m = 0; m < o->model_count; m++)
        for (int r = 0; r < o->resolution_count; r++)
            for (int p = 0; p < PHASE_COUNT; p++)
                if (o->phases[p]) cJSON_AddItemToArray(cells, cell_json(o, m, r, p));
    int status = bench_write_json("bench sweep", o->json, root);
    cJSON_Delete(root);
    return status;
}

static int write_plot(const sweep_options *o) {
    static const double palette[][3] = {{0.12, 0.47, 0.71}, {0.84, 0.15, 0.16}, {0.17, 0.63, 0.17},
                                        {1.00, 0.50, 0.05}, {0.58, 0.40, 0.74}, {0.55, 0.34, 0.29},
                                        {0.89, 0.47, 0.76}, {0.50, 0.50, 0.50}};
    double x[SWEEP_MAX_RESOLUTIONS], y[2][SWEEP_MAX_MODELS * PHASE_COUNT][SWEEP_MAX_RESOLUTIONS];
    char labels[SWEEP_MAX_MODELS * PHASE_COUNT][64];
    digcl_plot_series series[2][SWEEP_MAX_MODELS * PHASE_COUNT];
    size_t count = 0;
    for (int r = 0; r < o->resolution_count; r++) x[r] = o->resolutions[r];
    for (int m = 0; m < o->model_count; m++)
        for (int p = 0; p < PHASE_COUNT; p++) {
            if (!o->phases[p]) continue;
            snprintf(labels[count], sizeof labels[count], "%s %s", o->models[m], phase_names[p]);
            for (int r = 0; r < o->resolution_count; r++) {
                const sweep_cell *c = &o->cells[m][r][p];
                y[0][count][r] = log(images_per_s(o, c));
                y[1][count][r] = c->oom ? NAN : c->peak / 1073741824.0;
            }
            for (int panel = 0; panel < 2; panel++)
                series[panel][count] =
                    (digcl_plot_series){labels[count],
                                        x,
                                        y[panel][count],
                                        (size_t)o->resolution_count,
                                        {palette[m][0], palette[m][1], palette[m][2]},
                                        p == PHASE_FORWARD ? 1.5 : 3.0};
            count++;
        }
    digcl_plot panels[2] = {
        {"Speed (batch 1)", "resolution (px)", "ln(images/s)", 0, 720, 540, series[0], count},
        {"Peak device memory", "resolution (px)", "GiB", 0, 720, 540, series[1], count}};
    char error[512];
    if (digcl_plot_png_panels(panels, 2, o->plot, error, sizeof error) == 0) return 0;
    fprintf(stderr, "digcl bench sweep: --plot: %s\n", error);
    return 1;
}

int bench_sweep_main(digcl_context *ctx, int argc, char **argv) {
    static sweep_options o; /* cells are large: not on the stack */
    memset(&o, 0, sizeof o);
    o.batch = 1, o.repeats = 5, o.phases[PHASE_FORWARD] = o.phases[PHASE_BACKWARD] = 1;
    parse_options(argc, argv, &o);
    digcl_model_config config;
    char why[SWEEP_WHY];
    for (int m = 0; m < o.model_count; m++) /* every size checked before anything runs */
        for (int r = 0; r < o.resolution_count; r++)
            sweep_config(&o, m, r, &config, why, sizeof why);
    const digcl_device_info *device = digcl_context_device(ctx);
    printf("device: %s (%s, driver %s), batch %d, %d repeats, DiT attention %s\n", device->name,
           device->platform_name, device->driver_version, o.batch, o.repeats,
           digcl_attention_mode_name(o.attention));
    for (int m = 0; m < o.model_count; m++)
        for (int r = 0; r < o.resolution_count; r++) run_cell(ctx, &o, m, r, o.cells[m][r]);
    print_table(&o);
    int status = 0;
    if (o.json) status |= write_json(ctx, &o);
    if (o.plot) status |= write_plot(&o);
    return status;
}
