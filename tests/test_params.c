/* The parameter store (digcl/params.h) and what the model builds on it:
 * - the flat layout is the same fixed 512-byte alignment whatever the device;
 * - several stores of one table in one file by name prefix, loaded back
 *   exactly; a bad file (missing, non-finite, stray tensor) leaves the stores
 *   unchanged;
 * - the model runs its forward on another store (EMA weights) without copying:
 *   the output equals the forward after copying those weights in;
 * - digcl_model_prepare never allocates again in a loop alternating training
 *   and (smaller or larger) inference batches;
 * - the batch limit and memory estimate come from the real plan and store;
 * - a replaced file keeps its mode, a new one honours the umask. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digcl/checkpoint.h"
#include "digcl/model.h"
#include "digcl/params.h"
#include "test_util.h"

static digcl_param_table small_table(void) {
    digcl_param_table table = {0};
    const int64_t a[2] = {3, 5}, b[1] = {7}, c[3] = {2, 2, 33};
    assert_int_equal(digcl_param_table_add(&table, "a.weight", 2, a, 1, 0), 0);
    assert_int_equal(digcl_param_table_add(&table, "b.bias", 1, b, 1, 0), 1);
    assert_int_equal(digcl_param_table_add(&table, "frozen", 3, c, 0, 0), 2);
    return table;
}

static void fill_store(digcl_params *store, uint64_t seed) {
    const digcl_param_table *table = digcl_params_table(store);
    test_rng rng = test_rng_seeded(seed);
    for (size_t i = 0; i < table->count; i++) {
        float *values = test_random_floats(&rng, table->params[i].numel, 1.0f);
        digcl_params_write(store, i, values);
        free(values);
    }
}

static void assert_same_values(const digcl_params *a, const digcl_params *b) {
    const digcl_param_table *table = digcl_params_table(a);
    for (size_t i = 0; i < table->count; i++) {
        size_t n = table->params[i].numel;
        float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
        digcl_params_read(a, i, x);
        digcl_params_read(b, i, y);
        assert_memory_equal(x, y, n * sizeof *x);
        free(x), free(y);
    }
}

static void test_layout_is_device_independent(void **state) {
    (void)state;
    digcl_param_table table = small_table();
    assert_int_equal(table.total, 15 + 7 + 132);
    assert_int_equal(table.trainable, 22);
    size_t offsets[3];
    size_t flat = digcl_param_table_layout(&table, offsets);
    assert_int_equal(offsets[0], 0);
    assert_int_equal(offsets[1], 128); /* 512 bytes = 128 floats, whatever the device asks */
    assert_int_equal(offsets[2], 256);
    assert_int_equal(flat, 512);
    digcl_params *store = digcl_params_create(test_context(), &table, "test store");
    assert_int_equal(digcl_params_flat_count(store), flat);
    for (size_t i = 0; i < 3; i++) assert_int_equal(digcl_params_offset(store, i), offsets[i]);
    float *all = test_download(digcl_params_buffer(store), flat);
    for (size_t i = 0; i < flat; i++)
        assert_true(all[i] == 0.0f); /* created zeroed, padding included */
    free(all);
    assert_false(digcl_params_has_grads(store));
    digcl_params_grad_buffer(store);
    assert_true(digcl_params_has_grads(store));
    digcl_params_release(store);
    /* a bad entry is refused */
    const int64_t negative[1] = {-1};
    assert_true(digcl_param_table_add(&table, "negative", 1, negative, 1, 0) < 0);
    digcl_param_table_free(&table);
}

static void temp_path(char *path, size_t size, const char *name) {
    snprintf(path, size, "/tmp/digcl-test-params-%ld-%s", (long)getpid(), name);
}

static void test_prefixed_stores_in_one_file(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    digcl_param_table table = small_table();
    digcl_params *weights = digcl_params_create(ctx, &table, "weights");
    digcl_params *ema = digcl_params_create(ctx, &table, "EMA");
    fill_store(weights, 1);
    fill_store(ema, 2);
    char path[256], error[8192];
    temp_path(path, sizeof path, "two.safetensors");
    digcl_params_file_entry entries[2] = {{weights, NULL, 0}, {ema, "ema.", 0}};
    const char *metadata[2] = {"note", "two stores"};
    assert_int_equal(digcl_params_save_file(path, entries, 2, metadata, 1, error, sizeof error), 0);

    digcl_safetensors *st = NULL;
    digcl_st_error err;
    assert_int_equal(digcl_st_open(path, &st, &err), 0);
    assert_int_equal(st->n_tensors, 6);
    assert_non_null(digcl_st_find(st, "ema.a.weight"));
    assert_string_equal(digcl_st_metadata(st, "note"), "two stores");
    digcl_st_close(st);

    digcl_params *weights_back = digcl_params_create(ctx, &table, "weights back");
    digcl_params *ema_back = digcl_params_create(ctx, &table, "EMA back");
    digcl_params_file_entry back[2] = {{weights_back, "", 0}, {ema_back, "ema.", 0}};
    assert_int_equal(digcl_params_load_file(path, back, 2, 1, error, sizeof error), 0);
    assert_same_values(weights, weights_back);
    assert_same_values(ema, ema_back);

    /* strict: a tensor of no entry is an error, and nothing is uploaded */
    fill_store(ema_back, 3);
    digcl_params *copy = digcl_params_create(ctx, &table, "copy");
    digcl_params_copy(copy, ema_back);
    assert_int_equal(digcl_params_load_file(path, back, 1, 1, error, sizeof error), -1);
    assert_non_null(strstr(error, "unexpected tensor 'ema."));
    /* a missing prefix names the tensor */
    digcl_params_file_entry wrong[1] = {{ema_back, "opt.exp_avg.", 0}};
    assert_int_equal(digcl_params_load_file(path, wrong, 1, 0, error, sizeof error), -1);
    assert_non_null(strstr(error, "opt.exp_avg.a.weight"));
    assert_same_values(copy, ema_back);
    digcl_params_release(copy);

    /* a non-finite value is refused before anything is uploaded */
    float *values = malloc(table.params[2].numel * sizeof *values);
    digcl_params_read(ema, 2, values);
    values[5] = 0.0f / 0.0f;
    digcl_params_write(ema, 2, values);
    free(values);
    assert_int_equal(digcl_params_save_file(path, entries, 2, NULL, 0, error, sizeof error), 0);
    fill_store(weights_back, 4);
    digcl_params *before = digcl_params_create(ctx, &table, "before");
    digcl_params_copy(before, weights_back);
    assert_int_equal(digcl_params_load_file(path, back, 2, 1, error, sizeof error), -1);
    assert_non_null(strstr(error, "ema.frozen' holds 1 non-finite value"));
    assert_same_values(before, weights_back); /* the first entry was valid, yet not uploaded */
    digcl_params_release(before);

    remove(path);
    digcl_params_release(weights), digcl_params_release(ema);
    digcl_params_release(weights_back), digcl_params_release(ema_back);
    digcl_param_table_free(&table);
}

/* trainable_only entries (the AdamW moments) hold only the trainable tensors. */
static void test_trainable_only_entries(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    digcl_param_table table = small_table();
    digcl_params *weights = digcl_params_create(ctx, &table, "weights");
    digcl_params *moment = digcl_params_create(ctx, &table, "moment");
    fill_store(weights, 5);
    fill_store(moment, 6);
    char path[256], error[8192];
    temp_path(path, sizeof path, "moments.safetensors");
    digcl_params_file_entry entries[2] = {{weights, "", 0}, {moment, "opt.m.", 1}};
    assert_int_equal(digcl_params_save_file(path, entries, 2, NULL, 0, error, sizeof error), 0);
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    assert_int_equal(digcl_st_open(path, &st, &err), 0);
    assert_int_equal(st->n_tensors, 5);
    assert_non_null(digcl_st_find(st, "opt.m.b.bias"));
    assert_null(digcl_st_find(st, "opt.m.frozen"));
    digcl_st_close(st);

    /* loaded back: the trainable tensors change, the frozen one is left alone */
    digcl_params *back = digcl_params_create(ctx, &table, "moment back");
    fill_store(back, 7);
    float *frozen_before = malloc(table.params[2].numel * sizeof(float));
    float *frozen_after = malloc(table.params[2].numel * sizeof(float));
    float *want = malloc(table.params[0].numel * sizeof(float));
    float *got = malloc(table.params[0].numel * sizeof(float));
    digcl_params_read(back, 2, frozen_before);
    digcl_params_file_entry load[2] = {{weights, "", 0}, {back, "opt.m.", 1}};
    assert_int_equal(digcl_params_load_file(path, load, 2, 1, error, sizeof error), 0);
    digcl_params_read(back, 2, frozen_after);
    assert_memory_equal(frozen_before, frozen_after, table.params[2].numel * sizeof(float));
    digcl_params_read(moment, 0, want);
    digcl_params_read(back, 0, got);
    assert_memory_equal(want, got, table.params[0].numel * sizeof(float));

    /* strict: a frozen tensor under a trainable-only prefix is unexpected */
    digcl_params_file_entry all[2] = {{weights, "", 0}, {moment, "opt.m.", 0}};
    assert_int_equal(digcl_params_save_file(path, all, 2, NULL, 0, error, sizeof error), 0);
    assert_int_equal(digcl_params_load_file(path, load, 2, 1, error, sizeof error), -1);
    assert_non_null(strstr(error, "unexpected tensor 'opt.m.frozen'"));
    assert_int_equal(digcl_params_load_file(path, load, 2, 0, error, sizeof error), 0);

    remove(path);
    free(frozen_before), free(frozen_after), free(want), free(got);
    digcl_params_release(weights), digcl_params_release(moment), digcl_params_release(back);
    digcl_param_table_free(&table);
}

/* ------------------------------------------------------------ the model on the store */

static digcl_model_config tiny_dig(void) {
    digcl_model_config c;
    memset(&c, 0, sizeof c);
    c.arch = DIGCL_ARCH_DIG, c.depth = 2, c.hidden_size = 32, c.num_heads = 1, c.patch_size = 2;
    c.input_size = 8, c.in_channels = 4, c.num_classes = 10, c.learn_sigma = 1;
    digcl_config_error err;
    assert_int_equal(digcl_model_config_finish(&c, &err), 0);
    return c;
}

typedef struct model_batch {
    cl_mem x, t, y, out;
    size_t out_count;
} model_batch;

static model_batch make_batch(const digcl_model_config *c, int n, uint64_t seed) {
    test_rng rng = test_rng_seeded(seed);
    size_t pixels = (size_t)c->input_size * c->input_size;
    float *x = test_random_floats(&rng, (size_t)n * c->in_channels * pixels, 1.0f);
    float *t = malloc((size_t)n * sizeof *t);
    int32_t *y = malloc((size_t)n * sizeof *y);
    for (int i = 0; i < n; i++) t[i] = (float)(37 * i % 1000), y[i] = i % (c->num_classes + 1);
    model_batch b;
    b.x = test_upload(x, (size_t)n * c->in_channels * pixels);
    b.t = test_upload(t, (size_t)n);
    b.y = test_upload((const float *)y, (size_t)n); /* int32 bits, uploaded as-is */
    b.out_count = (size_t)n * c->out_channels * pixels;
    b.out = test_poisoned(b.out_count);
    free(x), free(t), free(y);
    return b;
}

static void release_batch(model_batch *b) {
    test_release(b->x), test_release(b->t), test_release(b->y), test_release(b->out);
}

static float *run_forward(digcl_model *model, model_batch *b, int n) {
    digcl_model_prepare(model, n, DIGCL_MODE_INFERENCE);
    digcl_model_inputs inputs = {b->x, b->t, b->y};
    test_poison(b->out, b->out_count);
    digcl_model_forward(model, &inputs, b->out);
    return test_download(b->out, b->out_count);
}

static void test_forward_on_ema_store(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    digcl_model_config c = tiny_dig();
    digcl_model *model = digcl_model_create(ctx, &c);
    digcl_model_randomize(model, 5, 0.1f);
    digcl_params *ema = digcl_params_create(ctx, digcl_model_param_table(model), "EMA");
    digcl_model_randomize(model, 6, 0.1f); /* the EMA copy: other weights */
    digcl_params_copy(ema, digcl_model_params(model));
    digcl_model_randomize(model, 5, 0.1f);
    model_batch b = make_batch(&c, 3, 11);
    float *own = run_forward(model, &b, 3);
    digcl_model_use_params(model, ema);
    assert_ptr_equal(digcl_model_active_params(model), ema);
    float *on_ema = run_forward(model, &b, 3);
    digcl_model_use_params(model, NULL);
    float *own_again = run_forward(model, &b, 3);
    assert_memory_equal(own, own_again, b.out_count * sizeof *own);
    digcl_params_copy(digcl_model_params(model), ema); /* the reference: copy the weights in */
    float *copied = run_forward(model, &b, 3);
    assert_true(test_all_finite(on_ema, b.out_count));
    assert_memory_equal(on_ema, copied, b.out_count * sizeof *on_ema);
    assert_true(memcmp(own, on_ema, b.out_count * sizeof *own) != 0);
    free(own), free(on_ema), free(own_again), free(copied);
    release_batch(&b);
    digcl_params_release(ema);
    digcl_model_release(model);
}

static void expect_other_table(void *arg) {
    void **args = arg;
    digcl_model_use_params(args[0], args[1]);
}

static void test_use_params_refuses_other_table(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    digcl_model_config c = tiny_dig();
    digcl_model *model = digcl_model_create(ctx, &c);
    digcl_param_table table = small_table();
    digcl_params *other = digcl_params_create(ctx, &table, "other");
    void *args[2] = {model, other};
    char message[512];
    assert_true(test_expect_fatal(expect_other_table, args, message, sizeof message));
    assert_non_null(strstr(message, "table differs"));
    digcl_params_release(other);
    digcl_param_table_free(&table);
    digcl_model_release(model);
}

/* Training at 4, EMA samples at 2 and 6, training again: after the first
 * round nothing is allocated, and results do not depend on the plan used. */
static void test_prepare_never_replans_in_a_loop(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    digcl_model_config c = tiny_dig();
    digcl_model *model = digcl_model_create(ctx, &c);
    digcl_model_randomize(model, 8, 0.1f);
    model_batch small = make_batch(&c, 2, 12), large = make_batch(&c, 6, 13),
                train = make_batch(&c, 4, 14);
    float *fresh = run_forward(model, &small, 2); /* on a plan of its own */
    assert_int_equal(digcl_model_activation_allocations(model), 1);
    uint64_t in_use = 0;
    int allocations = 0;
    for (int round = 0; round < 3; round++) {
        digcl_model_prepare(model, 4, DIGCL_MODE_TRAINING);
        digcl_model_inputs inputs = {train.x, train.t, train.y};
        digcl_model_forward(model, &inputs, train.out);
        free(run_forward(model, &large, 6));
        float *served = run_forward(model, &small, 2); /* served by the training plan */
        assert_memory_equal(served, fresh, small.out_count * sizeof *served);
        free(served);
        digcl_finish(ctx);
        uint64_t now = digcl_memory_stats_get(ctx).in_use_bytes;
        if (round == 0) in_use = now, allocations = digcl_model_activation_allocations(model);
        else assert_true(now == in_use);
        assert_int_equal(digcl_model_activation_allocations(model), allocations);
    }
    free(fresh);
    release_batch(&small), release_batch(&large), release_batch(&train);
    digcl_model_release(model);
}

static void test_limits_and_estimate(void **state) {
    (void)state;
    digcl_model_config c;
    digcl_config_error err;
    assert_int_equal(digcl_model_config_preset("DiG-S/2", &c, &err), 0);
    char message[512];
    long max = digcl_model_max_batch(&c);
    assert_true(max > 1000);
    assert_int_equal(digcl_model_check_batch(&c, max, message, sizeof message), 0);
    assert_int_equal(digcl_model_check_batch(&c, max + 1, message, sizeof message), -1);
    assert_non_null(strstr(message, "32-bit"));
    assert_int_equal(digcl_model_check_batch(&c, 0, message, sizeof message), -1);
    digcl_model_memory m;
    assert_int_equal(digcl_model_memory_estimate(&c, 32, &m, message, sizeof message), 0);
    digcl_param_table table;
    assert_int_equal(digcl_param_table_build(&c, &table), 0);
    assert_int_equal(m.parameters, digcl_param_table_flat_bytes(&table));
    assert_int_equal(m.optimizer, 2 * m.parameters);
    assert_int_equal(m.training_total, 5 * m.parameters + m.activations_training);
    assert_int_equal(m.sampling_total, m.parameters + m.activations_inference);
    digcl_param_table_free(&table);
    /* the estimate is what a model really allocates */
    digcl_context *ctx = test_context();
    digcl_model_config tiny = tiny_dig();
    assert_int_equal(digcl_model_memory_estimate(&tiny, 3, &m, message, sizeof message), 0);
    digcl_finish(ctx);
    uint64_t before = digcl_memory_stats_get(ctx).in_use_bytes;
    digcl_model *model = digcl_model_create(ctx, &tiny);
    digcl_model_prepare(model, 3, DIGCL_MODE_TRAINING);
    uint64_t used = digcl_memory_stats_get(ctx).in_use_bytes - before;
    assert_true(used == m.parameters + m.gradients + m.activations_training);
    digcl_model_release(model);
}

static void test_input_checks(void **state) {
    (void)state;
    digcl_model_config c = tiny_dig();
    char message[512];
    float t[3] = {0.0f, 999.0f, 1000.0f}, x[4] = {1.0f, 0.0f / 0.0f, 2.0f, 1.0f / 0.0f};
    int64_t y[3] = {0, 10, 11};
    assert_int_equal(digcl_model_check_timesteps("t", t, 2, 1000, message, sizeof message), 0);
    assert_int_equal(digcl_model_check_timesteps("t", t, 3, 1000, message, sizeof message), -1);
    assert_non_null(strstr(message, "'t'[2] = 1000"));
    assert_int_equal(digcl_model_check_labels(&c, "y", y, 2, message, sizeof message), 0);
    assert_int_equal(digcl_model_check_labels(&c, "y", y, 3, message, sizeof message), -1);
    assert_non_null(strstr(message, "'y'[2] = 11"));
    assert_int_equal(digcl_check_finite("x", x, 4, message, sizeof message), -1);
    assert_non_null(strstr(message, "2 non-finite values"));
    assert_non_null(strstr(message, "first at [1]"));
}

/* ------------------------------------------------------------ file modes */

static mode_t mode_of(const char *path) {
    struct stat info;
    assert_int_equal(stat(path, &info), 0);
    return info.st_mode & 07777;
}

static void test_written_file_modes(void **state) {
    (void)state;
    digcl_context *ctx = test_context();
    digcl_param_table table = small_table();
    digcl_params *store = digcl_params_create(ctx, &table, "store");
    char path[256], error[8192];
    temp_path(path, sizeof path, "mode.safetensors");
    remove(path);
    digcl_params_file_entry entry = {store, NULL, 0};
    mode_t old_mask = umask(027);
    assert_int_equal(digcl_params_save_file(path, &entry, 1, NULL, 0, error, sizeof error), 0);
    assert_int_equal(mode_of(path), 0640); /* new: 0666 less the umask */
    assert_int_equal(chmod(path, 0600), 0);
    assert_int_equal(digcl_params_save_file(path, &entry, 1, NULL, 0, error, sizeof error), 0);
    assert_int_equal(mode_of(path), 0600); /* replaced: the mode is kept */
    umask(old_mask);
    assert_int_equal(digcl_params_save_file("", &entry, 1, NULL, 0, error, sizeof error), -1);
    assert_non_null(strstr(error, "empty"));
    remove(path);
    digcl_params_release(store);
    digcl_param_table_free(&table);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_layout_is_device_independent),
        cmocka_unit_test(test_prefixed_stores_in_one_file),
        cmocka_unit_test(test_trainable_only_entries),
        cmocka_unit_test(test_forward_on_ema_store),
        cmocka_unit_test(test_use_params_refuses_other_table),
        cmocka_unit_test(test_prepare_never_replans_in_a_loop),
        cmocka_unit_test(test_limits_and_estimate),
        cmocka_unit_test(test_input_checks),
        cmocka_unit_test(test_written_file_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
