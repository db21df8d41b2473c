/* src/io/safetensors.c: strict safetensors reader and atomic writer.
 *
 * Format and the checks made: include/digcl/safetensors.h (after huggingface/safetensors
 * safetensors/src/tensor.rs). JSON is parsed with cJSON.
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include "digcl/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "digcl/error.h"
#include "digcl/file.h"

#define MAX_EXACT_JSON_INTEGER 9007199254740992.0 /* 2^53 */

/* ------------------------------------------------------------------ errors */

static int fail(digcl_st_error *err, const char *format, ...) DIGCL_PRINTF(2, 3);

static int fail(digcl_st_error *err, const char *format, ...) {
    if (err) {
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return -1;
}

char *digcl_st_format_shape(char *buf, size_t size, int rank, const int64_t *shape) {
    size_t used = 0;
    if (size == 0) return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < rank && used < size; i++)
        used +=
            (size_t)snprintf(buf + used, size - used, i ? ", %lld" : "%lld", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* ------------------------------------------------------------------ dtypes */

static const struct {
    const char *name;
    int bits;
} dtype_table[DIGCL_ST_DTYPE_COUNT] = {
    [DIGCL_ST_BOOL] = {"BOOL", 8},       [DIGCL_ST_U8] = {"U8", 8},
    [DIGCL_ST_I8] = {"I8", 8},           [DIGCL_ST_I16] = {"I16", 16},
    [DIGCL_ST_U16] = {"U16", 16},        [DIGCL_ST_F16] = {"F16", 16},
    [DIGCL_ST_BF16] = {"BF16", 16},      [DIGCL_ST_I32] = {"I32", 32},
    [DIGCL_ST_U32] = {"U32", 32},        [DIGCL_ST_F32] = {"F32", 32},
    [DIGCL_ST_F64] = {"F64", 64},        [DIGCL_ST_I64] = {"I64", 64},
    [DIGCL_ST_U64] = {"U64", 64},        [DIGCL_ST_C64] = {"C64", 64},
    [DIGCL_ST_F8_E5M2] = {"F8_E5M2", 8}, [DIGCL_ST_F8_E4M3] = {"F8_E4M3", 8},
    [DIGCL_ST_F8_E8M0] = {"F8_E8M0", 8}, [DIGCL_ST_F4] = {"F4", 4},
    [DIGCL_ST_F6_E2M3] = {"F6_E2M3", 6}, [DIGCL_ST_F6_E3M2] = {"F6_E3M2", 6},
};

const char *digcl_st_dtype_name(digcl_st_dtype dtype) {
    if ((int)dtype < 0 || dtype >= DIGCL_ST_DTYPE_COUNT) return "?";
    return dtype_table[dtype].name;
}

int digcl_st_dtype_bits(digcl_st_dtype dtype) {
    if ((int)dtype < 0 || dtype >= DIGCL_ST_DTYPE_COUNT) return 0;
    return dtype_table[dtype].bits;
}

int digcl_st_dtype_from_name(const char *name, digcl_st_dtype *out) {
    for (int i = 0; i < DIGCL_ST_DTYPE_COUNT; i++) {
        if (strcmp(name, dtype_table[i].name) == 0) {
            *out = (digcl_st_dtype)i;
            return 0;
        }
    }
    return -1;
}

/* ------------------------------------------------------- little-endian load */

static uint64_t load_le(const uint8_t *p, int bytes) {
    uint64_t value = 0;
    for (int i = bytes - 1; i >= 0; i--) value = (value << 8) | p[i];
    return value;
}

static void store_le(uint8_t *p, uint64_t value, int bytes) {
    for (int i = 0; i < bytes; i++) p[i] = (uint8_t)(value >> (8 * i));
}

static float f32_from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

static double f64_from_bits(uint64_t bits) {
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* IEEE binary16 -> binary32, exact (subnormals, inf and NaN included). */
static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exponent = (h >> 10) & 0x1fu;
    uint32_t mantissa = h & 0x3ffu;
    if (exponent == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mantissa << 13));
    if (exponent == 0) {
        float magnitude = ldexpf((float)mantissa, -24); /* subnormal or zero */
        return sign ? -magnitude : magnitude;
    }
    return f32_from_bits(sign | ((exponent + 112u) << 23) | (mantissa << 13));
}

static float bf16_to_f32(uint16_t b) { return f32_from_bits((uint32_t)b << 16); }

/* binary32 -> binary16, rounded to nearest even (numpy's astype(float16)): overflow to inf,
 * subnormals kept, NaN stays NaN. */
static uint16_t f32_to_f16(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    const uint16_t sign = (uint16_t)((bits >> 16) & 0x8000u);
    const uint32_t magnitude = bits & 0x7fffffffu;
    if (magnitude >= 0x7f800000u) /* inf or NaN */
        return (uint16_t)(sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u : 0u));
    if (magnitude >= 0x477ff000u) return (uint16_t)(sign | 0x7c00u); /* rounds past 65504 */
    if (magnitude < 0x38800000u) {                /* below 2^-14: a subnormal half (or zero) */
        if (magnitude < 0x33000000u) return sign; /* below half the smallest subnormal */
        const uint32_t exponent = magnitude >> 23, mantissa = (magnitude & 0x7fffffu) | 0x800000u;
        const uint32_t shift = 126u - exponent; /* 14 .. 24 */
        uint32_t half = mantissa >> shift;
        const uint32_t rest = mantissa & ((1u << shift) - 1u), mid = 1u << (shift - 1u);
        if (rest > mid || (rest == mid && (half & 1u))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = ((magnitude >> 13) - (112u << 10));
    const uint32_t rest = magnitude & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half++;
    return (uint16_t)(sign | half);
}

/* Element i of a tensor as double; 0 and *ok = 0 for dtypes we cannot convert. */
static double element_as_double(const digcl_st_tensor *t, uint64_t i, int *ok) {
    const uint8_t *p = t->data + i * (uint64_t)(dtype_table[t->dtype].bits / 8);
    *ok = 1;
    switch (t->dtype) {
    case DIGCL_ST_BOOL: return p[0] ? 1.0 : 0.0;
    case DIGCL_ST_U8: return p[0];
    case DIGCL_ST_I8: return (int8_t)p[0];
    case DIGCL_ST_I16: return (int16_t)load_le(p, 2);
    case DIGCL_ST_U16: return (double)load_le(p, 2);
    case DIGCL_ST_F16: return f16_to_f32((uint16_t)load_le(p, 2));
    case DIGCL_ST_BF16: return bf16_to_f32((uint16_t)load_le(p, 2));
    case DIGCL_ST_I32: return (int32_t)(uint32_t)load_le(p, 4);
    case DIGCL_ST_U32: return (double)load_le(p, 4);
    case DIGCL_ST_F32: return f32_from_bits((uint32_t)load_le(p, 4));
    case DIGCL_ST_F64: return f64_from_bits(load_le(p, 8));
    case DIGCL_ST_I64: return (double)(int64_t)load_le(p, 8);
    case DIGCL_ST_U64: return (double)load_le(p, 8);
    default: *ok = 0; return 0.0;
    }
}

static int is_integer_dtype(digcl_st_dtype d) {
    return d == DIGCL_ST_BOOL || d == DIGCL_ST_U8 || d == DIGCL_ST_I8 || d == DIGCL_ST_I16 ||
           d == DIGCL_ST_U16 || d == DIGCL_ST_I32 || d == DIGCL_ST_U32 || d == DIGCL_ST_I64 ||
           d == DIGCL_ST_U64;
}

/* ============================================================== reading */

/* Parsing state shared by the helpers below. */
typedef struct parse_ctx {
    const char *label;
    digcl_st_error *err;
    uint64_t buffer_size;
} parse_ctx;

static int is_valid_utf8(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        int extra = c < 0x80             ? 0
                    : (c & 0xe0) == 0xc0 ? 1
                    : (c & 0xf0) == 0xe0 ? 2
                    : (c & 0xf8) == 0xf0 ? 3
                                         : -1;
        if (extra < 0 || (extra == 1 && c < 0xc2) || c > 0xf4 || (size_t)extra >= n - i) return 0;
        for (int k = 1; k <= extra; k++)
            if ((s[i + (size_t)k] & 0xc0) != 0x80) return 0;
        i += (size_t)extra + 1;
    }
    return 1;
}

static int only_json_whitespace(const char *p, const char *end) {
    for (; p < end; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != '\r') return 0;
    return 1;
}

static const char *json_type_name(const cJSON *item) {
    if (cJSON_IsString(item)) return "a string";
    if (cJSON_IsNumber(item)) return "a number";
    if (cJSON_IsArray(item)) return "an array";
    if (cJSON_IsObject(item)) return "an object";
    if (cJSON_IsBool(item)) return "a boolean";
    if (cJSON_IsNull(item)) return "null";
    return "an invalid value";
}

/* A JSON number that is an integer in [0, 2^53]. */
static int json_to_u64(const cJSON *item, uint64_t *out) {
    if (!cJSON_IsNumber(item)) return -1;
    double d = item->valuedouble;
    if (!(d >= 0.0 && d <= MAX_EXACT_JSON_INTEGER) || floor(d) != d) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_dtype(const parse_ctx *c, const char *name, const cJSON *item,
                       digcl_st_tensor *t) {
    if (!cJSON_IsString(item))
        return fail(c->err, "%s: tensor '%s': \"dtype\" must be a string, got %s", c->label, name,
                    json_type_name(item));
    if (digcl_st_dtype_from_name(item->valuestring, &t->dtype) != 0)
        return fail(c->err,
                    "%s: tensor '%s': unknown dtype \"%.64s\" (expected F32, F16, "
                    "BF16, F64, I64, I32, ... as in the safetensors spec)",
                    c->label, name, item->valuestring);
    return 0;
}

static int parse_shape(const parse_ctx *c, const char *name, const cJSON *item,
                       digcl_st_tensor *t) {
    if (!cJSON_IsArray(item))
        return fail(c->err,
                    "%s: tensor '%s': \"shape\" must be an array of non-negative "
                    "integers, got %s",
                    c->label, name, json_type_name(item));
    int rank = cJSON_GetArraySize(item);
    if (rank > DIGCL_ST_MAX_RANK)
        return fail(c->err, "%s: tensor '%s': rank %d, at most %d supported", c->label, name, rank,
                    DIGCL_ST_MAX_RANK);
    t->rank = 0;
    t->numel = 1;
    for (const cJSON *dim = item->child; dim; dim = dim->next) {
        uint64_t value;
        if (json_to_u64(dim, &value) != 0)
            return fail(c->err,
                        "%s: tensor '%s': shape entry %d is not a non-negative "
                        "integer",
                        c->label, name, t->rank);
        if (value != 0 && t->numel > UINT64_MAX / 64 / value)
            return fail(c->err, "%s: tensor '%s': shape product overflows", c->label, name);
        t->numel *= value;
        t->shape[t->rank++] = (int64_t)value;
    }
    return 0;
}

static int parse_offsets(const parse_ctx *c, const char *name, const cJSON *item,
                         digcl_st_tensor *t) {
    if (!cJSON_IsArray(item) || cJSON_GetArraySize(item) != 2 ||
        json_to_u64(item->child, &t->begin) != 0 || json_to_u64(item->child->next, &t->end) != 0)
        return fail(c->err,
                    "%s: tensor '%s': \"data_offsets\" must be [BEGIN, END] with "
                    "non-negative integers",
                    c->label, name);
    if (t->end < t->begin)
        return fail(c->err,
                    "%s: tensor '%s': data_offsets [%llu, %llu] end before they "
                    "begin",
                    c->label, name, (unsigned long long)t->begin, (unsigned long long)t->end);
    return 0;
}

/* Checks END-BEGIN == numel * dtype size and that the range is inside the buffer. */
static int check_span(const parse_ctx *c, const char *name, const digcl_st_tensor *t) {
    uint64_t bits = t->numel * (uint64_t)dtype_table[t->dtype].bits; /* no overflow: numel < 2^58 */
    char shape[256];
    digcl_st_format_shape(shape, sizeof shape, t->rank, t->shape);
    if (bits % 8 != 0)
        return fail(c->err, "%s: tensor '%s': shape %s of %s is not a whole number of bytes",
                    c->label, name, shape, dtype_table[t->dtype].name);
    if (t->end - t->begin != bits / 8)
        return fail(c->err,
                    "%s: tensor '%s': data_offsets [%llu, %llu] span %llu bytes, "
                    "expected %llu (shape %s x %s)",
                    c->label, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                    (unsigned long long)(t->end - t->begin), (unsigned long long)(bits / 8), shape,
                    dtype_table[t->dtype].name);
    if (t->end > c->buffer_size)
        return fail(c->err,
                    "%s: tensor '%s': data_offsets [%llu, %llu] go past the byte "
                    "buffer of %llu bytes (truncated file?)",
                    c->label, name, (unsigned long long)t->begin, (unsigned long long)t->end,
                    (unsigned long long)c->buffer_size);
    return 0;
}

typedef int (*field_parser)(const parse_ctx *, const char *, const cJSON *, digcl_st_tensor *);

static int parse_tensor_entry(const parse_ctx *c, const cJSON *entry, digcl_st_tensor *t) {
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    static const field_parser parsers[3] = {parse_dtype, parse_shape, parse_offsets};
    const char *name = entry->string;
    int seen[3] = {0, 0, 0};
    if (!cJSON_IsObject(entry))
        return fail(c->err,
                    "%s: tensor '%s': expected an object with dtype, shape and "
                    "data_offsets, got %s",
                    c->label, name, json_type_name(entry));
    for (const cJSON *field = entry->child; field; field = field->next) {
        int k = 0;
        while (k < 3 && strcmp(field->string, fields[k]) != 0) k++;
        if (k == 3)
            return fail(c->err,
                        "%s: tensor '%s': unknown field \"%.64s\" (expected dtype, "
                        "shape, data_offsets)",
                        c->label, name, field->string);
        if (seen[k]++)
            return fail(c->err, "%s: tensor '%s': duplicate field \"%s\"", c->label, name,
                        fields[k]);
        if (parsers[k](c, name, field, t) != 0) return -1;
    }
    for (int k = 0; k < 3; k++)
        if (!seen[k])
            return fail(c->err, "%s: tensor '%s': missing \"%s\"", c->label, name, fields[k]);
    return check_span(c, name, t);
}

static int check_metadata(const parse_ctx *c, const cJSON *meta, size_t *n_entries) {
    *n_entries = 0;
    if (cJSON_IsNull(meta)) return 0;
    if (!cJSON_IsObject(meta))
        return fail(c->err,
                    "%s: __metadata__ must be an object mapping strings to strings, "
                    "got %s",
                    c->label, json_type_name(meta));
    for (const cJSON *e = meta->child; e; e = e->next, (*n_entries)++)
        if (!cJSON_IsString(e))
            return fail(c->err, "%s: __metadata__ entry \"%.64s\" must be a string, got %s",
                        c->label, e->string, json_type_name(e));
    return 0;
}

static int compare_metadata(const void *a, const void *b) {
    return strcmp(((const digcl_st_metadata_entry *)a)->key,
                  ((const digcl_st_metadata_entry *)b)->key);
}

/* Sorts the metadata by key (for lookup) and rejects a key given twice. */
static int sort_metadata(const parse_ctx *c, digcl_safetensors *st) {
    qsort(st->metadata, st->n_metadata, sizeof *st->metadata, compare_metadata);
    for (size_t i = 1; i < st->n_metadata; i++)
        if (strcmp(st->metadata[i - 1].key, st->metadata[i].key) == 0)
            return fail(c->err, "%s: __metadata__ has the key \"%.64s\" twice", c->label,
                        st->metadata[i].key);
    return 0;
}

static int compare_by_name(const void *a, const void *b) {
    return strcmp(((const digcl_st_tensor *)a)->name, ((const digcl_st_tensor *)b)->name);
}

static int compare_by_offset(const void *a, const void *b) {
    const digcl_st_tensor *x = *(const digcl_st_tensor *const *)a;
    const digcl_st_tensor *y = *(const digcl_st_tensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* Sorted by offset, the tensors must tile [0, buffer_size) exactly. */
static int check_coverage(const parse_ctx *c, const digcl_safetensors *st) {
    const digcl_st_tensor **order = malloc((st->n_tensors + 1) * sizeof *order);
    if (!order) return fail(c->err, "%s: out of memory", c->label);
    for (size_t i = 0; i < st->n_tensors; i++) order[i] = &st->tensors[i];
    qsort(order, st->n_tensors, sizeof *order, compare_by_offset);
    uint64_t expected = 0;
    int status = 0;
    for (size_t i = 0; i < st->n_tensors && status == 0; i++) {
        if (order[i]->begin != expected)
            status =
                fail(c->err,
                     "%s: tensor '%s' starts at byte %llu but the previous "
                     "tensor ends at %llu (%s; tensors must be contiguous)",
                     c->label, order[i]->name, (unsigned long long)order[i]->begin,
                     (unsigned long long)expected, order[i]->begin > expected ? "hole" : "overlap");
        expected = order[i]->end;
    }
    if (status == 0 && expected != c->buffer_size)
        status = fail(c->err,
                      "%s: tensors cover %llu bytes but the byte buffer holds %llu "
                      "(extra bytes at the end of the file)",
                      c->label, (unsigned long long)expected, (unsigned long long)c->buffer_size);
    free(order);
    return status;
}

static int check_unique_names(const parse_ctx *c, const digcl_safetensors *st) {
    for (size_t i = 1; i < st->n_tensors; i++)
        if (strcmp(st->tensors[i - 1].name, st->tensors[i].name) == 0)
            return fail(c->err, "%s: duplicate tensor name '%s'", c->label, st->tensors[i].name);
    return 0;
}

static char *copy_string(char **cursor, const char *s) {
    size_t n = strlen(s) + 1;
    char *dst = *cursor;
    memcpy(dst, s, n);
    *cursor += n;
    return dst;
}

/* Counts entries and the string bytes to copy; validates __metadata__. */
static int count_entries(const parse_ctx *c, const cJSON *root, size_t *n_tensors, size_t *n_meta,
                         size_t *string_bytes) {
    int seen_meta = 0;
    *n_tensors = *n_meta = *string_bytes = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") != 0) {
            (*n_tensors)++;
            *string_bytes += strlen(e->string) + 1;
            continue;
        }
        if (seen_meta++) return fail(c->err, "%s: __metadata__ appears twice", c->label);
        if (check_metadata(c, e, n_meta) != 0) return -1;
        for (const cJSON *m = e->child; m && cJSON_IsString(m); m = m->next)
            *string_bytes += strlen(m->string) + strlen(m->valuestring) + 2;
    }
    return 0;
}

static int fill_entries(const parse_ctx *c, const cJSON *root, digcl_safetensors *st,
                        const uint8_t *buffer) {
    char *cursor = st->strings;
    size_t ti = 0, mi = 0;
    for (const cJSON *e = root->child; e; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) {
            for (const cJSON *m = cJSON_IsObject(e) ? e->child : NULL; m; m = m->next, mi++) {
                st->metadata[mi].key = copy_string(&cursor, m->string);
                st->metadata[mi].value = copy_string(&cursor, m->valuestring);
            }
            continue;
        }
        digcl_st_tensor *t = &st->tensors[ti++];
        if (parse_tensor_entry(c, e, t) != 0) return -1;
        t->name = copy_string(&cursor, e->string);
        t->data = buffer ? buffer + t->begin : NULL;
    }
    return 0;
}

static int build_from_json(const parse_ctx *c, const cJSON *root, digcl_safetensors *st,
                           const uint8_t *buffer) {
    size_t n_tensors, n_meta, string_bytes;
    if (count_entries(c, root, &n_tensors, &n_meta, &string_bytes) != 0) return -1;
    st->tensors = calloc(n_tensors + 1, sizeof *st->tensors);
    st->metadata = calloc(n_meta + 1, sizeof *st->metadata);
    st->strings = malloc(string_bytes + 1);
    if (!st->tensors || !st->metadata || !st->strings)
        return fail(c->err, "%s: out of memory for %zu tensors", c->label, n_tensors);
    st->n_tensors = n_tensors;
    st->n_metadata = n_meta;
    if (fill_entries(c, root, st, buffer) != 0) return -1;
    qsort(st->tensors, n_tensors, sizeof *st->tensors, compare_by_name);
    if (check_unique_names(c, st) != 0 || sort_metadata(c, st) != 0) return -1;
    return check_coverage(c, st);
}

/* Parses the JSON header (validated to start with '{' and be UTF-8). */
static cJSON *parse_header_json(const parse_ctx *c, const uint8_t *header, size_t n) {
    char *text = malloc(n + 1); /* NUL-terminated copy: cJSON never reads past it */
    if (!text) {
        fail(c->err, "%s: out of memory for a %zu-byte header", c->label, n);
        return NULL;
    }
    memcpy(text, header, n);
    text[n] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, n, &end, 0);
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        fail(c->err, "%s: header is not valid JSON (error near byte %zu of %zu)", c->label, at, n);
    } else if (!cJSON_IsObject(root) || !only_json_whitespace(end, text + n)) {
        fail(c->err, "%s: header must be one JSON object followed only by spaces", c->label);
        cJSON_Delete(root);
        root = NULL;
    }
    free(text);
    return root;
}

/* Validates the 8-byte length prefix and the header's first byte and encoding. */
static int check_prefix(const parse_ctx *c, const uint8_t *bytes, size_t size,
                        uint64_t *header_size) {
    if (size < 8)
        return fail(c->err,
                    "%s: file is %zu bytes, too short for the 8-byte header length "
                    "(not a safetensors file?)",
                    c->label, size);
    uint64_t n = load_le(bytes, 8);
    if (n > DIGCL_ST_MAX_HEADER_SIZE)
        return fail(c->err,
                    "%s: header length %llu exceeds the limit of %llu bytes (not a "
                    "safetensors file?)",
                    c->label, (unsigned long long)n, DIGCL_ST_MAX_HEADER_SIZE);
    if (n > size - 8)
        return fail(c->err,
                    "%s: header length %llu goes past the end of the %zu-byte file "
                    "(truncated?)",
                    c->label, (unsigned long long)n, size);
    if (n == 0 || bytes[8] != '{') return fail(c->err, "%s: header must start with '{'", c->label);
    if (!is_valid_utf8(bytes + 8, (size_t)n))
        return fail(c->err, "%s: header is not valid UTF-8", c->label);
    *header_size = n;
    return 0;
}

int digcl_st_parse(const void *bytes, size_t size, const char *label, digcl_safetensors **out,
                   digcl_st_error *err) {
    const uint8_t *p = bytes;
    parse_ctx c = {label ? label : "<memory>", err, 0};
    uint64_t header_size = 0;
    *out = NULL;
    if (check_prefix(&c, p, size, &header_size) != 0) return -1;
    c.buffer_size = size - 8 - header_size;
    digcl_safetensors *st = calloc(1, sizeof *st);
    cJSON *root = st ? parse_header_json(&c, p + 8, (size_t)header_size) : NULL;
    int status = root ? 0 : -1;
    if (!st) status = fail(err, "%s: out of memory", c.label);
    if (status == 0) {
        st->buffer = p + 8 + header_size;
        st->buffer_size = c.buffer_size;
        status = build_from_json(&c, root, st, st->buffer);
    }
    if (status == 0) st->label = malloc(strlen(c.label) + 1);
    if (status == 0 && !st->label) status = fail(err, "%s: out of memory", c.label);
    if (status == 0) strcpy(st->label, c.label);
    cJSON_Delete(root);
    if (status != 0) {
        digcl_st_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

static int read_whole_file(const char *path, uint8_t **bytes, size_t *size, digcl_st_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode)) {
        int directory = S_ISDIR(info.st_mode);
        fclose(f);
        return fail(err,
                    directory ? "%s: is a directory, expected a safetensors file"
                              : "%s: not a regular file",
                    path);
    }
    *size = (size_t)info.st_size;
    *bytes = malloc(*size ? *size : 1);
    if (!*bytes) {
        fclose(f);
        return fail(err, "%s: out of memory reading %zu bytes", path, *size);
    }
    size_t got = fread(*bytes, 1, *size, f);
    fclose(f);
    if (got != *size) {
        free(*bytes);
        *bytes = NULL;
        return fail(err, "%s: read %zu of %zu bytes", path, got, *size);
    }
    return 0;
}

int digcl_st_open(const char *path, digcl_safetensors **out, digcl_st_error *err) {
    uint8_t *bytes = NULL;
    size_t size = 0;
    *out = NULL;
    if (read_whole_file(path, &bytes, &size, err) != 0) return -1;
    if (digcl_st_parse(bytes, size, path, out, err) != 0) {
        free(bytes);
        return -1;
    }
    (*out)->owned_bytes = bytes;
    return 0;
}

/* The 8-byte length prefix and, when its length is plausible, the header:
 * *bytes holds 8 + *header_bytes bytes. */
static int read_header_part(const char *path, uint8_t **bytes, size_t *header_bytes,
                            size_t *file_size, digcl_st_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    int status = 0;
    *header_bytes = 0;
    if (fstat(fileno(f), &info) != 0 || !S_ISREG(info.st_mode))
        status = fail(err,
                      S_ISDIR(info.st_mode) ? "%s: is a directory, expected a safetensors file"
                                            : "%s: not a regular file",
                      path);
    *file_size = status == 0 ? (size_t)info.st_size : 0;
    if (status == 0 && !(*bytes = calloc(1, 9))) status = fail(err, "%s: out of memory", path);
    if (status == 0 && *file_size >= 8 && fread(*bytes, 1, 8, f) != 8)
        status = fail(err, "%s: cannot read the header length", path);
    uint64_t n = status == 0 && *file_size >= 8 ? load_le(*bytes, 8) : 0;
    if (status == 0 && n >= 1 && n <= DIGCL_ST_MAX_HEADER_SIZE && n <= *file_size - 8) {
        uint8_t *grown = realloc(*bytes, 8 + (size_t)n);
        if (!grown)
            status =
                fail(err, "%s: out of memory for a %llu-byte header", path, (unsigned long long)n);
        else if (*bytes = grown, fread(grown + 8, 1, (size_t)n, f) != (size_t)n)
            status = fail(err, "%s: cannot read the %llu-byte header", path, (unsigned long long)n);
        else *header_bytes = (size_t)n;
    }
    fclose(f);
    return status;
}

int digcl_st_open_header(const char *path, digcl_safetensors **out, digcl_st_error *err) {
    uint8_t *bytes = NULL;
    size_t header_bytes = 0, file_size = 0;
    *out = NULL;
    parse_ctx c = {path, err, 0};
    uint64_t header_size = 0;
    int status = read_header_part(path, &bytes, &header_bytes, &file_size, err);
    /* with an implausible length check_prefix fails before it reads past byte 8 */
    if (status == 0) status = check_prefix(&c, bytes, file_size, &header_size);
    digcl_safetensors *st = NULL;
    cJSON *root = NULL;
    if (status == 0) {
        c.buffer_size = file_size - 8 - header_size;
        st = calloc(1, sizeof *st);
        root = st ? parse_header_json(&c, bytes + 8, (size_t)header_size) : NULL;
        status = root ? 0 : st ? -1 : fail(err, "%s: out of memory", path);
    }
    if (status == 0) {
        st->buffer_size = c.buffer_size;
        status = build_from_json(&c, root, st, NULL);
    }
    if (status == 0 && !(st->label = malloc(strlen(path) + 1)))
        status = fail(err, "%s: out of memory", path);
    if (status == 0) strcpy(st->label, path);
    cJSON_Delete(root);
    free(bytes); /* names and metadata live in st->strings */
    if (status != 0) {
        digcl_st_close(st);
        return -1;
    }
    *out = st;
    return 0;
}

digcl_safetensors *digcl_st_open_or_die(const char *path) {
    digcl_st_error err;
    digcl_safetensors *st;
    if (digcl_st_open(path, &st, &err) != 0) digcl_fatal("%s", err.message);
    return st;
}

void digcl_st_close(digcl_safetensors *st) {
    if (!st) return;
    free(st->label);
    free(st->owned_bytes);
    free(st->tensors);
    free(st->metadata);
    free(st->strings);
    free(st);
}

const digcl_st_tensor *digcl_st_find(const digcl_safetensors *st, const char *name) {
    digcl_st_tensor key;
    key.name = name;
    return bsearch(&key, st->tensors, st->n_tensors, sizeof key, compare_by_name);
}

const char *digcl_st_metadata(const digcl_safetensors *st, const char *key) {
    digcl_st_metadata_entry probe = {key, NULL};
    const digcl_st_metadata_entry *found =
        bsearch(&probe, st->metadata, st->n_metadata, sizeof probe, compare_metadata);
    return found ? found->value : NULL;
}

int digcl_st_read_f32(const digcl_safetensors *st, const digcl_st_tensor *t, float *dst,
                      digcl_st_error *err) {
    int ok = 1;
    if (t->dtype == DIGCL_ST_F32) { /* fast path */
        for (uint64_t i = 0; i < t->numel; i++)
            dst[i] = f32_from_bits((uint32_t)load_le(t->data + 4 * i, 4));
        return 0;
    }
    for (uint64_t i = 0; i < t->numel && ok; i++) dst[i] = (float)element_as_double(t, i, &ok);
    if (!ok)
        return fail(err,
                    "%s: tensor '%s': cannot convert dtype %s to F32 (expected F32, F16, "
                    "BF16, F64 or an integer dtype)",
                    st->label, t->name, digcl_st_dtype_name(t->dtype));
    return 0;
}

static int read_i64_element(const digcl_st_tensor *t, uint64_t i, int64_t *value) {
    const uint8_t *p = t->data + i * (uint64_t)(dtype_table[t->dtype].bits / 8);
    int ok;
    if (t->dtype == DIGCL_ST_I64) {
        *value = (int64_t)load_le(p, 8);
        return 0;
    }
    if (t->dtype == DIGCL_ST_U64) {
        uint64_t u = load_le(p, 8);
        *value = (int64_t)u;
        return u > (uint64_t)INT64_MAX ? -1 : 0;
    }
    double d = element_as_double(t, i, &ok);
    if (!ok || !(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || floor(d) != d)
        return -1;
    *value = (int64_t)d;
    return 0;
}

int digcl_st_read_i64(const digcl_safetensors *st, const digcl_st_tensor *t, int64_t *dst,
                      digcl_st_error *err) {
    int convertible = is_integer_dtype(t->dtype) || t->dtype == DIGCL_ST_F16 ||
                      t->dtype == DIGCL_ST_BF16 || t->dtype == DIGCL_ST_F32 ||
                      t->dtype == DIGCL_ST_F64;
    if (!convertible)
        return fail(err, "%s: tensor '%s': cannot convert dtype %s to I64", st->label, t->name,
                    digcl_st_dtype_name(t->dtype));
    for (uint64_t i = 0; i < t->numel; i++)
        if (read_i64_element(t, i, &dst[i]) != 0)
            return fail(err, "%s: tensor '%s': element %llu is not an integer in int64 range",
                        st->label, t->name, (unsigned long long)i);
    return 0;
}

static int same_shape(const digcl_st_tensor *t, int rank, const int64_t *shape) {
    if (t->rank != rank) return 0;
    for (int i = 0; i < rank; i++)
        if (t->shape[i] != shape[i]) return 0;
    return 1;
}

int digcl_st_expect(const digcl_safetensors *st, const char *name, int rank, const int64_t *shape,
                    const digcl_st_tensor **out, digcl_st_error *err) {
    char want[256], got[256];
    const digcl_st_tensor *t = digcl_st_find(st, name);
    digcl_st_format_shape(want, sizeof want, rank, shape);
    if (out) *out = t;
    if (!t) return fail(err, "%s: missing tensor '%s' (expected shape %s)", st->label, name, want);
    if (!same_shape(t, rank, shape))
        return fail(err, "%s: tensor '%s' has shape %s, expected %s", st->label, name,
                    digcl_st_format_shape(got, sizeof got, t->rank, t->shape), want);
    return 0;
}

const digcl_st_tensor *digcl_st_expect_or_die(const digcl_safetensors *st, const char *name,
                                              int rank, const int64_t *shape) {
    digcl_st_error err;
    const digcl_st_tensor *t;
    if (digcl_st_expect(st, name, rank, shape, &t, &err) != 0) digcl_fatal("%s", err.message);
    return t;
}

int digcl_st_load_f32(const digcl_safetensors *st, const char *name, int rank, const int64_t *shape,
                      float *dst, digcl_st_error *err) {
    const digcl_st_tensor *t;
    if (digcl_st_expect(st, name, rank, shape, &t, err) != 0) return -1;
    return digcl_st_read_f32(st, t, dst, err);
}

void digcl_st_load_f32_or_die(const digcl_safetensors *st, const char *name, int rank,
                              const int64_t *shape, float *dst) {
    digcl_st_error err;
    if (digcl_st_load_f32(st, name, rank, shape, dst, &err) != 0) digcl_fatal("%s", err.message);
}

int digcl_st_check_no_unexpected(const digcl_safetensors *st, const char *const *names,
                                 size_t n_names, digcl_st_error *err) {
    for (size_t i = 0; i < st->n_tensors; i++) {
        const digcl_st_tensor *t = &st->tensors[i];
        size_t k = 0;
        while (k < n_names && strcmp(names[k], t->name) != 0) k++;
        if (k == n_names) {
            char shape[256];
            return fail(err, "%s: unexpected tensor '%s' %s %s (not part of this model)", st->label,
                        t->name, digcl_st_format_shape(shape, sizeof shape, t->rank, t->shape),
                        digcl_st_dtype_name(t->dtype));
        }
    }
    return 0;
}

/* ============================================================== writing */

typedef struct writer_tensor {
    char *name;
    digcl_st_dtype dtype;
    int rank;
    int64_t shape[DIGCL_ST_MAX_RANK];
    uint64_t numel;
    const void *data;
} writer_tensor;

struct digcl_st_writer {
    writer_tensor *tensors;
    size_t n_tensors, cap_tensors;
    char **meta_keys, **meta_values;
    size_t n_meta, cap_meta;
};

static char *duplicate_string(const char *s) {
    char *copy = malloc(strlen(s) + 1);
    if (copy) strcpy(copy, s);
    return copy;
}

digcl_st_writer *digcl_st_writer_new(void) { return calloc(1, sizeof(digcl_st_writer)); }

void digcl_st_writer_free(digcl_st_writer *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    for (size_t i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_values[i]);
    }
    free(w->tensors);
    free(w->meta_keys);
    free(w->meta_values);
    free(w);
}

static int grow(void **array, size_t *cap, size_t need, size_t item_size) {
    if (need <= *cap) return 0;
    size_t cap_new = *cap ? 2 * *cap : 16;
    void *p = realloc(*array, cap_new * item_size);
    if (!p) return -1;
    *array = p;
    *cap = cap_new;
    return 0;
}

static int check_new_tensor(const digcl_st_writer *w, const char *name, int rank,
                            const int64_t *shape, uint64_t *numel, digcl_st_error *err) {
    if (!name || strcmp(name, "__metadata__") == 0)
        return fail(err, "safetensors writer: invalid tensor name '%s'", name ? name : "");
    if (rank < 0 || rank > DIGCL_ST_MAX_RANK)
        return fail(err, "safetensors writer: tensor '%s': rank %d, expected 0..%d", name, rank,
                    DIGCL_ST_MAX_RANK);
    *numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0 || (shape[i] > 0 && *numel > (UINT64_MAX / 64) / (uint64_t)shape[i]))
            return fail(err, "safetensors writer: tensor '%s': bad dim %lld", name,
                        (long long)shape[i]);
        *numel *= (uint64_t)shape[i];
    }
    for (size_t i = 0; i < w->n_tensors; i++)
        if (strcmp(w->tensors[i].name, name) == 0)
            return fail(err, "safetensors writer: tensor '%s' added twice", name);
    return 0;
}

static int writer_add(digcl_st_writer *w, const char *name, digcl_st_dtype dtype, int rank,
                      const int64_t *shape, const void *data, digcl_st_error *err) {
    uint64_t numel = 0;
    if (check_new_tensor(w, name, rank, shape, &numel, err) != 0) return -1;
    if (grow((void **)&w->tensors, &w->cap_tensors, w->n_tensors + 1, sizeof *w->tensors))
        return fail(err, "safetensors writer: out of memory");
    writer_tensor *t = &w->tensors[w->n_tensors];
    memset(t, 0, sizeof *t);
    t->name = duplicate_string(name);
    if (!t->name) return fail(err, "safetensors writer: out of memory");
    t->dtype = dtype;
    t->rank = rank;
    if (rank > 0) memcpy(t->shape, shape, (size_t)rank * sizeof *shape);
    t->numel = numel;
    t->data = data;
    w->n_tensors++;
    return 0;
}

int digcl_st_writer_add_f32(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                            const float *data, digcl_st_error *err) {
    return writer_add(w, name, DIGCL_ST_F32, rank, shape, data, err);
}

int digcl_st_writer_add_f16(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                            const float *data, digcl_st_error *err) {
    return writer_add(w, name, DIGCL_ST_F16, rank, shape, data, err);
}

int digcl_st_writer_add_i64(digcl_st_writer *w, const char *name, int rank, const int64_t *shape,
                            const int64_t *data, digcl_st_error *err) {
    return writer_add(w, name, DIGCL_ST_I64, rank, shape, data, err);
}

int digcl_st_writer_set_metadata(digcl_st_writer *w, const char *key, const char *value,
                                 digcl_st_error *err) {
    for (size_t i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta_keys[i], key) != 0) continue;
        char *copy = duplicate_string(value);
        if (!copy) return fail(err, "safetensors writer: out of memory");
        free(w->meta_values[i]);
        w->meta_values[i] = copy;
        return 0;
    }
    size_t cap = w->cap_meta;
    if (grow((void **)&w->meta_keys, &cap, w->n_meta + 1, sizeof(char *)) ||
        grow((void **)&w->meta_values, &w->cap_meta, w->n_meta + 1, sizeof(char *)))
        return fail(err, "safetensors writer: out of memory");
    w->meta_keys[w->n_meta] = duplicate_string(key);
    w->meta_values[w->n_meta] = duplicate_string(value);
    if (!w->meta_keys[w->n_meta] || !w->meta_values[w->n_meta]) {
        free(w->meta_keys[w->n_meta]);
        free(w->meta_values[w->n_meta]);
        return fail(err, "safetensors writer: out of memory");
    }
    w->n_meta++;
    return 0;
}

/* Descending dtype size (alignment), then name. */
static int compare_for_layout(const void *a, const void *b) {
    const writer_tensor *x = *(const writer_tensor *const *)a;
    const writer_tensor *y = *(const writer_tensor *const *)b;
    int bx = dtype_table[x->dtype].bits, by = dtype_table[y->dtype].bits;
    if (bx != by) return bx > by ? -1 : 1;
    return strcmp(x->name, y->name);
}

static const writer_tensor **layout_order(const digcl_st_writer *w) {
    const writer_tensor **order = malloc((w->n_tensors + 1) * sizeof *order);
    if (!order) return NULL;
    for (size_t i = 0; i < w->n_tensors; i++) order[i] = &w->tensors[i];
    qsort(order, w->n_tensors, sizeof *order, compare_for_layout);
    return order;
}

static cJSON *tensor_json(const writer_tensor *t, uint64_t begin, uint64_t end) {
    cJSON *entry = cJSON_CreateObject();
    cJSON *shape = cJSON_CreateArray();
    cJSON *offsets = cJSON_CreateArray();
    if (!entry || !shape || !offsets) {
        cJSON_Delete(entry);
        cJSON_Delete(shape);
        cJSON_Delete(offsets);
        return NULL;
    }
    cJSON_AddItemToObject(entry, "dtype", cJSON_CreateString(dtype_table[t->dtype].name));
    for (int i = 0; i < t->rank; i++)
        cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)t->shape[i]));
    cJSON_AddItemToObject(entry, "shape", shape);
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)begin));
    cJSON_AddItemToArray(offsets, cJSON_CreateNumber((double)end));
    cJSON_AddItemToObject(entry, "data_offsets", offsets);
    return entry;
}

/* The header text, padded with spaces so that 8 + length is a multiple of 8. */
static char *build_header(const digcl_st_writer *w, const writer_tensor **order, size_t *length) {
    cJSON *root = cJSON_CreateObject();
    cJSON *meta = w->n_meta ? cJSON_CreateObject() : NULL;
    uint64_t offset = 0;
    for (size_t i = 0; meta && i < w->n_meta; i++)
        cJSON_AddItemToObject(meta, w->meta_keys[i], cJSON_CreateString(w->meta_values[i]));
    if (meta) cJSON_AddItemToObject(root, "__metadata__", meta);
    for (size_t i = 0; root && i < w->n_tensors; i++) {
        uint64_t bytes = order[i]->numel * (uint64_t)(dtype_table[order[i]->dtype].bits / 8);
        cJSON_AddItemToObject(root, order[i]->name, tensor_json(order[i], offset, offset + bytes));
        offset += bytes;
    }
    int complete = root && cJSON_GetArraySize(root) == (int)(w->n_tensors + (meta ? 1 : 0));
    char *json = complete ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) return NULL;
    size_t n = strlen(json), padded = (n + 7) / 8 * 8;
    char *header = malloc(padded + 1);
    if (header) {
        memcpy(header, json, n);
        memset(header + n, ' ', padded - n);
        header[padded] = '\0';
        *length = padded;
    }
    cJSON_free(json);
    return header;
}

/* Output: a FILE or a growing memory buffer. */
typedef struct sink {
    FILE *file;
    uint8_t *mem;
    size_t size, cap;
} sink;

static int sink_write(sink *s, const void *data, size_t n) {
    if (s->file) return fwrite(data, 1, n, s->file) == n ? 0 : -1;
    if (s->size + n > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->size + n) cap *= 2;
        uint8_t *p = realloc(s->mem, cap);
        if (!p) return -1;
        s->mem = p;
        s->cap = cap;
    }
    memcpy(s->mem + s->size, data, n);
    s->size += n;
    return 0;
}

/* Writes numel 4- or 8-byte values little-endian, in chunks; F16 tensors hold floats, rounded
 * here. */
static int write_tensor_data(sink *s, const writer_tensor *t) {
    uint8_t chunk[8 * 1024];
    int bytes = dtype_table[t->dtype].bits / 8;
    size_t per_chunk = sizeof chunk / (size_t)bytes;
    for (uint64_t i = 0; i < t->numel; i += per_chunk) {
        size_t n = t->numel - i < per_chunk ? (size_t)(t->numel - i) : per_chunk;
        for (size_t k = 0; k < n; k++) {
            uint64_t bits = 0;
            if (t->dtype == DIGCL_ST_F16) {
                bits = f32_to_f16(((const float *)t->data)[i + k]);
            } else if (bytes == 4) {
                uint32_t b32;
                memcpy(&b32, (const float *)t->data + i + k, 4);
                bits = b32;
            } else {
                memcpy(&bits, (const int64_t *)t->data + i + k, 8);
            }
            store_le(chunk + k * (size_t)bytes, bits, bytes);
        }
        if (sink_write(s, chunk, n * (size_t)bytes) != 0) return -1;
    }
    return 0;
}

static int write_all(const digcl_st_writer *w, sink *s, const char *label, digcl_st_error *err) {
    const writer_tensor **order = layout_order(w);
    size_t header_length = 0;
    char *header = order ? build_header(w, order, &header_length) : NULL;
    int status = 0;
    if (!header) status = fail(err, "%s: out of memory building the header", label);
    if (status == 0) {
        uint8_t prefix[8];
        store_le(prefix, header_length, 8);
        if (sink_write(s, prefix, 8) || sink_write(s, header, header_length))
            status = fail(err, "%s: write failed: %s", label, strerror(errno));
    }
    for (size_t i = 0; status == 0 && i < w->n_tensors; i++)
        if (write_tensor_data(s, order[i]) != 0)
            status = fail(err, "%s: writing tensor '%s' failed: %s", label, order[i]->name,
                          strerror(errno));
    free(header);
    free(order);
    return status;
}

int digcl_st_writer_serialize(const digcl_st_writer *w, uint8_t **bytes, size_t *size,
                              digcl_st_error *err) {
    sink s = {NULL, NULL, 0, 0};
    if (write_all(w, &s, "<memory>", err) != 0) {
        free(s.mem);
        return -1;
    }
    *bytes = s.mem;
    *size = s.size;
    return 0;
}

/* digcl_st_write_atomic on the shared atomic writer (digcl/file.h: temp file, fsync,
 * rename, directory fsync); the content's errors land in err as they are. */
typedef struct atomic_job {
    digcl_st_write_fn write;
    void *user;
    digcl_st_error *err;
} atomic_job;

static int write_atomic_content(FILE *f, const char *path, void *user, char *error, size_t size) {
    const atomic_job *job = user;
    (void)path, (void)error, (void)size; /* error is job->err->message */
    return job->write(f, job->user, job->err);
}

int digcl_st_write_atomic(const char *path, digcl_st_write_fn write, void *user,
                          digcl_st_error *err) {
    atomic_job job = {write, user, err};
    return digcl_file_write_atomic(path, write_atomic_content, &job, err->message,
                                   sizeof err->message);
}

typedef struct writer_job {
    const digcl_st_writer *w;
    const char *path;
} writer_job;

static int write_writer(void *file, void *user, digcl_st_error *err) {
    const writer_job *job = user;
    sink s = {file, NULL, 0, 0};
    return write_all(job->w, &s, job->path, err);
}

int digcl_st_writer_write(const digcl_st_writer *w, const char *path, digcl_st_error *err) {
    writer_job job = {w, path};
    return digcl_st_write_atomic(path, write_writer, &job, err);
}

void digcl_st_writer_write_or_die(const digcl_st_writer *w, const char *path) {
    digcl_st_error err;
    if (digcl_st_writer_write(w, path, &err) != 0) digcl_fatal("%s", err.message);
}
