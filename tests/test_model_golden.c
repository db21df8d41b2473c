/* Golden tests of the whole DiG and DiT networks against the float64 PyTorch
 * reference (tests/reference/dig_reference.py): forward output, grad.x and the
 * gradient of every trainable parameter of L = sum(out * dout), on tiny
 * configs whose every parameter is random (zero init would hide most of the
 * network). Committed small fixtures always run; the full-size ones (width 128)
 * run when ctest generated them (python3-torch present).
 * Pass: rel L2 < 1e-4 forward, < 1e-3 for every gradient; U-DiG (issue 15):
 * < 1e-5 forward, < 1e-4 for every gradient. The DiT fixtures run again with
 * naive attention (config.attention, docs/MODEL.md "DiT attention modes"):
 * same weights, same reference, same tolerances. All of them run again with the
 * activations kept per block instead of recomputed (config.activations, docs/MODEL.md
 * "Activation memory"), whose extra memory is checked to the float. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "digcl/checkpoint.h"
#include "digcl/model.h"
#include "digcl/safetensors.h"
#include "test_util.h"

static const char *fixture_names[] = {"dig_a_16x16",   "dig_b_12x12", "dig_c_skip",
                                      "dit_d_16x16",   "dig_e_p4_c3", "udig_a_16x16_d5",
                                      "udig_b_8x8_d10"};
static const char *dit_names[] = {"dit_d_16x16"};
/* U-DiG fixtures of the full (generated) set only: stages ending in C and in Cr. */
static const char *full_only_names[] = {"udig_c_8x8_d15", "udig_d_8x8_d20"};

typedef struct fixture_files {
    digcl_safetensors *inputs, *expected;
} fixture_files;

static int directory_exists(const char *path) {
    struct stat info;
    return stat(path, &info) == 0 && S_ISDIR(info.st_mode);
}

static digcl_safetensors *open_in(const char *dir, const char *file) {
    char path[2048];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return digcl_st_open_or_die(path);
}

static float *read_tensor(const digcl_safetensors *st, const char *name, size_t *count) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    if (!t) fail_msg("%s: tensor '%s' missing", st->label, name);
    float *values = malloc((size_t)(t->numel ? t->numel : 1) * sizeof *values);
    digcl_st_error error;
    if (digcl_st_read_f32(st, t, values, &error) != 0) fail_msg("%s", error.message);
    if (count) *count = (size_t)t->numel;
    return values;
}

static digcl_attention_mode dit_attention = DIGCL_ATTENTION_TILED;      /* for DiT fixtures */
static digcl_activation_mode activations = DIGCL_ACTIVATIONS_RECOMPUTE; /* every fixture */

static digcl_model *load_model(const char *dir) {
    char path[2048], error[1024];
    snprintf(path, sizeof path, "%s/weights.safetensors", dir);
    digcl_model_config config;
    if (digcl_checkpoint_read_config(path, &config, error, sizeof error) != 0)
        fail_msg("%s", error);
    assert_int_equal(config.attention, DIGCL_ATTENTION_TILED); /* dig.config never records it */
    assert_int_equal(config.activations, DIGCL_ACTIVATIONS_RECOMPUTE); /* nor this */
    if (config.arch == DIGCL_ARCH_DIT) config.attention = dit_attention;
    config.activations = activations;
    digcl_model *model = digcl_model_create(test_context(), &config);
    if (digcl_checkpoint_load(model, path, error, sizeof error) != 0) fail_msg("%s", error);
    return model;
}

static cl_mem upload_int_labels(const digcl_safetensors *inputs, int *N) {
    const digcl_st_tensor *t = digcl_st_find(inputs, "y");
    assert_non_null(t);
    int64_t *wide = malloc(t->numel * sizeof *wide);
    int32_t *labels = malloc(t->numel * sizeof *labels);
    digcl_st_error error;
    assert_int_equal(digcl_st_read_i64(inputs, t, wide, &error), 0);
    for (uint64_t i = 0; i < t->numel; i++) labels[i] = (int32_t)wide[i];
    digcl_buffer buffer = digcl_buffer_create(test_context(), t->numel * sizeof *labels, "labels");
    digcl_write(test_context(), buffer.mem, 0, t->numel * sizeof *labels, labels);
    *N = (int)t->numel;
    free(wide);
    free(labels);
    return buffer.mem;
}

static int failures = 0;     /* every mismatch is reported before the test fails */
static int expect_fused = 1; /* DiG projections as one GEMM (the default) */

static void compare(const char *fixture, const char *name, cl_mem got_mem, const float *want,
                    size_t count, double tolerance, double *worst) {
    float *got = test_download(got_mem, count);
    double *wide = malloc(count * sizeof *wide);
    for (size_t i = 0; i < count; i++) wide[i] = want[i];
    double error = test_rel_l2(got, wide, count);
    if (error > *worst) *worst = error;
    if (!(error < tolerance)) {
        print_error("%s: %s rel L2 %.3e is not below %.0e\n", fixture, name, error, tolerance);
        failures++;
    }
    free(got);
    free(wide);
}

static void check_parameter_gradients(const char *fixture, digcl_model *model,
                                      const digcl_safetensors *expected, double tolerance,
                                      double *worst) {
    const digcl_param_table *table = digcl_model_param_table(model);
    for (size_t i = 0; i < table->count; i++) {
        if (!table->params[i].trainable) continue;
        char name[DIGCL_PARAM_NAME_SIZE + 8];
        snprintf(name, sizeof name, "grad.%s", table->params[i].name);
        size_t count = 0;
        float *want = read_tensor(expected, name, &count);
        assert_int_equal(count, table->params[i].numel);
        compare(fixture, name, digcl_model_grad(model, i), want, count, tolerance, worst);
        free(want);
    }
}

/* One fixture's model, inputs and training forward + backward (L = sum(out * dout)):
 * out and dx on the device, the gradients in the model's buffer. */
typedef struct fixture_pass {
    fixture_files f;
    digcl_model *model;
    digcl_model_inputs inputs;
    cl_mem out, d_out, dx;
    size_t x_count, out_count;
    int N;
} fixture_pass;

static fixture_pass fixture_pass_run(const char *dir) {
    fixture_pass r = {0};
    r.f = (fixture_files){open_in(dir, "inputs.safetensors"), open_in(dir, "expected.safetensors")};
    r.model = load_model(dir);
    size_t t_count = 0;
    float *x = read_tensor(r.f.inputs, "x", &r.x_count),
          *t = read_tensor(r.f.inputs, "t", &t_count);
    float *dout = read_tensor(r.f.inputs, "dout", &r.out_count);
    r.inputs = (digcl_model_inputs){test_upload(x, r.x_count), test_upload(t, t_count),
                                    upload_int_labels(r.f.inputs, &r.N)};
    r.out = test_poisoned(r.out_count), r.d_out = test_upload(dout, r.out_count);
    r.dx = test_poisoned(r.x_count);
    digcl_model_prepare(r.model, r.N, DIGCL_MODE_TRAINING);
    digcl_model_zero_grad(r.model);
    digcl_model_forward(r.model, &r.inputs, r.out);
    digcl_model_backward(r.model, &r.inputs, r.d_out, r.dx);
    free(x), free(t), free(dout);
    return r;
}

static void fixture_pass_release(fixture_pass *r) {
    test_release(r->inputs.x), test_release(r->inputs.t), test_release(r->inputs.y);
    test_release(r->out), test_release(r->d_out), test_release(r->dx);
    digcl_model_release(r->model);
    digcl_st_close(r->f.inputs), digcl_st_close(r->f.expected);
}

static void run_fixture(const char *dir, const char *fixture) {
    fixture_pass r = fixture_pass_run(dir);
    digcl_arch arch = digcl_model_get_config(r.model)->arch;
    double forward_tolerance = arch == DIGCL_ARCH_UDIG ? 1e-5 : 1e-4;
    double gradient_tolerance = arch == DIGCL_ARCH_UDIG ? 1e-4 : 1e-3;
    if (digcl_arch_has_dig_blocks(arch))
        assert_int_equal(digcl_model_fused_projections(r.model), expect_fused);
    if (arch == DIGCL_ARCH_DIT)
        assert_int_equal(digcl_model_get_config(r.model)->attention, dit_attention);
    float *want_out = read_tensor(r.f.expected, "out", NULL);
    float *want_dx = read_tensor(r.f.expected, "grad.x", NULL);
    double worst_forward = 0, worst_gradient = 0;
    compare(fixture, "out", r.out, want_out, r.out_count, forward_tolerance, &worst_forward);
    compare(fixture, "grad.x", r.dx, want_dx, r.x_count, gradient_tolerance, &worst_gradient);
    check_parameter_gradients(fixture, r.model, r.f.expected, gradient_tolerance, &worst_gradient);
    /* inference mode must give the same output */
    digcl_model_prepare(r.model, r.N, DIGCL_MODE_INFERENCE);
    test_poison(r.out, r.out_count);
    digcl_model_forward(r.model, &r.inputs, r.out);
    compare(fixture, "out (inference mode)", r.out, want_out, r.out_count, forward_tolerance,
            &worst_forward);
    print_message("  %-40s %s%sforward rel L2 %.2e, worst gradient %.2e\n", dir,
                  arch != DIGCL_ARCH_DIT                   ? ""
                  : dit_attention == DIGCL_ATTENTION_NAIVE ? "naive attention, "
                                                           : "tiled attention, ",
                  activations == DIGCL_ACTIVATIONS_KEEP ? "kept activations, " : "", worst_forward,
                  worst_gradient);
    free(want_out), free(want_dx);
    fixture_pass_release(&r);
}

static void run_names(const char *root, const char **names, size_t count) {
    for (size_t i = 0; i < count; i++) {
        char dir[1024];
        int length = snprintf(dir, sizeof dir, "%s/%s", root, names[i]);
        if (length < 0 || (size_t)length >= sizeof dir) fail_msg("fixture path too long: %s", root);
        if (!directory_exists(dir)) fail_msg("fixture directory %s is missing", dir);
        run_fixture(dir, names[i]);
    }
}

static void run_set(const char *root) {
    run_names(root, fixture_names, sizeof fixture_names / sizeof *fixture_names);
    if (failures) fail_msg("%d tensors differ from the reference in %s", failures, root);
}

static void test_committed_fixtures(void **state) {
    (void)state;
    run_set("tests/reference/fixtures_committed");
}

/* The five separate projection GEMMs (the path for weights that alignment
 * padding separates in the flat buffer), forced with DIGCL_FUSED_PROJECTIONS=0. */
static void test_committed_fixtures_separate_projections(void **state) {
    (void)state;
    setenv("DIGCL_FUSED_PROJECTIONS", "0", 1);
    expect_fused = 0;
    run_set("tests/reference/fixtures_committed");
    expect_fused = 1;
    unsetenv("DIGCL_FUSED_PROJECTIONS");
}

/* Naive attention: the materialised [N, H, T, T] path on the DiT fixtures. */
static void run_dit_naive(const char *root) {
    dit_attention = DIGCL_ATTENTION_NAIVE;
    run_names(root, dit_names, sizeof dit_names / sizeof *dit_names);
    dit_attention = DIGCL_ATTENTION_TILED;
    if (failures)
        fail_msg("%d tensors differ from the reference in %s (naive attention)", failures, root);
}

static void test_committed_dit_fixtures_naive_attention(void **state) {
    (void)state;
    run_dit_naive("tests/reference/fixtures_committed");
}

/* Kept activations: every committed fixture with the block's own copies of what the
 * backward otherwise recomputes (forward and gradients against the same reference). */
static void test_committed_fixtures_kept_activations(void **state) {
    (void)state;
    activations = DIGCL_ACTIVATIONS_KEEP;
    run_set("tests/reference/fixtures_committed");
    activations = DIGCL_ACTIVATIONS_RECOMPUTE;
}

/* One forward and backward of a committed fixture in `mode`: the flat gradient buffer and
 * grad.x, downloaded (free both). */
static void fixture_gradients(const char *dir, digcl_activation_mode mode, float **grads,
                              size_t *grad_count, float **dx_host, size_t *x_count) {
    activations = mode;
    fixture_pass r = fixture_pass_run(dir);
    activations = DIGCL_ACTIVATIONS_RECOMPUTE;
    *grad_count = digcl_model_flat_count(r.model);
    *grads = test_download(digcl_model_grad_buffer(r.model), *grad_count);
    *x_count = r.x_count;
    *dx_host = test_download(r.dx, r.x_count);
    fixture_pass_release(&r);
}

/* Keeping changes where the values live, not how they are computed: DiG (with skips),
 * DiT and U-DiG give the same gradients bit for bit in both modes. */
static void test_kept_activations_bitwise(void **state) {
    (void)state;
    const char *names[] = {"dig_c_skip", "dit_d_16x16", "udig_a_16x16_d5"};
    for (int i = 0; i < 3; i++) {
        char dir[1024];
        snprintf(dir, sizeof dir, "tests/reference/fixtures_committed/%s", names[i]);
        float *g[2], *dx[2];
        size_t grad_count[2], x_count[2];
        fixture_gradients(dir, DIGCL_ACTIVATIONS_RECOMPUTE, &g[0], &grad_count[0], &dx[0],
                          &x_count[0]);
        fixture_gradients(dir, DIGCL_ACTIVATIONS_KEEP, &g[1], &grad_count[1], &dx[1], &x_count[1]);
        assert_int_equal(grad_count[0], grad_count[1]);
        assert_int_equal(x_count[0], x_count[1]);
        size_t differ = 0;
        for (size_t k = 0; k < grad_count[0]; k++) differ += memcmp(&g[0][k], &g[1][k], 4) != 0;
        for (size_t k = 0; k < x_count[0]; k++) differ += memcmp(&dx[0][k], &dx[1][k], 4) != 0;
        print_message("  %-16s %zu gradients and %zu grad.x values, %zu differ\n", names[i],
                      grad_count[0], x_count[0], differ);
        assert_int_equal(differ, 0);
        free(g[0]), free(g[1]), free(dx[0]), free(dx[1]);
    }
}

/* What keeping costs, to the float (alignment 4 bytes): per block x1, x2, h_mid and the
 * MLP activation [rows, F], and for DiG h_post, normed o [rows, D] and the log gate
 * [rows, Dk]; inference plans the same either way. */
static void test_kept_activation_bytes(void **state) {
    (void)state;
    const char *presets[] = {"DiG-S/2", "DiT-S/2", "U-DiG-S"};
    for (int i = 0; i < 3; i++) {
        digcl_model_config config;
        digcl_config_error error;
        assert_int_equal(digcl_model_config_preset(presets[i], &config, &error), 0);
        const int batch = 4;
        size_t lean = digcl_model_activation_bytes(&config, batch, DIGCL_MODE_TRAINING, 4);
        size_t lean_inference =
            digcl_model_activation_bytes(&config, batch, DIGCL_MODE_INFERENCE, 4);
        config.activations = DIGCL_ACTIVATIONS_KEEP;
        size_t kept = digcl_model_activation_bytes(&config, batch, DIGCL_MODE_TRAINING, 4);
        assert_int_equal(digcl_model_activation_bytes(&config, batch, DIGCL_MODE_INFERENCE, 4),
                         lean_inference);
        const int dig = digcl_arch_has_dig_blocks(config.arch);
        size_t want = 0;
        for (int b = 0; b < config.depth; b++) {
            const size_t side = (size_t)digcl_model_block_grid(&config, b);
            const size_t rows = (size_t)batch * side * side;
            const size_t D = (size_t)config.hidden_size, F = (size_t)config.mlp_hidden;
            want += rows * (3 * D + F + (dig ? 2 * D + (size_t)config.qk_dim : 0)) * 4;
        }
        print_message("  %-8s batch %d: activations %.1f MiB recomputed, %.1f MiB kept\n",
                      presets[i], batch, lean / 1048576.0, kept / 1048576.0);
        assert_int_equal(kept - lean, want);
    }
}

static void test_full_size_fixtures(void **state) {
    (void)state;
    const char *binary_dir = getenv("DIGCL_TEST_BINARY_DIR");
    char root[1024];
    snprintf(root, sizeof root, "%s/reference-fixtures", binary_dir ? binary_dir : "build");
    if (!directory_exists(root)) {
        print_message("  full-size fixtures not generated (needs python3-torch): %s\n", root);
        skip();
    }
    run_set(root);
    run_names(root, full_only_names, sizeof full_only_names / sizeof *full_only_names);
    if (failures) fail_msg("%d tensors differ from the reference in %s", failures, root);
    run_dit_naive(root);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_committed_fixtures),
        cmocka_unit_test(test_committed_fixtures_separate_projections),
        cmocka_unit_test(test_committed_dit_fixtures_naive_attention),
        cmocka_unit_test(test_committed_fixtures_kept_activations),
        cmocka_unit_test(test_kept_activations_bitwise),
        cmocka_unit_test(test_kept_activation_bytes),
        cmocka_unit_test(test_full_size_fixtures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
