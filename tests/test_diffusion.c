/* The diffusion maths (digcl/diffusion.h): schedule tables and respacing
 * against the float64 PyTorch port (tests/reference/diffusion_reference.py,
 * committed fixture diffusion_terms.safetensors); the C double oracle of the
 * loss against the port and against central finite differences; the
 * q_sample and training-loss kernels against both (t = 0 and t = 999
 * included); the sampler step kernels and the CFG combine against their
 * double oracles. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/diffusion.h"
#include "digcl/safetensors.h"
#include "digcl/ref/diffusion.h"
#include "test_util.h"

#define TERMS_FIXTURE "tests/reference/fixtures_committed/diffusion_terms.safetensors"

static const digcl_safetensors *terms_file(void) {
    static digcl_safetensors *st;
    if (!st) st = digcl_st_open_or_die(TERMS_FIXTURE);
    return st;
}

static const digcl_st_tensor *find(const digcl_safetensors *st, const char *name) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    if (!t) fail_msg("%s: tensor '%s' missing", st->label, name);
    return t;
}

static double *read_doubles(const digcl_safetensors *st, const char *name, size_t *count) {
    const digcl_st_tensor *t = find(st, name);
    double *out = malloc(t->numel * sizeof *out);
    if (t->dtype == DIGCL_ST_F64) {
        memcpy(out, t->data, t->numel * sizeof *out);
    } else {
        float *f = malloc(t->numel * sizeof *f);
        digcl_st_error err;
        if (digcl_st_read_f32(st, t, f, &err) != 0) fail_msg("%s", err.message);
        for (uint64_t i = 0; i < t->numel; ++i) out[i] = f[i];
        free(f);
    }
    if (count) *count = (size_t)t->numel;
    return out;
}

static int64_t *read_ints(const digcl_safetensors *st, const char *name, size_t *count) {
    const digcl_st_tensor *t = find(st, name);
    int64_t *out = malloc(t->numel * sizeof *out);
    digcl_st_error err;
    if (digcl_st_read_i64(st, t, out, &err) != 0) fail_msg("%s", err.message);
    if (count) *count = (size_t)t->numel;
    return out;
}

static float *narrow(const double *x, size_t n) {
    float *out = malloc(n * sizeof *out);
    for (size_t i = 0; i < n; ++i) out[i] = (float)x[i];
    return out;
}

static cl_mem upload_ints(const int32_t *x, size_t n) {
    digcl_buffer b = digcl_buffer_create(test_context(), n * sizeof(int32_t), "test ints");
    digcl_write(test_context(), b.mem, 0, n * sizeof(int32_t), x);
    return b.mem;
}

static void assert_rel_close_double(const char *label, const double *got, const double *want,
                                    size_t n, double tolerance) {
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; ++i)
        num += (got[i] - want[i]) * (got[i] - want[i]), den += want[i] * want[i];
    const double error = den > 0 ? sqrt(num / den) : sqrt(num);
    print_message("  %-44s rel L2 %.3e\n", label, error);
    if (!(error < tolerance))
        fail_msg("%s: rel L2 %.3e is not below %.0e", label, error, tolerance);
}

/* ------------------------------------------------------------ schedule */

static void test_schedule_matches_port(void **state) {
    (void)state;
    digcl_diffusion_schedule *base = malloc(sizeof *base);
    digcl_diffusion_schedule_build(DIGCL_DIFFUSION_STEPS, base);
    double *acp = read_doubles(terms_file(), "alphas_cumprod", NULL);
    double *plv = read_doubles(terms_file(), "posterior_log_variance_clipped", NULL);
    assert_rel_close_double("alphas_cumprod", base->tables.alphas_cumprod, acp, 1000, 1e-14);
    assert_rel_close_double("posterior_log_variance_clipped",
                            base->tables.posterior_log_variance_clipped, plv, 1000, 1e-14);
    for (int t = 0; t < 1000; ++t) assert_int_equal(base->timestep_map[t], t);
    size_t count;
    int64_t *sums = read_ints(terms_file(), "respace_sums", &count);
    assert_int_equal(count, 2000);
    int kept[DIGCL_DIFFUSION_STEPS];
    for (int steps = 1; steps <= DIGCL_DIFFUSION_STEPS; ++steps) {
        assert_int_equal(digcl_diffusion_respaced_timesteps(steps, kept), steps);
        int64_t sum = 0, squares = 0;
        for (int k = 0; k < steps; ++k) sum += kept[k], squares += (int64_t)kept[k] * kept[k];
        if (sum != sums[2 * (steps - 1)] || squares != sums[2 * (steps - 1) + 1])
            fail_msg("space_timesteps(1000, \"%d\") differs from the port", steps);
    }
    /* 250 steps: 0, 4, 8, ... 999; respaced betas end at the base's alphas_cumprod */
    digcl_diffusion_schedule *spaced = malloc(sizeof *spaced);
    digcl_diffusion_schedule_build(250, spaced);
    assert_int_equal(spaced->timestep_map[1], 4);
    assert_int_equal(spaced->timestep_map[249], 999);
    assert_true(fabs(spaced->tables.alphas_cumprod[249] - acp[999]) < 1e-15);
    free(sums), free(acp), free(plv), free(base), free(spaced);
}

/* ------------------------------------------------------------ loss */

typedef struct loss_case {
    int learn_sigma, N, channels;
    size_t hw, chw, out_count;
    double *x_start, *x_t, *noise, *model_out;
    int32_t *t;
} loss_case;

static void free_case(loss_case *c) {
    free(c->x_start), free(c->x_t), free(c->noise), free(c->model_out), free(c->t);
}

static loss_case read_case(const char *prefix, int learn_sigma, int channels) {
    loss_case c = {0};
    char name[64];
    size_t n;
    c.learn_sigma = learn_sigma;
    c.channels = channels;
    snprintf(name, sizeof name, "%s.x_start", prefix);
    c.x_start = read_doubles(terms_file(), name, &c.chw);
    snprintf(name, sizeof name, "%s.t", prefix);
    int64_t *t = read_ints(terms_file(), name, &n);
    c.N = (int)n;
    c.chw /= n;
    c.hw = c.chw / (size_t)channels;
    c.t = malloc(n * sizeof *c.t);
    for (size_t i = 0; i < n; ++i) c.t[i] = (int32_t)t[i];
    free(t);
    snprintf(name, sizeof name, "%s.x_t", prefix);
    c.x_t = read_doubles(terms_file(), name, NULL);
    snprintf(name, sizeof name, "%s.noise", prefix);
    c.noise = read_doubles(terms_file(), name, NULL);
    snprintf(name, sizeof name, "%s.model_out", prefix);
    c.model_out = read_doubles(terms_file(), name, &c.out_count);
    return c;
}

typedef struct loss_results {
    double *loss, *mse, *vb, *dout;
} loss_results;

static loss_results ref_loss(const digcl_diffusion_tables *tables, const loss_case *c) {
    loss_results r = {test_zeros((size_t)c->N), test_zeros((size_t)c->N), test_zeros((size_t)c->N),
                      test_zeros(c->out_count)};
    digcl_ref_diffusion_training_loss(tables, c->learn_sigma, c->N, c->channels, c->hw, c->x_start,
                                      c->x_t, c->t, c->noise, c->model_out, r.loss, r.mse, r.vb,
                                      r.dout);
    return r;
}

static void free_results(loss_results *r) {
    free(r->loss), free(r->mse), free(r->vb), free(r->dout);
}

/* Runs q_sample (checked against x_t) and the loss kernel; compares with want. */
static void device_loss(const loss_case *c, const loss_results *want, const char *label,
                        double loss_tol, double dout_tol) {
    digcl_context *ctx = test_context();
    digcl_diffusion *d = digcl_diffusion_create(ctx, c->learn_sigma);
    const size_t count = (size_t)c->N * c->chw;
    float *x0 = narrow(c->x_start, count), *noise = narrow(c->noise, count),
          *xt = narrow(c->x_t, count);
    float *out = narrow(c->model_out, c->out_count);
    cl_mem x0_mem = test_upload(x0, count), noise_mem = test_upload(noise, count);
    cl_mem xt_mem = test_poisoned(count), out_mem = test_upload(out, c->out_count);
    cl_mem t_mem = upload_ints(c->t, (size_t)c->N);
    digcl_diffusion_q_sample(d, c->N, c->chw, x0_mem, t_mem, noise_mem, xt_mem);
    double *xt_want = test_zeros(count);
    digcl_ref_diffusion_q_sample(digcl_diffusion_get_tables(d), c->N, c->chw, c->x_start, c->t,
                                 c->noise, xt_want);
    char name[96];
    snprintf(name, sizeof name, "%s q_sample", label);
    float *xt_got = test_download(xt_mem, count);
    test_assert_close(name, xt_got, xt_want, count, 1e-6);
    digcl_write(ctx, xt_mem, 0, count * sizeof(float), xt); /* the loss on the given x_t */
    cl_mem loss = test_poisoned((size_t)c->N), mse = test_poisoned((size_t)c->N);
    cl_mem vb = test_poisoned((size_t)c->N), dout = test_poisoned(c->out_count);
    digcl_diffusion_loss_args args = {c->N,      c->channels, c->hw, x0_mem, xt_mem, t_mem,
                                      noise_mem, out_mem,     loss,  mse,    vb,     dout};
    digcl_diffusion_training_loss(d, &args);
    float *got = test_download(loss, (size_t)c->N);
    snprintf(name, sizeof name, "%s loss", label);
    test_assert_close(name, got, want->loss, (size_t)c->N, loss_tol);
    free(got);
    got = test_download(mse, (size_t)c->N);
    snprintf(name, sizeof name, "%s mse", label);
    test_assert_close(name, got, want->mse, (size_t)c->N, loss_tol);
    free(got);
    got = test_download(vb, (size_t)c->N);
    if (c->learn_sigma) {
        snprintf(name, sizeof name, "%s vb", label);
        test_assert_close(name, got, want->vb, (size_t)c->N, loss_tol);
        for (int n = 0; n < c->N; ++n) { /* each row on its own, t = 0 and 999 included */
            const double rel = fabs(got[n] - want->vb[n]) / fabs(want->vb[n]);
            print_message("    vb[%d] t=%d %.6e rel %.2e\n", n, c->t[n], want->vb[n], rel);
            if (!(rel < loss_tol)) fail_msg("%s vb[%d] (t = %d) rel %.3e", label, n, c->t[n], rel);
        }
    } else {
        for (int n = 0; n < c->N; ++n) assert_true(got[n] == 0.0f);
    }
    free(got);
    got = test_download(dout, c->out_count);
    snprintf(name, sizeof name, "%s d loss / d model_out", label);
    test_assert_close(name, got, want->dout, c->out_count, dout_tol);
    free(got);
    test_release(x0_mem), test_release(noise_mem), test_release(xt_mem), test_release(out_mem);
    test_release(t_mem), test_release(loss), test_release(mse), test_release(vb),
        test_release(dout);
    free(x0), free(noise), free(xt), free(out), free(xt_want), free(xt_got);
    digcl_diffusion_release(d);
}

static loss_results port_results(const char *prefix) {
    char name[64];
    loss_results r;
    snprintf(name, sizeof name, "%s.loss", prefix);
    r.loss = read_doubles(terms_file(), name, NULL);
    snprintf(name, sizeof name, "%s.mse", prefix);
    r.mse = read_doubles(terms_file(), name, NULL);
    snprintf(name, sizeof name, "%s.vb", prefix);
    r.vb = read_doubles(terms_file(), name, NULL);
    snprintf(name, sizeof name, "%s.dout", prefix);
    r.dout = read_doubles(terms_file(), name, NULL);
    return r;
}

static void check_port_case(const char *prefix, int learn_sigma, int channels) {
    loss_case c = read_case(prefix, learn_sigma, channels);
    digcl_diffusion_schedule *base = malloc(sizeof *base);
    digcl_diffusion_schedule_build(DIGCL_DIFFUSION_STEPS, base);
    loss_results port = port_results(prefix), oracle = ref_loss(&base->tables, &c);
    char label[64];
    /* the port stores float32 values of its float64 results */
    snprintf(label, sizeof label, "%s: C oracle loss vs port", prefix);
    assert_rel_close_double(label, oracle.loss, port.loss, (size_t)c.N, 1e-7);
    snprintf(label, sizeof label, "%s: C oracle dout vs port", prefix);
    assert_rel_close_double(label, oracle.dout, port.dout, c.out_count, 1e-7);
    snprintf(label, sizeof label, "%s device vs port", prefix);
    device_loss(&c, &port, label, 1e-6, 1e-5);
    free_results(&port), free_results(&oracle), free_case(&c), free(base);
}

static void test_loss_matches_port(void **state) {
    (void)state;
    check_port_case("learned", 1, 4);
    check_port_case("fixed", 0, 3);
}

/* Finite differences of the oracle's mean loss with respect to model_out, with
 * the mean detached: mse from the perturbed eps, vb from the frozen eps and the
 * perturbed variance channels. */
typedef struct fd_arg {
    const digcl_diffusion_tables *tables;
    loss_case *c;
    const double *frozen; /* model_out at the expansion point */
} fd_arg;

static double mean_loss(void *p) {
    fd_arg *a = p;
    loss_case *c = a->c;
    loss_results r = ref_loss(a->tables, c);
    double sum = 0.0;
    for (int n = 0; n < c->N; ++n) sum += r.mse[n];
    free_results(&r);
    if (!c->learn_sigma) return sum / c->N;
    double *perturbed = c->model_out, *mixed = malloc(c->out_count * sizeof *mixed);
    for (int n = 0; n < c->N; ++n)
        for (size_t j = 0; j < 2 * c->chw; ++j) {
            const size_t o = (size_t)n * 2 * c->chw + j;
            mixed[o] = j < c->chw ? a->frozen[o] : perturbed[o];
        }
    c->model_out = mixed;
    r = ref_loss(a->tables, c);
    c->model_out = perturbed;
    for (int n = 0; n < c->N; ++n) sum += r.vb[n];
    free_results(&r), free(mixed);
    return sum / c->N;
}

static loss_case random_case(test_rng *rng, int learn_sigma, int N, int channels, size_t hw,
                             const int32_t *t, double eps_error) {
    digcl_diffusion_schedule *base = malloc(sizeof *base);
    digcl_diffusion_schedule_build(DIGCL_DIFFUSION_STEPS, base);
    loss_case c = {0};
    c.learn_sigma = learn_sigma, c.N = N, c.channels = channels, c.hw = hw, c.chw = hw * channels;
    const size_t count = (size_t)N * c.chw;
    c.out_count = count * (learn_sigma ? 2 : 1);
    c.t = malloc(sizeof *c.t * N);
    memcpy(c.t, t, sizeof *c.t * N);
    float *x0 = test_random_floats(rng, count, 0.8f), *noise = test_random_floats(rng, count, 1.0f);
    float *out = test_random_floats(rng, c.out_count, 0.7f);
    c.x_start = test_widen(x0, count), c.noise = test_widen(noise, count),
    c.model_out = test_widen(out, c.out_count);
    c.x_t = test_zeros(count);
    digcl_ref_diffusion_q_sample(&base->tables, N, c.chw, c.x_start, c.t, c.noise, c.x_t);
    for (size_t i = 0; i < count; ++i) c.x_t[i] = (float)c.x_t[i];
    for (int n = 0; n < N; ++n) /* eps = noise + eps_error * N(0, 0.7^2) */
        for (size_t j = 0; j < c.chw; ++j) {
            const size_t i = (size_t)n * c.chw + j,
                         o = (size_t)n * c.chw * (learn_sigma ? 2 : 1) + j;
            c.model_out[o] = (float)(c.noise[i] + eps_error * c.model_out[o]);
        }
    free(x0), free(noise), free(out), free(base);
    return c;
}

static void test_oracle_gradient(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(71);
    digcl_diffusion_schedule *base = malloc(sizeof *base);
    digcl_diffusion_schedule_build(DIGCL_DIFFUSION_STEPS, base);
    const int32_t t[] = {0, 999, 1, 400, 0};
    const double errors[] = {0.05, 1.0};
    for (int e = 0; e < 2; ++e)
        for (int learn = 0; learn < 2; ++learn) {
            loss_case c = random_case(&rng, learn, 5, 3, 4, t, errors[e]);
            loss_results r = ref_loss(&base->tables, &c);
            double *frozen = malloc(c.out_count * sizeof *frozen);
            memcpy(frozen, c.model_out, c.out_count * sizeof *frozen);
            fd_arg arg = {&base->tables, &c, frozen};
            test_check_gradient(learn ? "loss oracle, learned range" : "loss oracle, fixed",
                                mean_loss, &arg, c.model_out, r.dout, c.out_count, 0);
            free_results(&r), free_case(&c), free(frozen);
        }
    free(base);
}

static void test_loss_random(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(72);
    digcl_diffusion_schedule *base = malloc(sizeof *base);
    digcl_diffusion_schedule_build(DIGCL_DIFFUSION_STEPS, base);
    const int32_t t[] = {0, 999, 0, 1, 2, 998, 500, 0, 250};
    const double errors[] = {0.02, 0.3, 1.0};
    for (int e = 0; e < 3; ++e) {
        loss_case c = random_case(&rng, 1, 9, 4, 32 * 32, t, errors[e]);
        loss_results r = ref_loss(&base->tables, &c);
        char label[64];
        snprintf(label, sizeof label, "learned 9x4x32x32 eps error %.2f", errors[e]);
        device_loss(&c, &r, label, 1e-6, 1e-5);
        free_results(&r), free_case(&c);
    }
    loss_case c = random_case(&rng, 0, 3, 1, 7 * 7, t, 0.5);
    loss_results r = ref_loss(&base->tables, &c);
    device_loss(&c, &r, "fixed 3x1x7x7", 1e-6, 1e-5);
    free_results(&r), free_case(&c), free(base);
}

/* The naive float32 decoder NLL loses ~1e-2; the oracle's double one is the truth:
 * a direct check that the kernel's stable form holds near the mean at t = 0. */
static void test_decoder_nll_oracle(void **state) {
    (void)state;
    /* log(cdf(p) - cdf(m)) for a wide bin equals a direct tanh difference */
    const double x = 0.2, mean = 0.1, log_scale = log(0.5);
    const double p = (x - mean + 1.0 / 255.0) / 0.5, m = (x - mean - 1.0 / 255.0) / 0.5;
    const double a = sqrt(2.0 / 3.14159265358979323846);
    const double direct =
        log(0.5 * (tanh(a * (p + 0.044715 * p * p * p)) - tanh(a * (m + 0.044715 * m * m * m))));
    assert_true(fabs(-digcl_ref_discretized_gaussian_nll(x, mean, log_scale) - direct) < 1e-13);
    /* clamps: far outside, log(1e-12) */
    assert_true(fabs(digcl_ref_discretized_gaussian_nll(0.5, -0.5, log(1e-3)) + log(1e-12)) < 1e-9);
}

/* ------------------------------------------------------------ sampler steps */

static void test_cfg_combine(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(73);
    const int rows = 3, out_channels = 8;
    const size_t hw = 5 * 5, count = (size_t)2 * rows * out_channels * hw, half = count / 2;
    const int guided[] = {3, 4, 8};
    for (int k = 0; k < 3; ++k) {
        float *out = test_random_floats(&rng, count, 1.0f);
        double *wide = test_widen(out, count), *want = test_zeros(half);
        digcl_ref_cfg_combine(rows, out_channels, hw, guided[k], 4.0, wide, want);
        cl_mem out_mem = test_upload(out, count), mixed = test_poisoned(half);
        digcl_cfg_combine(test_context(), rows, out_channels, hw, guided[k], 4.0f, out_mem, mixed);
        char label[48];
        snprintf(label, sizeof label, "cfg combine, %d guided channels", guided[k]);
        float *got = test_download(mixed, half);
        test_assert_close(label, got, want, half, 1e-6);
        /* pass-through channels are the conditional half, bit for bit */
        for (size_t i = 0; i < half; ++i)
            if ((int)((i % (out_channels * hw)) / hw) >= guided[k]) assert_true(got[i] == out[i]);
        free(got), free(out), free(wide), free(want), test_release(out_mem), test_release(mixed);
    }
    assert_int_equal(digcl_cfg_guided_channels(DIGCL_CFG_AUTO, 4), 3);
    assert_int_equal(digcl_cfg_guided_channels(DIGCL_CFG_AUTO, 3), 3);
    assert_int_equal(digcl_cfg_guided_channels(DIGCL_CFG_AUTO, 1), 1);
    assert_int_equal(digcl_cfg_guided_channels(DIGCL_CFG_ALL, 4), 4);
    assert_int_equal(digcl_cfg_guided_channels(DIGCL_CFG_FIRST3, 4), 3);
}

typedef struct step_data {
    int rows, channels, out_channels;
    size_t hw, count, out_count;
    float *x, *out, *z, *d_prev;
    double *xw, *outw, *zw, *dw;
} step_data;

static step_data make_step_data(test_rng *rng, int rows, int channels, int out_channels,
                                size_t hw) {
    step_data s = {rows,
                   channels,
                   out_channels,
                   hw,
                   (size_t)rows * channels * hw,
                   (size_t)rows * out_channels * hw,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL,
                   NULL};
    s.x = test_random_floats(rng, s.count, 1.0f),
    s.out = test_random_floats(rng, s.out_count, 0.8f);
    s.z = test_random_floats(rng, s.count, 1.0f), s.d_prev = test_random_floats(rng, s.count, 1.0f);
    s.xw = test_widen(s.x, s.count), s.outw = test_widen(s.out, s.out_count);
    s.zw = test_widen(s.z, s.count), s.dw = test_widen(s.d_prev, s.count);
    return s;
}

static void free_step_data(step_data *s) {
    free(s->x), free(s->out), free(s->z), free(s->d_prev), free(s->xw), free(s->outw), free(s->zw),
        free(s->dw);
}

static void check_ancestral(const char *label, const step_data *s, const digcl_ancestral_step *step,
                            const double *want) {
    cl_mem x = test_upload(s->x, s->count), out = test_upload(s->out, s->out_count);
    cl_mem z = test_upload(s->z, s->count);
    digcl_sampler_ancestral_step(test_context(), s->rows, s->channels, s->hw, s->out_channels, step,
                                 x, out, z);
    float *got = test_download(x, s->count);
    test_assert_close(label, got, want, s->count, 2e-6);
    free(got), test_release(x), test_release(out), test_release(z);
}

static void test_ancestral_steps(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(74);
    const int step_counts[] = {10, 250, 1000, 1};
    digcl_diffusion_schedule *sched = malloc(sizeof *sched);
    for (int k = 0; k < 4; ++k) {
        const int S = step_counts[k];
        digcl_diffusion_schedule_build(S, sched);
        const int probes[] = {0, 1, S / 2, S - 1};
        for (int p = 0; p < 4; ++p) {
            const int s = probes[p] < S ? probes[p] : S - 1, i = S - 1 - s;
            for (int learn = 0; learn < 2; ++learn) {
                step_data d = make_step_data(&rng, 2, 4, learn ? 8 : 4, 3 * 3);
                double *want = test_zeros(d.count);
                digcl_ancestral_step step;
                digcl_ddpm_step_coefficients(sched, learn, s, &step);
                digcl_ref_p_sample(sched, learn, i, d.rows, d.channels, d.hw, d.xw, d.outw, d.zw,
                                   want);
                char label[96];
                snprintf(label, sizeof label, "ddpm %s, %d steps, step %d",
                         learn ? "learned" : "fixed", S, s);
                check_ancestral(label, &d, &step, want);
                const double etas[] = {0.0, 0.7};
                for (int e = 0; e < 2; ++e) {
                    digcl_ddim_step_coefficients(sched, etas[e], s, &step);
                    digcl_ref_ddim_sample(sched, etas[e], i, d.rows, d.channels, d.hw,
                                          d.out_channels, d.xw, d.outw, d.zw, want);
                    snprintf(label, sizeof label, "ddim eta %.1f, %d steps, step %d", etas[e], S,
                             s);
                    check_ancestral(label, &d, &step, want);
                }
                free(want), free_step_data(&d);
            }
        }
    }
    free(sched);
}

static void test_dpmpp_steps(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(75);
    digcl_diffusion_schedule *sched = malloc(sizeof *sched);
    const int step_counts[] = {20, 7, 2, 1};
    for (int k = 0; k < 4; ++k) {
        const int S = step_counts[k];
        digcl_diffusion_schedule_build(S, sched);
        for (int s = 0; s < S; ++s) {
            step_data d = make_step_data(&rng, 3, 4, 8, 2 * 3);
            double *want = test_zeros(d.count), *want_d = test_zeros(d.count);
            digcl_dpmpp_step step;
            digcl_dpmpp_step_coefficients(sched, s, &step);
            digcl_ref_dpmpp_2m_step(sched, s, d.rows, d.channels, d.hw, d.out_channels, d.xw,
                                    d.outw, d.dw, want, want_d);
            cl_mem x = test_upload(d.x, d.count), out = test_upload(d.out, d.out_count);
            cl_mem dp = test_upload(d.d_prev, d.count);
            if (s == 0) test_poison(dp, d.count); /* not read at the first step */
            digcl_sampler_dpmpp_step(test_context(), d.rows, d.channels, d.hw, d.out_channels,
                                     &step, x, out, dp);
            char label[80];
            snprintf(label, sizeof label, "dpm++2m %d steps, step %d: x", S, s);
            float *got = test_download(x, d.count);
            test_assert_close(label, got, want, d.count, 2e-6);
            free(got);
            snprintf(label, sizeof label, "dpm++2m %d steps, step %d: d", S, s);
            got = test_download(dp, d.count);
            test_assert_close(label, got, want_d, d.count, 2e-6);
            free(got), free(want), free(want_d), free_step_data(&d);
            test_release(x), test_release(out), test_release(dp);
        }
    }
    free(sched);
}

static void bad_steps(void *arg) {
    int kept[2];
    digcl_diffusion_respaced_timesteps(*(int *)arg, kept);
}

static void test_bad_steps(void **state) {
    (void)state;
    char message[256];
    int steps = 0;
    assert_true(test_expect_fatal(bad_steps, &steps, message, sizeof message));
    assert_non_null(strstr(message, "expected 1 to 1000"));
    steps = 1001;
    assert_true(test_expect_fatal(bad_steps, &steps, message, sizeof message));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_matches_port),
        cmocka_unit_test(test_loss_matches_port),
        cmocka_unit_test(test_oracle_gradient),
        cmocka_unit_test(test_loss_random),
        cmocka_unit_test(test_decoder_nll_oracle),
        cmocka_unit_test(test_cfg_combine),
        cmocka_unit_test(test_ancestral_steps),
        cmocka_unit_test(test_dpmpp_steps),
        cmocka_unit_test(test_bad_steps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
