/* digcl/dist.h: data-parallel training across processes (one per device)
 * through MPI: the process group, collectives that end with an error instead
 * of hanging when a rank dies, and the gradient averager of the training step.
 *
 * Spec: docs/TRAINING.md ("Several devices and machines"). Without MPI (a
 * build with DIGCL_WITH_MPI=OFF, or a process not started by mpirun) the
 * group has one rank and every collective is the identity.
 *
 * Failure: every collective is non-blocking underneath (MPI_ERRORS_RETURN on
 * the communicator) and waited for with a deadline of `timeout_s` seconds;
 * an MPI error or a rank that does not take part in time ends in digcl_fatal
 * naming the operation ("... rank died or stalled?"), so the other ranks exit
 * with a clear error (mpirun then ends the job) rather than hang.
 *
 * Threads: the group is initialised with MPI_THREAD_SERIALIZED. The gradient
 * averager's thread calls MPI only between digcl_grad_sync_start and the end of
 * digcl_grad_sync_finish; the other collectives must not be called then.
 */
#ifndef DIGCL_DIST_H
#define DIGCL_DIST_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/runtime.h"

typedef struct digcl_dist digcl_dist;

/* 1 when the library was built with MPI. */
int digcl_dist_available(void);

/* Joins the process group: MPI_Init_thread when built with MPI and started
 * by a launcher (mpirun sets OMPI_COMM_WORLD_SIZE, PMIX_RANK or PMI_RANK),
 * else a group of one. Call once per process; digcl_dist_finalize at the end. */
digcl_dist *digcl_dist_init(int *argc, char ***argv);
void digcl_dist_finalize(digcl_dist *dist);

int digcl_dist_rank(const digcl_dist *dist);       /* 0..world-1 */
int digcl_dist_world(const digcl_dist *dist);      /* number of ranks */
int digcl_dist_local_rank(const digcl_dist *dist); /* rank among the ranks of this host */
int digcl_dist_local_size(const digcl_dist *dist); /* ranks on this host */

/* Seconds a collective may wait for the other ranks (default 600: a rank may
 * be writing a checkpoint or drawing samples meanwhile). */
void digcl_dist_set_timeout(digcl_dist *dist, double seconds);
double digcl_dist_timeout(const digcl_dist *dist);

/* The device of this rank when none is given: "P:D" of the local_rank-th
 * device of the default device's type (GPUs when there are any), wrapping
 * when there are fewer devices than local ranks. Writes "" for a group of one
 * (the default device). */
void digcl_dist_device_spec(const digcl_dist *dist, char *spec, size_t size);

/* ------------------------------------------------------------ collectives */
/* Every rank calls them in the same order; `what` names the operation in
 * errors. */

void digcl_dist_barrier(digcl_dist *dist, const char *what);
/* bytes of data from rank 0 to every rank. */
void digcl_dist_broadcast(digcl_dist *dist, void *data, size_t bytes, const char *what);
/* values[count] = sum over ranks (doubles; the same result on every rank). */
void digcl_dist_sum(digcl_dist *dist, double *values, int count, const char *what);
/* 1 when flag is nonzero on any rank. */
int digcl_dist_any(digcl_dist *dist, int flag, const char *what);
/* Gathers one 64-bit value from every rank into values[world] (every rank). */
void digcl_dist_gather_u64(digcl_dist *dist, uint64_t value, uint64_t *values, const char *what);

/* Rank 0's copy of a device buffer to every rank (through host, `host` of
 * `bytes` at least as staging; blocks). */
void digcl_dist_broadcast_buffer(digcl_dist *dist, digcl_context *ctx, cl_mem buffer, size_t bytes,
                                 void *host, const char *what);

/* Hashes `bytes` of a device buffer (XXH64 through `host` staging) and
 * compares the hash over ranks: 0 when every rank holds the same bytes, else
 * -1 with a message naming the ranks that differ from rank 0. */
int digcl_dist_check_same_buffer(digcl_dist *dist, digcl_context *ctx, cl_mem buffer, size_t bytes,
                                 void *host, const char *what, char *error, size_t size);

/* ------------------------------------------------------------ gradient averaging */

/* Averages a flat float buffer (the model's gradients) over the ranks every
 * step: the buffer is read back in buckets of `bucket_floats` as they become
 * final (digcl_grad_sync_ready: non-blocking reads on a second queue that wait
 * for the main queue's work through a marker event), each bucket is summed by
 * MPI_Iallreduce on a communication thread as soon as its read completes
 * (overlapping the rest of backward), and the mean is written back on the main
 * queue before the optimizer. `extra` floats of other values (the step's mean
 * loss, mse, vb) ride with the last bucket. Plans its host buffers once. */
typedef struct digcl_grad_sync digcl_grad_sync;

digcl_grad_sync *digcl_grad_sync_create(digcl_dist *dist, digcl_context *ctx, cl_mem grads,
                                        size_t count, size_t bucket_floats, int extra);
void digcl_grad_sync_release(digcl_grad_sync *sync);

/* A new step: nothing of `grads` is final yet. */
void digcl_grad_sync_start(digcl_grad_sync *sync);
/* grads[from, count) are final once the work enqueued so far on the main
 * queue completes: reads every whole bucket in that range not read yet. */
void digcl_grad_sync_ready(digcl_grad_sync *sync, size_t from);
/* The rest (from 0), plus values[offset, offset + extra) of `values`; waits
 * for every bucket's sum and enqueues the writes of the means (grads and
 * values) on the main queue. digcl_fatal on an MPI error or timeout. */
void digcl_grad_sync_finish(digcl_grad_sync *sync, cl_mem values, size_t offset);

typedef struct digcl_grad_sync_stats {
    int64_t steps;
    double wait_s;     /* host time blocked in digcl_grad_sync_finish */
    double overlapped; /* fraction of buckets whose sum had started before finish */
    size_t buckets;    /* per step */
} digcl_grad_sync_stats;
digcl_grad_sync_stats digcl_grad_sync_get_stats(const digcl_grad_sync *sync);

#endif
