/* `digcl bench sample`: sampling throughput (images/s) of whole sampler runs
 * on the device, latents only (no VAE), random-init weights: by default
 * DiG-S/2 and DiT-S/2 at 256 px (32x32x4 latents), N = 32 images, 250-step
 * DDPM with guidance 4 (batch 2N) and 20-step DPM-Solver++ 2M with guidance 4.
 * Each case runs once untimed with 2 steps (kernel builds, plan), then timed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cli.h"
#include "digcl/diffusion.h"
#include "digcl/model.h"
#include "digcl/runtime.h"
#include "model_flags.h"

typedef struct sample_options {
    model_flags model;
    int images, steps, dpm_steps, repeats;
    float cfg_scale;
    int only; /* -1 both samplers, else the kind */
} sample_options;

static void parse_sampler(const char *value, sample_options *o) {
    if (strcmp(value, "ddpm") == 0) o->only = DIGCL_SAMPLER_DDPM;
    else if (strcmp(value, "ddim") == 0) o->only = DIGCL_SAMPLER_DDIM;
    else if (strcmp(value, "dpm++2m") == 0) o->only = DIGCL_SAMPLER_DPMPP_2M;
    else {
        fprintf(stderr, "digcl bench sample: --sampler expects ddpm, ddim or dpm++2m, got '%s'\n",
                value);
        exit(2);
    }
}

static void parse_options(int argc, char **argv, sample_options *o) {
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (model_flags_take(&o->model, argc, argv, &i)) continue;
        if (cli_option_value(argc, argv, &i, "--images", &value) ||
            cli_option_value(argc, argv, &i, "-n", &value))
            o->images = (int)cli_parse_long("--images", value, 1, 4096);
        else if (cli_option_value(argc, argv, &i, "--steps", &value))
            o->steps = (int)cli_parse_long("--steps", value, 1, DIGCL_DIFFUSION_STEPS);
        else if (cli_option_value(argc, argv, &i, "--dpm-steps", &value))
            o->dpm_steps = (int)cli_parse_long("--dpm-steps", value, 1, DIGCL_DIFFUSION_STEPS);
        else if (cli_option_value(argc, argv, &i, "--cfg-scale", &value))
            o->cfg_scale = (float)cli_parse_double("--cfg-scale", value, -1e6, 1e6);
        else if (cli_option_value(argc, argv, &i, "--repeats", &value))
            o->repeats = (int)cli_parse_long("--repeats", value, 1, 100);
        else if (cli_option_value(argc, argv, &i, "--sampler", &value)) parse_sampler(value, o);
        else cli_unknown_argument("bench sample", argv[i]);
    }
}

static void run_case(digcl_context *ctx, digcl_diffusion *diffusion, digcl_model *model,
                     const char *name, const sample_options *o, digcl_sampler_kind kind,
                     int steps) {
    static const char *const kind_names[] = {"ddpm", "ddim", "dpm++2m"};
    digcl_sampler_options warm = {kind, 2, 0.0f, o->cfg_scale, DIGCL_CFG_AUTO};
    digcl_sampler_options timed = warm;
    timed.steps = steps;
    int32_t *labels = malloc(sizeof *labels * (size_t)o->images);
    const digcl_model_config *c = digcl_model_get_config(model);
    float *x0 =
        malloc(sizeof *x0 * (size_t)o->images * c->in_channels * c->input_size * c->input_size);
    if (!labels || !x0) digcl_fatal("bench sample: out of host memory");
    for (int i = 0; i < o->images; ++i) labels[i] = (i * 37) % c->num_classes;
    const digcl_sampler_noise noise = {42, 0, NULL, NULL};
    digcl_sampler *sampler = digcl_sampler_create(diffusion, model, &warm, o->images);
    digcl_sampler_run(sampler, labels, &noise, x0, NULL, NULL);
    digcl_sampler_release(sampler);
    sampler = digcl_sampler_create(diffusion, model, &timed, o->images);
    double best = 1e30;
    for (int r = 0; r < o->repeats; ++r) {
        const double start = digcl_seconds_now();
        digcl_sampler_run(sampler, labels, &noise, x0, NULL, NULL);
        const double seconds = digcl_seconds_now() - start;
        if (seconds < best) best = seconds;
    }
    digcl_sampler_release(sampler);
    const int rows = o->cfg_scale != 1.0f ? 2 * o->images : o->images;
    digcl_memory_stats memory = digcl_memory_stats_get(ctx);
    printf(
        "%-10s %-8s %4d steps  cfg %-4g N %3d (batch %3d)  %8.2f s  %8.2f img/s  %7.2f ms/step  peak %.0f MiB\n",
        name, kind_names[kind], steps, (double)o->cfg_scale, o->images, rows, best,
        o->images / best, 1000.0 * best / steps, memory.peak_bytes / 1048576.0);
    fflush(stdout);
    free(labels), free(x0);
}

static void run_model(digcl_context *ctx, const char *name, const model_flags *flags,
                      const sample_options *o) {
    digcl_model_config config;
    int status = model_flags_resolve(flags, "bench sample", &config);
    if (status == 0) status = model_flags_check_batch(&config, 2L * o->images, "bench sample");
    if (status != 0) exit(status);
    digcl_model *model = digcl_model_create(ctx, &config);
    digcl_model_init(model, 1);
    digcl_model_randomize(model, 1, 0.02f); /* zero-init layers would make eps zero */
    digcl_diffusion *diffusion = digcl_diffusion_create(ctx, config.learn_sigma);
    if (o->only < 0 || o->only != DIGCL_SAMPLER_DPMPP_2M)
        run_case(ctx, diffusion, model, name, o,
                 o->only < 0 ? DIGCL_SAMPLER_DDPM : (digcl_sampler_kind)o->only, o->steps);
    if (o->only < 0 || o->only == DIGCL_SAMPLER_DPMPP_2M)
        run_case(ctx, diffusion, model, name, o, DIGCL_SAMPLER_DPMPP_2M,
                 o->only < 0 ? o->dpm_steps : o->steps);
    digcl_diffusion_release(diffusion);
    digcl_model_release(model);
}

int bench_sample_main(digcl_context *ctx, int argc, char **argv) {
    sample_options o = {0};
    model_flags_init(&o.model);
    o.images = 32, o.steps = 250, o.dpm_steps = 20, o.repeats = 1, o.cfg_scale = 4.0f, o.only = -1;
    parse_options(argc, argv, &o);
    if (o.model.image_size < 0) o.model.image_size = 256;
    printf("sampling, latents only (no VAE), random-init weights; best of %d run(s)\n", o.repeats);
    if (o.model.model || o.model.ckpt || o.model.values[MODEL_FLAG_DEPTH] >= 0) {
        run_model(ctx, o.model.model ? o.model.model : "custom", &o.model, &o);
        return 0;
    }
    static const char *const presets[] = {"DiG-S/2", "DiT-S/2"};
    for (int p = 0; p < 2; ++p) {
        model_flags flags = o.model;
        flags.model = presets[p];
        run_model(ctx, presets[p], &flags, &o);
    }
    return 0;
}
