/* Shared helpers for the test suite (see test_util.h). */
#include "test_util.h"

#include "digcl/rng.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static digcl_context *shared_context = NULL;

static void close_shared_context(void) {
    digcl_context_release(shared_context);
    shared_context = NULL;
}

digcl_context *test_context(void) {
    if (!shared_context) {
        digcl_context_options options = {0};
        shared_context = digcl_context_create(&options);
        atexit(close_shared_context);
    }
    return shared_context;
}

/* ------------------------------------------------------------ fatal errors */

/* Outside test_expect_fatal a fatal error fails the test with its message
 * (the library itself only aborts). */
static void print_fatal_and_abort(const char *message, void *user) {
    (void)user;
    fprintf(stderr, "digcl fatal error in a test: %s\n", message);
    abort();
}

__attribute__((constructor)) static void install_test_handlers(void) {
    digcl_set_error_handler(print_fatal_and_abort, NULL);
}

/* ------------------------------------------------------------ RNG */

/* Draws of digcl_rng (stream DIGCL_RNG_TEST, sample 0): uniform i takes the
 * u32 draws 2i and 2i + 1, kept four at a time (one Philox block). */
test_rng test_rng_seeded(uint64_t seed) {
    test_rng rng = {seed, 0, {0, 0, 0, 0}, UINT64_MAX};
    return rng;
}

static uint32_t next_u32(test_rng *rng) {
    uint64_t index = rng->next++;
    if (index / 4 != rng->block) {
        const uint32_t key[2] = {(uint32_t)rng->seed, (uint32_t)(rng->seed >> 32)};
        const uint32_t counter[4] = {(uint32_t)(index / 4), (uint32_t)(index / 4 >> 32), 0,
                                     DIGCL_RNG_TEST};
        digcl_philox4x32(key, counter, rng->lanes);
        rng->block = index / 4;
    }
    return rng->lanes[index % 4];
}

double test_uniform(test_rng *rng) {
    const uint64_t hi = next_u32(rng) >> 6, lo = next_u32(rng) >> 5; /* 26 + 27 bits */
    return (double)((hi << 27) | lo) * 0x1.0p-53;
}

double test_normal(test_rng *rng) {
    double u1 = test_uniform(rng), u2 = test_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

void test_fill_uniform(test_rng *rng, float *x, size_t n, float low, float high) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(low + (high - low) * test_uniform(rng));
}

void test_fill_normal(test_rng *rng, float *x, size_t n, float stddev) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(stddev * test_normal(rng));
}

void test_fill_normal_double(test_rng *rng, double *x, size_t n, double stddev) {
    for (size_t i = 0; i < n; i++) x[i] = stddev * test_normal(rng);
}

/* ------------------------------------------------------------ host arrays */

float *test_random_floats(test_rng *rng, size_t n, float stddev) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    test_fill_normal(rng, x, n, stddev);
    for (size_t i = 0; i < n; i++)
        if (x[i] == 0.0f) x[i] = 0.5f * stddev;
    return x;
}

double *test_random_doubles(test_rng *rng, size_t n) {
    double *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    test_fill_normal_double(rng, x, n, 1.0);
    for (size_t i = 0; i < n; i++)
        if (x[i] == 0.0) x[i] = 0.5;
    return x;
}

double *test_widen(const float *x, size_t n) {
    double *wide = malloc((n ? n : 1) * sizeof *wide);
    assert_non_null(wide);
    for (size_t i = 0; i < n; i++) wide[i] = x[i];
    return wide;
}

double *test_zeros(size_t n) {
    double *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

double test_weighted_sum(const double *x, const double *weights, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += x[i] * weights[i];
    return sum;
}

void test_check_gradient(const char *label, test_loss_fn loss, void *arg, double *x,
                         const double *analytic, size_t n, size_t samples) {
    const double step = 1e-5;
    size_t stride = samples && n > samples ? n / samples : 1, checked = 0;
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i += stride, checked++) {
        const double saved = x[i];
        x[i] = saved + step;
        const double plus = loss(arg);
        x[i] = saved - step;
        const double minus = loss(arg);
        x[i] = saved;
        const double numeric = (plus - minus) / (2.0 * step);
        diff += (numeric - analytic[i]) * (numeric - analytic[i]);
        norm += numeric * numeric;
    }
    const double error = norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
    print_message("  %-48s FD rel L2 %.3e over %zu entries\n", label, error, checked);
    if (!(error < 1e-6))
        fail_msg("%s: finite-difference rel L2 %.3e is not below 1e-6", label, error);
}

/* ------------------------------------------------------------ device buffers */

cl_mem test_upload(const float *host, size_t n) {
    digcl_context *ctx = test_context();
    digcl_buffer buffer = digcl_buffer_create(ctx, (n ? n : 1) * sizeof(float), "test input");
    digcl_write(ctx, buffer.mem, 0, n * sizeof(float), host);
    return buffer.mem;
}

void test_poison(cl_mem mem, size_t n) { digcl_fill_f32(test_context(), mem, 0, n, NAN); }

cl_mem test_poisoned(size_t n) {
    digcl_context *ctx = test_context();
    digcl_buffer buffer = digcl_buffer_create(ctx, (n ? n : 1) * sizeof(float), "test output");
    test_poison(buffer.mem, n ? n : 1);
    return buffer.mem;
}

float *test_download(cl_mem mem, size_t n) {
    float *host = malloc((n ? n : 1) * sizeof(float));
    assert_non_null(host);
    digcl_read(test_context(), mem, 0, n * sizeof(float), host);
    return host;
}

void test_release(cl_mem mem) {
    /* Buffers made here are accounted: give the bytes back through a digcl_buffer. */
    size_t bytes = 0;
    clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL);
    digcl_buffer buffer = {mem, bytes, test_context(), "test"};
    digcl_buffer_release(&buffer);
}

/* ------------------------------------------------------------ comparisons */

int test_all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

double test_rel_l2(const float *got, const double *want, size_t n) {
    double diff = 0.0, norm = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i])) return INFINITY;
        double d = (double)got[i] - want[i];
        diff += d * d;
        norm += want[i] * want[i];
    }
    if (norm == 0.0) return diff == 0.0 ? 0.0 : INFINITY;
    return sqrt(diff / norm);
}

double test_rel_l2_f(const float *got, const float *want, size_t n) {
    double *wide = malloc((n ? n : 1) * sizeof *wide);
    assert_non_null(wide);
    for (size_t i = 0; i < n; i++) wide[i] = want[i];
    double error = test_rel_l2(got, wide, n);
    free(wide);
    return error;
}

void test_assert_close(const char *label, const float *got, const double *want, size_t n,
                       double tolerance) {
    double error = test_rel_l2(got, want, n);
    print_message("  %-48s rel L2 %.3e (tolerance %.0e)\n", label, error, tolerance);
    if (!(error < tolerance))
        fail_msg("%s: rel L2 error %.3e is not below %.0e", label, error, tolerance);
}

/* ------------------------------------------------------------ fatal-path capture */

static jmp_buf fatal_jump;
static char fatal_message[4096];

static void capture_fatal(const char *message, void *user) {
    (void)user;
    snprintf(fatal_message, sizeof fatal_message, "%s", message);
    longjmp(fatal_jump, 1);
}

int test_expect_fatal(void (*fn)(void *), void *arg, char *message, size_t message_size) {
    digcl_error_handler previous = digcl_set_error_handler(capture_fatal, NULL);
    volatile int failed = 0;
    fatal_message[0] = '\0';
    if (setjmp(fatal_jump) == 0) {
        fn(arg);
    } else {
        failed = 1;
    }
    digcl_set_error_handler(previous, NULL);
    if (message && message_size) snprintf(message, message_size, "%s", fatal_message);
    return failed;
}

int test_long_enabled(void) {
    const char *value = getenv("DIGCL_LONG_TESTS");
    return value && strcmp(value, "1") == 0;
}

char test_temp_dir[256];

int test_temp_dir_setup(void **state) {
    (void)state;
    snprintf(test_temp_dir, sizeof test_temp_dir, "/tmp/digcl_test_XXXXXX");
    return mkdtemp(test_temp_dir) ? 0 : -1;
}

int test_temp_dir_teardown(void **state) {
    (void)state;
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", test_temp_dir);
    return system(command) == 0 ? 0 : -1;
}

const char *test_temp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", test_temp_dir, name);
    return buf;
}
