/* tests/test_util.h: shared helpers for the ctest/cmocka suite.
 *
 * - test_context(): a context on $DIGCL_DEVICE or the default device (PoCL in CI).
 * - seeded random inputs (never zeros), output poisoning with NaN,
 * - relative L2 error against a double reference; NaN/Inf fail.
 * - expect_fatal(): run code that must end in digcl_fatal and capture the text.
 */
#ifndef DIGCL_TEST_UTIL_H
#define DIGCL_TEST_UTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "digcl/runtime.h"

/* One context per test process, opened on first use, closed at exit. */
digcl_context *test_context(void);

/* Deterministic draws of digcl_rng (stream DIGCL_RNG_TEST), seeded per test. */
typedef struct test_rng {
    uint64_t seed, next; /* key, and the index of the next u32 draw */
    uint32_t lanes[4];   /* the Philox block holding draw `block * 4` */
    uint64_t block;
} test_rng;
test_rng test_rng_seeded(uint64_t seed);
double test_uniform(test_rng *rng); /* [0, 1) */
double test_normal(test_rng *rng);  /* N(0, 1) */
void test_fill_uniform(test_rng *rng, float *x, size_t n, float low, float high);
void test_fill_normal(test_rng *rng, float *x, size_t n, float stddev);
void test_fill_normal_double(test_rng *rng, double *x, size_t n, double stddev);

/* Host arrays (malloc'ed; the caller frees): n normal values with exact zeros
 * replaced (inputs are never zero), floats widened to double, zeros. */
float *test_random_floats(test_rng *rng, size_t n, float stddev);
double *test_random_doubles(test_rng *rng, size_t n);
double *test_widen(const float *x, size_t n);
double *test_zeros(size_t n);
/* sum_i x[i] * weights[i]: a scalar loss whose gradient is `weights`. */
double test_weighted_sum(const double *x, const double *weights, size_t n);

/* A scalar loss of a double oracle, as a function of its (perturbed) inputs. */
typedef double (*test_loss_fn)(void *arg);
/* Central differences (step 1e-5) of loss with respect to x[i] against
 * analytic[i], over every entry or `samples` evenly spread ones; asserts rel
 * L2 < 1e-6 (the oracles' backward check). */
void test_check_gradient(const char *label, test_loss_fn loss, void *arg, double *x,
                         const double *analytic, size_t n, size_t samples);

/* Device buffer helpers: upload a host array, allocate NaN-poisoned output,
 * download into a fresh malloc'ed array. */
cl_mem test_upload(const float *host, size_t n);
cl_mem test_poisoned(size_t n);
void test_poison(cl_mem mem, size_t n);
float *test_download(cl_mem mem, size_t n);
void test_release(cl_mem mem);

/* ||got - want|| / ||want|| in double; returns INFINITY if got has NaN/Inf or
 * when want is all zero but got is not. */
double test_rel_l2(const float *got, const double *want, size_t n);
double test_rel_l2_f(const float *got, const float *want, size_t n);
int test_all_finite(const float *x, size_t n);

/* Asserts rel_l2 < tolerance, printing the label and the error. */
void test_assert_close(const char *label, const float *got, const double *want, size_t n,
                       double tolerance);

/* Runs fn(arg); returns 1 and copies the fatal message into message if it
 * called digcl_fatal, else 0. */
int test_expect_fatal(void (*fn)(void *), void *arg, char *message, size_t message_size);

/* A fresh folder under /tmp for one test group, as cmocka group setup and
 * teardown (cmocka_run_group_tests(tests, test_temp_dir_setup,
 * test_temp_dir_teardown)); test_temp_dir is its path (empty before setup),
 * test_temp_path writes <folder>/<name> into buf. */
int test_temp_dir_setup(void **state);
int test_temp_dir_teardown(void **state);
extern char test_temp_dir[256];
const char *test_temp_path(char *buf, size_t size, const char *name);

/* 1 when DIGCL_LONG_TESTS=1. */
int test_long_enabled(void);

#endif
