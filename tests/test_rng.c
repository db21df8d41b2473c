/* test_rng.c: the counter-based generator (digcl/rng.h): Philox4x32-10
 * known-answer vectors (Random123's kat_vectors), the addressing rules, the
 * device fills against the host draws, and the moments of the distributions. */
#include <math.h>
#include <stdlib.h>

#include "digcl/rng.h"
#include "test_util.h"

static void test_philox_known_answers(void **state) {
    (void)state;
    static const uint32_t cases[3][10] = {
        /* counter[4], key[2], expected[4] */
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; ++c) {
        uint32_t out[4];
        digcl_philox4x32(&cases[c][4], cases[c], out);
        for (int i = 0; i < 4; ++i) assert_int_equal(out[i], cases[c][6 + i]);
    }
}

static void test_addressing_is_pure(void **state) {
    (void)state;
    const digcl_rng_key key = {12345, DIGCL_RNG_NOISE};
    const digcl_rng_key other_stream = {12345, DIGCL_RNG_TIMESTEP};
    const digcl_rng_key other_seed = {12346, DIGCL_RNG_NOISE};
    int differ_stream = 0, differ_seed = 0, differ_step = 0, differ_sample = 0;
    for (uint64_t i = 0; i < 64; ++i) {
        const uint32_t u = digcl_rng_u32(key, 7, 3, i);
        assert_int_equal(u, digcl_rng_u32(key, 7, 3, i)); /* same address, same draw */
        differ_stream += u != digcl_rng_u32(other_stream, 7, 3, i);
        differ_seed += u != digcl_rng_u32(other_seed, 7, 3, i);
        differ_step += u != digcl_rng_u32(key, 8, 3, i);
        differ_sample += u != digcl_rng_u32(key, 7, 4, i);
    }
    assert_true(differ_stream == 64 && differ_seed == 64 && differ_step == 64 &&
                differ_sample == 64);
    for (uint64_t i = 0; i < 1000; ++i) {
        assert_true(digcl_rng_below(key, 1, 2, i, 1000) < 1000);
        const double u = digcl_rng_uniform_double(key, 1, 2, i);
        assert_true(u >= 0.0 && u < 1.0);
    }
}

static void moments(const float *x, size_t n, double *mean, double *var) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; ++i) s += x[i];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; ++i) s2 += (x[i] - *mean) * (x[i] - *mean);
    *var = s2 / (double)n;
}

/* Device fills equal the host draws element by element (ragged row lengths
 * too), and have the right moments. */
static void check_fill(int normal, size_t rows, size_t row_length) {
    digcl_context *ctx = test_context();
    const digcl_rng_key key = {0xDEADBEEFCAFEull, DIGCL_RNG_TEST};
    const size_t n = rows * row_length;
    cl_mem out = test_poisoned(n);
    if (normal) digcl_rng_fill_normal(ctx, key, 5, 100, rows, row_length, out);
    else digcl_rng_fill_uniform(ctx, key, 5, 100, rows, row_length, out);
    float *got = test_download(out, n);
    float *want = malloc(n * sizeof *want);
    double worst = 0;
    for (size_t r = 0; r < rows; ++r)
        for (size_t j = 0; j < row_length; ++j) {
            const float w = normal ? digcl_rng_normal(key, 5, 100 + r, j)
                                   : digcl_rng_uniform(key, 5, 100 + r, j);
            want[r * row_length + j] = w;
            const double d = fabs((double)got[r * row_length + j] - w);
            if (d > worst) worst = d;
        }
    assert_true(test_all_finite(got, n));
    /* Uniforms are exact; normals agree to the device's transcendental ulps. */
    if (normal) assert_true(worst < 1e-5);
    else assert_true(worst == 0.0);
    double mean, var;
    moments(got, n, &mean, &var);
    if (n >= 100000) {
        const double want_mean = normal ? 0.0 : 0.5, want_var = normal ? 1.0 : 1.0 / 12.0;
        assert_true(fabs(mean - want_mean) < 0.01);
        assert_true(fabs(var - want_var) < 0.01 * want_var + 0.005);
    }
    free(got);
    free(want);
    test_release(out);
}

static void test_fill_normal_matches_host(void **state) {
    (void)state;
    check_fill(1, 7, 13);
    check_fill(1, 3, 1);
    check_fill(1, 64, 4096);
}

static void test_fill_uniform_matches_host(void **state) {
    (void)state;
    check_fill(0, 5, 6);
    check_fill(0, 32, 4096);
}

/* Normal tails: the largest |z| of 2^20 draws is finite and plausible, and
 * the fraction beyond 3 sigma is near 0.27 %. */
static void test_normal_tails(void **state) {
    (void)state;
    const digcl_rng_key key = {99, DIGCL_RNG_TEST};
    size_t beyond = 0, n = 1 << 20;
    double worst = 0;
    for (size_t i = 0; i < n; ++i) {
        const double z = digcl_rng_normal_double(key, 0, i / 1024, i % 1024);
        assert_true(isfinite(z));
        if (fabs(z) > 3.0) beyond++;
        if (fabs(z) > worst) worst = fabs(z);
    }
    assert_true(worst > 4.0 && worst < 7.0);
    const double fraction = (double)beyond / (double)n;
    assert_true(fabs(fraction - 0.0027) < 0.0005);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_philox_known_answers),
        cmocka_unit_test(test_addressing_is_pure),
        cmocka_unit_test(test_fill_normal_matches_host),
        cmocka_unit_test(test_fill_uniform_matches_host),
        cmocka_unit_test(test_normal_tails),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
