/* Upstream initialisation (docs/MODEL.md §3.6) on DiG-skipzero and DiT configs:
 * every tensor follows its rule (xavier bounds and spread, GLA gain 2^-2.5,
 * N(0, 0.02), zeros, ones, identity depthwise conv, [I | 0] skip, sin-cos
 * pos_embed), the same seed gives the same parameters and another seed does
 * not, and the zero-initialised final layer makes the first output exactly 0. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/embed.h"
#include "digcl/model.h"
#include "test_util.h"

typedef struct moments {
    double mean, stddev, max_abs;
} moments;

static moments moments_of(const float *x, size_t n) {
    double sum = 0, squares = 0, max_abs = 0;
    for (size_t i = 0; i < n; i++) {
        sum += x[i];
        squares += (double)x[i] * x[i];
        if (fabs(x[i]) > max_abs) max_abs = fabs(x[i]);
    }
    moments m = {sum / n, sqrt(squares / n - (sum / n) * (sum / n)), max_abs};
    return m;
}

static void check_xavier(const char *name, const digcl_param_info *p, const float *x, double gain) {
    double fan_out = (double)p->shape[0], fan_in = (double)p->numel / fan_out;
    double bound = gain * sqrt(6.0 / (fan_in + fan_out));
    moments m = moments_of(x, p->numel);
    if (m.max_abs > bound * (1 + 1e-6))
        fail_msg("%s: |w| %.4g exceeds the xavier bound %.4g", name, m.max_abs, bound);
    if (p->numel >= 1000 && fabs(m.stddev - bound / sqrt(3.0)) > 0.1 * bound / sqrt(3.0))
        fail_msg("%s: std %.4g, expected %.4g", name, m.stddev, bound / sqrt(3.0));
}

static void check_exact(const char *name, const float *x, size_t n, float value) {
    for (size_t i = 0; i < n; i++)
        if (x[i] != value) fail_msg("%s[%zu] = %g, expected %g", name, i, x[i], value);
}

static void check_rule(const digcl_model_config *c, const digcl_param_info *p, const float *x) {
    switch (p->init) {
    case DIGCL_INIT_XAVIER: check_xavier(p->name, p, x, 1.0); break;
    case DIGCL_INIT_XAVIER_GLA: check_xavier(p->name, p, x, pow(2.0, -2.5)); break;
    case DIGCL_INIT_ZERO: check_exact(p->name, x, p->numel, 0.0f); break;
    case DIGCL_INIT_ONE: check_exact(p->name, x, p->numel, 1.0f); break;
    case DIGCL_INIT_NORMAL_002: {
        moments m = moments_of(x, p->numel);
        if (fabs(m.mean) > 0.002 || fabs(m.stddev - 0.02) > 0.002)
            fail_msg("%s: mean %g std %g", p->name, m.mean, m.stddev);
        break;
    }
    case DIGCL_INIT_SINCOS_2D: {
        float *table = malloc(p->numel * sizeof *table);
        digcl_pos_embed_2d(c->hidden_size, c->grid, c->grid, table);
        assert_memory_equal(table, x, p->numel * sizeof *table);
        free(table);
        break;
    }
    case DIGCL_INIT_DW_IDENTITY:
        for (size_t i = 0; i < p->numel; i++) assert_true(x[i] == (i % 9 == 4 ? 1.0f : 0.0f));
        break;
    case DIGCL_INIT_SKIP_IDENTITY: {
        size_t cols = (size_t)p->shape[1];
        for (size_t i = 0; i < p->numel; i++)
            assert_true(x[i] == (i / cols == i % cols ? 1.0f : 0.0f));
        break;
    }
    }
}

static float *read_all(digcl_model *model) {
    const digcl_param_table *table = digcl_model_param_table(model);
    float *values = malloc(table->total * sizeof *values);
    size_t offset = 0;
    for (size_t i = 0; i < table->count; i++) {
        digcl_model_read_param(model, i, values + offset);
        offset += table->params[i].numel;
    }
    return values;
}

static void check_config(const char *preset, int depth, int width) {
    digcl_model_config config;
    digcl_config_error error;
    assert_int_equal(digcl_model_config_preset(preset, &config, &error), 0);
    config.depth = depth; /* small but with every kind of tensor */
    config.hidden_size = width;
    config.num_heads = 2;
    config.num_classes = 10;
    config.input_size = 8;
    if (digcl_model_config_finish(&config, &error) != 0) fail_msg("%s", error.message);
    digcl_model *model = digcl_model_create(test_context(), &config);
    digcl_model_init(model, 7);
    const digcl_param_table *table = digcl_model_param_table(model);
    float *first = read_all(model);
    size_t offset = 0;
    for (size_t i = 0; i < table->count; i++) {
        check_rule(&config, &table->params[i], first + offset);
        offset += table->params[i].numel;
    }
    digcl_model_init(model, 7);
    float *again = read_all(model);
    assert_memory_equal(first, again, table->total * sizeof *first);
    digcl_model_init(model, 8);
    float *other = read_all(model);
    assert_memory_not_equal(first, other, table->total * sizeof *first);
    free(first), free(again), free(other);
    digcl_model_release(model);
}

static void test_dig_skipzero_init(void **state) {
    (void)state;
    check_config("DiG-S/2-skipzero", 8, 128);
}

/* U-DiG (docs/MODEL.md "U-DiG"): the downsample, upsample and skip-fuse linears are xavier with zero bias. */
static void test_udig_init(void **state) {
    (void)state;
    check_config("U-DiG-S", 10, 128);
}

static void test_dit_init(void **state) {
    (void)state;
    check_config("DiT-S/2", 4, 128);
}

typedef struct forward_call {
    digcl_model *model;
    const digcl_model_inputs *inputs;
    cl_mem out;
} forward_call;

static void run_forward(void *arg) {
    forward_call *call = arg;
    digcl_model_forward(call->model, call->inputs, call->out);
}

/* adaLN-Zero: the final layer starts at zero, so the first output is exactly 0. */
static void test_initial_output_is_zero(void **state) {
    (void)state;
    digcl_model_config config;
    digcl_config_error error;
    assert_int_equal(digcl_model_config_preset("DiG-S/2", &config, &error), 0);
    config.depth = 4, config.hidden_size = 64, config.num_heads = 2, config.num_classes = 10,
    config.input_size = 8;
    if (digcl_model_config_finish(&config, &error) != 0) fail_msg("%s", error.message);
    digcl_model *model = digcl_model_create(test_context(), &config);
    digcl_model_init(model, 3);
    enum { N = 2 };
    size_t image = (size_t)N * 4 * 8 * 8, out_count = (size_t)N * 8 * 8 * 8;
    float *x = malloc(image * sizeof *x), t[N] = {10.0f, 999.0f};
    int32_t y[N] = {3, 10};
    test_rng rng = test_rng_seeded(5);
    test_fill_normal(&rng, x, image, 1.0f);
    digcl_buffer labels = digcl_buffer_create(test_context(), sizeof y, "labels");
    digcl_write(test_context(), labels.mem, 0, sizeof y, y);
    digcl_model_inputs inputs = {test_upload(x, image), test_upload(t, N), labels.mem};
    cl_mem out = test_poisoned(out_count);
    digcl_model_prepare(model, N, DIGCL_MODE_INFERENCE);
    digcl_model_forward(model, &inputs, out);
    float *got = test_download(out, out_count);
    check_exact("initial output", got, out_count, 0.0f);
    /* a buffer smaller than the prepared batch is refused, not read past its end */
    digcl_model_prepare(model, N + 1, DIGCL_MODE_INFERENCE);
    forward_call call = {model, &inputs, out};
    char message[512];
    assert_true(test_expect_fatal(run_forward, &call, message, sizeof message));
    assert_non_null(strstr(message, "input x [N, C, H, W]"));
    free(x), free(got);
    test_release(inputs.x), test_release(inputs.t), test_release(out);
    digcl_buffer_release(&labels);
    digcl_model_release(model);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dig_skipzero_init),
        cmocka_unit_test(test_dit_init),
        cmocka_unit_test(test_udig_init),
        cmocka_unit_test(test_initial_output_is_zero),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
