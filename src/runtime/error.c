/* Fatal errors and OpenCL error names (see include/digcl/error.h). */
#include "digcl/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static digcl_error_handler installed_handler = NULL;
static void *installed_user = NULL;
static char last_message[4096];

digcl_error_handler digcl_set_error_handler(digcl_error_handler handler, void *user) {
    digcl_error_handler previous = installed_handler;
    installed_handler = handler;
    installed_user = user;
    return previous;
}

const char *digcl_last_error(void) { return last_message; }

int digcl_format_error(char *error, size_t size, const char *format, ...) {
    if (error && size) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, size, format, args);
        va_end(args);
    }
    return -1;
}

_Noreturn void digcl_fatal(const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(last_message, sizeof last_message, format, args);
    va_end(args);
    if (installed_handler) installed_handler(last_message, installed_user);
    abort(); /* no handler, or one that returned: the message stays in digcl_last_error() */
}

const char *digcl_cl_error_name(cl_int code) {
    switch (code) {
#define NAME(x) \
    case x: return #x;
        NAME(CL_SUCCESS)
        NAME(CL_DEVICE_NOT_FOUND)
        NAME(CL_DEVICE_NOT_AVAILABLE)
        NAME(CL_COMPILER_NOT_AVAILABLE) NAME(CL_MEM_OBJECT_ALLOCATION_FAILURE) NAME(
            CL_OUT_OF_RESOURCES) NAME(CL_OUT_OF_HOST_MEMORY) NAME(CL_PROFILING_INFO_NOT_AVAILABLE)
            NAME(CL_MEM_COPY_OVERLAP) NAME(CL_IMAGE_FORMAT_MISMATCH) NAME(
                CL_IMAGE_FORMAT_NOT_SUPPORTED) NAME(CL_BUILD_PROGRAM_FAILURE) NAME(CL_MAP_FAILURE)
                NAME(CL_MISALIGNED_SUB_BUFFER_OFFSET) NAME(
                    CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST) NAME(CL_COMPILE_PROGRAM_FAILURE)
                    NAME(CL_LINKER_NOT_AVAILABLE) NAME(CL_LINK_PROGRAM_FAILURE) NAME(
                        CL_DEVICE_PARTITION_FAILED) NAME(CL_KERNEL_ARG_INFO_NOT_AVAILABLE)
                        NAME(CL_INVALID_VALUE) NAME(CL_INVALID_DEVICE_TYPE) NAME(
                            CL_INVALID_PLATFORM) NAME(CL_INVALID_DEVICE) NAME(CL_INVALID_CONTEXT)
                            NAME(CL_INVALID_QUEUE_PROPERTIES) NAME(CL_INVALID_COMMAND_QUEUE) NAME(
                                CL_INVALID_HOST_PTR) NAME(CL_INVALID_MEM_OBJECT)
                                NAME(CL_INVALID_IMAGE_FORMAT_DESCRIPTOR) NAME(
                                    CL_INVALID_IMAGE_SIZE) NAME(CL_INVALID_SAMPLER)
                                    NAME(CL_INVALID_BINARY) NAME(CL_INVALID_BUILD_OPTIONS) NAME(
                                        CL_INVALID_PROGRAM) NAME(CL_INVALID_PROGRAM_EXECUTABLE)
                                        NAME(CL_INVALID_KERNEL_NAME) NAME(
                                            CL_INVALID_KERNEL_DEFINITION) NAME(CL_INVALID_KERNEL)
                                            NAME(CL_INVALID_ARG_INDEX) NAME(CL_INVALID_ARG_VALUE) NAME(
                                                CL_INVALID_ARG_SIZE) NAME(CL_INVALID_KERNEL_ARGS)
                                                NAME(CL_INVALID_WORK_DIMENSION) NAME(
                                                    CL_INVALID_WORK_GROUP_SIZE)
                                                    NAME(CL_INVALID_WORK_ITEM_SIZE) NAME(
                                                        CL_INVALID_GLOBAL_OFFSET)
                                                        NAME(CL_INVALID_EVENT_WAIT_LIST) NAME(
                                                            CL_INVALID_EVENT) NAME(CL_INVALID_OPERATION)
                                                            NAME(CL_INVALID_GL_OBJECT) NAME(
                                                                CL_INVALID_BUFFER_SIZE)
                                                                NAME(CL_INVALID_MIP_LEVEL) NAME(
                                                                    CL_INVALID_GLOBAL_WORK_SIZE)
                                                                    NAME(CL_INVALID_PROPERTY) NAME(
                                                                        CL_INVALID_IMAGE_DESCRIPTOR)
                                                                        NAME(
                                                                            CL_INVALID_COMPILER_OPTIONS)
                                                                            NAME(
                                                                                CL_INVALID_LINKER_OPTIONS)
                                                                                NAME(
                                                                                    CL_INVALID_DEVICE_PARTITION_COUNT)
#undef NAME
                                                                                    case -1001
            : return "CL_PLATFORM_NOT_FOUND_KHR";
    default: {
        static char unknown[48];
        snprintf(unknown, sizeof unknown, "CL_UNKNOWN_ERROR(%d)", (int)code);
        return unknown;
    }
    }
}

static const char *hint_for(cl_int code) {
    switch (code) {
    case CL_MEM_OBJECT_ALLOCATION_FAILURE:
    case CL_OUT_OF_RESOURCES:
        return "the device ran out of memory or resources; try a smaller batch or resolution";
    case CL_INVALID_WORK_GROUP_SIZE:
        return "the work-group size does not fit this device; please report it with `digcl devices`";
    case CL_BUILD_PROGRAM_FAILURE:
        return "a kernel failed to compile; the build log is printed above";
    case -1001:
        return "no OpenCL platform: install an ICD, e.g. `sudo apt-get install pocl-opencl-icd`";
    default:
        return "run `digcl devices` to check the OpenCL installation; DIGCL_DEVICE picks another device";
    }
}

_Noreturn void digcl_cl_failed(const char *call, cl_int code, const char *file, int line) {
    digcl_fatal("OpenCL call failed: %s returned %s at %s:%d\n---> HINT: %s", call,
                digcl_cl_error_name(code), file, line, hint_for(code));
}
