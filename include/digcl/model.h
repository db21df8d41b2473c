/* digcl/model.h: the DiG and DiT networks on the device: parameters in one
 * flat buffer carved into named tensors, upstream initialisation, safetensors
 * checkpoints with upstream state_dict names, an activation plan made once per
 * (config, batch, mode), and the forward and backward passes.
 *
 * Contract: docs/MODEL.md (network, embeddings, initialisation). Dimension legend: N batch, C image
 * channels, H/W latent height/width, T tokens, D hidden size.
 */
#ifndef DIGCL_MODEL_H
#define DIGCL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/model_config.h"
#include "digcl/params.h"
#include "digcl/runtime.h"

typedef struct digcl_model digcl_model;

typedef enum digcl_model_mode {
    DIGCL_MODE_INFERENCE = 0, /* forward only; no activations kept for backward */
    DIGCL_MODE_TRAINING = 1   /* forward keeps what backward needs */
} digcl_model_mode;

typedef struct digcl_model_inputs {
    cl_mem x; /* [N, C, H, W] latents */
    cl_mem t; /* [N] float timestep indices */
    cl_mem y; /* [N] int32 class labels; num_classes is the null class */
} digcl_model_inputs;

/* Creates the parameter store of a finished config (zeroed; meaningful after
 * digcl_model_init or a checkpoint load). The gradient buffer is allocated
 * (zeroed) on first use, so sampling never pays for it. */
digcl_model *digcl_model_create(digcl_context *ctx, const digcl_model_config *config);
void digcl_model_release(digcl_model *model);

const digcl_model_config *digcl_model_get_config(const digcl_model *model);
const digcl_param_table *digcl_model_param_table(const digcl_model *model);

/* The model's own parameter store (digcl/params.h): stores for the EMA copy
 * and the AdamW moments are made from its table (digcl_params_create(ctx,
 * digcl_model_param_table(model), "EMA")) and share its flat layout. */
digcl_params *digcl_model_params(digcl_model *model);

/* Runs forward and backward on another store of the same table (the EMA
 * weights, for samples during training) without copying; NULL goes back to
 * the model's own parameters. Gradients of a backward still accumulate into
 * the model's own gradient buffer. The store must outlive its use. Fails
 * (digcl_fatal) for a store of another table or context. */
void digcl_model_use_params(digcl_model *model, const digcl_params *params);
const digcl_params *digcl_model_active_params(const digcl_model *model);

/* Views (sub-buffers) of one named parameter / its gradient, by table index
 * (the model's own store, whatever digcl_model_use_params chose). */
cl_mem digcl_model_param(const digcl_model *model, size_t index);
cl_mem digcl_model_grad(digcl_model *model, size_t index);
/* The whole flat buffers: `count` floats each (alignment padding included and
 * kept at zero), so optimizer, EMA, zero-grad and all-reduce are flat loops. */
cl_mem digcl_model_param_buffer(const digcl_model *model);
cl_mem digcl_model_grad_buffer(digcl_model *model);
size_t digcl_model_flat_count(const digcl_model *model);

/* 1 when DiG's q, k, v, g and low-rank gate projections run as one GEMM (their
 * weights are adjacent in the flat buffer, and DIGCL_FUSED_PROJECTIONS is not 0). */
int digcl_model_fused_projections(const digcl_model *model);

/* Data-parallel training (digcl/dist.h): called during digcl_model_backward
 * when the gradients of the flat range [from, digcl_model_flat_count) are final
 * once the work enqueued so far on the queue completes: after the head and
 * after each block (from falls toward 0; the stem's come last, when backward
 * returns). U-DiG does not report progress. NULL: no calls. */
typedef void (*digcl_backward_progress)(void *user, size_t from);
void digcl_model_set_backward_progress(digcl_model *model, digcl_backward_progress progress,
                                       void *user);

/* Upstream initialisation (docs/MODEL.md §3.6), draws from digcl_rng with key
 * {seed, DIGCL_RNG_INIT}, sample = tensor index. */
void digcl_model_init(digcl_model *model, uint64_t seed);
/* Every parameter drawn from N(0, stddev^2) (tests: zero-initialised tensors
 * hide most of the network). */
void digcl_model_randomize(digcl_model *model, uint64_t seed, float stddev);
void digcl_model_zero_grad(digcl_model *model);

/* Host copies of one parameter or gradient: `numel` floats. */
void digcl_model_read_param(const digcl_model *model, size_t index, float *host);
void digcl_model_write_param(digcl_model *model, size_t index, const float *host);
void digcl_model_read_grad(digcl_model *model, size_t index, float *host);

/* Makes the model ready for `batch` samples in `mode`. Activations are
 * planned and allocated only when no existing plan serves the request: a
 * training plan serves inference, a plan for a larger batch serves smaller
 * ones, so alternating training steps with inference batches (EMA samples)
 * allocates each mode once (at its largest batch) and never frees and re-plans
 * in the loop. Fails (digcl_fatal) for a batch digcl_model_check_batch refuses. */
void digcl_model_prepare(digcl_model *model, int batch, digcl_model_mode mode);
/* How many times digcl_model_prepare has allocated activations (tests: a
 * steady loop must not raise it). */
int digcl_model_activation_allocations(const digcl_model *model);
/* The device bytes one plan for (batch, mode) takes, with sub-buffers aligned
 * to alignment_bytes (the model uses DIGCL_PARAMS_ALIGNMENT_BYTES). */
size_t digcl_model_activation_bytes(const digcl_model_config *config, int batch,
                                    digcl_model_mode mode, size_t alignment_bytes);

/* ---------------------------------------------------------------- limits */

/* 0 when `batch` samples can run: batch >= 1 and every activation, workspace
 * and kernel index range of the plan fits the kernels' 32-bit indices. Else
 * -1 with a message naming the limit (callers add the flag: --batch). */
int digcl_model_check_batch(const digcl_model_config *config, long batch, char *error, size_t size);
/* The largest batch digcl_model_check_batch accepts (0: none). */
long digcl_model_max_batch(const digcl_model_config *config);

/* Device memory of a model, in bytes, exactly as the library allocates it
 * (flat stores with DIGCL_PARAMS_ALIGNMENT_BYTES padding, activation plans);
 * CLBlast's own scratch and data/VAE buffers are not included. */
typedef struct digcl_model_memory {
    size_t parameters;            /* one flat store */
    size_t gradients;             /* one flat store (training) */
    size_t optimizer;             /* AdamW exp_avg + exp_avg_sq: two stores */
    size_t ema;                   /* one store */
    size_t activations_inference; /* plan for (batch, INFERENCE) */
    size_t activations_training;  /* plan for (batch, TRAINING) */
    size_t sampling_total;        /* parameters + activations_inference */
    size_t training_total;        /* parameters, gradients, optimizer, ema, activations_training */
} digcl_model_memory;

/* 0, or -1 (message) when the batch is refused. */
int digcl_model_memory_estimate(const digcl_model_config *config, long batch,
                                digcl_model_memory *memory, char *error, size_t size);

/* ---------------------------------------------------------------- inputs */

/* Host checks of model inputs, 0 or -1 with a message naming `name`, the
 * first bad index and value, and what was expected: */
/* n values, all finite (the message gives the count of NaN/Inf). */
int digcl_check_finite(const char *name, const float *values, size_t n, char *error, size_t size);
/* t[n]: finite timestep indices in [0, num_timesteps). */
int digcl_model_check_timesteps(const char *name, const float *t, size_t n, int num_timesteps,
                                char *error, size_t size);
/* y[n]: class labels in [0, num_classes] (num_classes = the null class). */
int digcl_model_check_labels(const digcl_model_config *config, const char *name, const int64_t *y,
                             size_t n, char *error, size_t size);

/* out [N, out_channels, H, W] = model(x, t, y). Needs digcl_model_prepare. */
void digcl_model_forward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem out);
/* Backward of sum(out * dout) after a TRAINING forward with the same inputs:
 * parameter gradients accumulate into the gradient buffer (pos_embed is frozen
 * and gets none); dx [N, C, H, W] is overwritten when not NULL. */
void digcl_model_backward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem dout,
                          cl_mem dx);

#endif
