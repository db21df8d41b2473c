/* tests/spatial_helpers.h: small helpers shared by the spatial-op tests
 * (test_patch, test_embed, test_conv, test_srem, test_attention): random
 * host arrays, float<->double, and the central finite-difference check of the
 * double oracles' backward passes. Header-only, static functions. */
#ifndef DIGCL_TESTS_SPATIAL_HELPERS_H
#define DIGCL_TESTS_SPATIAL_HELPERS_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "test_util.h"

/* n normal floats of the given stddev (never exactly zero). */
static inline float *random_floats(test_rng *rng, size_t n, float stddev) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    assert_non_null(x);
    test_fill_normal(rng, x, n, stddev);
    for (size_t i = 0; i < n; i++)
        if (x[i] == 0.0f) x[i] = stddev * 0.5f;
    return x;
}

static inline double *widen(const float *x, size_t n) {
    double *wide = malloc((n ? n : 1) * sizeof *wide);
    assert_non_null(wide);
    for (size_t i = 0; i < n; i++) wide[i] = x[i];
    return wide;
}

static inline double *zeros_double(size_t n) {
    double *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

static inline double weighted_sum(const double *x, const double *weights, size_t n) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += x[i] * weights[i];
    return sum;
}

/* Loss as a function of the (perturbed) inputs. */
typedef double (*fd_loss_fn)(void *arg);

/* Compares analytic[i] with (loss(x_i + h) - loss(x_i - h)) / 2h over up to
 * max_checks indices of `inputs` (all when n <= max_checks); rel L2 < 1e-6. */
static inline void check_finite_difference(const char *label, fd_loss_fn loss, void *arg,
                                           double *inputs, const double *analytic, size_t n,
                                           size_t max_checks, test_rng *rng) {
    const double step = 1e-5;
    const size_t checks = n < max_checks ? n : max_checks;
    double diff = 0.0, norm = 0.0;
    for (size_t c = 0; c < checks; c++) {
        const size_t i = n <= max_checks ? c : (size_t)(test_uniform(rng) * (double)n) % n;
        const double saved = inputs[i];
        inputs[i] = saved + step;
        const double plus = loss(arg);
        inputs[i] = saved - step;
        const double minus = loss(arg);
        inputs[i] = saved;
        const double numeric = (plus - minus) / (2.0 * step);
        diff += (numeric - analytic[i]) * (numeric - analytic[i]);
        norm += analytic[i] * analytic[i];
    }
    const double error = norm > 0.0 ? sqrt(diff / norm) : sqrt(diff);
    print_message("  %-48s FD rel L2 %.3e over %zu entries\n", label, error, checks);
    if (!(error < 1e-6)) fail_msg("%s: finite-difference rel L2 %.3e is not below 1e-6", label, error);
}

#endif
