/* The named-tensor store: tables, the device-independent flat layout, views,
 * gradients, seeded initialisation and safetensors files by name (API and
 * rules: include/digcl/params.h). */
#include "digcl/params.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/error.h"

/* ------------------------------------------------------------ tables */

long digcl_param_table_add(digcl_param_table *table, const char *name, int rank,
                           const int64_t *shape, int trainable, int init) {
    if (rank < 0 || rank > DIGCL_PARAM_MAX_RANK || strlen(name) >= DIGCL_PARAM_NAME_SIZE) return -1;
    size_t numel = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0) return -1;
        size_t dim = (size_t)shape[i];
        if (dim && numel > SIZE_MAX / 4 / dim) return -1; /* bytes must fit size_t */
        numel *= dim;
    }
    if ((table->count & (table->count - 1)) == 0) { /* grow at powers of two */
        size_t capacity = table->count ? 2 * table->count : 64;
        if (capacity < 64) capacity = 64;
        digcl_param_info *grown = realloc(table->params, capacity * sizeof *grown);
        if (!grown) return -1;
        table->params = grown;
    }
    digcl_param_info *p = &table->params[table->count];
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "%s", name);
    p->rank = rank;
    for (int i = 0; i < rank; i++) p->shape[i] = shape[i];
    p->numel = numel;
    p->offset = table->total;
    p->trainable = trainable;
    p->init = init;
    table->total += numel;
    if (trainable) table->trainable += numel;
    return (long)table->count++;
}

void digcl_param_table_free(digcl_param_table *table) {
    free(table->params);
    memset(table, 0, sizeof *table);
}

int digcl_param_table_copy(const digcl_param_table *from, digcl_param_table *to) {
    *to = *from;
    to->params = malloc((2 * from->count + 64) * sizeof *to->params); /* room for appends */
    if (!to->params) return -1;
    if (from->count) memcpy(to->params, from->params, from->count * sizeof *to->params);
    return 0;
}

const digcl_param_info *digcl_param_table_find(const digcl_param_table *table, const char *name) {
    for (size_t i = 0; i < table->count; i++)
        if (strcmp(table->params[i].name, name) == 0) return &table->params[i];
    return NULL;
}

int digcl_param_table_same_layout(const digcl_param_table *a, const digcl_param_table *b) {
    if (a->count != b->count) return 0;
    for (size_t i = 0; i < a->count; i++) {
        const digcl_param_info *p = &a->params[i], *q = &b->params[i];
        if (strcmp(p->name, q->name) != 0 || p->rank != q->rank) return 0;
        for (int d = 0; d < p->rank; d++)
            if (p->shape[d] != q->shape[d]) return 0;
    }
    return 1;
}

size_t digcl_param_table_layout(const digcl_param_table *table, size_t *offsets) {
    const size_t align = DIGCL_PARAMS_ALIGNMENT_BYTES / sizeof(float);
    size_t offset = 0;
    for (size_t i = 0; i < table->count; i++) {
        if (offsets) offsets[i] = offset;
        offset += (table->params[i].numel + align - 1) / align * align;
    }
    return offset;
}

size_t digcl_param_table_flat_bytes(const digcl_param_table *table) {
    return digcl_param_table_layout(table, NULL) * sizeof(float);
}

/* ------------------------------------------------------------ stores */

struct digcl_params {
    digcl_context *ctx;
    digcl_param_table table;
    size_t *offsets; /* [count] aligned element offsets */
    size_t flat_count;
    digcl_buffer values, grads;
    cl_mem *views, *grad_views;
    char what[64];
};

static cl_mem *make_views(const digcl_params *params, cl_mem flat) {
    cl_mem *views = malloc((params->table.count ? params->table.count : 1) * sizeof *views);
    if (!views) digcl_fatal("out of host memory for the views of %s", params->what);
    for (size_t i = 0; i < params->table.count; i++)
        views[i] = digcl_sub_buffer(params->ctx, flat, params->offsets[i] * sizeof(float),
                                    params->table.params[i].numel * sizeof(float));
    return views;
}

static void check_alignment(const digcl_context *ctx, const char *what) {
    const digcl_device_info *device = digcl_context_device(ctx);
    if (device->mem_base_addr_align_bytes > DIGCL_PARAMS_ALIGNMENT_BYTES)
        digcl_fatal("device %s needs %u-byte aligned sub-buffers, more than the %d bytes of the "
                    "device-independent layout of %s; this device is not supported",
                    device->name, device->mem_base_addr_align_bytes, DIGCL_PARAMS_ALIGNMENT_BYTES,
                    what);
}

digcl_params *digcl_params_create(digcl_context *ctx, const digcl_param_table *table,
                                  const char *what) {
    check_alignment(ctx, what);
    digcl_params *params = calloc(1, sizeof *params);
    if (!params || digcl_param_table_copy(table, &params->table) != 0)
        digcl_fatal("out of host memory for %s", what);
    params->ctx = ctx;
    snprintf(params->what, sizeof params->what, "%s", what);
    params->offsets = malloc((table->count ? table->count : 1) * sizeof *params->offsets);
    if (!params->offsets) digcl_fatal("out of host memory for %s", what);
    params->flat_count = digcl_param_table_layout(table, params->offsets);
    params->values = digcl_buffer_create(ctx, params->flat_count * sizeof(float), what);
    digcl_fill_f32(ctx, params->values.mem, 0, params->flat_count, 0.0f); /* padding stays zero */
    params->views = make_views(params, params->values.mem);
    return params;
}

static void release_views(cl_mem *views, size_t count) {
    for (size_t i = 0; views && i < count; i++) clReleaseMemObject(views[i]);
    free(views);
}

void digcl_params_release(digcl_params *params) {
    if (!params) return;
    release_views(params->views, params->table.count);
    release_views(params->grad_views, params->table.count);
    digcl_buffer_release(&params->values);
    digcl_buffer_release(&params->grads);
    free(params->offsets);
    digcl_param_table_free(&params->table);
    free(params);
}

const digcl_param_table *digcl_params_table(const digcl_params *params) { return &params->table; }
digcl_context *digcl_params_context(const digcl_params *params) { return params->ctx; }
size_t digcl_params_flat_count(const digcl_params *params) { return params->flat_count; }
size_t digcl_params_offset(const digcl_params *params, size_t index) {
    return params->offsets[index];
}
cl_mem digcl_params_buffer(const digcl_params *params) { return params->values.mem; }
cl_mem digcl_params_view(const digcl_params *params, size_t index) { return params->views[index]; }
int digcl_params_has_grads(const digcl_params *params) { return params->grads.mem != NULL; }

static void ensure_grads(digcl_params *params) {
    if (params->grads.mem) return;
    char what[96];
    snprintf(what, sizeof what, "gradients of %s", params->what);
    params->grads = digcl_buffer_create(params->ctx, params->flat_count * sizeof(float), what);
    digcl_fill_f32(params->ctx, params->grads.mem, 0, params->flat_count, 0.0f);
    params->grad_views = make_views(params, params->grads.mem);
}

cl_mem digcl_params_grad_buffer(digcl_params *params) {
    ensure_grads(params);
    return params->grads.mem;
}

cl_mem digcl_params_grad_view(digcl_params *params, size_t index) {
    ensure_grads(params);
    return params->grad_views[index];
}

void digcl_params_fill(digcl_params *params, float value) {
    digcl_fill_f32(params->ctx, params->values.mem, 0, params->flat_count, value);
}

void digcl_params_zero_grad(digcl_params *params) {
    ensure_grads(params);
    digcl_fill_f32(params->ctx, params->grads.mem, 0, params->flat_count, 0.0f);
}

void digcl_params_copy(digcl_params *dst, const digcl_params *src) {
    if (dst->flat_count != src->flat_count ||
        !digcl_param_table_same_layout(&dst->table, &src->table))
        digcl_fatal("digcl_params_copy: %s and %s have different tables", src->what, dst->what);
    digcl_copy(dst->ctx, src->values.mem, 0, dst->values.mem, 0, dst->flat_count * sizeof(float));
}

static size_t tensor_bytes(const digcl_params *params, size_t index) {
    return params->table.params[index].numel * sizeof(float);
}

void digcl_params_read(const digcl_params *params, size_t index, float *host) {
    digcl_read(params->ctx, params->values.mem, params->offsets[index] * sizeof(float),
               tensor_bytes(params, index), host);
}

void digcl_params_write(digcl_params *params, size_t index, const float *host) {
    digcl_write(params->ctx, params->values.mem, params->offsets[index] * sizeof(float),
                tensor_bytes(params, index), host);
}

void digcl_params_read_grad(digcl_params *params, size_t index, float *host) {
    ensure_grads(params);
    digcl_read(params->ctx, params->grads.mem, params->offsets[index] * sizeof(float),
               tensor_bytes(params, index), host);
}

/* ------------------------------------------------------------ initialisation */

static size_t largest_tensor(const digcl_param_table *table) {
    size_t largest = 1;
    for (size_t i = 0; i < table->count; i++)
        if (table->params[i].numel > largest) largest = table->params[i].numel;
    return largest;
}

void digcl_params_init(digcl_params *params, uint64_t seed, digcl_params_init_fn init, void *user) {
    digcl_rng_key key = {seed, DIGCL_RNG_INIT};
    float *values = malloc(largest_tensor(&params->table) * sizeof *values);
    if (!values) digcl_fatal("out of host memory initialising %s", params->what);
    for (size_t i = 0; i < params->table.count; i++) {
        memset(values, 0, params->table.params[i].numel * sizeof *values);
        init(user, key, i, &params->table.params[i], values);
        digcl_params_write(params, i, values);
    }
    free(values);
}

void digcl_params_fill_normal(digcl_rng_key key, size_t index, size_t numel, double stddev,
                              float *values) {
    for (size_t j = 0; j < numel; j++)
        values[j] = (float)(stddev * digcl_rng_normal_double(key, 0, index, j));
}

void digcl_params_fill_xavier_uniform(digcl_rng_key key, size_t index, const digcl_param_info *info,
                                      double gain, float *values) {
    double fan_out = info->rank ? (double)info->shape[0] : 1.0;
    double fan_in = fan_out > 0 ? (double)info->numel / fan_out : 0.0;
    double bound = gain * sqrt(6.0 / (fan_in + fan_out));
    for (size_t j = 0; j < info->numel; j++)
        values[j] = (float)((2.0 * digcl_rng_uniform_double(key, 0, index, j) - 1.0) * bound);
}

/* ------------------------------------------------------------ safetensors */

static void full_name(char *out, size_t size, const char *prefix, const char *name) {
    snprintf(out, size, "%s%s", prefix ? prefix : "", name);
}

/* 1 when tensor p goes into / comes from the file for this selection. */
static int selected(const digcl_param_info *p, int trainable_only) {
    return !trainable_only || p->trainable;
}

static int add_selected(const digcl_params *params, const char *prefix, int trainable_only,
                        digcl_st_writer *w, float **host, char *error, size_t size) {
    const digcl_param_table *table = &params->table;
    *host = malloc((table->total ? table->total : 1) * sizeof **host);
    if (!*host)
        return digcl_format_error(error, size, "out of host memory (%.1f MiB of %s)",
                                  (double)table->total * sizeof(float) / 1048576.0, params->what);
    digcl_st_error err;
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        if (!selected(p, trainable_only)) continue;
        char name[DIGCL_PARAM_NAME_SIZE + 64];
        full_name(name, sizeof name, prefix, p->name);
        digcl_params_read(params, i, *host + p->offset);
        if (digcl_st_writer_add_f32(w, name, p->rank, p->shape, *host + p->offset, &err) != 0)
            return digcl_format_error(error, size, "%s", err.message);
    }
    return 0;
}

int digcl_params_add_to_writer(const digcl_params *params, const char *prefix, digcl_st_writer *w,
                               float **host, char *error, size_t size) {
    return add_selected(params, prefix, 0, w, host, error, size);
}

static int loadable_dtype(digcl_st_dtype d) {
    return d == DIGCL_ST_F32 || d == DIGCL_ST_F16 || d == DIGCL_ST_BF16 || d == DIGCL_ST_F64;
}

static size_t count_non_finite(const float *x, size_t n) {
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) bad += !isfinite(x[i]);
    return bad;
}

/* Dtype, element count and finite values of the file's tensor t for table
 * tensor p, converted into host[numel]. */
static int check_found(const digcl_safetensors *st, const digcl_param_info *p,
                       const digcl_st_tensor *t, float *host, char *error, size_t size) {
    digcl_st_error err;
    if (!loadable_dtype(t->dtype))
        return digcl_format_error(error, size,
                                  "%s: tensor '%s' has dtype %s, expected F32, F16, BF16 or F64",
                                  st->label, t->name, digcl_st_dtype_name(t->dtype));
    if (t->numel != p->numel)
        return digcl_format_error(error, size, "%s: tensor '%s' has %zu elements, expected %zu",
                                  st->label, t->name, (size_t)t->numel, p->numel);
    if (digcl_st_read_f32(st, t, host, &err) != 0)
        return digcl_format_error(error, size, "%s", err.message);
    size_t bad = count_non_finite(host, p->numel);
    if (bad)
        return digcl_format_error(
            error, size, "%s: tensor '%s' holds %zu non-finite value%s (NaN or Inf) of %zu",
            st->label, t->name, bad, bad == 1 ? "" : "s", p->numel);
    return 0;
}

/* Shape, dtype and finite values of tensor `name`, converted into host[numel]. */
static int check_tensor(const digcl_safetensors *st, const digcl_param_info *p, const char *name,
                        float *host, char *error, size_t size) {
    digcl_st_error err;
    const digcl_st_tensor *t = NULL;
    if (digcl_st_expect(st, name, p->rank, p->shape, &t, &err) != 0)
        return digcl_format_error(error, size, "%s", err.message);
    return check_found(st, p, t, host, error, size);
}

int digcl_params_load_found(digcl_params *params, const digcl_safetensors *st,
                            digcl_params_find_fn find, void *user, char *error, size_t size) {
    const digcl_param_table *table = &params->table;
    const digcl_st_tensor **found = calloc(table->count + 1, sizeof *found);
    float *host = malloc(largest_tensor(table) * sizeof *host);
    int status =
        found && host ? 0 : digcl_format_error(error, size, "%s: out of host memory", st->label);
    for (size_t i = 0; i < table->count && status == 0; i++) {
        found[i] = find(user, st, i, &table->params[i], error, size);
        status = found[i] ? check_found(st, &table->params[i], found[i], host, error, size) : -1;
    }
    for (size_t i = 0; i < table->count && status == 0; i++) {
        status = check_found(st, &table->params[i], found[i], host, error, size);
        if (status == 0) digcl_params_write(params, i, host);
    }
    free(found);
    free(host);
    return status;
}

/* Every selected tensor checked (upload = 0) or checked and uploaded (upload = 1). */
static int visit_tensors(digcl_params *params, const digcl_safetensors *st, const char *prefix,
                         int trainable_only, int upload, char *error, size_t size) {
    const digcl_param_table *table = &params->table;
    float *host = malloc(largest_tensor(table) * sizeof *host);
    if (!host) return digcl_format_error(error, size, "%s: out of host memory", st->label);
    int status = 0;
    for (size_t i = 0; i < table->count && status == 0; i++) {
        if (!selected(&table->params[i], trainable_only)) continue;
        char name[DIGCL_PARAM_NAME_SIZE + 64];
        full_name(name, sizeof name, prefix, table->params[i].name);
        status = check_tensor(st, &table->params[i], name, host, error, size);
        if (status == 0 && upload) digcl_params_write(params, i, host);
    }
    free(host);
    return status;
}

int digcl_params_check_file(const digcl_params *params, const digcl_safetensors *st,
                            const char *prefix, char *error, size_t size) {
    return visit_tensors((digcl_params *)params, st, prefix, 0, 0, error, size);
}

int digcl_params_load_from(digcl_params *params, const digcl_safetensors *st, const char *prefix,
                           char *error, size_t size) {
    if (digcl_params_check_file(params, st, prefix, error, size) != 0) return -1;
    return visit_tensors(params, st, prefix, 0, 1, error, size);
}

static const digcl_param_info *find_prefixed(const digcl_params *params, const char *prefix,
                                             const char *name) {
    size_t length = prefix ? strlen(prefix) : 0;
    if (length && strncmp(name, prefix, length) != 0) return NULL;
    return digcl_param_table_find(&params->table, name + length);
}

int digcl_params_owns_name(const digcl_params *params, const char *prefix, const char *name) {
    return find_prefixed(params, prefix, name) != NULL;
}

static int entry_owns(const digcl_params_file_entry *entry, const char *name) {
    const digcl_param_info *p = find_prefixed(entry->params, entry->prefix, name);
    return p && selected(p, entry->trainable_only);
}

int digcl_params_save_file(const char *path, const digcl_params_file_entry *entries, int count,
                           const char *const *metadata, int n_metadata, char *error, size_t size) {
    digcl_st_writer *w = digcl_st_writer_new();
    float **hosts = calloc((size_t)(count > 0 ? count : 1), sizeof *hosts);
    digcl_st_error err;
    int status = !w || !hosts ? digcl_format_error(error, size, "%s: out of host memory", path) : 0;
    for (int e = 0; e < count && status == 0; e++)
        status = add_selected(entries[e].params, entries[e].prefix, entries[e].trainable_only, w,
                              &hosts[e], error, size);
    for (int m = 0; m < n_metadata && status == 0; m++)
        if (digcl_st_writer_set_metadata(w, metadata[2 * m], metadata[2 * m + 1], &err) != 0)
            status = digcl_format_error(error, size, "%s: %s", path, err.message);
    if (status == 0 && digcl_st_writer_write(w, path, &err) != 0)
        status = digcl_format_error(error, size, "%s", err.message);
    for (int e = 0; hosts && e < count; e++) free(hosts[e]);
    free(hosts);
    digcl_st_writer_free(w);
    return status;
}

static int check_no_strangers(const digcl_safetensors *st, const digcl_params_file_entry *entries,
                              int count, char *error, size_t size) {
    for (size_t i = 0; i < st->n_tensors; i++) {
        const digcl_st_tensor *t = &st->tensors[i];
        int owned = 0;
        for (int e = 0; e < count && !owned; e++) owned = entry_owns(&entries[e], t->name);
        if (owned) continue;
        char shape[128];
        return digcl_format_error(error, size, "%s: unexpected tensor '%s' %s %s", st->label,
                                  t->name,
                                  digcl_st_format_shape(shape, sizeof shape, t->rank, t->shape),
                                  digcl_st_dtype_name(t->dtype));
    }
    return 0;
}

int digcl_params_load_entries(const digcl_safetensors *st, const digcl_params_file_entry *entries,
                              int count, int strict, char *error, size_t size) {
    int status = strict ? check_no_strangers(st, entries, count, error, size) : 0;
    for (int e = 0; e < count && status == 0; e++)
        status = visit_tensors(entries[e].params, st, entries[e].prefix, entries[e].trainable_only,
                               0, error, size);
    for (int e = 0; e < count && status == 0; e++)
        status = visit_tensors(entries[e].params, st, entries[e].prefix, entries[e].trainable_only,
                               1, error, size);
    return status;
}

int digcl_params_load_file(const char *path, const digcl_params_file_entry *entries, int count,
                           int strict, char *error, size_t size) {
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open(path, &st, &err) != 0)
        return digcl_format_error(error, size, "%s", err.message);
    int status = digcl_params_load_entries(st, entries, count, strict, error, size);
    digcl_st_close(st);
    return status;
}
