/* The training loop and its checkpoints on PoCL with a tiny model, a
 * test-only batch source and a plain MSE-on-eps objective: bit-exact resume
 * (weights, EMA, moments, logged losses), strict loading, keep-K, temp files
 * never picked up, a full disk, a non-finite stop, train.state, export, the
 * loss plot. */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"
#include "digcl/checkpoint.h"
#include "digcl/elementwise.h"
#include "digcl/plot.h"
#include "digcl/reduce.h"
#include "digcl/safetensors.h"
#include "digcl/train.h"

#define ROWS      3
#define PER_EPOCH 4

/* ------------------------------------------------------------ fixtures */

static digcl_model_config tiny_config(digcl_arch arch) {
    digcl_model_config c;
    memset(&c, 0, sizeof c);
    c.arch = arch;
    c.depth = 2;
    c.hidden_size = 32;
    c.num_heads = 2;
    c.patch_size = 2;
    c.input_size = 8;
    c.in_channels = 1;
    c.num_classes = 3;
    c.learn_sigma = 0;
    digcl_config_error err;
    assert_int_equal(digcl_model_config_finish(&c, &err), 0);
    return c;
}

/* x_t = x + 0.5 noise; loss = mse = mean (out - noise)^2 for every row, vb 0. */
typedef struct fake_objective {
    digcl_context *ctx;
    cl_mem workspace;
    int poison_step; /* the loss of this call becomes NaN; 0: never */
    int calls;
} fake_objective;

static void fake_q_sample(void *user, int N, size_t chw, cl_mem x, cl_mem t, cl_mem noise,
                          cl_mem x_t) {
    fake_objective *f = user;
    (void)t;
    digcl_copy(f->ctx, x, 0, x_t, 0, (size_t)N * chw * sizeof(float));
    digcl_axpy(f->ctx, (size_t)N * chw, 0.5f, noise, x_t);
}

static void fake_loss(void *user, const digcl_diffusion_loss_args *a) {
    fake_objective *f = user;
    int count = a->N * a->channels * (int)a->hw;
    f->calls++;
    for (int n = 0; n < a->N; n++) {
        digcl_mse_forward(f->ctx, count, a->model_out, a->noise, a->loss, (size_t)n, f->workspace);
        digcl_mse_forward(f->ctx, count, a->model_out, a->noise, a->mse, (size_t)n, f->workspace);
    }
    digcl_fill_f32(f->ctx, a->vb, 0, (size_t)a->N, 0.0f);
    if (f->calls == f->poison_step) digcl_fill_f32(f->ctx, a->loss, 0, 1, NAN);
    digcl_mse_backward(f->ctx, count, 1.0f, a->model_out, a->noise, a->dout, 0);
}

/* Batches as a pure function of (epoch, index): what the loader promises. */
typedef struct fake_source {
    digcl_batch batch;
    float x[ROWS * 64];
    int32_t y[ROWS];
    int64_t epoch, index;
} fake_source;

static const digcl_batch *fake_next(void *user) {
    fake_source *s = user;
    test_rng rng = test_rng_seeded((uint64_t)(1000 * s->epoch + s->index + 7));
    test_fill_uniform(&rng, s->x, ROWS * 64, -1.0f, 1.0f);
    for (int n = 0; n < ROWS; n++) s->y[n] = (int32_t)((s->index + n + s->epoch) % 3);
    digcl_batch b = {s->x, s->y, ROWS, s->epoch, s->index, (s->epoch * PER_EPOCH + s->index) * ROWS,
                     0.25, NULL, NULL, 0,        0.0f};
    s->batch = b;
    if (++s->index == PER_EPOCH) s->index = 0, s->epoch++;
    return &s->batch;
}

static void fake_release(void *user, const digcl_batch *batch) { (void)user, (void)batch; }

static void fake_seek(void *user, int64_t epoch, int64_t index) {
    fake_source *s = user;
    s->epoch = epoch;
    s->index = index;
}

typedef struct harness {
    digcl_model *model;
    digcl_trainer *trainer;
    fake_objective objective;
    digcl_buffer workspace;
    fake_source source_state;
    digcl_train_source source;
} harness;

static void harness_open(harness *h, digcl_arch arch, int poison_step) {
    digcl_context *ctx = test_context();
    digcl_model_config c = tiny_config(arch);
    memset(h, 0, sizeof *h);
    h->model = digcl_model_create(ctx, &c);
    digcl_model_init(h->model, 5);
    digcl_model_randomize(h->model, 5, 0.05f); /* zero-initialised heads would hide the rest */
    h->workspace = digcl_buffer_create(ctx, digcl_reduce_workspace_bytes(ROWS * 64), "test ws");
    h->objective = (fake_objective){ctx, h->workspace.mem, poison_step, 0};
    digcl_train_objective objective = {fake_q_sample, fake_loss, &h->objective};
    digcl_train_hparams hp = digcl_train_hparams_defaults();
    hp.adamw.lr = 1e-3f;
    hp.ema_decay = 0.9f;
    hp.class_dropout = 0.3f;
    hp.grad_clip = 0.5f;
    hp.seed = 11;
    h->trainer = digcl_trainer_create(ctx, h->model, ROWS, &hp, &objective);
    h->source =
        (digcl_train_source){fake_next, fake_release, fake_seek, PER_EPOCH, &h->source_state};
}

static void harness_close(harness *h) {
    digcl_trainer_release(h->trainer);
    digcl_model_release(h->model);
    digcl_buffer_release(&h->workspace);
}

static digcl_train_loop_options loop_options(const char *run_dir, int64_t max_steps) {
    digcl_train_loop_options o;
    memset(&o, 0, sizeof o);
    o.run_dir = run_dir;
    o.args_json = "{\"lr\":0.001}";
    o.max_steps = max_steps;
    o.log_every = 2;
    o.ckpt_every = 3;
    o.plot = 1;
    return o;
}

static void make_run_dir(char *out, size_t size, const char *name) {
    const char *base = getenv("DIGCL_TEST_BINARY_DIR");
    char results[2048];
    snprintf(results, sizeof results, "%s/test-train/%s-%d", base ? base : "/tmp", name,
             (int)getpid());
    char error[512];
    assert_int_equal(digcl_results_new_run(results, "DiG-tiny/2", out, size, error, sizeof error),
                     0);
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

/* A copy of train.state JSON without its "train_seconds" (a clock, not
 * training state; the check fails when the field is missing). */
static char *without_clock(const char *json) {
    const char *key = strstr(json, ",\"train_seconds\":");
    if (!key) fail_msg("train.state has no \"train_seconds\": %s", json);
    const char *end = key + 1 + strcspn(key + 1, ",}");
    char *out = malloc(strlen(json) + 1);
    snprintf(out, strlen(json) + 1, "%.*s%s", (int)(key - json), json, end);
    return out;
}

/* Tensor bytes of two safetensors files are equal, names and all, and so is
 * train.state but for the training seconds. */
static void assert_same_tensors(const char *a, const char *b) {
    digcl_safetensors *x = digcl_st_open_or_die(a), *y = digcl_st_open_or_die(b);
    assert_int_equal(x->n_tensors, y->n_tensors);
    for (size_t i = 0; i < x->n_tensors; i++) {
        assert_string_equal(x->tensors[i].name, y->tensors[i].name);
        size_t bytes = x->tensors[i].end - x->tensors[i].begin;
        assert_int_equal(bytes, y->tensors[i].end - y->tensors[i].begin);
        if (memcmp(x->tensors[i].data, y->tensors[i].data, bytes) != 0)
            fail_msg("tensor %s differs between %s and %s", x->tensors[i].name, a, b);
    }
    char *sa = without_clock(digcl_st_metadata(x, "train.state"));
    char *sb = without_clock(digcl_st_metadata(y, "train.state"));
    assert_string_equal(sa, sb);
    free(sa), free(sb);
    digcl_st_close(x), digcl_st_close(y);
}

/* The loss fields of log.jsonl, in order. */
static char *log_losses(const char *run_dir) {
    char path[4200], line[2048];
    snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    char *out = calloc(1, 1 << 16);
    while (fgets(line, sizeof line, f)) {
        char *loss = strstr(line, "\"loss\""), *lr = strstr(line, ",\"lr\"");
        assert_non_null(loss), assert_non_null(lr);
        strncat(out, line, (size_t)(lr - line));
        strcat(out, "\n");
    }
    fclose(f);
    return out;
}

/* The clock of log.jsonl: elapsed_s and train_s of every line, in order. */
typedef struct log_clock {
    int count;
    int64_t step[16];
    double elapsed[16], train[16];
} log_clock;

static log_clock read_log_clock(const char *run_dir) {
    char path[4200], line[2048];
    snprintf(path, sizeof path, "%s/log.jsonl", run_dir);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    log_clock c = {0};
    while (c.count < 16 && fgets(line, sizeof line, f)) {
        const char *elapsed = strstr(line, ",\"elapsed_s\":"),
                   *train = strstr(line, ",\"train_s\":");
        if (!elapsed || !train || train < elapsed) fail_msg("log line without the clock: %s", line);
        c.step[c.count] = strtoll(line + strlen("{\"step\":"), NULL, 10);
        c.elapsed[c.count] = strtod(elapsed + strlen(",\"elapsed_s\":"), NULL);
        c.train[c.count++] = strtod(train + strlen(",\"train_s\":"), NULL);
    }
    fclose(f);
    return c;
}

/* The split run's clock: the first process (steps 2, 4) counts from 0, its
 * checkpoint at step 5 holds its seconds, and the resumed process (6, 8)
 * counts on from there: train_s never falls across the resume. Values are
 * printed with 6 digits, hence the relative tolerance. */
static void check_resumed_clock(const char *split, double saved_seconds) {
    log_clock c = read_log_clock(split);
    assert_int_equal(c.count, 4);
    assert_int_equal(c.step[1], 4), assert_int_equal(c.step[2], 6);
    const double tol = 1e-5;
    for (int i = 0; i < 2; i++) assert_true(c.train[i] == c.elapsed[i]);
    assert_true(saved_seconds > 0 && saved_seconds >= c.train[1] * (1 - tol));
    for (int i = 2; i < 4; i++)
        if (fabs(c.train[i] - (saved_seconds + c.elapsed[i])) > tol * c.train[i])
            fail_msg("step %lld: train_s %g, not the checkpoint's %g + elapsed_s %g",
                     (long long)c.step[i], c.train[i], saved_seconds, c.elapsed[i]);
    for (int i = 1; i < 4; i++)
        if (c.train[i] < c.train[i - 1])
            fail_msg("train_s fell from %g (step %lld) to %g (step %lld)", c.train[i - 1],
                     (long long)c.step[i - 1], c.train[i], (long long)c.step[i]);
}

/* ------------------------------------------------------------ tests */

/* 8 steps in one go == 4 steps, a fresh process state, resume, 4 steps. */
static void check_resume(digcl_arch arch) {
    char straight[4096], split[4096], error[1024];
    make_run_dir(straight, sizeof straight, "straight");
    make_run_dir(split, sizeof split, "split");
    harness h;
    digcl_train_state state = {.seed = 11};
    digcl_train_loop_options o = loop_options(straight, 8);
    harness_open(&h, arch, 0);
    assert_int_equal(digcl_train_loop(h.trainer, &h.source, &o, &state, error, sizeof error),
                     DIGCL_TRAIN_DONE);
    assert_int_equal(state.step, 8);
    assert_int_equal(state.epoch, 2);
    harness_close(&h);

    /* Stop after 5 (not a log or checkpoint boundary: the final checkpoint). */
    digcl_train_state first = {.seed = 11};
    o = loop_options(split, 5);
    harness_open(&h, arch, 0);
    assert_int_equal(digcl_train_loop(h.trainer, &h.source, &o, &first, error, sizeof error),
                     DIGCL_TRAIN_DONE);
    harness_close(&h);

    char path[4200];
    int64_t step = 0;
    assert_int_equal(digcl_results_latest_checkpoint(split, path, sizeof path, &step), 0);
    assert_int_equal(step, 5);
    harness_open(&h, arch, 0); /* fresh weights: the checkpoint must restore everything */
    digcl_train_state resumed;
    char *args = NULL;
    assert_int_equal(
        digcl_train_checkpoint_load(h.trainer, path, &resumed, &args, error, sizeof error), 0);
    assert_string_equal(args, "{\"lr\":0.001}");
    free(args);
    assert_int_equal(resumed.step, 5);
    assert_int_equal(resumed.epoch, 1);
    assert_int_equal(resumed.batch_in_epoch, 1);
    assert_int_equal(resumed.log_count, 1);
    assert_true(resumed.train_seconds > 0 && resumed.train_seconds == first.train_seconds);
    const double saved_seconds = resumed.train_seconds;
    o = loop_options(split, 8);
    assert_int_equal(digcl_train_loop(h.trainer, &h.source, &o, &resumed, error, sizeof error),
                     DIGCL_TRAIN_DONE);
    harness_close(&h);

    char a[4200], b[4200];
    digcl_results_checkpoint_path(straight, 8, a, sizeof a);
    digcl_results_checkpoint_path(split, 8, b, sizeof b);
    assert_same_tensors(a, b);
    char *la = log_losses(straight), *lb = log_losses(split);
    assert_string_equal(la, lb);
    assert_non_null(strstr(la, "\"step\":8"));
    free(la), free(lb);
    check_resumed_clock(split, saved_seconds);
    assert_true(resumed.train_seconds > saved_seconds); /* advanced at the checkpoints */
    snprintf(a, sizeof a, "%s/loss.png", straight);
    assert_true(file_exists(a));
}

static void test_resume_bit_exact_dig(void **unused) {
    (void)unused;
    check_resume(DIGCL_ARCH_DIG);
}

static void test_resume_bit_exact_dit(void **unused) {
    (void)unused;
    check_resume(DIGCL_ARCH_DIT);
}

typedef struct value_log {
    int count;
    digcl_train_values values[64];
} value_log;

static void record(const digcl_train_values *v, void *user) {
    value_log *log = user;
    if (log->count < 64) log->values[log->count++] = *v;
}

static void test_loss_falls_and_values_drain(void **unused) {
    (void)unused;
    harness h;
    harness_open(&h, DIGCL_ARCH_DIG, 0);
    fake_source *s = &h.source_state;
    value_log log = {0};
    digcl_train_hparams hp = *digcl_trainer_hparams(h.trainer);
    hp.adamw.lr = 5e-2f;
    hp.grad_clip = 0.0f; /* the unclipped path */
    digcl_trainer_set_hparams(h.trainer, &hp);
    for (int k = 0; k < 40; k++) {
        s->epoch = 0, s->index = 0;
        const digcl_batch *b = fake_next(s);
        digcl_trainer_step(h.trainer, b->x, b->y, 0);
    }
    assert_int_equal(digcl_trainer_pending(h.trainer), 40);
    assert_int_equal(digcl_trainer_drain(h.trainer, record, &log), 40);
    assert_int_equal(log.values[0].step, 1);
    assert_int_equal(log.values[39].step, 40);
    for (int k = 0; k < 40; k++) {
        assert_true(log.values[k].loss > 0 && log.values[k].grad_norm > 0);
        assert_true(log.values[k].loss == log.values[k].mse && log.values[k].vb == 0.0f);
    }
    /* The noise changes every step; the same batch still learns on average. */
    double early = 0, late = 0;
    for (int k = 0; k < 8; k++) early += log.values[k].loss, late += log.values[32 + k].loss;
    if (!(late < 0.5 * early))
        fail_msg("loss did not fall: first 8 steps %g, last 8 %g", early, late);
    harness_close(&h);
}

static void test_nonfinite_stops(void **unused) {
    (void)unused;
    char run[4096], error[1024];
    make_run_dir(run, sizeof run, "nan");
    harness h;
    harness_open(&h, DIGCL_ARCH_DIG, 5);
    digcl_train_state state = {.seed = 11};
    digcl_train_loop_options o = loop_options(run, 20);
    assert_int_equal(digcl_train_loop(h.trainer, &h.source, &o, &state, error, sizeof error),
                     DIGCL_TRAIN_NONFINITE);
    harness_close(&h);
    if (!strstr(error, "step 5: loss is NaN") || !strstr(error, "0000003.safetensors"))
        fail_msg("message: %s", error);
    char path[4200];
    int64_t step = 0;
    assert_int_equal(digcl_results_latest_checkpoint(run, path, sizeof path, &step), 0);
    assert_int_equal(step, 3);
}

static void test_keep_and_temp_files(void **unused) {
    (void)unused;
    char run[4096], error[1024], path[4200];
    make_run_dir(run, sizeof run, "keep");
    harness h;
    harness_open(&h, DIGCL_ARCH_DIT, 0);
    digcl_train_state state = {.seed = 11};
    digcl_train_loop_options o = loop_options(run, 9);
    o.ckpt_every = 2;
    o.keep = 2;
    assert_int_equal(digcl_train_loop(h.trainer, &h.source, &o, &state, error, sizeof error),
                     DIGCL_TRAIN_DONE);
    harness_close(&h);
    const int64_t kept[] = {8, 9}, gone[] = {2, 4, 6};
    for (int i = 0; i < 2; i++) {
        digcl_results_checkpoint_path(run, kept[i], path, sizeof path);
        assert_true(file_exists(path));
    }
    for (int i = 0; i < 3; i++) {
        digcl_results_checkpoint_path(run, gone[i], path, sizeof path);
        assert_false(file_exists(path));
    }
    /* A half-written newer checkpoint (a kill during the write) is never picked. */
    snprintf(path, sizeof path, "%s/checkpoints/0000012.safetensors.tmp.AbC123", run);
    FILE *f = fopen(path, "wb");
    fputs("half", f);
    fclose(f);
    int64_t step = 0;
    char latest[4200];
    assert_int_equal(digcl_results_latest_checkpoint(run, latest, sizeof latest, &step), 0);
    assert_int_equal(step, 9);
    const char *results_end = strrchr(run, '/');
    char results[4096];
    snprintf(results, sizeof results, "%.*s", (int)(results_end - run), run);
    assert_int_equal(digcl_results_latest_run(results, latest, sizeof latest, error, sizeof error),
                     0);
    assert_string_equal(latest, run);
    assert_int_equal(digcl_results_prune(run, 2, error, sizeof error), 0);
    assert_false(file_exists(path)); /* stale temp files go at the next prune */
}

static void test_full_disk_keeps_previous(void **unused) {
    (void)unused;
    char run[4096], error[1024], path[4200];
    make_run_dir(run, sizeof run, "full");
    harness h;
    harness_open(&h, DIGCL_ARCH_DIG, 0);
    digcl_train_state state = {.seed = 11};
    digcl_train_loop_options o = loop_options(run, 3);
    assert_int_equal(digcl_train_loop(h.trainer, &h.source, &o, &state, error, sizeof error),
                     DIGCL_TRAIN_DONE);
    /* Files may grow to 4 KiB only: the next checkpoint cannot be written. */
    struct rlimit saved, tiny = {4096, 4096};
    getrlimit(RLIMIT_FSIZE, &saved);
    tiny.rlim_max = saved.rlim_max;
    void (*previous)(int) = signal(SIGXFSZ, SIG_IGN);
    setrlimit(RLIMIT_FSIZE, &tiny);
    o = loop_options(run, 6);
    o.plot = 0;
    digcl_train_stop stop = digcl_train_loop(h.trainer, &h.source, &o, &state, error, sizeof error);
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, previous);
    harness_close(&h);
    assert_int_equal(stop, DIGCL_TRAIN_FAILED);
    if (!strstr(error, "checkpoint of step 6 not written") ||
        !strstr(error, "0000003.safetensors) is kept"))
        fail_msg("message: %s", error);
    int64_t step = 0;
    assert_int_equal(digcl_results_latest_checkpoint(run, path, sizeof path, &step), 0);
    assert_int_equal(step, 3);
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    assert_int_equal(digcl_st_open(path, &st, &err), 0); /* intact */
    digcl_st_close(st);
}

/* The output [ROWS, C, H, W] of a forward pass on a fixed batch (a sample's
 * network evaluation). */
static float *forward_output(digcl_model *model) {
    const digcl_model_config *c = digcl_model_get_config(model);
    size_t chw = (size_t)c->in_channels * c->input_size * c->input_size, n = ROWS;
    test_rng rng = test_rng_seeded(3);
    float *x = test_random_floats(&rng, n * chw, 1.0f);
    float t[ROWS] = {1.0f, 500.0f, 999.0f};
    int32_t y[ROWS] = {0, 2, 3};
    cl_mem xs = test_upload(x, n * chw), ts = test_upload(t, n);
    cl_mem ys = test_upload((const float *)y, n), out = test_poisoned(n * chw);
    digcl_model_inputs in = {xs, ts, ys};
    digcl_model_prepare(model, ROWS, DIGCL_MODE_TRAINING);
    digcl_model_forward(model, &in, out);
    float *host = test_download(out, n * chw);
    test_release(xs), test_release(ts), test_release(ys), test_release(out);
    free(x);
    return host;
}

static void test_strict_load_and_export(void **unused) {
    (void)unused;
    char run[4096], error[1024], path[4200], out[4300];
    make_run_dir(run, sizeof run, "export");
    harness h;
    harness_open(&h, DIGCL_ARCH_DIG, 0);
    digcl_train_state state = {.seed = 11};
    digcl_train_loop_options o = loop_options(run, 3);
    assert_int_equal(digcl_train_loop(h.trainer, &h.source, &o, &state, error, sizeof error),
                     DIGCL_TRAIN_DONE);
    digcl_results_checkpoint_path(run, 3, path, sizeof path);
    /* EMA export loads as a model; its weights differ from the model's. */
    snprintf(out, sizeof out, "%s/ema.safetensors", run);
    assert_int_equal(digcl_train_checkpoint_export(path, "ema", out, error, sizeof error), 0);
    digcl_model_config c = tiny_config(DIGCL_ARCH_DIG);
    digcl_model *ema = digcl_model_create(test_context(), &c);
    assert_int_equal(digcl_checkpoint_load(ema, out, error, sizeof error), 0);
    const digcl_param_table *table = digcl_model_param_table(ema);
    size_t last = table->count - 1; /* final_layer.linear.bias: trained */
    float *e = calloc(table->params[last].numel, sizeof *e),
          *m = calloc(table->params[last].numel, sizeof *m);
    digcl_model_read_param(ema, last, e);
    digcl_model_read_param(h.model, last, m);
    assert_true(memcmp(e, m, table->params[last].numel * sizeof *e) != 0);
    free(e), free(m);
    /* EMA sampling during training runs the model on the EMA store: the same
     * outputs, bit for bit, as the exported EMA weights. */
    size_t out_count = (size_t)ROWS * c.in_channels * c.input_size * c.input_size;
    float *want = forward_output(ema);
    digcl_model_use_params(h.model, digcl_trainer_ema(h.trainer));
    float *got = forward_output(h.model);
    digcl_model_use_params(h.model, NULL);
    float *own = forward_output(h.model);
    assert_memory_equal(want, got, out_count * sizeof *want);
    assert_true(memcmp(want, own, out_count * sizeof *want) != 0);
    free(want), free(got), free(own);
    digcl_model_release(ema);
    /* A weights-only file is not a training checkpoint. */
    digcl_train_state s2;
    assert_int_equal(digcl_train_checkpoint_load(h.trainer, out, &s2, NULL, error, sizeof error),
                     -1);
    assert_non_null(strstr(error, "not a digcl training checkpoint"));
    assert_int_equal(digcl_train_checkpoint_export(out, "model", path, error, sizeof error), -1);
    assert_int_equal(digcl_train_checkpoint_export(path, "best", out, error, sizeof error), -1);
    assert_non_null(strstr(error, "expected ema or model"));
    harness_close(&h);
    /* A different model refuses the checkpoint, naming the tensor. */
    harness_open(&h, DIGCL_ARCH_DIT, 0);
    assert_int_equal(digcl_train_checkpoint_load(h.trainer, path, &s2, NULL, error, sizeof error),
                     -1);
    assert_non_null(strstr(error, "tensor"));
    harness_close(&h);
}

/* What the trainer allocates is what digcl_trainer_step_bytes and 3 P say. */
static void test_trainer_memory(void **unused) {
    (void)unused;
    digcl_context *ctx = test_context();
    digcl_model_config c = tiny_config(DIGCL_ARCH_DIG);
    uint64_t empty = digcl_memory_stats_get(ctx).in_use_bytes;
    digcl_model *model = digcl_model_create(ctx, &c);
    digcl_model_prepare(model, ROWS, DIGCL_MODE_TRAINING);
    (void)digcl_model_grad_buffer(model);
    uint64_t before = digcl_memory_stats_get(ctx).in_use_bytes;
    fake_objective f = {ctx, NULL, 0, 0};
    digcl_train_objective objective = {fake_q_sample, fake_loss, &f};
    digcl_train_hparams hp = digcl_train_hparams_defaults();
    digcl_trainer *tr = digcl_trainer_create(ctx, model, ROWS, &hp, &objective);
    size_t flat = digcl_model_flat_count(model);
    uint64_t used = digcl_memory_stats_get(ctx).in_use_bytes - before;
    assert_int_equal(used, 3 * flat * sizeof(float) + digcl_trainer_step_bytes(&c, ROWS, flat));
    /* digcl info's training estimate is everything the model and trainer allocate */
    digcl_train_memory estimate;
    char error[256];
    assert_int_equal(digcl_train_memory_estimate(&c, ROWS, &estimate, error, sizeof error), 0);
    assert_int_equal(digcl_memory_stats_get(ctx).in_use_bytes - empty, estimate.total);
    digcl_trainer_release(tr);
    digcl_model_release(model);
}

static void test_state_json(void **unused) {
    (void)unused;
    digcl_train_state s = {123456789, 7,     42, 18446744073709551615ull, 3, 0.1, 0.2, 1e-30,
                           3.5,       12.25, 2,  1234.5678901234567};
    char *json = digcl_train_state_to_json(&s);
    digcl_train_state back;
    char error[256];
    assert_int_equal(digcl_train_state_from_json(json, &back, error, sizeof error), 0);
    assert_memory_equal(&s, &back, sizeof s);
    /* An older checkpoint without the field: no seconds yet, the rest as written. */
    char *old = without_clock(json);
    assert_int_equal(digcl_train_state_from_json(old, &back, error, sizeof error), 0);
    assert_true(back.train_seconds == 0.0);
    back.train_seconds = s.train_seconds;
    assert_memory_equal(&s, &back, sizeof s);
    char bad[1024];
    snprintf(bad, sizeof bad, "%.*s,\"train_seconds\":-1}", (int)(strlen(old) - 1), old);
    assert_int_equal(digcl_train_state_from_json(bad, &back, error, sizeof error), -1);
    assert_non_null(strstr(error, "\"train_seconds\""));
    free(old), free(json);
    assert_int_equal(digcl_train_state_from_json("{\"step\":-1}", &back, error, sizeof error), -1);
    assert_non_null(strstr(error, "\"step\""));
}

static void test_log_truncate(void **unused) {
    (void)unused;
    char run[4096], path[4200], error[256], text[512];
    make_run_dir(run, sizeof run, "trunc");
    snprintf(path, sizeof path, "%s/log.jsonl", run);
    FILE *f = fopen(path, "w");
    fputs("{\"step\":2,\"loss\":1}\n{\"step\":4,\"loss\":1}\n{\"step\":6,\"loss\":1}\n{\"step\":8,",
          f);
    fclose(f);
    assert_int_equal(digcl_train_log_truncate(run, 4, error, sizeof error), 0);
    f = fopen(path, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_string_equal(text, "{\"step\":2,\"loss\":1}\n{\"step\":4,\"loss\":1}\n");
}

static void test_plot(void **unused) {
    (void)unused;
    double ticks[64];
    int n = digcl_plot_ticks(0, 1000, 0, ticks, 64);
    assert_true(n >= 3 && ticks[0] == 0 && ticks[n - 1] == 1000);
    n = digcl_plot_ticks(0.01, 10, 1, ticks, 64);
    assert_true(n >= 4 && ticks[0] == 0.01 && ticks[n - 1] == 10);
    if (!digcl_plot_available()) return;
    double x[50], y[50];
    for (int i = 0; i < 50; i++) x[i] = i * 10, y[i] = 1.0 / (1 + i);
    y[7] = NAN;
    digcl_plot_series series = {"loss", x, y, 50, {0.1, 0.2, 0.8}, 0};
    digcl_plot plot = {"title", "step", "loss", 1, 320, 200, &series, 1};
    char run[4096], path[4200], error[256];
    make_run_dir(run, sizeof run, "plot");
    snprintf(path, sizeof path, "%s/p.png", run);
    assert_int_equal(digcl_plot_png(&plot, path, error, sizeof error), 0);
    unsigned char signature[8];
    FILE *f = fopen(path, "rb");
    assert_int_equal(fread(signature, 1, 8, f), 8);
    fclose(f);
    assert_memory_equal(signature, "\x89PNG\r\n\x1a\n", 8);
    assert_int_equal(digcl_plot_png(&plot, "/nonexistent-dir/p.png", error, sizeof error), -1);
    assert_non_null(strstr(error, "/nonexistent-dir/p.png"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_json),
        cmocka_unit_test(test_trainer_memory),
        cmocka_unit_test(test_log_truncate),
        cmocka_unit_test(test_plot),
        cmocka_unit_test(test_loss_falls_and_values_drain),
        cmocka_unit_test(test_resume_bit_exact_dig),
        cmocka_unit_test(test_resume_bit_exact_dit),
        cmocka_unit_test(test_nonfinite_stops),
        cmocka_unit_test(test_keep_and_temp_files),
        cmocka_unit_test(test_full_disk_keeps_previous),
        cmocka_unit_test(test_strict_load_and_export),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
