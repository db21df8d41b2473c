/* latents.c: precomputed VAE latents in a safetensors file, memory-mapped
 * (never read whole: the page cache holds what is used).
 *
 *   labels  [N]           any integer dtype (I64 as written by PyTorch)
 *   latents [N, C, h, w]  F32, F16 or BF16, already multiplied by the scale
 * or, for a fresh draw from the VAE posterior at every use (upstream's
 * vae.encode(x).latent_dist.sample().mul_(0.18215)):
 *   mean    [N, C, h, w]  the posterior mean, as the VAE gives it (unscaled)
 *   std or logvar [N, C, h, w]  its standard deviation, or log variance
 *                               (clamped to [-30, 20] like diffusers)
 *   z = scale * (mean + std * eps), eps ~ N(0, 1) from DIGCL_RNG_LATENT
 *   (step = epoch, sample = data index, index = element), here on the host, or with
 *   digcl_dataset_set_device_posterior by the trainer's kernel (the read then hands the mean
 *   and the spread over: read_spread).
 * Metadata (all optional): "vae" (name), "scale" (default 0.18215),
 * "class_names" (comma-separated), "num_classes". docs/TRAINING.md ("Data").
 *
 * A shard set (what `digcl encode` writes) is an index file without tensors
 * whose metadata names the shards: "shards" (a folder next to the index),
 * "shard_count" K, "shard_rows" R and "rows" N; shard k is
 * <folder>/<k as 6 digits>.safetensors holding rows [k R, min((k + 1) R, N))
 * in either form above (every shard the same form and C, h, w). The index's
 * metadata is the set's. docs/VAE.md ("Encoding a data set"). */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data_internal.h"
#include "digcl/rng.h"
#include "digcl/safetensors.h"

#define DEFAULT_SCALE 0.18215f
#define MAX_SHARDS    1000000

/* One mapped safetensors file: the whole set, or one shard of it. */
typedef struct latent_part {
    void *map;
    size_t map_size;
    digcl_safetensors *st;
    const digcl_st_tensor *values; /* latents, or mean */
    const digcl_st_tensor *spread; /* std or logvar; NULL for latents */
    int spread_is_logvar;
} latent_part;

typedef struct latent_file {
    latent_part *parts; /* [part_count]; part k holds rows [k part_rows, ...) */
    int64_t part_count, part_rows;
    digcl_safetensors *index; /* the shard index (metadata only); NULL for one file */
    int32_t *labels;
    size_t row; /* C * h * w */
    float scale;
    int spread_is_logvar; /* the form handed to the device: part 0's */
} latent_file;

static void part_close(latent_part *p) {
    digcl_st_close(p->st);
    if (p->map) munmap(p->map, p->map_size);
}

static void latent_close(void *state) {
    latent_file *f = state;
    if (!f) return;
    for (int64_t k = 0; f->parts && k < f->part_count; k++) part_close(&f->parts[k]);
    free(f->parts);
    digcl_st_close(f->index);
    free(f->labels);
    free(f);
}

/* Row `index` (within the part) of t as floats. */
static int read_row(const latent_file *f, const latent_part *p, const digcl_st_tensor *t,
                    int64_t index, float *out, char *error, size_t error_size) {
    digcl_st_tensor view = *t;
    view.data = t->data + (size_t)index * f->row * (size_t)(digcl_st_dtype_bits(t->dtype) / 8);
    view.numel = f->row;
    digcl_st_error err;
    if (digcl_st_read_f32(p->st, &view, out, &err) != 0) {
        snprintf(error, error_size, "%s", err.message);
        return -1;
    }
    return 0;
}

/* The spread row for a device draw, in the set's form (a shard of the other form converted). */
static int read_spread(const latent_file *f, const latent_part *p, int64_t local, float *spread,
                       char *error, size_t error_size) {
    if (read_row(f, p, p->spread, local, spread, error, error_size) != 0) return -1;
    if (p->spread_is_logvar == f->spread_is_logvar) return 0;
    for (size_t i = 0; i < f->row; i++)
        spread[i] = p->spread_is_logvar ? expf(0.5f * fminf(fmaxf(spread[i], -30.0f), 20.0f))
                                        : 2.0f * logf(spread[i]);
    return 0;
}

static int latent_read(void *state, int64_t index, const data_read_context *context, float *x,
                       int32_t *label, char *error, size_t error_size) {
    const latent_file *f = state;
    const latent_part *p = &f->parts[index / f->part_rows];
    const int64_t local = index % f->part_rows;
    *label = f->labels[index];
    if (read_row(f, p, p->values, local, x, error, error_size) != 0) return -1;
    if (!p->spread) return 0;
    if (context->spread) return read_spread(f, p, local, context->spread, error, error_size);
    float *spread =
        (float *)digcl_data_buffer_reserve(&context->scratch->rows, f->row * sizeof(float));
    if (!spread) {
        snprintf(error, error_size, "%s: out of host memory", p->st->label);
        return -1;
    }
    if (read_row(f, p, p->spread, local, spread, error, error_size) != 0) return -1;
    digcl_rng_key key = {context->seed, DIGCL_RNG_LATENT};
    for (size_t i = 0; i < f->row; i++) {
        float sd = spread[i];
        if (p->spread_is_logvar) sd = expf(0.5f * fminf(fmaxf(sd, -30.0f), 20.0f));
        float eps = digcl_rng_normal(key, (uint64_t)context->epoch, (uint64_t)index, i);
        x[i] = f->scale * (x[i] + sd * eps);
    }
    return 0;
}

static int map_file(latent_part *f, const char *path, char *error, size_t error_size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(error, error_size, "%s: cannot open", path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
        snprintf(error, error_size, "%s: not a safetensors file (%s)", path,
                 S_ISREG(st.st_mode) ? "shorter than its 8-byte header length"
                                     : "not a regular file");
        close(fd);
        return -1;
    }
    f->map_size = (size_t)st.st_size;
    void *map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) {
        snprintf(error, error_size, "%s: cannot memory-map the file", path);
        return -1;
    }
    f->map = map;
    digcl_st_error err;
    if (digcl_st_parse(map, f->map_size, path, &f->st, &err) != 0) {
        snprintf(error, error_size, "%s", err.message);
        return -1;
    }
    return 0;
}

static int is_float_dtype(digcl_st_dtype d) {
    return d == DIGCL_ST_F32 || d == DIGCL_ST_F16 || d == DIGCL_ST_BF16;
}

static int check_values(const latent_part *f, const digcl_st_tensor *t, const digcl_st_tensor *like,
                        char *error, size_t error_size) {
    const char *path = f->st->label;
    char shape[128], want[128];
    digcl_st_format_shape(shape, sizeof shape, t->rank, t->shape);
    if (!is_float_dtype(t->dtype)) {
        snprintf(error, error_size, "%s: tensor '%s' is %s, expected F32, F16 or BF16", path,
                 t->name, digcl_st_dtype_name(t->dtype));
        return -1;
    }
    if (t->rank != 4 || t->shape[0] < 1 || t->shape[1] < 1 || t->shape[2] < 1 || t->shape[3] < 1) {
        snprintf(error, error_size,
                 "%s: tensor '%s' has shape %s, expected [N, C, h, w] with "
                 "N >= 1",
                 path, t->name, shape);
        return -1;
    }
    if (like && memcmp(like->shape, t->shape, 4 * sizeof t->shape[0]) != 0) {
        digcl_st_format_shape(want, sizeof want, like->rank, like->shape);
        snprintf(error, error_size, "%s: tensor '%s' has shape %s, expected %s like '%s'", path,
                 t->name, shape, want, like->name);
        return -1;
    }
    return 0;
}

/* latents, or mean with std or logvar. */
static int find_values(latent_part *f, char *error, size_t error_size) {
    const char *path = f->st->label;
    const digcl_st_tensor *latents = digcl_st_find(f->st, "latents");
    const digcl_st_tensor *mean = digcl_st_find(f->st, "mean");
    const digcl_st_tensor *std = digcl_st_find(f->st, "std");
    const digcl_st_tensor *logvar = digcl_st_find(f->st, "logvar");
    if (latents && (mean || std || logvar)) {
        snprintf(error, error_size,
                 "%s: holds both 'latents' and 'mean'/'std'/'logvar' "
                 "(expected one of the two forms)",
                 path);
        return -1;
    }
    if (latents) {
        f->values = latents;
        return check_values(f, latents, NULL, error, error_size);
    }
    if (!mean || (!std && !logvar) || (std && logvar)) {
        snprintf(error, error_size,
                 "%s: no tensor 'latents' [N, 4, h, w], and no posterior "
                 "('mean' with one of 'std' or 'logvar')",
                 path);
        return -1;
    }
    f->values = mean;
    f->spread = std ? std : logvar;
    f->spread_is_logvar = !std;
    if (check_values(f, mean, NULL, error, error_size) != 0) return -1;
    return check_values(f, f->spread, mean, error, error_size);
}

/* The labels of part p (rows [first, first + count) of the set) into f->labels, which
 * holds `total`; *largest is raised to the largest label seen. */
static int read_labels(latent_file *f, const latent_part *p, int64_t first, int64_t *largest,
                       char *error, size_t error_size) {
    const char *path = p->st->label;
    const int64_t count = p->values->shape[0];
    const digcl_st_tensor *t = digcl_st_find(p->st, "labels");
    if (!t || t->rank != 1 || t->shape[0] != count) {
        char shape[128] = "missing";
        if (t) digcl_st_format_shape(shape, sizeof shape, t->rank, t->shape);
        snprintf(error, error_size,
                 "%s: tensor 'labels' is %s, expected [%lld] (one label per "
                 "row of '%s')",
                 path, shape, (long long)count, p->values->name);
        return -1;
    }
    int64_t *wide = malloc((size_t)count * sizeof *wide);
    digcl_st_error err;
    int status = wide ? digcl_st_read_i64(p->st, t, wide, &err) : -1;
    if (status != 0) snprintf(error, error_size, "%s", wide ? err.message : "out of memory");
    for (int64_t i = 0; status == 0 && i < count; i++) {
        if (wide[i] < 0 || wide[i] > 1000000) {
            snprintf(error, error_size,
                     "%s: tensor 'labels': element %lld is %lld, expected a "
                     "class in [0, 1000000]",
                     path, (long long)i, (long long)wide[i]);
            status = -1;
        }
        f->labels[first + i] = (int32_t)wide[i];
        if (wide[i] > *largest) *largest = wide[i];
    }
    free(wide);
    return status;
}

static int read_metadata(digcl_dataset *dataset, latent_file *f, const digcl_safetensors *st,
                         char *error, size_t error_size) {
    const char *path = st->label;
    const char *vae = digcl_st_metadata(st, "vae");
    const char *scale = digcl_st_metadata(st, "scale");
    const char *names = digcl_st_metadata(st, "class_names");
    const char *classes = digcl_st_metadata(st, "num_classes");
    digcl_dataset_info *info = &dataset->info;
    if (vae) snprintf(info->digcl_vae_format_name, sizeof info->digcl_vae_format_name, "%s", vae);
    f->scale = DEFAULT_SCALE;
    if (scale) {
        char *end;
        double value = strtod(scale, &end);
        if (end == scale || *end || !(value > 0.0 && value < 1e6)) {
            snprintf(error, error_size, "%s: metadata 'scale' is '%s', expected a positive number",
                     path, scale);
            return -1;
        }
        f->scale = (float)value;
    }
    info->latent_scale = scale ? f->scale : 0.0f;
    if (classes) {
        long value = strtol(classes, NULL, 10);
        if (value < info->num_classes || value > 1000000) {
            snprintf(error, error_size,
                     "%s: metadata 'num_classes' is '%s', expected an integer "
                     "of at least %d (the largest label + 1)",
                     path, classes, info->num_classes);
            return -1;
        }
        info->num_classes = (int)value;
    }
    if (names && digcl_data_set_class_names(dataset, names) != 0) {
        snprintf(error, error_size, "%s: out of host memory", path);
        return -1;
    }
    return 0;
}

/* An integer metadata entry of the shard index in [min, max]. */
static int index_integer(const digcl_safetensors *index, const char *key, int64_t min, int64_t max,
                         int64_t *out, char *error, size_t error_size) {
    const char *text = digcl_st_metadata(index, key);
    char *end = NULL;
    long long value = text ? strtoll(text, &end, 10) : 0;
    if (!text || end == text || *end || value < min || value > max) {
        snprintf(error, error_size,
                 "%s: shard index metadata '%s' is %s%s%s, expected an integer "
                 "in [%lld, %lld]",
                 index->label, key, text ? "'" : "missing", text ? text : "", text ? "'" : "",
                 (long long)min, (long long)max);
        return -1;
    }
    *out = value;
    return 0;
}

/* Shard k of the set: its path, mapped and checked against the set's shape and rows. */
static int open_shard(latent_file *f, const char *index_path, const char *folder, int64_t k,
                      int64_t rows, char *error, size_t error_size) {
    const char *slash = strrchr(index_path, '/');
    const int dir_length = slash ? (int)(slash - index_path) + 1 : 0;
    size_t length = (size_t)dir_length + strlen(folder) + 32;
    char *path = malloc(length);
    if (!path) {
        snprintf(error, error_size, "%s: out of host memory", index_path);
        return -1;
    }
    snprintf(path, length, "%.*s%s/%06lld.safetensors", dir_length, index_path, folder,
             (long long)k);
    latent_part *p = &f->parts[k];
    int status = map_file(p, path, error, error_size);
    if (status == 0) status = find_values(p, error, error_size);
    free(path);
    if (status != 0) return -1;
    const latent_part *first = &f->parts[0];
    if (p->values->shape[0] != rows ||
        (k > 0 &&
         (memcmp(p->values->shape + 1, first->values->shape + 1, 3 * sizeof(int64_t)) != 0 ||
          !p->spread != !first->spread))) {
        char shape[128];
        digcl_st_format_shape(shape, sizeof shape, p->values->rank, p->values->shape);
        snprintf(error, error_size,
                 "%s: tensor '%s' has shape %s, expected %lld rows of shard %lld "
                 "of %s in the form and shape of shard 0",
                 p->st->label, p->values->name, shape, (long long)rows, (long long)k, index_path);
        return -1;
    }
    return 0;
}

static int open_shards(latent_file *f, const char *path, char *error, size_t error_size) {
    const char *folder = digcl_st_metadata(f->index, "shards");
    int64_t count = 0, rows_per = 0, rows = 0;
    if (index_integer(f->index, "shard_count", 1, MAX_SHARDS, &count, error, error_size) != 0 ||
        index_integer(f->index, "shard_rows", 1, INT32_MAX, &rows_per, error, error_size) != 0 ||
        index_integer(f->index, "rows", (count - 1) * rows_per + 1, count * rows_per, &rows, error,
                      error_size) != 0)
        return -1;
    if (!folder[0] || strchr(folder, '/') || strcmp(folder, "..") == 0) {
        snprintf(error, error_size,
                 "%s: shard index metadata 'shards' is '%s', expected a folder "
                 "name next to the index",
                 path, folder);
        return -1;
    }
    f->parts = calloc((size_t)count, sizeof *f->parts);
    f->labels = malloc((size_t)rows * sizeof *f->labels);
    if (!f->parts || !f->labels) {
        snprintf(error, error_size, "%s: out of host memory", path);
        return -1;
    }
    f->part_count = count, f->part_rows = rows_per;
    for (int64_t k = 0; k < count; k++) {
        const int64_t in_shard = k + 1 < count ? rows_per : rows - k * rows_per;
        if (open_shard(f, path, folder, k, in_shard, error, error_size) != 0) return -1;
    }
    return 0;
}

static int open_parts(latent_file *f, const char *path, char *error, size_t error_size) {
    latent_part whole = {0};
    int status = map_file(&whole, path, error, error_size);
    if (status == 0 && whole.st->n_tensors == 0 && digcl_st_metadata(whole.st, "shards")) {
        f->index = whole.st; /* the metadata stays readable; the file's bytes are not needed */
        whole.st = NULL;
        part_close(&whole);
        return open_shards(f, path, error, error_size);
    }
    f->parts = calloc(1, sizeof *f->parts);
    if (!f->parts) {
        part_close(&whole);
        snprintf(error, error_size, "%s: out of host memory", path);
        return -1;
    }
    f->parts[0] = whole;
    f->part_count = 1;
    if (status != 0 || find_values(&f->parts[0], error, error_size) != 0) return -1;
    f->part_rows = f->parts[0].values->shape[0];
    f->labels = malloc((size_t)f->part_rows * sizeof *f->labels);
    if (!f->labels) snprintf(error, error_size, "%s: out of host memory", path);
    return f->labels ? 0 : -1;
}

int digcl_data_open_latents(digcl_dataset *dataset, const char *path, char *error,
                            size_t error_size) {
    latent_file *f = calloc(1, sizeof *f);
    dataset->source = (data_source){latent_read, latent_close, f, 256};
    if (!f) {
        snprintf(error, error_size, "%s: out of host memory", path);
        return -1;
    }
    digcl_dataset_info *info = &dataset->info;
    if (open_parts(f, path, error, error_size) != 0) return -1;
    int64_t largest = 0, count = 0;
    for (int64_t k = 0; k < f->part_count; k++) {
        if (read_labels(f, &f->parts[k], count, &largest, error, error_size) != 0) return -1;
        count += f->parts[k].values->shape[0];
    }
    info->num_classes = (int)largest + 1;
    const int64_t *shape = f->parts[0].values->shape;
    f->row = (size_t)(shape[1] * shape[2] * shape[3]);
    info->kind = DIGCL_DATASET_LATENTS;
    info->count = count;
    info->channels = (int)shape[1];
    info->height = (int)shape[2];
    info->width = (int)shape[3];
    info->is_latent = 1;
    info->has_posterior = f->parts[0].spread != NULL;
    f->spread_is_logvar = f->parts[0].spread_is_logvar;
    dataset->posterior_logvar = f->spread_is_logvar;
    if (read_metadata(dataset, f, f->index ? f->index : f->parts[0].st, error, error_size) != 0)
        return -1;
    dataset->posterior_scale = f->scale;
    return 0;
}
