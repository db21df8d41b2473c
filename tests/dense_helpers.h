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

#define DENSE_FORWARD_TOLERANCE  1e-5
#define DENSE_BACKWARD_TOLERANCE 1e-4

/* Downloads n floats from mem and asserts rel L2 against want below tolerance. */
static inline void dense_expect(const char *label, cl_mem mem, const double *want, size_t n,
                                double tolerance) {
    float *got = test_download(mem, n);
    test_assert_close(label, got, want, n, tolerance);
    free(got);
}

/* Same for n floats starting at element offset. */
static inline void dense_expect_at(const char *label, cl_mem mem, size_t offset, const double *want,
                                   size_t n, double tolerance) {
    float *all = test_download(mem, offset + n);
    test_assert_close(label, all + offset, want, n, tolerance);
    free(all);
}

#endif
