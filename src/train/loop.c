/* The training loop: batches from a source, steps, log intervals (log.jsonl),
 * checkpoints (keep K, loss.png), stop conditions (steps, time budget, a stop
 * flag, a non-finite value). API: include/digcl/train.h. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "digcl/log.h"
#include "digcl/plot.h"
#include "digcl/train.h"
#include "digcl/runtime.h"

typedef struct loop_run {
    digcl_trainer *trainer;
    const digcl_train_source *source;
    const digcl_train_loop_options *options;
    digcl_train_state *state;
    FILE *log_file; /* run/log.jsonl, appended */
    double start, interval_start, last_drain;
    double base_seconds;     /* state->train_seconds when this process started */
    int64_t interval_steps;  /* steps of this process in the log interval */
    int64_t last_checkpoint; /* step of the newest complete checkpoint, -1 none */
    char bad[256];           /* first non-finite value, "" if none */
    char *error;
    size_t error_size;
} loop_run;

/* ------------------------------------------------------------ values */

static void check_finite(loop_run *run, const digcl_train_values *v) {
    const char *which = !isfinite(v->loss)        ? "loss"
                        : !isfinite(v->mse)       ? "mse"
                        : !isfinite(v->vb)        ? "vb"
                        : !isfinite(v->grad_norm) ? "the gradient norm"
                                                  : NULL;
    if (!which || run->bad[0]) return;
    double value = !isfinite(v->loss)  ? v->loss
                   : !isfinite(v->mse) ? v->mse
                   : !isfinite(v->vb)  ? v->vb
                                       : v->grad_norm;
    snprintf(run->bad, sizeof run->bad, "step %lld: %s is %s", (long long)v->step, which,
             isnan(value) ? "NaN"
             : value > 0  ? "+Inf"
                          : "-Inf");
}

static void accumulate(const digcl_train_values *v, void *user) {
    loop_run *run = user;
    digcl_train_state *s = run->state;
    check_finite(run, v);
    s->log_count++;
    s->log_loss += v->loss;
    s->log_mse += v->mse;
    s->log_vb += v->vb;
    s->log_grad_norm += v->grad_norm;
    if (run->options->on_values) run->options->on_values(v, run->options->user);
}

/* Reads the pending values; 1 when one of them was not finite. */
static int drain(loop_run *run) {
    digcl_trainer_drain(run->trainer, accumulate, run);
    run->last_drain = digcl_seconds_now();
    return run->bad[0] != 0;
}

/* ------------------------------------------------------------ log.jsonl and loss.png */

static void write_log_line(loop_run *run, const digcl_train_log_entry *e) {
    if (!run->log_file) return;
    fprintf(run->log_file,
            "{\"step\":%lld,\"epoch\":%lld,\"loss\":%.17g,\"mse\":%.17g,\"vb\":%.17g,"
            "\"grad_norm\":%.17g,\"lr\":%.9g,\"img_per_s\":%.6g,\"data_wait_ms\":%.6g,"
            "\"elapsed_s\":%.6g,\"train_s\":%.6g}\n",
            (long long)e->step, (long long)e->epoch, e->loss, e->mse, e->vb, e->grad_norm, e->lr,
            e->images_per_second, e->data_wait_ms, e->elapsed_s, e->train_s);
    fflush(run->log_file);
}

/* Training seconds of the whole run at `now`: every earlier process's and this one's. */
static double run_seconds(const loop_run *run, double now) {
    return run->base_seconds + (now - run->start);
}

static double ranks(const digcl_train_loop_options *o) {
    return o->world_size > 1 ? (double)o->world_size : 1.0;
}

/* One log line from the interval's sums; the sums start again. */
static void log_interval(loop_run *run) {
    digcl_train_state *s = run->state;
    if (s->log_count == 0) return;
    double now = digcl_seconds_now(), count = (double)s->log_count;
    digcl_train_log_entry e = {
        s->step,
        s->epoch,
        s->log_loss / count,
        s->log_mse / count,
        s->log_vb / count,
        s->log_grad_norm / count,
        digcl_trainer_hparams(run->trainer)->adamw.lr,
        run->interval_steps > 0 ? (double)run->interval_steps * digcl_trainer_batch(run->trainer) *
                                      ranks(run->options) / fmax(now - run->interval_start, 1e-9)
                                : 0.0,
        s->log_data_wait_ms / count,
        now - run->start,
        run_seconds(run, now)};
    write_log_line(run, &e);
    if (run->options->on_log) run->options->on_log(&e, run->options->user);
    s->log_count = 0;
    s->log_loss = s->log_mse = s->log_vb = s->log_grad_norm = s->log_data_wait_ms = 0.0;
    run->interval_start = now;
    run->interval_steps = 0;
}

static void draw_loss_plot(loop_run *run) {
    char message[512];
    if (!run->options->plot || !digcl_plot_available()) return;
    if (digcl_train_loss_plot(run->options->run_dir, NULL, message, sizeof message) < 0)
        digcl_log(DIGCL_LOG_WARNING, "loss plot not drawn: %s", message);
}

/* ------------------------------------------------------------ checkpoints */

static int checkpoint(loop_run *run) {
    const digcl_train_loop_options *o = run->options;
    int64_t step = run->state->step;
    if (step == run->last_checkpoint) return 0;
    /* Every rank keeps its clock; rank 0's is the one saved. */
    run->state->train_seconds = run_seconds(run, digcl_seconds_now());
    if (o->read_only) { /* another rank writes it */
        run->last_checkpoint = step;
        return 0;
    }
    char path[4200], message[1024];
    digcl_results_checkpoint_path(o->run_dir, step, path, sizeof path);
    if (digcl_train_checkpoint_save(run->trainer, run->state, o->args_json, path, message,
                                    sizeof message) != 0) {
        char previous[4200] = "none";
        if (run->last_checkpoint >= 0)
            digcl_results_checkpoint_path(o->run_dir, run->last_checkpoint, previous,
                                          sizeof previous);
        snprintf(run->error, run->error_size,
                 "checkpoint of step %lld not written: %s; the previous "
                 "checkpoint (%s) is kept",
                 (long long)step, message, previous);
        return -1;
    }
    run->last_checkpoint = step;
    if (digcl_results_prune(o->run_dir, o->keep, message, sizeof message) != 0)
        digcl_log(DIGCL_LOG_WARNING, "keeping %d checkpoints: %s", o->keep, message);
    draw_loss_plot(run);
    if (o->on_checkpoint) o->on_checkpoint(path, step, o->user);
    return 0;
}

/* ------------------------------------------------------------ the loop */

static void advance_position(digcl_train_state *s, const digcl_batch *batch, int64_t per_epoch) {
    s->epoch = batch->epoch;
    s->batch_in_epoch = batch->index + 1;
    if (per_epoch > 0 && s->batch_in_epoch >= per_epoch) {
        s->epoch++;
        s->batch_in_epoch = 0;
    }
}

static void take_step(loop_run *run) {
    const digcl_batch *batch = run->source->next(run->source->user);
    run->state->log_data_wait_ms += batch->wait_ms;
    digcl_trainer_step_batch(run->trainer, batch);
    advance_position(run->state, batch, run->source->batches_per_epoch);
    run->source->release(run->source->user, batch);
    run->state->step = digcl_trainer_step_count(run->trainer);
    run->interval_steps++;
}

static digcl_train_stop stop_reason(const loop_run *run) {
    const digcl_train_loop_options *o = run->options;
    if (o->max_steps > 0 && run->state->step >= o->max_steps) return DIGCL_TRAIN_DONE;
    if (o->time_budget_s > 0 && digcl_seconds_now() - run->start >= o->time_budget_s)
        return DIGCL_TRAIN_BUDGET;
    if (o->stop_flag && *o->stop_flag) return DIGCL_TRAIN_STOPPED;
    return (digcl_train_stop)-1;
}

static int every(int64_t step, int64_t period) { return period > 0 && step % period == 0; }

/* After a step: drains, logs, samples and checkpoints as due; -1 to stop
 * with run->stop set. */
static digcl_train_stop after_step(loop_run *run) {
    const digcl_train_loop_options *o = run->options;
    int64_t step = run->state->step;
    int log_due = every(step, o->log_every), ckpt_due = every(step, o->ckpt_every);
    int refresh_due = o->refresh_s > 0 && digcl_seconds_now() - run->last_drain >= o->refresh_s;
    int full = digcl_trainer_pending(run->trainer) == DIGCL_TRAIN_HISTORY;
    if ((log_due || ckpt_due || refresh_due || full) && drain(run)) return DIGCL_TRAIN_NONFINITE;
    if (log_due) log_interval(run);
    if (every(step, o->sample_every) && o->on_sample) o->on_sample(run->trainer, step, o->user);
    if (ckpt_due && checkpoint(run) != 0) return DIGCL_TRAIN_FAILED;
    return (digcl_train_stop)-1;
}

static digcl_train_stop run_steps(loop_run *run) {
    digcl_train_stop stop;
    while ((int)(stop = stop_reason(run)) < 0) {
        take_step(run);
        if (run->options->on_step) run->options->on_step(run->state->step, run->options->user);
        digcl_train_stop after = after_step(run);
        if ((int)after >= 0) return after;
    }
    if (drain(run)) return DIGCL_TRAIN_NONFINITE;
    if (run->state->step > 0 && checkpoint(run) != 0) return DIGCL_TRAIN_FAILED;
    return stop;
}

static int open_run(loop_run *run) {
    const digcl_train_loop_options *o = run->options;
    char path[4200];
    if (o->read_only) return 0;
    snprintf(path, sizeof path, "%s/log.jsonl", o->run_dir);
    if (digcl_train_log_truncate(o->run_dir, run->state->step, run->error, run->error_size) != 0)
        return -1;
    run->log_file = fopen(path, "a");
    if (!run->log_file)
        digcl_log(DIGCL_LOG_WARNING, "%s: cannot open for appending; no log lines", path);
    return 0;
}

digcl_train_stop digcl_train_loop(digcl_trainer *trainer, const digcl_train_source *source,
                                  const digcl_train_loop_options *options, digcl_train_state *state,
                                  char *error, size_t size) {
    loop_run run = {0};
    run.trainer = trainer;
    run.source = source;
    run.options = options;
    run.state = state;
    run.error = error;
    run.error_size = size;
    run.last_checkpoint = state->step > 0 ? state->step : -1; /* resumed from it */
    if (error && size) error[0] = '\0';
    digcl_train_stop stop = DIGCL_TRAIN_FAILED;
    digcl_trainer_set_step_count(trainer, state->step);
    if (open_run(&run) == 0) {
        source->seek(source->user, state->epoch, state->batch_in_epoch);
        run.start = run.interval_start = run.last_drain = digcl_seconds_now();
        run.base_seconds = state->train_seconds;
        stop = run_steps(&run);
    }
    if (stop == DIGCL_TRAIN_NONFINITE) {
        char last[4200] = "none";
        if (run.last_checkpoint >= 0)
            digcl_results_checkpoint_path(options->run_dir, run.last_checkpoint, last, sizeof last);
        snprintf(error, size, "%s; training stopped, the last good checkpoint is %s", run.bad,
                 last);
    }
    if (run.log_file) fclose(run.log_file);
    return stop;
}
