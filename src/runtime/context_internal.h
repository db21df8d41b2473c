/* The digcl_context layout, shared by the runtime's own files only. */
#ifndef DIGCL_CONTEXT_INTERNAL_H
#define DIGCL_CONTEXT_INTERNAL_H

#include "digcl/log.h"
#include "digcl/runtime.h"

typedef struct program_entry {
    uint64_t key; /* hash of file + options */
    char *file;
    char *options;
    cl_program program;
} program_entry;

typedef struct kernel_entry {
    uint64_t key; /* hash of file + options + kernel name */
    cl_kernel kernel;
} kernel_entry;

typedef struct profile_entry {
    char label[64];
    double total_ms;
    long count;
} profile_entry;

typedef struct pending_event {
    cl_event event;
    int profile_index;
} pending_event;

enum { DIGCL_PENDING_EVENTS = 256 };

typedef struct context_scratch {
    char key[48];
    digcl_buffer buffer;
} context_scratch;

typedef struct context_cleanup {
    void (*fn)(void *arg);
    void *arg;
} context_cleanup;

struct digcl_context {
    digcl_device_info device;
    cl_context context;
    cl_command_queue queue;
    int verbose;
    int profiling;
    digcl_precision precision;

    program_entry *programs;
    int program_count, program_capacity;
    kernel_entry *kernels;
    int kernel_count, kernel_capacity;
    digcl_kernel_cache_stats cache_stats;

    uint64_t in_use_bytes, peak_bytes;

    profile_entry *profile;
    int profile_count, profile_capacity;
    pending_event pending[DIGCL_PENDING_EVENTS];
    int pending_count;
    cl_event external_event; /* event of the launch in flight */

    context_scratch *scratch; /* digcl_context_scratch buffers */
    int scratch_count;
    context_cleanup *cleanups; /* digcl_context_on_release callbacks */
    int cleanup_count;
};

/* profile.c */
void digcl_profile_flush(digcl_context *ctx);
void digcl_profile_print(digcl_context *ctx);
void digcl_profile_free(digcl_context *ctx);
cl_event *digcl_profile_launch_event(digcl_context *ctx);
void digcl_profile_after_launch(digcl_context *ctx, const char *label);

/* scratch.c */
void digcl_context_release_scratch(digcl_context *ctx);

/* program.c */
void digcl_programs_release(digcl_context *ctx);

#endif
