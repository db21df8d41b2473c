/* digcl/diffusion.h: upstream's Gaussian diffusion (ADM/DiT
 * gaussian_diffusion.py, respace.py): the linear-beta schedule, q_sample, the
 * training loss (MSE on epsilon + the variational bound on the detached mean
 * with LEARNED_RANGE variance) and its gradient with respect to the model
 * output, and the samplers (DDPM ancestral, DDIM, DPM-Solver++ 2M) with
 * classifier-free guidance. Tables in double on the host, used as float32
 * on the device (as upstream casts them). Spec: docs/MODEL.md ("Diffusion",
 * "Sampling"); kernels in cl/diffusion.cl.
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
int digcl_diffusion_learn_sigma(const digcl_diffusion *diffusion);

/* The tables of gaussian_diffusion.py's __init__ for `count` betas (count in
 * [1, 1000]; entries from count on are zero). With one beta the clipped
 * posterior log-variance is undefined upstream; here it is log(betas[0]). */
void digcl_diffusion_tables_from_betas(const double *betas, int count,
                                       digcl_diffusion_tables *tables);

/* A respaced process (respace.py SpacedDiffusion): the kept original indices
 * timestep_map[i] (ascending), betas[i] = 1 - acp[map[i]] / acp[map[i - 1]]
 * (acp[map[-1]] = 1) and the tables derived from them. steps = 1000 is the
 * base process. */
typedef struct digcl_diffusion_schedule {
    int count;
    int timestep_map[DIGCL_DIFFUSION_STEPS];
    digcl_diffusion_tables tables;
} digcl_diffusion_schedule;
void digcl_diffusion_schedule_build(int steps, digcl_diffusion_schedule *schedule);

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
 * upstream's space_timesteps(1000, str(steps)) (Python's round-half-even);
 * returns their count (= steps). steps outside [1, 1000] is fatal. */
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

/* Progress callback after each step has finished on the device (NULL: none,
 * and the loop never waits for the device until x0 is read). */
typedef void (*digcl_sampler_progress)(int step, int steps, void *user);

/* Runs the whole loop for `images` rows with labels y (host, [images]) and
 * writes the final sample x0 [images, C, H, W] to the host. */
void digcl_sampler_run(digcl_sampler *sampler, const int32_t *labels,
                       const digcl_sampler_noise *noise, float *x0, digcl_sampler_progress progress,
                       void *user);

/* ------------------------------------------------------------ sampler building blocks
 * The device pieces of one sampling step (used by digcl_sampler_run; public
 * for tests). eps is read from model_out [rows, out_channels, H, W] channels
 * 0..C-1, the variance interpolation v from channels C..2C-1. */

/* guided[n] = uncond + scale (cond - uncond) for channels c < guided_channels
 * and cond for the others, where cond = out[n], uncond = out[rows + n]
 * (the batch is [cond; null]). */
void digcl_cfg_combine(digcl_context *ctx, int rows, int out_channels, size_t hw,
                       int guided_channels, float scale,
                       cl_mem out,     /* [2 rows, out_channels, H, W] */
                       cl_mem guided); /* [rows, out_channels, H, W] */

/* The guided channel count of a choice for C eps channels. */
int digcl_cfg_guided_channels(digcl_cfg_channels choice, int channels);

/* One ancestral step in place: x = coef_x x + coef_eps eps + std z, with
 * std = exp(0.5 (min_log + frac log_range)), frac = (v + 1) / 2 (upstream's
 * frac max_log + (1 - frac) min_log with log_range = max_log - min_log taken
 * in double) when learned_range, else std = fixed_std; no noise term when add_noise is 0
 * (z is then not read). p_sample and ddim_sample are both of this form. */
typedef struct digcl_ancestral_step {
    float coef_x, coef_eps;
    int learned_range;
    float min_log, log_range; /* learned_range */
    float fixed_std;          /* otherwise */
    int add_noise;
} digcl_ancestral_step;
void digcl_sampler_ancestral_step(digcl_context *ctx, int rows, int channels, size_t hw,
                                  int out_channels, const digcl_ancestral_step *step,
                                  cl_mem x,         /* [rows, C, H, W] in/out */
                                  cl_mem model_out, /* [rows, out_channels, H, W] */
                                  cl_mem z);        /* [rows, C, H, W] */

/* One DPM-Solver++ 2M update in place: d = inv_alpha x - sigma_over_alpha eps
 * (the data prediction), x = coef_x x + coef_d d + coef_d_prev d_prev,
 * d_prev = d. */
typedef struct digcl_dpmpp_step {
    float inv_alpha, sigma_over_alpha;
    float coef_x, coef_d, coef_d_prev;
} digcl_dpmpp_step;
void digcl_sampler_dpmpp_step(digcl_context *ctx, int rows, int channels, size_t hw,
                              int out_channels, const digcl_dpmpp_step *step,
                              cl_mem x,         /* [rows, C, H, W] in/out */
                              cl_mem model_out, /* [rows, out_channels, H, W] */
                              cl_mem d_prev);   /* [rows, C, H, W] in/out */

/* The coefficients of executed step s (0 = the first, at the highest t) of a
 * sampler over `schedule` (respaced): from the double tables, rounded to float
 * once. */
void digcl_ddpm_step_coefficients(const digcl_diffusion_schedule *schedule, int learn_sigma, int s,
                                  digcl_ancestral_step *step);
void digcl_ddim_step_coefficients(const digcl_diffusion_schedule *schedule, double eta, int s,
                                  digcl_ancestral_step *step);
void digcl_dpmpp_step_coefficients(const digcl_diffusion_schedule *schedule, int s,
                                   digcl_dpmpp_step *step);
#endif
