/* digcl/diffusion.h: upstream's Gaussian diffusion (ADM/DiT
 * gaussian_diffusion.py, respace.py): the linear-beta schedule, q_sample, the
 * training loss (MSE on epsilon + the variational bound on the detached mean
 * with LEARNED_RANGE variance) and its gradient with respect to the model
 * output, and the samplers (DDPM ancestral, DDIM, DPM-Solver++ 2M) with
 * classifier-free guidance. Tables in double on the host, used as float32
 * on the device (as upstream casts them). Spec: docs/MODEL.md ("Diffusion",
 * "Sampling").
 *
 * Dimension legend: N batch rows, C image channels (eps channels), H, W.
 * The model output is [N, 2C, H, W] with learn_sigma (eps, then the variance
 * interpolation v in [-1, 1]) and [N, C, H, W] without.
 */
#ifndef DIGCL_DIFFUSION_H
#define DIGCL_DIFFUSION_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/model.h"
#include "digcl/rng.h"
#include "digcl/runtime.h"

#define DIGCL_DIFFUSION_STEPS 1000

typedef struct digcl_diffusion digcl_diffusion;

/* The 1000-step linear schedule (betas 1e-4 .. 0.02, double) and its derived
 * tables, uploaded once. learn_sigma selects LEARNED_RANGE (else FIXED_LARGE
 * for sampling and MSE-only training, as create_diffusion does). */
digcl_diffusion *digcl_diffusion_create(digcl_context *ctx, int learn_sigma);
void digcl_diffusion_release(digcl_diffusion *diffusion);

/* Host tables of the 1000-step process (double), index t in [0, 1000). */
typedef struct digcl_diffusion_tables {
    double betas[DIGCL_DIFFUSION_STEPS];
    double alphas_cumprod[DIGCL_DIFFUSION_STEPS];
    double alphas_cumprod_prev[DIGCL_DIFFUSION_STEPS];
    double posterior_variance[DIGCL_DIFFUSION_STEPS];
    double posterior_log_variance_clipped[DIGCL_DIFFUSION_STEPS];
    double posterior_mean_coef1[DIGCL_DIFFUSION_STEPS];
    double posterior_mean_coef2[DIGCL_DIFFUSION_STEPS];
} digcl_diffusion_tables;
const digcl_diffusion_tables *digcl_diffusion_get_tables(const digcl_diffusion *diffusion);

/* ------------------------------------------------------------ training */

/* x_t = sqrt(acp[t]) x_start + sqrt(1 - acp[t]) noise, per row. */
void digcl_diffusion_q_sample(digcl_diffusion *diffusion, int N, size_t chw,
                              cl_mem x_start, /* [N, C, H, W] */
                              cl_mem t,       /* [N] int32 in [0, 1000) */
                              cl_mem noise,   /* [N, C, H, W] */
                              cl_mem x_t);    /* [N, C, H, W] */

/* The training loss of upstream's training_losses for each row:
 *   mse[n] = mean over C,H,W of (noise - eps)^2
 *   vb[n]  = KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t)) / ln 2 averaged over
 *            C,H,W, on the detached eps (decoder NLL at t = 0); 0 without
 *            learn_sigma
 *   loss[n] = mse[n] + vb[n]
 * and dout = d mean_n(loss[n]) / d model_out (the eps part from the mse, the
 * variance part from vb only: the mean is detached). Writes loss, mse, vb
 * [N] to the device (read them only when logging). */
typedef struct digcl_diffusion_loss_args {
    int N;
    int channels;     /* C */
    size_t hw;        /* H * W */
    cl_mem x_start;   /* [N, C, H, W] */
    cl_mem x_t;       /* [N, C, H, W] */
    cl_mem t;         /* [N] int32 */
    cl_mem noise;     /* [N, C, H, W] */
    cl_mem model_out; /* [N, 2C or C, H, W] */
    cl_mem loss;      /* [N] out */
    cl_mem mse;       /* [N] out */
    cl_mem vb;        /* [N] out (zeros without learn_sigma) */
    cl_mem dout;      /* [N, 2C or C, H, W] out */
} digcl_diffusion_loss_args;
void digcl_diffusion_training_loss(digcl_diffusion *diffusion,
                                   const digcl_diffusion_loss_args *args);

/* ------------------------------------------------------------ sampling */

typedef enum digcl_sampler_kind {
    DIGCL_SAMPLER_DDPM = 0,    /* p_sample_loop, respaced */
    DIGCL_SAMPLER_DDIM = 1,    /* ddim_sample_loop, respaced, eta */
    DIGCL_SAMPLER_DPMPP_2M = 2 /* DPM-Solver++ 2M on eps, the same discrete schedule */
} digcl_sampler_kind;

typedef enum digcl_cfg_channels {
    DIGCL_CFG_AUTO = 0, /* upstream's first-3-channels quirk when C == 4, else all */
    DIGCL_CFG_FIRST3 = 1,
    DIGCL_CFG_ALL = 2
} digcl_cfg_channels;

typedef struct digcl_sampler_options {
    digcl_sampler_kind kind;
    int steps;       /* respaced steps (space_timesteps(1000, "steps")), 1..1000 */
    float eta;       /* DDIM */
    float cfg_scale; /* 1: no guidance (batch N); else batch 2N [cond; null] */
    digcl_cfg_channels cfg_channels;
} digcl_sampler_options;

/* The respaced timesteps (ascending original indices) kept for `steps`, as
 * upstream's space_timesteps(1000, str(steps)); returns their count. */
int digcl_diffusion_respaced_timesteps(int steps, int *timesteps /* [steps] */);

typedef struct digcl_sampler digcl_sampler;

/* Plans a sampler for `images` rows per call (the model is prepared for
 * images or 2 images rows in inference mode here, once). */
digcl_sampler *digcl_sampler_create(digcl_diffusion *diffusion, digcl_model *model,
                                    const digcl_sampler_options *options, int images);
void digcl_sampler_release(digcl_sampler *sampler);
int digcl_sampler_step_count(const digcl_sampler *sampler); /* network evaluations per image row */

/* Where the noise comes from: the RNG (x_T from DIGCL_RNG_SAMPLER_INIT, the
 * noise of step s from DIGCL_RNG_SAMPLER with step = s, both with sample =
 * first_image + row, so image i depends only on (seed, i)), or a host array
 * (checking a port: x_T [N, C, H, W] and z [S, N, C, H, W], step 0 first). */
typedef struct digcl_sampler_noise {
    uint64_t seed;
    uint64_t first_image;
    const float *x_T; /* NULL: draw */
    const float *z;   /* NULL: draw */
} digcl_sampler_noise;

/* Progress callback after each step (NULL: none). */
typedef void (*digcl_sampler_progress)(int step, int steps, void *user);

/* Runs the whole loop for `images` rows with labels y (host, [images]) and
 * writes the final sample x0 [images, C, H, W] to the host. */
void digcl_sampler_run(digcl_sampler *sampler, const int32_t *labels,
                       const digcl_sampler_noise *noise, float *x0, digcl_sampler_progress progress,
                       void *user);

#endif
