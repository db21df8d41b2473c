/* idx.c: MNIST-style IDX files (Fashion-MNIST, MNIST), LeCun's format:
 *   images: u32 BE 0x00000803, u32 BE count, u32 BE rows, u32 BE cols, u8 pixels
 *   labels: u32 BE 0x00000801, u32 BE count, u8 labels
 * read whole (gzip or plain, through zlib's gzread) into memory. 28 x 28
 * images are padded with 2 pixels of background (-1) on every side to
 * 32 x 32, so that a model sees 32 x 32 x 1 and rows and columns 2..29 of a
 * sample are the 28 x 28 image again. docs/TRAINING.md ("Data"). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "data_internal.h"

#define IDX_PAD_FROM 28 /* images of this size are padded ... */
#define IDX_PAD      2  /* ... by this many pixels on every side */

static const char *const fashion_mnist_names =
    "T-shirt/top,Trouser,Pullover,Dress,Coat,Sandal,Shirt,Sneaker,Bag,Ankle boot";

typedef struct idx_state {
    uint8_t *images; /* [count, rows, cols] */
    uint8_t *labels; /* [count] */
    int rows, cols, pad;
    float lut[256];
} idx_state;

static const char *const image_names[] = {"train-images-idx3-ubyte", "train-images.idx3-ubyte"};
static const char *const label_names[] = {"train-labels-idx1-ubyte", "train-labels.idx1-ubyte"};

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* dir/name or dir/name.gz, whichever exists (0), else -1. */
static int find_file(const char *dir, const char *const names[2], char *path, size_t size) {
    for (int n = 0; n < 2; n++) {
        for (int gz = 0; gz < 2; gz++) {
            snprintf(path, size, "%s/%s%s", dir, names[n], gz ? ".gz" : "");
            if (file_exists(path)) return 0;
        }
    }
    snprintf(path, size, "%s/%s[.gz]", dir, names[0]);
    return -1;
}

int digcl_data_dir_has_idx(const char *dir) {
    char path[4096];
    return find_file(dir, image_names, path, sizeof path) == 0;
}

static uint32_t load_be32(const uint8_t *p) {
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

/* Reads exactly `size` bytes; -1 with the reason on a short read. */
static int read_exact(gzFile file, const char *path, void *out, size_t size, const char *what,
                      char *error, size_t error_size) {
    uint8_t *cursor = out;
    size_t done = 0;
    while (done < size) {
        unsigned chunk = size - done > (1u << 30) ? (1u << 30) : (unsigned)(size - done);
        int got = gzread(file, cursor + done, chunk);
        if (got <= 0) {
            int code;
            const char *message = gzerror(file, &code);
            if (code != Z_OK && code != Z_STREAM_END)
                snprintf(error, error_size, "%s: corrupt (%s) while reading %s", path, message,
                         what);
            else
                snprintf(error, error_size, "%s: truncated: %zu of the %zu bytes of %s present",
                         path, done, size, what);
            return -1;
        }
        done += (size_t)got;
    }
    return 0;
}

/* Opens an IDX file and checks its magic; header[] gets the dimensions. */
static gzFile open_idx(const char *path, uint32_t magic, int dims, uint32_t *header, char *error,
                       size_t error_size) {
    gzFile file = gzopen(path, "rb");
    if (!file) {
        snprintf(error, error_size, "%s: cannot open", path);
        return NULL;
    }
    gzbuffer(file, 1u << 20);
    uint8_t bytes[16];
    if (read_exact(file, path, bytes, 4 + 4 * (size_t)dims, "the header", error, error_size) != 0) {
        gzclose(file);
        return NULL;
    }
    if (load_be32(bytes) != magic) {
        snprintf(error, error_size,
                 "%s: magic 0x%08x, expected 0x%08x (IDX u8 with %d "
                 "dimension%s)",
                 path, load_be32(bytes), magic, dims, dims > 1 ? "s" : "");
        gzclose(file);
        return NULL;
    }
    for (int d = 0; d < dims; d++) header[d] = load_be32(bytes + 4 + 4 * d);
    return file;
}

static int read_images(idx_state *s, const char *path, int64_t *count, char *error,
                       size_t error_size) {
    uint32_t header[3];
    gzFile file = open_idx(path, 0x00000803u, 3, header, error, error_size);
    if (!file) return -1;
    if (header[0] == 0 || header[1] == 0 || header[2] == 0 || header[1] > 4096 ||
        header[2] > 4096) {
        snprintf(error, error_size,
                 "%s: %u images of %ux%u (expected at least one image, sides "
                 "1 to 4096)",
                 path, header[0], header[1], header[2]);
        gzclose(file);
        return -1;
    }
    size_t bytes = (size_t)header[0] * header[1] * header[2];
    s->images = malloc(bytes);
    int status = s->images
                     ? read_exact(file, path, s->images, bytes, "the pixels", error, error_size)
                     : (snprintf(error, error_size, "%s: out of host memory", path), -1);
    gzclose(file);
    *count = header[0];
    s->rows = (int)header[1];
    s->cols = (int)header[2];
    return status;
}

static int read_labels(idx_state *s, const char *path, int64_t count, int *num_classes, char *error,
                       size_t error_size) {
    uint32_t header[1];
    gzFile file = open_idx(path, 0x00000801u, 1, header, error, error_size);
    if (!file) return -1;
    if ((int64_t)header[0] != count) {
        snprintf(error, error_size, "%s: %u labels, but the images file holds %lld images", path,
                 header[0], (long long)count);
        gzclose(file);
        return -1;
    }
    s->labels = malloc((size_t)count);
    int status = s->labels ? read_exact(file, path, s->labels, (size_t)count, "the labels", error,
                                        error_size)
                           : (snprintf(error, error_size, "%s: out of host memory", path), -1);
    gzclose(file);
    int largest = 0;
    for (int64_t i = 0; status == 0 && i < count; i++)
        if (s->labels[i] > largest) largest = s->labels[i];
    *num_classes = largest + 1;
    return status;
}

static int idx_read(void *state, int64_t index, const data_read_context *context, float *x,
                    int32_t *label, char *error, size_t error_size) {
    (void)context;
    (void)error;
    (void)error_size;
    const idx_state *s = state;
    const int out_cols = s->cols + 2 * s->pad, out_rows = s->rows + 2 * s->pad;
    const uint8_t *image = s->images + (size_t)index * s->rows * s->cols;
    for (int r = 0; r < out_rows; r++) {
        float *out = x + (size_t)r * out_cols;
        int source_row = r - s->pad;
        if (source_row < 0 || source_row >= s->rows) {
            for (int c = 0; c < out_cols; c++) out[c] = -1.0f;
            continue;
        }
        const uint8_t *in = image + (size_t)source_row * s->cols;
        for (int c = 0; c < s->pad; c++) out[c] = out[out_cols - 1 - c] = -1.0f;
        for (int c = 0; c < s->cols; c++) out[s->pad + c] = s->lut[in[c]];
    }
    *label = s->labels[index];
    return 0;
}

static void idx_close(void *state) {
    idx_state *s = state;
    if (!s) return;
    free(s->images);
    free(s->labels);
    free(s);
}

/* Fashion-MNIST when the folder's name says so, else digits. */
static const char *idx_class_names(const char *dir, int num_classes) {
    char lower[4096];
    size_t n = strlen(dir);
    if (n >= sizeof lower) n = sizeof lower - 1;
    for (size_t i = 0; i < n; i++) lower[i] = (char)tolower((unsigned char)dir[i]);
    lower[n] = '\0';
    if (num_classes == 10 && strstr(lower, "fashion")) return fashion_mnist_names;
    return num_classes == 10 ? "0,1,2,3,4,5,6,7,8,9" : NULL;
}

int digcl_data_open_idx(digcl_dataset *dataset, const char *dir, char *error, size_t error_size) {
    char images_path[4096], labels_path[4096];
    if (find_file(dir, image_names, images_path, sizeof images_path) != 0 ||
        find_file(dir, label_names, labels_path, sizeof labels_path) != 0) {
        snprintf(error, error_size,
                 "%s: no %s (IDX data sets need train-images-idx3-ubyte[.gz] "
                 "and train-labels-idx1-ubyte[.gz])",
                 dir, file_exists(images_path) ? labels_path : images_path);
        return -1;
    }
    idx_state *s = calloc(1, sizeof *s);
    dataset->source = (data_source){idx_read, idx_close, s, 256};
    if (!s) {
        snprintf(error, error_size, "%s: out of host memory", dir);
        return -1;
    }
    int64_t count = 0;
    int num_classes = 0;
    if (read_images(s, images_path, &count, error, error_size) != 0 ||
        read_labels(s, labels_path, count, &num_classes, error, error_size) != 0)
        return -1;
    s->pad = s->rows == IDX_PAD_FROM && s->cols == IDX_PAD_FROM ? IDX_PAD : 0;
    for (int p = 0; p < 256; p++) s->lut[p] = digcl_data_pixel_to_float((uint8_t)p);
    digcl_dataset_info *info = &dataset->info;
    info->kind = DIGCL_DATASET_IDX;
    info->count = count;
    info->channels = 1;
    info->height = s->rows + 2 * s->pad;
    info->width = s->cols + 2 * s->pad;
    info->num_classes = num_classes;
    const char *names = idx_class_names(dir, num_classes);
    if (names && digcl_data_set_class_names(dataset, names) != 0) {
        snprintf(error, error_size, "%s: out of host memory", dir);
        return -1;
    }
    return 0;
}
