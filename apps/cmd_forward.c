/* `digcl forward`: one forward (and optionally backward) pass of a checkpoint
 * on inputs from a safetensors file, written to another (for comparisons with
 * the PyTorch reference). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "digcl/checkpoint.h"
#include "digcl/model.h"
#include "digcl/safetensors.h"
#include "model_flags.h"

#define DIFFUSION_STEPS 1000 /* t is a DDPM index in [0, 1000) */
#define ERROR_SIZE      8192

void usage_forward(void) {
    printf(
        "usage: digcl forward --ckpt W.safetensors --inputs IN.safetensors --output OUT.safetensors\n"
        "                     [--device P:D|NAME] [model flags]\n\n"
        "Runs the model of checkpoint W on the inputs in IN and writes OUT:\n"
        "  IN   x     F32 [N, C, H, W]      latents (C = in_channels, H = W = input_size)\n"
        "       t     I64, I32 or F32 [N]   timestep indices, finite, in [0, 1000)\n"
        "       y     I64 [N]               class labels in [0, num_classes]; num_classes = null class\n"
        "       dout  F32 [N, C_out, H, W]  optional: also run the backward of sum(out * dout)\n"
        "  OUT  out   F32 [N, C_out, H, W]  C_out = 2C with learn_sigma, else C\n"
        "       grad.x and grad.<name> for every trainable parameter (pos_embed is frozen), only\n"
        "       when IN holds dout\n"
        "OUT's __metadata__ carries the same dig.config as the model. W's dig.config describes the\n"
        "model; for a checkpoint without one, or to override it, use the model flags:\n");
    model_flags_usage(1);
    printf(
        "\nexample:\n"
        "  digcl forward --ckpt dig-s2.safetensors --inputs batch.safetensors --output out.safetensors\n");
}

/* ------------------------------------------------------------ inputs */

typedef struct forward_inputs {
    int n;            /* N */
    size_t x_count;   /* N*C*H*W */
    size_t out_count; /* N*C_out*H*W */
    float *x;         /* [N, C, H, W] */
    float *t;         /* [N] */
    int32_t *y;       /* [N] */
    float *dout;      /* [N, C_out, H, W], NULL: inference only */
} forward_inputs;

static void free_inputs(forward_inputs *in) {
    free(in->x);
    free(in->t);
    free(in->y);
    free(in->dout);
    memset(in, 0, sizeof *in);
}

static int input_error(const digcl_safetensors *st, const char *format, const char *name,
                       const char *detail) {
    fprintf(stderr, "digcl forward: %s: ", st->label);
    fprintf(stderr, format, name, detail);
    fprintf(stderr, "\n");
    return 1;
}

/* A message that already names the file (the reader's and the library's). */
static int reader_error(const char *message) {
    fprintf(stderr, "digcl forward: %s\n", message);
    return 1;
}

static int float_dtype(digcl_st_dtype d) {
    return d == DIGCL_ST_F32 || d == DIGCL_ST_F16 || d == DIGCL_ST_BF16 || d == DIGCL_ST_F64;
}

/* x and dout: a float dtype, converted, every value finite. */
static int read_float_tensor(const digcl_safetensors *st, const digcl_st_tensor *t, float *dst) {
    if (!float_dtype(t->dtype))
        return input_error(st, "tensor '%s' has dtype %s, expected F32, F16, BF16 or F64", t->name,
                           digcl_st_dtype_name(t->dtype));
    digcl_st_error err;
    char message[ERROR_SIZE];
    if (digcl_st_read_f32(st, t, dst, &err) != 0) return reader_error(err.message);
    if (digcl_check_finite(t->name, dst, (size_t)t->numel, message, sizeof message) != 0)
        return input_error(st, "%s%s", message, "");
    return 0;
}

/* A present tensor with exactly `shape` (rank dims); `what` explains the dims. */
static int check_shape(const digcl_safetensors *st, const char *name, int rank,
                       const int64_t *shape, const char *what, const digcl_st_tensor **out) {
    char got[128], want[128], detail[384];
    const digcl_st_tensor *t = digcl_st_find(st, name);
    *out = t;
    digcl_st_format_shape(want, sizeof want, rank, shape);
    if (!t) {
        snprintf(detail, sizeof detail, "%s (%s)", want, what);
        return input_error(st, "missing tensor '%s', expected shape %s", name, detail);
    }
    int same = t->rank == rank;
    for (int d = 0; same && d < rank; d++) same = t->shape[d] == shape[d];
    if (same) return 0;
    snprintf(detail, sizeof detail, "%s, expected %s (%s)",
             digcl_st_format_shape(got, sizeof got, t->rank, t->shape), want, what);
    return input_error(st, "tensor '%s' has shape %s", name, detail);
}

/* x fixes N: [N, C, E, E] with N >= 1. */
static int read_x(const digcl_safetensors *st, const digcl_model_config *c, forward_inputs *in) {
    const digcl_st_tensor *t = digcl_st_find(st, "x");
    int64_t n = t && t->rank == 4 ? t->shape[0] : 1;
    int64_t shape[4] = {n, c->in_channels, c->input_size, c->input_size};
    char what[160];
    snprintf(what, sizeof what, "N >= 1, in_channels %d, input_size %d", c->in_channels,
             c->input_size);
    if (check_shape(st, "x", 4, shape, what, &t) != 0) return 1;
    if (n < 1 || n > (1 << 20)) {
        char batch[32];
        snprintf(batch, sizeof batch, "%lld", (long long)n);
        return input_error(st, "tensor '%s' has batch N = %s, expected 1 to 1048576", "x", batch);
    }
    in->n = (int)n;
    in->x_count = (size_t)t->numel;
    in->out_count = in->x_count / (size_t)c->in_channels * (size_t)c->out_channels;
    in->x = malloc(in->x_count * sizeof *in->x);
    if (!in->x) return input_error(st, "out of host memory for '%s'%s", "x", "");
    return read_float_tensor(st, t, in->x);
}

/* t [N]: finite, in [0, 1000). */
static int read_t(const digcl_safetensors *st, forward_inputs *in) {
    const digcl_st_tensor *t;
    int64_t shape[1] = {in->n};
    digcl_st_error err;
    if (check_shape(st, "t", 1, shape, "N timestep indices, like x", &t) != 0) return 1;
    in->t = malloc((size_t)in->n * sizeof *in->t);
    if (!in->t) return input_error(st, "out of host memory for '%s'%s", "t", "");
    if (digcl_st_read_f32(st, t, in->t, &err) != 0) return reader_error(err.message);
    char message[ERROR_SIZE];
    if (digcl_model_check_timesteps("t", in->t, (size_t)in->n, DIFFUSION_STEPS, message,
                                    sizeof message) != 0)
        return input_error(st, "%s%s", message, "");
    return 0;
}

/* y [N]: integers in [0, num_classes]; sent to the device as int32. */
static int read_y(const digcl_safetensors *st, const digcl_model_config *c, forward_inputs *in) {
    const digcl_st_tensor *t;
    int64_t shape[1] = {in->n};
    digcl_st_error err;
    if (check_shape(st, "y", 1, shape, "N class labels, like x", &t) != 0) return 1;
    int64_t *labels = malloc((size_t)in->n * sizeof *labels);
    in->y = malloc((size_t)in->n * sizeof *in->y);
    int status = 0;
    char message[ERROR_SIZE];
    if (!labels || !in->y) status = input_error(st, "out of host memory for '%s'%s", "y", "");
    else if (digcl_st_read_i64(st, t, labels, &err) != 0) status = reader_error(err.message);
    else if (digcl_model_check_labels(c, "y", labels, (size_t)in->n, message, sizeof message) != 0)
        status = input_error(st, "%s%s", message, "");
    for (int i = 0; status == 0 && i < in->n; i++) in->y[i] = (int32_t)labels[i];
    free(labels);
    return status;
}

/* dout [N, C_out, E, E], optional. */
static int read_dout(const digcl_safetensors *st, const digcl_model_config *c, forward_inputs *in) {
    const digcl_st_tensor *t;
    int64_t shape[4] = {in->n, c->out_channels, c->input_size, c->input_size};
    if (!digcl_st_find(st, "dout")) return 0;
    if (check_shape(st, "dout", 4, shape,
                    "shaped like out: N, out_channels, input_size, input_size", &t) != 0)
        return 1;
    in->dout = malloc(in->out_count * sizeof *in->dout);
    if (!in->dout) return input_error(st, "out of host memory for '%s'%s", "dout", "");
    return read_float_tensor(st, t, in->dout);
}

static int read_inputs(const char *path, const digcl_model_config *c, forward_inputs *in) {
    static const char *const names[] = {"x", "t", "y", "dout"};
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open(path, &st, &err) != 0) {
        fprintf(stderr, "digcl forward: %s\n", err.message);
        return 1;
    }
    int status = 0;
    if (digcl_st_check_no_unexpected(st, names, 4, &err) != 0) {
        fprintf(stderr, "digcl forward: %s (expected only x, t, y and optionally dout)\n",
                err.message);
        status = 1;
    }
    if (status == 0) status = read_x(st, c, in);
    if (status == 0) status = read_t(st, in);
    if (status == 0) status = read_y(st, c, in);
    if (status == 0) status = read_dout(st, c, in);
    digcl_st_close(st);
    if (status != 0) free_inputs(in);
    return status;
}

/* ------------------------------------------------------------ device run */

typedef struct forward_buffers {
    digcl_buffer x, t, y, out, dout, dx;
} forward_buffers;

static digcl_buffer upload(digcl_context *ctx, const void *host, size_t bytes, const char *what) {
    digcl_buffer b = digcl_buffer_create(ctx, bytes, what);
    if (host) digcl_write(ctx, b.mem, 0, bytes, host);
    return b;
}

static void release_buffers(forward_buffers *b) {
    digcl_buffer *all[] = {&b->x, &b->t, &b->y, &b->out, &b->dout, &b->dx};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (all[i]->mem) digcl_buffer_release(all[i]);
}

/* Forward, and backward when dout is given; results stay on the device. */
static void run_model(digcl_context *ctx, digcl_model *model, const forward_inputs *in,
                      forward_buffers *b) {
    size_t n = (size_t)in->n;
    int training = in->dout != NULL;
    b->x = upload(ctx, in->x, in->x_count * sizeof(float), "forward x");
    b->t = upload(ctx, in->t, n * sizeof(float), "forward t");
    b->y = upload(ctx, in->y, n * sizeof(int32_t), "forward y");
    b->out = upload(ctx, NULL, in->out_count * sizeof(float), "forward out");
    digcl_model_inputs inputs = {b->x.mem, b->t.mem, b->y.mem};
    digcl_model_prepare(model, in->n, training ? DIGCL_MODE_TRAINING : DIGCL_MODE_INFERENCE);
    if (training) digcl_model_zero_grad(model);
    digcl_model_forward(model, &inputs, b->out.mem);
    if (!training) return;
    b->dout = upload(ctx, in->dout, in->out_count * sizeof(float), "forward dout");
    b->dx = upload(ctx, NULL, in->x_count * sizeof(float), "forward grad.x");
    digcl_model_backward(model, &inputs, b->dout.mem, b->dx.mem);
}

/* ------------------------------------------------------------ output */

typedef struct forward_results {
    float *out;   /* [N, C_out, H, W] */
    float *dx;    /* [N, C, H, W] */
    float *grads; /* every trainable gradient, packed in table order */
} forward_results;

static int add_f32(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                   const float *data) {
    digcl_st_error err;
    if (digcl_st_writer_add_f32(w, name, rank, shape, data, &err) == 0) return 0;
    fprintf(stderr, "digcl forward: %s\n", err.message);
    return 1;
}

/* grad.<name> for every trainable parameter, downloaded into r->grads. */
static int add_grads(digcl_st_writer *w, digcl_model *model, forward_results *r) {
    const digcl_param_table *table = digcl_model_param_table(model);
    r->grads = malloc((table->trainable ? table->trainable : 1) * sizeof *r->grads);
    if (!r->grads) {
        fprintf(stderr, "digcl forward: out of host memory for %zu gradients\n", table->trainable);
        return 1;
    }
    size_t offset = 0;
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        if (!p->trainable) continue;
        char name[DIGCL_PARAM_NAME_SIZE + 8];
        snprintf(name, sizeof name, "grad.%s", p->name);
        digcl_model_read_grad(model, i, r->grads + offset);
        if (add_f32(w, name, p->rank, p->shape, r->grads + offset) != 0) return 1;
        offset += p->numel;
    }
    return 0;
}

static int add_results(digcl_st_writer *w, digcl_context *ctx, digcl_model *model,
                       const forward_inputs *in, const forward_buffers *b, forward_results *r) {
    const digcl_model_config *c = digcl_model_get_config(model);
    int64_t out_shape[4] = {in->n, c->out_channels, c->input_size, c->input_size};
    int64_t x_shape[4] = {in->n, c->in_channels, c->input_size, c->input_size};
    r->out = malloc(in->out_count * sizeof *r->out);
    r->dx = in->dout ? malloc(in->x_count * sizeof *r->dx) : NULL;
    if (!r->out || (in->dout && !r->dx)) {
        fprintf(stderr, "digcl forward: out of host memory for the outputs\n");
        return 1;
    }
    digcl_read(ctx, b->out.mem, 0, in->out_count * sizeof(float), r->out);
    if (add_f32(w, "out", 4, out_shape, r->out) != 0) return 1;
    if (!in->dout) return 0;
    digcl_read(ctx, b->dx.mem, 0, in->x_count * sizeof(float), r->dx);
    if (add_f32(w, "grad.x", 4, x_shape, r->dx) != 0) return 1;
    return add_grads(w, model, r);
}

static int write_output(const char *path, digcl_context *ctx, digcl_model *model,
                        const forward_inputs *in, const forward_buffers *b) {
    forward_results r = {0};
    digcl_st_writer *w = digcl_st_writer_new();
    char *json = digcl_model_config_to_json(digcl_model_get_config(model));
    digcl_st_error err;
    int status = !w || !json;
    if (status) fprintf(stderr, "digcl forward: out of host memory\n");
    if (status == 0) status = add_results(w, ctx, model, in, b, &r);
    if (status == 0 &&
        (digcl_st_writer_set_metadata(w, DIGCL_CONFIG_METADATA_KEY, json, &err) != 0 ||
         digcl_st_writer_write(w, path, &err) != 0)) {
        fprintf(stderr, "digcl forward: %s\n", err.message);
        status = 1;
    }
    digcl_st_writer_free(w);
    free(json);
    free(r.out);
    free(r.dx);
    free(r.grads);
    return status;
}

/* ------------------------------------------------------------ command */

static int run_on_device(const cli_globals *globals, const model_io_args *a,
                         const digcl_model_config *config, const forward_inputs *in) {
    digcl_context *ctx = cli_open_context(globals);
    digcl_model *model = digcl_model_create(ctx, config);
    char message[ERROR_SIZE];
    forward_buffers buffers = {0};
    int status = 0;
    if (digcl_checkpoint_load(model, a->flags.ckpt, message, sizeof message) != 0) {
        fprintf(stderr, "digcl forward: %s\n", message);
        status = 1;
    }
    if (status == 0) run_model(ctx, model, in, &buffers);
    if (status == 0) status = write_output(a->output, ctx, model, in, &buffers);
    release_buffers(&buffers);
    digcl_model_release(model);
    digcl_context_release(ctx);
    return status;
}

int cmd_forward(const cli_globals *globals, int argc, char **argv) {
    model_io_args args;
    int status = model_io_args_parse("forward", argc, argv, &args);
    if (status != 0) return status;
    digcl_model_config config;
    status = model_flags_resolve(&args.flags, "forward", &config);
    if (status != 0) return status;
    forward_inputs in = {0};
    status = read_inputs(args.inputs, &config, &in); /* before the device: fail fast */
    if (status == 0 && model_flags_check_batch(&config, in.n, "forward") != 0) status = 1;
    if (status == 0) status = run_on_device(globals, &args, &config, &in);
    free_inputs(&in);
    return status;
}
