/* The process group of data-parallel training and its collectives, each
 * waited for with a deadline (MPI_ERRORS_RETURN + non-blocking collectives +
 * MPI_Test), so that a dead or stalled rank ends the others with an error
 * instead of a hang. Without MPI: one rank, identity collectives.
 * API: include/digcl/dist.h; spec: docs/TRAINING.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "dist/dist_internal.h"
#include "digcl/error.h"

int digcl_dist_available(void) {
#ifdef DIGCL_HAVE_MPI
    return 1;
#else
    return 0;
#endif
}

void digcl_dist_pause(int *microseconds) {
    struct timespec ts = {0, (long)*microseconds * 1000L};
    nanosleep(&ts, NULL);
    if (*microseconds < 1000) *microseconds *= 2; /* back off to 1 ms */
}

#ifdef DIGCL_HAVE_MPI
static int launched_by_mpirun(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}
#endif

digcl_dist *digcl_dist_init(int *argc, char ***argv) {
    digcl_dist *d = calloc(1, sizeof *d);
    if (!d) digcl_fatal("out of host memory for the process group");
    d->world = d->local_size = 1;
    d->timeout_s = 600.0;
    (void)argc, (void)argv;
#ifndef DIGCL_HAVE_MPI
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (size && atoi(size) > 1)
        digcl_fatal("started by mpirun as one of %s processes, but this digcl was built without "
                    "MPI (install libopenmpi-dev and configure with -DDIGCL_WITH_MPI=ON)",
                    size);
#else
    if (!launched_by_mpirun()) return d;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_SERIALIZED, &provided) != MPI_SUCCESS)
        digcl_fatal("MPI_Init_thread failed (started by mpirun?)");
    d->initialised = 1;
    d->serialized = provided >= MPI_THREAD_SERIALIZED;
    MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
    MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(d->comm, &d->rank);
    MPI_Comm_size(d->comm, &d->world);
    MPI_Comm local;
    MPI_Comm_split_type(d->comm, MPI_COMM_TYPE_SHARED, d->rank, MPI_INFO_NULL, &local);
    MPI_Comm_rank(local, &d->local_rank);
    MPI_Comm_size(local, &d->local_size);
    MPI_Comm_free(&local);
#endif
    return d;
}

void digcl_dist_finalize(digcl_dist *d) {
    if (!d) return;
#ifdef DIGCL_HAVE_MPI
    if (d->initialised) {
        MPI_Comm_free(&d->comm);
        MPI_Finalize();
    }
#endif
    free(d);
}

int digcl_dist_rank(const digcl_dist *d) { return d->rank; }
int digcl_dist_world(const digcl_dist *d) { return d->world; }
int digcl_dist_local_rank(const digcl_dist *d) { return d->local_rank; }
int digcl_dist_local_size(const digcl_dist *d) { return d->local_size; }
void digcl_dist_set_timeout(digcl_dist *d, double seconds) { d->timeout_s = seconds; }
double digcl_dist_timeout(const digcl_dist *d) { return d->timeout_s; }

void digcl_dist_device_spec(const digcl_dist *d, char *spec, size_t size) {
    spec[0] = '\0';
    if (d->world == 1) return;
    digcl_device_info *devices = NULL;
    int count = digcl_list_devices(&devices), chosen = digcl_default_device(devices, count);
    if (chosen >= 0) {
        int same_type = 0, nth = -1;
        for (int i = 0; i < count; i++) same_type += devices[i].type == devices[chosen].type;
        int wanted = d->local_rank % same_type;
        for (int i = 0; i < count && nth < wanted; i++)
            if (devices[i].type == devices[chosen].type && ++nth == wanted) chosen = i;
        snprintf(spec, size, "%d:%d", devices[chosen].platform_index, devices[chosen].device_index);
    }
    free(devices);
}

/* ------------------------------------------------------------ waiting with a deadline */

#ifdef DIGCL_HAVE_MPI
int digcl_dist_wait(const digcl_dist *d, MPI_Request *request, const char *what, char *error,
                    size_t size) {
    double deadline = digcl_seconds_now() + d->timeout_s;
    int pause = 20;
    for (;;) {
        int done = 0, status = MPI_Test(request, &done, MPI_STATUS_IGNORE);
        if (status != MPI_SUCCESS) {
            char text[MPI_MAX_ERROR_STRING] = "";
            int length = 0;
            MPI_Error_string(status, text, &length);
            return digcl_format_error(error, size, "rank %d: MPI %s failed: %s", d->rank, what,
                                      text);
        }
        if (done) return 0;
        if (digcl_seconds_now() > deadline)
            return digcl_format_error(error, size,
                                      "rank %d: MPI %s: no answer from the other ranks in %.0f s "
                                      "(a rank died or stalled?)",
                                      d->rank, what, d->timeout_s);
        digcl_dist_pause(&pause);
    }
}

static void wait_or_fail(const digcl_dist *d, MPI_Request *request, const char *what) {
    char error[512];
    if (digcl_dist_wait(d, request, what, error, sizeof error) != 0) digcl_fatal("%s", error);
}

static void check_started(const digcl_dist *d, int status, const char *what) {
    if (status == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    MPI_Error_string(status, text, &length);
    digcl_fatal("rank %d: MPI %s failed: %s", d->rank, what, text);
}
#endif

/* ------------------------------------------------------------ collectives */

void digcl_dist_barrier(digcl_dist *d, const char *what) {
    (void)d, (void)what;
#ifdef DIGCL_HAVE_MPI
    if (d->world == 1) return;
    MPI_Request request;
    check_started(d, MPI_Ibarrier(d->comm, &request), what);
    wait_or_fail(d, &request, what);
#endif
}

void digcl_dist_broadcast(digcl_dist *d, void *data, size_t bytes, const char *what) {
    (void)d, (void)data, (void)bytes, (void)what;
#ifdef DIGCL_HAVE_MPI
    if (d->world == 1) return;
    for (size_t done = 0; done < bytes;) { /* MPI counts are int */
        size_t chunk = bytes - done < (1u << 30) ? bytes - done : (1u << 30);
        MPI_Request request;
        check_started(
            d, MPI_Ibcast((char *)data + done, (int)chunk, MPI_BYTE, 0, d->comm, &request), what);
        wait_or_fail(d, &request, what);
        done += chunk;
    }
#endif
}

void digcl_dist_sum(digcl_dist *d, double *values, int count, const char *what) {
    (void)d, (void)values, (void)count, (void)what;
#ifdef DIGCL_HAVE_MPI
    if (d->world == 1) return;
    MPI_Request request;
    check_started(
        d, MPI_Iallreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, d->comm, &request),
        what);
    wait_or_fail(d, &request, what);
#endif
}

int digcl_dist_any(digcl_dist *d, int flag, const char *what) {
    double value = flag ? 1.0 : 0.0;
    digcl_dist_sum(d, &value, 1, what);
    return value > 0.0;
}

void digcl_dist_gather_u64(digcl_dist *d, uint64_t value, uint64_t *values, const char *what) {
    (void)d, (void)what;
    values[0] = value;
#ifdef DIGCL_HAVE_MPI
    if (d->world == 1) return;
    MPI_Request request;
    check_started(
        d, MPI_Iallgather(&value, 1, MPI_UINT64_T, values, 1, MPI_UINT64_T, d->comm, &request),
        what);
    wait_or_fail(d, &request, what);
#endif
}

void digcl_dist_broadcast_buffer(digcl_dist *d, digcl_context *ctx, cl_mem buffer, size_t bytes,
                                 void *host, const char *what) {
    if (d->world == 1) return;
    if (d->rank == 0) digcl_read(ctx, buffer, 0, bytes, host);
    digcl_dist_broadcast(d, host, bytes, what);
    if (d->rank != 0) digcl_write(ctx, buffer, 0, bytes, host);
}

int digcl_dist_check_same_buffer(digcl_dist *d, digcl_context *ctx, cl_mem buffer, size_t bytes,
                                 void *host, const char *what, char *error, size_t size) {
    if (d->world == 1) return 0;
    digcl_read(ctx, buffer, 0, bytes, host);
    uint64_t hash = XXH64(host, bytes, 0), stack[64];
    uint64_t *hashes = d->world <= 64 ? stack : malloc((size_t)d->world * sizeof *hashes);
    if (!hashes) digcl_fatal("out of host memory for %d hashes", d->world);
    digcl_dist_gather_u64(d, hash, hashes, what);
    char ranks[256] = "";
    int differ = 0;
    for (int r = 1; r < d->world; r++) {
        if (hashes[r] == hashes[0]) continue;
        size_t n = strlen(ranks);
        if (differ++ < 16) snprintf(ranks + n, sizeof ranks - n, "%s%d", n ? ", " : "", r);
    }
    if (hashes != stack) free(hashes);
    if (!differ) return 0;
    return digcl_format_error(error, size,
                              "%s differ between ranks: rank%s %s hold%s other bytes than rank 0 "
                              "(XXH64 of %zu bytes)",
                              what, differ > 1 ? "s" : "", ranks, differ > 1 ? "" : "s", bytes);
}
