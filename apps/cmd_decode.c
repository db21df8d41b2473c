/* `digcl decode`: latents (a safetensors file) -> images through the SD VAE or TAESD. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "digcl/image.h"
#include "digcl/safetensors.h"
#include "digcl/vae.h"

void usage_decode(void) {
    printf(
        "usage: digcl decode (--vae FILE | --taesd FILE) LATENTS.safetensors -o OUT\n"
        "                    [--tensor NAME] [--scale S] [--vae-tile-size PX]\n"
        "                    [--vae-tile-overlap PX] [--vae-max-memory MIB] [--per-image]\n\n"
        "Decodes the latents [N, 4, h, w] (tensor 'latents', else 'samples', else the only tensor;\n"
        "model-space values x = S z, S = 0.18215 unless --scale) into images [N, 3, 8h, 8w].\n"
        "OUT ending in .safetensors gets 'images' F32 in [-1, 1]; .png gets an 8-bit RGB grid of\n"
        "the images (floor(sqrt(N)) rows; one image: the image itself), or with --per-image one\n"
        "file per image, OUT-0000.png, OUT-0001.png, ...; .ppm gets the images side by side.\n"
        "Tiling is automatic when a whole image would not fit the device. The KL VAE then runs\n"
        "layer by layer in row strips with the whole image's GroupNorm statistics (the same\n"
        "result as one pass; three whole activations in host memory, --vae-tile-size sets the\n"
        "device budget, the overlap is unused); TAESD in overlapping tiles, blended.\n");
}

static int fail(const char *message, const char *detail) {
    fprintf(stderr, "digcl decode: %s%s\n", message, detail ? detail : "");
    return 1;
}

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

static int ends_with(const char *s, const char *suffix) {
    const size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int write_ppm(const char *path, const float *images, int N, int H, int W) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    if (!f) return -1;
    fprintf(f, "P6\n%d %d\n255\n", N * W, H);
    for (int i = 0; i < H; ++i)
        for (int n = 0; n < N; ++n)
            for (int j = 0; j < W; ++j)
                for (int c = 0; c < 3; ++c) {
                    const float x = images[(((size_t)n * 3 + c) * H + i) * W + j];
                    const float v = fminf(fmaxf((x + 1.0f) * 127.5f + 0.5f, 0.0f), 255.0f);
                    fputc((int)v, f);
                }
    const int ok = fflush(f) == 0 && fclose(f) == 0;
    return ok && rename(tmp, path) == 0 ? 0 : -1;
}

/* images [N, 3, H, W] in [-1, 1] -> 8-bit cells (upstream's sample.py conversion). */
static digcl_image *to_cells(const float *images, int N, int H, int W) {
    digcl_image *cells = calloc((size_t)N, sizeof *cells);
    for (int n = 0; cells && n < N; ++n) {
        if (digcl_image_alloc(&cells[n], W, H, 3) != 0) return NULL;
        digcl_image_from_model(images + (size_t)n * 3 * H * W, 3, H, W, 0, cells[n].pixels);
    }
    return cells;
}

/* A grid (or the single image) at path, or with per_image one file per image. */
static int write_png(const char *path, int per_image, const float *images, int N, int H, int W,
                     const char *digcl_vae_format_name) {
    digcl_image *cells = to_cells(images, N, H, W);
    if (!cells) return fail("out of host memory for the images", NULL);
    const digcl_png_text text = {"digcl", digcl_vae_format_name};
    char error[1024] = "", name[4200];
    int status = 0, rows = 1;
    while ((rows + 1) * (rows + 1) <= N) rows++;
    if (per_image) {
        for (int n = 0; status == 0 && n < N; ++n) {
            snprintf(name, sizeof name, "%.*s-%04d.png", (int)strlen(path) - 4, path, n);
            status = digcl_png_write(name, &cells[n], &text, 1, error, sizeof error);
        }
    } else if (N == 1) {
        status = digcl_png_write(path, &cells[0], &text, 1, error, sizeof error);
    } else {
        digcl_grid_options grid = {rows, 1, 2, DIGCL_CAPTION_NONE, NULL};
        digcl_image out = {0};
        status = digcl_grid_compose(cells, N, &grid, &out, error, sizeof error);
        if (status == 0) status = digcl_png_write(path, &out, &text, 1, error, sizeof error);
        digcl_image_free(&out);
    }
    for (int n = 0; n < N; ++n) digcl_image_free(&cells[n]);
    free(cells);
    return status == 0 ? 0 : fail(error, NULL);
}

int cmd_decode(const cli_globals *globals, int argc, char **argv) {
    const char *kl = NULL, *taesd = NULL, *input = NULL, *output = NULL, *tensor = NULL, *value;
    double scale = DIGCL_VAE_SD_SCALE;
    digcl_vae_tiling tiling = {0, -1, 0};
    int per_image = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--per-image") == 0) {
            per_image = 1;
            continue;
        }
        if (cli_option_value(argc, argv, &i, "--vae", &value)) kl = value;
        else if (cli_option_value(argc, argv, &i, "--taesd", &value)) taesd = value;
        else if (cli_option_value(argc, argv, &i, "-o", &value)) output = value;
        else if (cli_option_value(argc, argv, &i, "--tensor", &value)) tensor = value;
        else if (cli_option_value(argc, argv, &i, "--scale", &value))
            scale = cli_parse_double("--scale", value, 1e-6, 1e6);
        else if (cli_option_value(argc, argv, &i, "--vae-tile-size", &value))
            tiling.tile_size = (int)cli_parse_long("--vae-tile-size", value, 64, 65536) / 8 * 8;
        else if (cli_option_value(argc, argv, &i, "--vae-tile-overlap", &value))
            tiling.tile_overlap = (int)cli_parse_long("--vae-tile-overlap", value, 0, 65536);
        else if (cli_option_value(argc, argv, &i, "--vae-max-memory", &value))
            tiling.max_memory = (size_t)cli_parse_long("--vae-max-memory", value, 1, 1 << 24) << 20;
        else if (argv[i][0] != '-' && !input) input = argv[i];
        else cli_unknown_argument("decode", argv[i]);
    }
    if (!!kl == !!taesd || !input || !output) {
        usage_decode();
        return 2;
    }
    if (same_file(input, output)) return fail("the output would overwrite the input ", input);
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open(input, &st, &err) != 0) return fail(err.message, NULL);
    const digcl_st_tensor *t = tensor ? digcl_st_find(st, tensor) : digcl_st_find(st, "latents");
    if (!t && !tensor) t = digcl_st_find(st, "samples");
    if (!t && !tensor && st->n_tensors == 1) t = &st->tensors[0];
    if (!t || t->rank != 4 || t->shape[1] != 4 || t->shape[0] < 1) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s: expected a latents tensor [N, 4, h, w]%s%s", input,
                 tensor ? " named " : " ('latents' or 'samples')", tensor ? tensor : "");
        digcl_st_close(st);
        return fail(detail, NULL);
    }
    const int N = (int)t->shape[0], h = (int)t->shape[2], w = (int)t->shape[3];
    float *z = malloc(t->numel * sizeof *z),
          *images = malloc((size_t)N * 3 * 64 * h * w * sizeof *images);
    if (!z || !images) return fail("out of host memory", NULL);
    if (digcl_st_read_f32(st, t, z, &err) != 0) return fail(err.message, NULL);
    digcl_st_close(st);
    digcl_context *ctx = cli_open_context(globals);
    char error[1024];
    digcl_vae_load_options options = {DIGCL_VAE_DECODER, NULL,
                                      taesd ? DIGCL_VAE_TAESD : DIGCL_VAE_KL};
    digcl_vae *vae = digcl_vae_load(ctx, kl ? kl : taesd, &options, error, sizeof error);
    if (!vae) return fail(error, NULL);
    digcl_vae_decode(vae, &tiling, N, h, w, z, (float)scale, images);
    int status = 0;
    if (ends_with(output, ".safetensors")) {
        digcl_st_writer *writer = digcl_st_writer_new();
        const int64_t shape[4] = {N, 3, 8 * h, 8 * w};
        if (digcl_st_writer_add_f32(writer, "images", 4, shape, images, &err) != 0 ||
            digcl_st_writer_set_metadata(writer, "vae", digcl_vae_name(vae), &err) != 0 ||
            digcl_st_writer_write(writer, output, &err) != 0)
            status = fail(err.message, NULL);
        digcl_st_writer_free(writer);
    } else if (ends_with(output, ".png")) {
        status = write_png(output, per_image, images, N, 8 * h, 8 * w, digcl_vae_name(vae));
    } else if (ends_with(output, ".ppm")) {
        if (write_ppm(output, images, N, 8 * h, 8 * w) != 0) status = fail("cannot write ", output);
    } else {
        status = fail("the output must end in .safetensors, .png or .ppm: ", output);
    }
    if (status == 0) printf("decoded %d latents %dx%d -> %s\n", N, h, w, output);
    digcl_vae_free(vae);
    digcl_context_release(ctx);
    free(z), free(images);
    return status;
}
