/* Three full training steps of src/train's step function against the float64
 * PyTorch reference (tests/reference/train_reference.py: model + upstream's
 * loss + torch.optim.AdamW + EMA, fixed data, t, noise and dropout mask):
 * weights, EMA, exp_avg and exp_avg_sq within 1e-5 relative L2 per store,
 * the logged mean losses within 1e-5. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "test_util.h"
#include "digcl/checkpoint.h"
#include "digcl/safetensors.h"
#include "digcl/train.h"

#define FIXTURES  "tests/reference/fixtures_committed/"
#define STEPS     3
#define TOLERANCE 1e-5

typedef struct reference {
    digcl_model_config config;
    digcl_train_hparams hparams;
    int rows;         /* N */
    size_t chw;       /* C*H*W */
    float *x, *noise; /* [S, N, C, H, W] */
    int32_t *y, *t;   /* [S, N] */
} reference;

static double json_number(const cJSON *o, const char *key) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(o, key);
    assert_true(cJSON_IsNumber(item));
    return item->valuedouble;
}

static int32_t *read_ints(const digcl_safetensors *st, const char *name, size_t n) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    assert_non_null(t);
    assert_int_equal(t->numel, n);
    int64_t *wide = malloc(n * sizeof *wide);
    int32_t *out = malloc(n * sizeof *out);
    digcl_st_error err;
    assert_int_equal(digcl_st_read_i64(st, t, wide, &err), 0);
    for (size_t i = 0; i < n; i++) out[i] = (int32_t)wide[i];
    free(wide);
    return out;
}

static float *read_floats(const digcl_safetensors *st, const char *name, size_t n) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    assert_non_null(t);
    assert_int_equal(t->numel, n);
    float *out = malloc(n * sizeof *out);
    digcl_st_error err;
    assert_int_equal(digcl_st_read_f32(st, t, out, &err), 0);
    return out;
}

static void load_reference(const char *name, reference *r) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "train_%s/steps.safetensors", name);
    digcl_safetensors *st = digcl_st_open_or_die(path);
    digcl_config_error cerr;
    assert_int_equal(
        digcl_model_config_from_json(digcl_st_metadata(st, "dig.config"), &r->config, &cerr), 0);
    cJSON *h = cJSON_Parse(digcl_st_metadata(st, "train.hparams"));
    r->hparams = digcl_train_hparams_defaults();
    r->hparams.adamw.lr = (float)json_number(h, "lr");
    r->hparams.adamw.beta1 = json_number(h, "beta1");
    r->hparams.adamw.beta2 = json_number(h, "beta2");
    r->hparams.adamw.eps = (float)json_number(h, "eps");
    r->hparams.adamw.weight_decay = (float)json_number(h, "weight_decay");
    r->hparams.ema_decay = (float)json_number(h, "ema_decay");
    cJSON_Delete(h);
    const digcl_st_tensor *x = digcl_st_find(st, "x");
    r->rows = (int)x->shape[1];
    r->chw = (size_t)(x->numel / (uint64_t)(STEPS * r->rows));
    size_t rows = (size_t)STEPS * (size_t)r->rows;
    r->x = read_floats(st, "x", rows * r->chw);
    r->noise = read_floats(st, "noise", rows * r->chw);
    r->y = read_ints(st, "y", rows);
    r->t = read_ints(st, "t", rows);
    digcl_st_close(st);
}

static void free_reference(reference *r) { free(r->x), free(r->noise), free(r->y), free(r->t); }

/* ------------------------------------------------------------ a host objective (no learn_sigma) */

/* The 1000-step linear schedule's sqrt(acp), sqrt(1 - acp) in double. */
typedef struct host_mse {
    digcl_context *ctx;
    double sqrt_acp[1000], sqrt_1m_acp[1000];
    float *a, *b, *c; /* host scratch [N, C, H, W] */
    float *rows;      /* [N] */
    int32_t *t;       /* [N] */
} host_mse;

static void host_mse_init(host_mse *h, size_t count, int rows) {
    double acp = 1.0;
    for (int i = 0; i < 1000; i++) {
        double beta = 1e-4 + (0.02 - 1e-4) * i / 999.0;
        acp *= 1.0 - beta;
        h->sqrt_acp[i] = sqrt(acp);
        h->sqrt_1m_acp[i] = sqrt(1.0 - acp);
    }
    h->ctx = test_context();
    h->a = malloc(count * sizeof(float)), h->b = malloc(count * sizeof(float));
    h->c = malloc(count * sizeof(float)), h->rows = malloc((size_t)rows * sizeof(float));
    h->t = malloc((size_t)rows * sizeof(int32_t));
}

static void host_q_sample(void *user, int N, size_t chw, cl_mem x, cl_mem t, cl_mem noise,
                          cl_mem x_t) {
    host_mse *h = user;
    size_t count = (size_t)N * chw;
    digcl_read(h->ctx, x, 0, count * sizeof(float), h->a);
    digcl_read(h->ctx, noise, 0, count * sizeof(float), h->b);
    digcl_read(h->ctx, t, 0, (size_t)N * sizeof(int32_t), h->t);
    for (size_t i = 0; i < count; i++) {
        int ti = h->t[i / chw];
        h->c[i] = (float)(h->sqrt_acp[ti] * h->a[i] + h->sqrt_1m_acp[ti] * h->b[i]);
    }
    digcl_write(h->ctx, x_t, 0, count * sizeof(float), h->c);
}

static void host_loss(void *user, const digcl_diffusion_loss_args *a) {
    host_mse *h = user;
    size_t chw = (size_t)a->channels * a->hw, count = (size_t)a->N * chw;
    digcl_read(h->ctx, a->model_out, 0, count * sizeof(float), h->a);
    digcl_read(h->ctx, a->noise, 0, count * sizeof(float), h->b);
    for (int n = 0; n < a->N; n++) {
        double sum = 0;
        for (size_t i = (size_t)n * chw; i < (size_t)(n + 1) * chw; i++) {
            double d = (double)h->a[i] - h->b[i];
            sum += d * d;
            h->c[i] = (float)(2.0 * d / (double)chw / a->N);
        }
        h->rows[n] = (float)(sum / (double)chw);
    }
    digcl_write(h->ctx, a->dout, 0, count * sizeof(float), h->c);
    digcl_write(h->ctx, a->loss, 0, (size_t)a->N * sizeof(float), h->rows);
    digcl_write(h->ctx, a->mse, 0, (size_t)a->N * sizeof(float), h->rows);
    digcl_fill_f32(h->ctx, a->vb, 0, (size_t)a->N, 0.0f);
}

/* ------------------------------------------------------------ the check */

typedef struct losses_seen {
    int count;
    float loss[STEPS];
} losses_seen;

static void keep_loss(const digcl_train_values *v, void *user) {
    losses_seen *seen = user;
    if (seen->count < STEPS) seen->loss[seen->count++] = v->loss;
}

static void compare_stores(const char *name, const char *checkpoint) {
    char path[512];
    snprintf(path, sizeof path, FIXTURES "train_%s/expected.safetensors", name);
    digcl_safetensors *want = digcl_st_open_or_die(path), *got = digcl_st_open_or_die(checkpoint);
    const char *prefixes[] = {"", "ema.", "opt.exp_avg.", "opt.exp_avg_sq."};
    for (int p = 0; p < 4; p++) {
        double err2 = 0, norm2 = 0;
        size_t tensors = 0;
        for (size_t i = 0; i < want->n_tensors; i++) {
            const digcl_st_tensor *w = &want->tensors[i];
            size_t len = strlen(prefixes[p]);
            int ours = len ? strncmp(w->name, prefixes[p], len) == 0
                           : strncmp(w->name, "ema.", 4) && strncmp(w->name, "opt.", 4);
            if (!ours || !strcmp(w->name, "loss") || !strcmp(w->name, "mse") ||
                !strcmp(w->name, "vb"))
                continue;
            const digcl_st_tensor *g = digcl_st_find(got, w->name);
            if (!g) fail_msg("%s: tensor %s missing from the checkpoint", name, w->name);
            float *a = read_floats(want, w->name, w->numel),
                  *b = read_floats(got, w->name, w->numel);
            for (size_t k = 0; k < w->numel; k++) {
                double d = (double)b[k] - a[k];
                err2 += d * d, norm2 += (double)a[k] * a[k];
            }
            free(a), free(b);
            tensors++;
        }
        double rel = sqrt(err2 / (norm2 > 0 ? norm2 : 1));
        printf("  %-8s %-16s %3zu tensors  rel L2 %.3g\n", name, p ? prefixes[p] : "weights",
               tensors, rel);
        assert_true(tensors > 0);
        if (!(rel < TOLERANCE))
            fail_msg("%s %s: rel L2 %g >= %g", name, prefixes[p], rel, TOLERANCE);
    }
    digcl_st_close(want), digcl_st_close(got);
}

static void run_reference(const char *name, const digcl_train_objective *objective) {
    reference r;
    load_reference(name, &r);
    digcl_context *ctx = test_context();
    digcl_model *model = digcl_model_create(ctx, &r.config);
    char path[512], error[1024];
    snprintf(path, sizeof path, FIXTURES "train_%s/initial.safetensors", name);
    assert_int_equal(digcl_checkpoint_load(model, path, error, sizeof error), 0);
    digcl_trainer *trainer = digcl_trainer_create(ctx, model, r.rows, &r.hparams, objective);
    size_t rows = (size_t)r.rows;
    for (int s = 0; s < STEPS; s++)
        digcl_trainer_step_with(trainer, r.x + s * rows * r.chw, r.y + s * rows, r.t + s * rows,
                                r.noise + s * rows * r.chw);
    losses_seen seen = {0};
    assert_int_equal(digcl_trainer_drain(trainer, keep_loss, &seen), STEPS);
    char checkpoint[512];
    snprintf(checkpoint, sizeof checkpoint, "%s/test-train-reference-%s.safetensors",
             getenv("DIGCL_TEST_BINARY_DIR") ? getenv("DIGCL_TEST_BINARY_DIR") : "/tmp", name);
    digcl_train_state state = {STEPS, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0};
    assert_int_equal(
        digcl_train_checkpoint_save(trainer, &state, NULL, checkpoint, error, sizeof error), 0);
    compare_stores(name, checkpoint);
    snprintf(path, sizeof path, FIXTURES "train_%s/expected.safetensors", name);
    digcl_safetensors *want = digcl_st_open_or_die(path);
    float *loss = read_floats(want, "loss", (size_t)STEPS * rows);
    for (int s = 0; s < STEPS; s++) {
        double mean = 0;
        for (size_t n = 0; n < rows; n++) mean += loss[s * rows + n] / (double)rows;
        if (fabs(seen.loss[s] - mean) > TOLERANCE * fabs(mean))
            fail_msg("%s step %d: loss %.9g, reference %.9g", name, s + 1, (double)seen.loss[s],
                     mean);
    }
    free(loss);
    digcl_st_close(want);
    remove(checkpoint);
    digcl_trainer_release(trainer);
    digcl_model_release(model);
    free_reference(&r);
}

/* DiT without learn_sigma: the loss is MSE on eps, here on the host. */
static void test_three_steps_dit_mse(void **unused) {
    (void)unused;
    host_mse h;
    host_mse_init(&h, 3 * 3 * 64, 3);
    digcl_train_objective objective = {host_q_sample, host_loss, &h};
    run_reference("dit_mse", &objective);
    free(h.a), free(h.b), free(h.c), free(h.rows), free(h.t);
}

/* Upstream's loss through the diffusion library (learn_sigma: MSE + VB, t = 0 rows). */
static void run_with_diffusion(const char *name, int learn_sigma) {
    digcl_diffusion *diffusion = digcl_diffusion_create(test_context(), learn_sigma);
    digcl_train_objective objective = digcl_train_diffusion_objective(diffusion);
    run_reference(name, &objective);
    digcl_diffusion_release(diffusion);
}

static void test_three_steps_dig_learn_sigma(void **unused) {
    (void)unused;
    run_with_diffusion("dig_ls", 1);
}

static void test_three_steps_dit_mse_diffusion(void **unused) {
    (void)unused;
    run_with_diffusion("dit_mse", 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_three_steps_dig_learn_sigma),
        cmocka_unit_test(test_three_steps_dit_mse_diffusion),
        cmocka_unit_test(test_three_steps_dit_mse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
