/* Checks of the float64 GLA oracle (src/ops/gla_ref.c) alone, no device:
 * - gradients against central finite differences of L = <o, do> + <hT, dhT>;
 * - dg against the suffix-sum identity of docs/GLA.md section 3.3:
 *   dg_t = sum_{u >= t} (q_u dq_u - k_u dk_u) + rowsum(hT * dhT);
 * - the forward against a closed form for one token and for g = 0.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/gla.h"
#include "digcl/ref/gla.h"
#include "test_util.h"

typedef struct oracle_case {
    digcl_gla_shape shape;
    size_t qk_count, value_count, state_count;
    double *q, *k, *v, *g, *h0, *do_, *dhT; /* inputs, layouts of shape */
    double *o, *hT;                         /* forward outputs */
    double *dq, *dk, *dv, *dg, *dh0;        /* gradients */
} oracle_case;

static double *zeros(size_t n) {
    double *x = calloc(n ? n : 1, sizeof *x);
    assert_non_null(x);
    return x;
}

/* Gate logsigmoid(x) / tau per element. */
static void fill_gate(test_rng *rng, double *g, size_t n, double tau) {
    for (size_t i = 0; i < n; i++) {
        double x = test_normal(rng);
        double logsigmoid = x < 0 ? x - log1p(exp(x)) : -log1p(exp(-x));
        g[i] = logsigmoid / tau;
    }
}

static oracle_case case_create(digcl_gla_shape shape, uint64_t seed, double tau) {
    oracle_case c;
    memset(&c, 0, sizeof c);
    c.shape = shape;
    c.qk_count = digcl_gla_span(&shape, &shape.q, shape.K);
    c.value_count = digcl_gla_span(&shape, &shape.v, shape.V);
    c.state_count = (size_t)shape.N * shape.H * shape.K * shape.V;
    test_rng rng = test_rng_seeded(seed);
    double **qk[] = {&c.q, &c.k, &c.g, &c.dq, &c.dk, &c.dg};
    for (size_t i = 0; i < 6; i++) *qk[i] = zeros(c.qk_count);
    double **value[] = {&c.v, &c.do_, &c.o, &c.dv};
    for (size_t i = 0; i < 4; i++) *value[i] = zeros(c.value_count);
    double **state[] = {&c.h0, &c.dhT, &c.hT, &c.dh0};
    for (size_t i = 0; i < 4; i++) *state[i] = zeros(c.state_count);
    test_fill_normal_double(&rng, c.q, c.qk_count, 1.0);
    test_fill_normal_double(&rng, c.k, c.qk_count, 1.0);
    test_fill_normal_double(&rng, c.v, c.value_count, 1.0);
    test_fill_normal_double(&rng, c.do_, c.value_count, 1.0);
    test_fill_normal_double(&rng, c.h0, c.state_count, 1.0);
    test_fill_normal_double(&rng, c.dhT, c.state_count, 1.0);
    fill_gate(&rng, c.g, c.qk_count, tau);
    return c;
}

static void case_free(oracle_case *c) {
    double *all[] = {c->q, c->k,  c->v,  c->g,  c->h0, c->do_, c->dhT,
                     c->o, c->hT, c->dq, c->dk, c->dv, c->dg,  c->dh0};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) free(all[i]);
}

/* L = <o, do> + <hT, dhT> at the current inputs. */
static double loss(oracle_case *c) {
    digcl_ref_gla_forward(&c->shape, c->q, c->k, c->v, c->g, c->h0, c->o, c->hT, 0);
    double sum = 0;
    for (size_t i = 0; i < c->value_count; i++) sum += c->o[i] * c->do_[i];
    for (size_t i = 0; i < c->state_count; i++) sum += c->hT[i] * c->dhT[i];
    return sum;
}

/* Max over the elements of x of |analytic - central difference| / (1 + |analytic|). */
static double finite_difference_error(oracle_case *c, double *x, const double *gradient, size_t n) {
    const double step = 1e-6;
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double saved = x[i];
        x[i] = saved + step;
        double plus = loss(c);
        x[i] = saved - step;
        double minus = loss(c);
        x[i] = saved;
        double numeric = (plus - minus) / (2 * step);
        double error = fabs(numeric - gradient[i]) / (1 + fabs(gradient[i]));
        worst = error > worst ? error : worst;
    }
    return worst;
}

static void backward(oracle_case *c) {
    digcl_ref_gla_backward(&c->shape, c->q, c->k, c->v, c->g, c->h0, c->do_, c->dhT, c->dq, c->dk,
                           c->dv, c->dg, c->dh0, 0);
}

static void check_finite_differences(digcl_gla_shape shape, double tau) {
    oracle_case c = case_create(shape, 11, tau);
    backward(&c);
    double errors[] = {
        finite_difference_error(&c, c.q, c.dq, c.qk_count),
        finite_difference_error(&c, c.k, c.dk, c.qk_count),
        finite_difference_error(&c, c.v, c.dv, c.value_count),
        finite_difference_error(&c, c.g, c.dg, c.qk_count),
        finite_difference_error(&c, c.h0, c.dh0, c.state_count),
    };
    const char *names[] = {"dq", "dk", "dv", "dg", "dh0"};
    for (size_t i = 0; i < 5; i++) {
        print_message("oracle finite differences T=%d tau=%g %s: %.3g\n", shape.T, tau, names[i],
                      errors[i]);
        assert_true(errors[i] < 1e-6);
    }
    case_free(&c);
}

static void test_oracle_finite_differences(void **state) {
    (void)state;
    /* both layouts; T = 37 crosses the oracle's 32-token checkpoint segments */
    check_finite_differences(digcl_gla_shape_token_major(2, 11, 2, 3, 2, 16), 1.0);
    check_finite_differences(digcl_gla_shape_head_major(1, 37, 2, 2, 3, 16), 0.5);
}

/* dg against the suffix sum of q dq - k dk plus rowsum(hT dhT). */
static double suffix_identity_error(oracle_case *c) {
    const digcl_gla_shape *s = &c->shape;
    double *suffix = zeros((size_t)s->K);
    double worst = 0, scale = 0;
    for (int n = 0; n < s->N; n++)
        for (int h = 0; h < s->H; h++) {
            size_t base = n * s->q.batch + h * s->q.head;
            const double *hT = c->hT + ((size_t)n * s->H + h) * s->K * s->V;
            const double *dhT = c->dhT + ((size_t)n * s->H + h) * s->K * s->V;
            for (int i = 0; i < s->K; i++) {
                suffix[i] = 0;
                for (int j = 0; j < s->V; j++) suffix[i] += hT[i * s->V + j] * dhT[i * s->V + j];
            }
            for (int t = s->T - 1; t >= 0; t--)
                for (int i = 0; i < s->K; i++) {
                    size_t x = base + t * s->q.token + i;
                    suffix[i] += c->q[x] * c->dq[x] - c->k[x] * c->dk[x];
                    double error = fabs(suffix[i] - c->dg[x]);
                    worst = error > worst ? error : worst;
                    scale = fabs(c->dg[x]) > scale ? fabs(c->dg[x]) : scale;
                }
        }
    free(suffix);
    return worst / (scale > 0 ? scale : 1);
}

static void test_oracle_suffix_identity(void **state) {
    (void)state;
    const double taus[] = {0.1, 1, 16};
    for (size_t i = 0; i < 3; i++) {
        oracle_case c =
            case_create(digcl_gla_shape_token_major(2, 100, 3, 5, 7, 32), 5 + i, taus[i]);
        loss(&c);
        backward(&c);
        double error = suffix_identity_error(&c);
        print_message("oracle suffix identity tau=%g: max error / max |dg| %.3g\n", taus[i], error);
        assert_true(error < 1e-10);
        /* the identity must notice a wrong dg */
        c.dg[c.shape.q.token * 40 + 2] += 1e-3;
        assert_true(suffix_identity_error(&c) > 1e-8);
        case_free(&c);
    }
}

/* T = 1: o = s (exp(g) h0 + k v^T)^T q; g = 0 and no h0: o_t = s sum_{j<=t} <q_t,k_j> v_j. */
static void test_oracle_closed_forms(void **state) {
    (void)state;
    oracle_case c = case_create(digcl_gla_shape_token_major(1, 1, 1, 3, 2, 16), 3, 1.0);
    loss(&c);
    double s = 1 / sqrt(3.0);
    for (int j = 0; j < 2; j++) {
        double want = 0;
        for (int i = 0; i < 3; i++)
            want += s * c.q[i] * (exp(c.g[i]) * c.h0[i * 2 + j] + c.k[i] * c.v[j]);
        assert_true(fabs(c.o[j] - want) < 1e-12);
    }
    case_free(&c);

    oracle_case d = case_create(digcl_gla_shape_token_major(1, 9, 1, 4, 3, 16), 4, 1.0);
    memset(d.g, 0, d.qk_count * sizeof(double));
    digcl_ref_gla_forward(&d.shape, d.q, d.k, d.v, d.g, NULL, d.o, NULL, 0);
    for (int t = 0; t < 9; t++)
        for (int j = 0; j < 3; j++) {
            double want = 0;
            for (int u = 0; u <= t; u++) {
                double dot = 0;
                for (int i = 0; i < 4; i++) dot += d.q[t * 4 + i] * d.k[u * 4 + i];
                want += 0.5 * dot * d.v[u * 3 + j];
            }
            assert_true(fabs(d.o[t * 3 + j] - want) < 1e-12);
        }
    case_free(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_oracle_closed_forms),
        cmocka_unit_test(test_oracle_finite_differences),
        cmocka_unit_test(test_oracle_suffix_identity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
