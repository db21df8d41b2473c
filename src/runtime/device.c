/* Device enumeration, selection and the `digcl devices` table. Every platform
 * is enumerated, not only the first. */
#include "digcl/runtime.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void platform_string(cl_platform_id platform, cl_platform_info what, char *out,
                            size_t size) {
    out[0] = '\0';
    if (clGetPlatformInfo(platform, what, size, out, NULL) != CL_SUCCESS) out[0] = '\0';
    out[size - 1] = '\0';
}

static void device_string(cl_device_id device, cl_device_info what, char *out, size_t size) {
    out[0] = '\0';
    if (clGetDeviceInfo(device, what, size, out, NULL) != CL_SUCCESS) out[0] = '\0';
    out[size - 1] = '\0';
}

static uint64_t device_ulong(cl_device_id device, cl_device_info what) {
    cl_ulong value = 0;
    DIGCL_CL_CHECK(clGetDeviceInfo(device, what, sizeof value, &value, NULL));
    return value;
}

static uint32_t device_uint(cl_device_id device, cl_device_info what) {
    cl_uint value = 0;
    DIGCL_CL_CHECK(clGetDeviceInfo(device, what, sizeof value, &value, NULL));
    return value;
}

static int has_extension(cl_device_id device, const char *name) {
    size_t size = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, 0, NULL, &size) != CL_SUCCESS) return 0;
    char *extensions = malloc(size + 1);
    if (!extensions) return 0;
    int found = 0;
    if (clGetDeviceInfo(device, CL_DEVICE_EXTENSIONS, size, extensions, NULL) == CL_SUCCESS) {
        extensions[size] = '\0';
        found = strstr(extensions, name) != NULL;
    }
    free(extensions);
    return found;
}

/* cl_nv_device_attribute_query (cl_ext.h names them
 * CL_DEVICE_COMPUTE_CAPABILITY_MAJOR_NV / _MINOR_NV). */
static int nv_compute_capability(cl_device_id device) {
    enum { CC_MAJOR_NV = 0x4000, CC_MINOR_NV = 0x4001 };
    if (!has_extension(device, "cl_nv_device_attribute_query")) return 0;
    cl_uint major = 0, minor = 0;
    if (clGetDeviceInfo(device, CC_MAJOR_NV, sizeof major, &major, NULL) != CL_SUCCESS ||
        clGetDeviceInfo(device, CC_MINOR_NV, sizeof minor, &minor, NULL) != CL_SUCCESS)
        return 0;
    return (int)(major * 10 + minor);
}

static void describe_device(digcl_device_info *info) {
    cl_device_id device = info->device;
    platform_string(info->platform, CL_PLATFORM_NAME, info->platform_name,
                    sizeof info->platform_name);
    platform_string(info->platform, CL_PLATFORM_VERSION, info->platform_version,
                    sizeof info->platform_version);
    device_string(device, CL_DEVICE_NAME, info->name, sizeof info->name);
    device_string(device, CL_DEVICE_VENDOR, info->vendor, sizeof info->vendor);
    device_string(device, CL_DRIVER_VERSION, info->driver_version, sizeof info->driver_version);
    device_string(device, CL_DEVICE_OPENCL_C_VERSION, info->opencl_c_version,
                  sizeof info->opencl_c_version);
    DIGCL_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_TYPE, sizeof info->type, &info->type, NULL));
    info->global_mem_bytes = device_ulong(device, CL_DEVICE_GLOBAL_MEM_SIZE);
    info->local_mem_bytes = device_ulong(device, CL_DEVICE_LOCAL_MEM_SIZE);
    info->max_alloc_bytes = device_ulong(device, CL_DEVICE_MAX_MEM_ALLOC_SIZE);
    info->compute_units = device_uint(device, CL_DEVICE_MAX_COMPUTE_UNITS);
    info->mem_base_addr_align_bytes = device_uint(device, CL_DEVICE_MEM_BASE_ADDR_ALIGN) / 8;
    if (info->mem_base_addr_align_bytes < 4) info->mem_base_addr_align_bytes = 4;
    DIGCL_CL_CHECK(clGetDeviceInfo(device, CL_DEVICE_MAX_WORK_GROUP_SIZE,
                                   sizeof info->max_work_group_size, &info->max_work_group_size,
                                   NULL));
    info->has_fp16 = has_extension(device, "cl_khr_fp16");
    info->has_fp64 = has_extension(device, "cl_khr_fp64");
    info->nv_compute_capability = nv_compute_capability(device);
}

static int list_platform(cl_platform_id platform, int platform_index, digcl_device_info **devices,
                         int count) {
    cl_uint device_count = 0;
    cl_int status = clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, 0, NULL, &device_count);
    if (status == CL_DEVICE_NOT_FOUND || device_count == 0) return count;
    DIGCL_CL_CHECK(status);
    cl_device_id *ids = malloc(device_count * sizeof *ids);
    digcl_device_info *grown =
        realloc(*devices, (size_t)(count + (int)device_count) * sizeof **devices);
    if (!ids || !grown) digcl_fatal("out of host memory while listing OpenCL devices");
    *devices = grown;
    DIGCL_CL_CHECK(clGetDeviceIDs(platform, CL_DEVICE_TYPE_ALL, device_count, ids, NULL));
    for (cl_uint d = 0; d < device_count; d++) {
        digcl_device_info *info = &grown[count++];
        memset(info, 0, sizeof *info);
        info->platform_index = platform_index;
        info->device_index = (int)d;
        info->platform = platform;
        info->device = ids[d];
        describe_device(info);
    }
    free(ids);
    return count;
}

int digcl_list_devices(digcl_device_info **devices) {
    *devices = NULL;
    cl_uint platform_count = 0;
    cl_int status = clGetPlatformIDs(0, NULL, &platform_count);
    if (status != CL_SUCCESS || platform_count == 0) return 0; /* -1001: no ICD at all */
    cl_platform_id *platforms = malloc(platform_count * sizeof *platforms);
    if (!platforms) digcl_fatal("out of host memory while listing OpenCL platforms");
    DIGCL_CL_CHECK(clGetPlatformIDs(platform_count, platforms, NULL));
    int count = 0;
    for (cl_uint p = 0; p < platform_count; p++)
        count = list_platform(platforms[p], (int)p, devices, count);
    free(platforms);
    return count;
}

static int first_of_type(const digcl_device_info *devices, int count, cl_device_type type) {
    for (int i = 0; i < count; i++)
        if (devices[i].type & type) return i;
    return -1;
}

int digcl_default_device(const digcl_device_info *devices, int count) {
    if (count <= 0) return -1;
    int index = first_of_type(devices, count, CL_DEVICE_TYPE_GPU);
    if (index < 0) index = first_of_type(devices, count, CL_DEVICE_TYPE_ACCELERATOR);
    if (index < 0) index = first_of_type(devices, count, CL_DEVICE_TYPE_CPU);
    return index < 0 ? 0 : index;
}

static int contains_ignoring_case(const char *haystack, const char *needle) {
    size_t needle_length = strlen(needle);
    for (const char *start = haystack; *start; start++) {
        size_t i = 0;
        while (i < needle_length && start[i] &&
               tolower((unsigned char)start[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == needle_length) return 1;
    }
    return needle_length == 0;
}

/* "P:D" with two decimal indices; an index too large for int never matches. */
static int parse_index_spec(const char *spec, long *platform, long *device) {
    char *end = NULL;
    if (!isdigit((unsigned char)spec[0])) return 0;
    errno = 0;
    *platform = strtol(spec, &end, 10);
    if (*end != ':' || !isdigit((unsigned char)end[1])) return 0;
    int overflow = errno != 0;
    *device = strtol(end + 1, &end, 10);
    if (*end != '\0') return 0;
    if (overflow || errno != 0 || *platform > INT_MAX || *device > INT_MAX)
        *platform = *device = -1;
    return 1;
}

int digcl_select_device(const digcl_device_info *devices, int count, const char *spec, char *error,
                        size_t error_size) {
    if (!spec || !*spec) spec = getenv("DIGCL_DEVICE");
    if (!spec || !*spec) return digcl_default_device(devices, count);
    long platform, device;
    if (parse_index_spec(spec, &platform, &device)) {
        for (int i = 0; i < count; i++)
            if (devices[i].platform_index == platform && devices[i].device_index == device)
                return i;
        snprintf(error, error_size, "no OpenCL device %s", spec);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (contains_ignoring_case(devices[i].name, spec) ||
            contains_ignoring_case(devices[i].platform_name, spec))
            return i;
    }
    snprintf(error, error_size, "no OpenCL device matches '%s' (expected P:D or a name substring)",
             spec);
    return -1;
}
