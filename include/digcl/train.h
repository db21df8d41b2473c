/* digcl/train.h: diffusion training. One training step (label dropout,
 * timestep and noise draws, q_sample, forward, loss, backward, optional
 * global-norm clip, AdamW, EMA) on the device, the training checkpoint (model,
 * EMA and AdamW moments of one parameter table in one safetensors file, plus
 * the train.state JSON), the run folder (checkpoints/, log.jsonl,
 * config.json, loss.png) and the loop that ties them together.
 *
 * Spec: docs/TRAINING.md. Dimension legend: N rows per step (per process),
 * C channels, H/W latent (or pixel) height/width, P the flat parameter count.
 *
 * Randomness (include/digcl/rng.h), with `step` the 0-based index of the
 * step being taken and `row` the global row (first_sample + n):
 *   label dropout  digcl_rng_uniform(LABEL_DROP, step, row, 0) < class_dropout
 *   timestep       digcl_rng_below(TIMESTEP, step, row, 0, 1000)
 *   noise          digcl_rng_fill_normal(NOISE, step, first_sample, N, C*H*W)
 * so a step is a pure function of (seed, step, batch): a resume reproduces it.
 */
#ifndef DIGCL_TRAIN_H
#define DIGCL_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/data.h"
#include "digcl/diffusion.h"
#include "digcl/dist.h"
#include "digcl/model.h"
#include "digcl/optim.h"
#include "digcl/runtime.h"

/* ------------------------------------------------------------ the objective */

/* What the step calls for the diffusion maths: upstream's (see
 * digcl_train_diffusion_objective) or a test's. Both are asynchronous. */
typedef struct digcl_train_objective {
    void (*q_sample)(void *user, int N, size_t chw, cl_mem x_start, /* [N, C, H, W] */
                     cl_mem t,                                      /* [N] int32 */
                     cl_mem noise,                                  /* [N, C, H, W] */
                     cl_mem x_t);                                   /* [N, C, H, W] */
    void (*loss)(void *user, const digcl_diffusion_loss_args *args);
    void *user;
} digcl_train_objective;

/* Upstream's q_sample and training_losses through `diffusion`. */
digcl_train_objective digcl_train_diffusion_objective(digcl_diffusion *diffusion);

/* ------------------------------------------------------------ the trainer */

typedef struct digcl_train_hparams {
    digcl_adamw_hparams adamw; /* lr 1e-4, betas (0.9, 0.999), eps 1e-8, wd 0 */
    float grad_clip;           /* max global L2 norm; 0: off */
    float ema_decay;           /* 0.9999 */
    float class_dropout;       /* 0.1 */
    uint64_t seed;             /* --global-seed */
} digcl_train_hparams;

digcl_train_hparams digcl_train_hparams_defaults(void);

/* One step's values as logged (means over the N rows). */
typedef struct digcl_train_values {
    int64_t step; /* 1-based: the step that produced them */
    float loss, mse, vb, grad_norm;
} digcl_train_values;

typedef struct digcl_trainer digcl_trainer;

/* Plans every buffer of a step for `batch` rows (model prepared in TRAINING
 * mode), EMA = an exact copy of the parameters, moments zero, step 0. */
digcl_trainer *digcl_trainer_create(digcl_context *ctx, digcl_model *model, int batch,
                                    const digcl_train_hparams *hparams,
                                    const digcl_train_objective *objective);
void digcl_trainer_release(digcl_trainer *trainer);
/* Device bytes of a trainer beyond the model's parameters, gradients and
 * activations and the three flat stores (3 P floats): the step's inputs,
 * outputs, losses, history and reduction workspace (for `digcl info`). */
size_t digcl_trainer_step_bytes(const digcl_model_config *config, int batch, size_t flat_count);

/* Device memory of `digcl train` at `batch`, no device needed: the model's
 * estimate (parameters, gradients, moments, EMA, training activations) plus
 * the trainer's own step buffers. What digcl_trainer_create and the model
 * allocate; CLBlast's scratch is not included. */
typedef struct digcl_train_memory {
    digcl_model_memory model;
    size_t step;  /* digcl_trainer_step_bytes */
    size_t total; /* model.training_total + step */
} digcl_train_memory;
/* 0, or -1 (message) when the batch is refused. */
int digcl_train_memory_estimate(const digcl_model_config *config, long batch,
                                digcl_train_memory *memory, char *error, size_t size);

/* Data parallel (digcl/dist.h): every step averages the gradients and the
 * step's mean loss, mse and vb over the ranks through `sync`, made with
 * digcl_grad_sync_create(dist, ctx, digcl_model_grad_buffer(model),
 * digcl_model_flat_count(model), bucket, DIGCL_TRAIN_SYNC_EXTRA); its bucket
 * reads follow the model's backward progress. The grad norm, clip, AdamW and
 * EMA then see the averaged gradients. NULL: one process (the default). The
 * sync must outlive its use. */
#define DIGCL_TRAIN_SYNC_EXTRA 3
void digcl_trainer_set_grad_sync(digcl_trainer *trainer, digcl_grad_sync *sync);

/* Hyper-parameters may change between steps (a resume with a new --lr). */
void digcl_trainer_set_hparams(digcl_trainer *trainer, const digcl_train_hparams *hparams);
const digcl_train_hparams *digcl_trainer_hparams(const digcl_trainer *trainer);

/* Steps completed (AdamW's step count). */
int64_t digcl_trainer_step_count(const digcl_trainer *trainer);
void digcl_trainer_set_step_count(digcl_trainer *trainer, int64_t steps);

/* One step on a host batch: x [N, C, H, W], y [N] (labels before dropout),
 * first_sample the global row of row 0. Asynchronous: the values stay on the
 * device until digcl_trainer_drain. Allocates nothing. The history holds
 * DIGCL_TRAIN_HISTORY steps: drain before it is full (digcl_fatal otherwise). */
#define DIGCL_TRAIN_HISTORY 256
void digcl_trainer_step(digcl_trainer *trainer, const float *x, const int32_t *y,
                        uint64_t first_sample);

/* One step on a loader batch: digcl_trainer_step, or for a posterior batch (batch->spread
 * set: x the mean) z = scale (mean + std eps) drawn on the device first, eps from
 * DIGCL_RNG_LATENT at (step = batch->epoch, sample = batch->draw_index[n], index = element),
 * as the host draw of the data layer (digcl/data.h). Allocates nothing. */
void digcl_trainer_step_batch(digcl_trainer *trainer, const digcl_batch *batch);

/* The same with explicit t [N] and noise [N, C, H, W] (host) and labels used
 * as given (no dropout): the three-step reference check. */
void digcl_trainer_step_with(digcl_trainer *trainer, const float *x, const int32_t *y,
                             const int32_t *t, const float *noise);

/* Reads the values of the steps since the last drain (one sync) and hands
 * each to `sink` in step order. Returns the number of steps read. */
typedef void (*digcl_train_values_sink)(const digcl_train_values *values, void *user);
int digcl_trainer_drain(digcl_trainer *trainer, digcl_train_values_sink sink, void *user);
/* Steps whose values wait in the history. */
int digcl_trainer_pending(const digcl_trainer *trainer);

/* The EMA and AdamW moment stores (digcl/params.h), of the model's table and
 * flat layout. Samples from the EMA weights: digcl_model_use_params(model,
 * digcl_trainer_ema(trainer)), then digcl_model_use_params(model, NULL). */
digcl_params *digcl_trainer_ema(const digcl_trainer *trainer);
digcl_params *digcl_trainer_exp_avg(const digcl_trainer *trainer);
digcl_params *digcl_trainer_exp_avg_sq(const digcl_trainer *trainer);
digcl_model *digcl_trainer_model(const digcl_trainer *trainer);
digcl_context *digcl_trainer_context(const digcl_trainer *trainer);
int digcl_trainer_batch(const digcl_trainer *trainer); /* N */

/* ------------------------------------------------------------ checkpoints */

/* Tensor name prefixes of the stores (the model's own have none). */
#define DIGCL_TRAIN_EMA_PREFIX         "ema."
#define DIGCL_TRAIN_EXP_AVG_PREFIX     "opt.exp_avg."
#define DIGCL_TRAIN_EXP_AVG_SQ_PREFIX  "opt.exp_avg_sq."
#define DIGCL_TRAIN_ARGS_METADATA_KEY  "train.args"
#define DIGCL_TRAIN_STATE_METADATA_KEY "train.state"

/* Where training stands, saved as train.state JSON. */
typedef struct digcl_train_state {
    int64_t step;           /* steps completed */
    int64_t epoch;          /* epoch of the next batch */
    int64_t batch_in_epoch; /* index of the next batch in that epoch */
    uint64_t seed;          /* the RNG key of every stream (counters: step, row) */
    /* The log interval in progress (so that a resume logs the same lines). */
    int64_t log_count;
    double log_loss, log_mse, log_vb, log_grad_norm;
    double log_data_wait_ms;
    /* Ranks of the run that wrote it (0 or 1: one; read back as 1 when the
     * file names none). A resume needs the same; every rank's position is
     * (epoch, batch_in_epoch) of its own shard. */
    int64_t world_size;
    /* Seconds the run has trained (inside digcl_train_loop, all its
     * processes) up to the newest checkpoint: each checkpoint sets it to the
     * value at the loop's start plus the loop's own seconds. 0 when the file
     * names none (older checkpoints). */
    double train_seconds;
} digcl_train_state;

char *digcl_train_state_to_json(const digcl_train_state *state); /* malloc'ed; NULL: no memory */
int digcl_train_state_from_json(const char *json, digcl_train_state *state, char *error,
                                size_t size);

/* Writes the weights under upstream's names, ema.<name> for every tensor,
 * opt.exp_avg.<name> and opt.exp_avg_sq.<name> for every trainable one, and
 * the metadata dig.config, train.args (args_json, may be NULL) and
 * train.state, atomically (temp file, fsync, rename, directory fsync), through
 * digcl_params_save_file. A save allocates no device memory (host staging of
 * the stores' size: a failure is a message, not a crash). Returns 0 or -1. */
int digcl_train_checkpoint_save(digcl_trainer *trainer, const digcl_train_state *state,
                                const char *args_json, const char *path, char *error, size_t size);

/* Loads all four stores and train.state (strict: every tensor with its
 * shape, nothing unexpected; the file is checked before anything is
 * uploaded) and sets the trainer's step count. *args_json (when not NULL)
 * receives a malloc'ed copy of train.args or NULL. */
int digcl_train_checkpoint_load(digcl_trainer *trainer, const char *path, digcl_train_state *state,
                                char **args_json, char *error, size_t size);

/* The model (`which` "model") or EMA ("ema") weights of a training
 * checkpoint into a weights-only file (what forward and sample read). */
int digcl_train_checkpoint_export(const char *path, const char *which, const char *out_path,
                                  char *error, size_t size);

/* ------------------------------------------------------------ the run folder */

/* results_dir/NNN-<model> with NNN one more than the largest existing index
 * (DiT's experiment folders); '/' in the model name becomes '-'. Creates it
 * and checkpoints/. Returns 0 and the path in out, or -1 with a message. */
int digcl_results_new_run(const char *results_dir, const char *model_name, char *out,
                          size_t out_size, char *error, size_t size);
/* The newest run folder of results_dir that holds a complete checkpoint
 * (--resume auto): 0 and the folder, 1 when none, -1 on error. */
int digcl_results_latest_run(const char *results_dir, char *out, size_t out_size, char *error,
                             size_t size);
/* run/checkpoints/SSSSSSS.safetensors of step `step`. */
void digcl_results_checkpoint_path(const char *run_dir, int64_t step, char *out, size_t size);
/* The newest complete checkpoint of run_dir: only names of the exact form
 * SSSSSSS.safetensors count (temp files of an interrupted write never do).
 * 0 and the path, 1 when none, -1 on error. */
int digcl_results_latest_checkpoint(const char *run_dir, char *out, size_t size, int64_t *step);
/* Deletes all but the newest `keep` complete checkpoints (keep <= 0: none),
 * and stale temp files of interrupted writes. */
int digcl_results_prune(const char *run_dir, int keep, char *error, size_t size);
/* Writes text to path atomically (temp, fsync, rename, directory fsync). */
int digcl_write_file_atomic(const char *path, const char *text, size_t length, char *error,
                            size_t size);

/* ------------------------------------------------------------ the loop */

/* A batch source: the data loader (digcl_train_loader_source) or a test's. */
typedef struct digcl_train_source {
    const digcl_batch *(*next)(void *user);
    void (*release)(void *user, const digcl_batch *batch);
    void (*seek)(void *user, int64_t epoch, int64_t index);
    int64_t batches_per_epoch;
    void *user;
} digcl_train_source;

digcl_train_source digcl_train_loader_source(digcl_loader *loader, int64_t batches_per_epoch);

/* Training on images through the VAE encoder (`digcl train --vae`): each batch of `images`
 * ([N, 3, H, W] in [-1, 1]) becomes x = scale (mean + std eps) [N, 4, H/8, W/8] by
 * digcl_vae_encode_sample, eps from DIGCL_RNG_VAE_POSTERIOR at (step = the trainer's step
 * count when the batch is taken, sample = global row): a resume draws the same. Release with
 * digcl_train_vae_source_release. */
struct digcl_vae;
digcl_train_source digcl_train_vae_source(const digcl_train_source *images, struct digcl_vae *vae,
                                          const digcl_trainer *trainer, int height, int width,
                                          float scale);
void digcl_train_vae_source_release(digcl_train_source *source);

/* One log interval (a log.jsonl line). */
typedef struct digcl_train_log_entry {
    int64_t step, epoch;
    double loss, mse, vb, grad_norm; /* means over the interval's steps */
    double lr;
    double images_per_second;
    double data_wait_ms; /* mean per step */
    double elapsed_s;    /* since this process started training */
    double train_s;      /* the whole run's: train_seconds at the start + elapsed_s */
} digcl_train_log_entry;

/* Why the loop stopped. */
typedef enum digcl_train_stop {
    DIGCL_TRAIN_DONE = 0,      /* max_steps or the epochs reached */
    DIGCL_TRAIN_BUDGET = 1,    /* time budget spent */
    DIGCL_TRAIN_STOPPED = 2,   /* *stop_flag was set (SIGINT) */
    DIGCL_TRAIN_NONFINITE = 3, /* a non-finite loss or gradient: error says which */
    DIGCL_TRAIN_FAILED = 4     /* a checkpoint could not be written: error says why */
} digcl_train_stop;

typedef struct digcl_train_loop_options {
    const char *run_dir;     /* checkpoints/, log.jsonl, loss.png */
    const char *args_json;   /* train.args of every checkpoint (may be NULL) */
    int64_t max_steps;       /* stop at this step count (<= 0: none) */
    double time_budget_s;    /* <= 0: none */
    int64_t log_every;       /* >= 1 */
    int64_t ckpt_every;      /* >= 1 */
    int keep;                /* checkpoints kept; <= 0: all */
    int plot;                /* redraw loss.png at each checkpoint */
    volatile int *stop_flag; /* set asynchronously to stop with a checkpoint; may be NULL */
    /* Called after each log line (progress on a terminal, echo otherwise). */
    void (*on_log)(const digcl_train_log_entry *entry, void *user);
    /* Called after each step with the step count (cheap: no device values). */
    void (*on_step)(int64_t step, void *user);
    /* Every step's values when they are read (at log steps, checkpoints, and
     * every refresh_s seconds when refresh_s > 0: a terminal's progress line). */
    void (*on_values)(const digcl_train_values *values, void *user);
    double refresh_s;
    /* After each complete checkpoint. */
    void (*on_checkpoint)(const char *path, int64_t step, void *user);
    /* The --sample-every hook: every sample_every steps (0: never), with the
     * trainer (EMA weights: digcl_model_use_params with digcl_trainer_ema). */
    int64_t sample_every;
    void (*on_sample)(digcl_trainer *trainer, int64_t step, void *user);
    void *user;
    /* Data parallel: the ranks of the run (0 or 1: one process), so that
     * img/s counts every rank's rows; read_only on ranks other than 0, which
     * take the same steps but write no log.jsonl, checkpoints or loss.png. */
    int world_size;
    int read_only;
} digcl_train_loop_options;

/* Runs from `state` (fresh: zeros and the seed; resumed: as loaded) until a
 * stop condition, checkpointing every ckpt_every steps and at the end.
 * state is updated (train_seconds at each checkpoint). error receives the
 * reason for NONFINITE and FAILED. */
digcl_train_stop digcl_train_loop(digcl_trainer *trainer, const digcl_train_source *source,
                                  const digcl_train_loop_options *options, digcl_train_state *state,
                                  char *error, size_t size);

/* log.jsonl of run_dir without the lines after `step` (a resume after a
 * kill: the steps past the last checkpoint are taken again). */
int digcl_train_log_truncate(const char *run_dir, int64_t step, char *error, size_t size);

/* Draws the loss curve of run_dir/log.jsonl (the logged loss and a Gaussian
 * moving average of its logarithm, sigma 5 log points, against steps,
 * log-scaled) to
 * png_path (NULL: run_dir/loss.png), atomically. The loop calls it at every
 * checkpoint. Returns 0; 1 when the log has no lines yet (nothing drawn; the
 * reason in error); -1 with one line in error[size] (an unreadable file, a
 * build without cairo, a PNG that cannot be written). */
int digcl_train_loss_plot(const char *run_dir, const char *png_path, char *error, size_t size);

#endif
