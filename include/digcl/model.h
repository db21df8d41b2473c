/* digcl/model.h: the DiG and DiT networks on the device: parameters in one
 * flat buffer carved into named tensors, upstream initialisation, safetensors
 * checkpoints with upstream state_dict names, an activation plan made once per
 * (config, batch, mode), and the forward and backward passes.
 *
 * Spec: ../shared/spec/DIG_MODEL.md §2-§3. Dimension legend: N batch, C image
 * channels, H/W latent height/width, T tokens, D hidden size.
 */
#ifndef DIGCL_MODEL_H
#define DIGCL_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/model_config.h"
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

/* Creates the parameter buffer of a finished config. Parameters are undefined
 * until digcl_model_init or a checkpoint load. The gradient buffer is
 * allocated (zeroed) on first use, so sampling never pays for it. */
digcl_model *digcl_model_create(digcl_context *ctx, const digcl_model_config *config);
void digcl_model_release(digcl_model *model);

const digcl_model_config *digcl_model_get_config(const digcl_model *model);
const digcl_param_table *digcl_model_param_table(const digcl_model *model);

/* Views (sub-buffers) of one named parameter / its gradient, by table index. */
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

/* Upstream initialisation (DIG_MODEL.md §3.6) from a seeded RNG. */
void digcl_model_init(digcl_model *model, uint64_t seed);
/* Every parameter drawn from N(0, stddev^2) (tests: zero-initialised tensors
 * hide most of the network). */
void digcl_model_randomize(digcl_model *model, uint64_t seed, float stddev);
void digcl_model_zero_grad(digcl_model *model);

/* Host copies of one parameter or gradient: `numel` floats. */
void digcl_model_read_param(const digcl_model *model, size_t index, float *host);
void digcl_model_write_param(digcl_model *model, size_t index, const float *host);
void digcl_model_read_grad(digcl_model *model, size_t index, float *host);

/* Plans and allocates the activations for `batch` samples in `mode`, once;
 * calling it again with the same arguments does nothing. */
void digcl_model_prepare(digcl_model *model, int batch, digcl_model_mode mode);
/* The device bytes digcl_model_prepare would allocate (for `digcl info`). */
size_t digcl_model_activation_bytes(const digcl_model_config *config, int batch,
                                    digcl_model_mode mode, size_t alignment_bytes);

/* out [N, out_channels, H, W] = model(x, t, y). Needs digcl_model_prepare. */
void digcl_model_forward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem out);
/* Backward of sum(out * dout) after a TRAINING forward with the same inputs:
 * parameter gradients accumulate into the gradient buffer (pos_embed is frozen
 * and gets none); dx [N, C, H, W] is overwritten when not NULL. */
void digcl_model_backward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem dout,
                          cl_mem dx);

#endif
