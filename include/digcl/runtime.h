/* digcl/runtime.h: OpenCL devices, the per-device context and queue, kernel
 * programs (embedded sources, in-process and persistent binary cache), kernel
 * launches with optional profiling, and device buffers with memory accounting.
 *
 * Everything above the runtime (ops, models, training) talks to OpenCL through
 * a digcl_context: one context and one in-order queue per device.
 */
#ifndef DIGCL_RUNTIME_H
#define DIGCL_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/error.h"

/* ---------------------------------------------------------------- devices */

typedef struct digcl_device_info {
    int platform_index; /* P in "P:D" */
    int device_index;   /* D in "P:D", counted inside the platform */
    cl_platform_id platform;
    cl_device_id device;
    cl_device_type type;
    char platform_name[256];
    char platform_version[256];
    char name[256];
    char vendor[256];
    char driver_version[256];
    char opencl_c_version[256];
    uint64_t global_mem_bytes;
    uint64_t local_mem_bytes;
    uint64_t max_alloc_bytes;
    uint32_t compute_units;
    size_t max_work_group_size;
    uint32_t mem_base_addr_align_bytes;
    int has_fp16;
    int has_fp64;
    /* NVIDIA compute capability as major*10 + minor (90 for Hopper), read
     * through cl_nv_device_attribute_query; 0 on other devices. */
    int nv_compute_capability;
} digcl_device_info;

/* Lists every device of every platform. Returns the count (0 when there is no
 * platform at all); *devices is malloc'ed and owned by the caller. */
int digcl_list_devices(digcl_device_info **devices);

/* The explanation for "no OpenCL platform at all" (how to install PoCL), used
 * by digcl_context_create and `digcl devices`. */
const char *digcl_no_platform_message(void);

/* Index into the list of the default device: the first GPU, else the first
 * accelerator, else the first CPU, else the first device; -1 if none. */
int digcl_default_device(const digcl_device_info *devices, int count);

/* Resolves a --device spec: "P:D" or a case-insensitive name substring.
 * A NULL or empty spec falls back to $DIGCL_DEVICE, then to the default.
 * Returns the list index, or -1 when nothing matches (message in error). */
int digcl_select_device(const digcl_device_info *devices, int count, const char *spec, char *error,
                        size_t error_size);

/* ---------------------------------------------------------------- context */

typedef struct digcl_context digcl_context;

/* The arithmetic of matrix products (GEMMs). FP32 (the default) gives
 * fp32-accurate products on every device (on NVIDIA tensor cores through
 * 3xTF32); TF32 allows one TF32 product per term where tensor cores exist, as
 * PyTorch's allow_tf32 (relative L2 error about 1e-3; no effect elsewhere). */
typedef enum digcl_precision {
    DIGCL_PRECISION_DEFAULT = 0, /* $DIGCL_PRECISION (fp32|tf32), else fp32 */
    DIGCL_PRECISION_FP32 = 1,
    DIGCL_PRECISION_TF32 = 2
} digcl_precision;

typedef struct digcl_context_options {
    const char *device_spec;   /* --device; NULL: $DIGCL_DEVICE, then the default */
    int verbose;               /* 1: say which kernels came from the cache */
    digcl_precision precision; /* --precision */
} digcl_context_options;

/* "fp32" / "tf32" -> the enum; -1 for anything else. */
int digcl_precision_parse(const char *name);
/* What a context created with `requested` uses: requested, else
 * $DIGCL_PRECISION, else FP32 (a bad $DIGCL_PRECISION is fatal). */
digcl_precision digcl_precision_resolve(digcl_precision requested);
const char *digcl_precision_name(digcl_precision precision);

/* Opens the device: context, in-order queue (with profiling when
 * DIGCL_PROFILE=1). An unknown spec or no platform at all (the message
 * explains how to install PoCL) fails through digcl_fatal; programs that want
 * to list the devices first resolve the spec with digcl_select_device. Running
 * on a CPU because no GPU exists is logged as a notice. */
digcl_context *digcl_context_create(const digcl_context_options *options);
/* Logs the profile totals (if enabled, at DIGCL_LOG_INFO), runs the
 * digcl_context_on_release callbacks and releases everything. */
void digcl_context_release(digcl_context *ctx);

const digcl_device_info *digcl_context_device(const digcl_context *ctx);
cl_context digcl_context_cl(const digcl_context *ctx);
cl_command_queue digcl_context_queue(const digcl_context *ctx);
int digcl_context_verbose(const digcl_context *ctx);
/* FP32 or TF32 (never DEFAULT: resolved at creation). */
digcl_precision digcl_context_precision(const digcl_context *ctx);

/* A reusable device buffer owned by the context, one per key (e.g. CLBlast's
 * temp buffer): at least `bytes`, grown (never shrunk) on demand, released with
 * the context and counted in the memory stats like any digcl_buffer. Growth
 * happens only when a larger request is first seen, outside a steady loop. */
cl_mem digcl_context_scratch(digcl_context *ctx, const char *key, size_t bytes, const char *what);
/* Registers fn(arg), called by digcl_context_release before the queue and
 * programs go (last registered first). */
void digcl_context_on_release(digcl_context *ctx, void (*fn)(void *arg), void *arg);
void digcl_finish(digcl_context *ctx);

/* ---------------------------------------------------------------- kernels */

typedef struct digcl_kernel_cache_stats {
    int memory_hits;  /* programs reused inside this process */
    int disk_hits;    /* programs loaded from the persistent binary cache */
    int disk_misses;  /* programs compiled from source */
    int disk_rejects; /* cache files found but corrupt/foreign, rebuilt */
} digcl_kernel_cache_stats;

/* The embedded source of cl/<file>.cl, or NULL. */
const char *digcl_kernel_source(const char *file, size_t *length);

/* The kernel `name` from cl/<file>.cl built with "-cl-std=CL1.2 <options>".
 * Programs and kernels are cached per (file, options) for the context's
 * lifetime; the caller must not release the kernel. A failed build prints the
 * full build log. Not thread-safe (one host thread per context). */
cl_kernel digcl_kernel(digcl_context *ctx, const char *file, const char *name, const char *options);

/* Builds a program from an explicit source (tests, tools). */
cl_program digcl_program_from_source(digcl_context *ctx, const char *label, const char *source,
                                     size_t length, const char *options);

digcl_kernel_cache_stats digcl_kernel_cache_stats_get(const digcl_context *ctx);

/* The cache directory: $DIGCL_CACHE_DIR, else $XDG_CACHE_HOME/digcl, else
 * ~/.cache/digcl. Empty when DIGCL_KERNEL_CACHE=0. */
void digcl_kernel_cache_dir(char *path, size_t size);

/* Kernel arguments. Each checks the OpenCL status. */
void digcl_arg_mem(cl_kernel kernel, unsigned index, cl_mem value);
void digcl_arg_int(cl_kernel kernel, unsigned index, int value);
void digcl_arg_float(cl_kernel kernel, unsigned index, float value);
void digcl_arg_ulong(cl_kernel kernel, unsigned index, uint64_t value);
void digcl_arg_local(cl_kernel kernel, unsigned index, size_t bytes);

/* Enqueues an NDRange. local may be NULL. global sizes are rounded up to a
 * multiple of local here, so kernels must bounds-check. label names the
 * kernel in the profile. */
void digcl_launch(digcl_context *ctx, cl_kernel kernel, const char *label, unsigned dims,
                  const size_t *global, const size_t *local);

/* For work enqueued by a library (CLBlast), whose returned event covers only
 * its last kernel: with DIGCL_PROFILE=1, begin finishes the queue and returns a
 * host time, end finishes again and adds the elapsed time under label. Both
 * are no-ops when profiling is off. */
double digcl_profile_begin(digcl_context *ctx);
void digcl_profile_end(digcl_context *ctx, const char *label, double begin);
int digcl_profiling_enabled(const digcl_context *ctx);

/* Seconds on the monotonic clock (CLOCK_MONOTONIC): for durations only. */
double digcl_seconds_now(void);

/* ---------------------------------------------------------------- buffers */

typedef struct digcl_buffer {
    cl_mem mem;
    size_t bytes;
    digcl_context *ctx;
    char what[64];
} digcl_buffer;

/* Allocates `bytes` of device memory for `what`. Contents are undefined: never
 * assume zeroes. Failure: "out of device memory: needed X MiB for <what>;
 * device <name> has Y MiB, Z MiB in use", through digcl_fatal. */
digcl_buffer digcl_buffer_create(digcl_context *ctx, size_t bytes, const char *what);
void digcl_buffer_release(digcl_buffer *buffer);

/* Blocking transfers, offsets in bytes. */
void digcl_write(digcl_context *ctx, cl_mem mem, size_t offset, size_t bytes, const void *host);
void digcl_read(digcl_context *ctx, cl_mem mem, size_t offset, size_t bytes, void *host);
/* Fills `count` floats starting at element `offset` with value (zero-grad,
 * poisoning). Asynchronous. */
void digcl_fill_f32(digcl_context *ctx, cl_mem mem, size_t offset, size_t count, float value);
/* Device-to-device copy, asynchronous, offsets in bytes. */
void digcl_copy(digcl_context *ctx, cl_mem src, size_t src_offset, cl_mem dst, size_t dst_offset,
                size_t bytes);
/* Copies a [rows, columns] float block between two row-major matrices with
 * different row strides (elements), e.g. one column range of a fused
 * projection output. Asynchronous (a kernel of cl/util.cl: portable, and it
 * works on sub-buffers, where PoCL 3.1's clEnqueueCopyBufferRect crashed). */
void digcl_copy_columns(digcl_context *ctx, cl_mem src, size_t src_row_stride, size_t src_column,
                        cl_mem dst, size_t dst_row_stride, size_t dst_column, size_t rows,
                        size_t columns);
/* A sub-buffer view [offset, offset+bytes) of mem; offset must be a multiple of
 * the device's base address alignment (digcl_align_offset). Released by the
 * caller with clReleaseMemObject. */
cl_mem digcl_sub_buffer(digcl_context *ctx, cl_mem mem, size_t offset, size_t bytes);
/* Rounds bytes up to the device's sub-buffer alignment. */
size_t digcl_align_offset(const digcl_context *ctx, size_t bytes);

typedef struct digcl_memory_stats {
    uint64_t in_use_bytes;
    uint64_t peak_bytes;
    uint64_t device_bytes;
} digcl_memory_stats;

digcl_memory_stats digcl_memory_stats_get(const digcl_context *ctx);
/* Sets peak back to the current use (to measure one region). */
void digcl_memory_reset_peak(digcl_context *ctx);

#endif
