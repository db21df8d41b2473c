/* Double-precision oracles of SREM (include/digcl/srem.h). */
#include <stddef.h>

#include "digcl/srem.h"
#include "digcl/ref/srem.h"

static void gather_rows(digcl_scan_order order, int backward, int N, int side, int D,
                        const double *in, double *out) {
    const size_t T = (size_t)side * (size_t)side;
    for (size_t n = 0; n < (size_t)N; n++)
        for (size_t s = 0; s < T; s++) {
            const size_t source = (size_t)digcl_srem_source_index(order, backward, side, (int)s);
            for (size_t d = 0; d < (size_t)D; d++)
                out[(n * T + s) * (size_t)D + d] = in[(n * T + source) * (size_t)D + d];
        }
}

void digcl_ref_srem_forward(digcl_scan_order order, int N, int side, int D, const double *x,
                            double *y) {
    gather_rows(order, 0, N, side, D, x, y);
}

void digcl_ref_srem_backward(digcl_scan_order order, int N, int side, int D, const double *dy,
                             double *dx) {
    gather_rows(order, 1, N, side, D, dy, dx);
}
