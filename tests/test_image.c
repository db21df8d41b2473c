/* Tests of the sample output side (src/io/image_*.c, src/io/file.c):
 * - model range -> uint8 against a double reference, crop windows (32 -> 28
 *   takes rows and columns 2..29), NaN and out-of-range values;
 * - PNG round trips (grey and RGB, read back with libpng) with tEXt and iTXt
 *   chunks; bad keys and unwritable folders fail naming the file, and leave
 *   no temp file; a failing writer leaves the old file untouched;
 * - grids: exact size for each caption mode, upscaled cells in place, caption
 *   text actually drawn in the strip (dark pixels) and nowhere else;
 * - .npz: the archive read back through libzip (valid .npy v1.0 members,
 *   64-byte aligned, grey replicated to 3 channels, int64 labels), and through
 *   numpy.load when /usr/bin/python3 has numpy;
 * - same-file check and the XXH3 file hash.
 */
#include <dirent.h>
#include <math.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digcl/file.h"
#include "digcl/image.h"
#include "test_util.h"

#ifdef DIGCL_HAVE_ZIP
#include <zip.h>
#endif

/* Number of entries in test_temp_dir whose name contains ".tmp.". */
static int temp_files_left(void) {
    DIR *dir = opendir(test_temp_dir);
    int count = 0;
    for (struct dirent *e; dir && (e = readdir(dir));)
        if (strstr(e->d_name, ".tmp.")) count++;
    if (dir) closedir(dir);
    return count;
}

static digcl_image random_image(test_rng *rng, int width, int height, int channels) {
    digcl_image image;
    assert_int_equal(digcl_image_alloc(&image, width, height, channels), 0);
    size_t n = (size_t)width * (size_t)height * (size_t)channels;
    for (size_t i = 0; i < n; i++) image.pixels[i] = (uint8_t)(test_uniform(rng) * 256.0);
    return image;
}

/* ------------------------------------------------------------ conversion */

static void test_from_model_matches_reference(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(11);
    enum { C = 3, H = 5, W = 7 };
    float x[C * H * W];
    test_fill_uniform(&rng, x, C * H * W, -1.3f, 1.3f);
    x[0] = NAN;
    x[1] = -1.0f; /* 0.5 -> 0 */
    x[2] = 1.0f;  /* 255.5 -> 255 */
    uint8_t pixels[C * H * W];
    digcl_image_from_model(x, C, H, W, 0, pixels);
    int checked = 0;
    for (int k = 0; k < C; k++)
        for (int i = 0; i < H * W; i++) {
            double v = 127.5 * (double)x[k * H * W + i] + 128.0;
            double want = isnan(v) ? 0.0 : floor(fmin(255.0, fmax(0.0, v)));
            if (!isnan(v) && fabs(v - round(v)) < 1e-3) continue; /* float rounding at a step */
            assert_int_equal(pixels[i * C + k], (int)want);
            checked++;
        }
    assert_true(checked > C * H * W * 9 / 10);
    assert_int_equal(pixels[0], 0);
    assert_int_equal(pixels[C], 0);
    assert_int_equal(pixels[2 * C], 255);
}

/* 32 -> 28: pixel (r, c) of the crop is the source's (r + 2, c + 2). */
static void test_from_model_crop_window(void **state) {
    (void)state;
    enum { S = 32, K = 28 };
    float *x = malloc(S * S * sizeof *x);
    for (int r = 0; r < S; r++)
        for (int c = 0; c < S; c++) x[r * S + c] = ((float)(r * S + c) / (S * S)) * 1.9f - 0.95f;
    uint8_t pixels[K * K];
    uint8_t full[S * S];
    digcl_image_from_model(x, 1, S, S, K, pixels);
    digcl_image_from_model(x, 1, S, S, 0, full);
    for (int r = 0; r < K; r++)
        for (int c = 0; c < K; c++) assert_int_equal(pixels[r * K + c], full[(r + 2) * S + c + 2]);
    free(x);
}

/* ------------------------------------------------------------ PNG */

typedef struct png_contents {
    digcl_image image;
    char texts[4][2][2048]; /* key, value */
    int text_count;
} png_contents;

static void read_png(const char *path, png_contents *out) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_int_equal(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_read_png(png, info, PNG_TRANSFORM_IDENTITY, NULL);
    int width = (int)png_get_image_width(png, info), height = (int)png_get_image_height(png, info);
    int channels = png_get_channels(png, info);
    assert_int_equal(png_get_bit_depth(png, info), 8);
    assert_int_equal(digcl_image_alloc(&out->image, width, height, channels), 0);
    png_bytepp rows = png_get_rows(png, info);
    for (int r = 0; r < height; r++)
        memcpy(out->image.pixels + (size_t)r * (size_t)width * (size_t)channels, rows[r],
               (size_t)width * (size_t)channels);
    png_textp texts = NULL;
    int n = png_get_text(png, info, &texts, NULL);
    for (int i = 0; i < n && i < 4; i++) {
        snprintf(out->texts[i][0], sizeof out->texts[i][0], "%s", texts[i].key);
        snprintf(out->texts[i][1], sizeof out->texts[i][1], "%s", texts[i].text);
    }
    out->text_count = n;
    png_destroy_read_struct(&png, &info, NULL);
    fclose(f);
}

static void check_png_round_trip(int channels) {
    test_rng rng = test_rng_seeded(20 + (uint64_t)channels);
    digcl_image image = random_image(&rng, 13, 9, channels);
    const char *json = "{\"checkpoint_xxh3\":\"0123456789abcdef\",\"class_name\":\"Ankle boot\"}";
    digcl_png_text texts[] = {
        {"parameters",
         "Steps: 250, Sampler: ddpm, CFG scale: 4.0, Seed: 42, Size: 13x9, Model: m, Class: 3"},
        {"digcl", json},
        {"utf8", "T-shirt \xe2\x80\x93 caf\xc3\xa9"},
    };
    char path[512], error[512];
    test_temp_path(path, sizeof path, channels == 1 ? "grey.png" : "rgb.png");
    assert_int_equal(digcl_png_write(path, &image, texts, 3, error, sizeof error), 0);
    png_contents got;
    read_png(path, &got);
    assert_int_equal(got.image.width, 13);
    assert_int_equal(got.image.height, 9);
    assert_int_equal(got.image.channels, channels);
    assert_memory_equal(got.image.pixels, image.pixels, (size_t)13 * 9 * (size_t)channels);
    assert_int_equal(got.text_count, 3);
    for (int i = 0; i < 3; i++) {
        assert_string_equal(got.texts[i][0], texts[i].key);
        assert_string_equal(got.texts[i][1], texts[i].value);
    }
    assert_int_equal(temp_files_left(), 0);
    digcl_image_free(&got.image);
    digcl_image_free(&image);
}

static void test_png_round_trip_grey(void **state) {
    (void)state;
    check_png_round_trip(1);
}

static void test_png_round_trip_rgb(void **state) {
    (void)state;
    check_png_round_trip(3);
}

static void test_png_errors_name_the_file(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(30);
    digcl_image image = random_image(&rng, 4, 4, 1);
    char path[512], error[512];
    test_temp_path(path, sizeof path, "no-such-folder/out.png");
    assert_int_equal(digcl_png_write(path, &image, NULL, 0, error, sizeof error), -1);
    assert_non_null(strstr(error, path));
    assert_non_null(strstr(error, "temp file"));

    digcl_png_text bad = {"", "x"};
    test_temp_path(path, sizeof path, "badkey.png");
    assert_int_equal(digcl_png_write(path, &image, &bad, 1, error, sizeof error), -1);
    assert_non_null(strstr(error, "key"));
    assert_int_equal(access(path, F_OK), -1);

    image.channels = 2;
    assert_int_equal(digcl_png_write(path, &image, NULL, 0, error, sizeof error), -1);
    assert_non_null(strstr(error, "expected grey (1) or RGB (3)"));
    image.channels = 1;
    assert_int_equal(temp_files_left(), 0);
    digcl_image_free(&image);
}

static int failing_writer(FILE *f, const char *path, void *user, char *error, size_t size) {
    (void)user;
    fputs("partial", f);
    snprintf(error, size, "%s: the content failed on purpose", path);
    return -1;
}

/* A failed write leaves the previous file as it was and no temp file. */
static void test_atomic_write_keeps_old_file(void **state) {
    (void)state;
    char path[512], error[512], buf[64] = {0};
    test_temp_path(path, sizeof path, "kept.txt");
    assert_int_equal(digcl_file_write_bytes_atomic(path, "old", 3, error, sizeof error), 0);
    assert_int_equal(digcl_file_write_atomic(path, failing_writer, NULL, error, sizeof error), -1);
    assert_non_null(strstr(error, "on purpose"));
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(buf, 1, sizeof buf - 1, f), 3);
    fclose(f);
    assert_string_equal(buf, "old");
    assert_int_equal(temp_files_left(), 0);
}

/* ------------------------------------------------------------ grid */

typedef struct grid_case {
    digcl_image cells[10];
    const char *labels[10];
} grid_case;

static void make_grid_case(grid_case *g, int channels) {
    static const char *const names[10] = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                          "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                          "Bag",         "Ankle boot"};
    test_rng rng = test_rng_seeded(40);
    for (int i = 0; i < 10; i++) {
        g->cells[i] = random_image(&rng, 7, 6, channels);
        g->labels[i] = names[i];
    }
}

static void free_grid_case(grid_case *g) {
    for (int i = 0; i < 10; i++) digcl_image_free(&g->cells[i]);
}

/* Count of pixels darker than 128 in a rectangle (first channel). */
static int dark_pixels(const digcl_image *im, int x0, int y0, int x1, int y1) {
    int count = 0;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++)
            count +=
                im->pixels[((size_t)y * (size_t)im->width + (size_t)x) * (size_t)im->channels] <
                128;
    return count;
}

static void check_cell_in_place(const digcl_image *grid, const digcl_image *cell, int scale, int x0,
                                int y0) {
    int ch = grid->channels;
    for (int y = 0; y < cell->height * scale; y++)
        for (int x = 0; x < cell->width * scale; x++)
            for (int k = 0; k < ch; k++) {
                uint8_t want =
                    cell->pixels[((size_t)(y / scale) * (size_t)cell->width + (size_t)(x / scale)) *
                                     (size_t)ch +
                                 (size_t)k];
                uint8_t got =
                    grid->pixels[((size_t)(y0 + y) * (size_t)grid->width + (size_t)(x0 + x)) *
                                     (size_t)ch +
                                 (size_t)k];
                assert_int_equal(got, want);
            }
}

static void test_grid_without_captions(void **state) {
    (void)state;
    grid_case g;
    make_grid_case(&g, 3);
    digcl_grid_options o = {3, 2, 2, DIGCL_CAPTION_NONE, NULL};
    digcl_image out;
    char error[256];
    assert_int_equal(digcl_grid_compose(g.cells, 10, &o, &out, error, sizeof error), 0);
    /* 10 images in 3 rows: 4 columns, then rows = ceil(10 / 4) = 3 */
    assert_int_equal(out.width, 4 * (14 + 2) + 2);
    assert_int_equal(out.height, 3 * (12 + 2) + 2);
    assert_int_equal(out.channels, 3);
    for (int i = 0; i < 10; i++)
        check_cell_in_place(&out, &g.cells[i], 2, 2 + (i % 4) * 16, 2 + (i / 4) * 14);
    assert_int_equal(out.pixels[0], 255); /* background */
    digcl_image_free(&out);
    free_grid_case(&g);
}

static void test_grid_row_captions(void **state) {
    (void)state;
    if (!digcl_grid_has_captions()) skip();
    grid_case g;
    make_grid_case(&g, 1);
    digcl_grid_options o = {5, 3, 2, DIGCL_CAPTION_ROWS, g.labels};
    digcl_image out;
    char error[256];
    assert_int_equal(digcl_grid_compose(g.cells, 10, &o, &out, error, sizeof error), 0);
    int grid_w = 2 * (21 + 2) + 2;
    int left = out.width - grid_w;
    assert_true(left > 20); /* room for the widest name */
    assert_int_equal(out.height, 5 * (18 + 2) + 2);
    assert_int_equal(out.channels, 1);
    for (int r = 0; r < 5; r++) {
        int y0 = 2 + r * 20;
        assert_true(dark_pixels(&out, 0, y0, left, y0 + 18) > 10); /* caption of row r */
        for (int c = 0; c < 2; c++)
            check_cell_in_place(&out, &g.cells[r * 2 + c], 3, left + 2 + c * 23, y0);
    }
    assert_int_equal(dark_pixels(&out, 0, 0, left, 2), 0); /* nothing above the first row */
    digcl_image_free(&out);
    free_grid_case(&g);
}

static void test_grid_cell_captions(void **state) {
    (void)state;
    if (!digcl_grid_has_captions()) skip();
    grid_case g;
    make_grid_case(&g, 3);
    digcl_grid_options o = {2, 8, 4, DIGCL_CAPTION_CELLS, g.labels};
    digcl_image out;
    char error[256];
    assert_int_equal(digcl_grid_compose(g.cells, 10, &o, &out, error, sizeof error), 0);
    int cell_w = 56, cell_h = 48, strip = (int)fmin(14.0, fmax(8.0, cell_w / 6.0)) + 4;
    assert_int_equal(out.width, 5 * (cell_w + 4) + 4);
    assert_int_equal(out.height, 2 * (cell_h + strip + 4) + 4);
    for (int i = 0; i < 10; i++) {
        int x0 = 4 + (i % 5) * (cell_w + 4), y0 = 4 + (i / 5) * (cell_h + strip + 4);
        check_cell_in_place(&out, &g.cells[i], 8, x0, y0);
        assert_true(dark_pixels(&out, x0, y0 + cell_h, x0 + cell_w, y0 + cell_h + strip) > 5);
    }
    digcl_image_free(&out);
    free_grid_case(&g);
}

static void test_grid_rejects_mixed_sizes(void **state) {
    (void)state;
    grid_case g;
    make_grid_case(&g, 1);
    g.cells[4].width = 3;
    digcl_grid_options o = {2, 1, 0, DIGCL_CAPTION_NONE, NULL};
    digcl_image out;
    char error[256];
    assert_int_equal(digcl_grid_compose(g.cells, 10, &o, &out, error, sizeof error), -1);
    assert_non_null(strstr(error, "image 4"));
    g.cells[4].width = 7;
    o.rows = 0;
    assert_int_equal(digcl_grid_compose(g.cells, 10, &o, &out, error, sizeof error), -1);
    free_grid_case(&g);
}

/* ------------------------------------------------------------ npz */

#ifdef DIGCL_HAVE_ZIP
static unsigned char *read_member(zip_t *archive, const char *name, size_t *size) {
    zip_stat_t st;
    assert_int_equal(zip_stat(archive, name, 0, &st), 0);
    assert_int_equal(st.comp_method, ZIP_CM_STORE);
    unsigned char *bytes = malloc(st.size);
    zip_file_t *f = zip_fopen(archive, name, 0);
    assert_non_null(f);
    assert_int_equal(zip_fread(f, bytes, st.size), (zip_int64_t)st.size);
    zip_fclose(f);
    *size = st.size;
    return bytes;
}

/* The .npy header: magic, v1.0, aligned, and the dict we expect. */
static size_t check_npy_header(const unsigned char *bytes, size_t size, const char *dict_prefix) {
    assert_true(size > 10);
    assert_memory_equal(bytes, "\x93NUMPY\x01\x00", 8);
    size_t header = 10 + (size_t)bytes[8] + 256u * bytes[9];
    assert_int_equal(header % 64, 0);
    assert_int_equal(bytes[header - 1], '\n');
    assert_memory_equal(bytes + 10, dict_prefix, strlen(dict_prefix));
    return header;
}
#endif

static void test_npz_contents(void **state) {
    (void)state;
#ifndef DIGCL_HAVE_ZIP
    skip();
#else
    test_rng rng = test_rng_seeded(50);
    enum { N = 3, H = 4, W = 5 };
    digcl_image images[N];
    int32_t labels[N] = {7, 0, 9};
    for (int i = 0; i < N; i++) images[i] = random_image(&rng, W, H, 1);
    char path[512], error[512];
    test_temp_path(path, sizeof path, "samples.npz");
    assert_int_equal(digcl_npz_write(path, images, N, labels, error, sizeof error), 0);
    int zerr = 0;
    zip_t *archive = zip_open(path, ZIP_RDONLY, &zerr);
    assert_non_null(archive);
    size_t size;
    unsigned char *arr0 = read_member(archive, "arr_0.npy", &size);
    size_t h0 = check_npy_header(
        arr0, size, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 4, 5, 3), }");
    assert_int_equal(size - h0, (size_t)N * H * W * 3);
    for (int i = 0; i < N; i++)
        for (int p = 0; p < H * W; p++)
            for (int k = 0; k < 3; k++)
                assert_int_equal(arr0[h0 + ((size_t)i * H * W + (size_t)p) * 3 + (size_t)k],
                                 images[i].pixels[p]);
    unsigned char *arr1 = read_member(archive, "arr_1.npy", &size);
    size_t h1 =
        check_npy_header(arr1, size, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }");
    assert_int_equal(size - h1, 24);
    for (int i = 0; i < N; i++) {
        int64_t v;
        memcpy(&v, arr1 + h1 + 8 * (size_t)i, 8); /* little-endian host */
        assert_int_equal(v, labels[i]);
    }
    zip_close(archive);
    free(arr0);
    free(arr1);
    assert_int_equal(temp_files_left(), 0);
    for (int i = 0; i < N; i++) digcl_image_free(&images[i]);
#endif
}

/* numpy.load agrees (when Debian's python3 has numpy). */
static void test_npz_loads_in_numpy(void **state) {
    (void)state;
#ifndef DIGCL_HAVE_ZIP
    skip();
#else
    if (system("/usr/bin/python3 -c 'import numpy' >/dev/null 2>&1") != 0) skip();
    test_rng rng = test_rng_seeded(60);
    enum { N = 4, S = 6 };
    digcl_image images[N];
    int32_t labels[N] = {1, 2, 3, 4};
    long sum = 0;
    for (int i = 0; i < N; i++) {
        images[i] = random_image(&rng, S, S, 3);
        for (int p = 0; p < S * S * 3; p++) sum += images[i].pixels[p];
    }
    char path[512], error[512], command[1024];
    test_temp_path(path, sizeof path, "rgb.npz");
    assert_int_equal(digcl_npz_write(path, images, N, labels, error, sizeof error), 0);
    snprintf(
        command, sizeof command,
        "/usr/bin/python3 -c \"import numpy as np, sys; a = np.load('%s'); x = a['arr_0']; y = a['arr_1'];"
        " ok = x.dtype == np.uint8 and x.shape == (4, 6, 6, 3) and int(x.sum()) == %ld and"
        " x[2, 1, 3, 2] == %d and y.dtype == np.int64 and list(y) == [1, 2, 3, 4]; sys.exit(0 if ok else 1)\"",
        path, sum, images[2].pixels[(1 * S + 3) * 3 + 2]);
    assert_int_equal(system(command), 0);
    for (int i = 0; i < N; i++) digcl_image_free(&images[i]);
#endif
}

static void test_npz_errors(void **state) {
    (void)state;
    test_rng rng = test_rng_seeded(70);
    digcl_image images[2] = {random_image(&rng, 4, 4, 1), random_image(&rng, 4, 5, 1)};
    char path[512], error[512];
    test_temp_path(path, sizeof path, "bad.npz");
    assert_int_equal(digcl_npz_write(path, images, 2, NULL, error, sizeof error), -1);
    assert_non_null(strstr(error, "image 1"));
    test_temp_path(path, sizeof path, "missing/dir.npz");
    assert_int_equal(digcl_npz_write(path, images, 1, NULL, error, sizeof error), -1);
    assert_non_null(strstr(error, path));
    assert_int_equal(temp_files_left(), 0);
    digcl_image_free(&images[0]);
    digcl_image_free(&images[1]);
}

/* ------------------------------------------------------------ files */

static void test_same_file_and_hash(void **state) {
    (void)state;
    char a[512], b[512], link_path[512], error[256];
    test_temp_path(a, sizeof a, "a.bin");
    test_temp_path(b, sizeof b, "b.bin");
    test_temp_path(link_path, sizeof link_path, "a-link.bin");
    assert_int_equal(digcl_file_write_bytes_atomic(a, "hello", 5, error, sizeof error), 0);
    assert_int_equal(digcl_file_write_bytes_atomic(b, "hellp", 5, error, sizeof error), 0);
    assert_int_equal(symlink(a, link_path), 0);
    assert_int_equal(digcl_file_same(a, link_path), 1);
    assert_int_equal(digcl_file_same(a, b), 0);
    assert_int_equal(digcl_file_same(a, "/no/such/file"), 0);
    uint64_t ha = 0, ha2 = 1, hb = 0;
    assert_int_equal(digcl_file_xxh3(a, &ha, error, sizeof error), 0);
    assert_int_equal(digcl_file_xxh3(link_path, &ha2, error, sizeof error), 0);
    assert_int_equal(digcl_file_xxh3(b, &hb, error, sizeof error), 0);
    assert_true(ha == ha2);
    assert_true(ha != hb);
    assert_int_equal(digcl_file_xxh3("/no/such/file", &ha, error, sizeof error), -1);
    assert_non_null(strstr(error, "/no/such/file"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_model_matches_reference),
        cmocka_unit_test(test_from_model_crop_window),
        cmocka_unit_test(test_png_round_trip_grey),
        cmocka_unit_test(test_png_round_trip_rgb),
        cmocka_unit_test(test_png_errors_name_the_file),
        cmocka_unit_test(test_atomic_write_keeps_old_file),
        cmocka_unit_test(test_grid_without_captions),
        cmocka_unit_test(test_grid_row_captions),
        cmocka_unit_test(test_grid_cell_captions),
        cmocka_unit_test(test_grid_rejects_mixed_sizes),
        cmocka_unit_test(test_npz_contents),
        cmocka_unit_test(test_npz_loads_in_numpy),
        cmocka_unit_test(test_npz_errors),
        cmocka_unit_test(test_same_file_and_hash),
    };
    return cmocka_run_group_tests(tests, test_temp_dir_setup, test_temp_dir_teardown);
}
