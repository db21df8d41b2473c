/* digcl_axpy (the gradient sum of DiG's long skips) against a double
 * reference on random data, odd counts, and y read-modify-written in place. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "digcl/elementwise.h"
#include "test_util.h"

static void test_axpy(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(21);
    const size_t counts[] = {1, 7, 257, 100003};
    for (size_t c = 0; c < sizeof counts / sizeof *counts; c++) {
        size_t n = counts[c];
        float *x = test_random_floats(&rng, n, 1.0f), *y = test_random_floats(&rng, n, 1.0f);
        double *want = test_zeros(n);
        for (size_t i = 0; i < n; i++) want[i] = (double)y[i] - 1.75 * (double)x[i];
        cl_mem dx = test_upload(x, n), dy = test_upload(y, n);
        digcl_axpy(test_context(), n, -1.75f, dx, dy);
        float *got = test_download(dy, n);
        char label[64];
        snprintf(label, sizeof label, "axpy n=%zu", n);
        test_assert_close(label, got, want, n, 1e-6);
        free(x), free(y), free(want), free(got);
        test_release(dx), test_release(dy);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_axpy)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
