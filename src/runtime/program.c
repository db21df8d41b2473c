/* Kernel programs: embedded sources, an in-process program/kernel table, and
 * the persistent program-binary cache.
 *
 * Cache key: XXH3-128 over (cache format version, source, build options,
 * device name, driver version, platform version). File <dir>/<key>.clbin:
 *   "DIGCLBIN" | u32 format | u32 reserved | u64 payload bytes |
 *   u64 payload hash | 16-byte key | payload (CL_PROGRAM_BINARIES)
 * The payload hash is XXH3-64 of the payload seeded with the file's key, so a
 * payload is valid only under its own key. Written to a temporary file,
 * fsync'ed and renamed. Only regular files are read (a FIFO or device in the
 * cache directory never blocks); a file that fails any check is ignored and
 * rebuilt before any byte of it reaches the driver. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "runtime/context_internal.h"

#define CACHE_FORMAT_VERSION 2u
#define CACHE_HEADER_BYTES   (8 + 4 + 4 + 8 + 8 + 16)

typedef struct digcl_embedded_kernel {
    const char *name;
    const char *source;
    size_t length;
} digcl_embedded_kernel;
extern const digcl_embedded_kernel digcl_embedded_kernels[];

/* ------------------------------------------------------------ sources */

const char *digcl_kernel_source(const char *file, size_t *length) {
    for (const digcl_embedded_kernel *k = digcl_embedded_kernels; k->name; k++) {
        if (strcmp(k->name, file) == 0) {
            if (length) *length = k->length;
            return k->source;
        }
    }
    return NULL;
}

/* ------------------------------------------------------------ cache directory */

void digcl_kernel_cache_dir(char *path, size_t size) {
    const char *disabled = getenv("DIGCL_KERNEL_CACHE");
    path[0] = '\0';
    if (disabled && strcmp(disabled, "0") == 0) return;
    const char *dir = getenv("DIGCL_CACHE_DIR");
    if (dir && *dir) {
        snprintf(path, size, "%s", dir);
        return;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    if (xdg && *xdg) {
        snprintf(path, size, "%s/digcl", xdg);
        return;
    }
    const char *home = getenv("HOME");
    if (home && *home) snprintf(path, size, "%s/.cache/digcl", home);
}

static int make_directories(const char *path) {
    char buffer[4096];
    snprintf(buffer, sizeof buffer, "%s", path);
    for (char *p = buffer + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buffer, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return (mkdir(buffer, 0755) == 0 || errno == EEXIST) ? 0 : -1;
}

/* ------------------------------------------------------------ cache key and files */

typedef struct cache_key {
    unsigned char bytes[16];
    char hex[33];
} cache_key;

static cache_key compute_cache_key(const digcl_context *ctx, const char *source, size_t length,
                                   const char *options) {
    XXH3_state_t *state = XXH3_createState();
    if (!state) digcl_fatal("out of host memory hashing a kernel");
    XXH3_128bits_reset(state);
    unsigned version = CACHE_FORMAT_VERSION;
    const char zero = 0;
    XXH3_128bits_update(state, &version, sizeof version);
    XXH3_128bits_update(state, source, length);
    XXH3_128bits_update(state, &zero, 1);
    const char *parts[] = {options, ctx->device.name, ctx->device.driver_version,
                           ctx->device.platform_version};
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++) {
        XXH3_128bits_update(state, parts[i], strlen(parts[i]));
        XXH3_128bits_update(state, &zero, 1);
    }
    XXH128_hash_t hash = XXH3_128bits_digest(state);
    XXH3_freeState(state);
    cache_key key;
    XXH128_canonical_t canonical;
    XXH128_canonicalFromHash(&canonical, hash);
    memcpy(key.bytes, canonical.digest, 16);
    for (int i = 0; i < 16; i++) snprintf(key.hex + 2 * i, 3, "%02x", key.bytes[i]);
    return key;
}

static void put_u32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put_u64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static uint32_t get_u32(const unsigned char *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint64_t get_u64(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

static uint64_t payload_hash(const cache_key *key, const unsigned char *payload, size_t bytes) {
    return XXH3_64bits_withSeed(payload, bytes, get_u64(key->bytes) ^ get_u64(key->bytes + 8));
}

/* A regular file opened for reading without blocking (a FIFO would block
 * fopen); NULL when absent. *rejected = 1 for anything but a regular file. */
static FILE *open_regular(const char *path, int *rejected) {
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat info;
    FILE *file = NULL;
    if (fstat(fd, &info) == 0 && S_ISREG(info.st_mode)) file = fdopen(fd, "rb");
    if (!file) {
        *rejected = 1;
        close(fd);
    }
    return file;
}

/* Returns the payload (malloc'ed) when the file exists and passes every check. */
static unsigned char *read_cache_file(const char *path, const cache_key *key, size_t *payload_bytes,
                                      int *rejected) {
    *rejected = 0;
    FILE *file = open_regular(path, rejected);
    if (!file) return NULL;
    unsigned char header[CACHE_HEADER_BYTES];
    unsigned char *payload = NULL;
    *rejected = 1;
    if (fread(header, 1, sizeof header, file) != sizeof header) goto done;
    if (memcmp(header, "DIGCLBIN", 8) != 0 || get_u32(header + 8) != CACHE_FORMAT_VERSION)
        goto done;
    if (memcmp(header + 32, key->bytes, 16) != 0) goto done;
    uint64_t size = get_u64(header + 16);
    if (size == 0 || size > ((uint64_t)1 << 31)) goto done;
    payload = malloc((size_t)size);
    if (!payload || fread(payload, 1, (size_t)size, file) != size || fgetc(file) != EOF ||
        payload_hash(key, payload, (size_t)size) != get_u64(header + 24)) {
        free(payload);
        payload = NULL;
        goto done;
    }
    *payload_bytes = (size_t)size;
    *rejected = 0;
done:
    fclose(file);
    return payload;
}

static int write_all_and_sync(FILE *file, const void *a, size_t a_bytes, const void *b,
                              size_t b_bytes) {
    if (fwrite(a, 1, a_bytes, file) != a_bytes || fwrite(b, 1, b_bytes, file) != b_bytes) return -1;
    if (fflush(file) != 0) return -1;
    return fsync(fileno(file));
}

static void write_cache_file(const char *dir, const char *path, const cache_key *key,
                             const unsigned char *payload, size_t bytes) {
    if (make_directories(dir) != 0) return; /* an unwritable cache only costs compile time */
    char temporary[4400];
    snprintf(temporary, sizeof temporary, "%s.tmp.%ld", path, (long)getpid());
    FILE *file = fopen(temporary, "wb");
    if (!file) return;
    unsigned char header[CACHE_HEADER_BYTES] = {0};
    memcpy(header, "DIGCLBIN", 8);
    put_u32(header + 8, CACHE_FORMAT_VERSION);
    put_u64(header + 16, bytes);
    put_u64(header + 24, payload_hash(key, payload, bytes));
    memcpy(header + 32, key->bytes, 16);
    int failed = write_all_and_sync(file, header, sizeof header, payload, bytes);
    failed |= fclose(file);
    if (failed || rename(temporary, path) != 0) remove(temporary);
}

/* ------------------------------------------------------------ building */

/* The program's build log (malloc'ed), or NULL. */
static char *build_log_text(digcl_context *ctx, cl_program program) {
    size_t size = 0;
    clGetProgramBuildInfo(program, ctx->device.device, CL_PROGRAM_BUILD_LOG, 0, NULL, &size);
    char *log = malloc(size + 1);
    if (log && clGetProgramBuildInfo(program, ctx->device.device, CL_PROGRAM_BUILD_LOG, size, log,
                                     NULL) == CL_SUCCESS) {
        log[size] = '\0';
        return log;
    }
    free(log);
    return NULL;
}

static void print_build_log(digcl_context *ctx, cl_program program, const char *label,
                            const char *options) {
    char *log = build_log_text(ctx, program);
    if (log)
        digcl_log(DIGCL_LOG_WARNING, "build log of %s (options: %s) on %s:\n%s", label, options,
                  ctx->device.name, log);
    free(log);
}

static unsigned char *program_binary(digcl_context *ctx, cl_program program, size_t *bytes) {
    DIGCL_CL_CHECK(clGetProgramInfo(program, CL_PROGRAM_BINARY_SIZES, sizeof *bytes, bytes, NULL));
    if (*bytes == 0) return NULL;
    unsigned char *binary = malloc(*bytes);
    if (!binary) return NULL;
    unsigned char *binaries[1] = {binary};
    (void)ctx;
    if (clGetProgramInfo(program, CL_PROGRAM_BINARIES, sizeof binaries, binaries, NULL) !=
        CL_SUCCESS) {
        free(binary);
        return NULL;
    }
    return binary;
}

static cl_program build_from_binary(digcl_context *ctx, const unsigned char *binary, size_t bytes,
                                    const char *options) {
    cl_int status, binary_status;
    cl_program program = clCreateProgramWithBinary(ctx->context, 1, &ctx->device.device, &bytes,
                                                   &binary, &binary_status, &status);
    if (status != CL_SUCCESS || binary_status != CL_SUCCESS) {
        if (program) clReleaseProgram(program);
        return NULL;
    }
    if (clBuildProgram(program, 1, &ctx->device.device, options, NULL, NULL) != CL_SUCCESS) {
        clReleaseProgram(program);
        return NULL;
    }
    return program;
}

/* DIGCL_BUILD_LOG=1 (kernel development): every program compiled from source
 * hands its build log to the log handler, line by line, so that a compiler's
 * report (NVIDIA: DIGCL_BUILD_OPTIONS=-cl-nv-verbose gives ptxas's registers,
 * stack frame and spills per kernel) can be read for each kernel variant. */
static void log_build_report(digcl_context *ctx, cl_program program, const char *label,
                             const char *options) {
    const char *wanted = getenv("DIGCL_BUILD_LOG");
    if (!wanted || strcmp(wanted, "1") != 0) return;
    char *log = build_log_text(ctx, program);
    if (!log) return;
    digcl_log(DIGCL_LOG_INFO, "build log of %s [%.1800s]:", label, options);
    for (char *line = strtok(log, "\n"); line; line = strtok(NULL, "\n"))
        digcl_log(DIGCL_LOG_INFO, "  %.1900s", line);
    free(log);
}

static cl_program build_from_source(digcl_context *ctx, const char *label, const char *source,
                                    size_t length, const char *options) {
    cl_int status;
    cl_program program = clCreateProgramWithSource(ctx->context, 1, &source, &length, &status);
    DIGCL_CL_CHECK(status);
    status = clBuildProgram(program, 1, &ctx->device.device, options, NULL, NULL);
    if (status == CL_SUCCESS) log_build_report(ctx, program, label, options);
    if (status != CL_SUCCESS) {
        print_build_log(ctx, program, label, options);
        digcl_fatal(
            "failed to build OpenCL program %s (%s) for %s\n---> HINT: the build log went to the log handler",
            label, digcl_cl_error_name(status), ctx->device.name);
    }
    return program;
}

/* ------------------------------------------------------------ arch-specific PTX */

/* NVIDIA's OpenCL compiler emits PTX for the plain target (sm_90 on Hopper), whose
 * assembler rejects the arch-specific instructions (wgmma needs sm_90a). A kernel
 * therefore writes each such instruction as a PTX comment behind ARCH_PTX_MARKER
 * (cl/tensor_core.cl, ARCH_PTX); here the compiled PTX has the markers removed and its
 * target renamed to the arch-specific one, and the driver compiles that. Only on compute
 * capability 9.0, where the kernels that carry markers are chosen (src/ops/gemm_tc.c). */
#define ARCH_PTX_MARKER "// @@"

static char *arch_specific_ptx(const unsigned char *binary, size_t bytes, size_t *patched_bytes) {
    const char *text = (const char *)binary, *end = text + bytes;
    const size_t marker = strlen(ARCH_PTX_MARKER), target = strlen(".target sm_90");
    char *out = malloc(bytes + 2), *o = out;
    if (!out) return NULL;
    int retargeted = 0;
    for (const char *r = text; r < end && *r;) {
        if ((size_t)(end - r) >= marker && memcmp(r, ARCH_PTX_MARKER, marker) == 0) {
            r += marker;
        } else if (!retargeted && (size_t)(end - r) > target &&
                   memcmp(r, ".target sm_90", target) == 0 && r[target] != 'a') {
            memcpy(o, ".target sm_90a", target + 1), o += target + 1, r += target;
            retargeted = 1;
        } else {
            *o++ = *r++;
        }
    }
    *o = '\0';
    *patched_bytes = (size_t)(o - out); /* the text, as the driver returned it */
    if (!retargeted) free(out), out = NULL;
    return out;
}

static int has_arch_markers(const unsigned char *binary, size_t bytes) {
    const size_t marker = strlen(ARCH_PTX_MARKER);
    for (size_t i = 0; i + marker <= bytes; i++)
        if (memcmp(binary + i, ARCH_PTX_MARKER, marker) == 0) return 1;
    return 0;
}

/* The program with its marked instructions restored, or the program itself when it has
 * none (every program on other devices). */
static cl_program restore_arch_instructions(digcl_context *ctx, cl_program program,
                                            const char *label, const char *options) {
    if (ctx->device.nv_compute_capability != 90) return program;
    size_t bytes = 0;
    unsigned char *binary = program_binary(ctx, program, &bytes);
    if (!binary || !has_arch_markers(binary, bytes)) {
        free(binary);
        return program;
    }
    size_t patched_bytes = 0;
    char *patched = arch_specific_ptx(binary, bytes, &patched_bytes);
    free(binary);
    cl_program rebuilt =
        patched ? build_from_binary(ctx, (const unsigned char *)patched, patched_bytes, options)
                : NULL;
    free(patched);
    if (!rebuilt)
        digcl_fatal("the driver rejected the sm_90a PTX of OpenCL program %s on %s\n"
                    "---> HINT: DIGCL_GEMM_WGMMA=0 keeps the kernels without wgmma",
                    label, ctx->device.name);
    clReleaseProgram(program);
    return rebuilt;
}

static void log_cache(digcl_context *ctx, const char *what, const char *label,
                      const char *options) {
    if (ctx->verbose || ctx->profiling)
        digcl_log(DIGCL_LOG_DEBUG, "kernel cache: %s %s [%s]", what, label, options);
}

cl_program digcl_program_from_source(digcl_context *ctx, const char *label, const char *source,
                                     size_t length, const char *options) {
    /* DIGCL_BUILD_OPTIONS (kernel development): appended to every build, and so
     * part of the cache key */
    const char *extra = getenv("DIGCL_BUILD_OPTIONS");
    char full_options[2048];
    snprintf(full_options, sizeof full_options, "-cl-std=CL1.2 %s%s%.600s", options ? options : "",
             extra && *extra ? " " : "", extra && *extra ? extra : "");
    char dir[4096], path[4200];
    digcl_kernel_cache_dir(dir, sizeof dir);
    cache_key key = compute_cache_key(ctx, source, length, full_options);
    snprintf(path, sizeof path, "%s/%s.clbin", dir, key.hex);
    if (dir[0]) {
        size_t bytes = 0;
        int rejected = 0;
        unsigned char *binary = read_cache_file(path, &key, &bytes, &rejected);
        cl_program program = binary ? build_from_binary(ctx, binary, bytes, full_options) : NULL;
        free(binary);
        if (program) {
            ctx->cache_stats.disk_hits++;
            log_cache(ctx, "loaded", label, options ? options : "");
            return program;
        }
        if (rejected || binary) {
            ctx->cache_stats.disk_rejects++;
            log_cache(ctx, "rejected a corrupt or foreign file for", label, options ? options : "");
        }
    }
    cl_program program = build_from_source(ctx, label, source, length, full_options);
    program = restore_arch_instructions(ctx, program, label, full_options);
    ctx->cache_stats.disk_misses++;
    log_cache(ctx, "compiled", label, options ? options : "");
    if (dir[0]) {
        size_t bytes = 0;
        unsigned char *binary = program_binary(ctx, program, &bytes);
        if (binary) write_cache_file(dir, path, &key, binary, bytes);
        free(binary);
    }
    return program;
}

/* ------------------------------------------------------------ includes */

/* The name between the quotes of a line `#include "name.cl"`, or 0. */
static int include_target(const char *line, size_t length, char *name, size_t size) {
    const char *prefix = "#include \"";
    size_t prefix_length = strlen(prefix);
    if (length <= prefix_length + 4 || strncmp(line, prefix, prefix_length) != 0) return 0;
    const char *start = line + prefix_length, *end = memchr(start, '"', length - prefix_length);
    if (!end || end - start < 4 || strncmp(end - 3, ".cl", 3) != 0 ||
        (size_t)(end - start - 3) >= size)
        return 0;
    memcpy(name, start, (size_t)(end - start - 3));
    name[end - start - 3] = '\0';
    return 1;
}

static void append(char **out, size_t *used, size_t *capacity, const char *text, size_t length) {
    if (*used + length + 1 > *capacity) {
        *capacity = 2 * (*used + length + 1);
        char *grown = realloc(*out, *capacity);
        if (!grown) digcl_fatal("out of host memory expanding a kernel source");
        *out = grown;
    }
    memcpy(*out + *used, text, length);
    *used += length;
    (*out)[*used] = '\0';
}

/* Replaces each line `#include "name.cl"` of an embedded kernel file with the
 * embedded cl/name.cl (one level: shared definitions such as cl/vector.cl).
 * The result (malloc'ed) is what gets compiled and hashed for the cache. */
static char *expand_includes(const char *file, const char *source, size_t length,
                             size_t *expanded_length) {
    char *out = NULL;
    size_t used = 0, capacity = 0;
    for (size_t at = 0; at < length;) {
        const char *line = source + at, *newline = memchr(line, '\n', length - at);
        size_t line_length = newline ? (size_t)(newline - line) + 1 : length - at;
        char name[128];
        if (include_target(line, line_length, name, sizeof name)) {
            size_t included_length = 0;
            const char *included = digcl_kernel_source(name, &included_length);
            if (!included)
                digcl_fatal("cl/%s.cl includes \"%s.cl\", which is not an embedded kernel file",
                            file, name);
            append(&out, &used, &capacity, included, included_length);
            append(&out, &used, &capacity, "\n", 1);
        } else {
            append(&out, &used, &capacity, line, line_length);
        }
        at += line_length;
    }
    if (!out) append(&out, &used, &capacity, "", 0);
    *expanded_length = used;
    return out;
}

/* ------------------------------------------------------------ program and kernel tables */

static uint64_t table_key(const char *file, const char *options, const char *name) {
    XXH64_state_t *state = XXH64_createState();
    XXH64_reset(state, 0);
    const char zero = 0;
    XXH64_update(state, file, strlen(file));
    XXH64_update(state, &zero, 1);
    XXH64_update(state, options, strlen(options));
    XXH64_update(state, &zero, 1);
    if (name) XXH64_update(state, name, strlen(name));
    uint64_t key = XXH64_digest(state);
    XXH64_freeState(state);
    return key;
}

static char *copy_string(const char *s) {
    char *copy = malloc(strlen(s) + 1);
    if (!copy) digcl_fatal("out of host memory");
    strcpy(copy, s);
    return copy;
}

static void *grow(void *array, int *capacity, size_t element) {
    int next = *capacity ? 2 * *capacity : 32;
    void *grown = realloc(array, (size_t)next * element);
    if (!grown) digcl_fatal("out of host memory");
    *capacity = next;
    return grown;
}

static cl_program find_or_build_program(digcl_context *ctx, const char *file, const char *options) {
    uint64_t key = table_key(file, options, NULL);
    for (int i = 0; i < ctx->program_count; i++) {
        program_entry *e = &ctx->programs[i];
        if (e->key == key && strcmp(e->file, file) == 0 && strcmp(e->options, options) == 0) {
            ctx->cache_stats.memory_hits++;
            return e->program;
        }
    }
    size_t length = 0, expanded_length = 0;
    const char *source = digcl_kernel_source(file, &length);
    if (!source)
        digcl_fatal("no embedded kernel file cl/%s.cl (is it in cl/ and was cmake re-run?)", file);
    char *expanded = expand_includes(file, source, length, &expanded_length);
    if (ctx->program_count == ctx->program_capacity)
        ctx->programs = grow(ctx->programs, &ctx->program_capacity, sizeof *ctx->programs);
    program_entry *entry = &ctx->programs[ctx->program_count++];
    entry->key = key;
    entry->file = copy_string(file);
    entry->options = copy_string(options);
    entry->program = digcl_program_from_source(ctx, file, expanded, expanded_length, options);
    free(expanded);
    return entry->program;
}

cl_kernel digcl_kernel(digcl_context *ctx, const char *file, const char *name,
                       const char *options) {
    if (!options) options = "";
    uint64_t key = table_key(file, options, name);
    for (int i = 0; i < ctx->kernel_count; i++)
        if (ctx->kernels[i].key == key) return ctx->kernels[i].kernel;
    cl_program program = find_or_build_program(ctx, file, options);
    cl_int status;
    cl_kernel kernel = clCreateKernel(program, name, &status);
    if (status != CL_SUCCESS)
        digcl_fatal("kernel '%s' not found in cl/%s.cl (%s)", name, file,
                    digcl_cl_error_name(status));
    if (ctx->kernel_count == ctx->kernel_capacity)
        ctx->kernels = grow(ctx->kernels, &ctx->kernel_capacity, sizeof *ctx->kernels);
    ctx->kernels[ctx->kernel_count].key = key;
    ctx->kernels[ctx->kernel_count].kernel = kernel;
    ctx->kernel_count++;
    return kernel;
}

digcl_kernel_cache_stats digcl_kernel_cache_stats_get(const digcl_context *ctx) {
    return ctx->cache_stats;
}

void digcl_programs_release(digcl_context *ctx) {
    for (int i = 0; i < ctx->kernel_count; i++) clReleaseKernel(ctx->kernels[i].kernel);
    for (int i = 0; i < ctx->program_count; i++) {
        clReleaseProgram(ctx->programs[i].program);
        free(ctx->programs[i].file);
        free(ctx->programs[i].options);
    }
    free(ctx->kernels);
    free(ctx->programs);
    ctx->kernels = NULL;
    ctx->programs = NULL;
    ctx->kernel_count = ctx->program_count = 0;
}

/* ------------------------------------------------------------ arguments and launches */

void digcl_arg_mem(cl_kernel kernel, unsigned index, cl_mem value) {
    DIGCL_CL_CHECK(clSetKernelArg(kernel, index, sizeof value, &value));
}
void digcl_arg_int(cl_kernel kernel, unsigned index, int value) {
    DIGCL_CL_CHECK(clSetKernelArg(kernel, index, sizeof value, &value));
}
void digcl_arg_float(cl_kernel kernel, unsigned index, float value) {
    DIGCL_CL_CHECK(clSetKernelArg(kernel, index, sizeof value, &value));
}
void digcl_arg_ulong(cl_kernel kernel, unsigned index, uint64_t value) {
    cl_ulong v = value;
    DIGCL_CL_CHECK(clSetKernelArg(kernel, index, sizeof v, &v));
}
void digcl_arg_local(cl_kernel kernel, unsigned index, size_t bytes) {
    DIGCL_CL_CHECK(clSetKernelArg(kernel, index, bytes, NULL));
}

void digcl_launch(digcl_context *ctx, cl_kernel kernel, const char *label, unsigned dims,
                  const size_t *global, const size_t *local) {
    size_t rounded[3];
    for (unsigned d = 0; d < dims; d++) {
        size_t group = local ? local[d] : 1;
        rounded[d] = (global[d] + group - 1) / group * group;
        if (rounded[d] == 0) return; /* empty launch: nothing to do */
    }
    cl_int status = clEnqueueNDRangeKernel(ctx->queue, kernel, dims, NULL, rounded, local, 0, NULL,
                                           digcl_profile_launch_event(ctx));
    if (status != CL_SUCCESS) {
        char call[160];
        snprintf(call, sizeof call, "clEnqueueNDRangeKernel(%s)", label);
        digcl_cl_failed(call, status, __FILE__, __LINE__);
    }
    digcl_profile_after_launch(ctx, label);
}
