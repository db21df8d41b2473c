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
 *   (step = epoch, sample = data index, index = element).
 * Metadata (all optional): "vae" (name), "scale" (default 0.18215),
 * "class_names" (comma-separated), "num_classes". docs/TRAINING.md ("Data"). */
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

typedef struct latent_file {
    void *map;
    size_t map_size;
    digcl_safetensors *st;
    const digcl_st_tensor *values; /* latents, or mean */
    const digcl_st_tensor *spread; /* std or logvar; NULL for latents */
    int spread_is_logvar;
    int32_t *labels;
    size_t row; /* C * h * w */
    float scale;
} latent_file;

static void latent_close(void *state) {
    latent_file *f = state;
    if (!f) return;
    digcl_st_close(f->st);
    if (f->map) munmap(f->map, f->map_size);
    free(f->labels);
    free(f);
}

/* Row `index` of t as floats. */
static int read_row(const latent_file *f, const digcl_st_tensor *t, int64_t index, float *out,
                    char *error, size_t error_size) {
    digcl_st_tensor view = *t;
    view.data = t->data + (size_t)index * f->row * (size_t)(digcl_st_dtype_bits(t->dtype) / 8);
    view.numel = f->row;
    digcl_st_error err;
    if (digcl_st_read_f32(f->st, &view, out, &err) != 0) {
        snprintf(error, error_size, "%s", err.message);
        return -1;
    }
    return 0;
}

static int latent_read(void *state, int64_t index, const data_read_context *context, float *x,
                       int32_t *label, char *error, size_t error_size) {
    const latent_file *f = state;
    *label = f->labels[index];
    if (read_row(f, f->values, index, x, error, error_size) != 0) return -1;
    if (!f->spread) return 0;
    float *spread = (float *)data_buffer_reserve(&context->scratch->rows, f->row * sizeof(float));
    if (!spread) {
        snprintf(error, error_size, "%s: out of host memory", f->st->label);
        return -1;
    }
    if (read_row(f, f->spread, index, spread, error, error_size) != 0) return -1;
    digcl_rng_key key = {context->seed, DIGCL_RNG_LATENT};
    for (size_t i = 0; i < f->row; i++) {
        float sd = spread[i];
        if (f->spread_is_logvar) sd = expf(0.5f * fminf(fmaxf(sd, -30.0f), 20.0f));
        float eps = digcl_rng_normal(key, (uint64_t)context->epoch, (uint64_t)index, i);
        x[i] = f->scale * (x[i] + sd * eps);
    }
    return 0;
}

static int map_file(latent_file *f, const char *path, char *error, size_t error_size) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        snprintf(error, error_size, "%s: cannot open", path);
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 8) {
        snprintf(error, error_size, "%s: not a safetensors file (%s)", path,
                 S_ISREG(st.st_mode) ? "shorter than its 8-byte header length" : "not a regular file");
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

static int check_values(const latent_file *f, const digcl_st_tensor *t, const digcl_st_tensor *like,
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
        snprintf(error, error_size, "%s: tensor '%s' has shape %s, expected [N, C, h, w] with "
                 "N >= 1", path, t->name, shape);
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
static int find_values(latent_file *f, char *error, size_t error_size) {
    const char *path = f->st->label;
    const digcl_st_tensor *latents = digcl_st_find(f->st, "latents");
    const digcl_st_tensor *mean = digcl_st_find(f->st, "mean");
    const digcl_st_tensor *std = digcl_st_find(f->st, "std");
    const digcl_st_tensor *logvar = digcl_st_find(f->st, "logvar");
    if (latents && (mean || std || logvar)) {
        snprintf(error, error_size, "%s: holds both 'latents' and 'mean'/'std'/'logvar' "
                 "(expected one of the two forms)", path);
        return -1;
    }
    if (latents) {
        f->values = latents;
        return check_values(f, latents, NULL, error, error_size);
    }
    if (!mean || (!std && !logvar) || (std && logvar)) {
        snprintf(error, error_size, "%s: no tensor 'latents' [N, 4, h, w], and no posterior "
                 "('mean' with one of 'std' or 'logvar')", path);
        return -1;
    }
    f->values = mean;
    f->spread = std ? std : logvar;
    f->spread_is_logvar = !std;
    if (check_values(f, mean, NULL, error, error_size) != 0) return -1;
    return check_values(f, f->spread, mean, error, error_size);
}

static int read_labels(latent_file *f, int *num_classes, char *error, size_t error_size) {
    const char *path = f->st->label;
    const int64_t count = f->values->shape[0];
    const digcl_st_tensor *t = digcl_st_find(f->st, "labels");
    if (!t || t->rank != 1 || t->shape[0] != count) {
        char shape[128] = "missing";
        if (t) digcl_st_format_shape(shape, sizeof shape, t->rank, t->shape);
        snprintf(error, error_size, "%s: tensor 'labels' is %s, expected [%lld] (one label per "
                 "row of '%s')", path, shape, (long long)count, f->values->name);
        return -1;
    }
    int64_t *wide = malloc((size_t)count * sizeof *wide);
    f->labels = malloc((size_t)count * sizeof *f->labels);
    digcl_st_error err;
    int status = wide && f->labels ? digcl_st_read_i64(f->st, t, wide, &err) : -1;
    if (status != 0) snprintf(error, error_size, "%s", wide && f->labels ? err.message : "out of memory");
    int64_t largest = 0;
    for (int64_t i = 0; status == 0 && i < count; i++) {
        if (wide[i] < 0 || wide[i] > 1000000) {
            snprintf(error, error_size, "%s: tensor 'labels': element %lld is %lld, expected a "
                     "class in [0, 1000000]", path, (long long)i, (long long)wide[i]);
            status = -1;
        }
        f->labels[i] = (int32_t)wide[i];
        if (wide[i] > largest) largest = wide[i];
    }
    free(wide);
    *num_classes = (int)largest + 1;
    return status;
}

static int read_metadata(digcl_dataset *dataset, latent_file *f, char *error, size_t error_size) {
    const char *path = f->st->label;
    const char *vae = digcl_st_metadata(f->st, "vae");
    const char *scale = digcl_st_metadata(f->st, "scale");
    const char *names = digcl_st_metadata(f->st, "class_names");
    const char *classes = digcl_st_metadata(f->st, "num_classes");
    digcl_dataset_info *info = &dataset->info;
    if (vae) snprintf(info->vae_name, sizeof info->vae_name, "%s", vae);
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
            snprintf(error, error_size, "%s: metadata 'num_classes' is '%s', expected an integer "
                     "of at least %d (the largest label + 1)", path, classes, info->num_classes);
            return -1;
        }
        info->num_classes = (int)value;
    }
    if (names && data_set_class_names(dataset, names) != 0) {
        snprintf(error, error_size, "%s: out of host memory", path);
        return -1;
    }
    return 0;
}

int data_open_latents(digcl_dataset *dataset, const char *path, char *error, size_t error_size) {
    latent_file *f = calloc(1, sizeof *f);
    dataset->source = (data_source){latent_read, latent_close, f, 256};
    if (!f) {
        snprintf(error, error_size, "%s: out of host memory", path);
        return -1;
    }
    digcl_dataset_info *info = &dataset->info;
    if (map_file(f, path, error, error_size) != 0 || find_values(f, error, error_size) != 0 ||
        read_labels(f, &info->num_classes, error, error_size) != 0)
        return -1;
    const int64_t *shape = f->values->shape;
    f->row = (size_t)(shape[1] * shape[2] * shape[3]);
    info->kind = DIGCL_DATASET_LATENTS;
    info->count = shape[0];
    info->channels = (int)shape[1];
    info->height = (int)shape[2];
    info->width = (int)shape[3];
    info->is_latent = 1;
    info->has_posterior = f->spread != NULL;
    return read_metadata(dataset, f, error, error_size);
}
