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
#include "model_flags.h"

typedef struct model_case {
    digcl_model *model;
    digcl_model_inputs inputs;
    cl_mem out, dout, m, v;
    long step;
    digcl_adamw_hparams adamw;
    digcl_buffer owned[8]; /* every buffer above, released at the end */
    int owned_count;
} model_case;

static cl_mem upload(digcl_context *ctx, model_case *mc, const void *host, size_t bytes,
                     const char *what) {
    digcl_buffer buffer = digcl_buffer_create(ctx, bytes, what);
    if (host) digcl_write(ctx, buffer.mem, 0, bytes, host);
    mc->owned[mc->owned_count++] = buffer;
    return buffer.mem;
}

static void make_inputs(digcl_context *ctx, const digcl_model_config *c, int batch,
                        model_case *mc) {
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
    bench_fill_uniform(host, image, 1, 2.0f);
    mc->inputs.x = upload(ctx, mc, host, image * sizeof *host, "bench latents");
    mc->inputs.t = upload(ctx, mc, t, (size_t)batch * sizeof *t, "bench timesteps");
    mc->inputs.y = upload(ctx, mc, y, (size_t)batch * sizeof *y, "bench labels");
    bench_fill_uniform(host, out, 2, 2.0f / (float)out);
    mc->dout = upload(ctx, mc, host, out * sizeof *host, "bench output gradient");
    mc->out = upload(ctx, mc, NULL, out * sizeof *host, "bench output");
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

static void report(const char *what, const char *name, int batch, int image_size, double ms,
                   digcl_context *ctx) {
    digcl_memory_stats memory = digcl_memory_stats_get(ctx);
    printf(
        "%-8s %-14s batch %3d  %5d px  %10.2f ms  %9.1f img/s  device memory %8.1f MiB (peak %.1f)\n",
        what, name, batch, image_size, ms, 1000.0 * batch / ms, memory.in_use_bytes / 1048576.0,
        memory.peak_bytes / 1048576.0);
    fflush(stdout);
    bench_record_model(what, name, batch, image_size, ms, (double)memory.peak_bytes);
}

typedef struct bench_model_options {
    model_flags model; /* --model NAME (default DiG-S/2), --ckpt, custom sizes, --image-size */
    const char *name;  /* what the rows call the model */
    int batch, image_size, repeats, warmup;
    int forward, backward, step;
} bench_model_options;

static void parse_only(const char *value, bench_model_options *o) {
    o->forward = strcmp(value, "forward") == 0;
    o->backward = strcmp(value, "fwd+bwd") == 0;
    o->step = strcmp(value, "step") == 0;
    if (!o->forward && !o->backward && !o->step) {
        fprintf(stderr, "digcl bench model: --only expects forward, fwd+bwd or step, got '%s'\n",
                value);
        exit(2);
    }
}

static void parse_options(int argc, char **argv, bench_model_options *o) {
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (model_flags_take(&o->model, argc, argv, &i)) continue;
        if (cli_option_value(argc, argv, &i, "--batch", &value))
            o->batch = (int)cli_parse_long("--batch", value, 1, 4096);
        else if (cli_option_value(argc, argv, &i, "--repeats", &value))
            o->repeats = (int)cli_parse_long("--repeats", value, 1, 10000);
        else if (cli_option_value(argc, argv, &i, "--warmup", &value))
            o->warmup = (int)cli_parse_long("--warmup", value, 0, 10000);
        else if (cli_option_value(argc, argv, &i, "--only", &value)) parse_only(value, o);
        else cli_unknown_argument("bench model", argv[i]);
    }
    /* nothing naming or describing a model: the default preset */
    if (!o->model.model && !o->model.ckpt && o->model.values[MODEL_FLAG_DEPTH] < 0)
        o->model.model = "DiG-S/2";
    o->name = o->model.model ? o->model.model : o->model.ckpt ? "checkpoint" : "custom";
}

/* The model flags' own validation (presets, sizes, --image-size, batch range). */
static void configure(bench_model_options *o, digcl_model_config *config) {
    int status = model_flags_resolve(&o->model, "bench model", config);
    if (status == 0) status = model_flags_check_batch(config, o->batch, "bench model");
    if (status != 0) exit(status);
    o->image_size = 8 * config->input_size;
}

int bench_model_main(digcl_context *ctx, int argc, char **argv) {
    bench_model_options o = {
        .batch = 32, .repeats = 10, .warmup = 2, .forward = 1, .backward = 1, .step = 1};
    model_flags_init(&o.model);
    parse_options(argc, argv, &o);
    digcl_model_config config;
    configure(&o, &config);
    const digcl_device_info *device = digcl_context_device(ctx);
    printf("device: %s (%s, driver %s)\n", device->name, device->platform_name,
           device->driver_version);
    model_case mc = {0};
    mc.model = digcl_model_create(ctx, &config);
    digcl_model_init(mc.model, 0);
    make_inputs(ctx, &config, o.batch, &mc);
    mc.adamw = digcl_adamw_defaults();
    if (o.forward) {
        digcl_model_prepare(mc.model, o.batch, DIGCL_MODE_INFERENCE);
        report("forward", o.name, o.batch, o.image_size,
               bench_time_ms(ctx, run_forward, &mc, o.warmup, o.repeats), ctx);
    }
    if (o.backward || o.step) {
        digcl_model_prepare(mc.model, o.batch, DIGCL_MODE_TRAINING);
        if (o.backward)
            report("fwd+bwd", o.name, o.batch, o.image_size,
                   bench_time_ms(ctx, run_forward_backward, &mc, o.warmup, o.repeats), ctx);
    }
    if (o.step) {
        size_t bytes = digcl_model_flat_count(mc.model) * sizeof(float);
        mc.m = upload(ctx, &mc, NULL, bytes, "AdamW first moment");
        mc.v = upload(ctx, &mc, NULL, bytes, "AdamW second moment");
        digcl_fill_f32(ctx, mc.m, 0, bytes / 4, 0.0f);
        digcl_fill_f32(ctx, mc.v, 0, bytes / 4, 0.0f);
        report("step", o.name, o.batch, o.image_size,
               bench_time_ms(ctx, run_step, &mc, o.warmup, o.repeats), ctx);
    }
    digcl_model_release(mc.model);
    for (int i = 0; i < mc.owned_count; i++) digcl_buffer_release(&mc.owned[i]);
    return 0;
}
