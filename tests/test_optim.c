/* AdamW (PyTorch semantics, with weight decay and bias correction over several
 * steps) and the EMA update against the double oracle, float and float4 paths. */
#include "dense_helpers.h"
#include "digcl/optim.h"
#include "digcl/ref/optim.h"

static void run_adamw(test_rng *rng, int n, int steps) {
    digcl_context *ctx = test_context();
    digcl_adamw_hparams hp = digcl_adamw_defaults();
    hp.lr = 1e-2f;
    hp.weight_decay = 0.05f;
    float *params = test_random_floats(rng, (size_t)n, 1.0f);
    double *p_want = test_widen(params, (size_t)n), *m_want = test_zeros((size_t)n);
    double *v_want = test_zeros((size_t)n);
    float *zeros = calloc((size_t)n, sizeof *zeros);
    cl_mem pm = test_upload(params, (size_t)n), m = test_upload(zeros, (size_t)n);
    cl_mem v = test_upload(zeros, (size_t)n);
    for (int step = 1; step <= steps; ++step) {
        float *grads = test_random_floats(rng, (size_t)n, step == 2 ? 1e-3f : 1.0f);
        double *grads_wide = test_widen(grads, (size_t)n);
        cl_mem gm = test_upload(grads, (size_t)n);
        digcl_adamw_step(ctx, n, &hp, step, pm, gm, m, v);
        digcl_ref_adamw_step(n, &hp, step, p_want, grads_wide, m_want, v_want);
        test_release(gm), free(grads), free(grads_wide);
    }
    char label[64];
    snprintf(label, sizeof label, "adamw params n=%d steps=%d", n, steps);
    dense_expect(label, pm, p_want, (size_t)n, DENSE_FORWARD_TOLERANCE);
    dense_expect("  exp_avg", m, m_want, (size_t)n, DENSE_FORWARD_TOLERANCE);
    dense_expect("  exp_avg_sq", v, v_want, (size_t)n, DENSE_FORWARD_TOLERANCE);
    test_release(pm), test_release(m), test_release(v);
    free(params), free(p_want), free(m_want), free(v_want), free(zeros);
}

static void test_adamw(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(51);
    run_adamw(&rng, 1, 3);
    run_adamw(&rng, 33, 3);
    run_adamw(&rng, 4096, 4);
    run_adamw(&rng, 100003, 2);
}

static void test_ema(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(52);
    const int counts[] = {1, 33, 4096};
    for (int k = 0; k < 3; ++k) {
        const int n = counts[k];
        float *ema = test_random_floats(&rng, (size_t)n, 1.0f),
              *params = test_random_floats(&rng, (size_t)n, 1.0f);
        double *want = test_widen(ema, (size_t)n), *pw = test_widen(params, (size_t)n);
        cl_mem em = test_upload(ema, (size_t)n), pm = test_upload(params, (size_t)n);
        for (int step = 0; step < 3; ++step) {
            digcl_ema_update(test_context(), n, 0.9f, em, pm);
            digcl_ref_ema_update(n, 0.9, want, pw);
        }
        char label[64];
        snprintf(label, sizeof label, "ema n=%d", n);
        dense_expect(label, em, want, (size_t)n, DENSE_FORWARD_TOLERANCE);
        test_release(em), test_release(pm), free(ema), free(params), free(want), free(pw);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adamw),
        cmocka_unit_test(test_ema),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
