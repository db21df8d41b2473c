/* Tests of the data layer's IDX and latent sources and of the loader
 * (src/data/idx.c, latents.c, loader.c):
 * - tiny IDX files (plain and gzip) written here: padding to 32x32 with -1,
 *   pixel mapping (p / 255 - 0.5) / 0.5, labels, digit class names; the
 *   real Fashion-MNIST files when Debian's package is installed;
 * - order: every rank's batches are its slices of the global batches of an
 *   independent Fisher-Yates of (seed, epoch); ranks of W = 1, 2, 3 are
 *   disjoint and together cover the epoch (all of it when W N divides the
 *   count, else all but the dropped tail);
 * - determinism: 1, 2 and 4 workers give bit-identical batches (flips on,
 *   across an epoch boundary); seek to an arbitrary (epoch, batch), also on
 *   a running loader, gives the batches of a loader that got there in order;
 * - flips mirror exactly the rows the seeded draw picks;
 * - latents: F32 and F16 values, the posterior draw z = scale (mean + std
 *   eps) with std or logvar, fresh per epoch; metadata;
 * - bad input: IDX magic, truncation, label count; latent tensors missing,
 *   misshaped or mistyped; too small for a batch; the model check.
 */
#include <zlib.h>

#include "data_helpers.h"
#include "digcl/rng.h"
#include "digcl/safetensors.h"

#define IDX_COUNT 103

/* Pixel (r, c) of image i: its index in the first two bytes, a pattern after. */
static uint8_t idx_pixel(int i, int r, int c) {
    if (r == 0 && c == 0) return (uint8_t)(i & 255);
    if (r == 0 && c == 1) return (uint8_t)(i >> 8);
    return (uint8_t)((i * 7 + r * 3 + c) & 255);
}

static void put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Writes bytes to path, gzip-compressed when gz. */
static void write_maybe_gz(const char *path, const uint8_t *bytes, size_t size, int gz) {
    if (!gz) {
        data_write_file(path, bytes, size);
        return;
    }
    gzFile f = gzopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(gzwrite(f, bytes, (unsigned)size), (int)size);
    assert_int_equal(gzclose(f), Z_OK);
}

/* dir/train-{images,labels}-idx?-ubyte[.gz] with `count` 28x28 images;
 * images_bytes < full size truncates the images file. */
static void write_idx(const char *dir, int count, int gz, size_t truncate_to, uint32_t magic) {
    size_t image_bytes = 16 + (size_t)count * 28 * 28;
    uint8_t *images = malloc(image_bytes), labels[8 + 4096];
    put_be32(images, magic);
    put_be32(images + 4, (uint32_t)count);
    put_be32(images + 8, 28);
    put_be32(images + 12, 28);
    for (int i = 0; i < count; i++)
        for (int r = 0; r < 28; r++)
            for (int c = 0; c < 28; c++)
                images[16 + (size_t)i * 784 + r * 28 + c] = idx_pixel(i, r, c);
    put_be32(labels, 0x00000801u);
    put_be32(labels + 4, (uint32_t)count);
    for (int i = 0; i < count; i++) labels[8 + i] = (uint8_t)(i % 10);
    char path[600];
    snprintf(path, sizeof path, "%s/train-images-idx3-ubyte%s", dir, gz ? ".gz" : "");
    write_maybe_gz(path, images, truncate_to ? truncate_to : image_bytes, gz);
    snprintf(path, sizeof path, "%s/train-labels-idx1-ubyte%s", dir, gz ? ".gz" : "");
    write_maybe_gz(path, labels, 8 + (size_t)count, gz);
    free(images);
}

static const char *idx_dir(void) {
    static char dir[512];
    if (!dir[0]) {
        char file[512];
        data_path(file, sizeof file, "idx/x");
        snprintf(dir, sizeof dir, "%s/idx", data_temp_root);
        write_idx(dir, IDX_COUNT, 1, 0, 0x00000803u);
    }
    return dir;
}

static digcl_dataset *open_idx(void) {
    char spec[600];
    snprintf(spec, sizeof spec, "idx:%s", idx_dir());
    return data_open_or_fail(spec, NULL);
}

/* The data index a batch row came from (the first two pixels of the image). */
static int row_index(const digcl_batch *b, int row) {
    const float *x = b->x + (size_t)row * 32 * 32;
    return data_float_to_pixel(x[2 * 32 + 2]) + 256 * data_float_to_pixel(x[2 * 32 + 3]);
}

static void assert_info(const digcl_dataset_info *info, digcl_dataset_kind kind, int64_t count,
                        int channels, int height, int width, int num_classes) {
    assert_int_equal(info->kind, kind);
    assert_int_equal(info->count, count);
    assert_int_equal(info->channels, channels);
    assert_int_equal(info->height, height);
    assert_int_equal(info->width, width);
    assert_int_equal(info->num_classes, num_classes);
}

/* ------------------------------------------------------------------ IDX */

static void test_idx_contents(void **state) {
    (void)state;
    for (int gz = 0; gz < 2; gz++) {
        char file[512], dir[512];
        data_path(file, sizeof file, "idx_plain%d/x", gz);
        snprintf(dir, sizeof dir, "%s/idx_plain%d", data_temp_root, gz);
        write_idx(dir, 12, gz, 0, 0x00000803u);
        digcl_dataset *d = data_open_or_fail(dir, NULL); /* auto-detected */
        const digcl_dataset_info *info = digcl_dataset_get_info(d);
        assert_info(info, DIGCL_DATASET_IDX, 12, 1, 32, 32, 10);
        assert_string_equal(info->class_names, "0,1,2,3,4,5,6,7,8,9");
        float x[1024];
        int32_t y;
        char error[256];
        assert_int_equal(digcl_dataset_read(d, 11, 0, 0, 0, x, &y, error, sizeof error), 0);
        assert_int_equal(y, 1);
        for (int r = 0; r < 32; r++)
            for (int c = 0; c < 32; c++) {
                int inside = r >= 2 && r < 30 && c >= 2 && c < 30;
                float want =
                    inside ? ((float)idx_pixel(11, r - 2, c - 2) / 255.0f - 0.5f) / 0.5f : -1.0f;
                assert_true(x[r * 32 + c] == want);
            }
        digcl_dataset_close(d);
    }
}

static void test_fashion_mnist(void **state) {
    (void)state;
    char error[512];
    digcl_dataset *d = digcl_dataset_open("fashion-mnist", NULL, error, sizeof error);
    if (!d) {
        printf("  skipped: %s\n", error);
        return;
    }
    const digcl_dataset_info *info = digcl_dataset_get_info(d);
    assert_int_equal(info->count, 60000);
    assert_int_equal(info->num_classes, 10);
    assert_int_equal(info->height, 32);
    assert_non_null(strstr(info->class_names, "T-shirt/top,Trouser,Pullover"));
    assert_non_null(strstr(info->class_names, "Ankle boot"));
    float x[1024];
    int32_t y;
    assert_int_equal(digcl_dataset_read(d, 0, 0, 0, 0, x, &y, error, sizeof error), 0);
    assert_int_equal(y, 9); /* the first training image is an ankle boot */
    double sum = 0.0;
    for (int i = 0; i < 1024; i++) sum += x[i];
    assert_true(sum > -1024.0 && x[0] == -1.0f);
    printf("  Fashion-MNIST: %lld images, first label %d\n", (long long)info->count, y);
    digcl_dataset_close(d);
}

static void test_idx_errors(void **state) {
    (void)state;
    char file[512], dir[512], spec[600];
    data_path(file, sizeof file, "idx_bad_magic/x");
    snprintf(dir, sizeof dir, "%s/idx_bad_magic", data_temp_root);
    write_idx(dir, 5, 0, 0, 0x00000801u);
    snprintf(spec, sizeof spec, "idx:%s", dir);
    data_expect_open_error(spec, NULL,
                           "train-images-idx3-ubyte: magic 0x00000801, expected 0x00000803");
    data_path(file, sizeof file, "idx_truncated/x");
    snprintf(dir, sizeof dir, "%s/idx_truncated", data_temp_root);
    write_idx(dir, 5, 1, 16 + 784 * 3, 0x00000803u);
    snprintf(spec, sizeof spec, "idx:%s", dir);
    data_expect_open_error(spec, NULL, "train-images-idx3-ubyte.gz: truncated");
    data_path(file, sizeof file, "idx_empty/x");
    snprintf(spec, sizeof spec, "idx:%s/idx_empty", data_temp_root);
    data_expect_open_error(spec, NULL, "no ");
    data_expect_open_error("/nonexistent-digcl-folder", NULL, "not a folder");
    digcl_dataset_options sized = {64, 0, 0, NULL};
    snprintf(spec, sizeof spec, "idx:%s", idx_dir());
    data_expect_open_error(spec, &sized, "--image-size 64");
}

/* ---------------------------------------------------------------- order */

/* An independent epoch order (the shuffle); rank r's row k of batch b is its
 * position (b W + r) N + k. */
static uint32_t *reference_permutation(int64_t count, uint64_t seed, int64_t epoch) {
    uint32_t *perm = malloc((size_t)count * sizeof *perm);
    digcl_rng_key key = {seed, DIGCL_RNG_DATA_ORDER};
    for (int64_t i = 0; i < count; i++) perm[i] = (uint32_t)i;
    for (int64_t i = count - 1; i > 0; i--) {
        uint32_t j = digcl_rng_below(key, (uint64_t)epoch, 0, (uint64_t)i, (uint32_t)(i + 1));
        uint32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
    return perm;
}

static digcl_loader *make_loader(digcl_dataset *d, int batch, int rank, int world, int workers,
                                 int hflip) {
    digcl_loader_options o = {batch, rank, world, 1234, workers, 0, hflip};
    char error[512];
    digcl_loader *l = digcl_loader_create(d, &o, error, sizeof error);
    if (!l) fail_msg("loader: %s", error);
    return l;
}

static void test_sharding(void **state) {
    (void)state;
    digcl_dataset *d = open_idx();
    const int batch = 4;
    for (int world = 1; world <= 3; world++) {
        const int64_t batches = digcl_dataset_batches_per_epoch(d, batch, world);
        assert_int_equal(batches, IDX_COUNT / world / batch);
        int seen[IDX_COUNT] = {0};
        for (int epoch = 0; epoch < 2; epoch++) {
            uint32_t *perm = reference_permutation(IDX_COUNT, 1234, epoch);
            memset(seen, 0, sizeof seen);
            for (int rank = 0; rank < world; rank++) {
                digcl_loader *l = make_loader(d, batch, rank, world, 2, 0);
                digcl_loader_seek(l, epoch, 0);
                for (int64_t b = 0; b < batches; b++) {
                    const digcl_batch *got = digcl_loader_next(l);
                    assert_int_equal(got->epoch, epoch);
                    assert_int_equal(got->index, b);
                    assert_int_equal(got->first_sample,
                                     ((epoch * batches + b) * world + rank) * batch);
                    for (int k = 0; k < batch; k++) {
                        int index = row_index(got, k);
                        assert_int_equal(index, perm[(b * world + rank) * batch + k]);
                        assert_int_equal(got->y[k], index % 10);
                        seen[index]++;
                    }
                    digcl_loader_release(l, got);
                }
                digcl_loader_destroy(l);
            }
            /* disjoint, and covering the epoch but its dropped tail */
            int covered = 0;
            for (int64_t p = 0; p < IDX_COUNT; p++) {
                int expected = p < world * batches * batch ? 1 : 0;
                assert_int_equal(seen[perm[p]], expected);
                covered += seen[perm[p]];
            }
            printf("  W=%d epoch %d: %d of %d entries, each once\n", world, epoch, covered,
                   IDX_COUNT);
            free(perm);
        }
    }
    digcl_dataset_close(d);
}

static uint64_t hash_batch(const digcl_batch *b, size_t row_floats) {
    uint64_t h = 1469598103934665603ull;
    const uint8_t *bytes = (const uint8_t *)b->x;
    for (size_t i = 0; i < (size_t)b->rows * row_floats * sizeof(float); i++)
        h = (h ^ bytes[i]) * 1099511628211ull;
    for (int i = 0; i < b->rows; i++) h = (h ^ (uint32_t)b->y[i]) * 1099511628211ull;
    return (h ^ (uint64_t)b->first_sample) * 1099511628211ull;
}

#define RUN_BATCHES 60 /* 25 batches per epoch at N = 4: crosses two epochs */

static void run_hashes(digcl_loader *l, uint64_t *hashes, int count) {
    for (int i = 0; i < count; i++) {
        const digcl_batch *b = digcl_loader_next(l);
        hashes[i] = hash_batch(b, 1024);
        digcl_loader_release(l, b);
    }
}

static void test_determinism_and_resume(void **state) {
    (void)state;
    digcl_dataset *d = open_idx();
    uint64_t reference[RUN_BATCHES], got[RUN_BATCHES];
    digcl_loader *l = make_loader(d, 4, 0, 1, 1, 1);
    run_hashes(l, reference, RUN_BATCHES);
    digcl_loader_destroy(l);
    for (int workers = 2; workers <= 4; workers += 2) {
        l = make_loader(d, 4, 0, 1, workers, 1);
        run_hashes(l, got, RUN_BATCHES);
        assert_memory_equal(got, reference, sizeof got);
        digcl_loader_destroy(l);
    }
    /* a fresh loader seeking to epoch 1, batch 7 = batch number 32 */
    l = make_loader(d, 4, 0, 1, 3, 1);
    digcl_loader_seek(l, 1, 7);
    run_hashes(l, got, 10);
    assert_memory_equal(got, reference + 32, 10 * sizeof got[0]);
    /* a running loader (batches decoded ahead, one held) seeking back */
    const digcl_batch *held = digcl_loader_next(l);
    (void)held;
    digcl_loader_seek(l, 0, 5);
    run_hashes(l, got, 5);
    assert_memory_equal(got, reference + 5, 5 * sizeof got[0]);
    digcl_loader_destroy(l);
    /* another seed changes the order */
    digcl_loader_options o = {4, 0, 1, 99, 2, 0, 1};
    char error[256];
    l = digcl_loader_create(d, &o, error, sizeof error);
    run_hashes(l, got, 3);
    assert_true(memcmp(got, reference, 3 * sizeof got[0]) != 0);
    digcl_loader_destroy(l);
    digcl_dataset_close(d);
}

static void test_flip(void **state) {
    (void)state;
    digcl_dataset *d = open_idx();
    float plain[1024], flipped[1024];
    int32_t y;
    char error[256];
    int flips = 0;
    digcl_rng_key key = {1234, DIGCL_RNG_FLIP};
    for (int index = 0; index < 40; index++) {
        const int epoch = index % 3;
        assert_int_equal(digcl_dataset_read(d, index, 1234, epoch, 0, plain, &y, error, 256), 0);
        assert_int_equal(digcl_dataset_read(d, index, 1234, epoch, 1, flipped, &y, error, 256), 0);
        int want = digcl_rng_uniform(key, (uint64_t)epoch, (uint64_t)index, 0) < 0.5f;
        for (int r = 0; r < 32; r++)
            for (int c = 0; c < 32; c++)
                assert_true(flipped[r * 32 + c] == plain[r * 32 + (want ? 31 - c : c)]);
        flips += want;
    }
    printf("  %d of 40 entries flipped\n", flips);
    assert_true(flips > 5 && flips < 35);
    digcl_dataset_close(d);
}

static void test_loader_errors(void **state) {
    (void)state;
    digcl_dataset *d = open_idx();
    digcl_loader_options o = {60, 0, 2, 1, 1, 0, 0};
    char error[512];
    assert_null(digcl_loader_create(d, &o, error, sizeof error));
    assert_non_null(strstr(error, "fewer than one batch of 60 for each of 2 ranks"));
    o = (digcl_loader_options){4, 2, 2, 1, 1, 0, 0};
    assert_null(digcl_loader_create(d, &o, error, sizeof error));
    assert_non_null(strstr(error, "rank 2 of world 2"));
    assert_int_equal(digcl_dataset_check_model(d, 1, 32, 10, error, sizeof error), 0);
    assert_int_equal(digcl_dataset_check_model(d, 1, 32, 1000, error, sizeof error), 0);
    assert_int_equal(digcl_dataset_check_model(d, 4, 32, 10, error, sizeof error), -1);
    assert_non_null(strstr(error, "1-channel images, but the model's in_channels is 4"));
    assert_int_equal(digcl_dataset_check_model(d, 1, 16, 10, error, sizeof error), -1);
    assert_non_null(strstr(error, "32x32 images, but the model's input_size is 16"));
    assert_int_equal(digcl_dataset_check_model(d, 1, 32, 5, error, sizeof error), -1);
    assert_non_null(strstr(error, "10 classes, but the model's num_classes is 5"));
    digcl_dataset_close(d);
}

/* -------------------------------------------------------------- latents */

/* A safetensors file with F16 `latents` (values k / 8, exact in F16). */
static void write_f16_latents(const char *path, int n, int c, int h, int w) {
    char header[512];
    size_t values = (size_t)n * c * h * w;
    int length = snprintf(header, sizeof header,
                          "{\"labels\":{\"dtype\":\"I64\",\"shape\":[%d],\"data_offsets\":[0,%d]},"
                          "\"latents\":{\"dtype\":\"F16\",\"shape\":[%d,%d,%d,%d],"
                          "\"data_offsets\":[%d,%zu]}}",
                          n, 8 * n, n, c, h, w, 8 * n, 8 * (size_t)n + 2 * values);
    size_t size = 8 + (size_t)length + 8 * (size_t)n + 2 * values;
    uint8_t *bytes = calloc(1, size), *p = bytes;
    for (int i = 0; i < 8; i++) *p++ = (uint8_t)((uint64_t)length >> (8 * i));
    memcpy(p, header, (size_t)length);
    p += length;
    for (int i = 0; i < n; i++, p += 8) p[0] = (uint8_t)(i % 3);
    for (size_t i = 0; i < values; i++, p += 2) {
        /* k / 8 for k = i % 16 - 8: sign, exponent and mantissa of binary16 */
        float v = (float)((int)(i % 16) - 8) / 8.0f;
        uint16_t half = 0;
        if (v != 0.0f) {
            int e;
            float m = frexpf(fabsf(v), &e); /* v = m 2^e, m in [0.5, 1) */
            half = (uint16_t)((v < 0 ? 0x8000 : 0) | ((e - 1 + 15) << 10) |
                              (uint16_t)lrintf((m * 2.0f - 1.0f) * 1024.0f));
        }
        p[0] = (uint8_t)half;
        p[1] = (uint8_t)(half >> 8);
    }
    data_write_file(path, bytes, size);
    free(bytes);
}

static void write_posterior(const char *path, const char *spread_name, int n, size_t row,
                            float *mean, float *spread) {
    test_rng rng = test_rng_seeded(7);
    test_fill_normal(&rng, mean, n * row, 1.0f);
    test_fill_uniform(&rng, spread, n * row, 0.1f, 0.9f);
    int64_t labels[16];
    for (int i = 0; i < n; i++) labels[i] = 2 * i;
    int64_t shape[4] = {n, 4, 2, 3}, label_shape[1] = {n};
    digcl_st_error err;
    digcl_st_writer *w = digcl_st_writer_new();
    assert_int_equal(digcl_st_writer_add_f32(w, "mean", 4, shape, mean, &err), 0);
    assert_int_equal(digcl_st_writer_add_f32(w, spread_name, 4, shape, spread, &err), 0);
    assert_int_equal(digcl_st_writer_add_i64(w, "labels", 1, label_shape, labels, &err), 0);
    assert_int_equal(digcl_st_writer_set_metadata(w, "vae", "sd-vae-ft-ema", &err), 0);
    assert_int_equal(digcl_st_writer_set_metadata(w, "scale", "0.5", &err), 0);
    assert_int_equal(digcl_st_writer_write(w, path, &err), 0);
    digcl_st_writer_free(w);
}

static void test_latents(void **state) {
    (void)state;
    char path[512], spec[600], error[512];
    data_path(path, sizeof path, "latents/f16.safetensors");
    write_f16_latents(path, 6, 4, 2, 3);
    snprintf(spec, sizeof spec, "latents:%s", path);
    digcl_dataset *d = data_open_or_fail(spec, NULL);
    const digcl_dataset_info *info = digcl_dataset_get_info(d);
    assert_info(info, DIGCL_DATASET_LATENTS, 6, 4, 2, 3, 3);
    assert_int_equal(info->has_posterior, 0);
    float x[24];
    int32_t y;
    assert_int_equal(digcl_dataset_read(d, 5, 0, 0, 0, x, &y, error, sizeof error), 0);
    assert_int_equal(y, 2);
    for (int i = 0; i < 24; i++) assert_true(x[i] == (float)((int)((5 * 24 + i) % 16) - 8) / 8.0f);
    assert_int_equal(digcl_dataset_check_model(d, 4, 2, 3, error, sizeof error), -1);
    assert_non_null(strstr(error, "2x3 latents, but the model's input_size is 2"));
    digcl_dataset_close(d);

    const char *spreads[2] = {"std", "logvar"};
    float mean[8 * 24], spread[8 * 24];
    for (int s = 0; s < 2; s++) {
        data_path(path, sizeof path, "latents/posterior_%s.safetensors", spreads[s]);
        write_posterior(path, spreads[s], 8, 24, mean, spread);
        snprintf(spec, sizeof spec, "latents:%s", path);
        d = data_open_or_fail(spec, NULL);
        info = digcl_dataset_get_info(d);
        assert_int_equal(info->has_posterior, 1);
        assert_int_equal(info->num_classes, 15);
        assert_string_equal(info->digcl_vae_format_name, "sd-vae-ft-ema");
        assert_true(info->latent_scale == 0.5f);
        digcl_rng_key key = {77, DIGCL_RNG_LATENT};
        float other[24];
        for (int epoch = 0; epoch < 2; epoch++) {
            assert_int_equal(
                digcl_dataset_read(d, 3, 77, epoch, 0, epoch ? other : x, &y, error, sizeof error),
                0);
            const float *got = epoch ? other : x;
            for (int i = 0; i < 24; i++) {
                float sd = spread[3 * 24 + i];
                if (s == 1) sd = expf(0.5f * sd);
                float eps = digcl_rng_normal(key, (uint64_t)epoch, 3, (uint64_t)i);
                float want = 0.5f * (mean[3 * 24 + i] + sd * eps);
                assert_true(fabsf(got[i] - want) <= 1e-6f * (1.0f + fabsf(want)));
            }
        }
        assert_true(memcmp(x, other, sizeof other) != 0); /* fresh draw per epoch */
        digcl_dataset_close(d);
    }
}

static void test_latent_errors(void **state) {
    (void)state;
    char path[512], spec[600];
    float values[2 * 24] = {1.0f};
    int64_t shape[4] = {2, 4, 2, 3}, wrong[4] = {2, 4, 3, 2}, labels[2] = {0, 1}, n[1] = {2};
    int64_t three[1] = {3}, labels3[3] = {0, 1, 2};
    struct {
        const char *name, *expected;
    } cases[] = {
        {"no_values", "no tensor 'latents'"},
        {"no_labels", "tensor 'labels' is missing, expected [2]"},
        {"short_labels", "tensor 'labels' is [3], expected [2]"},
        {"misshaped_std", "tensor 'std' has shape [2, 4, 3, 2], expected [2, 4, 2, 3] like 'mean'"},
        {"int_latents", "tensor 'latents' is I64, expected F32, F16 or BF16"},
        {"both", "holds both 'latents' and 'mean'"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        digcl_st_error err;
        digcl_st_writer *w = digcl_st_writer_new();
        const char *name = cases[c].name;
        int64_t big[48] = {0};
        if (strcmp(name, "no_values") == 0 || strcmp(name, "both") == 0)
            digcl_st_writer_add_f32(w, "mean", 4, shape, values, &err);
        if (strcmp(name, "no_labels") == 0 || strcmp(name, "short_labels") == 0 ||
            strcmp(name, "both") == 0)
            digcl_st_writer_add_f32(w, "latents", 4, shape, values, &err);
        if (strcmp(name, "misshaped_std") == 0) {
            digcl_st_writer_add_f32(w, "mean", 4, shape, values, &err);
            digcl_st_writer_add_f32(w, "std", 4, wrong, values, &err);
        }
        if (strcmp(name, "int_latents") == 0)
            digcl_st_writer_add_i64(w, "latents", 4, shape, big, &err);
        if (strcmp(name, "short_labels") == 0)
            digcl_st_writer_add_i64(w, "labels", 1, three, labels3, &err);
        else if (strcmp(name, "no_labels") != 0)
            digcl_st_writer_add_i64(w, "labels", 1, n, labels, &err);
        data_path(path, sizeof path, "latents/bad_%s.safetensors", name);
        assert_int_equal(digcl_st_writer_write(w, path, &err), 0);
        digcl_st_writer_free(w);
        snprintf(spec, sizeof spec, "latents:%s", path);
        data_expect_open_error(spec, NULL, cases[c].expected);
    }
    data_path(path, sizeof path, "latents/garbage.safetensors");
    data_write_file(path, "0123456789abcdef", 16);
    snprintf(spec, sizeof spec, "latents:%s", path);
    data_expect_open_error(spec, NULL, "garbage.safetensors");
    data_expect_open_error("latents:/nonexistent/l.safetensors", NULL,
                           "/nonexistent/l.safetensors: cannot open");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_idx_contents),
        cmocka_unit_test(test_fashion_mnist),
        cmocka_unit_test(test_idx_errors),
        cmocka_unit_test(test_sharding),
        cmocka_unit_test(test_determinism_and_resume),
        cmocka_unit_test(test_flip),
        cmocka_unit_test(test_loader_errors),
        cmocka_unit_test(test_latents),
        cmocka_unit_test(test_latent_errors),
    };
    return cmocka_run_group_tests(tests, data_make_temp_root, data_remove_temp_root);
}
