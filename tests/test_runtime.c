/* Runtime tests: device selection, the persistent kernel cache (miss, hit,
 * corrupt file, disabled), the out-of-memory path and profiling. */
#include <dirent.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <sys/stat.h>
#include <xxhash.h>

#include "test_util.h"

/* ------------------------------------------------------------ device selection */

static void test_select_by_index_name_and_env(void **state) {
    (void)state;
    digcl_device_info *devices = NULL;
    int count = digcl_list_devices(&devices);
    assert_true(count > 0);
    char message[256], spec[32];
    snprintf(spec, sizeof spec, "%d:%d", devices[count - 1].platform_index,
             devices[count - 1].device_index);
    assert_int_equal(digcl_select_device(devices, count, spec, message, sizeof message), count - 1);

    /* a case-insensitive substring of the name */
    char upper[256];
    snprintf(upper, sizeof upper, "%.6s", devices[0].name);
    for (char *p = upper; *p; p++) *p = (char)((*p >= 'a' && *p <= 'z') ? *p - 32 : *p);
    assert_int_equal(digcl_select_device(devices, count, upper, message, sizeof message), 0);

    /* the environment variable is used only when no spec is given */
    setenv("DIGCL_DEVICE", spec, 1);
    assert_int_equal(digcl_select_device(devices, count, NULL, message, sizeof message), count - 1);
    assert_int_equal(digcl_select_device(devices, count, "0:0", message, sizeof message),
                     devices[0].platform_index == 0 && devices[0].device_index == 0 ? 0 : -1);
    unsetenv("DIGCL_DEVICE");
    assert_int_equal(digcl_select_device(devices, count, NULL, message, sizeof message),
                     digcl_default_device(devices, count));
    free(devices);
}

static void test_bad_device_spec(void **state) {
    (void)state;
    digcl_device_info *devices = NULL;
    int count = digcl_list_devices(&devices);
    char message[256] = "";
    assert_int_equal(
        digcl_select_device(devices, count, "no-such-device-xyz", message, sizeof message), -1);
    assert_non_null(strstr(message, "no-such-device-xyz"));
    assert_int_equal(digcl_select_device(devices, count, "99:99", message, sizeof message), -1);
    assert_non_null(strstr(message, "99:99"));
    /* an index beyond int is named as typed, not as a wrapped number */
    assert_int_equal(digcl_select_device(devices, count, "99999999999:0", message, sizeof message),
                     -1);
    assert_non_null(strstr(message, "99999999999:0"));
    free(devices);
}

static void test_default_prefers_gpu(void **state) {
    (void)state;
    digcl_device_info fake[3];
    memset(fake, 0, sizeof fake);
    fake[0].type = CL_DEVICE_TYPE_CPU;
    fake[1].type = CL_DEVICE_TYPE_ACCELERATOR;
    fake[2].type = CL_DEVICE_TYPE_GPU;
    assert_int_equal(digcl_default_device(fake, 3), 2);
    fake[2].type = CL_DEVICE_TYPE_CPU;
    assert_int_equal(digcl_default_device(fake, 3), 1);
    fake[1].type = CL_DEVICE_TYPE_CPU;
    assert_int_equal(digcl_default_device(fake, 3), 0);
}

/* ------------------------------------------------------------ kernel cache */

static char cache_dir[512];

static int count_cache_files(void) {
    DIR *dir = opendir(cache_dir);
    if (!dir) return 0;
    int count = 0;
    for (struct dirent *e; (e = readdir(dir));)
        if (strstr(e->d_name, ".clbin") && !strstr(e->d_name, ".tmp")) count++;
    closedir(dir);
    return count;
}

static void first_cache_file(char *path, size_t size) {
    DIR *dir = opendir(cache_dir);
    assert_non_null(dir);
    path[0] = '\0';
    for (struct dirent *e; (e = readdir(dir));)
        if (strstr(e->d_name, ".clbin")) snprintf(path, size, "%s/%s", cache_dir, e->d_name);
    closedir(dir);
    assert_true(path[0] != '\0');
}

static const char *probe_source =
    "__kernel void probe(__global float *x) { x[get_global_id(0)] += 1.0f; }\n";

/* Builds the probe program in a fresh context and returns its cache stats. */
static digcl_kernel_cache_stats build_probe(const char *options) {
    digcl_context *ctx = digcl_context_create(NULL);
    cl_program program =
        digcl_program_from_source(ctx, "probe", probe_source, strlen(probe_source), options);
    cl_int status;
    cl_kernel kernel = clCreateKernel(program, "probe", &status);
    assert_int_equal(status, CL_SUCCESS);
    float value = 2.0f;
    digcl_buffer buffer = digcl_buffer_create(ctx, sizeof value, "probe");
    digcl_write(ctx, buffer.mem, 0, sizeof value, &value);
    digcl_arg_mem(kernel, 0, buffer.mem);
    size_t global = 1;
    digcl_launch(ctx, kernel, "probe", 1, &global, NULL);
    digcl_read(ctx, buffer.mem, 0, sizeof value, &value);
    assert_true(value == 3.0f); /* a program loaded from the cache must still work */
    digcl_buffer_release(&buffer);
    clReleaseKernel(kernel);
    clReleaseProgram(program);
    digcl_kernel_cache_stats stats = digcl_kernel_cache_stats_get(ctx);
    digcl_context_release(ctx);
    return stats;
}

static void remove_cache_files(void) {
    DIR *dir = opendir(cache_dir);
    if (!dir) return;
    char path[1024];
    for (struct dirent *e; (e = readdir(dir));) {
        if (e->d_name[0] == '.') continue;
        snprintf(path, sizeof path, "%s/%s", cache_dir, e->d_name);
        remove(path);
    }
    closedir(dir);
}

static int setup_cache(void **state) {
    (void)state;
    snprintf(cache_dir, sizeof cache_dir, "/tmp/digcl-test-cache-%ld/nested", (long)getpid());
    setenv("DIGCL_CACHE_DIR", cache_dir, 1);
    unsetenv("DIGCL_KERNEL_CACHE");
    remove_cache_files();
    return 0;
}

static void test_cache_miss_then_hit(void **state) {
    (void)state;
    digcl_kernel_cache_stats first = build_probe("-DMISS_HIT=1");
    assert_int_equal(first.disk_misses, 1);
    assert_int_equal(first.disk_hits, 0);
    assert_int_equal(count_cache_files(), 1);
    digcl_kernel_cache_stats second = build_probe("-DMISS_HIT=1");
    assert_int_equal(second.disk_hits, 1);
    assert_int_equal(second.disk_misses, 0);
    /* other options are another program and another file */
    digcl_kernel_cache_stats other = build_probe("-DMISS_HIT=2");
    assert_int_equal(other.disk_misses, 1);
    assert_int_equal(count_cache_files(), 2);
}

static void corrupt_file(const char *path, long offset, int truncate_instead) {
    FILE *file = fopen(path, "r+b");
    assert_non_null(file);
    if (truncate_instead) {
        assert_int_equal(ftruncate(fileno(file), offset), 0);
    } else {
        fseek(file, offset, SEEK_SET);
        int byte = fgetc(file);
        fseek(file, offset, SEEK_SET);
        fputc(byte ^ 0x5a, file);
    }
    fclose(file);
}

static void test_cache_rejects_corrupt_truncated_and_foreign(void **state) {
    (void)state;
    remove_cache_files();
    build_probe("-DCORRUPT=1");
    char path[1024];
    first_cache_file(path, sizeof path);
    long offsets[] = {0, 8, 20, 40, 60};
    for (size_t i = 0; i < sizeof offsets / sizeof *offsets; i++) {
        corrupt_file(path, offsets[i], 0);
        digcl_kernel_cache_stats stats = build_probe("-DCORRUPT=1");
        assert_int_equal(stats.disk_rejects, 1);
        assert_int_equal(stats.disk_misses, 1);
        assert_int_equal(build_probe("-DCORRUPT=1").disk_hits, 1); /* rewritten */
    }
    corrupt_file(path, 30, 1); /* truncated */
    assert_int_equal(build_probe("-DCORRUPT=1").disk_rejects, 1);
    FILE *file = fopen(path, "wb"); /* foreign: not our format at all */
    fputs("this is not a kernel binary", file);
    fclose(file);
    assert_int_equal(build_probe("-DCORRUPT=1").disk_rejects, 1);
    assert_int_equal(build_probe("-DCORRUPT=1").disk_hits, 1);
}

/* A payload scrambled under a header whose hash matches it (as a plain,
 * unseeded XXH3-64 would): the keyed hash still rejects it before the driver
 * sees it. */
static void test_cache_rejects_rehashed_payload(void **state) {
    (void)state;
    remove_cache_files();
    build_probe("-DREHASH=1");
    char path[1024];
    first_cache_file(path, sizeof path);
    FILE *file = fopen(path, "r+b");
    assert_non_null(file);
    unsigned char header[48];
    assert_int_equal(fread(header, 1, sizeof header, file), sizeof header);
    size_t bytes = 0;
    for (int i = 7; i >= 0; i--) bytes = bytes << 8 | header[16 + i];
    unsigned char *payload = malloc(bytes);
    assert_int_equal(fread(payload, 1, bytes, file), bytes);
    for (size_t i = 0; i < bytes; i += 7) payload[i] ^= 0xa5;
    uint64_t forged = XXH3_64bits(payload, bytes);
    for (int i = 0; i < 8; i++) header[24 + i] = (unsigned char)(forged >> (8 * i));
    rewind(file);
    fwrite(header, 1, sizeof header, file);
    fwrite(payload, 1, bytes, file);
    fclose(file);
    free(payload);
    digcl_kernel_cache_stats stats = build_probe("-DREHASH=1");
    assert_int_equal(stats.disk_rejects, 1);
    assert_int_equal(stats.disk_misses, 1);
}

/* A FIFO where a cache file would be: rejected without blocking. */
static void test_cache_ignores_fifo(void **state) {
    (void)state;
    remove_cache_files();
    build_probe("-DFIFO=1");
    char path[1024];
    first_cache_file(path, sizeof path);
    assert_int_equal(remove(path), 0);
    assert_int_equal(mkfifo(path, 0600), 0);
    digcl_kernel_cache_stats stats = build_probe("-DFIFO=1");
    assert_int_equal(stats.disk_rejects, 1);
    assert_int_equal(build_probe("-DFIFO=1").disk_hits, 1); /* replaced by a regular file */
}

static void test_cache_disabled(void **state) {
    (void)state;
    remove_cache_files();
    setenv("DIGCL_KERNEL_CACHE", "0", 1);
    char dir[512];
    digcl_kernel_cache_dir(dir, sizeof dir);
    assert_string_equal(dir, "");
    digcl_kernel_cache_stats stats = build_probe("-DDISABLED=1");
    assert_int_equal(stats.disk_misses, 1);
    assert_int_equal(build_probe("-DDISABLED=1").disk_hits, 0);
    assert_int_equal(count_cache_files(), 0);
    unsetenv("DIGCL_KERNEL_CACHE");
}

static void test_cache_dir_precedence(void **state) {
    (void)state;
    char dir[512];
    setenv("DIGCL_CACHE_DIR", "/x/explicit", 1);
    setenv("XDG_CACHE_HOME", "/x/xdg", 1);
    digcl_kernel_cache_dir(dir, sizeof dir);
    assert_string_equal(dir, "/x/explicit");
    unsetenv("DIGCL_CACHE_DIR");
    digcl_kernel_cache_dir(dir, sizeof dir);
    assert_string_equal(dir, "/x/xdg/digcl");
    unsetenv("XDG_CACHE_HOME");
    setenv("HOME", "/x/home", 1);
    digcl_kernel_cache_dir(dir, sizeof dir);
    assert_string_equal(dir, "/x/home/.cache/digcl");
    setenv("DIGCL_CACHE_DIR", cache_dir, 1);
}

static void test_embedded_kernel_and_memory_table(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    size_t length = 0;
    assert_non_null(digcl_kernel_source("util", &length));
    assert_true(length > 0);
    assert_null(digcl_kernel_source("no_such_file", NULL));
    cl_kernel first = digcl_kernel(ctx, "util", "scale_float", "");
    cl_kernel again = digcl_kernel(ctx, "util", "scale_float", "");
    assert_ptr_equal(first, again);
    enum { COUNT = 1000 };
    float host[COUNT];
    for (int i = 0; i < COUNT; i++) host[i] = (float)i - 300.5f;
    cl_mem x = test_upload(host, COUNT);
    digcl_arg_mem(first, 0, x);
    digcl_arg_float(first, 1, -2.0f);
    digcl_arg_int(first, 2, COUNT);
    size_t global = COUNT, local = 64; /* rounded up to 1024: the kernel bounds-checks */
    digcl_launch(ctx, first, "scale_float", 1, &global, &local);
    float *out = test_download(x, COUNT);
    for (int i = 0; i < COUNT; i++) assert_true(out[i] == -2.0f * host[i]);
    free(out);
    test_release(x);
}

/* ------------------------------------------------------------ memory */

static void allocate_too_much(void *arg) {
    digcl_context *ctx = arg;
    const digcl_device_info *device = digcl_context_device(ctx);
    digcl_buffer buffer =
        digcl_buffer_create(ctx, (size_t)device->global_mem_bytes * 2, "an oversized test tensor");
    digcl_buffer_release(&buffer);
}

static void test_out_of_memory_message(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    char message[1024];
    assert_true(test_expect_fatal(allocate_too_much, ctx, message, sizeof message));
    assert_non_null(strstr(message, "out of device memory: needed"));
    assert_non_null(strstr(message, "MiB for an oversized test tensor"));
    assert_non_null(strstr(message, digcl_context_device(ctx)->name));
    assert_non_null(strstr(message, "MiB in use"));
}

static void test_memory_accounting(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    digcl_memory_stats before = digcl_memory_stats_get(ctx);
    digcl_memory_reset_peak(ctx);
    digcl_buffer a = digcl_buffer_create(ctx, 1 << 20, "a");
    digcl_buffer b = digcl_buffer_create(ctx, 3 << 20, "b");
    digcl_buffer_release(&a);
    digcl_memory_stats during = digcl_memory_stats_get(ctx);
    assert_int_equal(during.in_use_bytes, before.in_use_bytes + (3u << 20));
    assert_int_equal(during.peak_bytes, before.in_use_bytes + (4u << 20));
    digcl_buffer_release(&b);
    assert_int_equal(digcl_memory_stats_get(ctx).in_use_bytes, before.in_use_bytes);
}

static void test_sub_buffer_views(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    size_t offset = digcl_align_offset(ctx, 100 * sizeof(float));
    assert_true(offset >= 100 * sizeof(float));
    digcl_buffer whole = digcl_buffer_create(ctx, offset + 64 * sizeof(float), "whole");
    cl_mem view = digcl_sub_buffer(ctx, whole.mem, offset, 64 * sizeof(float));
    digcl_fill_f32(ctx, whole.mem, 0, offset / sizeof(float) + 64, 1.0f);
    digcl_fill_f32(ctx, view, 0, 64, 7.0f);
    float tail[64];
    digcl_read(ctx, whole.mem, offset, sizeof tail, tail);
    for (int i = 0; i < 64; i++) assert_true(tail[i] == 7.0f);
    float head;
    digcl_read(ctx, whole.mem, offset - sizeof head, sizeof head, &head);
    assert_true(head == 1.0f);
    clReleaseMemObject(view);
    digcl_buffer_release(&whole);
}

/* `#include "vector.cl"` in an embedded kernel file is expanded by the runtime:
 * a program that uses the included typedef builds and runs. */
static void test_kernel_includes(void **state) {
    (void)state;
    size_t length = 0;
    const char *linear = digcl_kernel_source("linear", &length);
    assert_non_null(linear);
    assert_non_null(strstr(linear, "#include \"vector.cl\""));
    assert_non_null(digcl_kernel(test_context(), "linear", "bias_add", "-DVEC=4"));
    assert_non_null(digcl_kernel(test_context(), "linear", "bias_add", ""));
}

/* columns src_column.. of src [rows, src_stride] into columns dst_column.. of a poisoned
 * dst [rows, dst_stride]: the block copied, everything else untouched. */
static void check_copy_columns(int rows, int src_stride, int src_column, int dst_stride,
                               int dst_column, int columns) {
    float *src = malloc(sizeof(float) * (size_t)(rows * src_stride));
    float *dst = malloc(sizeof(float) * (size_t)(rows * dst_stride));
    assert_non_null(src), assert_non_null(dst);
    for (int i = 0; i < rows * src_stride; i++) src[i] = (float)i + 0.5f;
    cl_mem dsrc = test_upload(src, (size_t)(rows * src_stride));
    cl_mem ddst = test_poisoned((size_t)(rows * dst_stride));
    digcl_copy_columns(test_context(), dsrc, (size_t)src_stride, (size_t)src_column, ddst,
                       (size_t)dst_stride, (size_t)dst_column, (size_t)rows, (size_t)columns);
    digcl_read(test_context(), ddst, 0, sizeof(float) * (size_t)(rows * dst_stride), dst);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < dst_stride; c++) {
            const float got = dst[r * dst_stride + c];
            if (c >= dst_column && c < dst_column + columns)
                assert_true(got == src[r * src_stride + src_column + c - dst_column]);
            else assert_true(isnan(got)); /* untouched */
        }
    test_release(dsrc), test_release(ddst);
    free(src), free(dst);
}

/* One element per work-item (odd strides), and float4 chunks (DiG's fused projection
 * parts: every stride, first column and width a multiple of 4). */
static void test_copy_columns(void **state) {
    (void)state;
    check_copy_columns(7, 11, 6, 5, 1, 3);
    check_copy_columns(9, 56, 20, 24, 4, 16);
    check_copy_columns(5, 24, 0, 56, 36, 20);
}

static void test_error_names(void **state) {
    (void)state;
    assert_string_equal(digcl_cl_error_name(CL_INVALID_VALUE), "CL_INVALID_VALUE");
    assert_string_equal(digcl_cl_error_name(CL_OUT_OF_RESOURCES), "CL_OUT_OF_RESOURCES");
    assert_non_null(strstr(digcl_cl_error_name(-12345), "-12345"));
}

static void failing_cl_call(void *arg) {
    (void)arg;
    DIGCL_CL_CHECK(clReleaseMemObject(NULL));
}

static void test_cl_check_message(void **state) {
    (void)state;
    char message[1024];
    assert_true(test_expect_fatal(failing_cl_call, NULL, message, sizeof message));
    assert_non_null(strstr(message, "clReleaseMemObject(NULL)"));
    assert_non_null(strstr(message, "CL_INVALID_MEM_OBJECT"));
    assert_non_null(strstr(message, "test_runtime.c:"));
    assert_non_null(strstr(message, "HINT"));
}

static void missing_kernel(void *arg) { digcl_kernel(arg, "util", "no_such_kernel", ""); }
static void missing_file(void *arg) { digcl_kernel(arg, "no_such_file", "x", ""); }

static void test_missing_kernel_messages(void **state) {
    (void)state;
    char message[1024];
    assert_true(test_expect_fatal(missing_kernel, test_context(), message, sizeof message));
    assert_non_null(strstr(message, "no_such_kernel"));
    assert_true(test_expect_fatal(missing_file, test_context(), message, sizeof message));
    assert_non_null(strstr(message, "cl/no_such_file.cl"));
}

static void broken_build(void *arg) {
    const char *source = "__kernel void broken(__global float *x) { x[0] = undefined_symbol; }";
    digcl_program_from_source(arg, "broken", source, strlen(source), "");
}

static void test_build_failure_reports(void **state) {
    (void)state;
    char message[1024];
    assert_true(test_expect_fatal(broken_build, test_context(), message, sizeof message));
    assert_non_null(strstr(message, "failed to build OpenCL program broken"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_by_index_name_and_env),
        cmocka_unit_test(test_bad_device_spec),
        cmocka_unit_test(test_default_prefers_gpu),
        cmocka_unit_test_setup(test_cache_miss_then_hit, setup_cache),
        cmocka_unit_test_setup(test_cache_rejects_corrupt_truncated_and_foreign, setup_cache),
        cmocka_unit_test_setup(test_cache_rejects_rehashed_payload, setup_cache),
        cmocka_unit_test_setup(test_cache_ignores_fifo, setup_cache),
        cmocka_unit_test_setup(test_cache_disabled, setup_cache),
        cmocka_unit_test_setup(test_cache_dir_precedence, setup_cache),
        cmocka_unit_test(test_embedded_kernel_and_memory_table),
        cmocka_unit_test(test_out_of_memory_message),
        cmocka_unit_test(test_memory_accounting),
        cmocka_unit_test(test_sub_buffer_views),
        cmocka_unit_test(test_kernel_includes),
        cmocka_unit_test(test_copy_columns),
        cmocka_unit_test(test_error_names),
        cmocka_unit_test(test_cl_check_message),
        cmocka_unit_test(test_missing_kernel_messages),
        cmocka_unit_test(test_build_failure_reports),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
