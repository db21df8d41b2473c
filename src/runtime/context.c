/* The per-device context: one cl_context and one in-order queue. */
#include <stdlib.h>
#include <string.h>

#include "digcl/log.h"
#include "runtime/context_internal.h"

const char *digcl_no_platform_message(void) {
    return "no OpenCL platform found.\n"
           "---> HINT: install an OpenCL driver. For a CPU device on Debian/Ubuntu:\n"
           "      sudo apt-get install pocl-opencl-icd ocl-icd-libopencl1\n"
           "    (Fedora: sudo dnf install pocl; Arch: sudo pacman -S pocl), or run\n"
           "    scripts/install-deps.sh. GPU vendors ship their own ICD (check /etc/OpenCL/vendors).";
}

static int env_is_one(const char *name) {
    const char *value = getenv(name);
    return value && strcmp(value, "1") == 0;
}

int digcl_precision_parse(const char *name) {
    if (name && strcmp(name, "fp32") == 0) return DIGCL_PRECISION_FP32;
    if (name && strcmp(name, "tf32") == 0) return DIGCL_PRECISION_TF32;
    return -1;
}

const char *digcl_precision_name(digcl_precision precision) {
    return precision == DIGCL_PRECISION_TF32 ? "tf32" : "fp32";
}

digcl_precision digcl_precision_resolve(digcl_precision requested) {
    if (requested != DIGCL_PRECISION_DEFAULT) return requested;
    const char *value = getenv("DIGCL_PRECISION");
    if (!value || !*value) return DIGCL_PRECISION_FP32;
    int parsed = digcl_precision_parse(value);
    if (parsed < 0)
        digcl_fatal("DIGCL_PRECISION='%s' is not a precision (expected fp32 or tf32)", value);
    return (digcl_precision)parsed;
}

static void open_queue(digcl_context *ctx) {
    cl_int status;
    cl_context_properties properties[] = {CL_CONTEXT_PLATFORM,
                                          (cl_context_properties)ctx->device.platform, 0};
    ctx->context = clCreateContext(properties, 1, &ctx->device.device, NULL, NULL, &status);
    DIGCL_CL_CHECK(status);
    cl_command_queue_properties queue_properties = ctx->profiling ? CL_QUEUE_PROFILING_ENABLE : 0;
    ctx->queue = clCreateCommandQueue(ctx->context, ctx->device.device, queue_properties, &status);
    DIGCL_CL_CHECK(status);
}

digcl_context *digcl_context_create(const digcl_context_options *options) {
    digcl_context_options defaults = {0};
    if (!options) options = &defaults;
    digcl_device_info *devices = NULL;
    int count = digcl_list_devices(&devices);
    if (count == 0) digcl_fatal("%s", digcl_no_platform_message());
    char message[256] = "";
    int index = digcl_select_device(devices, count, options->device_spec, message, sizeof message);
    if (index < 0) {
        free(devices);
        digcl_fatal("%s (`digcl devices` lists them)", message);
    }

    digcl_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) digcl_fatal("out of host memory creating the OpenCL context");
    ctx->device = devices[index];
    free(devices);
    ctx->verbose = options->verbose;
    ctx->precision = digcl_precision_resolve(options->precision);
    ctx->profiling = env_is_one("DIGCL_PROFILE");
    static int cpu_notice_given = 0; /* once per process */
    if (!(ctx->device.type & (CL_DEVICE_TYPE_GPU | CL_DEVICE_TYPE_ACCELERATOR)) &&
        !(options->device_spec && *options->device_spec) && !getenv("DIGCL_DEVICE") &&
        !cpu_notice_given) {
        digcl_log(DIGCL_LOG_NOTICE, "no GPU found; running on the CPU device '%s'",
                  ctx->device.name);
        cpu_notice_given = 1;
    }
    open_queue(ctx);
    return ctx;
}

void digcl_context_release(digcl_context *ctx) {
    if (!ctx) return;
    if (ctx->queue) clFinish(ctx->queue);
    digcl_profile_flush(ctx);
    if (ctx->profiling) digcl_profile_print(ctx);
    digcl_profile_free(ctx);
    for (int i = ctx->cleanup_count - 1; i >= 0; i--) ctx->cleanups[i].fn(ctx->cleanups[i].arg);
    free(ctx->cleanups);
    digcl_context_release_scratch(ctx);
    digcl_programs_release(ctx);
    if (ctx->queue) clReleaseCommandQueue(ctx->queue);
    if (ctx->context) clReleaseContext(ctx->context);
    free(ctx);
}

const digcl_device_info *digcl_context_device(const digcl_context *ctx) { return &ctx->device; }
cl_context digcl_context_cl(const digcl_context *ctx) { return ctx->context; }
cl_command_queue digcl_context_queue(const digcl_context *ctx) { return ctx->queue; }
int digcl_context_verbose(const digcl_context *ctx) { return ctx->verbose; }
digcl_precision digcl_context_precision(const digcl_context *ctx) { return ctx->precision; }

void digcl_context_on_release(digcl_context *ctx, void (*fn)(void *arg), void *arg) {
    context_cleanup *grown =
        realloc(ctx->cleanups, (size_t)(ctx->cleanup_count + 1) * sizeof *grown);
    if (!grown) digcl_fatal("out of host memory registering a context cleanup");
    ctx->cleanups = grown;
    ctx->cleanups[ctx->cleanup_count++] = (context_cleanup){fn, arg};
}

void digcl_finish(digcl_context *ctx) {
    DIGCL_CL_CHECK(clFinish(ctx->queue));
    digcl_profile_flush(ctx);
}
