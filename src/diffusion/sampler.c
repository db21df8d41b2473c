/* sampler.c: DDPM (p_sample_loop), DDIM (ddim_sample_loop) and DPM-Solver++ 2M
 * on a respaced schedule, with classifier-free guidance, planned once and run
 * on the device (digcl/diffusion.h; maths in docs/MODEL.md "Sampling"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion_internal.h"

/* ------------------------------------------------------------ coefficients */

static int respaced_index(const digcl_diffusion_schedule *schedule, int s) {
    if (s < 0 || s >= schedule->count)
        digcl_fatal("sampler: step %d outside [0, %d)", s, schedule->count);
    return schedule->count - 1 - s;
}

void digcl_ddpm_step_coefficients(const digcl_diffusion_schedule *schedule, int learn_sigma, int s,
                                  digcl_ancestral_step *step) {
    const digcl_diffusion_tables *tb = &schedule->tables;
    const int i = respaced_index(schedule, s);
    const double acp = tb->alphas_cumprod[i];
    const double coef1 = tb->posterior_mean_coef1[i], coef2 = tb->posterior_mean_coef2[i];
    /* mean = coef1 (sqrt(1/acp) x - sqrt(1/acp - 1) eps) + coef2 x */
    memset(step, 0, sizeof *step);
    step->coef_x = (float)(coef1 * sqrt(1.0 / acp) + coef2);
    step->coef_eps = (float)(-coef1 * sqrt(1.0 / acp - 1.0));
    step->learned_range = learn_sigma != 0;
    step->min_log = (float)tb->posterior_log_variance_clipped[i];
    step->log_range = (float)(log(tb->betas[i]) - tb->posterior_log_variance_clipped[i]);
    /* FIXED_LARGE: variance append(posterior_variance[1], betas[1:]) */
    const double fixed =
        i == 0 ? (schedule->count > 1 ? tb->posterior_variance[1] : tb->betas[0]) : tb->betas[i];
    step->fixed_std = (float)sqrt(fixed);
    step->add_noise = i != 0;
}

void digcl_ddim_step_coefficients(const digcl_diffusion_schedule *schedule, double eta, int s,
                                  digcl_ancestral_step *step) {
    const digcl_diffusion_tables *tb = &schedule->tables;
    const int i = respaced_index(schedule, s);
    const double acp = tb->alphas_cumprod[i], acp_prev = tb->alphas_cumprod_prev[i];
    const double sigma = eta * sqrt((1.0 - acp_prev) / (1.0 - acp)) * sqrt(1.0 - acp / acp_prev);
    /* x = sqrt(acp_prev) pred_x0 + sqrt(1 - acp_prev - sigma^2) eps + sigma z */
    memset(step, 0, sizeof *step);
    step->coef_x = (float)(sqrt(acp_prev) * sqrt(1.0 / acp));
    step->coef_eps = (float)(sqrt(fmax(1.0 - acp_prev - sigma * sigma, 0.0)) -
                             sqrt(acp_prev) * sqrt(1.0 / acp - 1.0));
    step->learned_range = 0;
    step->fixed_std = (float)sigma;
    step->add_noise = i != 0 && sigma > 0.0;
}

static void dpm_point(const digcl_diffusion_tables *tb, int i, double *alpha, double *sigma,
                      double *lambda) {
    *alpha = sqrt(tb->alphas_cumprod[i]);
    *sigma = sqrt(1.0 - tb->alphas_cumprod[i]);
    *lambda = log(*alpha / *sigma);
}

void digcl_dpmpp_step_coefficients(const digcl_diffusion_schedule *schedule, int s,
                                   digcl_dpmpp_step *step) {
    const digcl_diffusion_tables *tb = &schedule->tables;
    const int i = respaced_index(schedule, s), S = schedule->count;
    double alpha, sigma, lambda;
    dpm_point(tb, i, &alpha, &sigma, &lambda);
    memset(step, 0, sizeof *step);
    step->inv_alpha = (float)(1.0 / alpha);
    step->sigma_over_alpha = (float)(sigma / alpha);
    if (s == S - 1) { /* the last step goes to sigma = 0: x = d (first order) */
        step->coef_d = 1.0f;
        return;
    }
    double alpha_next, sigma_next, lambda_next;
    dpm_point(tb, i - 1, &alpha_next, &sigma_next, &lambda_next);
    const double h = lambda_next - lambda, phi = expm1(-h); /* e^{-h} - 1 */
    step->coef_x = (float)(sigma_next / sigma);
    if (s == 0) {
        step->coef_d = (float)(-alpha_next * phi);
        return;
    }
    double alpha_prev, sigma_prev, lambda_prev;
    dpm_point(tb, i + 1, &alpha_prev, &sigma_prev, &lambda_prev);
    const double r = (lambda - lambda_prev) / h;
    step->coef_d = (float)(-alpha_next * phi * (1.0 + 1.0 / (2.0 * r)));
    step->coef_d_prev = (float)(alpha_next * phi / (2.0 * r));
}

/* ------------------------------------------------------------ launchers */

static size_t round_up(size_t value, size_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

static void launch_1d(digcl_context *ctx, cl_kernel kernel, const char *label, size_t count) {
    size_t global = round_up(count, DIFFUSION_GROUP), local = DIFFUSION_GROUP;
    digcl_launch(ctx, kernel, label, 1, &global, &local);
}

int digcl_cfg_guided_channels(digcl_cfg_channels choice, int channels) {
    if (choice == DIGCL_CFG_FIRST3) return channels < 3 ? channels : 3;
    if (choice == DIGCL_CFG_ALL) return channels;
    return channels == 4 ? 3 : channels;
}

void digcl_cfg_combine(digcl_context *ctx, int rows, int out_channels, size_t hw,
                       int guided_channels, float scale, cl_mem out, cl_mem guided) {
    digcl_diffusion_check_size((size_t)(rows > 0 ? rows : 0), "rows", "cfg_combine");
    digcl_diffusion_check_size((size_t)rows * 2 * (size_t)out_channels * hw,
                               "2 rows * channels * H * W", "cfg_combine");
    cl_kernel kernel = digcl_kernel(ctx, "diffusion", "cfg_combine", "");
    digcl_arg_mem(kernel, 0, out);
    digcl_arg_mem(kernel, 1, guided);
    digcl_arg_int(kernel, 2, rows);
    digcl_arg_int(kernel, 3, out_channels);
    digcl_arg_int(kernel, 4, (int)hw);
    digcl_arg_int(kernel, 5, guided_channels);
    digcl_arg_float(kernel, 6, scale);
    launch_1d(ctx, kernel, "cfg_combine", (size_t)rows * out_channels * hw);
}

void digcl_sampler_ancestral_step(digcl_context *ctx, int rows, int channels, size_t hw,
                                  int out_channels, const digcl_ancestral_step *step, cl_mem x,
                                  cl_mem model_out, cl_mem z) {
    digcl_diffusion_check_size((size_t)(rows > 0 ? rows : 0), "rows", "ancestral_step");
    digcl_diffusion_check_size((size_t)rows * (size_t)out_channels * hw, "rows * channels * H * W",
                               "ancestral_step");
    if (step->learned_range && out_channels < 2 * channels)
        digcl_fatal("ancestral_step: learned variance needs 2C = %d output channels, got %d",
                    2 * channels, out_channels);
    cl_kernel kernel =
        digcl_kernel(ctx, "diffusion", "ancestral_step",
                     step->learned_range ? "-DLEARNED_RANGE=1" : "-DLEARNED_RANGE=0");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, model_out);
    digcl_arg_mem(kernel, 2, step->add_noise ? z : x); /* z is not read without noise */
    digcl_arg_int(kernel, 3, rows);
    digcl_arg_int(kernel, 4, channels);
    digcl_arg_int(kernel, 5, (int)hw);
    digcl_arg_int(kernel, 6, out_channels);
    digcl_arg_float(kernel, 7, step->coef_x);
    digcl_arg_float(kernel, 8, step->coef_eps);
    digcl_arg_float(kernel, 9, step->min_log);
    digcl_arg_float(kernel, 10, step->log_range);
    digcl_arg_float(kernel, 11, step->fixed_std);
    digcl_arg_int(kernel, 12, step->add_noise);
    launch_1d(ctx, kernel, "ancestral_step", (size_t)rows * channels * hw);
}

void digcl_sampler_dpmpp_step(digcl_context *ctx, int rows, int channels, size_t hw,
                              int out_channels, const digcl_dpmpp_step *step, cl_mem x,
                              cl_mem model_out, cl_mem d_prev) {
    digcl_diffusion_check_size((size_t)(rows > 0 ? rows : 0), "rows", "dpmpp_step");
    digcl_diffusion_check_size((size_t)rows * (size_t)out_channels * hw, "rows * channels * H * W",
                               "dpmpp_step");
    cl_kernel kernel = digcl_kernel(ctx, "diffusion", "dpmpp_step", "");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, model_out);
    digcl_arg_mem(kernel, 2, d_prev);
    digcl_arg_int(kernel, 3, rows);
    digcl_arg_int(kernel, 4, channels);
    digcl_arg_int(kernel, 5, (int)hw);
    digcl_arg_int(kernel, 6, out_channels);
    digcl_arg_float(kernel, 7, step->inv_alpha);
    digcl_arg_float(kernel, 8, step->sigma_over_alpha);
    digcl_arg_float(kernel, 9, step->coef_x);
    digcl_arg_float(kernel, 10, step->coef_d);
    digcl_arg_float(kernel, 11, step->coef_d_prev);
    launch_1d(ctx, kernel, "dpmpp_step", (size_t)rows * channels * hw);
}

/* ------------------------------------------------------------ the sampler */

struct digcl_sampler {
    digcl_context *ctx;
    digcl_model *model;
    digcl_sampler_options options;
    digcl_diffusion_schedule *schedule;
    int images, model_rows, guided, guided_channels;
    int channels, out_channels, null_class;
    size_t hw, chw;
    digcl_ancestral_step *ancestral; /* [steps], DDPM and DDIM */
    digcl_dpmpp_step *dpmpp;         /* [steps], DPM-Solver++ */
    int32_t *labels;                 /* [model_rows] host staging */
    digcl_buffer x_in;   /* [model_rows, C, H, W]: the state x in rows 0..N-1, a copy after */
    digcl_buffer t;      /* [model_rows] float timestep */
    digcl_buffer y;      /* [model_rows] int32 labels, [labels; null] */
    digcl_buffer out;    /* [model_rows, C_out, H, W] */
    digcl_buffer mixed;  /* [N, C_out, H, W] guided output (guidance only) */
    digcl_buffer z;      /* [N, C, H, W] step noise (stochastic samplers) */
    digcl_buffer d_prev; /* [N, C, H, W] previous data prediction (DPM-Solver++) */
};

static void check_options(const digcl_sampler_options *o, int images) {
    if (o->kind != DIGCL_SAMPLER_DDPM && o->kind != DIGCL_SAMPLER_DDIM &&
        o->kind != DIGCL_SAMPLER_DPMPP_2M)
        digcl_fatal("sampler: unknown sampler kind %d", (int)o->kind);
    if (o->steps < 1 || o->steps > DIGCL_DIFFUSION_STEPS)
        digcl_fatal("sampler: --steps %d, expected 1 to %d", o->steps, DIGCL_DIFFUSION_STEPS);
    if (!isfinite(o->cfg_scale)) digcl_fatal("sampler: --cfg-scale must be finite");
    if (!(o->eta >= 0.0f) || !isfinite(o->eta))
        digcl_fatal("sampler: --eta must be finite and >= 0");
    if (images < 1) digcl_fatal("sampler: %d images per call, expected at least 1", images);
}

static void plan_steps(digcl_sampler *s, int learn_sigma) {
    const int S = s->schedule->count;
    s->ancestral = calloc((size_t)S, sizeof *s->ancestral);
    s->dpmpp = calloc((size_t)S, sizeof *s->dpmpp);
    if (!s->ancestral || !s->dpmpp) digcl_fatal("sampler: out of host memory");
    for (int k = 0; k < S; ++k) {
        if (s->options.kind == DIGCL_SAMPLER_DDPM)
            digcl_ddpm_step_coefficients(s->schedule, learn_sigma, k, &s->ancestral[k]);
        else if (s->options.kind == DIGCL_SAMPLER_DDIM)
            digcl_ddim_step_coefficients(s->schedule, s->options.eta, k, &s->ancestral[k]);
        else digcl_dpmpp_step_coefficients(s->schedule, k, &s->dpmpp[k]);
    }
}

static int sampler_is_stochastic(const digcl_sampler *s) {
    if (s->options.kind == DIGCL_SAMPLER_DPMPP_2M) return 0;
    for (int k = 0; k < s->schedule->count; ++k)
        if (s->ancestral[k].add_noise) return 1;
    return 0;
}

digcl_sampler *digcl_sampler_create(digcl_diffusion *diffusion, digcl_model *model,
                                    const digcl_sampler_options *options, int images) {
    check_options(options, images);
    const digcl_model_config *c = digcl_model_get_config(model);
    if (c->learn_sigma != diffusion->learn_sigma)
        digcl_fatal("sampler: the model has learn_sigma %d but the diffusion was made with %d",
                    c->learn_sigma, diffusion->learn_sigma);
    digcl_sampler *s = calloc(1, sizeof *s);
    s->schedule = malloc(sizeof *s->schedule);
    if (!s || !s->schedule) digcl_fatal("sampler: out of host memory");
    s->ctx = diffusion->ctx;
    s->model = model;
    s->options = *options;
    digcl_diffusion_schedule_build(options->steps, s->schedule);
    s->images = images;
    s->guided = options->cfg_scale != 1.0f;
    s->model_rows = s->guided ? 2 * images : images;
    s->channels = c->in_channels;
    s->out_channels = c->out_channels;
    s->guided_channels = digcl_cfg_guided_channels(options->cfg_channels, c->in_channels);
    s->null_class = c->num_classes;
    s->hw = (size_t)c->input_size * c->input_size;
    s->chw = s->hw * c->in_channels;
    digcl_diffusion_check_size((size_t)s->model_rows * s->out_channels * s->hw,
                               "rows * C_out * H * W", "sampler");
    plan_steps(s, c->learn_sigma);
    s->labels = malloc(sizeof *s->labels * (size_t)s->model_rows);
    if (!s->labels) digcl_fatal("sampler: out of host memory");
    const size_t f = sizeof(float), n = (size_t)images;
    s->x_in = digcl_buffer_create(s->ctx, f * s->model_rows * s->chw, "sampler x");
    s->t = digcl_buffer_create(s->ctx, f * s->model_rows, "sampler t");
    s->y = digcl_buffer_create(s->ctx, sizeof(int32_t) * s->model_rows, "sampler y");
    s->out = digcl_buffer_create(s->ctx, f * s->model_rows * s->out_channels * s->hw,
                                 "sampler model out");
    if (s->guided)
        s->mixed =
            digcl_buffer_create(s->ctx, f * n * s->out_channels * s->hw, "sampler guided out");
    if (sampler_is_stochastic(s))
        s->z = digcl_buffer_create(s->ctx, f * n * s->chw, "sampler noise");
    if (options->kind == DIGCL_SAMPLER_DPMPP_2M)
        s->d_prev = digcl_buffer_create(s->ctx, f * n * s->chw, "sampler data prediction");
    digcl_model_prepare(model, s->model_rows, DIGCL_MODE_INFERENCE);
    return s;
}

void digcl_sampler_release(digcl_sampler *s) {
    if (!s) return;
    digcl_buffer *all[] = {&s->x_in, &s->t, &s->y, &s->out, &s->mixed, &s->z, &s->d_prev};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]->mem) digcl_buffer_release(all[i]);
    free(s->ancestral);
    free(s->dpmpp);
    free(s->labels);
    free(s->schedule);
    free(s);
}

int digcl_sampler_step_count(const digcl_sampler *s) { return s->schedule->count; }

/* x_T into rows 0..N-1 of x_in; the labels [y; null] into y. */
static void start_run(digcl_sampler *s, const int32_t *labels, const digcl_sampler_noise *noise) {
    const size_t n = (size_t)s->images;
    /* The model may have run another batch since create (training steps
     * between EMA sample grids): select this sampler's rows again. */
    digcl_model_prepare(s->model, s->model_rows, DIGCL_MODE_INFERENCE);
    for (size_t i = 0; i < n; ++i) {
        if (labels[i] < 0 || labels[i] > s->null_class)
            digcl_fatal("sampler: label[%zu] = %d outside [0, %d]", i, (int)labels[i],
                        s->null_class);
        s->labels[i] = labels[i];
        if (s->guided) s->labels[n + i] = s->null_class;
    }
    digcl_write(s->ctx, s->y.mem, 0, sizeof(int32_t) * s->model_rows, s->labels);
    if (noise->x_T) {
        digcl_write(s->ctx, s->x_in.mem, 0, sizeof(float) * n * s->chw, noise->x_T);
    } else {
        const digcl_rng_key key = {noise->seed, DIGCL_RNG_SAMPLER_INIT};
        digcl_rng_fill_normal(s->ctx, key, 0, noise->first_image, n, s->chw, s->x_in.mem);
    }
    if (s->d_prev.mem) digcl_fill_f32(s->ctx, s->d_prev.mem, 0, n * s->chw, 0.0f);
}

static void fill_step_noise(digcl_sampler *s, const digcl_sampler_noise *noise, int k) {
    const size_t count = (size_t)s->images * s->chw;
    if (noise->z) {
        digcl_write(s->ctx, s->z.mem, 0, sizeof(float) * count, noise->z + (size_t)k * count);
    } else {
        const digcl_rng_key key = {noise->seed, DIGCL_RNG_SAMPLER};
        digcl_rng_fill_normal(s->ctx, key, (uint64_t)k, noise->first_image, (size_t)s->images,
                              s->chw, s->z.mem);
    }
}

/* The network on [x; x] (guided) or x at original timestep index t. */
static cl_mem evaluate_model(digcl_sampler *s, int k) {
    const size_t bytes = sizeof(float) * (size_t)s->images * s->chw;
    const int i = s->schedule->count - 1 - k;
    if (s->guided) digcl_copy(s->ctx, s->x_in.mem, 0, s->x_in.mem, bytes, bytes);
    digcl_fill_f32(s->ctx, s->t.mem, 0, (size_t)s->model_rows, (float)s->schedule->timestep_map[i]);
    const digcl_model_inputs inputs = {s->x_in.mem, s->t.mem, s->y.mem};
    digcl_model_forward(s->model, &inputs, s->out.mem);
    if (!s->guided) return s->out.mem;
    digcl_cfg_combine(s->ctx, s->images, s->out_channels, s->hw, s->guided_channels,
                      s->options.cfg_scale, s->out.mem, s->mixed.mem);
    return s->mixed.mem;
}

void digcl_sampler_run(digcl_sampler *s, const int32_t *labels, const digcl_sampler_noise *noise,
                       float *x0, digcl_sampler_progress progress, void *user) {
    start_run(s, labels, noise);
    const int S = s->schedule->count;
    for (int k = 0; k < S; ++k) {
        cl_mem eps = evaluate_model(s, k);
        if (s->options.kind == DIGCL_SAMPLER_DPMPP_2M) {
            digcl_sampler_dpmpp_step(s->ctx, s->images, s->channels, s->hw, s->out_channels,
                                     &s->dpmpp[k], s->x_in.mem, eps, s->d_prev.mem);
        } else {
            if (s->ancestral[k].add_noise) fill_step_noise(s, noise, k);
            digcl_sampler_ancestral_step(s->ctx, s->images, s->channels, s->hw, s->out_channels,
                                         &s->ancestral[k], s->x_in.mem, eps, s->z.mem);
        }
        if (progress) { /* a progress bar shows finished steps: one wait per step */
            digcl_finish(s->ctx);
            progress(k + 1, S, user);
        }
    }
    digcl_read(s->ctx, s->x_in.mem, 0, sizeof(float) * (size_t)s->images * s->chw, x0);
}
