/* `digcl train`: upstream's train.py on any OpenCL device. Flags, the run
 * folder (results/NNN-<model>/), resume (auto or a file: the model and the
 * data set must match, changed hyper-parameters are listed), progress on a
 * terminal or one line per log interval, and the exit code. The loop itself
 * is the library's (digcl_train_loop). */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "digcl/checkpoint.h"
#include "digcl/data.h"
#include "digcl/diffusion.h"
#include "digcl/log.h"
#include "digcl/train.h"
#include "digcl/vae.h"
#include "digcl/runtime.h"
#include "model_flags.h"
#include "train_dist.h"
#include "train_sample.h"

#define PATH_SIZE 4608

void usage_train(void) {
    printf(
        "usage: digcl train --data SPEC [--model NAME | custom model flags] [options]\n\n"
        "Trains a class-conditional DiG or DiT with upstream's diffusion loss, AdamW and EMA,\n"
        "writing results/NNN-<model>/ with checkpoints/, log.jsonl, config.json and loss.png.\n\n"
        "data and model:\n"
        "  --data SPEC            fashion-mnist, idx:DIR, latents:FILE.safetensors, or an image\n"
        "                         folder DIR (one subfolder per class)\n"
        "  --image-size S         image folders: train at S x S pixels (pixel space)\n"
        "  --vae FILE             image folders: train in the latent space of this SD VAE,\n"
        "                         encoding every batch (z = 0.18215 (mean + std eps)) as upstream\n"
        "  --channels 1|3         image folders: grey or RGB (default 3)\n"
        "  --hflip 0|1            random horizontal flips (default 1; never for latents)\n"
        "  --workers N            decoding threads (default: cores - 1)\n"
        "  The model's in_channels, input_size and num_classes follow the data set unless given.\n");
    model_flags_usage(1);
    train_dist_usage();
    printf(
        "\noptimisation (upstream's defaults):\n"
        "  --global-batch-size N  rows per step over all processes (256); per process N / world\n"
        "  --epochs E             (1400)   --max-steps S (none)   --time-budget T (none; 90s,\n"
        "                         20m, 1.5h): training stops at whichever comes first\n"
        "  --lr LR (1e-4)  --wd WD (0)  --betas B1,B2 (0.9,0.999)  --adam-eps EPS (1e-8)\n"
        "  --grad-clip NORM       global L2 norm clip (0: off)\n"
        "  --ema-decay D (0.9999)  --class-dropout P (0.1)  --global-seed S (0)\n\n"
        "run folder:\n"
        "  --results-dir DIR      (results)\n"
        "  --log-every N (100)  --ckpt-every N (50000)  --keep K (checkpoints kept; 0: all)\n"
        "  --resume auto|PATH     auto: the newest complete checkpoint under --results-dir (a new\n"
        "                         run when there is none); PATH: that checkpoint\n"
        "  --sample-every K       every K steps an EMA sample grid in samples/SSSSSSS.png (0: off):\n"
        "                         --sample-per-class N (8) of each of the first 10 classes, fixed\n"
        "                         seed, dpm++2m --sample-steps S (25), --sample-cfg-scale G (3)\n\n"
        "Ctrl-C writes a checkpoint and stops. Exit 1 on a non-finite loss or gradient (the last\n"
        "good checkpoint is kept) or a checkpoint that cannot be written.\n\n"
        "example:\n"
        "  digcl train --data fashion-mnist --model DiG-S/2 --global-batch-size 128 \\\n"
        "              --time-budget 20m --ckpt-every 2000\n"
        "(DiG reorders tokens after every block (SREM); a depth that is a multiple of 4, as every\n"
        " preset is, hands them to the head in the input's order.)\n");
}

/* ------------------------------------------------------------ flags */

typedef struct train_args {
    model_flags model;
    const char *data, *results_dir, *resume, *vae;
    long image_size, channels, hflip, workers;
    long global_batch, epochs, max_steps, log_every, ckpt_every, keep;
    double time_budget, lr, wd, beta1, beta2, adam_eps, grad_clip, ema_decay, class_dropout;
    unsigned long long seed;
    train_sample_options sample; /* --sample-every and its grid */
    train_dist *dist;            /* the process group and its flags */
} train_args;

static void args_defaults(train_args *a) {
    memset(a, 0, sizeof *a);
    model_flags_init(&a->model);
    a->results_dir = "results";
    a->image_size = 0, a->channels = 0, a->hflip = 1, a->workers = 0;
    a->global_batch = 256, a->epochs = 1400, a->max_steps = 0;
    a->log_every = 100, a->ckpt_every = 50000, a->keep = 0;
    a->lr = 1e-4, a->wd = 0, a->beta1 = 0.9, a->beta2 = 0.999, a->adam_eps = 1e-8;
    a->grad_clip = 0, a->ema_decay = 0.9999, a->class_dropout = 0.1;
    a->sample.every = 0, a->sample.per_class = 8, a->sample.steps = 25, a->sample.cfg_scale = 3.0;
}

/* "90", "90s", "20m", "1.5h" -> seconds; exits 2 naming the flag. */
static double parse_duration(const char *flag, const char *value) {
    char *end = NULL;
    errno = 0;
    double v = strtod(value, &end);
    double unit = !end || !*end           ? 1
                  : strcmp(end, "s") == 0 ? 1
                  : strcmp(end, "m") == 0 ? 60
                  : strcmp(end, "h") == 0 ? 3600
                                          : -1;
    if (errno || end == value || unit < 0 || !isfinite(v) || v <= 0) {
        fprintf(stderr, "digcl: %s expects a duration such as 90s, 20m or 1.5h, got '%s'\n", flag,
                value);
        exit(2);
    }
    return v * unit;
}

static void parse_betas(const char *value, train_args *a) {
    char *end = NULL;
    a->beta1 = strtod(value, &end);
    int comma = end && *end == ',';
    if (comma) a->beta2 = strtod(end + 1, &end);
    if (!comma || !end || *end || end == value || !(a->beta1 >= 0 && a->beta1 < 1) ||
        !(a->beta2 >= 0 && a->beta2 < 1)) {
        fprintf(stderr, "digcl: --betas expects B1,B2 with each in [0, 1), got '%s'\n", value);
        exit(2);
    }
}

static int take_long(int argc, char **argv, int *i, const char *flag, long *out, long min,
                     long max) {
    const char *value;
    if (!cli_option_value(argc, argv, i, flag, &value)) return 0;
    *out = cli_parse_long(flag, value, min, max);
    return 1;
}

static int take_double(int argc, char **argv, int *i, const char *flag, double *out, double min,
                       double max) {
    const char *value;
    if (!cli_option_value(argc, argv, i, flag, &value)) return 0;
    *out = cli_parse_double(flag, value, min, max);
    return 1;
}

static int take_train_flag(int argc, char **argv, int *i, train_args *a) {
    const char *v;
    if (cli_option_value(argc, argv, i, "--data", &v)) a->data = v;
    else if (cli_option_value(argc, argv, i, "--results-dir", &v)) a->results_dir = v;
    else if (cli_option_value(argc, argv, i, "--resume", &v)) a->resume = v;
    else if (cli_option_value(argc, argv, i, "--vae", &v)) a->vae = v;
    else if (cli_option_value(argc, argv, i, "--time-budget", &v))
        a->time_budget = parse_duration("--time-budget", v);
    else if (cli_option_value(argc, argv, i, "--betas", &v)) parse_betas(v, a);
    else if (cli_option_value(argc, argv, i, "--global-seed", &v))
        a->seed = (unsigned long long)cli_parse_long("--global-seed", v, 0, 0x7fffffffL);
    else
        return take_long(argc, argv, i, "--image-size", &a->image_size, 1, 16384) ||
               take_long(argc, argv, i, "--channels", &a->channels, 1, 3) ||
               take_long(argc, argv, i, "--hflip", &a->hflip, 0, 1) ||
               take_long(argc, argv, i, "--workers", &a->workers, 0, 256) ||
               take_long(argc, argv, i, "--global-batch-size", &a->global_batch, 1, 1L << 20) ||
               take_long(argc, argv, i, "--epochs", &a->epochs, 1, 1L << 30) ||
               take_long(argc, argv, i, "--max-steps", &a->max_steps, 1, 1L << 40) ||
               take_long(argc, argv, i, "--log-every", &a->log_every, 1, 1L << 30) ||
               take_long(argc, argv, i, "--ckpt-every", &a->ckpt_every, 1, 1L << 30) ||
               take_long(argc, argv, i, "--keep", &a->keep, 0, 1L << 20) ||
               take_long(argc, argv, i, "--sample-every", &a->sample.every, 0, 1L << 30) ||
               take_long(argc, argv, i, "--sample-per-class", &a->sample.per_class, 1, 64) ||
               take_long(argc, argv, i, "--sample-steps", &a->sample.steps, 1, 1000) ||
               take_double(argc, argv, i, "--sample-cfg-scale", &a->sample.cfg_scale, 1, 100) ||
               take_double(argc, argv, i, "--lr", &a->lr, 0, 1e30) ||
               take_double(argc, argv, i, "--wd", &a->wd, 0, 10) ||
               take_double(argc, argv, i, "--adam-eps", &a->adam_eps, 0, 1) ||
               take_double(argc, argv, i, "--grad-clip", &a->grad_clip, 0, 1e30) ||
               take_double(argc, argv, i, "--ema-decay", &a->ema_decay, 0, 1) ||
               take_double(argc, argv, i, "--class-dropout", &a->class_dropout, 0, 1);
    return 1;
}

static int parse_args(int argc, char **argv, train_args *a, train_dist *dist) {
    args_defaults(a);
    a->dist = dist;
    for (int i = 1; i < argc; i++) {
        if (take_train_flag(argc, argv, &i, a)) continue;
        if (train_dist_take_flag(dist, argc, argv, &i)) continue;
        if (model_flags_take(&a->model, argc, argv, &i)) continue;
        cli_unknown_argument("train", argv[i]);
    }
    if (a->model.image_size >= 0) { /* model_flags took it: pixels here */
        a->image_size = a->model.image_size;
        a->model.image_size = -1;
    }
    if (!a->data) {
        fprintf(stderr, "digcl train: missing --data SPEC (see `digcl train --help`)\n");
        return 2;
    }
    if (a->model.ckpt) {
        fprintf(stderr,
                "digcl train: --ckpt is not a train flag; use --resume PATH to continue a run\n");
        return 2;
    }
    return 0;
}

static int model_flags_given(const model_flags *f) {
    if (f->model || f->arch) return 1;
    for (int k = 0; k < MODEL_FLAG_COUNT; k++)
        if (f->values[k] >= 0) return 1;
    return 0;
}

/* ------------------------------------------------------------ train.args / config.json */

static cJSON *args_json(const train_args *a, const char *model_name, const digcl_model_config *cfg,
                        int world, digcl_precision precision) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "data", a->data);
    cJSON_AddStringToObject(o, "model", model_name);
    cJSON_AddStringToObject(o, "attention", digcl_attention_mode_name(cfg->attention));
    cJSON_AddStringToObject(o, "activations", digcl_activation_mode_name(cfg->activations));
    /* GEMM arithmetic (--precision): a resume under another one warns, since it is no
     * longer bit-exact */
    cJSON_AddStringToObject(o, "precision", digcl_precision_name(precision));
    if (a->vae) cJSON_AddStringToObject(o, "vae", a->vae);
    cJSON_AddNumberToObject(o, "image_size", (double)a->image_size);
    cJSON_AddNumberToObject(o, "channels", (double)a->channels);
    cJSON_AddNumberToObject(o, "hflip", (double)a->hflip);
    cJSON_AddNumberToObject(o, "global_batch_size", (double)a->global_batch);
    cJSON_AddNumberToObject(o, "world_size", world);
    cJSON_AddNumberToObject(o, "epochs", (double)a->epochs);
    cJSON_AddNumberToObject(o, "max_steps", (double)a->max_steps);
    cJSON_AddNumberToObject(o, "time_budget_s", a->time_budget);
    cJSON_AddNumberToObject(o, "lr", a->lr);
    cJSON_AddNumberToObject(o, "wd", a->wd);
    cJSON_AddNumberToObject(o, "beta1", a->beta1);
    cJSON_AddNumberToObject(o, "beta2", a->beta2);
    cJSON_AddNumberToObject(o, "adam_eps", a->adam_eps);
    cJSON_AddNumberToObject(o, "grad_clip", a->grad_clip);
    cJSON_AddNumberToObject(o, "ema_decay", a->ema_decay);
    cJSON_AddNumberToObject(o, "class_dropout", a->class_dropout);
    cJSON_AddNumberToObject(o, "global_seed", (double)a->seed);
    cJSON_AddNumberToObject(o, "log_every", (double)a->log_every);
    cJSON_AddNumberToObject(o, "ckpt_every", (double)a->ckpt_every);
    cJSON_AddNumberToObject(o, "keep", (double)a->keep);
    cJSON_AddStringToObject(o, "results_dir", a->results_dir);
    return o;
}

/* Flags that steer the run rather than what it learns (and the data set,
 * which is checked on its own; the attention and activation modes change memory
 * and speed, not the function): changing them needs no warning. */
static int is_run_control(const char *key) {
    static const char *const keys[] = {"data",          "results_dir", "max_steps",  "epochs",
                                       "time_budget_s", "log_every",   "ckpt_every", "keep",
                                       "model",         "attention",   "activations"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (strcmp(key, keys[i]) == 0) return 1;
    return 0;
}

/* Lists the hyper-parameters that differ between the checkpoint's
 * train.args and this run's (a warning; the run goes on with the new ones). */
static void warn_changed_args(const char *old_text, const cJSON *now) {
    cJSON *old = old_text ? cJSON_Parse(old_text) : NULL;
    char changes[2048] = "";
    for (const cJSON *item = now ? now->child : NULL; old && item; item = item->next) {
        const cJSON *before = cJSON_GetObjectItemCaseSensitive(old, item->string);
        if (!before || cJSON_Compare(before, item, 1)) continue;
        if (is_run_control(item->string)) continue;
        char *a = cJSON_PrintUnformatted(before), *b = cJSON_PrintUnformatted(item);
        size_t n = strlen(changes);
        snprintf(changes + n, sizeof changes - n, "%s%s %s -> %s", n ? ", " : "", item->string, a,
                 b);
        free(a), free(b);
    }
    if (changes[0])
        fprintf(stderr, "digcl train: warning: resuming with changed settings: %s\n", changes);
    cJSON_Delete(old);
}

static int write_config_json(const char *run_dir, const cJSON *args, const digcl_model_config *cfg,
                             const digcl_dataset_info *info) {
    cJSON *root = cJSON_CreateObject();
    char *model = digcl_model_config_to_json(cfg);
    cJSON_AddItemToObject(root, "args", cJSON_Duplicate(args, 1));
    cJSON_AddItemToObject(root, "model", cJSON_Parse(model));
    cJSON *data = cJSON_AddObjectToObject(root, "data");
    cJSON_AddNumberToObject(data, "count", (double)info->count);
    cJSON_AddNumberToObject(data, "channels", info->channels);
    cJSON_AddNumberToObject(data, "height", info->height);
    cJSON_AddNumberToObject(data, "width", info->width);
    cJSON_AddNumberToObject(data, "num_classes", info->num_classes);
    cJSON_AddBoolToObject(data, "is_latent", info->is_latent);
    char *text = cJSON_Print(root), path[PATH_SIZE], error[1024];
    snprintf(path, sizeof path, "%s/config.json", run_dir);
    int status = text ? digcl_write_file_atomic(path, text, strlen(text), error, sizeof error) : -1;
    if (status != 0) fprintf(stderr, "digcl train: %s\n", text ? error : "out of host memory");
    free(text), free(model);
    cJSON_Delete(root);
    return status;
}

/* ------------------------------------------------------------ model and data */

/* The data set fixes C and the grid; num_classes follows it unless given. */
static int fit_model_to_data(const train_args *a, const digcl_dataset_info *info,
                             digcl_model_config *cfg) {
    const long *v = a->model.values;
    if ((v[MODEL_FLAG_IN_CHANNELS] >= 0 && v[MODEL_FLAG_IN_CHANNELS] != info->channels) ||
        (v[MODEL_FLAG_INPUT_SIZE] >= 0 && v[MODEL_FLAG_INPUT_SIZE] != info->height)) {
        fprintf(stderr,
                "digcl train: the data set %s has %d channels at %dx%d, but the flags ask for "
                "--in-channels %d --input-size %d\n",
                a->data, info->channels, info->height, info->width, cfg->in_channels,
                cfg->input_size);
        return 2;
    }
    cfg->in_channels = info->channels;
    cfg->input_size = info->height;
    if (v[MODEL_FLAG_NUM_CLASSES] < 0) cfg->num_classes = info->num_classes;
    if (cfg->num_classes < info->num_classes) {
        fprintf(stderr, "digcl train: --num-classes %d, but the data set %s has %d classes\n",
                cfg->num_classes, a->data, info->num_classes);
        return 2;
    }
    digcl_config_error err;
    if (info->height != info->width || digcl_model_config_finish(cfg, &err) != 0) {
        fprintf(stderr, "digcl train: the data set's %dx%d inputs do not fit the model: %s\n",
                info->height, info->width,
                info->height != info->width ? "not square" : err.message);
        return 2;
    }
    return 0;
}

/* Same architecture and shapes as the checkpoint (refused otherwise). */
static int same_model(const digcl_model_config *a, const digcl_model_config *b) {
    char *x = digcl_model_config_to_json(a), *y = digcl_model_config_to_json(b);
    int same = x && y && strcmp(x, y) == 0;
    if (!same)
        fprintf(
            stderr,
            "digcl train: cannot resume: the checkpoint's model is\n  %s\nbut this run's is\n  %s\n",
            x, y);
    free(x), free(y);
    return same;
}

/* ------------------------------------------------------------ resume */

typedef struct resume_plan {
    char run_dir[PATH_SIZE];
    char checkpoint[PATH_SIZE]; /* "" for a fresh run */
} resume_plan;

/* --resume auto|PATH -> the run folder and checkpoint; 0, or an exit code. */
static int plan_resume(const train_args *a, resume_plan *plan) {
    char error[1024];
    plan->run_dir[0] = plan->checkpoint[0] = '\0';
    if (!a->resume) return 0;
    if (strcmp(a->resume, "auto") == 0) {
        int found = digcl_results_latest_run(a->results_dir, plan->run_dir, sizeof plan->run_dir,
                                             error, sizeof error);
        if (found < 0) return fprintf(stderr, "digcl train: %s\n", error), 1;
        if (found == 1) {
            fprintf(stderr, "digcl train: no complete checkpoint under %s: starting a new run\n",
                    a->results_dir);
            plan->run_dir[0] = '\0';
            return 0;
        }
        digcl_results_latest_checkpoint(plan->run_dir, plan->checkpoint, sizeof plan->checkpoint,
                                        NULL);
        return 0;
    }
    struct stat st;
    if (stat(a->resume, &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "digcl train: --resume %s: %s\n", a->resume,
                strerror(errno ? errno : EISDIR));
        return 2;
    }
    snprintf(plan->checkpoint, sizeof plan->checkpoint, "%s", a->resume);
    /* .../RUN/checkpoints/FILE continues RUN; a file elsewhere starts a new run from it. */
    char copy[PATH_SIZE];
    snprintf(copy, sizeof copy, "%s", a->resume);
    char *slash = strrchr(copy, '/');
    if (slash) *slash = '\0';
    const char *parent = slash ? copy : ".";
    size_t n = strlen(parent);
    if (n >= 11 && strcmp(parent + n - 11, "checkpoints") == 0 &&
        (n == 11 || parent[n - 12] == '/'))
        snprintf(plan->run_dir, sizeof plan->run_dir, "%.*s", n == 11 ? 1 : (int)(n - 12),
                 n == 11 ? "." : parent);
    return 0;
}

/* ------------------------------------------------------------ progress */

typedef struct progress {
    int terminal;
    int64_t total; /* steps planned; 0 unknown */
    double budget, start, last_print;
    int64_t start_step;
    int batch;
    double smooth_loss, grad_norm;
    int have_values;
    int printed_line;       /* a \r line is on screen */
    train_sampler *sampler; /* --sample-every, or NULL */
} progress;

static void format_eta(char *buf, size_t size, double s) {
    if (!(s >= 0) || !isfinite(s)) snprintf(buf, size, "?");
    else if (s >= 3600) snprintf(buf, size, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else snprintf(buf, size, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

static void on_values(const digcl_train_values *v, void *user) {
    progress *p = user;
    p->smooth_loss = p->have_values ? 0.98 * p->smooth_loss + 0.02 * v->loss : v->loss;
    p->grad_norm = v->grad_norm;
    p->have_values = 1;
}

static void on_step(int64_t step, void *user) {
    progress *p = user;
    double now = digcl_seconds_now();
    if (!p->terminal || now - p->last_print < 0.25) return;
    p->last_print = now;
    double elapsed = now - p->start, rate = (double)(step - p->start_step) / fmax(elapsed, 1e-9);
    double left = p->total > 0 ? (double)(p->total - step) / fmax(rate, 1e-9) : INFINITY;
    if (p->budget > 0) left = fmin(left, p->budget - elapsed);
    char eta[32], total[32] = "?";
    format_eta(eta, sizeof eta, left);
    if (p->total > 0) snprintf(total, sizeof total, "%lld", (long long)p->total);
    fprintf(stderr, "\rstep %lld/%s  loss %.4f  grad %.3f  %.1f img/s  ETA %s   ", (long long)step,
            total, p->smooth_loss, p->grad_norm, rate * p->batch, eta);
    fflush(stderr);
    p->printed_line = 1;
}

static void on_log(const digcl_train_log_entry *e, void *user) {
    progress *p = user;
    if (p->terminal) return;
    printf(
        "step %lld epoch %lld loss %.5f mse %.5f vb %.5f grad %.4f lr %.3g %.1f img/s data-wait %.2f ms "
        "elapsed %.1f s\n",
        (long long)e->step, (long long)e->epoch, e->loss, e->mse, e->vb, e->grad_norm, e->lr,
        e->images_per_second, e->data_wait_ms, e->elapsed_s);
    fflush(stdout);
}

static void on_checkpoint(const char *path, int64_t step, void *user) {
    progress *p = user;
    if (p->printed_line) fprintf(stderr, "\n"), p->printed_line = 0;
    fprintf(stderr, "digcl train: step %lld: saved %s\n", (long long)step, path);
}

static void on_sample(digcl_trainer *trainer, int64_t step, void *user) {
    (void)trainer;
    progress *p = user;
    if (p->printed_line) fprintf(stderr, "\n"), p->printed_line = 0;
    const char *path = train_sampler_write(p->sampler, step);
    if (path) fprintf(stderr, "digcl train: step %lld: EMA samples in %s\n", (long long)step, path);
}

static volatile int stop_requested = 0;

static void on_sigint(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
    signal(SIGINT, SIG_DFL); /* a second Ctrl-C stops at once */
}

static void print_notice(digcl_log_level level, const char *message, void *user) {
    (void)user;
    if (level >= DIGCL_LOG_INFO)
        fprintf(stderr, "digcl: %s%s\n", level == DIGCL_LOG_WARNING ? "warning: " : "", message);
}

/* ------------------------------------------------------------ the run */

typedef struct train_session {
    train_args *args;
    digcl_dataset *dataset;
    const digcl_dataset_info *info;
    digcl_dataset_info latent_info; /* --vae: what the model sees */
    digcl_model_config config;
    resume_plan plan;
    char model_name[128];
    cJSON *args_json;
} train_session;

static int open_data(train_session *s) {
    digcl_dataset_options options;
    memset(&options, 0, sizeof options);
    options.image_size = (int)s->args->image_size;
    options.channels = (int)s->args->channels;
    char error[1024];
    s->dataset = digcl_dataset_open(s->args->data, &options, error, sizeof error);
    if (!s->dataset) return fprintf(stderr, "digcl train: %s\n", error), 1;
    s->info = digcl_dataset_get_info(s->dataset);
    if (!s->args->vae) return 0;
    if (s->info->kind != DIGCL_DATASET_IMAGES || s->info->channels != 3 || s->info->height % 8)
        return fprintf(stderr,
                       "digcl train: --vae needs an RGB image folder at an --image-size that "
                       "is a multiple of 8 (--data %s)\n",
                       s->args->data),
               2;
    s->latent_info = *s->info;
    s->latent_info.channels = 4, s->latent_info.is_latent = 1;
    s->latent_info.height /= 8, s->latent_info.width /= 8;
    s->latent_info.latent_scale = DIGCL_VAE_SD_SCALE;
    s->info = &s->latent_info;
    return 0;
}

/* The config: from the checkpoint when resuming (flags must agree), else flags + data. */
static int resolve_model(train_session *s) {
    train_args *a = s->args;
    digcl_model_config from_flags;
    int status = 0;
    if (model_flags_given(&a->model)) {
        status = model_flags_resolve(&a->model, "train", &from_flags);
        if (status == 0) status = fit_model_to_data(a, s->info, &from_flags);
        if (status != 0) return status;
        if (from_flags.arch == DIGCL_ARCH_DIG && from_flags.depth % 4 != 0)
            fprintf(
                stderr,
                "digcl train: warning: DiG depth %d is not a multiple of 4: SREM leaves the tokens "
                "%s at the head, which then has to learn the permutation (upstream's depths are "
                "12, 24, 28; docs/MODEL.md §2.4)\n",
                from_flags.depth,
                from_flags.depth % 2 == 0         ? "transposed"
                : (from_flags.depth / 2) % 2 == 1 ? "reversed and transposed"
                                                  : "reversed");
    }
    snprintf(s->model_name, sizeof s->model_name, "%s", a->model.model ? a->model.model : "custom");
    if (!s->plan.checkpoint[0]) {
        if (!model_flags_given(&a->model))
            return model_flags_resolve(&a->model, "train", &from_flags);
        s->config = from_flags;
        return 0;
    }
    char error[1024];
    if (digcl_checkpoint_read_config(s->plan.checkpoint, &s->config, error, sizeof error) != 0)
        return fprintf(stderr, "digcl train: %s\n", error), 1;
    if (model_flags_given(&a->model) && !same_model(&s->config, &from_flags)) return 2;
    /* the checkpoint's dig.config has no attention mode: this run's flag decides */
    if (model_flags_apply_runtime(&a->model, "train", &s->config) != 0) return 2;
    if (s->config.in_channels != s->info->channels || s->config.input_size != s->info->height ||
        s->config.num_classes < s->info->num_classes) {
        fprintf(
            stderr,
            "digcl train: cannot resume %s on %s: the model takes %d channels at %dx%d with %d classes, "
            "the data set has %d channels at %dx%d with %d classes\n",
            s->plan.checkpoint, a->data, s->config.in_channels, s->config.input_size,
            s->config.input_size, s->config.num_classes, s->info->channels, s->info->height,
            s->info->width, s->info->num_classes);
        return 2;
    }
    return 0;
}

/* The data set of a resumed run must be the one it started with. */
static int check_resumed_data(const train_session *s, const char *old_args) {
    cJSON *old = old_args ? cJSON_Parse(old_args) : NULL;
    const cJSON *data = cJSON_GetObjectItemCaseSensitive(old, "data");
    int same = !cJSON_IsString(data) || strcmp(data->valuestring, s->args->data) == 0;
    if (!same)
        fprintf(stderr, "digcl train: cannot resume %s with --data %s: it was trained on %s\n",
                s->plan.checkpoint, s->args->data, data->valuestring);
    cJSON_Delete(old);
    return same ? 0 : 2;
}

static digcl_train_hparams hparams_of(const train_args *a) {
    digcl_train_hparams h = digcl_train_hparams_defaults();
    h.adamw.lr = (float)a->lr;
    h.adamw.weight_decay = (float)a->wd;
    h.adamw.beta1 = a->beta1;
    h.adamw.beta2 = a->beta2;
    h.adamw.eps = (float)a->adam_eps;
    h.grad_clip = (float)a->grad_clip;
    h.ema_decay = (float)a->ema_decay;
    h.class_dropout = (float)a->class_dropout;
    h.seed = a->seed;
    return h;
}

static int report_stop(digcl_train_stop stop, const char *error, const digcl_train_state *state) {
    switch (stop) {
    case DIGCL_TRAIN_DONE:
        fprintf(stderr, "digcl train: done after %lld steps\n", (long long)state->step);
        return 0;
    case DIGCL_TRAIN_BUDGET:
        fprintf(stderr, "digcl train: time budget spent after %lld steps\n",
                (long long)state->step);
        return 0;
    case DIGCL_TRAIN_STOPPED:
        fprintf(stderr, "digcl train: stopped at step %lld\n", (long long)state->step);
        return 0;
    default: fprintf(stderr, "digcl train: %s\n", error); return 1;
    }
}

/* Rank 0 loads the checkpoint (the others receive it in train_dist_start). */
static int load_checkpoint(train_session *s, digcl_trainer *trainer, digcl_train_state *state,
                           char **old_args) {
    char error[2048];
    int world = s->args->dist->world;
    if (!s->plan.checkpoint[0] || !train_dist_is_root(s->args->dist)) return 0;
    if (digcl_train_checkpoint_load(trainer, s->plan.checkpoint, state, old_args, error,
                                    sizeof error) != 0)
        return fprintf(stderr, "digcl train: %s\n", error), 1;
    if (state->world_size != world) {
        fprintf(
            stderr,
            "digcl train: cannot resume %s: it was written by a run of %lld rank%s, this one has %d; "
            "resume it with mpirun -np %lld (the data shards and batch split depend on it)\n",
            s->plan.checkpoint, (long long)state->world_size, state->world_size == 1 ? "" : "s",
            world, (long long)state->world_size);
        return 2;
    }
    int status = check_resumed_data(s, *old_args);
    if (status == 0) warn_changed_args(*old_args, s->args_json);
    if (status == 0)
        fprintf(stderr, "digcl train: resuming %s at step %lld\n", s->plan.checkpoint,
                (long long)state->step);
    return status;
}

static int train_on_device(const cli_globals *globals, train_session *s,
                           int64_t batches_per_epoch) {
    train_args *a = s->args;
    train_dist *dist = a->dist;
    cli_globals rank_globals = *globals;
    char device_spec[64];
    rank_globals.device = train_dist_device(dist, globals->device, device_spec, sizeof device_spec);
    digcl_context *ctx = cli_open_context(&rank_globals);
    digcl_model *model = digcl_model_create(ctx, &s->config);
    digcl_model_init(model, a->seed);
    digcl_diffusion *diffusion = digcl_diffusion_create(ctx, s->config.learn_sigma);
    digcl_train_objective objective = digcl_train_diffusion_objective(diffusion);
    digcl_train_hparams hp = hparams_of(a);
    int batch = (int)(a->global_batch / dist->world); /* rows per rank */
    digcl_trainer *trainer = digcl_trainer_create(ctx, model, batch, &hp, &objective);
    digcl_train_state state = {0};
    state.seed = a->seed;
    state.world_size = dist->world;
    char error[2048], *old_args = NULL, *args_text = cJSON_PrintUnformatted(s->args_json);
    int status = train_dist_agree_status(dist, load_checkpoint(s, trainer, &state, &old_args));
    digcl_loader_options lo;
    memset(&lo, 0, sizeof lo);
    lo.batch = batch, lo.rank = dist->rank, lo.world = dist->world, lo.seed = a->seed,
    lo.workers = (int)a->workers;
    lo.hflip = a->hflip && !digcl_dataset_get_info(s->dataset)->is_latent;
    digcl_dataset_set_device_posterior(s->dataset, !a->vae); /* z drawn by the trainer */
    digcl_vae_load_options vae_options = {DIGCL_VAE_ENCODER, NULL, 0};
    digcl_vae *vae = status == 0 && a->vae
                         ? digcl_vae_load(ctx, a->vae, &vae_options, error, sizeof error)
                         : NULL;
    if (a->vae && !vae && status == 0)
        fprintf(stderr, "digcl train: --vae %s\n", error), status = 1;
    digcl_loader *loader =
        status == 0 ? digcl_loader_create(s->dataset, &lo, error, sizeof error) : NULL;
    if (status == 0 && !loader) fprintf(stderr, "digcl train: %s\n", error), status = 1;
    if (status == 0) {
        digcl_train_source source = digcl_train_loader_source(loader, batches_per_epoch),
                           images = source;
        if (vae)
            source = digcl_train_vae_source(&images, vae, trainer, 8 * s->info->height,
                                            8 * s->info->width, DIGCL_VAE_SD_SCALE);
        int64_t by_epochs = a->epochs * batches_per_epoch;
        progress p = {isatty(2),
                      a->max_steps > 0 && a->max_steps < by_epochs ? a->max_steps : by_epochs,
                      a->time_budget,
                      digcl_seconds_now(),
                      0,
                      state.step,
                      batch * dist->world,
                      0,
                      0,
                      0,
                      0,
                      NULL};
        digcl_train_loop_options o = {0};
        o.run_dir = s->plan.run_dir;
        o.args_json = args_text;
        o.max_steps = p.total;
        o.time_budget_s = a->time_budget;
        o.log_every = a->log_every;
        o.ckpt_every = a->ckpt_every;
        o.keep = (int)a->keep;
        o.plot = 1;
        o.stop_flag = &stop_requested;
        o.on_log = on_log, o.on_step = on_step, o.on_values = on_values,
        o.on_checkpoint = on_checkpoint;
        o.refresh_s = p.terminal ? 1.0 : 0.0;
        o.user = &p;
        if (dist->rank == 0)
            p.sampler = train_sampler_create(&a->sample, diffusion, trainer,
                                             digcl_dataset_get_info(s->dataset), s->plan.run_dir,
                                             (uint64_t)a->seed);
        if (p.sampler) o.sample_every = a->sample.every, o.on_sample = on_sample;
        signal(SIGINT, on_sigint);
        train_dist_start(dist, trainer, &state, &o);
        digcl_train_stop stop = digcl_train_loop(trainer, &source, &o, &state, error, sizeof error);
        if (p.printed_line) fprintf(stderr, "\n");
        if (stop == DIGCL_TRAIN_STOPPED && dist->budget_spent) stop = DIGCL_TRAIN_BUDGET;
        status = report_stop(stop, error, &state);
        if (vae) digcl_train_vae_source_release(&source);
        train_sampler_release(p.sampler);
        train_dist_report(dist);
        digcl_memory_stats memory = digcl_memory_stats_get(ctx);
        fprintf(stderr,
                "digcl train: device memory peak %.1f MiB (parameters, gradients, moments, EMA, "
                "activations and the step's buffers)\n",
                (double)memory.peak_bytes / (1024.0 * 1024.0));
    }
    if (loader) digcl_loader_destroy(loader);
    digcl_vae_free(vae);
    free(old_args), free(args_text);
    train_dist_stop(dist);
    digcl_trainer_release(trainer);
    digcl_diffusion_release(diffusion);
    digcl_model_release(model);
    digcl_context_release(ctx);
    return status;
}

static int prepare_run_dir(train_session *s) {
    char error[1024];
    if (s->plan.run_dir[0] || !train_dist_is_root(s->args->dist)) return 0;
    if (digcl_results_new_run(s->args->results_dir, s->model_name, s->plan.run_dir,
                              sizeof s->plan.run_dir, error, sizeof error) != 0)
        return fprintf(stderr, "digcl train: %s\n", error), 1;
    fprintf(stderr, "digcl train: run folder %s\n", s->plan.run_dir);
    return 0;
}

/* The global batch splits evenly over the ranks. */
static int check_world(const train_args *a) {
    int world = a->dist->world;
    if (a->global_batch % world == 0) return 0;
    fprintf(
        stderr,
        "digcl train: --global-batch-size %ld does not split evenly over %d ranks (mpirun -np %d): "
        "give a multiple of %d\n",
        a->global_batch, world, world, world);
    return 2;
}

/* From the parsed flags to the end of training. */
static int train_with_args(const cli_globals *globals, train_args *a) {
    train_session s = {0};
    train_args args = *a;
    s.args = &args;
    int status = plan_resume(&args, &s.plan);
    if (status == 0) status = open_data(&s);
    if (status == 0) status = resolve_model(&s);
    int64_t per_epoch = 0;
    long rank_batch = args.global_batch / args.dist->world;
    if (status == 0 && (status = model_flags_check_batch(&s.config, rank_batch, "train")) == 0) {
        per_epoch = digcl_dataset_batches_per_epoch(s.dataset, (int)rank_batch, args.dist->world);
        if (per_epoch < 1) {
            fprintf(
                stderr,
                "digcl train: %s holds %lld entries, fewer than one batch of --global-batch-size %ld\n",
                args.data, (long long)s.info->count, args.global_batch);
            status = 2;
        }
    }
    if (status == 0) status = prepare_run_dir(&s);
    if (status == 0) {
        s.args_json = args_json(&args, s.model_name, &s.config, args.dist->world,
                                digcl_precision_resolve(globals->precision));
        if (train_dist_is_root(args.dist))
            status = write_config_json(s.plan.run_dir, s.args_json, &s.config, s.info);
    }
    digcl_set_log_handler(print_notice, NULL);
    if (status == 0) status = train_on_device(globals, &s, per_epoch);
    cJSON_Delete(s.args_json);
    if (s.dataset) digcl_dataset_close(s.dataset);
    return status;
}

int cmd_train(const cli_globals *globals, int argc, char **argv) {
    train_args args;
    train_dist dist;
    train_dist_begin(&dist); /* mpirun: joins the group; ranks > 0 print nothing */
    int status = parse_args(argc, argv, &args, &dist);
    if (status == 0) status = check_world(&args);
    if (status == 0) status = train_with_args(globals, &args);
    train_dist_end(&dist);
    return status;
}
