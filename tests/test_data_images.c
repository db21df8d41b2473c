/* Tests of the image-folder data source (src/data/image_folder.c,
 * image_decode.c, image_crop.c):
 * - ADM's center_crop_arr against PIL: the committed fixtures of
 *   tests/reference/crop (crop_reference.py: photo-like JPEG and PNG, odd
 *   sizes, a 5x7 image, 300x23 and 19x140 aspect ratios, grey, grey+alpha,
 *   RGBA, palette, 16-bit RGB, CMYK JPEG) at S = 16, 32, 64 and grey at 32:
 *   mean absolute difference below 1 grey level in every case;
 * - PNG of every colour type and bit depth and JPEG grey/RGB/CMYK written
 *   here with libpng and TurboJPEG from known pixels decode to those pixels;
 * - ImageFolder order: classes by byte-wise folder name, files by (folder,
 *   name) within each class, subfolders walked, other files ignored;
 * - bad input: a corrupt, truncated or unsupported file names the file
 *   (and the loader's fatal error does too); --skip-bad-images skips and
 *   counts; an empty class folder or a root without classes is an error.
 */
#include <png.h>
#include <turbojpeg.h>

#include "data_helpers.h"
#include "digcl/log.h"

/* The fixtures; $DIGCL_CROP_DIR points elsewhere (ctest data_crop_pil writes
 * fresh ones with the installed PIL, crop_reference.py --photo real photos). */
static const char *crop_dir(void) {
    const char *dir = getenv("DIGCL_CROP_DIR");
    return dir && *dir ? dir : "tests/reference/crop";
}

/* The crop of one image file as digcl computes it, u8 [S, S, C]. */
static uint8_t *digcl_crop(const char *image_path, int size, int channels, const char *tag) {
    char dir[512], link_path[512], real[4096];
    real[0] = '\0';
    if (image_path[0] != '/') {
        assert_non_null(getcwd(real, sizeof real));
        strncat(real, "/", sizeof real - strlen(real) - 1);
    }
    strncat(real, image_path, sizeof real - strlen(real) - 1);
    snprintf(dir, sizeof dir, "%s/%s", data_temp_root, tag);
    data_path(link_path, sizeof link_path, "%s/class/%s", tag, strrchr(image_path, '/') + 1);
    unlink(link_path);
    assert_int_equal(symlink(real, link_path), 0);
    digcl_dataset_options options = {size, channels, 0, NULL};
    digcl_dataset *d = data_open_or_fail(dir, &options);
    const size_t n = (size_t)size * size * channels;
    float *x = malloc(n * sizeof *x);
    uint8_t *pixels = malloc(n);
    int32_t y = -1;
    char error[1024];
    if (digcl_dataset_read(d, 0, 1, 0, 0, x, &y, error, sizeof error) != 0)
        fail_msg("read %s: %s", image_path, error);
    assert_int_equal(y, 0);
    for (size_t i = 0; i < n; i++) { /* [C, S, S] -> [S, S, C] */
        size_t c = i / ((size_t)size * size), p = i % ((size_t)size * size);
        pixels[p * channels + c] = data_float_to_pixel(x[i]);
    }
    free(x);
    digcl_dataset_close(d);
    unlink(link_path);
    return pixels;
}

static void test_crop_matches_pil(void **state) {
    (void)state;
    char listing[512];
    snprintf(listing, sizeof listing, "%s/cases.txt", crop_dir());
    FILE *cases = fopen(listing, "r");
    assert_non_null(cases);
    char line[512];
    int count = 0;
    double worst_mean = 0.0;
    while (fgets(line, sizeof line, cases)) {
        char name[128], expected_name[160];
        int size, channels;
        if (line[0] == '#' ||
            sscanf(line, "%127s %d %d %159s", name, &size, &channels, expected_name) != 4)
            continue;
        char image[256], expected_path[256];
        snprintf(image, sizeof image, "%s/%s", crop_dir(), name);
        snprintf(expected_path, sizeof expected_path, "%s/%s", crop_dir(), expected_name);
        uint8_t *got = digcl_crop(image, size, channels, "got");
        uint8_t *want = digcl_crop(expected_path, size, channels, "want"); /* identity */
        const size_t n = (size_t)size * size * channels;
        double sum = 0.0;
        int largest = 0;
        for (size_t i = 0; i < n; i++) {
            int diff = abs((int)got[i] - (int)want[i]);
            sum += diff;
            if (diff > largest) largest = diff;
        }
        double mean = sum / (double)n;
        printf("  %-24s S=%-3d C=%d  mean |diff| %.3f  max %d\n", name, size, channels, mean,
               largest);
        if (mean > worst_mean) worst_mean = mean;
        assert_true(mean < 1.0);
        free(got);
        free(want);
        count++;
    }
    fclose(cases);
    printf("  %d crops, worst mean |diff| %.3f grey levels\n", count, worst_mean);
    assert_true(count >= (getenv("DIGCL_CROP_DIR") ? 1 : 40));
}

/* ------------------------------------------------------------ writers */

/* A PNG of w x h samples (`channels` per pixel for the colour type, values
 * below 2^depth) written with libpng; palette: 8 entries of gray levels. */
static void write_png(const char *path, int w, int h, int color_type, int depth,
                      const uint16_t *samples, int interlace) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_int_equal(setjmp(png_jmpbuf(png)), 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color palette[8];
        png_byte alpha[8];
        for (int i = 0; i < 8; i++) {
            palette[i] =
                (png_color){(png_byte)(i * 30), (png_byte)(255 - i * 20), (png_byte)(i * 7)};
            alpha[i] = (png_byte)(i * 31);
        }
        png_set_PLTE(png, info, palette, 8);
        png_set_tRNS(png, info, alpha, 8, NULL);
    }
    png_write_info(png, info);
    const int channels = png_get_channels(png, info);
    size_t row_bytes = png_get_rowbytes(png, info);
    uint8_t *rows = calloc((size_t)h, row_bytes);
    png_bytep pointers[64];
    for (int y = 0; y < h; y++) {
        uint8_t *row = rows + (size_t)y * row_bytes;
        pointers[y] = row;
        for (int i = 0; i < w * channels; i++) {
            unsigned v = samples[(size_t)y * w * channels + i];
            if (depth == 16) {
                row[2 * i] = (uint8_t)(v >> 8);
                row[2 * i + 1] = (uint8_t)v;
            } else if (depth == 8) {
                row[i] = (uint8_t)v;
            } else { /* packed, most significant bits first */
                int bit = i * depth;
                row[bit / 8] |= (uint8_t)(v << (8 - depth - bit % 8));
            }
        }
    }
    png_write_image(png, pointers);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    fclose(f);
}

/* JPEG bytes of RGB or CMYK pixels (TurboJPEG, quality 100, no subsampling). */
static unsigned char *write_jpeg(const char *path, const uint8_t *pixels, int w, int h, int format,
                                 unsigned long *size) {
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    int sampling = format == TJPF_GRAY ? TJSAMP_GRAY : TJSAMP_444;
    assert_int_equal(tjCompress2(tj, pixels, w, 0, h, format, &jpeg, size, sampling, 100, 0), 0);
    tjDestroy(tj);
    data_write_file(path, jpeg, *size);
    return jpeg;
}

/* The [C, S, S] floats of entry 0 of a one-image folder, as bytes [S, S, C]. */
static void read_single(const char *dir, int size, int channels, uint8_t *out) {
    digcl_dataset_options options = {size, channels, 0, NULL};
    digcl_dataset *d = data_open_or_fail(dir, &options);
    float x[3 * 64 * 64];
    int32_t y;
    char error[1024];
    if (digcl_dataset_read(d, 0, 0, 0, 0, x, &y, error, sizeof error) != 0)
        fail_msg("%s: %s", dir, error);
    const int plane = size * size;
    for (int i = 0; i < plane * channels; i++)
        out[(i % plane) * channels + i / plane] = data_float_to_pixel(x[i]);
    digcl_dataset_close(d);
}

/* ----------------------------------------------------------- decoding */

typedef struct png_case {
    const char *name;
    int color_type, depth, interlace;
} png_case;

static void test_png_color_types(void **state) {
    (void)state;
    static const png_case cases[] = {
        {"grey1", PNG_COLOR_TYPE_GRAY, 1, 0},
        {"grey2", PNG_COLOR_TYPE_GRAY, 2, 0},
        {"grey4", PNG_COLOR_TYPE_GRAY, 4, 0},
        {"grey8", PNG_COLOR_TYPE_GRAY, 8, 0},
        {"grey16", PNG_COLOR_TYPE_GRAY, 16, 0},
        {"grey_alpha8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0},
        {"grey_alpha16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0},
        {"rgb8", PNG_COLOR_TYPE_RGB, 8, 0},
        {"rgb16", PNG_COLOR_TYPE_RGB, 16, 0},
        {"rgba8", PNG_COLOR_TYPE_RGBA, 8, 0},
        {"rgba16", PNG_COLOR_TYPE_RGBA, 16, 1},
        {"palette4", PNG_COLOR_TYPE_PALETTE, 4, 0},
        {"palette8", PNG_COLOR_TYPE_PALETTE, 8, 1},
        {"rgb8_interlaced", PNG_COLOR_TYPE_RGB, 8, 1},
    };
    enum { W = 7, H = 6 };
    for (size_t n = 0; n < sizeof cases / sizeof cases[0]; n++) {
        const png_case *c = &cases[n];
        const int is_palette = c->color_type == PNG_COLOR_TYPE_PALETTE;
        const int channels = is_palette ? 1
                                        : (c->color_type & PNG_COLOR_MASK_COLOR ? 3 : 1) +
                                              (c->color_type & PNG_COLOR_MASK_ALPHA ? 1 : 0);
        const unsigned top = is_palette ? 7u : (1u << c->depth) - 1u;
        uint16_t samples[W * H * 4];
        uint8_t want[W * H * 3];
        for (int p = 0; p < W * H; p++) {
            for (int k = 0; k < channels; k++)
                samples[p * channels + k] =
                    (uint16_t)((p * 37u + k * 11u + (unsigned)p * p * 5u) % (top + 1));
            for (int k = 0; k < 3; k++) {
                unsigned v;
                if (is_palette) {
                    unsigned i = samples[p];
                    v = k == 0 ? i * 30 : k == 1 ? 255 - i * 20 : i * 7;
                } else {
                    unsigned s = samples[p * channels + (channels >= 3 ? k : 0)];
                    v = c->depth == 16 ? s >> 8 : s * 255u / top;
                }
                want[p * 3 + k] = (uint8_t)v;
            }
        }
        char dir[512], path[512];
        data_path(path, sizeof path, "png_%s/class/image.png", c->name);
        snprintf(dir, sizeof dir, "%s/png_%s", data_temp_root, c->name);
        write_png(path, W, H, c->color_type, c->depth, samples, c->interlace);
        uint8_t got[W * W * 3], grey[W * W];
        read_single(dir, H, 3, got); /* short side 6 = S: no resize, crop columns 0..5 */
        for (int y = 0; y < H; y++)
            for (int x = 0; x < H; x++)
                for (int k = 0; k < 3; k++)
                    if (got[(y * H + x) * 3 + k] != want[(y * W + x) * 3 + k])
                        fail_msg("%s: pixel (%d, %d) channel %d is %d, expected %d", c->name, y, x,
                                 k, got[(y * H + x) * 3 + k], want[(y * W + x) * 3 + k]);
        read_single(dir, H, 1, grey);
        for (int y = 0; y < H; y++)
            for (int x = 0; x < H; x++) {
                const uint8_t *rgb = want + (y * W + x) * 3;
                unsigned l = (rgb[0] * 19595u + rgb[1] * 38470u + rgb[2] * 7471u + 0x8000u) >> 16;
                assert_int_equal(grey[y * H + x], l);
            }
        printf("  %-16s ok (RGB and grey)\n", c->name);
    }
}

static void test_jpeg_kinds(void **state) {
    (void)state;
    enum { S = 16 };
    uint8_t rgb[S * S * 3], grey[S * S], cmyk[S * S * 4], got[S * S * 3];
    for (int p = 0; p < S * S; p++) {
        int y = p / S, x = p % S;
        rgb[3 * p] = (uint8_t)(40 + 8 * x);
        rgb[3 * p + 1] = (uint8_t)(200 - 6 * y);
        rgb[3 * p + 2] = (uint8_t)(100 + 3 * (x + y));
        grey[p] = (uint8_t)(20 + 7 * x + 5 * y);
        for (int k = 0; k < 4; k++) cmyk[4 * p + k] = (uint8_t)(60 + 9 * x + 4 * y + 30 * k);
    }
    struct {
        const char *name;
        const uint8_t *pixels;
        int format;
    } kinds[] = {{"rgb", rgb, TJPF_RGB}, {"grey", grey, TJPF_GRAY}, {"cmyk", cmyk, TJPF_CMYK}};
    for (int n = 0; n < 3; n++) {
        char dir[512], path[512];
        unsigned long size;
        data_path(path, sizeof path, "jpeg_%s/class/image.jpg", kinds[n].name);
        snprintf(dir, sizeof dir, "%s/jpeg_%s", data_temp_root, kinds[n].name);
        tjFree(write_jpeg(path, kinds[n].pixels, S, S, kinds[n].format, &size));
        read_single(dir, S, 3, got);
        double sum = 0.0;
        for (int p = 0; p < S * S; p++)
            for (int k = 0; k < 3; k++) {
                int want;
                if (kinds[n].format == TJPF_RGB) want = rgb[3 * p + k];
                else if (kinds[n].format == TJPF_GRAY) want = grey[p];
                else want = cmyk[4 * p + k] * cmyk[4 * p + 3] / 255; /* Adobe: inverted CMYK */
                sum += abs(got[3 * p + k] - want);
            }
        double mean = sum / (S * S * 3);
        printf("  JPEG %-4s mean |diff| to the source pixels %.3f (quality 100)\n", kinds[n].name,
               mean);
        assert_true(mean < 1.5);
    }
}

/* ---------------------------------------------------- folders and errors */

/* A 4x4 PNG of one grey level. */
static void write_flat_png(const char *path, int level) {
    uint16_t samples[16];
    for (int i = 0; i < 16; i++) samples[i] = (uint16_t)level;
    write_png(path, 4, 4, PNG_COLOR_TYPE_GRAY, 8, samples, 0);
}

static void test_folder_order(void **state) {
    (void)state;
    /* classes by byte-wise name: "B" < "a" < "a b" < "b"; within a class,
     * (folder, file) sorted; other files ignored */
    const char *files[] = {"b/z.png", "a/z.png",     "a/10.png",  "a/9.png",
                           "a/A.PNG", "a/sub/1.png", "a b/x.png", "B/y.png"};
    const char *order[] = {"B/y.png", "a/10.png",    "a/9.png",   "a/A.PNG",
                           "a/z.png", "a/sub/1.png", "a b/x.png", "b/z.png"};
    const int labels[] = {0, 1, 1, 1, 1, 1, 2, 3};
    char path[512], dir[512];
    for (int i = 0; i < 8; i++) {
        data_path(path, sizeof path, "order/%s", files[i]);
        write_flat_png(path, 10 * (i + 1));
    }
    data_path(path, sizeof path, "order/a/notes.txt");
    data_write_file(path, "x", 1);
    snprintf(dir, sizeof dir, "%s/order", data_temp_root);
    digcl_dataset_options options = {4, 1, 0, NULL};
    digcl_dataset *d = data_open_or_fail(dir, &options);
    const digcl_dataset_info *info = digcl_dataset_get_info(d);
    assert_int_equal(info->count, 8);
    assert_int_equal(info->num_classes, 4);
    assert_string_equal(info->class_names, "B,a,a b,b");
    for (int i = 0; i < 8; i++) {
        float x[16];
        int32_t y;
        char error[512];
        assert_int_equal(digcl_dataset_read(d, i, 0, 0, 0, x, &y, error, sizeof error), 0);
        int written = 0;
        for (int k = 0; k < 8; k++)
            if (strcmp(files[k], order[i]) == 0) written = k;
        assert_int_equal(data_float_to_pixel(x[5]), 10 * (written + 1));
        assert_int_equal(y, labels[i]);
    }
    digcl_dataset_close(d);
    digcl_dataset_options named = {4, 1, 0, "w,x,y,z"};
    d = data_open_or_fail(dir, &named);
    assert_string_equal(digcl_dataset_get_info(d)->class_names, "w,x,y,z");
    digcl_dataset_close(d);
}

typedef struct next_call {
    digcl_loader *loader;
} next_call;

static void call_next(void *arg) {
    next_call *c = arg;
    const digcl_batch *b = digcl_loader_next(c->loader);
    digcl_loader_release(c->loader, b);
}

static int warnings;
static void count_warnings(digcl_log_level level, const char *message, void *user) {
    (void)user;
    if (level == DIGCL_LOG_WARNING) {
        warnings++;
        printf("  warning: %s\n", message);
    }
}

static void test_bad_files(void **state) {
    (void)state;
    char path[512], dir[512];
    for (int i = 0; i < 6; i++) {
        data_path(path, sizeof path, "bad/c%d/good%d.png", i % 2, i);
        write_flat_png(path, 20 + i);
    }
    data_path(path, sizeof path, "bad/c0/corrupt.png");
    data_write_file(path, "\x89PNG\r\n\x1a\n garbage garbage garbage", 32);
    uint8_t rgb[16 * 16 * 3];
    memset(rgb, 90, sizeof rgb);
    unsigned long size;
    data_path(path, sizeof path, "bad/c1/truncated.jpg");
    unsigned char *jpeg = write_jpeg(path, rgb, 16, 16, TJPF_RGB, &size);
    data_write_file(path, jpeg, size / 2);
    tjFree(jpeg);
    data_path(path, sizeof path, "bad/c1/text.png");
    data_write_file(path, "not an image at all", 19);
    snprintf(dir, sizeof dir, "%s/bad", data_temp_root);

    digcl_dataset_options options = {4, 3, 0, NULL};
    digcl_dataset *d = data_open_or_fail(dir, &options);
    assert_int_equal(digcl_dataset_get_info(d)->count, 9);
    const char *expected[][2] = {{"c0/corrupt.png", "PNG"},
                                 {"c1/text.png", "unsupported file format"},
                                 {"c1/truncated.jpg", "JPEG"}};
    for (int i = 0; i < 9; i++) {
        float x[48];
        int32_t y;
        char error[1024];
        if (digcl_dataset_read(d, i, 0, 0, 0, x, &y, error, sizeof error) == 0) continue;
        int known = 0;
        for (int k = 0; k < 3; k++)
            known |= strstr(error, expected[k][0]) && strstr(error, expected[k][1]);
        printf("  ok: %s\n", error);
        assert_true(known);
    }
    /* the loader's fatal error names the file */
    digcl_loader_options lo = {9, 0, 1, 5, 2, 0, 0};
    char error[1024];
    digcl_loader *l = digcl_loader_create(d, &lo, error, sizeof error);
    next_call call = {l};
    assert_true(test_expect_fatal(call_next, &call, error, sizeof error));
    assert_non_null(strstr(error, "/bad/c"));
    printf("  loader: %s\n", error);
    digcl_loader_destroy(l);
    digcl_dataset_close(d);

    /* --skip-bad-images: each bad file warned once, replaced, counted */
    options.skip_bad_images = 1;
    d = data_open_or_fail(dir, &options);
    digcl_set_log_handler(count_warnings, NULL);
    warnings = 0;
    lo.batch = 3;
    l = digcl_loader_create(d, &lo, error, sizeof error);
    for (int b = 0; b < 9; b++) { /* three epochs */
        const digcl_batch *batch = digcl_loader_next(l);
        for (int k = 0; k < batch->rows * 48; k++) assert_true(batch->x[k] > -1.0f);
        digcl_loader_release(l, batch);
    }
    assert_int_equal(digcl_loader_skipped(l), 3);
    digcl_loader_destroy(l);
    assert_int_equal(warnings, 4); /* one per file, and the count at the end */
    digcl_set_log_handler(NULL, NULL);
    digcl_dataset_close(d);
}

static void test_folder_errors(void **state) {
    (void)state;
    char path[512], dir[512];
    data_path(path, sizeof path, "empty_class/full/a.png");
    write_flat_png(path, 5);
    data_path(path, sizeof path, "empty_class/hollow/readme.txt");
    data_write_file(path, "x", 1);
    snprintf(dir, sizeof dir, "%s/empty_class", data_temp_root);
    digcl_dataset_options options = {4, 3, 0, NULL};
    data_expect_open_error(dir, &options, "empty_class/hollow: no PNG or JPEG images");
    data_path(path, sizeof path, "no_classes/a.png");
    write_flat_png(path, 5);
    snprintf(dir, sizeof dir, "%s/no_classes", data_temp_root);
    data_expect_open_error(dir, &options, "no_classes: no class folders");
    data_path(path, sizeof path, "bmp/c/a.bmp");
    data_write_file(path, "BM", 2);
    data_path(path, sizeof path, "bmp/c/b.png");
    write_flat_png(path, 5);
    snprintf(dir, sizeof dir, "%s/bmp", data_temp_root);
    data_expect_open_error(dir, &options, "bmp/c/a.bmp: unsupported image format");
    options.skip_bad_images = 1;
    digcl_dataset *d = data_open_or_fail(dir, &options);
    assert_int_equal(digcl_dataset_get_info(d)->count, 1);
    digcl_dataset_close(d);
    digcl_dataset_options unsized = {0, 3, 0, NULL};
    data_expect_open_error(dir, &unsized, "needs --image-size");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crop_matches_pil), cmocka_unit_test(test_png_color_types),
        cmocka_unit_test(test_jpeg_kinds),       cmocka_unit_test(test_folder_order),
        cmocka_unit_test(test_bad_files),        cmocka_unit_test(test_folder_errors),
    };
    return cmocka_run_group_tests(tests, data_make_temp_root, data_remove_temp_root);
}
