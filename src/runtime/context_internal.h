/* The digcl_context layout, shared by the runtime's own files only. */
#ifndef DIGCL_CONTEXT_INTERNAL_H
#define DIGCL_CONTEXT_INTERNAL_H

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

struct digcl_context {
    digcl_device_info device;
    cl_context context;
    cl_command_queue queue;
    int verbose;
    int profiling;

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

    cl_mem gemm_temp;       /* CLBlast's padding/transpose scratch */
    size_t gemm_temp_bytes;
    cl_mem gemm_slices;     /* split-K partial products [slices, M, N] */
    size_t gemm_slices_bytes;
};

/* profile.c */
void digcl_profile_flush(digcl_context *ctx);
void digcl_profile_print(digcl_context *ctx);
void digcl_profile_free(digcl_context *ctx);
cl_event *digcl_profile_launch_event(digcl_context *ctx);
void digcl_profile_after_launch(digcl_context *ctx, const char *label);

/* program.c */
void digcl_programs_release(digcl_context *ctx);

#endif
