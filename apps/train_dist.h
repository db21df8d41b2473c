/* apps/train_dist.h: what `digcl train` adds for data-parallel runs under
 * mpirun (src/dist/, include/digcl/dist.h): the rank's device, its silence
 * (only rank 0 prints; every rank's fatal errors still reach the terminal),
 * the start from rank 0's weights and state, the gradient averager, stop
 * decisions taken together (Ctrl-C, --time-budget) and the weights check. */
#ifndef DIGCL_APPS_TRAIN_DIST_H
#define DIGCL_APPS_TRAIN_DIST_H

#include "digcl/dist.h"
#include "digcl/train.h"

typedef struct train_dist {
    digcl_dist *dist;
    int rank, world;
    /* flags */
    double timeout_s; /* --dist-timeout (600) */
    double bucket_mb; /* --dist-bucket-mb (25, DDP's bucket_cap_mb) */
    long check_every; /* --check-weights-every (1000; 0: never) */
    /* the run */
    digcl_trainer *trainer;
    digcl_grad_sync *sync;
    void *host;               /* [P] floats: broadcasts and the weights check */
    volatile int *local_stop; /* this process's SIGINT flag */
    int agreed_stop;          /* the loop's stop flag: set on every rank at the same step */
    int budget_spent;         /* the stop was the time budget's */
    double budget_s, start;
    void (*inner_on_step)(int64_t step, void *user);
    void *inner_user;
} train_dist;

/* Joins the group (before anything prints) and silences ranks > 0. */
void train_dist_begin(train_dist *d);
void train_dist_end(train_dist *d);
int train_dist_is_root(const train_dist *d);

/* --dist-timeout S, --dist-bucket-mb MB, --check-weights-every N. */
int train_dist_take_flag(train_dist *d, int argc, char **argv, int *i);
void train_dist_usage(void);

/* The device of this rank: `given` (--device or $DIGCL_DEVICE) when set,
 * else the local_rank-th device (digcl_dist_device_spec). */
const char *train_dist_device(const train_dist *d, const char *given, char *spec, size_t size);

/* Rank 0's status (0 or an exit code) on every rank. */
int train_dist_agree_status(train_dist *d, int status);
/* Rank 0's weights, EMA, moments and state on every rank, then the averager
 * is attached to the trainer and the loop options are set for this rank. */
void train_dist_start(train_dist *d, digcl_trainer *trainer, digcl_train_state *state,
                      digcl_train_loop_options *options);
/* The averager's measurements (rank 0, stderr). */
void train_dist_report(const train_dist *d);
/* Detaches and releases the averager (before the trainer is released). */
void train_dist_stop(train_dist *d);

#endif
