/* The diffusion loss and the samplers through the real network, against the
 * float64 PyTorch port (tests/reference/diffusion_reference.py) on the tiny
 * golden weights of tests/reference/fixtures_committed:
 *  - q_sample + forward + training loss + backward: loss terms and every
 *    parameter gradient of mean(loss) (t = 0, t = 999 and the null label in the batch);
 *  - 10-step DDPM, DDIM and DPM-Solver++ 2M runs with a given noise file, with and
 *    without guidance (upstream's first-3-channels quirk and all channels);
 *  - with the RNG, an image depends only on (seed, image number), not on the batch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/checkpoint.h"
#include "digcl/diffusion.h"
#include "digcl/model.h"
#include "digcl/safetensors.h"
#include "test_util.h"

#define FIXTURES "tests/reference/fixtures_committed"

static digcl_safetensors *open_fixture(const char *dir, const char *file) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/%s", FIXTURES, dir, file);
    return digcl_st_open_or_die(path);
}

static float *read_floats(const digcl_safetensors *st, const char *name, size_t *count) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    if (!t) fail_msg("%s: tensor '%s' missing", st->label, name);
    float *out = malloc(t->numel * sizeof *out);
    digcl_st_error err;
    if (digcl_st_read_f32(st, t, out, &err) != 0) fail_msg("%s", err.message);
    if (count) *count = (size_t)t->numel;
    return out;
}

static int32_t *read_labels(const digcl_safetensors *st, const char *name, size_t *count) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    if (!t) fail_msg("%s: tensor '%s' missing", st->label, name);
    int64_t *wide = malloc(t->numel * sizeof *wide);
    int32_t *out = malloc(t->numel * sizeof *out);
    digcl_st_error err;
    if (digcl_st_read_i64(st, t, wide, &err) != 0) fail_msg("%s", err.message);
    for (uint64_t i = 0; i < t->numel; ++i) out[i] = (int32_t)wide[i];
    free(wide);
    if (count) *count = (size_t)t->numel;
    return out;
}

static digcl_model *load_model(const char *fixture) {
    char path[512], error[1024];
    snprintf(path, sizeof path, "%s/%s/weights.safetensors", FIXTURES, fixture);
    digcl_model_config config;
    if (digcl_checkpoint_read_config(path, &config, error, sizeof error) != 0)
        fail_msg("%s", error);
    digcl_model *model = digcl_model_create(test_context(), &config);
    if (digcl_checkpoint_load(model, path, error, sizeof error) != 0) fail_msg("%s", error);
    return model;
}

static double *widen_f(const float *x, size_t n) { return test_widen(x, n); }

static void compare(const char *label, cl_mem mem, const float *want, size_t n, double tolerance) {
    double *wide = widen_f(want, n);
    float *got = test_download(mem, n);
    test_assert_close(label, got, wide, n, tolerance);
    free(got), free(wide);
}

/* ------------------------------------------------------------ loss */

static void run_loss_fixture(const char *fixture) {
    digcl_context *ctx = test_context();
    char dir[128];
    snprintf(dir, sizeof dir, "diffusion_loss_%s", fixture);
    digcl_safetensors *in = open_fixture(dir, "inputs.safetensors");
    digcl_safetensors *want = open_fixture(dir, "expected.safetensors");
    digcl_model *model = load_model(fixture);
    const digcl_model_config *c = digcl_model_get_config(model);
    size_t count, rows;
    float *x = read_floats(in, "x", &count), *noise = read_floats(in, "noise", NULL);
    int32_t *t = read_labels(in, "t", &rows), *y = read_labels(in, "y", NULL);
    const int N = (int)rows;
    const size_t out_count = count / c->in_channels * c->out_channels;
    float *t_float = malloc(rows * sizeof *t_float);
    for (size_t i = 0; i < rows; ++i) t_float[i] = (float)t[i];
    digcl_buffer t_int = digcl_buffer_create(ctx, rows * sizeof(int32_t), "t"),
                 labels = digcl_buffer_create(ctx, rows * 4, "y");
    digcl_write(ctx, t_int.mem, 0, rows * sizeof(int32_t), t);
    digcl_write(ctx, labels.mem, 0, rows * sizeof(int32_t), y);
    cl_mem x_mem = test_upload(x, count), noise_mem = test_upload(noise, count),
           xt = test_poisoned(count);
    cl_mem t_mem = test_upload(t_float, rows), out = test_poisoned(out_count),
           dout = test_poisoned(out_count);
    cl_mem loss = test_poisoned(rows), mse = test_poisoned(rows), vb = test_poisoned(rows);
    digcl_diffusion *d = digcl_diffusion_create(ctx, c->learn_sigma);
    digcl_diffusion_q_sample(d, N, count / rows, x_mem, t_int.mem, noise_mem, xt);
    const digcl_model_inputs inputs = {xt, t_mem, labels.mem};
    digcl_model_prepare(model, N, DIGCL_MODE_TRAINING);
    digcl_model_zero_grad(model);
    digcl_model_forward(model, &inputs, out);
    const digcl_diffusion_loss_args args = {N,
                                            c->in_channels,
                                            (size_t)c->input_size * c->input_size,
                                            x_mem,
                                            xt,
                                            t_int.mem,
                                            noise_mem,
                                            out,
                                            loss,
                                            mse,
                                            vb,
                                            dout};
    digcl_diffusion_training_loss(d, &args);
    digcl_model_backward(model, &inputs, dout, NULL);
    char label[160];
    float *expected = read_floats(want, "loss", NULL);
    snprintf(label, sizeof label, "%s loss", fixture);
    compare(label, loss, expected, rows, 1e-6);
    free(expected);
    expected = read_floats(want, "mse", NULL);
    snprintf(label, sizeof label, "%s mse", fixture);
    compare(label, mse, expected, rows, 1e-6);
    free(expected);
    if (c->learn_sigma) {
        expected = read_floats(want, "vb", NULL);
        snprintf(label, sizeof label, "%s vb", fixture);
        compare(label, vb, expected, rows, 1e-6);
        free(expected);
    }
    const digcl_param_table *table = digcl_model_param_table(model);
    double worst = 0.0;
    for (size_t i = 0; i < table->count; ++i) {
        const digcl_param_info *p = &table->params[i];
        if (!p->trainable) continue;
        snprintf(label, sizeof label, "grad.%s", p->name);
        float *g_want = read_floats(want, label, NULL), *g_got = malloc(p->numel * sizeof *g_got);
        double *wide = widen_f(g_want, p->numel);
        digcl_model_read_grad(model, i, g_got);
        const double error = test_rel_l2(g_got, wide, p->numel);
        if (error > worst) worst = error;
        if (!(error < 1e-4))
            fail_msg("%s %s: rel L2 %.3e is not below 1e-4", fixture, label, error);
        free(g_want), free(g_got), free(wide);
    }
    print_message("  %s: every parameter gradient of mean(loss) within rel L2 %.3e\n", fixture,
                  worst);
    digcl_diffusion_release(d);
    cl_mem all[] = {x_mem, noise_mem, xt, t_mem, out, dout, loss, mse, vb};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i) test_release(all[i]);
    digcl_buffer_release(&t_int), digcl_buffer_release(&labels);
    free(x), free(noise), free(t), free(y), free(t_float);
    digcl_model_release(model);
    digcl_st_close(in), digcl_st_close(want);
}

static void test_loss_fixtures(void **state) {
    (void)state;
    run_loss_fixture("dig_a_16x16");
    run_loss_fixture("dig_e_p4_c3");
}

/* ------------------------------------------------------------ samplers */

typedef struct sample_run {
    const char *name;
    digcl_sampler_kind kind;
    float eta, cfg_scale;
    digcl_cfg_channels channels;
} sample_run;

/* The runs of diffusion_reference.py SAMPLE_RUNS. */
static const sample_run sample_runs[] = {
    {"ddpm", DIGCL_SAMPLER_DDPM, 0.0f, 1.0f, DIGCL_CFG_AUTO},
    {"ddpm_cfg", DIGCL_SAMPLER_DDPM, 0.0f, 4.0f, DIGCL_CFG_AUTO},
    {"ddpm_cfg_all", DIGCL_SAMPLER_DDPM, 0.0f, 4.0f, DIGCL_CFG_ALL},
    {"ddim", DIGCL_SAMPLER_DDIM, 0.0f, 1.0f, DIGCL_CFG_AUTO},
    {"ddim_eta_cfg", DIGCL_SAMPLER_DDIM, 1.0f, 1.5f, DIGCL_CFG_AUTO},
    {"dpmpp2m", DIGCL_SAMPLER_DPMPP_2M, 0.0f, 1.0f, DIGCL_CFG_AUTO},
    {"dpmpp2m_cfg", DIGCL_SAMPLER_DPMPP_2M, 0.0f, 4.0f, DIGCL_CFG_AUTO},
};

static void run_sample_fixture(const char *fixture) {
    char dir[128];
    snprintf(dir, sizeof dir, "diffusion_sample_%s", fixture);
    digcl_safetensors *noise_file = open_fixture(dir, "noise.safetensors");
    digcl_safetensors *want = open_fixture(dir, "expected.safetensors");
    digcl_model *model = load_model(fixture);
    const digcl_model_config *c = digcl_model_get_config(model);
    size_t count, images, z_count;
    float *x_T = read_floats(noise_file, "x_T", &count),
          *z = read_floats(noise_file, "z", &z_count);
    int32_t *y = read_labels(noise_file, "y", &images);
    assert_int_equal(z_count, 10 * count);
    digcl_diffusion *d = digcl_diffusion_create(test_context(), c->learn_sigma);
    float *x0 = malloc(count * sizeof *x0);
    for (size_t r = 0; r < sizeof sample_runs / sizeof *sample_runs; ++r) {
        const sample_run *run = &sample_runs[r];
        const digcl_sampler_options options = {run->kind, 10, run->eta, run->cfg_scale,
                                               run->channels};
        digcl_sampler *sampler = digcl_sampler_create(d, model, &options, (int)images);
        assert_int_equal(digcl_sampler_step_count(sampler), 10);
        const digcl_sampler_noise noise = {0, 0, x_T, z};
        for (size_t i = 0; i < count; ++i) x0[i] = NAN;
        digcl_sampler_run(sampler, y, &noise, x0, NULL, NULL);
        char name[64], label[128];
        snprintf(name, sizeof name, "x0.%s", run->name);
        float *expected = read_floats(want, name, NULL);
        double *wide = widen_f(expected, count);
        snprintf(label, sizeof label, "%s %s (10 steps)", fixture, run->name);
        test_assert_close(label, x0, wide, count, 1e-5);
        free(expected), free(wide);
        digcl_sampler_release(sampler);
    }
    free(x0), free(x_T), free(z), free(y);
    digcl_diffusion_release(d);
    digcl_model_release(model);
    digcl_st_close(noise_file), digcl_st_close(want);
}

static void test_sampler_fixtures(void **state) {
    (void)state;
    run_sample_fixture("dig_a_16x16");
    run_sample_fixture("dig_e_p4_c3");
}

/* Images 0..2 in one call equal image 0 alone and images 1..2 from first_image 1. */
static void test_sampler_rng_per_image(void **state) {
    (void)state;
    digcl_model *model = load_model("dig_a_16x16");
    const digcl_model_config *c = digcl_model_get_config(model);
    const size_t chw = (size_t)c->in_channels * c->input_size * c->input_size;
    digcl_diffusion *d = digcl_diffusion_create(test_context(), c->learn_sigma);
    const digcl_sampler_options options = {DIGCL_SAMPLER_DDPM, 5, 0.0f, 2.0f, DIGCL_CFG_AUTO};
    const int32_t labels[3] = {3, 7, 1};
    float *all = malloc(3 * chw * sizeof *all), *parts = malloc(3 * chw * sizeof *parts);
    digcl_sampler *three = digcl_sampler_create(d, model, &options, 3);
    const digcl_sampler_noise noise = {42, 0, NULL, NULL};
    digcl_sampler_run(three, labels, &noise, all, NULL, NULL);
    digcl_sampler_release(three);
    digcl_sampler *one = digcl_sampler_create(d, model, &options, 1);
    digcl_sampler_run(one, labels, &noise, parts, NULL, NULL);
    digcl_sampler_release(one);
    digcl_sampler *two = digcl_sampler_create(d, model, &options, 2);
    const digcl_sampler_noise later = {42, 1, NULL, NULL};
    digcl_sampler_run(two, labels + 1, &later, parts + chw, NULL, NULL);
    digcl_sampler_release(two);
    assert_true(test_all_finite(all, 3 * chw));
    const double error = test_rel_l2_f(parts, all, 3 * chw);
    print_message("  3 images in one call vs 1 + 2: rel L2 %.3e\n", error);
    assert_true(error < 1e-5);
    /* a different seed gives a different image */
    const digcl_sampler_noise other = {43, 0, NULL, NULL};
    digcl_sampler *again = digcl_sampler_create(d, model, &options, 1);
    digcl_sampler_run(again, labels, &other, parts, NULL, NULL);
    digcl_sampler_release(again);
    assert_true(test_rel_l2_f(parts, all, chw) > 1e-2);
    free(all), free(parts);
    digcl_diffusion_release(d);
    digcl_model_release(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_fixtures),
        cmocka_unit_test(test_sampler_fixtures),
        cmocka_unit_test(test_sampler_rng_per_image),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
