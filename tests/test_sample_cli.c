/* `digcl sample` through the real binary on a tiny random grey DiG (32x32x1,
 * 10 classes, the Fashion-MNIST shape):
 * - every output (grid, 000000.png... + labels.csv, .npz, latents) with its
 *   metadata: "parameters" (seed + i, class, size after the 28x28 crop) and
 *   the "digcl" JSON (checkpoint XXH3, flags, version);
 * - image i depends only on (seed, i, label): the same pixels with --batch 2
 *   and alone with --first-image i;
 * - a noise file replaces the RNG (the seed no longer matters) and its y the
 *   labels; a training checkpoint's EMA weights load like a plain file;
 * - a latent model decodes through a (random) TAESD decoder into 8x larger RGB PNGs;
 * - bad input: labels out of range, a checkpoint without dig.config, noise of
 *   the wrong shape, an unwritable folder, an output naming the checkpoint, a
 *   latent model without --output-latents: a message naming the flag or
 *   tensor, exit 2, and no file or temp file left behind.
 */
#include <cjson/cJSON.h>
#include <dirent.h>
#include <stdarg.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "digcl/checkpoint.h"
#include "digcl/file.h"
#include "digcl/model.h"
#include "digcl/safetensors.h"
#include "digcl/vae.h"
#include "test_util.h"

static char temp_dir[256];
static char binary[512];

static const char *temp_path(char *buf, size_t size, const char *name) {
    snprintf(buf, size, "%s/%s", temp_dir, name);
    return buf;
}

static digcl_model_config grey_config(int channels) {
    digcl_model_config c = {0};
    c.arch = DIGCL_ARCH_DIG;
    c.depth = 2;
    c.hidden_size = 64;
    c.num_heads = 2;
    c.patch_size = 4;
    c.input_size = 32;
    c.in_channels = channels;
    c.num_classes = 10;
    c.learn_sigma = 1;
    digcl_config_error err;
    assert_int_equal(digcl_model_config_finish(&c, &err), 0);
    return c;
}

/* ckpt.safetensors (grey), latent.safetensors (4 channels), train.safetensors
 * (a training checkpoint: ema.* = ckpt's weights, the model's own perturbed). */
static void write_checkpoints(void) {
    char path[512], message[512];
    digcl_model_config c = grey_config(1);
    digcl_model *m = digcl_model_create(test_context(), &c);
    digcl_model_randomize(m, 5, 0.05f);
    assert_int_equal(digcl_checkpoint_save(m, temp_path(path, sizeof path, "ckpt.safetensors"),
                                           message, sizeof message),
                     0);
    const digcl_param_table *table = digcl_model_param_table(m);
    digcl_st_writer *w = digcl_st_writer_new();
    float **copies = calloc(table->count * 2, sizeof *copies);
    digcl_st_error err;
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        char name[128];
        copies[2 * i] = malloc(p->numel * sizeof(float));
        copies[2 * i + 1] = malloc(p->numel * sizeof(float));
        digcl_model_read_param(m, i, copies[2 * i]);
        for (size_t k = 0; k < p->numel; k++) copies[2 * i + 1][k] = copies[2 * i][k] + 0.5f;
        snprintf(name, sizeof name, "ema.%s", p->name);
        assert_int_equal(digcl_st_writer_add_f32(w, name, p->rank, p->shape, copies[2 * i], &err),
                         0);
        assert_int_equal(
            digcl_st_writer_add_f32(w, p->name, p->rank, p->shape, copies[2 * i + 1], &err), 0);
    }
    char *json = digcl_model_config_to_json(&c);
    assert_int_equal(digcl_st_writer_set_metadata(w, DIGCL_CONFIG_METADATA_KEY, json, &err), 0);
    assert_int_equal(digcl_st_writer_set_metadata(w, "train.state", "{\"step\":1}", &err), 0);
    assert_int_equal(
        digcl_st_writer_set_metadata(w, "train.args", "{\"data\":\"fashion-mnist\"}", &err), 0);
    assert_int_equal(
        digcl_st_writer_write(w, temp_path(path, sizeof path, "train.safetensors"), &err), 0);
    digcl_st_writer_free(w);
    for (size_t i = 0; i < 2 * table->count; i++) free(copies[i]);
    free(copies);
    free(json);
    digcl_model_release(m);

    digcl_model_config latent = grey_config(4);
    m = digcl_model_create(test_context(), &latent);
    digcl_model_randomize(m, 6, 0.05f);
    assert_int_equal(digcl_checkpoint_save(m, temp_path(path, sizeof path, "latent.safetensors"),
                                           message, sizeof message),
                     0);
    digcl_model_release(m);

    float one = 1.0f;
    int64_t shape[1] = {1};
    w = digcl_st_writer_new();
    assert_int_equal(digcl_st_writer_add_f32(w, "x_embedder.proj.bias", 1, shape, &one, &err), 0);
    assert_int_equal(
        digcl_st_writer_write(w, temp_path(path, sizeof path, "noconfig.safetensors"), &err), 0);
    digcl_st_writer_free(w);
}

/* latent8.safetensors (4 channels, 8x8 latents) and taesd.safetensors: the published TAESD
 * decoder's tensors with random N(0, 0.05^2) values. */
static void write_latent_decoder_case(void) {
    char path[512], message[512], name[256];
    digcl_model_config c = grey_config(4);
    c.input_size = 8;
    digcl_config_error cerr;
    assert_int_equal(digcl_model_config_finish(&c, &cerr), 0);
    digcl_model *m = digcl_model_create(test_context(), &c);
    digcl_model_randomize(m, 8, 0.05f);
    assert_int_equal(digcl_checkpoint_save(m, temp_path(path, sizeof path, "latent8.safetensors"),
                                           message, sizeof message),
                     0);
    digcl_model_release(m);
    digcl_vae_config taesd = digcl_vae_config_taesd();
    digcl_st_writer *w = digcl_st_writer_new();
    float *values[512] = {0};
    int rank, count = 0;
    int64_t shape[4];
    digcl_st_error err;
    test_rng rng = test_rng_seeded(12);
    while (count < 512 && digcl_vae_tensor_info(&taesd, DIGCL_VAE_DECODER, count, name, sizeof name,
                                                &rank, shape) == 0) {
        size_t n = 1;
        for (int d = 0; d < rank; d++) n *= (size_t)shape[d];
        values[count] = test_random_floats(&rng, n, 0.05f);
        assert_int_equal(digcl_st_writer_add_f32(w, name, rank, shape, values[count], &err), 0);
        count++;
    }
    assert_true(count > 10);
    assert_int_equal(
        digcl_st_writer_write(w, temp_path(path, sizeof path, "taesd.safetensors"), &err), 0);
    digcl_st_writer_free(w);
    for (int k = 0; k < count; k++) free(values[k]);
}

static int setup(void **state) {
    (void)state;
    const char *dir = getenv("DIGCL_TEST_BINARY_DIR");
    snprintf(binary, sizeof binary, "%s/bin/digcl", dir ? dir : "build");
    snprintf(temp_dir, sizeof temp_dir, "/tmp/digcl_test_sample_XXXXXX");
    if (!mkdtemp(temp_dir)) return -1;
    write_checkpoints();
    write_latent_decoder_case();
    return 0;
}

static int teardown(void **state) {
    (void)state;
    char command[512];
    snprintf(command, sizeof command, "rm -rf '%s'", temp_dir);
    return system(command) == 0 ? 0 : -1;
}

/* Runs `digcl sample ARGS` in temp_dir; the exit code, output in out. */
static int run_sample(const char *args, char *out, size_t size) {
    char command[4096];
    if (access(binary, X_OK) != 0) skip();
    snprintf(command, sizeof command, "cd '%s' && '%s' sample %s 2>&1", temp_dir, binary, args);
    FILE *p = popen(command, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Runs `digcl sample` with printf-formatted arguments and asserts exit 0. */
static void run_ok(const char *format, ...) DIGCL_PRINTF(1, 2);
static void run_ok(const char *format, ...) {
    char args[2048], out[8192];
    va_list ap;
    va_start(ap, format);
    vsnprintf(args, sizeof args, format, ap);
    va_end(ap);
    int code = run_sample(args, out, sizeof out);
    if (code != 0) fail_msg("`digcl sample %s`: exit %d:\n%s", args, code, out);
}

static void expect_contains(const char *text, const char *part) {
    if (!strstr(text, part)) fail_msg("expected '%s' in:\n%s", part, text);
}

static int temp_files_left(const char *sub) {
    char path[512];
    DIR *dir = opendir(temp_path(path, sizeof path, sub));
    int count = 0;
    for (struct dirent *e; dir && (e = readdir(dir));) count += strstr(e->d_name, ".tmp.") != NULL;
    if (dir) closedir(dir);
    return count;
}

/* Pixels and the text chunks "parameters" and "digcl" of a PNG. */
typedef struct png_file {
    int width, height, channels;
    unsigned char *pixels;
    char parameters[4096];
    char *json;
} png_file;

static void read_png_file(const char *name, png_file *out) {
    char path[512];
    memset(out, 0, sizeof *out);
    FILE *f = fopen(temp_path(path, sizeof path, name), "rb");
    if (!f) fail_msg("no %s", path);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_int_equal(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    out->width = (int)png_get_image_width(png, info);
    out->height = (int)png_get_image_height(png, info);
    out->channels = png_get_channels(png, info);
    size_t stride = (size_t)out->width * (size_t)out->channels;
    out->pixels = malloc(stride * (size_t)out->height);
    png_bytepp rows = png_get_rows(png, info);
    for (int r = 0; r < out->height; r++) memcpy(out->pixels + (size_t)r * stride, rows[r], stride);
    png_textp texts;
    int n = png_get_text(png, info, &texts, NULL);
    for (int i = 0; i < n; i++) {
        if (strcmp(texts[i].key, "parameters") == 0)
            snprintf(out->parameters, sizeof out->parameters, "%s", texts[i].text);
        if (strcmp(texts[i].key, "digcl") == 0) out->json = strdup(texts[i].text);
    }
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
}

static void free_png_file(png_file *p) {
    free(p->pixels);
    free(p->json);
}

static void expect_same_pixels(const char *a, const char *b) {
    png_file pa, pb;
    read_png_file(a, &pa);
    read_png_file(b, &pb);
    assert_int_equal(pa.width, pb.width);
    assert_int_equal(pa.height, pb.height);
    size_t n = (size_t)pa.width * (size_t)pa.height * (size_t)pa.channels;
    int worst = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)pa.pixels[i] - (int)pb.pixels[i]);
        if (d > worst) worst = d;
    }
    if (worst > 1) fail_msg("%s and %s differ by up to %d levels", a, b, worst);
    free_png_file(&pa);
    free_png_file(&pb);
}

/* ------------------------------------------------------------ outputs */

static void test_outputs_and_metadata(void **state) {
    (void)state;
    char out[8192], path[512];
    int code =
        run_sample("--ckpt ckpt.safetensors -n 6 --class-labels 0,1,2 --sampler ddim --steps 4 "
                   "--cfg-scale 2 --seed 7 --batch 4 -o grid.png --output-dir out --npz s.npz "
                   "--output-latents x0.safetensors -q",
                   out, sizeof out);
    if (code != 0) fail_msg("exit %d:\n%s", code, out);
    png_file p;
    read_png_file("out/000004.png", &p);
    assert_int_equal(p.width, 28); /* 32x32 grey IDX shape: cropped */
    assert_int_equal(p.height, 28);
    assert_int_equal(p.channels, 1);
    expect_contains(
        p.parameters,
        "Steps: 4, Sampler: ddim, CFG scale: 2.0, Seed: 7, Image: 4, Size: 28x28, Model hash: ");
    expect_contains(p.parameters, "Model: ckpt");
    expect_contains(p.parameters, "Class: 1");
    uint64_t hash;
    char hex[32], error[256];
    assert_int_equal(digcl_file_xxh3(temp_path(path, sizeof path, "ckpt.safetensors"), &hash, error,
                                     sizeof error),
                     0);
    snprintf(hex, sizeof hex, "%016llx", (unsigned long long)hash);
    cJSON *json = cJSON_Parse(p.json);
    assert_non_null(json);
    assert_string_equal(cJSON_GetObjectItem(json, "checkpoint_xxh3")->valuestring, hex);
    assert_non_null(cJSON_GetObjectItem(json, "version"));
    assert_int_equal(cJSON_GetObjectItem(cJSON_GetObjectItem(json, "flags"), "batch")->valueint, 4);
    assert_int_equal(cJSON_GetObjectItem(json, "seed")->valueint, 7);
    assert_int_equal(cJSON_GetObjectItem(json, "image")->valueint, 4);
    assert_int_equal(
        cJSON_GetObjectItem(cJSON_GetObjectItem(json, "model"), "in_channels")->valueint, 1);
    cJSON_Delete(json);
    free_png_file(&p);

    read_png_file("grid.png", &p);
    expect_contains(p.parameters, "Class: 0,1,2,0,1,2");
    assert_true(p.width > 3 * 28 * 2);
    free_png_file(&p);

    FILE *f = fopen(temp_path(path, sizeof path, "out/labels.csv"), "r");
    assert_non_null(f);
    char line[256];
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "image,file,label,class_name\n");
    for (int i = 0; i < 5; i++) assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "4,000004.png,1,1\n");
    fclose(f);

    digcl_safetensors *st;
    digcl_st_error err;
    assert_int_equal(digcl_st_open(temp_path(path, sizeof path, "x0.safetensors"), &st, &err), 0);
    int64_t shape[4] = {6, 1, 32, 32};
    const digcl_st_tensor *t;
    assert_int_equal(digcl_st_expect(st, "x0", 4, shape, &t, &err), 0);
    digcl_st_close(st);
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") == 0) {
        char command[1024];
        snprintf(
            command, sizeof command,
            "/usr/bin/python3 -c \"import numpy as np, sys; a = np.load('%s/s.npz'); x = a['arr_0'];"
            " sys.exit(0 if x.shape == (6, 28, 28, 3) and x.dtype == np.uint8 and"
            " (x[..., 0] == x[..., 2]).all() and list(a['arr_1']) == [0, 1, 2, 0, 1, 2] else 1)\"",
            temp_dir);
        assert_int_equal(system(command), 0);
    }
    assert_int_equal(temp_files_left("."), 0);
    assert_int_equal(temp_files_left("out"), 0);
}

/* Image i depends only on its seed and label. */
static void test_images_do_not_depend_on_batch(void **state) {
    (void)state;
    const char *common = "--ckpt ckpt.safetensors --sampler ddpm --steps 3 --cfg-scale 1.5 -q";
    run_ok("%s -n 5 --class-labels 3,8 --seed 100 --batch 5 --output-dir b5", common);
    run_ok("%s -n 5 --class-labels 3,8 --seed 100 --batch 2 --output-dir b2", common);
    run_ok("%s -n 1 --class-labels 8 --seed 100 --first-image 3 --output-dir alone", common);
    char a[64], b[64];
    for (int i = 0; i < 5; i++) {
        snprintf(a, sizeof a, "b5/%06d.png", i);
        snprintf(b, sizeof b, "b2/%06d.png", i);
        expect_same_pixels(a, b);
    }
    expect_same_pixels("b5/000003.png", "alone/000003.png");
}

/* ------------------------------------------------------------ noise file, weights */

static void write_noise(const char *name, int n, int steps, int with_y, int bad_z) {
    size_t chw = 32 * 32;
    float *x = malloc((size_t)n * chw * sizeof *x),
          *z = malloc((size_t)(steps + bad_z) * (size_t)n * chw * sizeof *z);
    test_rng rng = test_rng_seeded(9);
    test_fill_normal(&rng, x, (size_t)n * chw, 1.0f);
    test_fill_normal(&rng, z, (size_t)(steps + bad_z) * (size_t)n * chw, 1.0f);
    int64_t xs[4] = {n, 1, 32, 32}, zs[5] = {steps + bad_z, n, 1, 32, 32}, ys[1] = {n};
    int64_t y[8] = {9, 2, 5, 5, 1, 0, 7, 3};
    digcl_st_writer *w = digcl_st_writer_new();
    digcl_st_error err;
    char path[512];
    assert_int_equal(digcl_st_writer_add_f32(w, "x_T", 4, xs, x, &err), 0);
    assert_int_equal(digcl_st_writer_add_f32(w, "z", 5, zs, z, &err), 0);
    if (with_y) assert_int_equal(digcl_st_writer_add_i64(w, "y", 1, ys, y, &err), 0);
    assert_int_equal(digcl_st_writer_write(w, temp_path(path, sizeof path, name), &err), 0);
    digcl_st_writer_free(w);
    free(x);
    free(z);
}

static void test_noise_file_replaces_the_rng(void **state) {
    (void)state;
    char out[8192];
    write_noise("noise.safetensors", 3, 4, 1, 0);
    const char *common =
        "--ckpt ckpt.safetensors --noise-file noise.safetensors --steps 4 --sampler ddpm -q";
    run_ok("%s --seed 1 --output-dir n1", common);
    run_ok("%s --seed 2 --output-dir n2 --batch 2", common);
    expect_same_pixels("n1/000000.png", "n2/000000.png");
    expect_same_pixels("n1/000002.png", "n2/000002.png");
    png_file p;
    read_png_file("n1/000001.png", &p);
    expect_contains(p.parameters, "Class: 2"); /* y of the noise file */
    free_png_file(&p);

    write_noise("badnoise.safetensors", 3, 4, 0, 1);
    int code =
        run_sample("--ckpt ckpt.safetensors --noise-file badnoise.safetensors --steps 4 -o bad.png",
                   out, sizeof out);
    assert_int_equal(code, 2);
    expect_contains(out, "tensor 'z' has shape [5, 3, 1, 32, 32], expected [4, 3, 1, 32, 32]");
    char path[512];
    assert_int_equal(access(temp_path(path, sizeof path, "bad.png"), F_OK), -1);
}

static void test_training_checkpoint_uses_ema(void **state) {
    (void)state;
    const char *common = "-n 2 --class-labels 4 --steps 3 --cfg-scale 1 --seed 3 -q";
    run_ok("--ckpt ckpt.safetensors %s --output-dir plain", common);
    run_ok("--ckpt train.safetensors %s --output-dir ema", common);
    expect_same_pixels("plain/000001.png", "ema/000001.png");
    run_ok("--ckpt train.safetensors %s --output-dir model --weights model", common);
    png_file a, b;
    read_png_file("ema/000001.png", &a);
    read_png_file("model/000001.png", &b);
    assert_memory_not_equal(a.pixels, b.pixels, 28 * 28); /* the model's own (perturbed) weights */
    free_png_file(&a);
    free_png_file(&b);
    /* train.args says fashion-mnist: Fashion-MNIST's class names */
    char path[512], line[256];
    FILE *f = fopen(temp_path(path, sizeof path, "ema/labels.csv"), "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof line, f));
    assert_non_null(fgets(line, sizeof line, f));
    assert_string_equal(line, "0,000000.png,4,Coat\n");
    fclose(f);
}

/* ------------------------------------------------------------ bad input */

static void expect_failure(const char *args, const char *message) {
    char out[8192];
    int code = run_sample(args, out, sizeof out);
    if (code != 2) fail_msg("`digcl sample %s`: exit %d, expected 2:\n%s", args, code, out);
    expect_contains(out, message);
}

static void test_bad_input(void **state) {
    (void)state;
    expect_failure("--ckpt ckpt.safetensors --class-labels 3,10 -o bad.png",
                   "--class-labels entry '10' is not a class in [0, 10)");
    expect_failure("--ckpt ckpt.safetensors --class-labels 2,-1 -o bad.png",
                   "--class-labels entry '-1'");
    expect_failure("--ckpt noconfig.safetensors -o bad.png", "dig.config");
    expect_failure("--ckpt ckpt.safetensors -o no/such/dir/bad.png",
                   "-o no/such/dir/bad.png: the folder no/such/dir does not exist");
    expect_failure("--ckpt ckpt.safetensors --npz ckpt.safetensors", "refusing to overwrite it");
    expect_failure("--ckpt ckpt.safetensors --output-dir ckpt.safetensors",
                   "--output-dir ckpt.safetensors: is a file");
    expect_failure("--ckpt latent.safetensors -o bad.png", "--output-latents");
    expect_failure("--ckpt ckpt.safetensors --class-names a,b -o bad.png",
                   "--class-names has 2 names, the model has 10");
    expect_failure("--ckpt ckpt.safetensors --weights ema -o bad.png", "not a training checkpoint");
    char path[512];
    assert_int_equal(access(temp_path(path, sizeof path, "bad.png"), F_OK), -1);
    assert_int_equal(temp_files_left("."), 0);
}

/* The latent model writes only latents. */
static void test_latent_model_writes_latents(void **state) {
    (void)state;
    run_ok("--ckpt latent.safetensors -n 2 --steps 2 --output-latents lat.safetensors -q");
    char path[512];
    assert_int_equal(access(temp_path(path, sizeof path, "lat.safetensors"), F_OK), 0);
}

/* A latent model with a decoder writes RGB images 8x the latent size. */
static void test_latent_model_decodes_through_taesd(void **state) {
    (void)state;
    run_ok("--ckpt latent8.safetensors -n 3 --steps 2 --cfg-scale 2 --taesd taesd.safetensors "
           "--output-dir decoded --output-latents dec-x0.safetensors -q");
    png_file p;
    read_png_file("decoded/000002.png", &p);
    assert_int_equal(p.width, 64);
    assert_int_equal(p.height, 64);
    assert_int_equal(p.channels, 3);
    int lo = 255, hi = 0;
    for (int i = 0; i < 64 * 64 * 3; i++) {
        if (p.pixels[i] < lo) lo = p.pixels[i];
        if (p.pixels[i] > hi) hi = p.pixels[i];
    }
    assert_true(hi > lo); /* not a constant image */
    expect_contains(p.json, "\"taesd\":\"taesd.safetensors\"");
    free_png_file(&p);
    expect_failure("--ckpt ckpt.safetensors --taesd taesd.safetensors -o bad.png",
                   "--taesd: the model has 1 input channels, not the 4 of VAE latents");
    expect_failure("--ckpt latent8.safetensors --taesd taesd.safetensors --vae taesd.safetensors",
                   "give --vae or --taesd, not both");
    expect_failure("--ckpt latent8.safetensors --taesd missing.safetensors -o bad.png",
                   "--taesd missing.safetensors: cannot be read");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outputs_and_metadata),
        cmocka_unit_test(test_images_do_not_depend_on_batch),
        cmocka_unit_test(test_noise_file_replaces_the_rng),
        cmocka_unit_test(test_training_checkpoint_uses_ema),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_latent_model_writes_latents),
        cmocka_unit_test(test_latent_model_decodes_through_taesd),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
