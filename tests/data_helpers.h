/* tests/data_helpers.h: temporary folders and files for the data tests
 * (test_data.c, test_data_images.c). Header-only: each test includes it once. */
#ifndef DIGCL_TESTS_DATA_HELPERS_H
#define DIGCL_TESTS_DATA_HELPERS_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digcl/data.h"
#include "test_util.h"

static char data_temp_root[256];

static inline int data_make_temp_root(void **state) {
    (void)state;
    snprintf(data_temp_root, sizeof data_temp_root, "/tmp/digcl_test_data_XXXXXX");
    return mkdtemp(data_temp_root) ? 0 : -1;
}

static inline int data_remove_temp_root(void **state) {
    (void)state;
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", data_temp_root);
    return system(command) == 0 ? 0 : -1;
}

/* data_temp_root/<formatted> into buf; creates the parent folders. */
static inline const char *data_path(char *buf, size_t size, const char *format, ...) {
    char relative[200];
    va_list args;
    va_start(args, format);
    vsnprintf(relative, sizeof relative, format, args);
    va_end(args);
    snprintf(buf, size, "%s/%s", data_temp_root, relative);
    for (char *p = buf + strlen(data_temp_root) + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        mkdir(buf, 0755);
        *p = '/';
    }
    return buf;
}

static inline void data_write_file(const char *path, const void *bytes, size_t size) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(bytes, 1, size, f), size);
    assert_int_equal(fclose(f), 0);
}

/* Pixels in [-1, 1] back to bytes: the inverse of (p / 255 - 0.5) / 0.5. */
static inline uint8_t data_float_to_pixel(float x) {
    long p = lrintf((x * 0.5f + 0.5f) * 255.0f);
    return (uint8_t)(p < 0 ? 0 : p > 255 ? 255 : p);
}

/* Opens spec or fails the test with the error. */
static inline digcl_dataset *data_open_or_fail(const char *spec,
                                               const digcl_dataset_options *options) {
    char error[1024];
    digcl_dataset *d = digcl_dataset_open(spec, options, error, sizeof error);
    if (!d) fail_msg("digcl_dataset_open(%s): %s", spec, error);
    return d;
}

/* Opening spec must fail with `expected` in the message. */
static inline void data_expect_open_error(const char *spec, const digcl_dataset_options *options,
                                          const char *expected) {
    char error[1024] = "";
    digcl_dataset *d = digcl_dataset_open(spec, options, error, sizeof error);
    if (d) {
        digcl_dataset_close(d);
        fail_msg("digcl_dataset_open(%s) succeeded; expected an error with '%s'", spec, expected);
    }
    if (!strstr(error, expected)) fail_msg("error '%s' lacks '%s'", error, expected);
    printf("  ok: %s\n", error);
}

#endif
