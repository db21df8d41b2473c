/* The gradient averager of data-parallel training (include/digcl/dist.h).
 *
 * Buckets are fixed ranges of the flat gradient buffer, read from the last
 * (the final layer's gradients are final first: backward runs from the head
 * to the stem) to the first, then the `extra` values. digcl_grad_sync_ready
 * enqueues a marker on the main queue and, on a second queue, a non-blocking
 * read of each newly final bucket that waits for that marker. The
 * communication thread takes the buckets in that same order on every rank:
 * it polls the read's event, starts MPI_Iallreduce (sum, in place) on the
 * host copy and keeps testing the requests in flight (Open MPI progresses a
 * request only inside MPI calls), so the sums of late layers run while the
 * device computes the gradients of early ones. digcl_grad_sync_finish waits
 * for every sum, scales by 1 / world and enqueues the writes back.
 *
 * DIGCL_DIST_OVERLAP=0 (or an MPI without MPI_THREAD_SERIALIZED) runs the
 * same per-bucket work on the calling thread inside finish: reads and sums
 * after backward (the measurement without overlap). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dist/dist_internal.h"
#include "digcl/error.h"

typedef struct bucket {
    size_t begin, count; /* floats of host[] (and of grads, for gradient buckets) */
    cl_event read;       /* the read of this step; NULL before it was enqueued */
#ifdef DIGCL_HAVE_MPI
    MPI_Request request;
#endif
} bucket;

struct digcl_grad_sync {
    digcl_dist *dist;
    digcl_context *ctx;
    cl_command_queue copy_queue;
    cl_mem grads;
    size_t count;
    int extra;
    float *host;     /* [count + extra] */
    bucket *buckets; /* [total]: in read order (last gradient bucket first), extra last */
    int gradient_buckets, total;
    int threaded;
    /* Per step, under the lock. */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    pthread_t thread;
    int enqueued;       /* buckets whose read is enqueued */
    int started;        /* buckets whose sum was started (thread) */
    int done;           /* 1 when every sum of the step completed */
    int64_t generation; /* steps started */
    int quit, failed;
    char error[512];
    digcl_grad_sync_stats stats;
    double overlapped_sum;
};

/* ------------------------------------------------------------ per bucket */

static void enqueue_read(digcl_grad_sync *s, bucket *b, cl_mem source, size_t offset) {
    cl_event marker = NULL;
    cl_command_queue queue = digcl_context_queue(s->ctx);
    DIGCL_CL_CHECK(clEnqueueMarkerWithWaitList(queue, 0, NULL, &marker));
    DIGCL_CL_CHECK(clEnqueueReadBuffer(s->copy_queue, source, CL_FALSE, offset,
                                       b->count * sizeof(float), s->host + b->begin, 1, &marker,
                                       &b->read));
    clReleaseEvent(marker);
    DIGCL_CL_CHECK(clFlush(queue));
    DIGCL_CL_CHECK(clFlush(s->copy_queue));
}

#ifdef DIGCL_HAVE_MPI
static int read_complete(const bucket *b) {
    cl_int status = CL_QUEUED;
    DIGCL_CL_CHECK(
        clGetEventInfo(b->read, CL_EVENT_COMMAND_EXECUTION_STATUS, sizeof status, &status, NULL));
    if (status < 0) digcl_fatal("reading gradients back for the all-reduce failed (%d)", status);
    return status == CL_COMPLETE;
}

static int fail(digcl_grad_sync *s, const char *message) {
    pthread_mutex_lock(&s->lock);
    if (!s->failed) snprintf(s->error, sizeof s->error, "%s", message);
    s->failed = 1;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
    return -1;
}

/* Tests the started requests once: 1 when all of them completed, 0 not yet,
 * -1 on an MPI error (recorded). */
static int test_started(digcl_grad_sync *s, int started) {
    for (int k = 0; k < started; k++) {
        if (s->buckets[k].request == MPI_REQUEST_NULL) continue;
        int flag = 0;
        if (MPI_Test(&s->buckets[k].request, &flag, MPI_STATUS_IGNORE) != MPI_SUCCESS) {
            char message[512];
            snprintf(message, sizeof message,
                     "rank %d: MPI all-reduce of gradient bucket %d failed", s->dist->rank, k);
            return fail(s, message);
        }
        if (!flag) return 0;
    }
    return 1;
}

static int start_sum(digcl_grad_sync *s, int k) {
    bucket *b = &s->buckets[k];
    if (MPI_Iallreduce(MPI_IN_PLACE, s->host + b->begin, (int)b->count, MPI_FLOAT, MPI_SUM,
                       s->dist->comm, &b->request) == MPI_SUCCESS)
        return 0;
    char message[512];
    snprintf(message, sizeof message, "rank %d: MPI_Iallreduce of gradient bucket %d failed",
             s->dist->rank, k);
    return fail(s, message);
}

/* Drives the started sums until all complete; -1 on an error or timeout. */
static int complete_started(digcl_grad_sync *s, int started) {
    double deadline = digcl_seconds_now() + s->dist->timeout_s;
    int pause = 10;
    for (;;) {
        int all = test_started(s, started);
        if (all != 0) return all > 0 ? 0 : -1;
        if (digcl_seconds_now() > deadline) {
            char message[512];
            snprintf(message, sizeof message,
                     "rank %d: MPI gradient all-reduce: no answer from the other ranks in %.0f s "
                     "(a rank died or stalled?)",
                     s->dist->rank, s->dist->timeout_s);
            return fail(s, message);
        }
        digcl_dist_pause(&pause);
    }
}

/* Waits for bucket k's read while driving the sums already started. */
static int await_read(digcl_grad_sync *s, int k) {
    int pause = 10;
    while (!read_complete(&s->buckets[k])) {
        if (test_started(s, k) < 0) return -1;
        digcl_dist_pause(&pause);
        if (pause > 200) pause = 200;
    }
    return 0;
}
#endif

/* Every bucket of a step on the calling thread: k from `first` on, waiting
 * for each enqueued read (all are enqueued by the caller). */
static int sum_buckets(digcl_grad_sync *s, int first) {
#ifdef DIGCL_HAVE_MPI
    for (int k = first; k < s->total; k++) {
        if (await_read(s, k) != 0 || start_sum(s, k) != 0) return -1;
    }
    return complete_started(s, s->total);
#else
    (void)s, (void)first;
    return 0;
#endif
}

/* ------------------------------------------------------------ the thread */

#ifdef DIGCL_HAVE_MPI
/* Waits (under the lock) for bucket k to be enqueued, testing the started
 * sums every 100 us meanwhile. 0, or -1 when quitting or failed. */
static int await_enqueued(digcl_grad_sync *s, int k) {
    pthread_mutex_lock(&s->lock);
    while (!s->quit && !s->failed && s->enqueued <= k) {
        if (k == 0) {
            pthread_cond_wait(&s->changed, &s->lock);
            continue;
        }
        pthread_mutex_unlock(&s->lock);
        if (test_started(s, k) < 0) return -1;
        int pause = 100;
        digcl_dist_pause(&pause);
        pthread_mutex_lock(&s->lock);
    }
    int stop = s->quit || s->failed;
    pthread_mutex_unlock(&s->lock);
    return stop ? -1 : 0;
}

static void *communication_thread(void *user) {
    digcl_grad_sync *s = user;
    int64_t processed = 0;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        while (!s->quit && !s->failed && s->generation == processed)
            pthread_cond_wait(&s->changed, &s->lock);
        int stop = s->quit || s->failed;
        processed = s->generation;
        pthread_mutex_unlock(&s->lock);
        if (stop) return NULL;
        int k = 0;
        for (; k < s->total; k++) {
            if (await_enqueued(s, k) != 0) break;
            if (await_read(s, k) != 0 || start_sum(s, k) != 0) break;
            pthread_mutex_lock(&s->lock);
            s->started = k + 1;
            pthread_mutex_unlock(&s->lock);
        }
        if (k == s->total && complete_started(s, s->total) == 0) {
            pthread_mutex_lock(&s->lock);
            s->done = 1;
            pthread_cond_broadcast(&s->changed);
            pthread_mutex_unlock(&s->lock);
        }
    }
}
#endif

/* ------------------------------------------------------------ the API */

static void plan_buckets(digcl_grad_sync *s, size_t bucket_floats) {
    if (bucket_floats < 1) bucket_floats = 1;
    s->gradient_buckets = (int)((s->count + bucket_floats - 1) / bucket_floats);
    s->total = s->gradient_buckets + (s->extra > 0);
    s->buckets = calloc((size_t)s->total, sizeof *s->buckets);
    if (!s->buckets) digcl_fatal("out of host memory for %d gradient buckets", s->total);
    for (int i = 0; i < s->gradient_buckets; i++) { /* read order: the last range first */
        size_t begin = (size_t)(s->gradient_buckets - 1 - i) * bucket_floats;
        size_t end = begin + bucket_floats < s->count ? begin + bucket_floats : s->count;
        s->buckets[i].begin = begin;
        s->buckets[i].count = end - begin;
    }
    if (s->extra > 0) {
        s->buckets[s->total - 1].begin = s->count;
        s->buckets[s->total - 1].count = (size_t)s->extra;
    }
}

digcl_grad_sync *digcl_grad_sync_create(digcl_dist *dist, digcl_context *ctx, cl_mem grads,
                                        size_t count, size_t bucket_floats, int extra) {
    digcl_grad_sync *s = calloc(1, sizeof *s);
    if (!s) digcl_fatal("out of host memory for the gradient averager");
    s->dist = dist, s->ctx = ctx, s->grads = grads, s->count = count, s->extra = extra;
    if (dist->world == 1) return s; /* nothing to average */
    s->host = malloc((count + (size_t)extra) * sizeof(float));
    if (!s->host)
        digcl_fatal("out of host memory for the gradient all-reduce (%zu floats)", count + extra);
    plan_buckets(s, bucket_floats);
    s->stats.buckets = (size_t)s->total;
    cl_int status = CL_SUCCESS;
    s->copy_queue =
        clCreateCommandQueue(digcl_context_cl(ctx), digcl_context_device(ctx)->device, 0, &status);
    DIGCL_CL_CHECK(status);
    pthread_mutex_init(&s->lock, NULL);
    pthread_cond_init(&s->changed, NULL);
    const char *overlap = getenv("DIGCL_DIST_OVERLAP");
    s->threaded = dist->serialized && !(overlap && strcmp(overlap, "0") == 0);
#ifdef DIGCL_HAVE_MPI
    if (s->threaded && pthread_create(&s->thread, NULL, communication_thread, s) != 0)
        s->threaded = 0;
#endif
    return s;
}

void digcl_grad_sync_release(digcl_grad_sync *s) {
    if (!s) return;
    if (s->host) {
        pthread_mutex_lock(&s->lock);
        s->quit = 1;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
        if (s->threaded) pthread_join(s->thread, NULL);
        for (int k = 0; k < s->total; k++)
            if (s->buckets[k].read) clReleaseEvent(s->buckets[k].read);
        clFinish(s->copy_queue);
        clReleaseCommandQueue(s->copy_queue);
        pthread_mutex_destroy(&s->lock);
        pthread_cond_destroy(&s->changed);
    }
    free(s->buckets);
    free(s->host);
    free(s);
}

void digcl_grad_sync_start(digcl_grad_sync *s) {
    if (!s->host) return;
    for (int k = 0; k < s->total; k++) {
        if (s->buckets[k].read) clReleaseEvent(s->buckets[k].read);
        s->buckets[k].read = NULL;
    }
    pthread_mutex_lock(&s->lock);
    s->enqueued = s->started = s->done = 0;
    s->generation++;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

void digcl_grad_sync_ready(digcl_grad_sync *s, size_t from) {
    if (!s->host) return;
    int k = s->enqueued; /* only this thread writes it */
    while (k < s->gradient_buckets && s->buckets[k].begin >= from) {
        enqueue_read(s, &s->buckets[k], s->grads, s->buckets[k].begin * sizeof(float));
        k++;
    }
    if (k == s->enqueued) return;
    pthread_mutex_lock(&s->lock);
    s->enqueued = k;
    pthread_cond_broadcast(&s->changed);
    pthread_mutex_unlock(&s->lock);
}

static void write_back(digcl_grad_sync *s, cl_mem values, size_t offset) {
    const float scale = 1.0f / (float)s->dist->world;
    size_t n = s->count + (size_t)s->extra;
    for (size_t i = 0; i < n; i++) s->host[i] *= scale;
    cl_command_queue queue = digcl_context_queue(s->ctx);
    DIGCL_CL_CHECK(clEnqueueWriteBuffer(queue, s->grads, CL_FALSE, 0, s->count * sizeof(float),
                                        s->host, 0, NULL, NULL));
    if (s->extra > 0)
        DIGCL_CL_CHECK(clEnqueueWriteBuffer(queue, values, CL_FALSE, offset * sizeof(float),
                                            (size_t)s->extra * sizeof(float), s->host + s->count, 0,
                                            NULL, NULL));
}

void digcl_grad_sync_finish(digcl_grad_sync *s, cl_mem values, size_t offset) {
    if (!s->host) return;
    double begin = digcl_seconds_now();
    pthread_mutex_lock(&s->lock);
    int started_before = s->started;
    pthread_mutex_unlock(&s->lock);
    digcl_grad_sync_ready(s, 0);
    if (s->extra > 0) {
        enqueue_read(s, &s->buckets[s->total - 1], values, offset * sizeof(float));
        pthread_mutex_lock(&s->lock);
        s->enqueued = s->total;
        pthread_cond_broadcast(&s->changed);
        pthread_mutex_unlock(&s->lock);
    }
    int status = 0;
    if (s->threaded) {
        pthread_mutex_lock(&s->lock);
        while (!s->done && !s->failed) pthread_cond_wait(&s->changed, &s->lock);
        status = s->failed ? -1 : 0;
        pthread_mutex_unlock(&s->lock);
    } else {
        status = sum_buckets(s, 0);
    }
    if (status != 0) digcl_fatal("%s", s->error);
    write_back(s, values, offset);
    s->stats.steps++;
    s->stats.wait_s += digcl_seconds_now() - begin;
    s->overlapped_sum += (double)started_before / (double)s->total;
    s->stats.overlapped = s->overlapped_sum / (double)s->stats.steps;
}

digcl_grad_sync_stats digcl_grad_sync_get_stats(const digcl_grad_sync *s) { return s->stats; }
