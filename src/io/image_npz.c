/* src/io/image_npz.c: the ADM evaluator's sample archive (include/digcl/image.h).
 *
 * An .npz is a zip file of NumPy .npy members (numpy.savez: stored, not
 * deflated). .npy v1.0 (numpy/lib/format.py): the magic "\x93NUMPY", version
 * bytes 1 0, a little-endian u16 header length, then an ASCII Python dict
 * "{'descr': '|u1', 'fortran_order': False, 'shape': (N, H, W, 3), }" padded
 * with spaces and ending in '\n' so that the data starts at a multiple of 64
 * bytes, then the C-order data. The members are streamed from the images
 * through a libzip source callback (grey replicated to 3 channels), so the
 * pixels are never copied whole; libzip writes a temp file that is then
 * fsync'ed and renamed into place (digcl/file.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/file.h"
#include "digcl/image.h"

int digcl_npz_available(void) {
#ifdef DIGCL_HAVE_ZIP
    return 1;
#else
    return 0;
#endif
}

#ifdef DIGCL_HAVE_ZIP
#include <zip.h>

#define NPY_ALIGN  64
#define NPY_PREFIX 10        /* magic 6 + version 2 + header length 2 */
#define NPZ_MTIME  315532800 /* 1980-01-01, the zip epoch: byte-identical archives */

typedef struct npy_member {
    unsigned char header[256];
    size_t header_size;        /* prefix + dict, a multiple of NPY_ALIGN */
    const digcl_image *images; /* arr_0: images; NULL for arr_1 */
    const int32_t *labels;     /* arr_1 */
    int count;
    size_t item_bytes; /* one image (H W 3) or one label (8) */
    size_t total;      /* header + data */
    size_t position;
} npy_member;

static void npy_header(npy_member *m, const char *descr, const char *shape) {
    char dict[200];
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }",
                     descr, shape);
    size_t total = ((size_t)NPY_PREFIX + (size_t)n + 1 + NPY_ALIGN - 1) / NPY_ALIGN * NPY_ALIGN;
    size_t dict_size = total - NPY_PREFIX;
    memcpy(m->header, "\x93NUMPY\x01\x00", 8);
    m->header[8] = (unsigned char)(dict_size & 0xff);
    m->header[9] = (unsigned char)(dict_size >> 8);
    memset(m->header + NPY_PREFIX, ' ', dict_size);
    memcpy(m->header + NPY_PREFIX, dict, (size_t)n);
    m->header[total - 1] = '\n';
    m->header_size = total;
    m->total = total + m->item_bytes * (size_t)m->count;
}

/* One byte of the member's data at offset q past the header. */
static unsigned char member_byte(const npy_member *m, size_t q) {
    size_t item = q / m->item_bytes, within = q % m->item_bytes;
    if (!m->images) {
        uint64_t value = (uint64_t)(int64_t)m->labels[item];
        return (unsigned char)(value >> (8 * within)); /* little-endian int64 */
    }
    const digcl_image *image = &m->images[item];
    size_t pixel = within / 3, channel = within % 3;
    return image->pixels[pixel * (size_t)image->channels + (image->channels == 1 ? 0 : channel)];
}

static zip_int64_t member_read(npy_member *m, unsigned char *out, zip_uint64_t length) {
    size_t n = 0;
    for (; n < length && m->position < m->total; n++, m->position++)
        out[n] = m->position < m->header_size ? m->header[m->position]
                                              : member_byte(m, m->position - m->header_size);
    return (zip_int64_t)n;
}

static zip_int64_t member_callback(void *user, void *data, zip_uint64_t length,
                                   zip_source_cmd_t command) {
    npy_member *m = user;
    switch (command) {
    case ZIP_SOURCE_OPEN: m->position = 0; return 0;
    case ZIP_SOURCE_READ: return member_read(m, data, length);
    case ZIP_SOURCE_CLOSE: return 0;
    case ZIP_SOURCE_STAT: {
        zip_stat_t *st = data;
        zip_stat_init(st);
        st->size = m->total;
        st->mtime = NPZ_MTIME;
        st->valid |= ZIP_STAT_SIZE | ZIP_STAT_MTIME;
        return sizeof *st;
    }
    case ZIP_SOURCE_ERROR: return zip_error_to_data(NULL, data, length);
    case ZIP_SOURCE_FREE: return 0;
    case ZIP_SOURCE_SUPPORTS: return ZIP_SOURCE_SUPPORTS_READABLE;
    default: return -1;
    }
}

/* Adds one stored member; the source belongs to the archive afterwards. */
static int add_member(zip_t *archive, const char *name, npy_member *m) {
    zip_source_t *source = zip_source_function(archive, member_callback, m);
    if (!source) return -1;
    zip_int64_t index = zip_file_add(archive, name, source, ZIP_FL_OVERWRITE);
    if (index < 0) {
        zip_source_free(source);
        return -1;
    }
    zip_file_set_mtime(archive, (zip_uint64_t)index, NPZ_MTIME, 0);
    return zip_set_file_compression(archive, (zip_uint64_t)index, ZIP_CM_STORE, 0);
}

static int write_archive(const char *temp, npy_member members[2], int n_members, char *reason,
                         size_t reason_size) {
    int zip_status = 0;
    zip_t *archive = zip_open(temp, ZIP_TRUNCATE, &zip_status);
    if (!archive) {
        zip_error_t e;
        zip_error_init_with_code(&e, zip_status);
        snprintf(reason, reason_size, "%s", zip_error_strerror(&e));
        zip_error_fini(&e);
        return -1;
    }
    static const char *const names[2] = {"arr_0.npy", "arr_1.npy"};
    for (int i = 0; i < n_members; i++) {
        if (add_member(archive, names[i], &members[i]) == 0) continue;
        snprintf(reason, reason_size, "%s", zip_strerror(archive));
        zip_discard(archive);
        return -1;
    }
    if (zip_close(archive) == 0) return 0;
    snprintf(reason, reason_size, "%s", zip_strerror(archive));
    zip_discard(archive);
    return -1;
}

static int check_images(const char *path, const digcl_image *images, int count, char *error,
                        size_t size) {
    if (count < 1) {
        snprintf(error, size, "%s: no images to write", path);
        return -1;
    }
    for (int i = 0; i < count; i++) {
        if (images[i].width == images[0].width && images[i].height == images[0].height &&
            (images[i].channels == 1 || images[i].channels == 3))
            continue;
        snprintf(error, size, "%s: image %d is %dx%d with %d channels, expected %dx%d like image 0",
                 path, i, images[i].width, images[i].height, images[i].channels, images[0].width,
                 images[0].height);
        return -1;
    }
    return 0;
}

int digcl_npz_write(const char *path, const digcl_image *images, int count, const int32_t *labels,
                    char *error, size_t size) {
    if (check_images(path, images, count, error, size) != 0) return -1;
    npy_member members[2];
    memset(members, 0, sizeof members);
    char shape[96];
    members[0].images = images;
    members[0].count = count;
    members[0].item_bytes = (size_t)images[0].height * (size_t)images[0].width * 3;
    snprintf(shape, sizeof shape, "(%d, %d, %d, 3)", count, images[0].height, images[0].width);
    npy_header(&members[0], "|u1", shape);
    members[1].labels = labels;
    members[1].count = count;
    members[1].item_bytes = 8;
    snprintf(shape, sizeof shape, "(%d,)", count);
    npy_header(&members[1], "<i8", shape);
    char *temp = digcl_file_temp_create(path, error, size);
    if (!temp) return -1;
    char reason[256];
    int status = write_archive(temp, members, labels ? 2 : 1, reason, sizeof reason);
    if (status != 0) {
        snprintf(error, size, "%s: writing the zip archive failed: %s", path, reason);
        remove(temp);
    } else {
        status = digcl_file_temp_commit(temp, path, error, size);
    }
    free(temp);
    return status;
}

#else

int digcl_npz_write(const char *path, const digcl_image *images, int count, const int32_t *labels,
                    char *error, size_t size) {
    (void)images;
    (void)count;
    (void)labels;
    snprintf(error, size, "%s: this build has no libzip (configure with -DDIGCL_WITH_ZIP=ON)",
             path);
    return -1;
}

#endif
