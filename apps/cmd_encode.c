/* `digcl encode`: an image data set -> VAE posterior latents for training (upstream's
 * preprocessing: ADM centre crop, every image and its horizontal flip), written as a shard set
 * that an interrupted run continues with --resume. Layout: docs/VAE.md ("Encoding a data set");
 * the reader is src/data/latents.c. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "digcl/data.h"
#include "digcl/file.h"
#include "digcl/safetensors.h"
#include "digcl/vae.h"
#include "digcl/runtime.h"

#define FOLDER_SIZE 4096
#define PATH_SIZE   4608

void usage_encode(void) {
    printf(
        "usage: digcl encode --vae FILE --data DIR --image-size S -o OUT.safetensors\n"
        "                    [--resume] [--batch-size N] [--shard-size ROWS] [--dtype f16|f32]\n"
        "                    [--vae-tile-size PX] [--vae-tile-overlap PX] [--vae-max-memory MIB]\n"
        "                    [-q]\n\n"
        "Encodes every image of the folder DIR (one subfolder per class), in data set order, at\n"
        "S x S (ADM centre crop) and its horizontal flip: rows 2i and 2i + 1 are image i and its\n"
        "flip. Stored per row: the posterior 'mean' and 'std' [4, S/8, S/8] (F16 by default)\n"
        "and 'labels' I64, metadata scale 0.18215, vae, class_names, num_classes; training\n"
        "draws z = 0.18215 (mean + std eps) afresh at every use (--data latents:OUT.safetensors).\n\n"
        "OUT.safetensors is an index of shards OUT.shards/NNNNNN.safetensors of --shard-size rows\n"
        "(default 2048), each written atomically: --resume keeps the complete shards of an\n"
        "interrupted run (same flags, VAE and data) and encodes the rest; at most one shard of\n"
        "work is lost, no row is duplicated or dropped. The index is written last.\n"
        "--batch-size images per VAE call (default 8). Progress on a terminal; -q: quiet.\n");
}

typedef struct encode_args {
    const char *vae, *data, *output;
    long image_size, batch, shard_rows;
    int f16, resume, quiet;
    digcl_vae_tiling tiling;
} encode_args;

static int parse_args(int argc, char **argv, encode_args *a) {
    memset(a, 0, sizeof *a);
    a->batch = 8, a->shard_rows = 2048, a->f16 = 1;
    a->tiling = (digcl_vae_tiling){0, -1, 0};
    const char *value;
    for (int i = 1; i < argc; i++) {
        if (cli_option_value(argc, argv, &i, "--vae", &value)) a->vae = value;
        else if (cli_option_value(argc, argv, &i, "--data", &value)) a->data = value;
        else if (cli_option_value(argc, argv, &i, "-o", &value)) a->output = value;
        else if (cli_option_value(argc, argv, &i, "--image-size", &value))
            a->image_size = cli_parse_long("--image-size", value, 8, 16384);
        else if (cli_option_value(argc, argv, &i, "--batch-size", &value))
            a->batch = cli_parse_long("--batch-size", value, 1, 4096);
        else if (cli_option_value(argc, argv, &i, "--shard-size", &value))
            a->shard_rows = cli_parse_long("--shard-size", value, 1, 1L << 24);
        else if (cli_option_value(argc, argv, &i, "--dtype", &value)) {
            if (strcmp(value, "f16") != 0 && strcmp(value, "f32") != 0) {
                fprintf(stderr, "digcl encode: --dtype expects f16 or f32, got '%s'\n", value);
                return 2;
            }
            a->f16 = strcmp(value, "f16") == 0;
        } else if (cli_option_value(argc, argv, &i, "--vae-tile-size", &value))
            a->tiling.tile_size = (int)cli_parse_long("--vae-tile-size", value, 64, 65536) / 8 * 8;
        else if (cli_option_value(argc, argv, &i, "--vae-tile-overlap", &value))
            a->tiling.tile_overlap = (int)cli_parse_long("--vae-tile-overlap", value, 0, 65536);
        else if (cli_option_value(argc, argv, &i, "--vae-max-memory", &value))
            a->tiling.max_memory = (size_t)cli_parse_long("--vae-max-memory", value, 1, 1 << 24)
                                   << 20;
        else if (strcmp(argv[i], "--resume") == 0) a->resume = 1;
        else if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) a->quiet = 1;
        else cli_unknown_argument("encode", argv[i]);
    }
    if (!a->vae || !a->data || !a->output || !a->image_size) {
        fprintf(stderr, "digcl encode: needs --vae FILE, --data DIR, --image-size S and -o "
                        "OUT.safetensors (see `digcl encode --help`)\n");
        return 2;
    }
    if (a->image_size % 8) {
        fprintf(stderr,
                "digcl encode: --image-size %ld is not a multiple of 8 (the VAE's "
                "factor)\n",
                a->image_size);
        return 2;
    }
    const size_t n = strlen(a->output);
    if (n <= 12 || strcmp(a->output + n - 12, ".safetensors") != 0) {
        fprintf(stderr, "digcl encode: -o %s: expected a name ending in .safetensors\n", a->output);
        return 2;
    }
    const char *const flags[] = {"--vae"}, *const inputs[] = {a->vae};
    return cli_check_output("encode", "-o", a->output, flags, inputs, 1);
}

/* ------------------------------------------------------------ the shard set */

typedef struct shard_set {
    char folder[FOLDER_SIZE]; /* OUT.shards */
    const char *folder_name;  /* its last component (the index names it) */
    int64_t images, rows, shard_rows, shard_count;
    size_t row;          /* 4 h w */
    char signature[512]; /* what a resumed run must agree on */
    const digcl_dataset_info *info;
    const char *digcl_vae_format_name;
} shard_set;

static void shard_path(const shard_set *set, int64_t k, char *out, size_t size) {
    snprintf(out, size, "%s/%06lld.safetensors", set->folder, (long long)k);
}

static int64_t rows_of(const shard_set *set, int64_t k) {
    const int64_t left = set->rows - k * set->shard_rows;
    return left < set->shard_rows ? left : set->shard_rows;
}

static int set_metadata(digcl_st_writer *w, const shard_set *set, digcl_st_error *err) {
    char scale[32], classes[32];
    snprintf(scale, sizeof scale, "%.5f", (double)DIGCL_VAE_SD_SCALE);
    snprintf(classes, sizeof classes, "%d", set->info->num_classes);
    return digcl_st_writer_set_metadata(w, "scale", scale, err) ||
                   digcl_st_writer_set_metadata(w, "vae", set->digcl_vae_format_name, err) ||
                   digcl_st_writer_set_metadata(w, "class_names", set->info->class_names, err) ||
                   digcl_st_writer_set_metadata(w, "num_classes", classes, err) ||
                   digcl_st_writer_set_metadata(w, "digcl.encode", set->signature, err)
               ? -1
               : 0;
}

/* A number as metadata text. */
static int set_integer(digcl_st_writer *w, const char *key, int64_t value, digcl_st_error *err) {
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)value);
    return digcl_st_writer_set_metadata(w, key, text, err);
}

/* 1 when shard k is complete and of this run (its header agrees), 0 when absent, -1 (message)
 * when it belongs to another encode. */
static int shard_done(const shard_set *set, int64_t k) {
    char path[PATH_SIZE];
    shard_path(set, k, path, sizeof path);
    if (access(path, F_OK) != 0) return 0;
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open_header(path, &st, &err) != 0) {
        fprintf(stderr, "digcl encode: --resume: %s\n", err.message);
        return -1;
    }
    const char *signature = digcl_st_metadata(st, "digcl.encode");
    const char *first = digcl_st_metadata(st, "first_row");
    const digcl_st_tensor *mean = digcl_st_find(st, "mean");
    char want_first[32];
    snprintf(want_first, sizeof want_first, "%lld", (long long)(k * set->shard_rows));
    const int same = signature && strcmp(signature, set->signature) == 0 && first &&
                     strcmp(first, want_first) == 0 && mean && mean->shape[0] == rows_of(set, k);
    if (!same)
        fprintf(stderr,
                "digcl encode: --resume: %s was written by another encode (%s), this one "
                "is (%s, first_row %s); remove %s or use the same flags, VAE and data\n",
                path, signature ? signature : "no digcl.encode metadata", set->signature,
                want_first, set->folder);
    digcl_st_close(st);
    return same ? 1 : -1;
}

/* Removes temp files of shard writes that a kill interrupted (NNNNNN.safetensors.tmp.*). */
static void remove_stale_temps(const shard_set *set) {
    DIR *dir = opendir(set->folder);
    if (!dir) return;
    for (struct dirent *e; (e = readdir(dir)) != NULL;) {
        const char *tmp = strstr(e->d_name, ".safetensors.tmp.");
        if (!tmp || tmp - e->d_name != 6 || strspn(e->d_name, "0123456789") != 6) continue;
        char path[PATH_SIZE];
        snprintf(path, sizeof path, "%s/%s", set->folder, e->d_name);
        unlink(path);
    }
    closedir(dir);
}

/* The shard to start from: 0 for a new run (the folder must hold no shard), else the first
 * one missing. -1 after a message. */
static int64_t first_missing_shard(const shard_set *set, int resume) {
    if (mkdir(set->folder, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "digcl encode: cannot create %s: %s\n", set->folder, strerror(errno));
        return -1;
    }
    if (!resume) {
        char path[PATH_SIZE];
        shard_path(set, 0, path, sizeof path);
        if (access(path, F_OK) == 0) {
            fprintf(stderr,
                    "digcl encode: %s holds shards of an earlier encode: pass --resume to "
                    "continue it, or remove the folder\n",
                    set->folder);
            return -1;
        }
        return 0;
    }
    remove_stale_temps(set);
    int64_t k = 0;
    for (; k < set->shard_count; k++) {
        const int done = shard_done(set, k);
        if (done < 0) return -1;
        if (!done) break;
    }
    return k;
}

static int write_index(const encode_args *a, const shard_set *set) {
    digcl_st_writer *w = digcl_st_writer_new();
    digcl_st_error err;
    int status = !w || set_metadata(w, set, &err) ||
                 digcl_st_writer_set_metadata(w, "shards", set->folder_name, &err) ||
                 set_integer(w, "shard_count", set->shard_count, &err) ||
                 set_integer(w, "shard_rows", set->shard_rows, &err) ||
                 set_integer(w, "rows", set->rows, &err) ||
                 digcl_st_writer_write(w, a->output, &err);
    if (status) fprintf(stderr, "digcl encode: %s\n", w ? err.message : "out of host memory");
    digcl_st_writer_free(w);
    return status ? 1 : 0;
}

/* ------------------------------------------------------------ encoding */

typedef struct encoder {
    const encode_args *args;
    const shard_set *set;
    digcl_dataset *dataset;
    digcl_vae *vae;
    float *images;     /* [batch, 3, S, S] */
    float *mean, *std; /* [shard_rows, 4, S/8, S/8] */
    int64_t *labels;   /* [shard_rows] */
    int64_t cached_image;
    float *cached; /* [3, S, S]: the last image read (its flip is the next row) */
    int32_t cached_label;
    double start;
    int64_t start_row;
    int progress_line;
} encoder;

/* Row r into x [3, S, S]: image r / 2, mirrored when r is odd (upstream flips after the crop). */
static int read_row(encoder *e, int64_t r, float *x, int64_t *label) {
    const int S = (int)e->args->image_size;
    const size_t plane = (size_t)S * S;
    if (e->cached_image != r / 2) {
        char error[1024];
        if (digcl_dataset_read(e->dataset, r / 2, 0, 0, 0, e->cached, &e->cached_label, error,
                               sizeof error) != 0) {
            fprintf(stderr, "digcl encode: %s\n", error);
            return -1;
        }
        e->cached_image = r / 2;
    }
    *label = e->cached_label;
    if (r % 2 == 0) {
        memcpy(x, e->cached, 3 * plane * sizeof *x);
        return 0;
    }
    for (size_t c = 0; c < 3; ++c)
        for (int i = 0; i < S; ++i)
            for (int j = 0; j < S; ++j)
                x[c * plane + (size_t)i * S + j] = e->cached[c * plane + (size_t)i * S + S - 1 - j];
    return 0;
}

static void show_progress(encoder *e, int64_t done_rows, int final) {
    if (e->args->quiet || !isatty(2)) return;
    const double elapsed = digcl_seconds_now() - e->start;
    const double rate = (double)(done_rows - e->start_row) / fmax(elapsed, 1e-9);
    const double left = (double)(e->set->rows - done_rows) / fmax(rate, 1e-9);
    fprintf(stderr, "\rencode %lld/%lld rows (%.1f%%)  %.1f img/s  ETA %dm%02ds   ",
            (long long)done_rows, (long long)e->set->rows,
            100.0 * (double)done_rows / (double)e->set->rows, rate, (int)(left / 60),
            (int)fmod(left, 60));
    if (final) fprintf(stderr, "\n");
    fflush(stderr);
    e->progress_line = !final;
}

static int write_shard(encoder *e, int64_t k, int64_t rows) {
    const shard_set *set = e->set;
    const int h = (int)e->args->image_size / 8;
    const int64_t shape[4] = {rows, 4, h, h}, label_shape[1] = {rows};
    char path[PATH_SIZE];
    shard_path(set, k, path, sizeof path);
    digcl_st_writer *w = digcl_st_writer_new();
    digcl_st_error err;
    int status = !w;
    if (!status && e->args->f16)
        status = digcl_st_writer_add_f16(w, "mean", 4, shape, e->mean, &err) ||
                 digcl_st_writer_add_f16(w, "std", 4, shape, e->std, &err);
    else if (!status)
        status = digcl_st_writer_add_f32(w, "mean", 4, shape, e->mean, &err) ||
                 digcl_st_writer_add_f32(w, "std", 4, shape, e->std, &err);
    status = status || digcl_st_writer_add_i64(w, "labels", 1, label_shape, e->labels, &err) ||
             set_metadata(w, set, &err) || set_integer(w, "first_row", k * set->shard_rows, &err) ||
             digcl_st_writer_write(w, path, &err);
    if (status) fprintf(stderr, "digcl encode: %s\n", w ? err.message : "out of host memory");
    digcl_st_writer_free(w);
    return status ? -1 : 0;
}

/* Encodes shard k: rows [k R, k R + rows) in batches. */
static int encode_shard(encoder *e, int64_t k) {
    const shard_set *set = e->set;
    const int64_t first = k * set->shard_rows, rows = rows_of(set, k);
    const int S = (int)e->args->image_size;
    const size_t image = (size_t)3 * S * S;
    for (int64_t r0 = 0; r0 < rows; r0 += e->args->batch) {
        const int n = (int)(rows - r0 < e->args->batch ? rows - r0 : e->args->batch);
        for (int i = 0; i < n; ++i)
            if (read_row(e, first + r0 + i, e->images + (size_t)i * image, &e->labels[r0 + i]))
                return -1;
        float *mean = e->mean + (size_t)r0 * set->row, *std = e->std + (size_t)r0 * set->row;
        digcl_vae_encode(e->vae, &e->args->tiling, n, S, S, e->images, mean, std);
        for (size_t i = 0; i < (size_t)n * set->row; ++i) std[i] = expf(0.5f * std[i]);
        show_progress(e, first + r0 + n, 0);
    }
    return write_shard(e, k, rows);
}

/* DIGCL_ENCODE_TEST_KILL_AFTER=K (tests): SIGKILL after the K-th shard this process writes,
 * once the next shard's first batch is encoded, as an interruption would land. */
static long kill_after(void) {
    const char *text = getenv("DIGCL_ENCODE_TEST_KILL_AFTER");
    return text ? strtol(text, NULL, 10) : 0;
}

static int encode_shards(encoder *e, int64_t from) {
    const long kill_at = kill_after();
    long written = 0;
    for (int64_t k = from; k < e->set->shard_count; k++) {
        if (kill_at > 0 && written == kill_at) {
            const int S = (int)e->args->image_size;
            digcl_vae_encode(e->vae, &e->args->tiling, 1, S, S, e->images, e->mean, e->std);
            raise(SIGKILL);
        }
        if (encode_shard(e, k) != 0) return 1;
        written++;
        if (!e->args->quiet && !isatty(2))
            fprintf(stderr, "digcl encode: shard %lld/%lld written\n", (long long)k + 1,
                    (long long)e->set->shard_count);
    }
    if (e->progress_line) show_progress(e, e->set->rows, 1);
    return 0;
}

static int allocate(encoder *e) {
    const size_t S = (size_t)e->args->image_size, R = (size_t)e->set->shard_rows;
    e->images = malloc((size_t)e->args->batch * 3 * S * S * sizeof(float));
    e->cached = malloc(3 * S * S * sizeof(float));
    e->mean = malloc(R * e->set->row * sizeof(float));
    e->std = malloc(R * e->set->row * sizeof(float));
    e->labels = malloc(R * sizeof(int64_t));
    e->cached_image = -1;
    if (e->images && e->cached && e->mean && e->std && e->labels) return 0;
    fprintf(stderr, "digcl encode: out of host memory for a shard of %zu rows\n", R);
    return 1;
}

static void release(encoder *e) {
    free(e->images), free(e->cached), free(e->mean), free(e->std), free(e->labels);
}

/* ------------------------------------------------------------ the command */

static int plan_set(const encode_args *a, const digcl_dataset_info *info,
                    const char *digcl_vae_format_name, shard_set *set) {
    memset(set, 0, sizeof *set);
    snprintf(set->folder, sizeof set->folder, "%.*s.shards", (int)(strlen(a->output) - 12),
             a->output);
    const char *slash = strrchr(set->folder, '/');
    set->folder_name = slash ? slash + 1 : set->folder;
    set->info = info, set->digcl_vae_format_name = digcl_vae_format_name;
    set->images = info->count, set->rows = 2 * info->count;
    set->shard_rows = a->shard_rows;
    set->shard_count = (set->rows + set->shard_rows - 1) / set->shard_rows;
    set->row = (size_t)4 * (a->image_size / 8) * (a->image_size / 8);
    uint64_t hash = 0;
    char error[1024];
    if (digcl_file_xxh3(a->vae, &hash, error, sizeof error) != 0) {
        fprintf(stderr, "digcl encode: %s\n", error);
        return 1;
    }
    snprintf(set->signature, sizeof set->signature,
             "vae %s xxh3 %016llx, image_size %ld, images %lld, classes %d, shard_rows %lld, %s",
             digcl_vae_format_name, (unsigned long long)hash, a->image_size, (long long)set->images,
             info->num_classes, (long long)set->shard_rows, a->f16 ? "F16" : "F32");
    return 0;
}

static digcl_dataset *open_images(const encode_args *a, int *status) {
    digcl_dataset_options options;
    memset(&options, 0, sizeof options);
    options.image_size = (int)a->image_size;
    options.channels = 3;
    char error[1024];
    digcl_dataset *dataset = digcl_dataset_open(a->data, &options, error, sizeof error);
    if (!dataset) {
        fprintf(stderr, "digcl encode: %s\n", error);
        *status = 1;
        return NULL;
    }
    const digcl_dataset_info *info = digcl_dataset_get_info(dataset);
    if (info->kind != DIGCL_DATASET_IMAGES) {
        fprintf(stderr,
                "digcl encode: --data %s is not an image folder (one subfolder of PNG or "
                "JPEG files per class)\n",
                a->data);
        digcl_dataset_close(dataset);
        *status = 2;
        return NULL;
    }
    return dataset;
}

int cmd_encode(const cli_globals *globals, int argc, char **argv) {
    encode_args a;
    int status = parse_args(argc, argv, &a);
    if (status != 0) return status;
    digcl_dataset *dataset = open_images(&a, &status);
    if (!dataset) return status;
    digcl_context *ctx = cli_open_context(globals);
    char error[1024];
    const digcl_vae_load_options options = {DIGCL_VAE_ENCODER, NULL, 0};
    digcl_vae *vae = digcl_vae_load(ctx, a.vae, &options, error, sizeof error);
    shard_set set;
    encoder e = {0};
    if (!vae) fprintf(stderr, "digcl encode: %s\n", error), status = 1;
    if (status == 0)
        status = plan_set(&a, digcl_dataset_get_info(dataset), digcl_vae_name(vae), &set);
    const int64_t from = status == 0 ? first_missing_shard(&set, a.resume) : -1;
    if (status == 0 && from < 0) status = 2;
    if (status == 0) {
        e = (encoder){&a,
                      &set,
                      dataset,
                      vae,
                      .start = digcl_seconds_now(),
                      .start_row = from * set.shard_rows};
        status = allocate(&e);
    }
    if (status == 0 && from > 0 && !a.quiet)
        fprintf(stderr, "digcl encode: resuming at shard %lld of %lld (%lld rows done)\n",
                (long long)from, (long long)set.shard_count, (long long)(from * set.shard_rows));
    if (status == 0) status = encode_shards(&e, from);
    if (status == 0) status = write_index(&a, &set);
    if (status == 0 && !a.quiet)
        printf("encoded %lld images and their flips (%lld rows, %lld shards in %s) -> %s\n",
               (long long)set.images, (long long)set.rows, (long long)set.shard_count, set.folder,
               a.output);
    release(&e);
    digcl_vae_free(vae);
    digcl_context_release(ctx);
    digcl_dataset_close(dataset);
    return status;
}
