/* `digcl loss`: upstream's training objective (q_sample, the network, the
 * MSE + variational-bound loss and the gradient of its batch mean with respect
 * to every trainable parameter) on inputs from a safetensors file, written to
 * another, so that a port's training objective can be checked against PyTorch
 * (tests/reference/diffusion_reference.py). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "digcl/checkpoint.h"
#include "digcl/diffusion.h"
#include "digcl/model.h"
#include "digcl/safetensors.h"
#include "model_flags.h"

void usage_loss(void) {
    printf(
        "usage: digcl loss --ckpt W.safetensors --inputs IN.safetensors --output OUT.safetensors\n"
        "                  [--device P:D|NAME] [model flags]\n\n"
        "Evaluates upstream's training loss (training_losses of gaussian_diffusion.py) for the model\n"
        "of checkpoint W on the batch in IN and writes OUT:\n"
        "  IN   x      F32 [N, C, H, W]  x_start (C = in_channels, H = W = input_size)\n"
        "       t      I64 [N]           timestep indices in [0, 1000)\n"
        "       y      I64 [N]           class labels in [0, num_classes], used as given (no label\n"
        "                                dropout); num_classes = the null class\n"
        "       noise  F32 [N, C, H, W]  the noise of q_sample\n"
        "  OUT  loss, mse F32 [N]; vb F32 [N] with learn_sigma (the variational bound in bits on\n"
        "       the detached mean, the decoder NLL at t = 0); grad.<name> of mean(loss) for every\n"
        "       trainable parameter\n"
        "W's dig.config describes the model; for a checkpoint without one, or to override it, use\n"
        "the model flags:\n");
    model_flags_usage(1);
    printf(
        "\nexample:\n"
        "  digcl loss --ckpt dig-s2.safetensors --inputs batch.safetensors --output loss.safetensors\n");
}

/* ------------------------------------------------------------ inputs */

typedef struct loss_inputs {
    int n;        /* N */
    size_t count; /* N*C*H*W */
    float *x;     /* [N, C, H, W] */
    float *noise; /* [N, C, H, W] */
    int32_t *t;   /* [N] */
    int32_t *y;   /* [N] */
} loss_inputs;

static void free_inputs(loss_inputs *in) {
    free(in->x), free(in->noise), free(in->t), free(in->y);
    memset(in, 0, sizeof *in);
}

static int fail(const char *message) {
    fprintf(stderr, "digcl loss: %s\n", message);
    return 1;
}

/* An F32 tensor of exactly [N, C, E, E] into a fresh array. */
static int read_image(const digcl_safetensors *st, const char *name, const int64_t *shape,
                      size_t count, float **out) {
    digcl_st_error err;
    *out = malloc(count * sizeof **out);
    if (!*out) return fail("out of host memory for the inputs");
    if (digcl_st_load_f32(st, name, 4, shape, *out, &err) != 0) return fail(err.message);
    return 0;
}

/* An integer tensor [N] with values in [0, bound) into int32. */
static int read_indices(const digcl_safetensors *st, const char *name, int n, int64_t bound,
                        const char *meaning, int32_t **out) {
    const digcl_st_tensor *t;
    const int64_t shape[1] = {n};
    digcl_st_error err;
    if (digcl_st_expect(st, name, 1, shape, &t, &err) != 0) return fail(err.message);
    int64_t *wide = malloc((size_t)n * sizeof *wide);
    *out = malloc((size_t)n * sizeof **out);
    if (!wide || !*out) {
        free(wide);
        return fail("out of host memory for the inputs");
    }
    int status = digcl_st_read_i64(st, t, wide, &err) != 0 ? fail(err.message) : 0;
    for (int i = 0; status == 0 && i < n; ++i) {
        (*out)[i] = (int32_t)wide[i];
        if (wide[i] >= 0 && wide[i] < bound) continue;
        fprintf(stderr, "digcl loss: %s: tensor '%s'[%d] = %lld, expected %s in [0, %lld)\n",
                st->label, name, i, (long long)wide[i], meaning, (long long)bound);
        status = 1;
    }
    free(wide);
    return status;
}

static int read_inputs(const char *path, const digcl_model_config *c, loss_inputs *in) {
    static const char *const names[] = {"x", "t", "y", "noise"};
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open(path, &st, &err) != 0) return fail(err.message);
    int status = 0;
    if (digcl_st_check_no_unexpected(st, names, 4, &err) != 0) {
        fprintf(stderr, "digcl loss: %s (expected only x, t, y and noise)\n", err.message);
        status = 1;
    }
    const digcl_st_tensor *x = digcl_st_find(st, "x");
    const int64_t n = x && x->rank == 4 ? x->shape[0] : 1;
    if (status == 0 && (n < 1 || n > (1 << 20))) {
        fprintf(stderr, "digcl loss: %s: tensor 'x' has batch N = %lld, expected 1 to 1048576\n",
                st->label, (long long)n);
        status = 1;
    }
    const int64_t shape[4] = {n, c->in_channels, c->input_size, c->input_size};
    in->n = (int)n;
    in->count = (size_t)n * c->in_channels * c->input_size * c->input_size;
    if (status == 0) status = read_image(st, "x", shape, in->count, &in->x);
    if (status == 0) status = read_image(st, "noise", shape, in->count, &in->noise);
    if (status == 0)
        status = read_indices(st, "t", in->n, DIGCL_DIFFUSION_STEPS, "a timestep", &in->t);
    if (status == 0)
        status = read_indices(st, "y", in->n, c->num_classes + 1, "a class (num_classes = null)",
                              &in->y);
    digcl_st_close(st);
    if (status != 0) free_inputs(in);
    return status;
}

/* ------------------------------------------------------------ device run */

typedef struct loss_buffers {
    digcl_buffer x, noise, x_t, t_index, t_value, y, out, dout, loss, mse, vb;
} loss_buffers;

static digcl_buffer upload(digcl_context *ctx, const void *host, size_t bytes, const char *what) {
    digcl_buffer b = digcl_buffer_create(ctx, bytes, what);
    if (host) digcl_write(ctx, b.mem, 0, bytes, host);
    return b;
}

static void release_buffers(loss_buffers *b) {
    digcl_buffer *all[] = {&b->x,   &b->noise, &b->x_t,  &b->t_index, &b->t_value, &b->y,
                           &b->out, &b->dout,  &b->loss, &b->mse,     &b->vb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->mem) digcl_buffer_release(all[i]);
}

/* q_sample, forward, loss, backward; results stay on the device. */
static void run_loss(digcl_context *ctx, digcl_model *model, const loss_inputs *in,
                     loss_buffers *b) {
    const digcl_model_config *c = digcl_model_get_config(model);
    const size_t n = (size_t)in->n, out_count = in->count / c->in_channels * c->out_channels;
    float *t_value = malloc(n * sizeof *t_value);
    if (!t_value) digcl_fatal("digcl loss: out of host memory");
    for (size_t i = 0; i < n; ++i) t_value[i] = (float)in->t[i];
    b->x = upload(ctx, in->x, in->count * sizeof(float), "loss x");
    b->noise = upload(ctx, in->noise, in->count * sizeof(float), "loss noise");
    b->x_t = upload(ctx, NULL, in->count * sizeof(float), "loss x_t");
    b->t_index = upload(ctx, in->t, n * sizeof(int32_t), "loss t");
    b->t_value = upload(ctx, t_value, n * sizeof(float), "loss t (float)");
    b->y = upload(ctx, in->y, n * sizeof(int32_t), "loss y");
    b->out = upload(ctx, NULL, out_count * sizeof(float), "loss model output");
    b->dout = upload(ctx, NULL, out_count * sizeof(float), "loss d/d model output");
    b->loss = upload(ctx, NULL, n * sizeof(float), "loss");
    b->mse = upload(ctx, NULL, n * sizeof(float), "loss mse");
    b->vb = upload(ctx, NULL, n * sizeof(float), "loss vb");
    free(t_value);
    digcl_diffusion *diffusion = digcl_diffusion_create(ctx, c->learn_sigma);
    digcl_diffusion_q_sample(diffusion, in->n, in->count / n, b->x.mem, b->t_index.mem,
                             b->noise.mem, b->x_t.mem);
    const digcl_model_inputs inputs = {b->x_t.mem, b->t_value.mem, b->y.mem};
    digcl_model_prepare(model, in->n, DIGCL_MODE_TRAINING);
    digcl_model_zero_grad(model);
    digcl_model_forward(model, &inputs, b->out.mem);
    const digcl_diffusion_loss_args args = {
        in->n,        c->in_channels, (size_t)c->input_size * c->input_size,
        b->x.mem,     b->x_t.mem,     b->t_index.mem,
        b->noise.mem, b->out.mem,     b->loss.mem,
        b->mse.mem,   b->vb.mem,      b->dout.mem};
    digcl_diffusion_training_loss(diffusion, &args);
    digcl_model_backward(model, &inputs, b->dout.mem, NULL);
    digcl_finish(ctx);
    digcl_diffusion_release(diffusion);
}

/* ------------------------------------------------------------ output */

static int add_f32(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                   const float *data) {
    digcl_st_error err;
    return digcl_st_writer_add_f32(w, name, rank, shape, data, &err) == 0 ? 0 : fail(err.message);
}

static int write_output(const char *path, digcl_context *ctx, digcl_model *model,
                        const loss_inputs *in, const loss_buffers *b) {
    const digcl_model_config *c = digcl_model_get_config(model);
    const digcl_param_table *table = digcl_model_param_table(model);
    const size_t n = (size_t)in->n;
    float *rows = malloc(3 * n * sizeof *rows),
          *grads = malloc((table->trainable + 1) * sizeof *grads);
    digcl_st_writer *w = digcl_st_writer_new();
    char *json = digcl_model_config_to_json(c);
    int status = !rows || !grads || !w || !json ? fail("out of host memory for the outputs") : 0;
    const int64_t row_shape[1] = {in->n};
    if (status == 0) {
        digcl_read(ctx, b->loss.mem, 0, n * sizeof(float), rows);
        digcl_read(ctx, b->mse.mem, 0, n * sizeof(float), rows + n);
        digcl_read(ctx, b->vb.mem, 0, n * sizeof(float), rows + 2 * n);
        status = add_f32(w, "loss", 1, row_shape, rows) ||
                 add_f32(w, "mse", 1, row_shape, rows + n) ||
                 (c->learn_sigma && add_f32(w, "vb", 1, row_shape, rows + 2 * n));
    }
    size_t offset = 0;
    for (size_t i = 0; status == 0 && i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        if (!p->trainable) continue;
        char name[DIGCL_PARAM_NAME_SIZE + 8];
        snprintf(name, sizeof name, "grad.%s", p->name);
        digcl_model_read_grad(model, i, grads + offset);
        status = add_f32(w, name, p->rank, p->shape, grads + offset);
        offset += p->numel;
    }
    digcl_st_error err;
    if (status == 0 &&
        (digcl_st_writer_set_metadata(w, DIGCL_CONFIG_METADATA_KEY, json, &err) != 0 ||
         digcl_st_writer_set_metadata(w, "loss", "mean over rows of mse + vb", &err) != 0 ||
         digcl_st_writer_write(w, path, &err) != 0))
        status = fail(err.message);
    digcl_st_writer_free(w);
    free(json), free(rows), free(grads);
    return status;
}

/* ------------------------------------------------------------ command */

static int run_on_device(const cli_globals *globals, const model_io_args *a,
                         const digcl_model_config *config, const loss_inputs *in) {
    digcl_context *ctx = cli_open_context(globals);
    digcl_model *model = digcl_model_create(ctx, config);
    char message[1024];
    loss_buffers buffers = {0};
    int status = 0;
    if (digcl_checkpoint_load(model, a->flags.ckpt, message, sizeof message) != 0)
        status = fail(message);
    if (status == 0) run_loss(ctx, model, in, &buffers);
    if (status == 0) status = write_output(a->output, ctx, model, in, &buffers);
    release_buffers(&buffers);
    digcl_model_release(model);
    digcl_context_release(ctx);
    return status;
}

int cmd_loss(const cli_globals *globals, int argc, char **argv) {
    model_io_args args;
    int status = model_io_args_parse("loss", argc, argv, &args);
    if (status != 0) return status;
    digcl_model_config config;
    status = model_flags_resolve(&args.flags, "loss", &config);
    if (status != 0) return status;
    loss_inputs in = {0};
    status = read_inputs(args.inputs, &config, &in); /* before the device: fail fast */
    if (status == 0 && model_flags_check_batch(&config, in.n, "loss") != 0) status = 1;
    if (status == 0) status = run_on_device(globals, &args, &config, &in);
    free_inputs(&in);
    return status;
}
