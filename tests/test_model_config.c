/* Tests of model configs, presets, dig.config JSON and the parameter table
 * (src/model/config.c), no device:
 * - every count in tests/reference/param_counts.txt (total and trainable);
 * - names and shapes of DiG-S/2 and DiT-S/2 equal upstream's state_dict dumps
 *   (tests/reference/dig_s2_state_dict.txt, dit_s2_state_dict.txt), in order;
 * - derived sizes (head dims 32/64, SwiGLU 1024/2048/2816/3072), presets, JSON.
 * - the committed PyTorch fixtures (tests/reference/fixtures_committed/) hold
 *   exactly the tensors their dig.config's parameter table names, with its shapes,
 *   and inputs/expected tensors of the right shapes.
 * Reference files are read relative to the source tree (ctest's working
 * directory).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/model_config.h"
#include "digcl/safetensors.h"
#include "test_util.h"

static FILE *open_reference(const char *name) {
    const char *dirs[] = {"tests/reference"};
    char path[512];
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        FILE *f = fopen(path, "r");
        if (f) return f;
    }
    fail_msg("reference file %s not found (run from the source root)", name);
    return NULL;
}

static digcl_model_config preset(const char *name) {
    digcl_model_config cfg;
    digcl_config_error err;
    if (digcl_model_config_preset(name, &cfg, &err) != 0) fail_msg("%s", err.message);
    return cfg;
}

static void test_param_counts(void **state) {
    (void)state;
    FILE *f = open_reference("param_counts.txt");
    char line[512], name[64], millions[32];
    unsigned long long total, trainable;
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (sscanf(line, "%63s %llu %31s %llu", name, &total, millions, &trainable) != 4) continue;
        digcl_model_config cfg = preset(name);
        digcl_param_table table;
        assert_int_equal(digcl_param_table_build(&cfg, &table), 0);
        if (table.total != total || table.trainable != trainable)
            fail_msg("%s: total %zu trainable %zu, expected %llu %llu", name, table.total,
                     table.trainable, total, trainable);
        digcl_param_table_free(&table);
        checked++;
    }
    fclose(f);
    assert_int_equal(checked, 12);
}

/* Compares the table with "name<TAB>[d0, d1, ...]" lines, in order. */
static void check_state_dict(const char *preset_name, const char *file) {
    digcl_model_config cfg = preset(preset_name);
    digcl_param_table table;
    assert_int_equal(digcl_param_table_build(&cfg, &table), 0);
    FILE *f = open_reference(file);
    char line[512];
    size_t i = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = '\0';
        if (!line[0]) continue;
        assert_true(i < table.count);
        const digcl_param_info *p = &table.params[i++];
        char expected[512];
        int used = snprintf(expected, sizeof expected, "%s\t[", p->name);
        for (int d = 0; d < p->rank; d++)
            used += snprintf(expected + used, sizeof expected - (size_t)used, d ? ", %lld" : "%lld",
                             (long long)p->shape[d]);
        snprintf(expected + used, sizeof expected - (size_t)used, "]");
        if (strcmp(line, expected) != 0)
            fail_msg("%s entry %zu: table has \"%s\", upstream \"%s\"", preset_name, i - 1,
                     expected, line);
    }
    fclose(f);
    assert_int_equal(i, table.count);
    digcl_param_table_free(&table);
}

static void test_state_dict_names_and_shapes(void **state) {
    (void)state;
    check_state_dict("DiG-S/2", "dig_s2_state_dict.txt");
    check_state_dict("DiT-S/2", "dit_s2_state_dict.txt");
}

static void test_derived_sizes(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int mlp;
        int heads;
    } dig[] = {
        {"DiG-S/2", 1024, 6},
        {"DiG-B/2", 2048, 12},
        {"DiG-L/2", 2816, 16},
        {"DiG-XL/2", 3072, 18},
    };
    for (size_t i = 0; i < 4; i++) {
        digcl_model_config c = preset(dig[i].name);
        assert_int_equal(c.mlp_hidden, dig[i].mlp);
        assert_int_equal(c.num_heads, dig[i].heads);
        assert_int_equal(c.head_qk_dim, 32);
        assert_int_equal(c.head_v_dim, 64);
        assert_int_equal(c.tokens, 256);
        assert_int_equal(c.out_channels, 8);
    }
    digcl_model_config dit = preset("DiT-XL/8");
    assert_int_equal(dit.num_heads, 16);
    assert_int_equal(dit.mlp_hidden, 4 * 1152);
    assert_int_equal(dit.tokens, 16);
    assert_int_equal(dit.head_qk_dim, 72);
    digcl_model_config skip = preset("DiG-S/2-skip");
    assert_int_equal(skip.n_skip, 5);
    assert_int_equal(preset("DiG-XL/2-skip").n_skip, 13);
    assert_false(skip.skip_zero_init);
    assert_true(preset("DiG-S/2-skipzero").skip_zero_init);
}

static void test_presets_and_aliases(void **state) {
    (void)state;
    const char *const *names = digcl_model_config_preset_names();
    int n = 0;
    for (; names[n]; n++) {
        digcl_model_config c = preset(names[n]);
        digcl_param_table table;
        assert_int_equal(digcl_param_table_build(&c, &table), 0);
        assert_true(table.total > table.trainable);
        digcl_param_table_free(&table);
    }
    assert_int_equal(n, 40); /* 36 DiG/DiT + 4 U-DiG */
    digcl_model_config a = preset("DiG-XL/2-bid-layer-dwconv-qdir-head18-skip");
    digcl_model_config b = preset("DiG-XL/2-skip");
    assert_memory_equal(&a, &b, sizeof a);
    a = preset("DiG-S/2-bid-layer-dwconv-qdir");
    b = preset("DiG-S/2");
    assert_memory_equal(&a, &b, sizeof a);
    digcl_model_config c;
    digcl_config_error err;
    static const char *const bad[] = {"DiG-M/2",       "DiG-S/3", "DiT-S/2-skip",
                                      "dig-s/2",       "DiG-S",   "DiG-XL/2-bid-layer-dwconv-qdir",
                                      "DiG-S/2-skipx", ""};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(digcl_model_config_preset(bad[i], &c, &err), -1);
        assert_non_null(strstr(err.message, "unknown model preset"));
    }
}

static void test_json_round_trip(void **state) {
    (void)state;
    digcl_model_config a = preset("DiG-L/4-skipzero"), b;
    digcl_config_error err;
    a.input_size = 64;
    a.learn_sigma = 0;
    assert_int_equal(digcl_model_config_finish(&a, &err), 0);
    char *json = digcl_model_config_to_json(&a);
    assert_non_null(json);
    assert_non_null(strstr(json, "\"arch\":\"dig\""));
    assert_non_null(strstr(json, "\"learn_sigma\":false"));
    if (digcl_model_config_from_json(json, &b, &err) != 0) fail_msg("%s", err.message);
    assert_memory_equal(&a, &b, sizeof a);
    free(json);
    json = digcl_model_config_to_json(&(digcl_model_config){0});
    free(json);
}

static void expect_json_error(const char *json, const char *needle) {
    digcl_model_config c;
    digcl_config_error err;
    assert_int_equal(digcl_model_config_from_json(json, &c, &err), -1);
    if (!strstr(err.message, needle)) fail_msg("\"%s\" lacks \"%s\"", err.message, needle);
}

#define VALID_REST                                                          \
    "\"num_heads\":2,\"patch_size\":2,\"input_size\":16,\"in_channels\":4," \
    "\"num_classes\":10,\"learn_sigma\":true,\"skip\":false}"

static void test_json_rejections(void **state) {
    (void)state;
    expect_json_error("[1]", "not a JSON object");
    expect_json_error("{\"arch\":\"dig\"", "not a JSON object");
    expect_json_error("{\"arch\":\"vit\",\"depth\":4,\"hidden_size\":128," VALID_REST,
                      "\"arch\" must be \"dig\", \"dit\" or \"udig\"");
    expect_json_error("{\"arch\":\"dig\",\"hidden_size\":128," VALID_REST, "missing \"depth\"");
    expect_json_error("{\"arch\":\"dig\",\"depth\":4.5,\"hidden_size\":128," VALID_REST,
                      "\"depth\" must be an integer");
    expect_json_error("{\"arch\":\"dig\",\"depth\":\"4\",\"hidden_size\":128," VALID_REST,
                      "\"depth\" must be an integer");
    expect_json_error("{\"arch\":\"dig\",\"depth\":4,\"hidden_size\":128,\"x\":1," VALID_REST,
                      "unknown key \"x\"");
    expect_json_error("{\"arch\":\"dig\",\"depth\":4,\"hidden_size\":130," VALID_REST,
                      "does not split into 2 heads");
    expect_json_error("{\"arch\":\"dig\",\"depth\":0,\"hidden_size\":128," VALID_REST,
                      "depth must be positive");
    expect_json_error("{\"arch\":\"dig\",\"depth\":4,\"hidden_size\":128,\"num_heads\":2,"
                      "\"patch_size\":3,\"input_size\":16,\"in_channels\":4,\"num_classes\":10,"
                      "\"learn_sigma\":true,\"skip\":false}",
                      "not a multiple of patch_size");
    expect_json_error("{\"arch\":\"dig\",\"depth\":4,\"hidden_size\":128,\"num_heads\":2,"
                      "\"patch_size\":2,\"input_size\":16,\"in_channels\":4,\"num_classes\":10,"
                      "\"learn_sigma\":1,\"skip\":false}",
                      "\"learn_sigma\" must be true or false");
    expect_json_error("{\"arch\":\"dit\",\"depth\":4,\"hidden_size\":128,\"num_heads\":2,"
                      "\"patch_size\":2,\"input_size\":16,\"in_channels\":4,\"num_classes\":10,"
                      "\"learn_sigma\":true,\"skip\":true}",
                      "only for DiG");
}

static void test_tiny_fixture_config(void **state) {
    (void)state;
    /* the config of tests/reference fixture "dig_a" */
    digcl_model_config c;
    digcl_config_error err;
    assert_int_equal(
        digcl_model_config_from_json(
            "{\"arch\":\"dig\",\"depth\":4,\"hidden_size\":128,\"num_heads\":2,\"patch_size\":2,"
            "\"input_size\":16,\"in_channels\":4,\"num_classes\":10,\"learn_sigma\":true,"
            "\"skip\":false}",
            &c, &err),
        0);
    assert_int_equal(c.head_qk_dim, 32);
    assert_int_equal(c.head_v_dim, 64);
    assert_int_equal(c.mlp_hidden, 512); /* int(128*8/3) = 341 -> 512 */
    assert_int_equal(c.tokens, 64);
    digcl_param_table t;
    assert_int_equal(digcl_param_table_build(&c, &t), 0);
    const digcl_param_info *pos = digcl_param_table_find(&t, "pos_embed");
    assert_non_null(pos);
    assert_false(pos->trainable);
    assert_int_equal(pos->init, DIGCL_INIT_SINCOS_2D);
    const digcl_param_info *dw = digcl_param_table_find(&t, "blocks.3.dw_conv.weight");
    assert_non_null(dw);
    assert_int_equal(dw->init, DIGCL_INIT_DW_IDENTITY);
    assert_string_equal(digcl_param_init_name(dw->init), "dw_identity");
    const digcl_param_info *last = &t.params[t.count - 1];
    assert_int_equal(last->offset + last->numel, t.total);
    assert_null(digcl_param_table_find(&t, "blocks.4.dw_conv.weight"));
    digcl_param_table_free(&t);
}

static digcl_safetensors *open_fixture(const char *fixture, const char *file) {
    char path[512];
    digcl_safetensors *st;
    digcl_st_error err;
    snprintf(path, sizeof path, "tests/reference/fixtures_committed/%s/%s", fixture, file);
    if (digcl_st_open(path, &st, &err) != 0) fail_msg("%s", err.message);
    return st;
}

/* weights: every table entry with its shape, nothing else. */
static void check_fixture_weights(const digcl_safetensors *w, const digcl_param_table *table) {
    const char **names = calloc(table->count, sizeof *names);
    digcl_st_error err;
    assert_non_null(names);
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        names[i] = p->name;
        if (digcl_st_expect(w, p->name, p->rank, p->shape, NULL, &err) != 0)
            fail_msg("%s", err.message);
    }
    if (digcl_st_check_no_unexpected(w, names, table->count, &err) != 0)
        fail_msg("%s", err.message);
    free(names);
}

/* inputs x/t/y/dout and expected out, grad.x, grad.<trainable>. */
static void check_fixture_io(const digcl_safetensors *in, const digcl_safetensors *ex,
                             const digcl_model_config *c, const digcl_param_table *table) {
    digcl_st_error err;
    int64_t n = 2, side = c->input_size;
    int64_t x_shape[4] = {n, c->in_channels, side, side};
    int64_t out_shape[4] = {n, c->out_channels, side, side};
    const digcl_st_tensor *y;
    int64_t labels[2];
    if (digcl_st_expect(in, "x", 4, x_shape, NULL, &err) ||
        digcl_st_expect(in, "t", 1, &n, NULL, &err) || digcl_st_expect(in, "y", 1, &n, &y, &err) ||
        digcl_st_expect(in, "dout", 4, out_shape, NULL, &err) ||
        digcl_st_expect(ex, "out", 4, out_shape, NULL, &err) ||
        digcl_st_expect(ex, "grad.x", 4, x_shape, NULL, &err))
        fail_msg("%s", err.message);
    assert_int_equal(digcl_st_read_i64(in, y, labels, &err), 0);
    assert_int_equal(labels[1], c->num_classes); /* the null class */
    size_t n_grads = 0;
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        char name[DIGCL_PARAM_NAME_SIZE + 8];
        snprintf(name, sizeof name, "grad.%s", p->name);
        if (!p->trainable) {
            assert_null(digcl_st_find(ex, name));
            continue;
        }
        if (digcl_st_expect(ex, name, p->rank, p->shape, NULL, &err) != 0)
            fail_msg("%s", err.message);
        n_grads++;
    }
    assert_int_equal(ex->n_tensors, n_grads + 2);
}

static void test_committed_fixtures_match_tables(void **state) {
    (void)state;
    static const char *const fixtures[] = {"dig_a_16x16",   "dig_b_12x12", "dig_c_skip",
                                           "dit_d_16x16",   "dig_e_p4_c3", "udig_a_16x16_d5",
                                           "udig_b_8x8_d10"};
    for (size_t f = 0; f < sizeof fixtures / sizeof fixtures[0]; f++) {
        digcl_safetensors *w = open_fixture(fixtures[f], "weights.safetensors");
        digcl_safetensors *in = open_fixture(fixtures[f], "inputs.safetensors");
        digcl_safetensors *ex = open_fixture(fixtures[f], "expected.safetensors");
        digcl_model_config c;
        digcl_config_error err;
        const char *json = digcl_st_metadata(w, DIGCL_CONFIG_METADATA_KEY);
        assert_non_null(json);
        if (digcl_model_config_from_json(json, &c, &err) != 0)
            fail_msg("%s: %s", fixtures[f], err.message);
        digcl_param_table table;
        assert_int_equal(digcl_param_table_build(&c, &table), 0);
        check_fixture_weights(w, &table);
        check_fixture_io(in, ex, &c, &table);
        digcl_param_table_free(&table);
        digcl_st_close(w);
        digcl_st_close(in);
        digcl_st_close(ex);
    }
}

/* ---- U-DiG (docs/MODEL.md "U-DiG") ---- */

/* Counts from tests/reference/udig_reference.py (param_count, len(param_shapes)). */
static void test_udig_presets(void **state) {
    (void)state;
    static const struct {
        const char *name;
        int depth, hidden, heads;
        size_t total, trainable, tensors;
    } rows[] = {
        {"U-DiG-S", 15, 384, 6, 44325896, 43932680, 249},
        {"U-DiG-B", 15, 768, 12, 175060040, 174273608, 249},
        {"U-DiG-L", 25, 1024, 16, 505933896, 504885320, 399},
        {"U-DiG-XL", 30, 1152, 18, 751222280, 750042632, 474},
    };
    for (size_t r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        digcl_model_config c = preset(rows[r].name);
        assert_int_equal(c.arch, DIGCL_ARCH_UDIG);
        assert_int_equal(c.depth, rows[r].depth);
        assert_int_equal(c.hidden_size, rows[r].hidden);
        assert_int_equal(c.num_heads, rows[r].heads);
        assert_int_equal(c.patch_size, 1);
        assert_int_equal(c.head_qk_dim, 32);
        assert_int_equal(c.head_v_dim, 64);
        assert_int_equal(c.mlp_hidden, preset(r == 3   ? "DiG-XL/2"
                                              : r == 2 ? "DiG-L/2"
                                              : r      ? "DiG-B/2"
                                                       : "DiG-S/2")
                                           .mlp_hidden);
        digcl_param_table table;
        assert_int_equal(digcl_param_table_build(&c, &table), 0);
        assert_int_equal(table.total, rows[r].total);
        assert_int_equal(table.trainable, rows[r].trainable);
        assert_int_equal(table.count, rows[r].tensors);
        digcl_param_table_free(&table);
    }
}

static void test_udig_geometry_and_table(void **state) {
    (void)state;
    digcl_model_config c = preset("U-DiG-S");
    const int grids[5] = {32, 16, 8, 16, 32};
    assert_int_equal(digcl_udig_stage_depth(&c), 3);
    for (int b = 0; b < c.depth; b++) {
        assert_int_equal(digcl_model_block_stage(&c, b), b / 3);
        assert_int_equal(digcl_model_block_grid(&c, b), grids[b / 3]);
    }
    digcl_model_config plain = preset("DiG-S/2");
    assert_int_equal(digcl_udig_stage_depth(&plain), 0);
    assert_int_equal(digcl_model_block_grid(&plain, 7), 16);
    assert_true(digcl_arch_has_dig_blocks(DIGCL_ARCH_UDIG) &&
                !digcl_arch_has_dig_blocks(DIGCL_ARCH_DIT));
    digcl_param_table t;
    assert_int_equal(digcl_param_table_build(&c, &t), 0);
    static const struct {
        const char *name;
        int64_t rows, cols;
    } linears[] = {
        {"downsample.0.weight", 384, 1536}, {"downsample.1.weight", 384, 1536},
        {"upsample.0.weight", 1536, 384},   {"upsample.1.weight", 1536, 384},
        {"skip_fuse.0.weight", 384, 768},   {"skip_fuse.1.weight", 384, 768},
    };
    for (size_t i = 0; i < sizeof linears / sizeof linears[0]; i++) {
        const digcl_param_info *p = digcl_param_table_find(&t, linears[i].name);
        assert_non_null(p);
        assert_int_equal(p->shape[0], linears[i].rows);
        assert_int_equal(p->shape[1], linears[i].cols);
        assert_int_equal(p->init, DIGCL_INIT_XAVIER);
    }
    assert_int_equal(digcl_param_table_find(&t, "upsample.0.bias")->init, DIGCL_INIT_ZERO);
    assert_int_equal(digcl_param_table_find(&t, "x_embedder.proj.weight")->shape[2], 1);
    assert_int_equal(digcl_param_table_find(&t, "pos_embed")->shape[1], 1024);
    assert_int_equal(digcl_param_table_find(&t, "final_layer.linear.weight")->shape[0], 8);
    assert_non_null(digcl_param_table_find(&t, "blocks.14.dw_conv.weight"));
    assert_null(digcl_param_table_find(&t, "blocks.15.dw_conv.weight"));
    digcl_param_table_free(&t);
}

static void expect_udig_rejected(int depth, int patch, int input, int skip, const char *needle) {
    digcl_model_config c = preset("U-DiG-S");
    c.depth = depth, c.patch_size = patch, c.input_size = input, c.skip = skip;
    digcl_config_error err;
    assert_int_equal(digcl_model_config_finish(&c, &err), -1);
    if (!strstr(err.message, needle)) fail_msg("\"%s\" lacks \"%s\"", err.message, needle);
}

static void test_udig_json_and_rejections(void **state) {
    (void)state;
    digcl_model_config c = preset("U-DiG-B"), back;
    char *json = digcl_model_config_to_json(&c);
    assert_non_null(strstr(json, "\"arch\":\"udig\""));
    digcl_config_error err;
    if (digcl_model_config_from_json(json, &back, &err) != 0) fail_msg("%s", err.message);
    assert_memory_equal(&c, &back, sizeof c);
    free(json);
    assert_string_equal(digcl_arch_name(DIGCL_ARCH_UDIG), "udig");
    expect_udig_rejected(12, 1, 32, 0, "not a multiple of 5");
    expect_udig_rejected(15, 2, 32, 0, "patch_size 1");
    expect_udig_rejected(15, 1, 30, 0, "not a multiple of 4");
    expect_udig_rejected(15, 1, 32, 1, "skip");
    assert_int_equal(digcl_model_config_preset("U-DiG-XXL", &c, &err), -1);
    assert_int_equal(digcl_model_config_preset("U-DiG-S/2", &c, &err), -1);
}

/* `other` (the default config `base` with one runtime option changed, finished) writes the
 * same dig.config JSON as `base`, without `key`; *back is what that JSON reads back as. */
static void assert_json_leaves_out(const digcl_model_config *base, digcl_model_config *other,
                                   const char *key, digcl_model_config *back) {
    digcl_config_error err;
    assert_int_equal(digcl_model_config_finish(other, &err), 0);
    char *a = digcl_model_config_to_json(base), *b = digcl_model_config_to_json(other);
    assert_string_equal(a, b);
    assert_null(strstr(b, key));
    if (digcl_model_config_from_json(b, back, &err) != 0) fail_msg("%s", err.message);
    free(a), free(b);
}

/* The attention mode is a runtime option of DiT: dig.config leaves it out (a
 * naive config writes the same JSON as a tiled one and reads back tiled), and
 * DiG and U-DiG refuse naive. */
static void test_attention_mode(void **state) {
    (void)state;
    digcl_model_config tiled = preset("DiT-S/2"), naive = tiled, back;
    digcl_config_error err;
    naive.attention = DIGCL_ATTENTION_NAIVE;
    assert_json_leaves_out(&tiled, &naive, "attention", &back);
    assert_int_equal(back.attention, DIGCL_ATTENTION_TILED);
    const char *refusing[] = {"DiG-S/2", "U-DiG-S"};
    for (int i = 0; i < 2; i++) {
        digcl_model_config c = preset(refusing[i]);
        c.attention = DIGCL_ATTENTION_NAIVE;
        assert_int_equal(digcl_model_config_finish(&c, &err), -1);
        if (!strstr(err.message, "attention \"naive\" exists only for DiT"))
            fail_msg("%s: \"%s\"", refusing[i], err.message);
    }
    tiled.attention = (digcl_attention_mode)7;
    assert_int_equal(digcl_model_config_finish(&tiled, &err), -1);
    assert_non_null(strstr(err.message, "tiled or naive"));
    digcl_attention_mode mode = DIGCL_ATTENTION_TILED;
    assert_int_equal(digcl_attention_mode_parse("naive", &mode), 0);
    assert_int_equal(mode, DIGCL_ATTENTION_NAIVE);
    assert_string_equal(digcl_attention_mode_name(mode), "naive");
    assert_int_equal(digcl_attention_mode_parse("flash", &mode), -1);
}

/* The activation mode is a runtime option of training: dig.config leaves it out (a kept
 * config writes the same JSON and reads back recomputing), every architecture takes both,
 * and other values are refused naming the two. */
static void test_activation_mode(void **state) {
    (void)state;
    const char *presets[] = {"DiG-S/2", "DiT-S/2", "U-DiG-S"};
    for (int i = 0; i < 3; i++) {
        digcl_model_config lean = preset(presets[i]), kept = lean, back;
        digcl_config_error err;
        kept.activations = DIGCL_ACTIVATIONS_KEEP;
        assert_json_leaves_out(&lean, &kept, "activations", &back);
        assert_int_equal(back.activations, DIGCL_ACTIVATIONS_RECOMPUTE);
        kept.activations = (digcl_activation_mode)5;
        assert_int_equal(digcl_model_config_finish(&kept, &err), -1);
        assert_non_null(strstr(err.message, "recompute or keep"));
    }
    digcl_activation_mode mode = DIGCL_ACTIVATIONS_RECOMPUTE;
    assert_int_equal(digcl_activation_mode_parse("keep", &mode), 0);
    assert_int_equal(mode, DIGCL_ACTIVATIONS_KEEP);
    assert_string_equal(digcl_activation_mode_name(mode), "keep");
    assert_string_equal(digcl_activation_mode_name(DIGCL_ACTIVATIONS_RECOMPUTE), "recompute");
    assert_int_equal(digcl_activation_mode_parse("all", &mode), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_param_counts),
        cmocka_unit_test(test_state_dict_names_and_shapes),
        cmocka_unit_test(test_derived_sizes),
        cmocka_unit_test(test_presets_and_aliases),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_json_rejections),
        cmocka_unit_test(test_tiny_fixture_config),
        cmocka_unit_test(test_committed_fixtures_match_tables),
        cmocka_unit_test(test_udig_presets),
        cmocka_unit_test(test_udig_geometry_and_table),
        cmocka_unit_test(test_udig_json_and_rejections),
        cmocka_unit_test(test_attention_mode),
        cmocka_unit_test(test_activation_mode),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
