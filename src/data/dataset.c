/* dataset.c: opening a data set by its spec, its info, the check against a
 * model, and one entry read (the loader's per-row work). docs/TRAINING.md
 * ("Data"). */
#include <stdlib.h>
#include <string.h>
#include <stdio.h>
#include <sys/stat.h>

#include "data_internal.h"
#include "digcl/rng.h"

/* Where Debian's dataset-fashion-mnist package puts the files. */
static const char *const fashion_mnist_dirs[] = {
    "/usr/share/datasets/fashion-mnist",
    "/usr/local/share/datasets/fashion-mnist",
};

uint8_t *digcl_data_buffer_reserve(data_buffer *buffer, size_t size) {
    if (size <= buffer->capacity) return buffer->bytes;
    size_t capacity = size + size / 4;
    uint8_t *bytes = realloc(buffer->bytes, capacity);
    if (!bytes) return NULL;
    buffer->bytes = bytes;
    buffer->capacity = capacity;
    return bytes;
}

float digcl_data_pixel_to_float(uint8_t p) { return ((float)p / 255.0f - 0.5f) / 0.5f; }

int digcl_data_set_class_names(digcl_dataset *dataset, const char *names) {
    char *copy = malloc(strlen(names) + 1);
    if (!copy) return -1;
    strcpy(copy, names);
    free(dataset->class_names);
    dataset->class_names = copy;
    dataset->info.class_names = copy;
    return 0;
}

static int is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* "fashion-mnist": $DIGCL_DATA_DIR/fashion-mnist, then the system folders. */
static int find_fashion_mnist(char *dir, size_t size, char *error, size_t error_size) {
    const char *root = getenv("DIGCL_DATA_DIR");
    if (root && *root) {
        snprintf(dir, size, "%s/fashion-mnist", root);
        if (digcl_data_dir_has_idx(dir)) return 0;
    }
    for (size_t i = 0; i < sizeof fashion_mnist_dirs / sizeof fashion_mnist_dirs[0]; i++) {
        snprintf(dir, size, "%s", fashion_mnist_dirs[i]);
        if (digcl_data_dir_has_idx(dir)) return 0;
    }
    snprintf(error, error_size,
             "fashion-mnist: no train-images-idx3-ubyte.gz in "
             "$DIGCL_DATA_DIR/fashion-mnist or %s (install Debian's dataset-fashion-mnist, "
             "or give --data idx:DIR)",
             fashion_mnist_dirs[0]);
    return -1;
}

static int open_source(digcl_dataset *dataset, const char *spec,
                       const digcl_dataset_options *options, char *error, size_t error_size) {
    char dir[4096];
    if (strcmp(spec, "fashion-mnist") == 0) {
        if (find_fashion_mnist(dir, sizeof dir, error, error_size) != 0) return -1;
        return digcl_data_open_idx(dataset, dir, error, error_size);
    }
    if (strncmp(spec, "idx:", 4) == 0)
        return digcl_data_open_idx(dataset, spec + 4, error, error_size);
    if (strncmp(spec, "latents:", 8) == 0)
        return digcl_data_open_latents(dataset, spec + 8, error, error_size);
    if (!is_dir(spec)) {
        snprintf(error, error_size,
                 "%s: not a folder (expected idx:DIR, latents:FILE.safetensors, "
                 "fashion-mnist, or an image folder with one subfolder per class)",
                 spec);
        return -1;
    }
    if (digcl_data_dir_has_idx(spec)) return digcl_data_open_idx(dataset, spec, error, error_size);
    return digcl_data_open_image_folder(dataset, spec, options, error, error_size);
}

/* IDX and latents have their own size: --image-size may only repeat it. */
static int check_own_size(const digcl_dataset *dataset, const char *spec,
                          const digcl_dataset_options *options, char *error, size_t error_size) {
    const digcl_dataset_info *info = &dataset->info;
    if (info->kind == DIGCL_DATASET_IMAGES) return 0;
    int pixels = info->is_latent ? info->height * 8 : info->height;
    if (options->image_size != 0 && options->image_size != pixels &&
        options->image_size != info->height) {
        snprintf(error, error_size,
                 "%s: holds %dx%d %s, but --image-size %d was asked for "
                 "(IDX and latent data sets have their own size)",
                 spec, info->height, info->width, info->is_latent ? "latents" : "images",
                 options->image_size);
        return -1;
    }
    if (options->channels != 0 && options->channels != info->channels && !info->is_latent) {
        snprintf(error, error_size, "%s: holds %d-channel images, but --channels %d was asked for",
                 spec, info->channels, options->channels);
        return -1;
    }
    return 0;
}

digcl_dataset *digcl_dataset_open(const char *spec, const digcl_dataset_options *options,
                                  char *error, size_t error_size) {
    digcl_dataset_options defaults = {0};
    if (!options) options = &defaults;
    digcl_dataset *dataset = calloc(1, sizeof *dataset);
    if (!dataset) {
        snprintf(error, error_size, "%s: out of host memory", spec);
        return NULL;
    }
    dataset->info.class_names = "";
    dataset->skip_bad_images = options->skip_bad_images;
    int status = open_source(dataset, spec, options, error, error_size);
    if (status == 0) status = check_own_size(dataset, spec, options, error, error_size);
    if (status == 0 && options->class_names) {
        status = digcl_data_set_class_names(dataset, options->class_names);
        if (status != 0) snprintf(error, error_size, "%s: out of host memory", spec);
    }
    if (status != 0) {
        digcl_dataset_close(dataset);
        return NULL;
    }
    return dataset;
}

void digcl_dataset_close(digcl_dataset *dataset) {
    if (!dataset) return;
    if (dataset->source.close) dataset->source.close(dataset->source.state);
    free(dataset->class_names);
    free(dataset);
}

const digcl_dataset_info *digcl_dataset_get_info(const digcl_dataset *dataset) {
    return &dataset->info;
}

int64_t digcl_dataset_batches_per_epoch(const digcl_dataset *dataset, int batch, int world) {
    if (batch < 1 || world < 1) return 0;
    return dataset->info.count / world / batch;
}

static const char *kind_name(const digcl_dataset_info *info) {
    return info->is_latent ? "latent" : "image";
}

int digcl_dataset_check_model(const digcl_dataset *dataset, int in_channels, int input_size,
                              int num_classes, char *error, size_t error_size) {
    const digcl_dataset_info *info = &dataset->info;
    if (info->channels != in_channels) {
        snprintf(error, error_size,
                 "the data set has %d-channel %ss, but the model's in_channels "
                 "is %d",
                 info->channels, kind_name(info), in_channels);
        return -1;
    }
    if (info->height != input_size || info->width != input_size) {
        snprintf(error, error_size,
                 "the data set has %dx%d %ss, but the model's input_size is "
                 "%d (%dx%d)",
                 info->height, info->width, kind_name(info), input_size, input_size, input_size);
        return -1;
    }
    if (info->num_classes > num_classes) {
        snprintf(error, error_size,
                 "the data set has %d classes, but the model's num_classes is "
                 "%d",
                 info->num_classes, num_classes);
        return -1;
    }
    return 0;
}

/* Mirrors every row of x [C, H, W]. */
static void flip_rows(float *x, int channels, int height, int width) {
    for (int row = 0; row < channels * height; row++) {
        float *r = x + (size_t)row * width;
        for (int i = 0, j = width - 1; i < j; i++, j--) {
            float t = r[i];
            r[i] = r[j];
            r[j] = t;
        }
    }
}

int digcl_data_read_entry(digcl_dataset *dataset, int64_t index, const data_read_context *context,
                          int hflip, float *x, int32_t *y, char *error, size_t error_size) {
    if (dataset->source.read(dataset->source.state, index, context, x, y, error, error_size) != 0)
        return -1;
    if (hflip) {
        digcl_rng_key key = {context->seed, DIGCL_RNG_FLIP};
        if (digcl_rng_uniform(key, (uint64_t)context->epoch, (uint64_t)index, 0) < 0.5f)
            flip_rows(x, dataset->info.channels, dataset->info.height, dataset->info.width);
    }
    return 0;
}

void digcl_dataset_set_device_posterior(digcl_dataset *dataset, int on) {
    dataset->device_posterior = on != 0;
}

int digcl_dataset_read(digcl_dataset *dataset, int64_t index, uint64_t seed, int64_t epoch,
                       int hflip, float *x, int32_t *y, char *error, size_t error_size) {
    if (index < 0 || index >= dataset->info.count) {
        snprintf(error, error_size, "entry %lld is outside the data set (0 to %lld)",
                 (long long)index, (long long)dataset->info.count - 1);
        return -1;
    }
    data_scratch scratch = {0};
    data_read_context context = {seed, epoch, &scratch, NULL};
    int status = digcl_data_read_entry(dataset, index, &context, hflip, x, y, error, error_size);
    digcl_data_scratch_free(&scratch);
    return status;
}
