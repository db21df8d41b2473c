/* ops_common.h: the small helpers every op launcher shares (sizes, vector
 * widths, int range checks, 2-D launches). Private to src/ops. */
#ifndef DIGCL_OPS_COMMON_H
#define DIGCL_OPS_COMMON_H

#include <limits.h>
#include <stddef.h>

#include "digcl/error.h"
#include "digcl/runtime.h"

static inline size_t ops_ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }
static inline size_t ops_round_up(size_t a, size_t b) { return ops_ceil_div(a, b) * b; }

static inline size_t ops_pow2_at_least(size_t x) {
    size_t p = 1;
    while (p < x) p <<= 1;
    return p;
}

/* 4 when every value is a multiple of 4 (float4 access is aligned), else 1. */
static inline int ops_vec_width(const size_t *values, int count) {
    for (int i = 0; i < count; ++i)
        if (values[i] % 4 != 0) return 1;
    return 4;
}

/* Kernels index with int: refuse sizes that do not fit. */
static inline void ops_check_int(size_t value, const char *what, const char *op) {
    if (value > (size_t)INT_MAX)
        digcl_fatal("%s: %s = %zu does not fit the kernels' 32-bit indices", op, what, value);
}

static inline void ops_check_positive(long value, const char *what, const char *op) {
    if (value <= 0) digcl_fatal("%s: %s must be positive, got %ld", op, what, value);
}

/* Launches a 2-D (columns, rows) elementwise kernel with 256-item groups. */
static inline void ops_launch_rows(digcl_context *ctx, cl_kernel kernel, const char *label,
                                   size_t columns, size_t rows) {
    size_t global[2] = {columns, rows}, local[2] = {32, 8};
    if (columns < 32) {
        local[0] = ops_pow2_at_least(columns);
        local[1] = 256 / local[0];
    }
    digcl_launch(ctx, kernel, label, 2, global, local);
}

#endif
