/* Tests of whole-model checkpoints (src/io/checkpoint.c) and of the
 * `digcl forward` command built on them:
 * - save/load round trip of tiny randomised DiG (with long skips) and DiT models,
 *   dig.config included;
 * - F16 and BF16 checkpoints load (values exactly representable in both);
 * - each error path names the file and the tensor (and both shapes): missing,
 *   unexpected, misshaped, wrongly typed tensor, missing dig.config, missing
 *   file; a failed load leaves the model unchanged;
 * - `digcl forward` (run through the real binary when it is built): out,
 *   grad.x and every grad.<name> equal an in-process forward/backward, and
 *   bad inputs fail with messages naming the tensor and the value; on the
 *   committed reference fixtures it reproduces expected.safetensors.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digcl/checkpoint.h"
#include "digcl/gemm.h"
#include "digcl/model.h"
#include "digcl/safetensors.h"
#include "test_util.h"

/* ------------------------------------------------------------- helpers */

/* DiG: 4 blocks with long skips (block 3 has skip_linear); DiT: 2 blocks. */
static digcl_model_config tiny_config(digcl_arch arch) {
    digcl_model_config c = {0};
    c.arch = arch;
    c.depth = arch == DIGCL_ARCH_DIG ? 4 : 2;
    c.hidden_size = arch == DIGCL_ARCH_DIG ? 64 : 32;
    c.num_heads = 2;
    c.patch_size = 2;
    c.input_size = 8;
    c.in_channels = 4;
    c.num_classes = 10;
    c.learn_sigma = arch == DIGCL_ARCH_DIG;
    c.skip = arch == DIGCL_ARCH_DIG;
    digcl_config_error err;
    if (digcl_model_config_finish(&c, &err) != 0) fail_msg("%s", err.message);
    return c;
}

static digcl_model *random_model(digcl_arch arch, uint64_t seed) {
    digcl_model_config c = tiny_config(arch);
    digcl_model *m = digcl_model_create(test_context(), &c);
    digcl_model_randomize(m, seed, 0.5f);
    return m;
}

static size_t packed_count(const digcl_param_table *t) {
    size_t n = 0;
    for (size_t i = 0; i < t->count; i++) n += t->params[i].numel;
    return n;
}

/* Every parameter, packed in table order (malloc'ed). */
static float *read_all(const digcl_model *m) {
    const digcl_param_table *t = digcl_model_param_table(m);
    float *host = malloc(packed_count(t) * sizeof *host);
    assert_non_null(host);
    for (size_t i = 0, off = 0; i < t->count; off += t->params[i].numel, i++)
        digcl_model_read_param(m, i, host + off);
    return host;
}

static void write_all(digcl_model *m, const float *host) {
    const digcl_param_table *t = digcl_model_param_table(m);
    for (size_t i = 0, off = 0; i < t->count; off += t->params[i].numel, i++)
        digcl_model_write_param(m, i, host + off);
}

static void assert_same_params(const digcl_model *a, const digcl_model *b) {
    float *x = read_all(a), *y = read_all(b);
    size_t n = packed_count(digcl_model_param_table(a));
    assert_memory_equal(x, y, n * sizeof *x);
    free(x);
    free(y);
}

static void expect_contains(const char *message, const char *needle) {
    if (!strstr(message, needle)) fail_msg("message \"%s\" lacks \"%s\"", message, needle);
}

/* A broken variant of a model's checkpoint, written with the safetensors writer. */
typedef struct variant {
    const char *drop;    /* leave this tensor out */
    const char *reshape; /* write this one flattened to rank 1 */
    const char *as_i64;  /* write this one as I64 */
    const char *extra;   /* add an unexpected [3] tensor */
    int no_config;       /* leave dig.config out */
} variant;

static void add_param(digcl_st_writer *w, const digcl_param_info *p, const float *data,
                      const variant *v, int64_t *scratch) {
    digcl_st_error err;
    int64_t flat[1] = {(int64_t)p->numel};
    int status;
    if (v->as_i64 && strcmp(p->name, v->as_i64) == 0) {
        for (size_t k = 0; k < p->numel; k++) scratch[k] = (int64_t)data[k];
        status = digcl_st_writer_add_i64(w, p->name, p->rank, p->shape, scratch, &err);
    } else if (v->reshape && strcmp(p->name, v->reshape) == 0) {
        status = digcl_st_writer_add_f32(w, p->name, 1, flat, data, &err);
    } else {
        status = digcl_st_writer_add_f32(w, p->name, p->rank, p->shape, data, &err);
    }
    if (status != 0) fail_msg("%s", err.message);
}

static void write_variant(const digcl_model *m, const char *path, const variant *v) {
    const digcl_param_table *t = digcl_model_param_table(m);
    float *host = read_all(m);
    int64_t *scratch = malloc(packed_count(t) * sizeof *scratch);
    static const float extra[3] = {1, 2, 3};
    int64_t extra_shape[1] = {3};
    digcl_st_error err;
    digcl_st_writer *w = digcl_st_writer_new();
    for (size_t i = 0, off = 0; i < t->count; off += t->params[i].numel, i++)
        if (!v->drop || strcmp(t->params[i].name, v->drop) != 0)
            add_param(w, &t->params[i], host + off, v, scratch);
    if (v->extra)
        assert_int_equal(digcl_st_writer_add_f32(w, v->extra, 1, extra_shape, extra, &err), 0);
    char *json = digcl_model_config_to_json(digcl_model_get_config(m));
    if (!v->no_config)
        assert_int_equal(digcl_st_writer_set_metadata(w, DIGCL_CONFIG_METADATA_KEY, json, &err), 0);
    if (digcl_st_writer_write(w, path, &err) != 0) fail_msg("%s", err.message);
    digcl_st_writer_free(w);
    free(json);
    free(scratch);
    free(host);
}

/* ------------------------------------------------------------- round trip */

static void round_trip(digcl_arch arch) {
    char path[512];
    test_temp_path(path, sizeof path,
                   arch == DIGCL_ARCH_DIG ? "dig.safetensors" : "dit.safetensors");
    digcl_model *a = random_model(arch, 11), *b = random_model(arch, 12);
    char message[1024] = "";
    if (digcl_checkpoint_save(a, path, message, sizeof message) != 0) fail_msg("%s", message);
    if (digcl_checkpoint_load(b, path, message, sizeof message) != 0) fail_msg("%s", message);
    assert_same_params(a, b);

    digcl_model_config read;
    assert_int_equal(digcl_checkpoint_read_config(path, &read, message, sizeof message), 0);
    const digcl_model_config *want = digcl_model_get_config(a);
    assert_memory_equal(&read, want, sizeof read);

    digcl_safetensors *st;
    digcl_st_error err;
    assert_int_equal(digcl_st_open(path, &st, &err), 0);
    assert_int_equal(st->n_tensors, digcl_model_param_table(a)->count);
    for (size_t i = 0; i < st->n_tensors; i++) assert_int_equal(st->tensors[i].dtype, DIGCL_ST_F32);
    digcl_st_close(st);
    digcl_model_release(a);
    digcl_model_release(b);
}

static void test_round_trip_dig(void **state) {
    (void)state;
    round_trip(DIGCL_ARCH_DIG);
}

static void test_round_trip_dit(void **state) {
    (void)state;
    round_trip(DIGCL_ARCH_DIT);
}

/* ------------------------------------------------------------- F16 / BF16 */

static uint16_t to_half(float x) { /* exact for the normal values used here */
    uint32_t bits;
    memcpy(&bits, &x, 4);
    if ((bits & 0x7fffffffu) == 0) return (uint16_t)(bits >> 16);
    uint32_t sign = bits >> 31, exponent = ((bits >> 23) & 0xff) - 127 + 15,
             mantissa = (bits >> 13) & 0x3ff;
    return (uint16_t)(sign << 15 | exponent << 10 | mantissa);
}

static uint16_t to_bfloat(float x) {
    uint32_t bits;
    memcpy(&bits, &x, 4);
    return (uint16_t)(bits >> 16);
}

/* "{...}" with every '"' escaped, for embedding dig.config in the header. */
static void escape_json(const char *in, char *out, size_t size) {
    size_t k = 0;
    for (; *in && k + 2 < size; in++) {
        if (*in == '"') out[k++] = '\\';
        out[k++] = *in;
    }
    out[k] = '\0';
}

static size_t append_header_entry(char *h, size_t pos, size_t cap, const digcl_param_info *p,
                                  const char *dtype, size_t begin) {
    pos += (size_t)snprintf(h + pos, cap - pos, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", p->name,
                            dtype);
    for (int d = 0; d < p->rank; d++)
        pos += (size_t)snprintf(h + pos, cap - pos, "%s%lld", d ? "," : "", (long long)p->shape[d]);
    pos += (size_t)snprintf(h + pos, cap - pos, "],\"data_offsets\":[%zu,%zu]}", begin,
                            begin + 2 * p->numel);
    return pos;
}

/* The model's parameters (values) as a 16-bit-float safetensors file. */
static void write_16bit(const digcl_model *m, const float *values, const char *path, int bfloat) {
    const digcl_param_table *t = digcl_model_param_table(m);
    size_t n = packed_count(t), cap = 1024 + 256 * t->count, pos = 0;
    char *header = malloc(cap), escaped[1024];
    uint16_t *data = malloc(n * sizeof *data);
    char *json = digcl_model_config_to_json(digcl_model_get_config(m));
    escape_json(json, escaped, sizeof escaped);
    pos += (size_t)snprintf(header, cap, "{\"__metadata__\":{\"dig.config\":\"%s\"}", escaped);
    for (size_t i = 0, off = 0; i < t->count; off += t->params[i].numel, i++)
        pos =
            append_header_entry(header, pos, cap, &t->params[i], bfloat ? "BF16" : "F16", 2 * off);
    pos += (size_t)snprintf(header + pos, cap - pos, "}");
    assert_true(pos < cap);
    for (size_t k = 0; k < n; k++) data[k] = bfloat ? to_bfloat(values[k]) : to_half(values[k]);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    uint8_t length[8];
    for (int i = 0; i < 8; i++) length[i] = (uint8_t)((uint64_t)pos >> (8 * i));
    assert_int_equal(fwrite(length, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, pos, f),
                     pos); /* little-endian host assumed, as the reader */
    assert_int_equal(fwrite(data, 2, n, f), n);
    fclose(f);
    free(json);
    free(data);
    free(header);
}

static void load_16bit(int bfloat) {
    char path[512];
    test_temp_path(path, sizeof path, bfloat ? "bf16.safetensors" : "f16.safetensors");
    digcl_model *a = random_model(DIGCL_ARCH_DIG, 21), *b = random_model(DIGCL_ARCH_DIG, 22);
    size_t n = packed_count(digcl_model_param_table(a));
    float *values = malloc(n * sizeof *values);
    test_rng rng = test_rng_seeded(bfloat ? 5 : 6);
    for (size_t k = 0; k < n; k++)
        values[k] = (float)((int)(test_uniform(&rng) * 255.0) - 127) / 64.0f;
    write_all(a, values); /* k/64, |k| <= 127: exact in F16 and BF16 */
    write_16bit(a, values, path, bfloat);
    char message[1024] = "";
    if (digcl_checkpoint_load(b, path, message, sizeof message) != 0) fail_msg("%s", message);
    assert_same_params(a, b);
    free(values);
    digcl_model_release(a);
    digcl_model_release(b);
}

static void test_load_f16(void **state) {
    (void)state;
    load_16bit(0);
}

static void test_load_bf16(void **state) {
    (void)state;
    load_16bit(1);
}

/* ------------------------------------------------------------- errors */

/* Loads a broken variant into a fresh model, expects failure with every
 * needle in the message, and checks the model was left unchanged. */
static void expect_load_error(const variant *v, const char *file, const char *const *needles) {
    char path[512], message[1024] = "";
    test_temp_path(path, sizeof path, file);
    digcl_model *source = random_model(DIGCL_ARCH_DIG, 31),
                *target = random_model(DIGCL_ARCH_DIG, 32);
    float *before = read_all(target);
    write_variant(source, path, v);
    assert_int_equal(digcl_checkpoint_load(target, path, message, sizeof message), -1);
    expect_contains(message, path);
    for (int k = 0; needles[k]; k++) expect_contains(message, needles[k]);
    float *after = read_all(target);
    assert_memory_equal(before, after,
                        packed_count(digcl_model_param_table(target)) * sizeof *before);
    free(before);
    free(after);
    digcl_model_release(source);
    digcl_model_release(target);
}

static void test_missing_tensor(void **state) {
    (void)state;
    variant v = {.drop = "blocks.2.mlp.down_proj.weight"};
    const char *needles[] = {"missing tensor 'blocks.2.mlp.down_proj.weight'", "[64, 256]", NULL};
    expect_load_error(&v, "missing.safetensors", needles);
}

static void test_unexpected_tensor(void **state) {
    (void)state;
    variant v = {.extra = "blocks.9.attn.q_proj.weight"};
    const char *needles[] = {"unexpected tensor 'blocks.9.attn.q_proj.weight'", "[3]", NULL};
    expect_load_error(&v, "unexpected.safetensors", needles);
}

static void test_wrong_shape(void **state) {
    (void)state;
    variant v = {.reshape = "final_layer.linear.weight"}; /* [p*p*2C, D] = [32, 64] */
    const char *needles[] = {"tensor 'final_layer.linear.weight'", "[2048]", "[32, 64]", NULL};
    expect_load_error(&v, "shape.safetensors", needles);
}

static void test_wrong_dtype(void **state) {
    (void)state;
    variant v = {.as_i64 = "x_embedder.proj.bias"};
    const char *needles[] = {"tensor 'x_embedder.proj.bias'", "I64", "F32, F16, BF16", NULL};
    expect_load_error(&v, "dtype.safetensors", needles);
}

static void test_missing_config(void **state) {
    (void)state;
    char path[512], message[1024] = "";
    test_temp_path(path, sizeof path, "noconfig.safetensors");
    digcl_model *m = random_model(DIGCL_ARCH_DIT, 41);
    variant v = {.no_config = 1};
    write_variant(m, path, &v);
    digcl_model_config c;
    assert_int_equal(digcl_checkpoint_read_config(path, &c, message, sizeof message),
                     DIGCL_CHECKPOINT_NO_CONFIG);
    expect_contains(message, path);
    expect_contains(message, "dig.config");
    expect_contains(message, "--model");
    /* the tensors alone still load into a model described by other means */
    if (digcl_checkpoint_load(m, path, message, sizeof message) != 0) fail_msg("%s", message);
    digcl_model_release(m);
}

static void test_unreadable_files(void **state) {
    (void)state;
    char path[512], message[1024] = "";
    digcl_model_config c;
    test_temp_path(path, sizeof path, "does-not-exist.safetensors");
    assert_int_equal(digcl_checkpoint_read_config(path, &c, message, sizeof message), -1);
    expect_contains(message, path);
    digcl_model *m = random_model(DIGCL_ARCH_DIT, 42);
    assert_int_equal(digcl_checkpoint_load(m, path, message, sizeof message), -1);
    expect_contains(message, path);
    test_temp_path(path, sizeof path, "garbage.safetensors");
    FILE *f = fopen(path, "wb");
    fputs("\x05\x00\x00\x00\x00\x00\x00\x00[1,2]", f);
    fclose(f);
    assert_int_equal(digcl_checkpoint_read_config(path, &c, message, sizeof message), -1);
    expect_contains(message, path);
    assert_int_equal(digcl_checkpoint_load(m, path, message, sizeof message), -1);
    expect_contains(message, path);
    digcl_model_release(m);
}

/* ------------------------------------------------------------- digcl forward */

static const char *digcl_binary(char *buf, size_t size) {
    const char *dir = getenv("DIGCL_TEST_BINARY_DIR");
    snprintf(buf, size, "%s/bin/digcl", dir ? dir : "build");
    return access(buf, X_OK) == 0 ? buf : NULL;
}

/* The CLI restarts itself on wider OpenBLAS kernels when OpenBLAS fell back to
 * narrow ones (apps/digcl.c): pin it to this process's kernels, so that its
 * output is compared with the same arithmetic. */
static void same_blas_kernels_for_children(void) {
    const char *core = digcl_openblas_core();
    if (core) setenv("OPENBLAS_CORETYPE", core, 1);
}

/* Runs `digcl forward` on files in test_temp_dir; returns the exit code and the
 * combined output in out. */
static int run_forward(const char *inputs, const char *output, char *out, size_t size) {
    char binary[512], command[2048];
    if (!digcl_binary(binary, sizeof binary)) skip();
    same_blas_kernels_for_children();
    snprintf(command, sizeof command,
             "'%s' forward --ckpt '%s/w.safetensors' --inputs '%s/%s' --output '%s/%s' 2>&1",
             binary, test_temp_dir, test_temp_dir, inputs, test_temp_dir, output);
    FILE *p = popen(command, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

typedef struct batch {
    int n;
    float x[2 * 4 * 8 * 8];    /* [N, C, H, W] */
    int64_t t[2], y[2];        /* [N] */
    float dout[2 * 8 * 8 * 8]; /* [N, C_out, H, W] */
} batch;

static void make_batch(batch *b) {
    test_rng rng = test_rng_seeded(77);
    b->n = 2;
    test_fill_normal(&rng, b->x, sizeof b->x / sizeof b->x[0], 1.0f);
    test_fill_normal(&rng, b->dout, sizeof b->dout / sizeof b->dout[0], 1.0f);
    b->t[0] = 0, b->t[1] = 999;
    b->y[0] = 3, b->y[1] = 10; /* 10 = num_classes = the null class */
}

static void write_batch(const batch *b, const char *name, int with_dout, int x_channels) {
    char path[512];
    digcl_st_error err;
    int64_t x_shape[4] = {b->n, x_channels, 8, 8}, n_shape[1] = {b->n},
            out_shape[4] = {b->n, 8, 8, 8};
    digcl_st_writer *w = digcl_st_writer_new();
    assert_int_equal(digcl_st_writer_add_f32(w, "x", 4, x_shape, b->x, &err), 0);
    assert_int_equal(digcl_st_writer_add_i64(w, "t", 1, n_shape, b->t, &err), 0);
    assert_int_equal(digcl_st_writer_add_i64(w, "y", 1, n_shape, b->y, &err), 0);
    if (with_dout)
        assert_int_equal(digcl_st_writer_add_f32(w, "dout", 4, out_shape, b->dout, &err), 0);
    if (digcl_st_writer_write(w, test_temp_path(path, sizeof path, name), &err) != 0)
        fail_msg("%s", err.message);
    digcl_st_writer_free(w);
}

static void compare_tensor(const digcl_safetensors *st, const char *name, const float *want,
                           size_t n) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    if (!t) fail_msg("OUT lacks '%s'", name);
    assert_int_equal(t->dtype, DIGCL_ST_F32);
    assert_int_equal(t->numel, n);
    float *got = malloc(n * sizeof *got);
    digcl_st_error err;
    assert_int_equal(digcl_st_read_f32(st, t, got, &err), 0);
    double rel = test_rel_l2_f(got, want, n);
    if (!(rel < 1e-6))
        fail_msg("'%s' differs from the in-process run: rel %g (finite: file %d, in-process %d)",
                 name, rel, test_all_finite(got, n), test_all_finite(want, n));
    free(got);
}

/* In-process reference: forward (and backward) of the same model and batch. */
static void reference_run(digcl_model *m, const batch *b, int training, float *out, float *dx) {
    digcl_context *ctx = test_context();
    float t[2] = {(float)b->t[0], (float)b->t[1]};
    int32_t y[2] = {(int32_t)b->y[0], (int32_t)b->y[1]};
    digcl_buffer yb = digcl_buffer_create(ctx, sizeof y, "test y");
    digcl_write(ctx, yb.mem, 0, sizeof y, y);
    cl_mem x = test_upload(b->x, sizeof b->x / sizeof b->x[0]), tb = test_upload(t, 2);
    cl_mem o = test_poisoned(sizeof b->dout / sizeof b->dout[0]);
    digcl_model_inputs inputs = {x, tb, yb.mem};
    digcl_model_prepare(m, b->n, training ? DIGCL_MODE_TRAINING : DIGCL_MODE_INFERENCE);
    digcl_model_zero_grad(m);
    digcl_model_forward(m, &inputs, o);
    digcl_read(ctx, o, 0, sizeof b->dout, out);
    if (training) {
        cl_mem d = test_upload(b->dout, sizeof b->dout / sizeof b->dout[0]);
        cl_mem g = test_poisoned(sizeof b->x / sizeof b->x[0]);
        digcl_model_backward(m, &inputs, d, g);
        digcl_read(ctx, g, 0, sizeof b->x, dx);
        test_release(d);
        test_release(g);
    }
    test_release(x);
    test_release(tb);
    test_release(o);
    digcl_buffer_release(&yb);
}

static void compare_grads(const digcl_safetensors *st, digcl_model *m) {
    const digcl_param_table *table = digcl_model_param_table(m);
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        char name[128];
        snprintf(name, sizeof name, "grad.%s", p->name);
        if (!p->trainable) {
            assert_null(digcl_st_find(st, name));
            continue;
        }
        float *want = malloc(p->numel * sizeof *want);
        digcl_model_read_grad(m, i, want);
        compare_tensor(st, name, want, p->numel);
        free(want);
    }
}

static void check_forward_output(digcl_model *m, const batch *b, int training) {
    char path[512];
    float out[sizeof b->dout / sizeof b->dout[0]], dx[sizeof b->x / sizeof b->x[0]];
    reference_run(m, b, training, out, dx);
    digcl_safetensors *st;
    digcl_st_error err;
    if (digcl_st_open(test_temp_path(path, sizeof path, "out.safetensors"), &st, &err) != 0)
        fail_msg("%s", err.message);
    compare_tensor(st, "out", out, sizeof out / sizeof out[0]);
    char *json = digcl_model_config_to_json(digcl_model_get_config(m));
    assert_string_equal(digcl_st_metadata(st, DIGCL_CONFIG_METADATA_KEY), json);
    free(json);
    if (training) {
        compare_tensor(st, "grad.x", dx, sizeof dx / sizeof dx[0]);
        compare_grads(st, m);
        assert_int_equal(st->n_tensors, 2 + digcl_model_param_table(m)->count - 1);
    } else {
        assert_int_equal(st->n_tensors, 1);
    }
    digcl_st_close(st);
}

static void test_forward_command(void **state) {
    (void)state;
    char path[512], output[8192], message[1024];
    if (!digcl_binary(path, sizeof path)) skip();
    digcl_model *m = random_model(DIGCL_ARCH_DIG, 51);
    if (digcl_checkpoint_save(m, test_temp_path(path, sizeof path, "w.safetensors"), message,
                              sizeof message) != 0)
        fail_msg("%s", message);
    batch b;
    make_batch(&b);
    for (int training = 0; training <= 1; training++) {
        write_batch(&b, "in.safetensors", training, 4);
        int code = run_forward("in.safetensors", "out.safetensors", output, sizeof output);
        if (code != 0) fail_msg("digcl forward exited %d:\n%s", code, output);
        check_forward_output(m, &b, training);
    }
    digcl_model_release(m);
}

static void expect_forward_fails(const batch *b, int x_channels, const char *const *needles) {
    char output[8192];
    write_batch(b, "bad.safetensors", 1, x_channels);
    int code = run_forward("bad.safetensors", "never.safetensors", output, sizeof output);
    if (code != 1) fail_msg("digcl forward exited %d, expected 1:\n%s", code, output);
    for (int k = 0; needles[k]; k++) expect_contains(output, needles[k]);
    expect_contains(output, "bad.safetensors");
    char path[512];
    assert_int_not_equal(access(test_temp_path(path, sizeof path, "never.safetensors"), F_OK), 0);
}

static void test_forward_rejects_bad_inputs(void **state) {
    (void)state;
    char path[512], message[1024];
    if (!digcl_binary(path, sizeof path)) skip();
    digcl_model *m = random_model(DIGCL_ARCH_DIG, 52);
    if (digcl_checkpoint_save(m, test_temp_path(path, sizeof path, "w.safetensors"), message,
                              sizeof message) != 0)
        fail_msg("%s", message);
    digcl_model_release(m);
    batch b;
    make_batch(&b);
    b.y[1] = 11;
    expect_forward_fails(&b, 4, (const char *const[]){"'y'", "[1] = 11", "[0, 10]", NULL});
    make_batch(&b);
    b.y[0] = -1;
    expect_forward_fails(&b, 4, (const char *const[]){"'y'", "[0] = -1", NULL});
    make_batch(&b);
    b.t[1] = 1000;
    expect_forward_fails(&b, 4, (const char *const[]){"'t'", "[1] = 1000", "[0, 1000)", NULL});
    make_batch(&b);
    expect_forward_fails(&b, 3, (const char *const[]){"'x'", "[2, 3, 8, 8]", "[2, 4, 8, 8]", NULL});
}

/* `digcl forward` on the committed float64-reference fixtures (F16 weights,
 * I64 t): the same tensors as expected.safetensors, out within 1e-5 and every
 * gradient within 1e-4 (relative L2). */
static void compare_fixture(const char *dir) {
    char inputs[512], expected[512], command[2048], binary[512], got_path[512], output[8192];
    snprintf(inputs, sizeof inputs, "%s/inputs.safetensors", dir);
    snprintf(expected, sizeof expected, "%s/expected.safetensors", dir);
    test_temp_path(got_path, sizeof got_path, "fixture_out.safetensors");
    snprintf(command, sizeof command,
             "'%s' forward --ckpt '%s/weights.safetensors' --inputs '%s' --output '%s' 2>&1",
             digcl_binary(binary, sizeof binary), dir, inputs, got_path);
    FILE *p = popen(command, "r");
    assert_non_null(p);
    output[fread(output, 1, sizeof output - 1, p)] = '\0';
    if (pclose(p) != 0) fail_msg("%s failed:\n%s", command, output);
    digcl_safetensors *got, *want;
    digcl_st_error err;
    if (digcl_st_open(got_path, &got, &err) != 0 || digcl_st_open(expected, &want, &err) != 0)
        fail_msg("%s", err.message);
    assert_int_equal(got->n_tensors, want->n_tensors);
    for (size_t i = 0; i < want->n_tensors; i++) {
        const digcl_st_tensor *w = &want->tensors[i], *g = digcl_st_find(got, w->name);
        if (!g || g->numel != w->numel) fail_msg("%s: '%s' missing or misshaped", dir, w->name);
        float *a = malloc(g->numel * sizeof *a), *b = malloc(w->numel * sizeof *b);
        assert_int_equal(digcl_st_read_f32(got, g, a, &err), 0);
        assert_int_equal(digcl_st_read_f32(want, w, b, &err), 0);
        double rel = test_rel_l2_f(a, b, g->numel),
               tolerance = strcmp(w->name, "out") == 0 ? 1e-5 : 1e-4;
        if (!(rel < tolerance)) fail_msg("%s: '%s' rel L2 %g >= %g", dir, w->name, rel, tolerance);
        free(a);
        free(b);
    }
    digcl_st_close(got);
    digcl_st_close(want);
}

static void test_forward_matches_reference_fixtures(void **state) {
    (void)state;
    static const char *const fixtures[] = {"dig_a_16x16", "dig_b_12x12", "dig_c_skip",
                                           "dit_d_16x16", "dig_e_p4_c3"};
    char path[512];
    if (!digcl_binary(path, sizeof path)) skip();
    for (size_t k = 0; k < sizeof fixtures / sizeof fixtures[0]; k++) {
        snprintf(path, sizeof path, "tests/reference/fixtures_committed/%s", fixtures[k]);
        if (access(path, R_OK) != 0) skip(); /* run from the source directory (ctest does) */
        compare_fixture(path);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_dig),
        cmocka_unit_test(test_round_trip_dit),
        cmocka_unit_test(test_load_f16),
        cmocka_unit_test(test_load_bf16),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_unexpected_tensor),
        cmocka_unit_test(test_wrong_shape),
        cmocka_unit_test(test_wrong_dtype),
        cmocka_unit_test(test_missing_config),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_forward_command),
        cmocka_unit_test(test_forward_rejects_bad_inputs),
        cmocka_unit_test(test_forward_matches_reference_fixtures),
    };
    return cmocka_run_group_tests(tests, test_temp_dir_setup, test_temp_dir_teardown);
}
