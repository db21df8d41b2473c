/* schedule.c: the 1000-step linear-beta process and its respacing in double
 * on the host (upstream gaussian_diffusion.py __init__, respace.py), and the
 * float tables the kernels index by t (docs/MODEL.md "Diffusion"). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "diffusion_internal.h"

/* np.linspace(1e-4, 0.02, 1000): start + i * step, the last one exactly stop. */
static void linear_betas(double *betas) {
    const double start = 1e-4, stop = 0.02;
    const double step = (stop - start) / (DIGCL_DIFFUSION_STEPS - 1);
    for (int i = 0; i < DIGCL_DIFFUSION_STEPS; ++i) betas[i] = start + i * step;
    betas[DIGCL_DIFFUSION_STEPS - 1] = stop;
}

void digcl_diffusion_tables_from_betas(const double *betas, int count, digcl_diffusion_tables *tb) {
    if (count < 1 || count > DIGCL_DIFFUSION_STEPS)
        digcl_fatal("diffusion tables: %d betas, expected 1 to %d", count, DIGCL_DIFFUSION_STEPS);
    memset(tb, 0, sizeof *tb);
    double cumprod = 1.0;
    for (int i = 0; i < count; ++i) {
        tb->betas[i] = betas[i];
        tb->alphas_cumprod_prev[i] = cumprod;
        cumprod *= 1.0 - betas[i];
        tb->alphas_cumprod[i] = cumprod;
    }
    for (int i = 0; i < count; ++i) {
        const double acp = tb->alphas_cumprod[i], acp_prev = tb->alphas_cumprod_prev[i];
        tb->posterior_variance[i] = betas[i] * (1.0 - acp_prev) / (1.0 - acp);
        tb->posterior_mean_coef1[i] = betas[i] * sqrt(acp_prev) / (1.0 - acp);
        tb->posterior_mean_coef2[i] = (1.0 - acp_prev) * sqrt(1.0 - betas[i]) / (1.0 - acp);
    }
    /* log(append(posterior_variance[1], posterior_variance[1:])) */
    for (int i = 1; i < count; ++i)
        tb->posterior_log_variance_clipped[i] = log(tb->posterior_variance[i]);
    tb->posterior_log_variance_clipped[0] =
        count > 1 ? log(tb->posterior_variance[1]) : log(betas[0]);
}

int digcl_diffusion_respaced_timesteps(int steps, int *timesteps) {
    if (steps < 1 || steps > DIGCL_DIFFUSION_STEPS)
        digcl_fatal("respacing: %d steps, expected 1 to %d", steps, DIGCL_DIFFUSION_STEPS);
    /* One section: frac_stride = (1000 - 1) / (steps - 1), cur_idx summed as
     * upstream does, Python's round() = round half to even (rint). */
    const double stride = steps <= 1 ? 1.0 : (double)(DIGCL_DIFFUSION_STEPS - 1) / (steps - 1);
    double index = 0.0;
    for (int k = 0; k < steps; ++k) {
        timesteps[k] = (int)rint(index);
        index += stride;
    }
    return steps; /* ascending and distinct: the stride is at least 1 */
}

void digcl_diffusion_schedule_build(int steps, digcl_diffusion_schedule *schedule) {
    double base_betas[DIGCL_DIFFUSION_STEPS], betas[DIGCL_DIFFUSION_STEPS];
    linear_betas(base_betas);
    digcl_diffusion_tables *base = malloc(sizeof *base);
    if (!base) digcl_fatal("diffusion schedule: out of host memory");
    digcl_diffusion_tables_from_betas(base_betas, DIGCL_DIFFUSION_STEPS, base);
    memset(schedule, 0, sizeof *schedule);
    schedule->count = digcl_diffusion_respaced_timesteps(steps, schedule->timestep_map);
    double last = 1.0;
    for (int i = 0; i < schedule->count; ++i) {
        const double acp = base->alphas_cumprod[schedule->timestep_map[i]];
        betas[i] = 1.0 - acp / last;
        last = acp;
    }
    free(base);
    digcl_diffusion_tables_from_betas(betas, schedule->count, &schedule->tables);
}

/* ------------------------------------------------------------ device tables */

static void upload_float_tables(digcl_diffusion *d) {
    const digcl_diffusion_tables *tb = &d->schedule.tables;
    float *host = malloc(sizeof(float) * DIFFUSION_TABLE_COUNT * DIGCL_DIFFUSION_STEPS);
    if (!host) digcl_fatal("diffusion tables: out of host memory");
    for (int t = 0; t < DIGCL_DIFFUSION_STEPS; ++t) {
        const double acp = tb->alphas_cumprod[t];
        float *row = host + t;
        row[TABLE_SQRT_ACP * DIGCL_DIFFUSION_STEPS] = (float)sqrt(acp);
        row[TABLE_SQRT_ONE_MINUS_ACP * DIGCL_DIFFUSION_STEPS] = (float)sqrt(1.0 - acp);
        const double recip = sqrt(1.0 / acp), recipm1 = sqrt(1.0 / acp - 1.0);
        const double min_log = tb->posterior_log_variance_clipped[t];
        row[TABLE_SQRT_RECIP_ACP * DIGCL_DIFFUSION_STEPS] = (float)recip;
        row[TABLE_SQRT_RECIPM1_ACP * DIGCL_DIFFUSION_STEPS] = (float)recipm1;
        row[TABLE_SQRT_RECIP_ACP_LO * DIGCL_DIFFUSION_STEPS] =
            (float)(recip - (double)(float)recip);
        row[TABLE_SQRT_RECIPM1_ACP_LO * DIGCL_DIFFUSION_STEPS] =
            (float)(recipm1 - (double)(float)recipm1);
        row[TABLE_INV_VARIANCE * DIGCL_DIFFUSION_STEPS] = (float)exp(-min_log);
        row[TABLE_INV_STD * DIGCL_DIFFUSION_STEPS] = (float)exp(-0.5 * min_log);
        row[TABLE_COEF1 * DIGCL_DIFFUSION_STEPS] = (float)tb->posterior_mean_coef1[t];
        row[TABLE_COEF2 * DIGCL_DIFFUSION_STEPS] = (float)tb->posterior_mean_coef2[t];
        row[TABLE_POSTERIOR_LOG_VARIANCE * DIGCL_DIFFUSION_STEPS] =
            (float)tb->posterior_log_variance_clipped[t];
        row[TABLE_LOG_RANGE * DIGCL_DIFFUSION_STEPS] =
            (float)(log(tb->betas[t]) - tb->posterior_log_variance_clipped[t]);
    }
    const size_t bytes = sizeof(float) * DIFFUSION_TABLE_COUNT * DIGCL_DIFFUSION_STEPS;
    d->device_tables = digcl_buffer_create(d->ctx, bytes, "diffusion tables");
    digcl_write(d->ctx, d->device_tables.mem, 0, bytes, host);
    free(host);
}

digcl_diffusion *digcl_diffusion_create(digcl_context *ctx, int learn_sigma) {
    digcl_diffusion *d = calloc(1, sizeof *d);
    if (!d) digcl_fatal("diffusion: out of host memory");
    d->ctx = ctx;
    d->learn_sigma = learn_sigma != 0;
    digcl_diffusion_schedule_build(DIGCL_DIFFUSION_STEPS, &d->schedule);
    upload_float_tables(d);
    return d;
}

void digcl_diffusion_release(digcl_diffusion *diffusion) {
    if (!diffusion) return;
    digcl_buffer_release(&diffusion->device_tables);
    free(diffusion);
}

const digcl_diffusion_tables *digcl_diffusion_get_tables(const digcl_diffusion *diffusion) {
    return &diffusion->schedule.tables;
}

int digcl_diffusion_learn_sigma(const digcl_diffusion *diffusion) { return diffusion->learn_sigma; }
