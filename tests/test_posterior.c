/* Posterior latents drawn on the device (docs/TRAINING.md "Data"):
 * - the posterior_draw kernel (cl/vae.cl) against its double oracle, std and logvar forms
 *   (logvar beyond the [-30, 20] clamp), rows not a multiple of 4, shuffled data indices;
 * - a loader batch of mean + spread planes (digcl_dataset_set_device_posterior), drawn by
 *   the kernel, equals the host draw digcl_dataset_read of the same (seed, epoch, data
 *   index) within float rounding (rel L2 < 1e-5: host expf/logf/cosf against the device's),
 *   across an epoch boundary; with flips (or switched off) the loader draws on the host. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/data.h"
#include "digcl/model.h"
#include "digcl/ref/vae_ops.h"
#include "digcl/safetensors.h"
#include "digcl/train.h"
#include "digcl/vae_ops.h"
#include "test_util.h"

#define SEED 4242u

static cl_mem upload_ints(const int32_t *host, size_t n) {
    digcl_context *ctx = test_context();
    cl_mem mem = test_poisoned(n); /* 4-byte elements */
    digcl_write(ctx, mem, 0, n * sizeof(int32_t), host);
    return mem;
}

static void run_kernel_case(int logvar, size_t rows, size_t row_length) {
    test_rng rng = test_rng_seeded(11 + (uint64_t)logvar);
    const size_t n = rows * row_length;
    float *mean = test_random_floats(&rng, n, 1.0f), *spread = malloc(n * sizeof *spread);
    int32_t *draw_index = malloc(rows * sizeof *draw_index);
    test_fill_uniform(&rng, spread, n, logvar ? -35.0f : 0.05f, logvar ? 25.0f : 2.0f);
    for (size_t r = 0; r < rows; r++) draw_index[r] = (int32_t)(1000 * test_uniform(&rng));
    double *mean_d = test_widen(mean, n), *spread_d = test_widen(spread, n), *want = test_zeros(n);
    const digcl_rng_key key = {SEED, DIGCL_RNG_LATENT};
    digcl_ref_posterior_draw_forward(rows, row_length, 0.18215, logvar, key, 3, mean_d, spread_d,
                                     draw_index, want);
    cl_mem z = test_upload(mean, n), sd = test_upload(spread, n);
    cl_mem index = upload_ints(draw_index, rows);
    digcl_posterior_draw_forward(test_context(), rows, row_length, 0.18215f, logvar, key, 3, z, sd,
                                 index);
    float *got = test_download(z, n);
    char label[96];
    snprintf(label, sizeof label, "posterior draw %s rows=%zu length=%zu",
             logvar ? "logvar" : "std", rows, row_length);
    test_assert_close(label, got, want, n, 1e-5);
    /* another epoch is another draw */
    digcl_ref_posterior_draw_forward(rows, row_length, 0.18215, logvar, key, 4, mean_d, spread_d,
                                     draw_index, want);
    assert_true(test_rel_l2(got, want, n) > 1e-2);
    test_release(z), test_release(sd), test_release(index);
    free(mean), free(spread), free(draw_index), free(mean_d), free(spread_d), free(want);
    free(got);
}

static void test_kernel(void **state) {
    (void)state;
    run_kernel_case(0, 5, 37);
    run_kernel_case(1, 5, 37);
    run_kernel_case(0, 3, 1);
    run_kernel_case(1, 7, 256);
}

/* A posterior set of `count` rows [4, 2, side] with the spread named spread_name. */
static void write_set(const char *path, const char *spread_name, int count, int side) {
    const int ROW = 4 * 2 * side;
    test_rng rng = test_rng_seeded(5);
    float *mean = malloc((size_t)count * ROW * sizeof *mean);
    float *spread = malloc((size_t)count * ROW * sizeof *spread);
    int64_t *labels = malloc((size_t)count * sizeof *labels);
    test_fill_normal(&rng, mean, (size_t)count * ROW, 1.0f);
    test_fill_uniform(&rng, spread, (size_t)count * ROW, -2.0f, 0.9f);
    if (strcmp(spread_name, "std") == 0)
        for (int i = 0; i < count * ROW; i++) spread[i] = fabsf(spread[i]) + 0.05f;
    for (int i = 0; i < count; i++) labels[i] = i % 3;
    int64_t shape[4] = {count, 4, 2, side}, label_shape[1] = {count};
    digcl_st_error err;
    digcl_st_writer *w = digcl_st_writer_new();
    assert_int_equal(digcl_st_writer_add_f32(w, "mean", 4, shape, mean, &err), 0);
    assert_int_equal(digcl_st_writer_add_f32(w, spread_name, 4, shape, spread, &err), 0);
    assert_int_equal(digcl_st_writer_add_i64(w, "labels", 1, label_shape, labels, &err), 0);
    assert_int_equal(digcl_st_writer_set_metadata(w, "scale", "0.25", &err), 0);
    assert_int_equal(digcl_st_writer_write(w, path, &err), 0);
    digcl_st_writer_free(w);
    free(mean), free(spread), free(labels);
}

/* Batches of a device-posterior loader, drawn by the kernel, against the host draw. */
static void check_loader(digcl_dataset *d, int logvar) {
    enum { BATCH = 4, ROW = 24 };
    const size_t n = (size_t)BATCH * ROW;
    digcl_loader_options o = {BATCH, 0, 1, SEED, 2, 2, 0};
    char error[512];
    digcl_loader *l = digcl_loader_create(d, &o, error, sizeof error);
    assert_non_null(l);
    digcl_context *ctx = test_context();
    cl_mem z = test_poisoned(n), sd = test_poisoned(n);
    cl_mem index = test_poisoned(BATCH); /* int32 */
    const digcl_rng_key key = {SEED, DIGCL_RNG_LATENT};
    float *host = malloc(n * sizeof *host);
    for (int b = 0; b < 5; b++) { /* 10 rows: 2 batches per epoch, 3 epochs */
        const digcl_batch *batch = digcl_loader_next(l);
        assert_non_null(batch->spread);
        assert_int_equal(batch->spread_is_logvar, logvar);
        assert_true(batch->scale == 0.25f);
        digcl_write(ctx, z, 0, n * sizeof(float), batch->x);
        digcl_write(ctx, sd, 0, n * sizeof(float), batch->spread);
        digcl_write(ctx, index, 0, BATCH * sizeof(int32_t), batch->draw_index);
        digcl_posterior_draw_forward(ctx, BATCH, ROW, batch->scale, logvar, key,
                                     (uint64_t)batch->epoch, z, sd, index);
        for (int r = 0; r < BATCH; r++) {
            int32_t y = -1;
            assert_int_equal(digcl_dataset_read(d, batch->draw_index[r], SEED, batch->epoch, 0,
                                                host + (size_t)r * ROW, &y, error, sizeof error),
                             0);
            assert_int_equal(y, batch->y[r]);
        }
        digcl_loader_release(l, batch);
        float *got = test_download(z, n);
        double *want = test_widen(host, n);
        test_assert_close("device posterior vs host draw", got, want, n, 1e-5);
        free(got), free(want);
    }
    free(host);
    test_release(z), test_release(sd), test_release(index);
    digcl_loader_destroy(l);
}

static void test_loader_matches_host(void **state) {
    (void)state;
    const char *spreads[2] = {"std", "logvar"};
    for (int s = 0; s < 2; s++) {
        char name[64], path[512], spec[600];
        snprintf(name, sizeof name, "posterior_%s.safetensors", spreads[s]);
        test_temp_path(path, sizeof path, name);
        write_set(path, spreads[s], 10, 3);
        snprintf(spec, sizeof spec, "latents:%s", path);
        char error[512];
        digcl_dataset *d = digcl_dataset_open(spec, NULL, error, sizeof error);
        if (!d) fail_msg("%s", error);
        digcl_dataset_set_device_posterior(d, 1);
        check_loader(d, s);
        /* with flips, or off again: the loader draws on the host and hands no spread */
        for (int off = 0; off < 2; off++) {
            digcl_dataset_set_device_posterior(d, !off);
            digcl_loader_options o = {4, 0, 1, SEED, 1, 2, !off};
            digcl_loader *l = digcl_loader_create(d, &o, error, sizeof error);
            const digcl_batch *batch = digcl_loader_next(l);
            assert_null(batch->spread);
            digcl_loader_release(l, batch);
            digcl_loader_destroy(l);
        }
        digcl_dataset_close(d);
    }
}

/* ------------------------------------------------------------ through the trainer */

/* An objective that keeps what the step saw: x (z after the draw) and the noise. */
typedef struct capture {
    digcl_context *ctx;
    cl_mem x, noise; /* [N, C, H, W] copies */
} capture;

static void capture_q_sample(void *user, int N, size_t chw, cl_mem x, cl_mem t, cl_mem noise,
                             cl_mem x_t) {
    capture *c = user;
    (void)t;
    const size_t bytes = (size_t)N * chw * sizeof(float);
    digcl_copy(c->ctx, x, 0, c->x, 0, bytes);
    digcl_copy(c->ctx, noise, 0, c->noise, 0, bytes);
    digcl_copy(c->ctx, x, 0, x_t, 0, bytes);
}

static void capture_loss(void *user, const digcl_diffusion_loss_args *a) {
    capture *c = user;
    digcl_fill_f32(c->ctx, a->loss, 0, (size_t)a->N, 0.0f);
    digcl_fill_f32(c->ctx, a->mse, 0, (size_t)a->N, 0.0f);
    digcl_fill_f32(c->ctx, a->vb, 0, (size_t)a->N, 0.0f);
    digcl_fill_f32(c->ctx, a->dout, 0, (size_t)a->N * a->channels * a->hw, 0.0f);
}

/* digcl_trainer_step_batch on device-posterior batches: the step's x is the host draw of the
 * batch's (seed, epoch, data indices), and its noise is the usual DIGCL_RNG_NOISE draw (the
 * spread staged in the noise buffer does not leak). */
static void test_trainer_step_batch(void **state) {
    (void)state;
    enum { BATCH = 3, SIDE = 2, ROW = 4 * SIDE * SIDE };
    char path[512], spec[600], error[512];
    test_temp_path(path, sizeof path, "posterior_train.safetensors");
    write_set(path, "logvar", 7, SIDE);
    snprintf(spec, sizeof spec, "latents:%s", path);
    digcl_dataset *d = digcl_dataset_open(spec, NULL, error, sizeof error);
    if (!d) fail_msg("%s", error);
    digcl_dataset_set_device_posterior(d, 1);
    digcl_context *ctx = test_context();
    digcl_model_config c;
    memset(&c, 0, sizeof c);
    c.arch = DIGCL_ARCH_DIT, c.depth = 1, c.hidden_size = 16, c.num_heads = 2;
    c.patch_size = 1, c.input_size = SIDE, c.in_channels = 4, c.num_classes = 3;
    digcl_config_error err;
    assert_int_equal(digcl_model_config_finish(&c, &err), 0);
    digcl_model *model = digcl_model_create(ctx, &c);
    digcl_model_init(model, 1);
    const size_t n = (size_t)BATCH * ROW;
    capture cap = {ctx, test_poisoned(n), test_poisoned(n)};
    digcl_train_objective objective = {capture_q_sample, capture_loss, &cap};
    digcl_train_hparams hp = digcl_train_hparams_defaults();
    hp.seed = SEED;
    digcl_trainer *tr = digcl_trainer_create(ctx, model, BATCH, &hp, &objective);
    digcl_loader_options o = {BATCH, 0, 1, SEED, 2, 2, 0};
    digcl_loader *l = digcl_loader_create(d, &o, error, sizeof error);
    assert_non_null(l);
    float *want = malloc(n * sizeof *want), *noise = malloc(n * sizeof *noise);
    const digcl_rng_key noise_key = {SEED, DIGCL_RNG_NOISE};
    for (int step = 0; step < 3; step++) { /* 2 batches per epoch: epoch 1 at step 2 */
        const digcl_batch *batch = digcl_loader_next(l);
        assert_non_null(batch->spread);
        for (int r = 0; r < BATCH; r++) {
            int32_t y;
            assert_int_equal(digcl_dataset_read(d, batch->draw_index[r], SEED, batch->epoch, 0,
                                                want + (size_t)r * ROW, &y, error, sizeof error),
                             0);
            for (int j = 0; j < ROW; j++)
                noise[(size_t)r * ROW + j] =
                    digcl_rng_normal(noise_key, (uint64_t)step,
                                     (uint64_t)batch->first_sample + (uint64_t)r, (uint64_t)j);
        }
        digcl_trainer_step_batch(tr, batch);
        digcl_loader_release(l, batch);
        digcl_trainer_drain(tr, NULL, NULL);
        float *got_x = test_download(cap.x, n), *got_noise = test_download(cap.noise, n);
        double *want_x = test_widen(want, n), *want_noise = test_widen(noise, n);
        test_assert_close("trainer x = host posterior draw", got_x, want_x, n, 1e-5);
        test_assert_close("trainer noise", got_noise, want_noise, n, 1e-6);
        free(got_x), free(got_noise), free(want_x), free(want_noise);
    }
    free(want), free(noise);
    digcl_loader_destroy(l);
    digcl_trainer_release(tr);
    digcl_model_release(model);
    test_release(cap.x), test_release(cap.noise);
    digcl_dataset_close(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel),
        cmocka_unit_test(test_loader_matches_host),
        cmocka_unit_test(test_trainer_step_batch),
    };
    return cmocka_run_group_tests(tests, test_temp_dir_setup, test_temp_dir_teardown);
}
