/* image_folder.c: torchvision's ImageFolder convention. The classes are the
 * subfolders of the root in sorted (byte-wise) order of their names; the
 * entries of a class are the files with an image extension (.jpg .jpeg .png
 * .ppm .bmp .pgm .tif .tiff .webp, any case) found by walking the class
 * folder (symbolic links followed), sorted by (folder path, file name) as
 * torchvision's make_dataset does. digcl decodes PNG and JPEG; the other
 * extensions are refused when the folder is opened (or skipped with
 * skip_bad_images). Each entry is decoded, converted to RGB (or grey),
 * centre-cropped to S x S (ADM's center_crop_arr, image_crop.c) and mapped
 * to [-1, 1]. docs/TRAINING.md ("Data"). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "data_internal.h"
#include "digcl/log.h"

typedef struct image_entry {
    char *root; /* folder path (a class folder or below) */
    char *name; /* file name */
    int32_t label;
} image_entry;

typedef struct image_folder {
    image_entry *entries;
    int64_t count, capacity;
    int size, channels;
    float lut[256];
} image_folder;

typedef struct name_list {
    char **names;
    size_t count, capacity;
} name_list;

static const char *const image_extensions[] = {".jpg", ".jpeg", ".png",  ".ppm", ".bmp",
                                               ".pgm", ".tif",  ".tiff", ".webp"};

static int has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), m = strlen(suffix);
    return n >= m && strcasecmp(name + n - m, suffix) == 0;
}

static int is_image_name(const char *name) {
    for (size_t i = 0; i < sizeof image_extensions / sizeof image_extensions[0]; i++)
        if (has_suffix(name, image_extensions[i])) return 1;
    return 0;
}

static int is_decodable_name(const char *name) {
    return has_suffix(name, ".png") || has_suffix(name, ".jpg") || has_suffix(name, ".jpeg");
}

static char *join(const char *a, const char *b) {
    size_t n = strlen(a) + strlen(b) + 2;
    char *path = malloc(n);
    if (path) snprintf(path, n, "%s/%s", a, b);
    return path;
}

static char *duplicate(const char *s) {
    char *copy = malloc(strlen(s) + 1);
    if (copy) strcpy(copy, s);
    return copy;
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int list_push(name_list *list, char *name) {
    if (!name) return -1;
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 64;
        char **names = realloc(list->names, capacity * sizeof *names);
        if (!names) {
            free(name);
            return -1;
        }
        list->names = names;
        list->capacity = capacity;
    }
    list->names[list->count++] = name;
    return 0;
}

static void list_free(name_list *list) {
    for (size_t i = 0; i < list->count; i++) free(list->names[i]);
    free(list->names);
    *list = (name_list){0};
}

/* The sorted names in `dir` that are folders (dirs = 1) or regular files. */
static int list_dir(const char *dir, int dirs, name_list *out, char *error, size_t error_size) {
    DIR *handle = opendir(dir);
    if (!handle) {
        snprintf(error, error_size, "%s: cannot open the folder", dir);
        return -1;
    }
    struct dirent *entry;
    int status = 0;
    while (status == 0 && (entry = readdir(handle)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char *path = join(dir, entry->d_name);
        struct stat st;
        int keep =
            path && stat(path, &st) == 0 && (dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode));
        free(path);
        if (keep) status = list_push(out, duplicate(entry->d_name));
    }
    closedir(handle);
    if (status != 0) snprintf(error, error_size, "%s: out of host memory", dir);
    qsort(out->names, out->count, sizeof *out->names, compare_strings);
    return status;
}

static int add_entry(image_folder *f, const char *root, const char *name, int32_t label) {
    if (f->count == f->capacity) {
        int64_t capacity = f->capacity ? 2 * f->capacity : 1024;
        image_entry *entries = realloc(f->entries, (size_t)capacity * sizeof *entries);
        if (!entries) return -1;
        f->entries = entries;
        f->capacity = capacity;
    }
    image_entry e = {duplicate(root), duplicate(name), label};
    if (!e.root || !e.name) {
        free(e.root);
        free(e.name);
        return -1;
    }
    f->entries[f->count++] = e;
    return 0;
}

static int compare_entries(const void *a, const void *b) {
    const image_entry *x = a, *y = b;
    int by_root = strcmp(x->root, y->root);
    return by_root ? by_root : strcmp(x->name, y->name);
}

typedef struct walk_options {
    int skip_bad;
    int64_t refused; /* files with an image extension digcl cannot decode */
} walk_options;

/* Adds the image files under `dir` (recursively) with `label`. */
static int walk(image_folder *f, const char *dir, int32_t label, walk_options *walk_opts,
                char *error, size_t error_size) {
    name_list files = {0}, dirs = {0};
    int status = list_dir(dir, 0, &files, error, error_size);
    if (status == 0) status = list_dir(dir, 1, &dirs, error, error_size);
    for (size_t i = 0; status == 0 && i < files.count; i++) {
        const char *name = files.names[i];
        if (!is_image_name(name)) continue;
        if (!is_decodable_name(name)) {
            walk_opts->refused++;
            if (!walk_opts->skip_bad) {
                snprintf(error, error_size,
                         "%s/%s: unsupported image format (digcl reads PNG "
                         "and JPEG; --skip-bad-images skips such files)",
                         dir, name);
                status = -1;
            } else {
                digcl_log(DIGCL_LOG_WARNING,
                          "%s/%s: unsupported image format (PNG and JPEG "
                          "only), skipped",
                          dir, name);
            }
            continue;
        }
        if (add_entry(f, dir, name, label) != 0) {
            snprintf(error, error_size, "%s: out of host memory", dir);
            status = -1;
        }
    }
    for (size_t i = 0; status == 0 && i < dirs.count; i++) {
        char *sub = join(dir, dirs.names[i]);
        status = sub ? walk(f, sub, label, walk_opts, error, error_size) : -1;
        free(sub);
    }
    list_free(&files);
    list_free(&dirs);
    return status;
}

static int image_read(void *state, int64_t index, const data_read_context *context, float *x,
                      int32_t *label, char *error, size_t error_size);

static void image_close(void *state) {
    image_folder *f = state;
    if (!f) return;
    for (int64_t i = 0; i < f->count; i++) {
        free(f->entries[i].root);
        free(f->entries[i].name);
    }
    free(f->entries);
    free(f);
}

/* Classes, comma-separated, into dataset->class_names. */
static int set_class_names(digcl_dataset *dataset, const name_list *classes) {
    size_t length = 1;
    for (size_t i = 0; i < classes->count; i++) length += strlen(classes->names[i]) + 1;
    char *names = calloc(length, 1);
    if (!names) return -1;
    for (size_t i = 0; i < classes->count; i++) {
        if (i) strcat(names, ",");
        strcat(names, classes->names[i]);
    }
    int status = digcl_data_set_class_names(dataset, names);
    free(names);
    return status;
}

static int check_options(const char *dir, const digcl_dataset_options *options, char *error,
                         size_t error_size) {
    if (options->image_size < 1 || options->image_size > 4096) {
        snprintf(error, error_size, "%s: an image folder needs --image-size S (1 to 4096), got %d",
                 dir, options->image_size);
        return -1;
    }
    if (options->channels != 0 && options->channels != 1 && options->channels != 3) {
        snprintf(error, error_size, "%s: --channels %d (expected 1 or 3)", dir, options->channels);
        return -1;
    }
    return 0;
}

static int scan_classes(image_folder *f, const char *dir, const name_list *classes,
                        walk_options *walk_opts, char *error, size_t error_size) {
    if (classes->count == 0) {
        snprintf(error, error_size,
                 "%s: no class folders (an image folder holds one subfolder "
                 "per class, e.g. %s/cat/1.png)",
                 dir, dir);
        return -1;
    }
    for (size_t c = 0; c < classes->count; c++) {
        int64_t before = f->count;
        char *class_dir = join(dir, classes->names[c]);
        int status = class_dir ? walk(f, class_dir, (int32_t)c, walk_opts, error, error_size) : -1;
        /* sorted by (folder, name) within the class: os.walk's order, sorted */
        qsort(f->entries + before, (size_t)(f->count - before), sizeof *f->entries,
              compare_entries);
        if (status == 0 && f->count == before) {
            snprintf(error, error_size,
                     "%s: no PNG or JPEG images in this class folder (every "
                     "class needs at least one)",
                     class_dir);
            status = -1;
        }
        free(class_dir);
        if (status != 0) return -1;
    }
    return 0;
}

int digcl_data_open_image_folder(digcl_dataset *dataset, const char *dir,
                                 const digcl_dataset_options *options, char *error,
                                 size_t error_size) {
    if (check_options(dir, options, error, error_size) != 0) return -1;
    image_folder *f = calloc(1, sizeof *f);
    dataset->source = (data_source){image_read, image_close, f, 2};
    if (!f) {
        snprintf(error, error_size, "%s: out of host memory", dir);
        return -1;
    }
    f->size = options->image_size;
    f->channels = options->channels ? options->channels : 3;
    for (int p = 0; p < 256; p++) f->lut[p] = digcl_data_pixel_to_float((uint8_t)p);
    name_list classes = {0};
    walk_options walk_opts = {options->skip_bad_images, 0};
    int status = list_dir(dir, 1, &classes, error, error_size);
    if (status == 0) status = scan_classes(f, dir, &classes, &walk_opts, error, error_size);
    if (status == 0 && set_class_names(dataset, &classes) != 0) {
        snprintf(error, error_size, "%s: out of host memory", dir);
        status = -1;
    }
    digcl_dataset_info *info = &dataset->info;
    info->kind = DIGCL_DATASET_IMAGES;
    info->count = f->count;
    info->channels = f->channels;
    info->height = info->width = f->size;
    info->num_classes = (int)classes.count;
    list_free(&classes);
    if (status == 0 && walk_opts.refused)
        digcl_log(DIGCL_LOG_WARNING, "%s: %lld files in formats other than PNG and JPEG skipped",
                  dir, (long long)walk_opts.refused);
    return status;
}

/* Reads the whole file into scratch->file. */
static int read_file(const char *path, data_buffer *buffer, size_t *size, char *error,
                     size_t error_size) {
    FILE *file = fopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "%s: cannot open", path);
        return -1;
    }
    struct stat st;
    int status = fstat(fileno(file), &st) == 0 ? 0 : -1;
    size_t length = status == 0 ? (size_t)st.st_size : 0;
    uint8_t *bytes = status == 0 ? digcl_data_buffer_reserve(buffer, length ? length : 1) : NULL;
    if (!bytes || fread(bytes, 1, length, file) != length) {
        snprintf(error, error_size, "%s: cannot read", path);
        status = -1;
    }
    fclose(file);
    *size = length;
    return status;
}

static int image_read(void *state, int64_t index, const data_read_context *context, float *x,
                      int32_t *label, char *error, size_t error_size) {
    const image_folder *f = state;
    const image_entry *e = &f->entries[index];
    data_scratch *scratch = context->scratch;
    char path[4096], reason[256];
    snprintf(path, sizeof path, "%s/%s", e->root, e->name);
    size_t size = 0;
    int w = 0, h = 0;
    if (read_file(path, &scratch->file, &size, error, error_size) != 0) return -1;
    uint8_t *crop = NULL;
    int status = digcl_data_decode_image(scratch->file.bytes, size, f->channels, scratch, &w, &h,
                                         reason, sizeof reason);
    if (status == 0) {
        /* the crop goes into the file buffer, which the decoded pixels no longer need */
        crop = digcl_data_buffer_reserve(&scratch->file, (size_t)f->size * f->size * f->channels);
        status = crop ? digcl_data_center_crop(scratch, w, h, f->channels, f->size, crop, reason,
                                               sizeof reason)
                      : (snprintf(reason, sizeof reason, "out of host memory"), -1);
    }
    if (status != 0) {
        snprintf(error, error_size, "%s: %s", path, reason);
        return -1;
    }
    const size_t plane = (size_t)f->size * f->size;
    for (int c = 0; c < f->channels; c++)
        for (size_t p = 0; p < plane; p++) x[c * plane + p] = f->lut[crop[p * f->channels + c]];
    *label = e->label;
    return 0;
}
