/* The VAE and TAESD networks (digcl/vae.h) against the float64 PyTorch reference
 * (tests/reference/vae_reference.py): the tensor tables against the checked-in name lists and
 * the published parameter counts; encode (mean, log-variance) and decode of 64x64 and 72x40
 * images on the committed reduced-width fixtures (KL with F16 weights, TAESD with BF16) and, when
 * ctest generated them, the full-width ones; every accepted spelling of the names (diffusers new
 * and old attention, LDM with and without first_stage_model.); error messages for a missing and
 * a misshapen tensor; tiled against untiled decoding and encoding. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digcl/safetensors.h"
#include "digcl/vae.h"
#include "test_util.h"

#define FIXTURES  "tests/reference/fixtures_committed/vae"
#define TOLERANCE 1e-5

static digcl_vae_config small_kl(void) {
    digcl_vae_config c = digcl_vae_config_sd();
    const int channels[4] = {16, 32, 32, 32};
    memcpy(c.channels, channels, sizeof channels);
    c.groups = 8;
    return c;
}

static digcl_vae_config small_taesd(void) {
    digcl_vae_config c = digcl_vae_config_taesd();
    for (int i = 0; i < 4; ++i) c.channels[i] = 16;
    return c;
}

/* A tensor of a fixture file as floats (the caller frees); fails the test when absent. */
static float *fixture_tensor(const digcl_safetensors *st, const char *name, size_t *count) {
    const digcl_st_tensor *t = digcl_st_find(st, name);
    if (!t) fail_msg("%s: no tensor '%s'", st->label, name);
    float *x = malloc(t->numel * sizeof *x);
    digcl_st_error err;
    assert_non_null(x);
    if (digcl_st_read_f32(st, t, x, &err) != 0) fail_msg("%s", err.message);
    if (count) *count = t->numel;
    return x;
}

static void expect_close(const char *label, const float *got, const float *want, size_t n,
                         double tolerance) {
    double *wide = malloc(n * sizeof *wide);
    for (size_t i = 0; i < n; ++i) wide[i] = want[i];
    test_assert_close(label, got, wide, n, tolerance);
    free(wide);
}

static digcl_vae *load_or_fail(const char *path, const digcl_vae_config *config) {
    char error[1024];
    digcl_vae_load_options options = {0, config, 0};
    digcl_vae *vae = digcl_vae_load(test_context(), path, &options, error, sizeof error);
    if (!vae) fail_msg("%s", error);
    return vae;
}

/* ---------------------------------------------------------------- tables and counts */

/* The C table of a config, as "name [shape]" lines, against the checked-in list. */
static void check_names(const char *file, const digcl_vae_config *config) {
    char path[256], line[256], want[256], name[128], shape_text[96];
    snprintf(path, sizeof path, "tests/reference/%s", file);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    int index = 0, rank;
    int64_t shape[4];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        const int parts = DIGCL_VAE_ENCODER | DIGCL_VAE_DECODER;
        if (digcl_vae_tensor_info(config, parts, index++, name, sizeof name, &rank, shape) != 0)
            fail_msg("%s: line %d '%s' is past the end of the C table", file, index, line);
        snprintf(want, sizeof want, "%s %s", name,
                 digcl_st_format_shape(shape_text, sizeof shape_text, rank, shape));
        if (strcmp(want, line) != 0)
            fail_msg("%s line %d: '%s', C table '%s'", file, index, line, want);
    }
    fclose(f);
    assert_int_equal(digcl_vae_tensor_info(config, 3, index, name, sizeof name, &rank, shape), -1);
    printf("  %s: all %d tensors match the C table\n", file, index);
}

static void test_tables(void **state) {
    (void)state;
    const digcl_vae_config sd = digcl_vae_config_sd(), taesd = digcl_vae_config_taesd();
    /* published: vae.encoder 34,163,592 and vae.decoder 49,490,179; quant_conv (8x8 + 8) and
     * post_quant_conv (4x4 + 4) are separate modules. */
    assert_int_equal(digcl_vae_parameter_count(&sd, DIGCL_VAE_ENCODER) - 72, 34163592);
    assert_int_equal(digcl_vae_parameter_count(&sd, DIGCL_VAE_DECODER) - 20, 49490179);
    assert_int_equal(digcl_vae_parameter_count(&taesd, DIGCL_VAE_ENCODER), 1222532);
    assert_int_equal(digcl_vae_parameter_count(&taesd, DIGCL_VAE_DECODER), 1222531);
    check_names("vae_kl_f8_names.txt", &sd);
    check_names("taesd_names.txt", &taesd);
}

/* ---------------------------------------------------------------- against the reference */

typedef struct image_case {
    const char *key;        /* "64" or "72x40" */
    const char *latent_key; /* "8" or "9x5" */
} image_case;

static const image_case CASES[] = {{"64", "8"}, {"72x40", "9x5"}};

/* Encode and decode every fixture case of dir/{kl,taesd} with the given configs. */
static void check_fixture(const char *dir, const char *kind, const digcl_vae_config *config,
                          const digcl_vae_tiling *tiling) {
    char path[512], name[64], label[160];
    snprintf(path, sizeof path, "%s/%s/io.safetensors", dir, kind);
    digcl_safetensors *io = digcl_st_open_or_die(path);
    snprintf(path, sizeof path, "%s/%s/weights.safetensors", dir, kind);
    digcl_vae *vae = load_or_fail(path, config);
    const int kl = config->kind == DIGCL_VAE_KL;
    for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; ++c) {
        snprintf(name, sizeof name, "images_%s", CASES[c].key);
        const digcl_st_tensor *t = digcl_st_find(io, name);
        assert_non_null(t);
        const int N = (int)t->shape[0], H = (int)t->shape[2], W = (int)t->shape[3];
        const size_t latent = (size_t)N * 4 * (H / 8) * (W / 8);
        float *images = fixture_tensor(io, name, NULL);
        float *mean = malloc(latent * sizeof *mean), *logvar = malloc(latent * sizeof *logvar);
        for (size_t i = 0; i < latent; ++i) mean[i] = logvar[i] = NAN; /* poisoned */
        digcl_vae_encode(vae, tiling, N, H, W, images, mean, logvar);
        snprintf(name, sizeof name, kl ? "mean_%s" : "latent_%s", CASES[c].key);
        float *want = fixture_tensor(io, name, NULL);
        snprintf(label, sizeof label, "%s encode %s %dx%d N=%d", kind, kl ? "mean" : "latent", H, W,
                 N);
        expect_close(label, mean, want, latent, TOLERANCE);
        free(want);
        if (kl) {
            snprintf(name, sizeof name, "logvar_%s", CASES[c].key);
            want = fixture_tensor(io, name, NULL);
            snprintf(label, sizeof label, "%s encode logvar %dx%d", kind, H, W);
            expect_close(label, logvar, want, latent, TOLERANCE);
            free(want);
        }
        snprintf(name, sizeof name, "latents_%s", CASES[c].latent_key);
        t = digcl_st_find(io, name);
        assert_non_null(t);
        const int n = (int)t->shape[0], h = (int)t->shape[2], w = (int)t->shape[3];
        const size_t pixels = (size_t)n * 3 * 64 * h * w;
        float *z = fixture_tensor(io, name, NULL), *decoded = malloc(pixels * sizeof *decoded);
        for (size_t i = 0; i < (size_t)n * 4 * h * w; ++i) z[i] *= DIGCL_VAE_SD_SCALE;
        for (size_t i = 0; i < pixels; ++i) decoded[i] = NAN; /* poisoned */
        digcl_vae_decode(vae, tiling, n, h, w, z, DIGCL_VAE_SD_SCALE, decoded);
        snprintf(name, sizeof name, "decoded_%s", CASES[c].latent_key);
        want = fixture_tensor(io, name, NULL);
        snprintf(label, sizeof label, "%s decode %dx%d -> %dx%d N=%d", kind, h, w, 8 * h, 8 * w, n);
        expect_close(label, decoded, want, pixels, TOLERANCE);
        free(want), free(images), free(mean), free(logvar), free(z), free(decoded);
    }
    digcl_vae_free(vae);
    digcl_st_close(io);
}

static void test_reference_small(void **state) {
    (void)state;
    const digcl_vae_config kl = small_kl(), taesd = small_taesd();
    check_fixture(FIXTURES, "kl", &kl, NULL);
    check_fixture(FIXTURES, "taesd", &taesd, NULL);
}

/* The full-width fixtures, when ctest generated them (torch present) and long tests are on. */
static void test_reference_full(void **state) {
    (void)state;
    const char *binary = getenv("DIGCL_TEST_BINARY_DIR");
    char dir[512];
    snprintf(dir, sizeof dir, "%s/vae-reference", binary ? binary : "build");
    char probe[600];
    snprintf(probe, sizeof probe, "%s/kl/io.safetensors", dir);
    if (access(probe, R_OK) != 0 || !test_long_enabled()) {
        printf("  full-width fixtures: %s (%s)\n", access(probe, R_OK) == 0 ? "present" : "absent",
               test_long_enabled() ? "long tests on" : "set DIGCL_LONG_TESTS=1 to check them");
        skip();
    }
    const digcl_vae_config kl = digcl_vae_config_sd(), taesd = digcl_vae_config_taesd();
    check_fixture(dir, "kl", &kl, NULL);
    check_fixture(dir, "taesd", &taesd, NULL);
}

/* ---------------------------------------------------------------- spellings and errors */

typedef enum spelling { DIFFUSERS_OLD, LDM, LDM_PREFIXED } spelling;

static void replace(char *s, const char *from, const char *to) {
    char *at = strstr(s, from);
    if (!at) return;
    char tail[200];
    strcpy(tail, at + strlen(from));
    strcpy(at, to), strcat(at, tail);
}

/* An independent spelling of a diffusers name (the oracle of the loader's mapping). */
static int respell(const char *canonical, spelling how, char *out) {
    char s[200], from[64], to[64];
    snprintf(s, sizeof s, "%s", canonical);
    int attention = strstr(s, ".attentions.0.to_") != NULL && strstr(s, ".weight") != NULL;
    if (how == DIFFUSERS_OLD) {
        replace(s, ".to_q.", ".query."), replace(s, ".to_k.", ".key."),
            replace(s, ".to_v.", ".value.");
        replace(s, ".to_out.0.", ".proj_attn.");
        snprintf(out, 256, "%s", s);
        return 0;
    }
    for (int i = 0; i < 4; ++i) {
        for (int j = 0; j < 3; ++j) {
            snprintf(from, sizeof from, "down_blocks.%d.resnets.%d.", i, j);
            snprintf(to, sizeof to, "down.%d.block.%d.", i, j), replace(s, from, to);
            snprintf(from, sizeof from, "up_blocks.%d.resnets.%d.", i, j);
            snprintf(to, sizeof to, "up.%d.block.%d.", 3 - i, j), replace(s, from, to);
        }
        snprintf(from, sizeof from, "down_blocks.%d.downsamplers.0.", i);
        snprintf(to, sizeof to, "down.%d.downsample.", i), replace(s, from, to);
        snprintf(from, sizeof from, "up_blocks.%d.upsamplers.0.", i);
        snprintf(to, sizeof to, "up.%d.upsample.", 3 - i), replace(s, from, to);
    }
    replace(s, "mid_block.resnets.0.", "mid.block_1."),
        replace(s, "mid_block.resnets.1.", "mid.block_2.");
    replace(s, "mid_block.attentions.0.", "mid.attn_1."),
        replace(s, "attn_1.group_norm.", "attn_1.norm.");
    replace(s, ".to_q.", ".q."), replace(s, ".to_k.", ".k."), replace(s, ".to_v.", ".v.");
    replace(s, ".to_out.0.", ".proj_out."), replace(s, "conv_shortcut", "nin_shortcut");
    replace(s, "conv_norm_out", "norm_out");
    if (how == LDM_PREFIXED) strcpy(out, "first_stage_model."), strcat(out, s);
    else strcpy(out, s);
    return attention; /* LDM stores attention projections as 1x1 convs */
}

typedef struct rewrite {
    spelling how;
    const char *drop;    /* a tensor to leave out, or NULL */
    const char *reshape; /* a tensor to write with one channel less, or NULL */
} rewrite;

/* Writes the committed KL weights under another spelling into path (F32). */
static void write_respelled(const char *path, const rewrite *r) {
    digcl_safetensors *st = digcl_st_open_or_die(FIXTURES "/kl/weights.safetensors");
    digcl_st_writer *w = digcl_st_writer_new();
    float **data = calloc(st->n_tensors, sizeof *data);
    char(*names)[256] = calloc(st->n_tensors, sizeof *names);
    digcl_st_error err;
    for (size_t i = 0; i < st->n_tensors; ++i) {
        const digcl_st_tensor *t = &st->tensors[i];
        if (r->drop && strcmp(t->name, r->drop) == 0) continue;
        data[i] = fixture_tensor(st, t->name, NULL);
        int64_t shape[4] = {t->shape[0], t->rank > 1 ? t->shape[1] : 1, 1, 1};
        int rank = t->rank;
        if (respell(t->name, r->how, names[i]) && rank == 2) rank = 4;
        else memcpy(shape, t->shape, sizeof(int64_t) * (size_t)t->rank);
        if (r->reshape && strcmp(t->name, r->reshape) == 0) shape[0] -= 1;
        if (digcl_st_writer_add_f32(w, names[i], rank, shape, data[i], &err) != 0)
            fail_msg("%s", err.message);
    }
    digcl_st_writer_write_or_die(w, path);
    for (size_t i = 0; i < st->n_tensors; ++i) free(data[i]);
    free(data), free(names);
    digcl_st_writer_free(w);
    digcl_st_close(st);
}

static void temp_path(char *path, size_t size, const char *leaf) {
    const char *binary = getenv("DIGCL_TEST_BINARY_DIR");
    snprintf(path, size, "%s/test_vae_%s.safetensors", binary ? binary : "/tmp", leaf);
}

/* Decodes latents_8 and encodes images_64 with a VAE into one array. */
static float *run_both(digcl_vae *vae, size_t *count) {
    digcl_safetensors *io = digcl_st_open_or_die(FIXTURES "/kl/io.safetensors");
    float *z = fixture_tensor(io, "latents_8", NULL),
          *images = fixture_tensor(io, "images_64", NULL);
    const size_t decoded = 2 * 3 * 64 * 64, latent = 2 * 4 * 8 * 8;
    float *out = malloc((decoded + 2 * latent) * sizeof *out);
    digcl_vae_decode(vae, NULL, 2, 8, 8, z, 1.0f, out);
    digcl_vae_encode(vae, NULL, 2, 64, 64, images, out + decoded, out + decoded + latent);
    *count = decoded + 2 * latent;
    free(z), free(images);
    digcl_st_close(io);
    return out;
}

static void test_spellings(void **state) {
    (void)state;
    const digcl_vae_config config = small_kl();
    digcl_vae *canonical = load_or_fail(FIXTURES "/kl/weights.safetensors", &config);
    size_t n;
    float *want = run_both(canonical, &n);
    digcl_vae_free(canonical);
    static const char *const labels[] = {"diffusers query/key/value/proj_attn", "LDM",
                                         "LDM first_stage_model."};
    for (int how = DIFFUSERS_OLD; how <= LDM_PREFIXED; ++how) {
        char path[512];
        temp_path(path, sizeof path, "spelling");
        const rewrite r = {(spelling)how, NULL, NULL};
        write_respelled(path, &r);
        digcl_vae *vae = load_or_fail(path, &config);
        float *got = run_both(vae, &n);
        printf("  %-40s", labels[how]);
        expect_close(" same outputs", got, want, n, 1e-12);
        free(got);
        digcl_vae_free(vae);
        unlink(path);
    }
    free(want);
}

static void expect_load_error(const rewrite *r, const char *must1, const char *must2) {
    char path[512], error[1024];
    temp_path(path, sizeof path, "broken");
    write_respelled(path, r);
    const digcl_vae_config config = small_kl();
    digcl_vae_load_options options = {0, &config, 0};
    digcl_vae *vae = digcl_vae_load(test_context(), path, &options, error, sizeof error);
    assert_null(vae);
    printf("  error: %s\n", error);
    assert_non_null(strstr(error, path));
    assert_non_null(strstr(error, must1));
    assert_non_null(strstr(error, must2));
    unlink(path);
}

static void test_load_errors(void **state) {
    (void)state;
    const rewrite missing = {LDM, "decoder.up_blocks.1.resnets.2.conv2.weight", NULL};
    expect_load_error(&missing, "missing tensor 'decoder.up_blocks.1.resnets.2.conv2.weight'",
                      "decoder.up.2.block.2.conv2.weight");
    const rewrite wrong = {DIFFUSERS_OLD, NULL, "encoder.mid_block.attentions.0.to_k.weight"};
    expect_load_error(&wrong, "has shape [31, 32]", "expected [32, 32]");
    char error[1024];
    digcl_vae *vae =
        digcl_vae_load(test_context(), "no/such/file.safetensors", NULL, error, sizeof error);
    assert_null(vae);
    assert_non_null(strstr(error, "no/such/file.safetensors"));
}

/* ---------------------------------------------------------------- tiling */

/* rel L2 of got against want over the pixels at least `border` from the image edges. */
static double interior_error(const float *got, const float *want, int C, int H, int W, int border) {
    double num = 0.0, den = 0.0;
    for (int c = 0; c < C; ++c)
        for (int i = border; i < H - border; ++i)
            for (int j = border; j < W - border; ++j) {
                const size_t at = ((size_t)c * H + i) * W + j;
                num += ((double)got[at] - want[at]) * ((double)got[at] - want[at]);
                den += (double)want[at] * want[at];
            }
    return isfinite(num) ? sqrt(num / den) : INFINITY;
}

static float *smooth_latent(int h, int w) {
    float *z = malloc((size_t)4 * h * w * sizeof *z);
    for (int c = 0; c < 4; ++c)
        for (int i = 0; i < h; ++i)
            for (int j = 0; j < w; ++j)
                z[((size_t)c * h + i) * w + j] = 0.6f * sinf(0.07f * j + 0.05f * i + c) + 0.2f * c;
    return z;
}

/* Decodes a smooth latent whole and in tiles; returns the interior rel L2 and fills *plan. */
static double tiled_decode_error(digcl_vae *vae, int h, int w, const digcl_vae_tiling *tiles,
                                 int border, digcl_vae_tile_plan *plan) {
    const int H = 8 * h, W = 8 * w;
    float *z = smooth_latent(h, w);
    float *whole = malloc((size_t)3 * H * W * sizeof *whole);
    float *tiled = malloc((size_t)3 * H * W * sizeof *tiled);
    digcl_vae_decode(vae, NULL, 1, h, w, z, 1.0f, whole);
    *plan = digcl_vae_plan_tiles(vae, DIGCL_VAE_DECODER, H, W, tiles);
    for (size_t i = 0; i < (size_t)3 * H * W; ++i) tiled[i] = NAN;
    digcl_vae_decode(vae, tiles, 1, h, w, z, 1.0f, tiled);
    assert_true(test_all_finite(tiled, (size_t)3 * H * W));
    const double error = interior_error(tiled, whole, 3, H, W, border);
    free(z), free(whole), free(tiled);
    return error;
}

/* TAESD has no GroupNorm and no attention: a tile's output equals the whole image's farther
 * than the receptive field from its cut (about 12 latent pixels here), so the blended tiles
 * must match to 1e-3. */
static void test_tiling_seams(void **state) {
    (void)state;
    const digcl_vae_config config = small_taesd();
    digcl_vae *vae = load_or_fail(FIXTURES "/taesd/weights.safetensors", &config);
    const digcl_vae_tiling tiles = {256, 192, 0};
    digcl_vae_tile_plan plan;
    const double error = tiled_decode_error(vae, 48, 40, &tiles, 8, &plan);
    printf("  TAESD tiled decode 384x320, %dx%d tiles, overlap %d: rel L2 %.3e\n", plan.tile_height,
           plan.tile_width, plan.overlap, error);
    assert_int_equal(plan.tiled, 1);
    assert_true(error < 1e-3);
    digcl_vae_free(vae);
}

/* The KL VAE, tiled, streams row strips layer by layer with the whole image's GroupNorm
 * statistics and real neighbours at every cut: decode and encode must equal the untiled
 * pass everywhere, borders included, for any strip height (64 px tiles give strips of a few
 * rows at every level but the latent's; 128 x 64 px tiles, fewer; a 1-byte budget, the
 * smallest). Also: automatic tiling under a memory budget. */
static void test_tiling_kl(void **state) {
    (void)state;
    const digcl_vae_config config = small_kl();
    digcl_vae *vae = load_or_fail(FIXTURES "/kl/weights.safetensors", &config);
    const int h = 24, w = 16, H = 8 * h, W = 8 * w;
    const digcl_vae_tiling strips[] = {{128, 64, 0}, {64, 0, 0}, {0, -1, 1}};
    for (size_t k = 0; k < sizeof strips / sizeof strips[0]; ++k) {
        digcl_vae_tile_plan plan;
        const double error = tiled_decode_error(vae, h, w, &strips[k], 0, &plan);
        printf("  KL streamed decode %dx%d, budget of %dx%d tiles: %.2f MiB device, %.2f MiB "
               "host; rel L2 %.3e\n",
               H, W, plan.tile_height, plan.tile_width, plan.bytes / 1048576.0,
               plan.host_bytes / 1048576.0, error);
        assert_int_equal(plan.tiled, 1);
        assert_int_equal(plan.streamed, 1);
        assert_true(error < 1e-5);
    }
    const size_t latent = (size_t)4 * h * w;
    float *images = malloc((size_t)3 * H * W * sizeof *images), *z = smooth_latent(h, w);
    digcl_vae_decode(vae, NULL, 1, h, w, z, 1.0f, images);
    float *mean_whole = malloc(latent * sizeof *mean_whole),
          *mean_tiled = malloc(latent * sizeof *mean_tiled);
    float *logvar_whole = malloc(latent * sizeof *logvar_whole),
          *logvar_tiled = malloc(latent * sizeof *logvar_tiled);
    digcl_vae_encode(vae, NULL, 1, H, W, images, mean_whole, logvar_whole);
    for (size_t k = 0; k < sizeof strips / sizeof strips[0]; ++k) {
        for (size_t i = 0; i < latent; ++i) mean_tiled[i] = logvar_tiled[i] = NAN;
        const digcl_vae_tile_plan plan =
            digcl_vae_plan_tiles(vae, DIGCL_VAE_ENCODER, H, W, &strips[k]);
        digcl_vae_encode(vae, &strips[k], 1, H, W, images, mean_tiled, logvar_tiled);
        assert_true(test_all_finite(mean_tiled, latent) && test_all_finite(logvar_tiled, latent));
        const double mean_error = interior_error(mean_tiled, mean_whole, 4, h, w, 0);
        const double logvar_error = interior_error(logvar_tiled, logvar_whole, 4, h, w, 0);
        printf("  KL streamed encode, budget of %dx%d tiles: %.2f MiB device; rel L2 mean %.3e, "
               "logvar %.3e\n",
               plan.tile_height, plan.tile_width, plan.bytes / 1048576.0, mean_error, logvar_error);
        assert_int_equal(plan.streamed, 1);
        assert_true(mean_error < 1e-5 && logvar_error < 1e-5);
    }

    const digcl_vae_tile_plan full = digcl_vae_plan_tiles(vae, DIGCL_VAE_DECODER, H, W, NULL);
    const digcl_vae_tiling budget = {0, -1, full.bytes / 2};
    const digcl_vae_tile_plan automatic =
        digcl_vae_plan_tiles(vae, DIGCL_VAE_DECODER, H, W, &budget);
    printf("  whole pass %.1f MiB; budget %.1f MiB -> tiles %dx%d (%.1f MiB)\n",
           full.bytes / 1048576.0, budget.max_memory / 1048576.0, automatic.tile_height,
           automatic.tile_width, automatic.bytes / 1048576.0);
    assert_int_equal(full.tiled, 0);
    assert_int_equal(automatic.tiled, 1);
    assert_true(automatic.bytes <= budget.max_memory);
    free(z), free(images), free(mean_whole), free(mean_tiled), free(logvar_whole),
        free(logvar_tiled);
    digcl_vae_free(vae);
}

/* Untiled passes run several images at once, as many as the memory budget holds: a budget of
 * 2.5 one-image passes gives passes of 2 and 1 images for N = 3, which must give what three
 * separate calls give (the same kernels on each image; rel L2 below 1e-6), for both networks
 * and both directions. */
static void check_batched(const char *weights, const digcl_vae_config *config) {
    digcl_vae *vae = load_or_fail(weights, config);
    enum { N = 3, h = 6, w = 5, H = 8 * h, W = 8 * w };
    const size_t latent = (size_t)4 * h * w, image = (size_t)3 * H * W;
    float *z = malloc(N * latent * sizeof *z), *images = malloc(N * image * sizeof *images);
    float *one = malloc(N * image * sizeof *one);
    for (size_t i = 0; i < N * latent; ++i) z[i] = sinf(0.37f * (float)i) + 0.1f;
    const digcl_vae_tile_plan single = digcl_vae_plan_tiles(vae, DIGCL_VAE_DECODER, H, W, NULL);
    const digcl_vae_tiling budget = {0, -1, single.bytes * 5 / 2};
    assert_int_equal(digcl_vae_plan_tiles(vae, DIGCL_VAE_DECODER, H, W, &budget).images, 2);
    assert_true(single.images >= N); /* without a budget: all three in one pass */
    for (size_t i = 0; i < N * image; ++i) images[i] = NAN;
    digcl_vae_decode(vae, &budget, N, h, w, z, 1.0f, images);
    for (int n = 0; n < N; ++n)
        digcl_vae_decode(vae, NULL, 1, h, w, z + n * latent, 1.0f, one + n * image);
    char label[96];
    snprintf(label, sizeof label, "%s decode N=3 in passes of 2 + 1", digcl_vae_name(vae));
    expect_close(label, images, one, N * image, 1e-6);
    float *mean = malloc(N * latent * sizeof *mean), *logvar = malloc(N * latent * sizeof *logvar);
    float *mean_one = malloc(N * latent * sizeof *mean_one);
    float *logvar_one = malloc(N * latent * sizeof *logvar_one);
    for (size_t i = 0; i < N * latent; ++i) mean[i] = logvar[i] = NAN;
    const digcl_vae_tile_plan enc = digcl_vae_plan_tiles(vae, DIGCL_VAE_ENCODER, H, W, NULL);
    const digcl_vae_tiling enc_budget = {0, -1, enc.bytes * 5 / 2};
    assert_int_equal(digcl_vae_plan_tiles(vae, DIGCL_VAE_ENCODER, H, W, &enc_budget).images, 2);
    digcl_vae_encode(vae, &enc_budget, N, H, W, one, mean, logvar);
    for (int n = 0; n < N; ++n)
        digcl_vae_encode(vae, NULL, 1, H, W, one + n * image, mean_one + n * latent,
                         logvar_one + n * latent);
    snprintf(label, sizeof label, "%s encode N=3 in passes of 2 + 1", digcl_vae_name(vae));
    expect_close(label, mean, mean_one, N * latent, 1e-6);
    snprintf(label, sizeof label, "%s encode logvar N=3, 2 + 1", digcl_vae_name(vae));
    expect_close(label, logvar, logvar_one, N * latent, 1e-6);
    free(z), free(images), free(one), free(mean), free(logvar), free(mean_one), free(logvar_one);
    digcl_vae_free(vae);
}

static void test_batched_passes(void **state) {
    (void)state;
    const digcl_vae_config kl = small_kl(), taesd = small_taesd();
    check_batched(FIXTURES "/kl/weights.safetensors", &kl);
    check_batched(FIXTURES "/taesd/weights.safetensors", &taesd);
}

/* digcl_vae_encode_sample = scale (mean + exp(logvar / 2) eps) of digcl_vae_encode's posterior,
 * eps the host draws of (seed, DIGCL_RNG_VAE_POSTERIOR, step, first_sample + n, j); a second
 * call with a smaller N reuses the buffers. */
static void test_encode_sample(void **state) {
    (void)state;
    const digcl_vae_config config = small_kl();
    digcl_vae *vae = load_or_fail(FIXTURES "/kl/weights.safetensors", &config);
    digcl_safetensors *io = digcl_st_open_or_die(FIXTURES "/kl/io.safetensors");
    const int64_t image_shape[4] = {2, 3, 64, 64};
    float *images = malloc(2 * 3 * 64 * 64 * sizeof *images);
    digcl_st_load_f32_or_die(io, "images_64", 4, image_shape, images);
    const size_t row = 4 * 8 * 8;
    float mean[2 * 256], logvar[2 * 256], z[2 * 256];
    double want[2 * 256];
    digcl_vae_encode(vae, NULL, 2, 64, 64, images, mean, logvar);
    const digcl_rng_key key = {77, DIGCL_RNG_VAE_POSTERIOR};
    for (int round = 0; round < 2; ++round) {
        const int N = 2 - round;
        const uint64_t step = 5 + (uint64_t)round, first = 40;
        for (int n = 0; n < N; ++n)
            for (size_t j = 0; j < row; ++j) {
                const double eps = digcl_rng_normal(key, step, first + (uint64_t)n, j);
                const size_t i = n * row + j;
                want[i] = 0.18215 * (mean[i] + exp(0.5 * logvar[i]) * eps);
            }
        for (size_t i = 0; i < 2 * row; ++i) z[i] = NAN;
        digcl_vae_encode_sample(vae, NULL, N, 64, 64, images, key, step, first, 0.18215f, z);
        test_assert_close("encode_sample", z, want, (size_t)N * row, 1e-5);
        if (N == 1) assert_true(isnan(z[row])); /* nothing past N rows is written */
    }
    free(images);
    digcl_st_close(io);
    digcl_vae_free(vae);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tables),         cmocka_unit_test(test_reference_small),
        cmocka_unit_test(test_reference_full), cmocka_unit_test(test_spellings),
        cmocka_unit_test(test_load_errors),    cmocka_unit_test(test_tiling_seams),
        cmocka_unit_test(test_tiling_kl),      cmocka_unit_test(test_batched_passes),
        cmocka_unit_test(test_encode_sample),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
