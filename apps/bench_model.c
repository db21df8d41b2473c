/* `digcl bench model`: whole-network timings of DiG or DiT on the device.
 *
 * For a preset (or checkpoint-free custom size) at a batch and image size it
 * times, with upstream initialisation and random inputs:
 *   forward     inference mode (no activations kept), the sampling cost
 *   fwd+bwd     training-mode forward plus backward of sum(out * dout)
 *   step        fwd+bwd + zero-grad + one AdamW update over the flat buffers
 * and prints ms, images/s, the activation and total device memory. With
 * DIGCL_PROFILE=1 the per-kernel totals at exit name the expensive kernels. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "digcl/model.h"
#include "digcl/optim.h"

typedef struct model_case {
    digcl_model *model;
    digcl_model_inputs inputs;
    cl_mem out, dout, m, v;
    long step;
    digcl_adamw_hparams adamw;
} model_case;

static void fill_random(float *x, size_t n, unsigned seed, float scale) {
    uint32_t state = seed * 747796405u + 2891336453u;
    for (size_t i = 0; i < n; i++) {
        state = state * 1664525u + 1013904223u;
        x[i] = scale * ((float)((state >> 8) * (1.0 / 16777216.0)) - 0.5f);
    }
}

static cl_mem upload(digcl_context *ctx, const void *host, size_t bytes, const char *what) {
    digcl_buffer buffer = digcl_buffer_create(ctx, bytes, what);
    if (host) digcl_write(ctx, buffer.mem, 0, bytes, host);
    return buffer.mem;
}

static void make_inputs(digcl_context *ctx, const digcl_model_config *c, int batch, model_case *mc) {
    size_t image = (size_t)batch * c->in_channels * c->input_size * c->input_size;
    size_t out = (size_t)batch * c->out_channels * c->input_size * c->input_size;
    float *host = malloc((image > out ? image : out) * sizeof *host);
    float *t = malloc((size_t)batch * sizeof *t);
    int32_t *y = malloc((size_t)batch * sizeof *y);
    if (!host || !t || !y) digcl_fatal("out of host memory");
    for (int n = 0; n < batch; n++) {
        t[n] = (float)((n * 97 + 13) % 1000);
        y[n] = (n * 37) % (c->num_classes + 1);
    }
    fill_random(host, image, 1, 2.0f);
    mc->inputs.x = upload(ctx, host, image * sizeof *host, "bench latents");
    mc->inputs.t = upload(ctx, t, (size_t)batch * sizeof *t, "bench timesteps");
    mc->inputs.y = upload(ctx, y, (size_t)batch * sizeof *y, "bench labels");
    fill_random(host, out, 2, 2.0f / (float)out);
    mc->dout = upload(ctx, host, out * sizeof *host, "bench output gradient");
    mc->out = upload(ctx, NULL, out * sizeof *host, "bench output");
    free(host), free(t), free(y);
}

static void run_forward(digcl_context *ctx, void *arg) {
    (void)ctx;
    model_case *mc = arg;
    digcl_model_forward(mc->model, &mc->inputs, mc->out);
}

static void run_forward_backward(digcl_context *ctx, void *arg) {
    (void)ctx;
    model_case *mc = arg;
    digcl_model_forward(mc->model, &mc->inputs, mc->out);
    digcl_model_backward(mc->model, &mc->inputs, mc->dout, NULL);
}

static void run_step(digcl_context *ctx, void *arg) {
    model_case *mc = arg;
    digcl_model_zero_grad(mc->model);
    run_forward_backward(ctx, arg);
    size_t count = digcl_model_flat_count(mc->model);
    digcl_adamw_step(ctx, (int)count, &mc->adamw, ++mc->step, digcl_model_param_buffer(mc->model),
                     digcl_model_grad_buffer(mc->model), mc->m, mc->v);
}

static void report(const char *what, const char *name, int batch, int image_size, double ms, digcl_context *ctx) {
    digcl_memory_stats memory = digcl_memory_stats_get(ctx);
    printf("%-8s %-14s batch %3d  %5d px  %10.2f ms  %9.1f img/s  device memory %8.1f MiB (peak %.1f)\n", what, name,
           batch, image_size, ms, 1000.0 * batch / ms, memory.in_use_bytes / 1048576.0, memory.peak_bytes / 1048576.0);
    fflush(stdout);
}

typedef struct bench_model_options {
    const char *name;
    int batch, image_size, repeats;
    int forward, backward, step;
} bench_model_options;

static void parse_options(int argc, char **argv, bench_model_options *o) {
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (cli_option_value(argc, argv, &i, "--model", &value)) o->name = value;
        else if (cli_option_value(argc, argv, &i, "--batch", &value)) o->batch = (int)cli_parse_long("--batch", value, 1, 4096);
        else if (cli_option_value(argc, argv, &i, "--image-size", &value))
            o->image_size = (int)cli_parse_long("--image-size", value, 8, 16384);
        else if (cli_option_value(argc, argv, &i, "--repeats", &value))
            o->repeats = (int)cli_parse_long("--repeats", value, 1, 10000);
        else if (cli_option_value(argc, argv, &i, "--only", &value)) {
            o->forward = strcmp(value, "forward") == 0;
            o->backward = strcmp(value, "fwd+bwd") == 0;
            o->step = strcmp(value, "step") == 0;
            if (!o->forward && !o->backward && !o->step) {
                fprintf(stderr, "digcl bench model: --only expects forward, fwd+bwd or step, got '%s'\n", value);
                exit(2);
            }
        } else cli_unknown_argument("bench model", argv[i]);
    }
}

static void configure(const bench_model_options *o, digcl_model_config *config) {
    digcl_config_error error;
    if (digcl_model_config_preset(o->name, config, &error) != 0) {
        fprintf(stderr, "digcl bench model: %s\n", error.message);
        exit(2);
    }
    if (o->image_size % 8 != 0 || (o->image_size / 8) % config->patch_size != 0) {
        fprintf(stderr, "digcl bench model: --image-size %d must be a multiple of 8 * patch size (%d)\n", o->image_size,
                8 * config->patch_size);
        exit(2);
    }
    config->input_size = o->image_size / 8;
    if (digcl_model_config_finish(config, &error) != 0) {
        fprintf(stderr, "digcl bench model: %s\n", error.message);
        exit(2);
    }
}

int bench_model_main(digcl_context *ctx, int argc, char **argv) {
    bench_model_options o = {"DiG-S/2", 32, 256, 10, 1, 1, 1};
    parse_options(argc, argv, &o);
    digcl_model_config config;
    configure(&o, &config);
    const digcl_device_info *device = digcl_context_device(ctx);
    printf("device: %s (%s, driver %s)\n", device->name, device->platform_name, device->driver_version);
    model_case mc = {0};
    mc.model = digcl_model_create(ctx, &config);
    digcl_model_init(mc.model, 0);
    make_inputs(ctx, &config, o.batch, &mc);
    mc.adamw = digcl_adamw_defaults();
    if (o.forward) {
        digcl_model_prepare(mc.model, o.batch, DIGCL_MODE_INFERENCE);
        report("forward", o.name, o.batch, o.image_size, bench_time_ms(ctx, run_forward, &mc, 2, o.repeats), ctx);
    }
    if (o.backward || o.step) {
        digcl_model_prepare(mc.model, o.batch, DIGCL_MODE_TRAINING);
        if (o.backward)
            report("fwd+bwd", o.name, o.batch, o.image_size, bench_time_ms(ctx, run_forward_backward, &mc, 2, o.repeats),
                   ctx);
    }
    if (o.step) {
        size_t bytes = digcl_model_flat_count(mc.model) * sizeof(float);
        mc.m = upload(ctx, NULL, bytes, "AdamW first moment");
        mc.v = upload(ctx, NULL, bytes, "AdamW second moment");
        digcl_fill_f32(ctx, mc.m, 0, bytes / 4, 0.0f);
        digcl_fill_f32(ctx, mc.v, 0, bytes / 4, 0.0f);
        report("step", o.name, o.batch, o.image_size, bench_time_ms(ctx, run_step, &mc, 2, o.repeats), ctx);
    }
    digcl_model_release(mc.model);
    return 0;
}
