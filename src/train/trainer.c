/* The training step on the device: label dropout, t and noise from the
 * counter-based RNG, q_sample, forward, loss, backward, global norm (and
 * clip), AdamW, EMA; the per-step values go to a device history read in one
 * sync by digcl_trainer_drain. API: include/digcl/train.h. */
#include <stdlib.h>
#include <string.h>

#include "digcl/reduce.h"
#include "digcl/train.h"
#include "digcl/vae_ops.h"

/* Per-step values in the history: mean loss, mse, vb and the grad norm. */
enum { VALUE_LOSS, VALUE_MSE, VALUE_VB, VALUE_GRAD_NORM, VALUE_COUNT };

/* Host copies of one step's inputs, uploaded without blocking: a slot is
 * reused only after its upload event completed (double buffering). */
typedef struct staging {
    float *x;            /* [N, C, H, W] */
    int32_t *labels;     /* [N] */
    int32_t *t;          /* [N] */
    float *t_float;      /* [N] */
    float *spread;       /* [N, C, H, W] a posterior batch's std or logvar */
    int32_t *draw_index; /* [N] its data indices */
    cl_event uploaded;   /* NULL: free */
} staging;

/* A maximal range of consecutive trainable tensors in the flat layout, as
 * sub-buffers of the four stores: AdamW runs on these only (torch.optim skips
 * parameters without gradients, so the frozen pos_embed never decays). */
typedef struct trainable_run {
    int count; /* floats */
    cl_mem params, grads, exp_avg, exp_avg_sq;
} trainable_run;

#define MAX_RUNS 8

struct digcl_trainer {
    digcl_context *ctx;
    digcl_model *model;
    digcl_train_hparams hparams;
    digcl_train_objective objective;
    int batch;                                /* N */
    size_t chw;                               /* C*H*W of the input */
    size_t out_chw;                           /* C_out*H*W */
    size_t flat;                              /* P */
    int64_t steps;                            /* completed */
    digcl_buffer x, x_t, noise;               /* [N, C, H, W] */
    digcl_buffer t_index, t_float, labels;    /* [N] int32, float, int32 */
    digcl_buffer draw_index;                  /* [N] int32: a posterior batch's data indices */
    digcl_buffer out, dout;                   /* [N, C_out, H, W] */
    digcl_buffer loss, mse, vb;               /* [N] */
    digcl_params *ema, *exp_avg, *exp_avg_sq; /* stores of the model's table, [P] each */
    digcl_buffer history;                     /* [DIGCL_TRAIN_HISTORY, VALUE_COUNT] */
    digcl_buffer workspace;                   /* reductions */
    int pending;                              /* history rows written since the last drain */
    int32_t *host_labels, *host_t;            /* [N] */
    staging slots[2];                         /* uploads of step k use slots[k % 2] */
    trainable_run runs[MAX_RUNS];
    int run_count;
    float *host_history;   /* [DIGCL_TRAIN_HISTORY, VALUE_COUNT] */
    digcl_grad_sync *sync; /* data parallel: averages gradients and losses; NULL alone */
};

digcl_train_hparams digcl_train_hparams_defaults(void) {
    digcl_train_hparams h;
    h.adamw = digcl_adamw_defaults();
    h.grad_clip = 0.0f;
    h.ema_decay = 0.9999f;
    h.class_dropout = 0.1f;
    h.seed = 0;
    return h;
}

static size_t larger(size_t a, size_t b) { return a > b ? a : b; }

size_t digcl_trainer_step_bytes(const digcl_model_config *c, int batch, size_t flat_count) {
    size_t n = (size_t)batch, f = sizeof(float);
    size_t chw = (size_t)c->in_channels * (size_t)c->input_size * (size_t)c->input_size;
    size_t out_chw = chw / (size_t)c->in_channels * (size_t)c->out_channels;
    size_t work =
        larger(digcl_reduce_workspace_bytes((int)flat_count), digcl_reduce_workspace_bytes(batch));
    return 3 * n * chw * f + 4 * n * sizeof(int32_t) + 2 * n * out_chw * f + 3 * n * f +
           DIGCL_TRAIN_HISTORY * 4 * f + larger(work, f);
}

int digcl_train_memory_estimate(const digcl_model_config *config, long batch,
                                digcl_train_memory *memory, char *error, size_t size) {
    memset(memory, 0, sizeof *memory);
    if (digcl_model_memory_estimate(config, batch, &memory->model, error, size) != 0) return -1;
    size_t flat = memory->model.parameters / sizeof(float);
    memory->step = digcl_trainer_step_bytes(config, (int)batch, flat);
    memory->total = memory->model.training_total + memory->step;
    return 0;
}

static void create_buffers(digcl_trainer *tr) {
    digcl_context *ctx = tr->ctx;
    size_t n = (size_t)tr->batch, f = sizeof(float);
    tr->x = digcl_buffer_create(ctx, n * tr->chw * f, "train x_start");
    tr->x_t = digcl_buffer_create(ctx, n * tr->chw * f, "train x_t");
    tr->noise = digcl_buffer_create(ctx, n * tr->chw * f, "train noise");
    tr->t_index = digcl_buffer_create(ctx, n * sizeof(int32_t), "train t");
    tr->t_float = digcl_buffer_create(ctx, n * f, "train t (float)");
    tr->labels = digcl_buffer_create(ctx, n * sizeof(int32_t), "train labels");
    tr->draw_index = digcl_buffer_create(ctx, n * sizeof(int32_t), "train data indices");
    tr->out = digcl_buffer_create(ctx, n * tr->out_chw * f, "train model output");
    tr->dout = digcl_buffer_create(ctx, n * tr->out_chw * f, "train d loss / d output");
    tr->loss = digcl_buffer_create(ctx, n * f, "train loss");
    tr->mse = digcl_buffer_create(ctx, n * f, "train mse");
    tr->vb = digcl_buffer_create(ctx, n * f, "train vb");
    const digcl_param_table *table = digcl_model_param_table(tr->model);
    tr->ema = digcl_params_create(ctx, table, "EMA parameters"); /* zeroed */
    tr->exp_avg = digcl_params_create(ctx, table, "AdamW exp_avg");
    tr->exp_avg_sq = digcl_params_create(ctx, table, "AdamW exp_avg_sq");
    tr->history = digcl_buffer_create(ctx, DIGCL_TRAIN_HISTORY * VALUE_COUNT * f, "train history");
    size_t work = larger(digcl_reduce_workspace_bytes((int)tr->flat),
                         digcl_reduce_workspace_bytes(tr->batch));
    tr->workspace = digcl_buffer_create(ctx, larger(work, f), "train reduction workspace");
}

static void add_run(digcl_trainer *tr, size_t begin, size_t end) {
    if (tr->run_count == MAX_RUNS)
        digcl_fatal("digcl_trainer_create: more than %d trainable ranges", MAX_RUNS);
    trainable_run *r = &tr->runs[tr->run_count++];
    size_t offset = begin * sizeof(float), bytes = (end - begin) * sizeof(float);
    r->count = (int)(end - begin);
    r->params = digcl_sub_buffer(tr->ctx, digcl_model_param_buffer(tr->model), offset, bytes);
    r->grads = digcl_sub_buffer(tr->ctx, digcl_model_grad_buffer(tr->model), offset, bytes);
    r->exp_avg = digcl_sub_buffer(tr->ctx, digcl_params_buffer(tr->exp_avg), offset, bytes);
    r->exp_avg_sq = digcl_sub_buffer(tr->ctx, digcl_params_buffer(tr->exp_avg_sq), offset, bytes);
}

/* The runs of trainable tensors (DiG/DiT: everything after pos_embed). */
static void plan_runs(digcl_trainer *tr) {
    const digcl_param_table *table = digcl_model_param_table(tr->model);
    const digcl_params *store = digcl_model_params(tr->model);
    size_t begin = 0, end = 0;
    int open = 0;
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        size_t offset = digcl_params_offset(store, i);
        if (p->trainable && !open) begin = offset, open = 1;
        if (!p->trainable && open) add_run(tr, begin, end), open = 0;
        if (p->trainable) end = offset + p->numel;
    }
    if (open) add_run(tr, begin, end);
}

static void *host_array(size_t count, size_t bytes) {
    void *p = calloc(count ? count : 1, bytes);
    if (!p) digcl_fatal("out of host memory for the training step");
    return p;
}

digcl_trainer *digcl_trainer_create(digcl_context *ctx, digcl_model *model, int batch,
                                    const digcl_train_hparams *hparams,
                                    const digcl_train_objective *objective) {
    if (batch < 1) digcl_fatal("digcl_trainer_create: batch %d, expected >= 1", batch);
    const digcl_model_config *c = digcl_model_get_config(model);
    digcl_trainer *tr = host_array(1, sizeof *tr);
    tr->ctx = ctx;
    tr->model = model;
    tr->hparams = *hparams;
    tr->objective = *objective;
    tr->batch = batch;
    tr->chw = (size_t)c->in_channels * (size_t)c->input_size * (size_t)c->input_size;
    tr->out_chw = tr->chw / (size_t)c->in_channels * (size_t)c->out_channels;
    tr->flat = digcl_model_flat_count(model);
    if (tr->flat > (size_t)0x7fffffff)
        digcl_fatal("digcl_trainer_create: %zu parameters exceed the 32-bit flat index", tr->flat);
    create_buffers(tr);
    tr->host_labels = host_array((size_t)batch, sizeof(int32_t));
    tr->host_t = host_array((size_t)batch, sizeof(int32_t));
    for (int k = 0; k < 2; k++) {
        tr->slots[k].x = host_array((size_t)batch * tr->chw, sizeof(float));
        tr->slots[k].labels = host_array((size_t)batch, sizeof(int32_t));
        tr->slots[k].t = host_array((size_t)batch, sizeof(int32_t));
        tr->slots[k].t_float = host_array((size_t)batch, sizeof(float));
        tr->slots[k].spread = host_array((size_t)batch * tr->chw, sizeof(float));
        tr->slots[k].draw_index = host_array((size_t)batch, sizeof(int32_t));
    }
    tr->host_history = host_array(DIGCL_TRAIN_HISTORY * VALUE_COUNT, sizeof(float));
    digcl_model_prepare(model, batch, DIGCL_MODE_TRAINING);
    (void)digcl_model_grad_buffer(model); /* allocated now, not in the first step */
    plan_runs(tr);
    digcl_params_copy(tr->ema, digcl_model_params(model)); /* the moments stay zero */
    return tr;
}

void digcl_trainer_release(digcl_trainer *tr) {
    if (!tr) return;
    digcl_buffer *all[] = {&tr->x,      &tr->x_t,     &tr->noise,     &tr->t_index,   &tr->t_float,
                           &tr->labels, &tr->out,     &tr->dout,      &tr->loss,      &tr->mse,
                           &tr->vb,     &tr->history, &tr->workspace, &tr->draw_index};
    for (int r = 0; r < tr->run_count; r++) {
        clReleaseMemObject(tr->runs[r].params);
        clReleaseMemObject(tr->runs[r].grads);
        clReleaseMemObject(tr->runs[r].exp_avg);
        clReleaseMemObject(tr->runs[r].exp_avg_sq);
    }
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) digcl_buffer_release(all[i]);
    digcl_params_release(tr->ema);
    digcl_params_release(tr->exp_avg);
    digcl_params_release(tr->exp_avg_sq);
    free(tr->host_labels);
    free(tr->host_t);
    for (int k = 0; k < 2; k++) {
        if (tr->slots[k].uploaded) {
            clWaitForEvents(1, &tr->slots[k].uploaded);
            clReleaseEvent(tr->slots[k].uploaded);
        }
        free(tr->slots[k].x);
        free(tr->slots[k].labels);
        free(tr->slots[k].t);
        free(tr->slots[k].t_float);
        free(tr->slots[k].spread);
        free(tr->slots[k].draw_index);
    }
    free(tr->host_history);
    free(tr);
}

void digcl_trainer_set_hparams(digcl_trainer *tr, const digcl_train_hparams *h) {
    tr->hparams = *h;
}
const digcl_train_hparams *digcl_trainer_hparams(const digcl_trainer *tr) { return &tr->hparams; }
int64_t digcl_trainer_step_count(const digcl_trainer *tr) { return tr->steps; }
void digcl_trainer_set_step_count(digcl_trainer *tr, int64_t steps) { tr->steps = steps; }
digcl_params *digcl_trainer_ema(const digcl_trainer *tr) { return tr->ema; }
digcl_params *digcl_trainer_exp_avg(const digcl_trainer *tr) { return tr->exp_avg; }
digcl_params *digcl_trainer_exp_avg_sq(const digcl_trainer *tr) { return tr->exp_avg_sq; }
digcl_model *digcl_trainer_model(const digcl_trainer *tr) { return tr->model; }
digcl_context *digcl_trainer_context(const digcl_trainer *tr) { return tr->ctx; }
int digcl_trainer_batch(const digcl_trainer *tr) { return tr->batch; }

/* ------------------------------------------------------------ the step */

/* Labels (after dropout) and t of this step for rows first_sample + n. */
static void draw_labels_and_t(digcl_trainer *tr, const int32_t *y, uint64_t first_sample) {
    const int null_class = digcl_model_get_config(tr->model)->num_classes;
    const digcl_rng_key drop = {tr->hparams.seed, DIGCL_RNG_LABEL_DROP};
    const digcl_rng_key timestep = {tr->hparams.seed, DIGCL_RNG_TIMESTEP};
    const uint64_t step = (uint64_t)tr->steps;
    for (int n = 0; n < tr->batch; n++) {
        uint64_t row = first_sample + (uint64_t)n;
        int dropped = tr->hparams.class_dropout > 0.0f &&
                      digcl_rng_uniform(drop, step, row, 0) < tr->hparams.class_dropout;
        tr->host_labels[n] = dropped ? null_class : y[n];
        tr->host_t[n] = (int32_t)digcl_rng_below(timestep, step, row, 0, DIGCL_DIFFUSION_STEPS);
    }
}

static void enqueue_write(digcl_trainer *tr, cl_mem mem, size_t bytes, const void *host,
                          cl_event *event) {
    DIGCL_CL_CHECK(clEnqueueWriteBuffer(digcl_context_queue(tr->ctx), mem, CL_FALSE, 0, bytes, host,
                                        0, NULL, event));
}

/* Copies x, labels and t (and a posterior batch's spread and data indices: spread goes to the
 * noise buffer, which is drawn only after z) into this step's staging slot and enqueues the
 * uploads without waiting (the in-order queue runs them before the step). */
static void upload_step_inputs(digcl_trainer *tr, const float *x, const digcl_batch *posterior) {
    size_t n = (size_t)tr->batch;
    staging *slot = &tr->slots[tr->steps % 2];
    if (slot->uploaded) {
        DIGCL_CL_CHECK(clWaitForEvents(1, &slot->uploaded));
        clReleaseEvent(slot->uploaded);
        slot->uploaded = NULL;
    }
    memcpy(slot->x, x, n * tr->chw * sizeof(float));
    memcpy(slot->labels, tr->host_labels, n * sizeof(int32_t));
    memcpy(slot->t, tr->host_t, n * sizeof(int32_t));
    for (size_t i = 0; i < n; i++) slot->t_float[i] = (float)tr->host_t[i];
    if (posterior) {
        memcpy(slot->spread, posterior->spread, n * tr->chw * sizeof(float));
        memcpy(slot->draw_index, posterior->draw_index, n * sizeof(int32_t));
        enqueue_write(tr, tr->noise.mem, n * tr->chw * sizeof(float), slot->spread, NULL);
        enqueue_write(tr, tr->draw_index.mem, n * sizeof(int32_t), slot->draw_index, NULL);
    }
    enqueue_write(tr, tr->x.mem, n * tr->chw * sizeof(float), slot->x, NULL);
    enqueue_write(tr, tr->labels.mem, n * sizeof(int32_t), slot->labels, NULL);
    enqueue_write(tr, tr->t_index.mem, n * sizeof(int32_t), slot->t, NULL);
    enqueue_write(tr, tr->t_float.mem, n * sizeof(float), slot->t_float, &slot->uploaded);
}

/* Writes the step's means and grad norm into history row `row`. */
/* The step's mean loss, mse and vb into history row `row` (VALUE_LOSS..VB:
 * the values the data-parallel averager carries with the gradients). */
static void record_losses(digcl_trainer *tr, int row) {
    const float mean = 1.0f / (float)tr->batch;
    size_t base = (size_t)row * VALUE_COUNT;
    cl_mem h = tr->history.mem, w = tr->workspace.mem;
    digcl_sum(tr->ctx, tr->batch, tr->loss.mem, mean, h, base + VALUE_LOSS, w);
    digcl_sum(tr->ctx, tr->batch, tr->mse.mem, mean, h, base + VALUE_MSE, w);
    digcl_sum(tr->ctx, tr->batch, tr->vb.mem, mean, h, base + VALUE_VB, w);
}

/* The global gradient norm (of the averaged gradients) into row `row`. */
static void record_grad_norm(digcl_trainer *tr, int row) {
    digcl_global_norm(tr->ctx, (int)tr->flat, digcl_model_grad_buffer(tr->model), tr->history.mem,
                      (size_t)row * VALUE_COUNT + VALUE_GRAD_NORM, tr->workspace.mem);
}

static void on_backward_progress(void *user, size_t from) { digcl_grad_sync_ready(user, from); }

void digcl_trainer_set_grad_sync(digcl_trainer *tr, digcl_grad_sync *sync) {
    tr->sync = sync;
    digcl_model_set_backward_progress(tr->model, sync ? on_backward_progress : NULL, sync);
}

/* From x_t on: forward, loss, backward, norm, clip, AdamW, EMA. */
static void network_step(digcl_trainer *tr) {
    const digcl_model_config *c = digcl_model_get_config(tr->model);
    digcl_model_inputs in = {tr->x_t.mem, tr->t_float.mem, tr->labels.mem};
    /* The model may have served another batch since (an EMA sample grid with
     * --sample-every): select the training plan again (no allocation). */
    digcl_model_prepare(tr->model, tr->batch, DIGCL_MODE_TRAINING);
    digcl_model_zero_grad(tr->model);
    digcl_model_forward(tr->model, &in, tr->out.mem);
    digcl_diffusion_loss_args args = {
        tr->batch,     c->in_channels, (size_t)c->input_size * (size_t)c->input_size,
        tr->x.mem,     tr->x_t.mem,    tr->t_index.mem,
        tr->noise.mem, tr->out.mem,    tr->loss.mem,
        tr->mse.mem,   tr->vb.mem,     tr->dout.mem};
    tr->objective.loss(tr->objective.user, &args);
    if (tr->pending == DIGCL_TRAIN_HISTORY)
        digcl_fatal("digcl_trainer_step: %d steps not drained (call digcl_trainer_drain)",
                    DIGCL_TRAIN_HISTORY);
    int row = tr->pending++;
    record_losses(tr, row);
    if (tr->sync) digcl_grad_sync_start(tr->sync);
    digcl_model_backward(tr->model, &in, tr->dout.mem, NULL);
    if (tr->sync) digcl_grad_sync_finish(tr->sync, tr->history.mem, (size_t)row * VALUE_COUNT);
    record_grad_norm(tr, row);
    cl_mem grads = digcl_model_grad_buffer(tr->model);
    if (tr->hparams.grad_clip > 0.0f)
        digcl_clip_by_norm(tr->ctx, (int)tr->flat, grads, tr->history.mem,
                           (size_t)row * VALUE_COUNT + VALUE_GRAD_NORM, tr->hparams.grad_clip);
    tr->steps++;
    for (int r = 0; r < tr->run_count; r++) {
        const trainable_run *run = &tr->runs[r];
        digcl_adamw_step(tr->ctx, run->count, &tr->hparams.adamw, (long)tr->steps, run->params,
                         run->grads, run->exp_avg, run->exp_avg_sq);
    }
    digcl_ema_update(tr->ctx, (int)tr->flat, tr->hparams.ema_decay, digcl_params_buffer(tr->ema),
                     digcl_model_param_buffer(tr->model));
}

/* Noise, x_t, then the network step, on this step's uploaded x. */
static void noised_step(digcl_trainer *tr, uint64_t first_sample) {
    const digcl_rng_key noise = {tr->hparams.seed, DIGCL_RNG_NOISE};
    digcl_rng_fill_normal(tr->ctx, noise, (uint64_t)tr->steps, first_sample, (size_t)tr->batch,
                          tr->chw, tr->noise.mem);
    tr->objective.q_sample(tr->objective.user, tr->batch, tr->chw, tr->x.mem, tr->t_index.mem,
                           tr->noise.mem, tr->x_t.mem);
    network_step(tr);
}

void digcl_trainer_step(digcl_trainer *tr, const float *x, const int32_t *y,
                        uint64_t first_sample) {
    draw_labels_and_t(tr, y, first_sample);
    upload_step_inputs(tr, x, NULL);
    noised_step(tr, first_sample);
}

void digcl_trainer_step_batch(digcl_trainer *tr, const digcl_batch *batch) {
    if (!batch->spread) {
        digcl_trainer_step(tr, batch->x, batch->y, (uint64_t)batch->first_sample);
        return;
    }
    if (batch->rows != tr->batch)
        digcl_fatal("digcl_trainer_step_batch: a batch of %d rows, the trainer's is %d",
                    batch->rows, tr->batch);
    draw_labels_and_t(tr, batch->y, (uint64_t)batch->first_sample);
    upload_step_inputs(tr, batch->x, batch);
    const digcl_rng_key latent = {tr->hparams.seed, DIGCL_RNG_LATENT};
    digcl_posterior_draw_forward(tr->ctx, (size_t)tr->batch, tr->chw, batch->scale,
                                 batch->spread_is_logvar, latent, (uint64_t)batch->epoch, tr->x.mem,
                                 tr->noise.mem, tr->draw_index.mem);
    noised_step(tr, (uint64_t)batch->first_sample);
}

void digcl_trainer_step_with(digcl_trainer *tr, const float *x, const int32_t *y, const int32_t *t,
                             const float *noise) {
    memcpy(tr->host_labels, y, (size_t)tr->batch * sizeof *y);
    memcpy(tr->host_t, t, (size_t)tr->batch * sizeof *t);
    upload_step_inputs(tr, x, NULL);
    digcl_write(tr->ctx, tr->noise.mem, 0, (size_t)tr->batch * tr->chw * sizeof(float), noise);
    tr->objective.q_sample(tr->objective.user, tr->batch, tr->chw, tr->x.mem, tr->t_index.mem,
                           tr->noise.mem, tr->x_t.mem);
    network_step(tr);
}

int digcl_trainer_pending(const digcl_trainer *tr) { return tr->pending; }

int digcl_trainer_drain(digcl_trainer *tr, digcl_train_values_sink sink, void *user) {
    int count = tr->pending;
    if (count == 0) return 0;
    digcl_read(tr->ctx, tr->history.mem, 0, (size_t)count * VALUE_COUNT * sizeof(float),
               tr->host_history);
    tr->pending = 0;
    for (int i = 0; sink && i < count; i++) {
        const float *v = tr->host_history + (size_t)i * VALUE_COUNT;
        digcl_train_values values = {tr->steps - count + 1 + i, v[VALUE_LOSS], v[VALUE_MSE],
                                     v[VALUE_VB], v[VALUE_GRAD_NORM]};
        sink(&values, user);
    }
    return count;
}
