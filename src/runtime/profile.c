/* DIGCL_PROFILE=1: per-kernel time totals from OpenCL events, printed at exit.
 * Events are kept in a small pending list and read when it fills or at
 * digcl_finish, so profiling does not force a host sync per launch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/context_internal.h"

static int profile_index(digcl_context *ctx, const char *label) {
    for (int i = 0; i < ctx->profile_count; i++)
        if (strcmp(ctx->profile[i].label, label) == 0) return i;
    if (ctx->profile_count == ctx->profile_capacity) {
        int capacity = ctx->profile_capacity ? 2 * ctx->profile_capacity : 32;
        profile_entry *grown = realloc(ctx->profile, (size_t)capacity * sizeof *grown);
        if (!grown) digcl_fatal("out of host memory in the profiler");
        ctx->profile = grown;
        ctx->profile_capacity = capacity;
    }
    profile_entry *entry = &ctx->profile[ctx->profile_count];
    memset(entry, 0, sizeof *entry);
    snprintf(entry->label, sizeof entry->label, "%s", label);
    return ctx->profile_count++;
}

static double event_ms(cl_event event) {
    cl_ulong start = 0, end = 0;
    DIGCL_CL_CHECK(
        clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_START, sizeof start, &start, NULL));
    DIGCL_CL_CHECK(
        clGetEventProfilingInfo(event, CL_PROFILING_COMMAND_END, sizeof end, &end, NULL));
    return end > start ? (double)(end - start) * 1e-6 : 0.0;
}

void digcl_profile_flush(digcl_context *ctx) {
    if (ctx->pending_count == 0) return;
    cl_event events[DIGCL_PENDING_EVENTS];
    for (int i = 0; i < ctx->pending_count; i++) events[i] = ctx->pending[i].event;
    DIGCL_CL_CHECK(clWaitForEvents((cl_uint)ctx->pending_count, events));
    for (int i = 0; i < ctx->pending_count; i++) {
        profile_entry *entry = &ctx->profile[ctx->pending[i].profile_index];
        entry->total_ms += event_ms(ctx->pending[i].event);
        entry->count++;
        clReleaseEvent(ctx->pending[i].event);
    }
    ctx->pending_count = 0;
}

static void add_pending(digcl_context *ctx, cl_event event, const char *label) {
    if (ctx->pending_count == DIGCL_PENDING_EVENTS) digcl_profile_flush(ctx);
    ctx->pending[ctx->pending_count].event = event;
    ctx->pending[ctx->pending_count].profile_index = profile_index(ctx, label);
    ctx->pending_count++;
}

cl_event *digcl_profile_launch_event(digcl_context *ctx) {
    ctx->external_event = NULL;
    return ctx->profiling ? &ctx->external_event : NULL;
}

void digcl_profile_after_launch(digcl_context *ctx, const char *label) {
    if (!ctx->profiling || !ctx->external_event) return;
    add_pending(ctx, ctx->external_event, label);
    ctx->external_event = NULL;
}

double digcl_profile_begin(digcl_context *ctx) {
    if (!ctx->profiling) return 0.0;
    DIGCL_CL_CHECK(clFinish(ctx->queue));
    return (1e3 * digcl_seconds_now());
}

void digcl_profile_end(digcl_context *ctx, const char *label, double begin) {
    if (!ctx->profiling) return;
    DIGCL_CL_CHECK(clFinish(ctx->queue));
    int index = profile_index(ctx, label); /* may grow ctx->profile */
    profile_entry *entry = &ctx->profile[index];
    entry->total_ms += (1e3 * digcl_seconds_now()) - begin;
    entry->count++;
}
int digcl_profiling_enabled(const digcl_context *ctx) { return ctx->profiling; }

static int by_total_descending(const void *a, const void *b) {
    double x = ((const profile_entry *)a)->total_ms, y = ((const profile_entry *)b)->total_ms;
    return (x < y) - (x > y);
}

void digcl_profile_print(digcl_context *ctx) {
    if (ctx->profile_count == 0) return;
    qsort(ctx->profile, (size_t)ctx->profile_count, sizeof *ctx->profile, by_total_descending);
    double total = 0;
    for (int i = 0; i < ctx->profile_count; i++) total += ctx->profile[i].total_ms;
    digcl_log(DIGCL_LOG_INFO, "\ndigcl profile (%s): %.3f ms of device time", ctx->device.name,
              total);
    digcl_log(DIGCL_LOG_INFO, "  %-40s %10s %8s %10s %6s", "kernel", "total ms", "calls", "mean us",
              "%");
    for (int i = 0; i < ctx->profile_count; i++) {
        const profile_entry *e = &ctx->profile[i];
        digcl_log(DIGCL_LOG_INFO, "  %-40s %10.3f %8ld %10.2f %5.1f%%", e->label, e->total_ms,
                  e->count, 1000.0 * e->total_ms / (double)e->count,
                  total > 0 ? 100.0 * e->total_ms / total : 0.0);
    }
}

void digcl_profile_free(digcl_context *ctx) {
    free(ctx->profile);
    ctx->profile = NULL;
    ctx->profile_count = ctx->profile_capacity = 0;
}

double digcl_seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
