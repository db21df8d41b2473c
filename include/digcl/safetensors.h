/* digcl/safetensors.h: strict safetensors reader and atomic writer.
 *
 * Format (huggingface/safetensors README "Format", safetensors/src/tensor.rs):
 *   [u64 little-endian N][N bytes UTF-8 JSON header, starts with '{', may end in
 *   spaces][byte buffer]. Header: {"name": {"dtype": "F32", "shape": [..],
 *   "data_offsets": [BEGIN, END]}, ..., "__metadata__": {"k": "v", ...}}.
 *   Offsets are relative to the byte buffer; END is exclusive; data is
 *   little-endian, row-major.
 *
 * The reader rejects: N > 100,000,000 or past the end of the file, a header that
 * is not UTF-8 or does not start with '{', JSON that does not parse (cJSON) or
 * has anything but whitespace after the object, entries that are not objects,
 * missing or mistyped dtype/shape/data_offsets, unknown fields, unknown dtypes,
 * negative or non-integer dims, rank > DIGCL_ST_MAX_RANK, END-BEGIN different
 * from numel * dtype size, entries that (sorted by offset) leave a hole, overlap
 * or do not cover the whole byte buffer exactly, duplicate names, and a
 * __metadata__ that is not a string -> string map.
 *
 * Errors: every function that can fail on bad input returns 0 on success and
 * -1 on failure, and fills a digcl_st_error with one line naming the file, the
 * tensor and what was expected. The *_or_die wrappers call digcl_fatal instead.
 * Nothing here aborts or crashes on bad input (tests/fuzz/fuzz_safetensors.c).
 */
#ifndef DIGCL_SAFETENSORS_H
#define DIGCL_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#define DIGCL_ST_MAX_HEADER_SIZE 100000000ull /* safetensors' MAX_HEADER_SIZE */
#define DIGCL_ST_MAX_RANK        8            /* our limit; the format has none */

typedef enum digcl_st_dtype {
    DIGCL_ST_BOOL,
    DIGCL_ST_U8,
    DIGCL_ST_I8,
    DIGCL_ST_I16,
    DIGCL_ST_U16,
    DIGCL_ST_F16,
    DIGCL_ST_BF16,
    DIGCL_ST_I32,
    DIGCL_ST_U32,
    DIGCL_ST_F32,
    DIGCL_ST_F64,
    DIGCL_ST_I64,
    DIGCL_ST_U64,
    DIGCL_ST_C64,
    DIGCL_ST_F8_E5M2,
    DIGCL_ST_F8_E4M3,
    DIGCL_ST_F8_E8M0,
    DIGCL_ST_F4,
    DIGCL_ST_F6_E2M3,
    DIGCL_ST_F6_E3M2,
    DIGCL_ST_DTYPE_COUNT
} digcl_st_dtype;

/* One line of diagnostics, e.g.
 * "w.safetensors: tensor 'blocks.0.mlp.gate_proj.weight': data_offsets [0, 12]
 *  span 12 bytes, expected 16 (shape [2, 2] x F32 4 bytes)". */
typedef struct digcl_st_error {
    char message[8192]; /* room for a PATH_MAX path and the reason */
} digcl_st_error;

typedef struct digcl_st_tensor {
    const char *name;
    digcl_st_dtype dtype;
    int rank; /* 0 for a scalar */
    int64_t shape[DIGCL_ST_MAX_RANK];
    uint64_t numel;      /* product of shape; 1 for a scalar */
    uint64_t begin, end; /* byte range inside the byte buffer */
    const uint8_t *data; /* = buffer + begin, no alignment promised */
} digcl_st_tensor;

typedef struct digcl_st_metadata_entry {
    const char *key;
    const char *value;
} digcl_st_metadata_entry;

/* A parsed file. Tensors are sorted by name, metadata by key. */
typedef struct digcl_safetensors {
    char *label;           /* file path or "<memory>", used in messages */
    uint8_t *owned_bytes;  /* the whole file when read by digcl_st_open */
    const uint8_t *buffer; /* byte buffer (after the header) */
    uint64_t buffer_size;
    size_t n_tensors;
    digcl_st_tensor *tensors;
    size_t n_metadata;
    digcl_st_metadata_entry *metadata;
    char *strings; /* storage for names, keys and values */
} digcl_safetensors;

/* ---- dtypes ---- */
const char *digcl_st_dtype_name(digcl_st_dtype dtype);               /* "F32"; "?" if invalid */
int digcl_st_dtype_from_name(const char *name, digcl_st_dtype *out); /* 0 or -1 */
int digcl_st_dtype_bits(digcl_st_dtype dtype);                       /* 32 for F32, 4 for F4 */

/* ---- reading ---- */

/* Parses a complete file image. The tensors point into `bytes`, which must stay
 * alive and unchanged while *out is used. `label` names the source in errors
 * (may be NULL). On failure *out is NULL. */
int digcl_st_parse(const void *bytes, size_t size, const char *label, digcl_safetensors **out,
                   digcl_st_error *err);

/* Reads and parses a file; the file's bytes are owned by *out. */
int digcl_st_open(const char *path, digcl_safetensors **out, digcl_st_error *err);
digcl_safetensors *digcl_st_open_or_die(const char *path);
/* Reads only the length prefix and the header (cheap on a multi-GiB file) and
 * checks them exactly as digcl_st_open does, against the file's size; the
 * tensors' data pointers are NULL (read them with digcl_st_open). */
int digcl_st_open_header(const char *path, digcl_safetensors **out, digcl_st_error *err);

void digcl_st_close(digcl_safetensors *st);

/* NULL when absent. */
const digcl_st_tensor *digcl_st_find(const digcl_safetensors *st, const char *name);
const char *digcl_st_metadata(const digcl_safetensors *st, const char *key);

/* Converts to float32 from F32, F16, BF16, F64 and the integer dtypes and BOOL.
 * dst holds t->numel floats. Fails (naming the tensor) for F8/F6/F4/C64. */
int digcl_st_read_f32(const digcl_safetensors *st, const digcl_st_tensor *t, float *dst,
                      digcl_st_error *err);
/* Converts to int64 from the integer dtypes and BOOL, and from F16/BF16/F32/F64
 * when every value is an integer within int64 range. dst holds t->numel values. */
int digcl_st_read_i64(const digcl_safetensors *st, const digcl_st_tensor *t, int64_t *dst,
                      digcl_st_error *err);

/* Finds `name` and checks its shape (rank entries of shape). Errors name the
 * file, the tensor, and both shapes; a missing tensor says so. */
int digcl_st_expect(const digcl_safetensors *st, const char *name, int rank, const int64_t *shape,
                    const digcl_st_tensor **out, digcl_st_error *err);
const digcl_st_tensor *digcl_st_expect_or_die(const digcl_safetensors *st, const char *name,
                                              int rank, const int64_t *shape);
/* expect + read_f32 into dst (numel of shape floats). */
int digcl_st_load_f32(const digcl_safetensors *st, const char *name, int rank, const int64_t *shape,
                      float *dst, digcl_st_error *err);
void digcl_st_load_f32_or_die(const digcl_safetensors *st, const char *name, int rank,
                              const int64_t *shape, float *dst);

/* Fails naming the first tensor of the file whose name is not in
 * names[0..n_names) ("unexpected tensor 'x' [shape] DTYPE"). */
int digcl_st_check_no_unexpected(const digcl_safetensors *st, const char *const *names,
                                 size_t n_names, digcl_st_error *err);

/* "[2, 3, 4]" into buf; returns buf. */
char *digcl_st_format_shape(char *buf, size_t size, int rank, const int64_t *shape);

/* ---- writing ---- */

/* Collects tensors (by reference: the data must stay alive until the write)
 * and metadata (copied), then writes. Tensors are ordered by descending dtype
 * alignment, then name; the header is padded with spaces to a multiple of 8. */
typedef struct digcl_st_writer digcl_st_writer;

digcl_st_writer *digcl_st_writer_new(void);
void digcl_st_writer_free(digcl_st_writer *w);
/* Fail for a duplicate name, the reserved name (__metadata__), a bad
 * rank or a negative dim. `data` holds numel values in host order. */
int digcl_st_writer_add_f32(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                            const float *data, digcl_st_error *err);
/* The floats are stored as F16 (rounded to nearest even when the file is written). */
int digcl_st_writer_add_f16(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                            const float *data, digcl_st_error *err);
int digcl_st_writer_add_i64(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                            const int64_t *data, digcl_st_error *err);
/* Adds or replaces a metadata entry. */
int digcl_st_writer_set_metadata(digcl_st_writer *w, const char *key, const char *value,
                                 digcl_st_error *err);

/* Writes path atomically: a temp file in the same directory, fflush, fsync,
 * rename over path, then fsync of the directory. A replaced file keeps its
 * mode; a new one gets 0666 less the umask. On failure path is untouched and
 * the temp file is removed. */
int digcl_st_writer_write(const digcl_st_writer *w, const char *path, digcl_st_error *err);
void digcl_st_writer_write_or_die(const digcl_st_writer *w, const char *path);

/* Any file written the same atomic way: write(file, user, err) gets the open
 * temp file (a FILE *) and returns 0, or -1 with a message in err (e.g. a
 * full disk: the previous file at path stays). */
typedef int (*digcl_st_write_fn)(void *file, void *user, digcl_st_error *err);
int digcl_st_write_atomic(const char *path, digcl_st_write_fn write, void *user,
                          digcl_st_error *err);

/* The same bytes into a malloc'ed buffer (free with free()). */
int digcl_st_writer_serialize(const digcl_st_writer *w, uint8_t **bytes, size_t *size,
                              digcl_st_error *err);

#endif
