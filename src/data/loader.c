/* loader.c: the background loader of digcl/data.h.
 *
 * Jobs are batches in order: job j of a loader started at (epoch e0, batch
 * b0) is batch number e0 * B + b0 + j (B batches per epoch). Job j lives in
 * ring slot j % depth once the batch that used that slot before has been
 * released. Assigning a job to a slot fixes its N data indices (epoch
 * permutation, rank share); the N rows are then split into chunks that any
 * worker takes, so a batch is spread over all workers and every row is a
 * pure function of (seed, epoch, data index): the worker count changes the
 * timing, never the bytes.
 *
 * Order of epoch e: a Fisher-Yates shuffle of 0..count-1, for i = count-1
 * down to 1 swapping entries i and j = digcl_rng_below(seed/DATA_ORDER,
 * step e, sample 0, index i, i + 1). Global batch b is permutation positions
 * [b W N, (b + 1) W N) (the same set as PyTorch's DistributedSampler with
 * drop_last); rank r of W takes its slice [(b W + r) N, (b W + r + 1) N), so
 * that row n of it is permutation position first_sample + n: one rank with
 * batch W N sees the same rows, timesteps and noise as W ranks with N.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "data_internal.h"
#include "digcl/error.h"
#include "digcl/log.h"
#include "digcl/rng.h"
#include "digcl/runtime.h"

enum { SLOT_FREE, SLOT_FILLING, SLOT_READY, SLOT_HELD };

typedef struct loader_slot {
    digcl_batch batch; /* x [N, C, H, W], y [N] */
    int64_t job;
    int64_t *indices; /* [N] data indices of the rows */
    int chunks_taken; /* chunks handed to workers */
    int chunks_done;
    int state;
    int failed;
    char error[1024]; /* the first row that failed */
} loader_slot;

struct digcl_loader {
    digcl_dataset *dataset;
    digcl_loader_options options;
    int64_t batches;   /* B, per epoch and rank */
    size_t row_floats; /* C * H * W */
    int chunk_rows, chunks;
    int device_posterior; /* batches carry mean + spread (options and a posterior set) */

    pthread_mutex_t lock;
    pthread_cond_t work;  /* workers: a slot was freed, or stop */
    pthread_cond_t ready; /* consumer: a batch is complete */
    pthread_cond_t idle;  /* seek: no chunk in progress */
    loader_slot *slots;
    int depth;
    int64_t start;       /* batch number of job 0 */
    int64_t assigned;    /* jobs given a slot */
    int64_t handing;     /* the job whose chunks are being handed out */
    int64_t consumed;    /* jobs returned by next */
    int busy;            /* chunks in progress */
    uint64_t generation; /* bumped by seek: chunks of an older one are dropped */
    int stop;

    int64_t perm_epoch; /* epoch of perm, -1 none */
    uint32_t *perm;     /* [count] */

    pthread_mutex_t bad_lock;
    uint8_t *bad; /* [count] 1: known undecodable (skip_bad_images) */
    int64_t skipped;

    pthread_t *threads;
    data_scratch *scratch; /* [workers] */
    int started;
};

typedef struct worker_arg {
    digcl_loader *loader;
    int id;
} worker_arg;

/* ------------------------------------------------------------------ order */

static void shuffle(uint32_t *perm, int64_t count, uint64_t seed, int64_t epoch) {
    digcl_rng_key key = {seed, DIGCL_RNG_DATA_ORDER};
    for (int64_t i = 0; i < count; i++) perm[i] = (uint32_t)i;
    for (int64_t i = count - 1; i >= 1; i--) {
        uint32_t j = digcl_rng_below(key, (uint64_t)epoch, 0, (uint64_t)i, (uint32_t)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* Job j gets the next free slot: its (epoch, index) and data indices. Under lock. */
static void assign_job(digcl_loader *l) {
    loader_slot *s = &l->slots[l->assigned % l->depth];
    const int64_t number = l->start + l->assigned;
    const int64_t epoch = number / l->batches, index = number % l->batches;
    const int n = l->options.batch, rank = l->options.rank, world = l->options.world;
    if (l->perm_epoch != epoch) {
        shuffle(l->perm, l->dataset->info.count, l->options.seed, epoch);
        l->perm_epoch = epoch;
    }
    for (int k = 0; k < n; k++) s->indices[k] = l->perm[(index * world + rank) * n + k];
    s->job = l->assigned++;
    s->batch.epoch = epoch;
    s->batch.index = index;
    s->batch.first_sample = number * n * world + (int64_t)rank * n;
    s->batch.wait_ms = 0.0;
    s->chunks_taken = s->chunks_done = 0;
    s->failed = 0;
    s->error[0] = '\0';
    s->state = SLOT_FILLING;
}

/* A chunk to work on, or 0. Under lock. */
static int take_chunk(digcl_loader *l, loader_slot **slot, int *chunk) {
    while (l->slots[l->assigned % l->depth].state == SLOT_FREE) assign_job(l);
    while (l->handing < l->assigned) {
        loader_slot *s = &l->slots[l->handing % l->depth];
        if (s->chunks_taken < l->chunks) {
            *slot = s;
            *chunk = s->chunks_taken++;
            return 1;
        }
        l->handing++;
    }
    return 0;
}

/* ---------------------------------------------------------------- reading */

static int is_bad(digcl_loader *l, int64_t index) {
    pthread_mutex_lock(&l->bad_lock);
    int bad = l->bad[index];
    pthread_mutex_unlock(&l->bad_lock);
    return bad;
}

/* Marks index bad; returns 1 the first time. */
static int mark_bad(digcl_loader *l, int64_t index) {
    pthread_mutex_lock(&l->bad_lock);
    int first = !l->bad[index];
    l->bad[index] = 1;
    if (first) l->skipped++;
    pthread_mutex_unlock(&l->bad_lock);
    return first;
}

/* Row `index`, or with skip_bad_images the next good entry after it. */
static int read_row(digcl_loader *l, int64_t index, const data_read_context *context, float *x,
                    int32_t *y, int64_t *used, char *error, size_t error_size) {
    const int64_t count = l->dataset->info.count;
    const int hflip = l->options.hflip;
    *used = index;
    if (!l->bad)
        return digcl_data_read_entry(l->dataset, index, context, hflip, x, y, error, error_size);
    for (int64_t tries = 0; tries < count; tries++, index = (index + 1) % count) {
        if (is_bad(l, index)) continue;
        *used = index;
        if (digcl_data_read_entry(l->dataset, index, context, hflip, x, y, error, error_size) == 0)
            return 0;
        if (mark_bad(l, index)) digcl_log(DIGCL_LOG_WARNING, "%s (skipped)", error);
    }
    snprintf(error, error_size, "no entry of the data set could be read (all %lld skipped)",
             (long long)count);
    return -1;
}

static void fill_chunk(digcl_loader *l, loader_slot *s, int chunk, data_scratch *scratch) {
    const int first = chunk * l->chunk_rows;
    const int last =
        first + l->chunk_rows < l->options.batch ? first + l->chunk_rows : l->options.batch;
    data_read_context context = {l->options.seed, s->batch.epoch, scratch, NULL};
    char error[1024];
    for (int k = first; k < last; k++) {
        const size_t offset = (size_t)k * l->row_floats;
        int64_t used = 0;
        context.spread = s->batch.spread ? s->batch.spread + offset : NULL;
        int status = read_row(l, s->indices[k], &context, s->batch.x + offset, s->batch.y + k,
                              &used, error, sizeof error);
        if (s->batch.draw_index) s->batch.draw_index[k] = (int32_t)used;
        if (status != 0) {
            pthread_mutex_lock(&l->lock);
            if (!s->failed) snprintf(s->error, sizeof s->error, "%s", error);
            s->failed = 1;
            pthread_mutex_unlock(&l->lock);
            return;
        }
    }
}

static void *worker_main(void *arg) {
    worker_arg *w = arg;
    digcl_loader *l = w->loader;
    data_scratch *scratch = &l->scratch[w->id];
    pthread_mutex_lock(&l->lock);
    while (!l->stop) {
        loader_slot *slot;
        int chunk;
        if (!take_chunk(l, &slot, &chunk)) {
            pthread_cond_wait(&l->work, &l->lock);
            continue;
        }
        uint64_t generation = l->generation;
        l->busy++;
        pthread_mutex_unlock(&l->lock);
        fill_chunk(l, slot, chunk, scratch);
        pthread_mutex_lock(&l->lock);
        l->busy--;
        if (generation == l->generation && ++slot->chunks_done == l->chunks) {
            slot->state = SLOT_READY;
            pthread_cond_broadcast(&l->ready);
        }
        if (l->busy == 0) pthread_cond_broadcast(&l->idle);
    }
    pthread_mutex_unlock(&l->lock);
    free(w);
    return NULL;
}

/* ----------------------------------------------------------------- public */

static int default_workers(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores > 2 ? (int)cores - 1 : 1;
}

static int check_options(const digcl_dataset *dataset, const digcl_loader_options *o, char *error,
                         size_t error_size) {
    if (o->batch < 1 || o->world < 1 || o->rank < 0 || o->rank >= o->world || o->workers < 0 ||
        o->depth < 0) {
        snprintf(error, error_size,
                 "loader: batch %d, rank %d of world %d, workers %d, depth %d "
                 "(expected batch >= 1, 0 <= rank < world, workers and depth >= 0)",
                 o->batch, o->rank, o->world, o->workers, o->depth);
        return -1;
    }
    if (dataset->info.count > UINT32_MAX) {
        snprintf(error, error_size, "loader: %lld entries (at most 2^32 - 1)",
                 (long long)dataset->info.count);
        return -1;
    }
    if (digcl_dataset_batches_per_epoch(dataset, o->batch, o->world) < 1) {
        snprintf(error, error_size,
                 "the data set has %lld entries, fewer than one batch of %d "
                 "for each of %d ranks",
                 (long long)dataset->info.count, o->batch, o->world);
        return -1;
    }
    return 0;
}

static void *aligned_floats(size_t count) {
    size_t bytes = (count * sizeof(float) + 63) / 64 * 64;
    return aligned_alloc(64, bytes ? bytes : 64);
}

static int allocate(digcl_loader *l) {
    const digcl_dataset_info *info = &l->dataset->info;
    const int n = l->options.batch;
    l->slots = calloc((size_t)l->depth, sizeof *l->slots);
    l->perm = malloc((size_t)info->count * sizeof *l->perm);
    l->threads = calloc((size_t)l->options.workers, sizeof *l->threads);
    l->scratch = calloc((size_t)l->options.workers, sizeof *l->scratch);
    if (!l->slots || !l->perm || !l->threads || !l->scratch) return -1;
    for (int i = 0; i < l->depth; i++) {
        loader_slot *s = &l->slots[i];
        s->batch.x = aligned_floats((size_t)n * l->row_floats);
        s->batch.y = aligned_floats((size_t)n);
        s->indices = malloc((size_t)n * sizeof *s->indices);
        s->batch.rows = n;
        if (!s->batch.x || !s->batch.y || !s->indices) return -1;
        if (!l->device_posterior) continue;
        s->batch.spread = aligned_floats((size_t)n * l->row_floats);
        s->batch.draw_index = malloc((size_t)n * sizeof *s->batch.draw_index);
        s->batch.spread_is_logvar = l->dataset->posterior_logvar;
        s->batch.scale = l->dataset->posterior_scale;
        if (!s->batch.spread || !s->batch.draw_index) return -1;
    }
    return 0;
}

static int start_workers(digcl_loader *l) {
    for (int i = 0; i < l->options.workers; i++) {
        worker_arg *w = malloc(sizeof *w);
        if (!w) return -1;
        *w = (worker_arg){l, i};
        if (pthread_create(&l->threads[i], NULL, worker_main, w) != 0) {
            free(w);
            return -1;
        }
        l->started++;
    }
    return 0;
}

digcl_loader *digcl_loader_create(digcl_dataset *dataset, const digcl_loader_options *options,
                                  char *error, size_t error_size) {
    if (check_options(dataset, options, error, error_size) != 0) return NULL;
    digcl_loader *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(error, error_size, "loader: out of host memory");
        return NULL;
    }
    const digcl_dataset_info *info = &dataset->info;
    l->dataset = dataset;
    l->options = *options;
    if (l->options.workers == 0) l->options.workers = default_workers();
    l->depth = l->options.depth ? (l->options.depth < 2 ? 2 : l->options.depth) : 4;
    l->batches = digcl_dataset_batches_per_epoch(dataset, options->batch, options->world);
    l->row_floats = (size_t)info->channels * info->height * info->width;
    /* A flip follows the draw (eps addressed by the unflipped element): host draws then. */
    l->device_posterior = dataset->device_posterior && info->has_posterior && !options->hflip;
    l->chunk_rows =
        dataset->source.chunk_rows < options->batch ? dataset->source.chunk_rows : options->batch;
    l->chunks = (options->batch + l->chunk_rows - 1) / l->chunk_rows;
    l->perm_epoch = -1;
    pthread_mutex_init(&l->lock, NULL);
    pthread_mutex_init(&l->bad_lock, NULL);
    pthread_cond_init(&l->work, NULL);
    pthread_cond_init(&l->ready, NULL);
    pthread_cond_init(&l->idle, NULL);
    int status = allocate(l);
    if (status == 0 && dataset->skip_bad_images)
        status = (l->bad = calloc((size_t)info->count, 1)) ? 0 : -1;
    if (status == 0) status = start_workers(l);
    if (status != 0) {
        snprintf(error, error_size,
                 "loader: out of host memory or threads (%d workers, %d "
                 "batches of %d x %zu floats)",
                 l->options.workers, l->depth, options->batch, l->row_floats);
        digcl_loader_destroy(l);
        return NULL;
    }
    return l;
}

void digcl_loader_seek(digcl_loader *l, int64_t epoch, int64_t index) {
    if (epoch < 0 || index < 0 || index >= l->batches)
        digcl_fatal("digcl_loader_seek: batch %lld of epoch %lld is outside the %lld batches of "
                    "an epoch",
                    (long long)index, (long long)epoch, (long long)l->batches);
    pthread_mutex_lock(&l->lock);
    l->generation++;
    while (l->busy > 0) pthread_cond_wait(&l->idle, &l->lock);
    for (int i = 0; i < l->depth; i++) l->slots[i].state = SLOT_FREE;
    l->start = epoch * l->batches + index;
    l->assigned = l->handing = l->consumed = 0;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
}

const digcl_batch *digcl_loader_next(digcl_loader *l) {
    pthread_mutex_lock(&l->lock);
    loader_slot *s = &l->slots[l->consumed % l->depth];
    if (s->state == SLOT_HELD) {
        pthread_mutex_unlock(&l->lock);
        digcl_fatal("digcl_loader_next: all %d staging buffers are held; release a batch "
                    "(digcl_loader_release) before asking for the next",
                    l->depth);
    }
    double start = (1e3 * digcl_seconds_now());
    while (!(s->state == SLOT_READY && s->job == l->consumed))
        pthread_cond_wait(&l->ready, &l->lock);
    double waited = (1e3 * digcl_seconds_now()) - start;
    if (s->failed) {
        char message[1024];
        snprintf(message, sizeof message, "%s", s->error);
        pthread_mutex_unlock(&l->lock);
        digcl_fatal("%s", message);
    }
    s->state = SLOT_HELD;
    s->batch.wait_ms = waited;
    l->consumed++;
    pthread_mutex_unlock(&l->lock);
    return &s->batch;
}

void digcl_loader_release(digcl_loader *l, const digcl_batch *batch) {
    pthread_mutex_lock(&l->lock);
    for (int i = 0; i < l->depth; i++) {
        if (&l->slots[i].batch == batch && l->slots[i].state == SLOT_HELD) {
            l->slots[i].state = SLOT_FREE;
            pthread_cond_broadcast(&l->work);
        }
    }
    pthread_mutex_unlock(&l->lock);
}

int64_t digcl_loader_skipped(const digcl_loader *l) {
    digcl_loader *mutable_loader = (digcl_loader *)l;
    pthread_mutex_lock(&mutable_loader->bad_lock);
    int64_t skipped = l->skipped;
    pthread_mutex_unlock(&mutable_loader->bad_lock);
    return skipped;
}

int64_t digcl_loader_batches_per_epoch(const digcl_loader *l) { return l->batches; }

void digcl_loader_destroy(digcl_loader *l) {
    if (!l) return;
    pthread_mutex_lock(&l->lock);
    l->stop = 1;
    pthread_cond_broadcast(&l->work);
    pthread_mutex_unlock(&l->lock);
    for (int i = 0; i < l->started; i++) pthread_join(l->threads[i], NULL);
    if (l->skipped) digcl_log(DIGCL_LOG_WARNING, "%lld bad files skipped", (long long)l->skipped);
    for (int i = 0; l->slots && i < l->depth; i++) {
        free(l->slots[i].batch.x);
        free(l->slots[i].batch.y);
        free(l->slots[i].batch.spread);
        free(l->slots[i].batch.draw_index);
        free(l->slots[i].indices);
    }
    for (int i = 0; l->scratch && i < l->options.workers; i++)
        digcl_data_scratch_free(&l->scratch[i]);
    pthread_mutex_destroy(&l->lock);
    pthread_mutex_destroy(&l->bad_lock);
    pthread_cond_destroy(&l->work);
    pthread_cond_destroy(&l->ready);
    pthread_cond_destroy(&l->idle);
    free(l->slots);
    free(l->perm);
    free(l->threads);
    free(l->scratch);
    free(l->bad);
    free(l);
}
