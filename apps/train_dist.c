/* `digcl train` under mpirun: see apps/train_dist.h and docs/TRAINING.md
 * ("Several devices and machines"). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "digcl/error.h"
#include "digcl/runtime.h"
#include "train_dist.h"

static int saved_stderr = -1; /* ranks > 0: the terminal, for fatal errors */
static int this_rank;
static train_dist *active; /* the loop's on_step wrapper reaches it here */

/* Every rank's fatal errors reach the terminal, named by rank. */
static void print_fatal_with_rank(const char *message, void *user) {
    (void)user;
    fflush(stdout);
    int fd = saved_stderr >= 0 ? saved_stderr : 2;
    if (strncmp(message, "rank ", 5) == 0) dprintf(fd, "digcl: error: %s\n", message);
    else dprintf(fd, "digcl: error: rank %d: %s\n", this_rank, message);
    exit(1);
}

void train_dist_begin(train_dist *d) {
    memset(d, 0, sizeof *d);
    d->timeout_s = 600.0;
    d->bucket_mb = 25.0;
    d->check_every = 1000;
    d->dist = digcl_dist_init(NULL, NULL);
    d->rank = this_rank = digcl_dist_rank(d->dist);
    d->world = digcl_dist_world(d->dist);
    if (d->world == 1) return;
    digcl_set_error_handler(print_fatal_with_rank, NULL);
    if (d->rank == 0) return;
    fflush(stdout), fflush(stderr);
    saved_stderr = dup(2);
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 1), dup2(null, 2), close(null);
}

void train_dist_end(train_dist *d) {
    digcl_dist_finalize(d->dist);
    d->dist = NULL;
}

int train_dist_is_root(const train_dist *d) { return d->rank == 0; }

int train_dist_take_flag(train_dist *d, int argc, char **argv, int *i) {
    const char *v;
    if (cli_option_value(argc, argv, i, "--dist-timeout", &v))
        d->timeout_s = cli_parse_double("--dist-timeout", v, 1, 1e7);
    else if (cli_option_value(argc, argv, i, "--dist-bucket-mb", &v))
        d->bucket_mb = cli_parse_double("--dist-bucket-mb", v, 1e-4, 1e5);
    else if (cli_option_value(argc, argv, i, "--check-weights-every", &v))
        d->check_every = cli_parse_long("--check-weights-every", v, 0, 1L << 40);
    else return 0;
    return 1;
}

void train_dist_usage(void) {
    printf(
        "\nseveral devices (mpirun -np K digcl train ...: one process per device; --global-batch-size\n"
        "is split evenly over the K ranks, each rank uses its host's local_rank-th GPU unless\n"
        "--device is given; only rank 0 prints and writes the run folder):\n"
        "  --dist-timeout S       seconds a rank waits for the others before it stops with an\n"
        "                         error (600)\n"
        "  --dist-bucket-mb MB    gradient all-reduce bucket size (25)\n"
        "  --check-weights-every N  compare a hash of every rank's weights every N steps and stop\n"
        "                         on a difference (1000; 0: never)\n");
}

const char *train_dist_device(const train_dist *d, const char *given, char *spec, size_t size) {
    if (given && *given) return given;
    const char *env = getenv("DIGCL_DEVICE");
    if (env && *env) return env;
    digcl_dist_device_spec(d->dist, spec, size);
    return spec[0] ? spec : NULL;
}

int train_dist_agree_status(train_dist *d, int status) {
    if (d->world == 1) return status;
    int32_t value = status;
    digcl_dist_broadcast(d->dist, &value, sizeof value, "the start of training");
    return d->rank == 0 ? status : value;
}

/* ------------------------------------------------------------ the loop's hooks */

static void check_weights(train_dist *d, int64_t step) {
    digcl_model *model = digcl_trainer_model(d->trainer);
    char error[512], what[64];
    snprintf(what, sizeof what, "step %lld: the model weights", (long long)step);
    if (digcl_dist_check_same_buffer(
            d->dist, digcl_trainer_context(d->trainer), digcl_model_param_buffer(model),
            digcl_model_flat_count(model) * sizeof(float), d->host, what, error, sizeof error) != 0)
        digcl_fatal("%s; data-parallel ranks must stay bitwise identical (stopped)", error);
}

/* After each step on every rank: one tiny all-reduce decides together
 * whether to stop (Ctrl-C on any rank, rank 0's time budget), so that all
 * ranks take the same number of steps. */
static void on_step_together(int64_t step, void *user) {
    train_dist *d = active;
    if (d->inner_on_step) d->inner_on_step(step, user);
    double flags[2] = {d->local_stop && *d->local_stop ? 1.0 : 0.0,
                       d->rank == 0 && d->budget_s > 0 &&
                           digcl_seconds_now() - d->start >= d->budget_s};
    digcl_dist_sum(d->dist, flags, 2, "the stop decision");
    if (flags[0] > 0 || flags[1] > 0) d->agreed_stop = 1;
    if (flags[1] > 0 && flags[0] == 0) d->budget_spent = 1;
    if (d->check_every > 0 && step % d->check_every == 0) check_weights(d, step);
}

void train_dist_start(train_dist *d, digcl_trainer *trainer, digcl_train_state *state,
                      digcl_train_loop_options *o) {
    d->trainer = trainer;
    if (d->world == 1) return;
    digcl_dist_set_timeout(d->dist, d->timeout_s);
    digcl_model *model = digcl_trainer_model(trainer);
    digcl_context *ctx = digcl_trainer_context(trainer);
    size_t flat = digcl_model_flat_count(model), bytes = flat * sizeof(float);
    d->host = malloc(bytes);
    if (!d->host) digcl_fatal("out of host memory for the weights broadcast (%zu bytes)", bytes);
    const cl_mem stores[4] = {digcl_model_param_buffer(model),
                              digcl_params_buffer(digcl_trainer_ema(trainer)),
                              digcl_params_buffer(digcl_trainer_exp_avg(trainer)),
                              digcl_params_buffer(digcl_trainer_exp_avg_sq(trainer))};
    const char *names[4] = {"the weights", "the EMA", "AdamW exp_avg", "AdamW exp_avg_sq"};
    for (int k = 0; k < 4; k++)
        digcl_dist_broadcast_buffer(d->dist, ctx, stores[k], bytes, d->host, names[k]);
    digcl_dist_broadcast(d->dist, state, sizeof *state, "the training state");
    size_t bucket = (size_t)(d->bucket_mb * 1024.0 * 1024.0 / sizeof(float));
    d->sync = digcl_grad_sync_create(d->dist, ctx, digcl_model_grad_buffer(model), flat,
                                     bucket ? bucket : 1, DIGCL_TRAIN_SYNC_EXTRA);
    digcl_trainer_set_grad_sync(trainer, d->sync);
    o->world_size = d->world;
    o->read_only = d->rank != 0;
    d->budget_s = o->time_budget_s;
    o->time_budget_s = 0; /* decided together in on_step_together */
    d->local_stop = o->stop_flag;
    o->stop_flag = &d->agreed_stop;
    d->inner_on_step = o->on_step;
    d->inner_user = o->user;
    o->on_step = on_step_together;
    active = d;
    d->start = digcl_seconds_now();
}

void train_dist_report(const train_dist *d) {
    if (!d->sync || d->rank != 0) return;
    digcl_grad_sync_stats s = digcl_grad_sync_get_stats(d->sync);
    if (s.steps == 0) return;
    fprintf(stderr,
            "digcl train: %d ranks; gradient all-reduce: %zu buckets per step, %.2f ms per step "
            "waited after backward, %.0f%% of buckets summed while backward ran\n",
            d->world, s.buckets, 1e3 * s.wait_s / (double)s.steps, 100.0 * s.overlapped);
}

void train_dist_stop(train_dist *d) {
    if (d->trainer) digcl_trainer_set_grad_sync(d->trainer, NULL);
    digcl_grad_sync_release(d->sync);
    d->sync = NULL;
    free(d->host);
    d->host = NULL;
    d->trainer = NULL;
}
