/* tests/dense_helpers.h: helpers shared by the dense-op tests (test_linear,
 * test_norm, test_adaln, test_activation, test_reduce, test_optim): random host
 * arrays (never zero), float <-> double, device round trips checked against a
 * double oracle, and the central finite-difference check of the oracles'
 * backward passes. Header-only, static functions. */
#ifndef DIGCL_TESTS_DENSE_HELPERS_H
#define DIGCL_TESTS_DENSE_HELPERS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

#define DENSE_FORWARD_TOLERANCE 1e-5
#define DENSE_BACKWARD_TOLERANCE 1e-4
#define DENSE_FD_TOLERANCE 1e-6
#define DENSE_FD_STEP 1e-5

/* n normal floats (stddev), zeros replaced. */
static inline float *dense_random(test_rng *rng, size_t n, float stddev) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    test_fill_normal(rng, x, n, stddev);
    for (size_t i = 0; i < n; i++)
        if (x[i] == 0.0f) x[i] = 0.5f * stddev;
    return x;
}

static inline double *dense_random_double(test_rng *rng, size_t n) {
    double *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    test_fill_normal_double(rng, x, n, 1.0);
    for (size_t i = 0; i < n; i++)
        if (x[i] == 0.0) x[i] = 0.5;
    return x;
}

static inline double *dense_widen(const float *x, size_t n) {
    double *wide = malloc((n ? n : 1) * sizeof *wide);
    assert_non_null(wide);
    for (size_t i = 0; i < n; i++) wide[i] = x[i];
    return wide;
}

static inline double *dense_zeros(size_t n) {
    double *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

static inline double dense_weighted_sum(const double *x, const double *weights, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += x[i] * weights[i];
    return sum;
}

/* Downloads n floats from mem and asserts rel L2 against want below tolerance. */
static inline void dense_expect(const char *label, cl_mem mem, const double *want, size_t n,
                                double tolerance) {
    float *got = test_download(mem, n);
    test_assert_close(label, got, want, n, tolerance);
    free(got);
}

/* Same for n floats starting at element offset. */
static inline void dense_expect_at(const char *label, cl_mem mem, size_t offset,
                                   const double *want, size_t n, double tolerance) {
    float *all = test_download(mem, offset + n);
    test_assert_close(label, all + offset, want, n, tolerance);
    free(all);
}

/* Picks every coordinate of a small tensor, or `samples` spread ones of a big one. */
typedef double (*dense_loss_fn)(void *problem);

/* Central differences of loss(problem) with respect to x[i], compared with
 * analytic[i] in relative L2 (< DENSE_FD_TOLERANCE). */
static inline void dense_check_gradient(const char *label, dense_loss_fn loss, void *problem,
                                        double *x, const double *analytic, size_t n,
                                        size_t samples) {
    size_t step = n > samples ? n / samples : 1;
    double diff2 = 0.0, ref2 = 0.0;
    for (size_t i = 0; i < n; i += step) {
        const double saved = x[i];
        x[i] = saved + DENSE_FD_STEP;
        const double plus = loss(problem);
        x[i] = saved - DENSE_FD_STEP;
        const double minus = loss(problem);
        x[i] = saved;
        const double numeric = (plus - minus) / (2.0 * DENSE_FD_STEP);
        diff2 += (numeric - analytic[i]) * (numeric - analytic[i]);
        ref2 += numeric * numeric;
    }
    const double rel = ref2 > 0.0 ? sqrt(diff2 / ref2) : sqrt(diff2);
    print_message("  %-48s fd rel %.3e\n", label, rel);
    if (!(rel < DENSE_FD_TOLERANCE)) fail_msg("%s: finite-difference rel err %.3e", label, rel);
}

#endif
