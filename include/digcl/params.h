/* digcl/params.h: a store of named float tensors on the device. Everything
 * with named tensors uses it: a model's parameters, its EMA copy, the AdamW
 * moments, the VAE.
 *
 * A table lists (name, shape) in a fixed order. A store built from a table
 * holds one flat device buffer carved into one view per tensor, plus a
 * gradient buffer of the same layout allocated (zeroed) on first use.
 *
 * Layout: tensor i starts at element digcl_params_offset(store, i); every
 * offset is a multiple of DIGCL_PARAMS_ALIGNMENT_BYTES / 4 floats, the same on
 * every device (the largest CL_DEVICE_MEM_BASE_ADDR_ALIGN of the devices we
 * know, 4096 bits on NVIDIA); a device that needs more is refused at creation.
 * Padding between tensors is zero. So two stores of the same table (weights
 * and EMA, AdamW moments) map element for element, and flat loops (AdamW, EMA,
 * zero-grad, all-reduce) run over digcl_params_flat_count floats.
 *
 * Files: tensors are saved and loaded by name (safetensors), with an optional
 * prefix, so one file can hold several stores of one table: `name`,
 * `ema.name`, `opt.exp_avg.name`, `opt.exp_avg_sq.name`. Loading checks every
 * tensor (present, exact shape, float dtype, finite values) before uploading
 * anything, so a failed load leaves the store unchanged. Functions that read
 * files return 0, or -1 with one line in error[size]; device failures go
 * through digcl_fatal.
 */
#ifndef DIGCL_PARAMS_H
#define DIGCL_PARAMS_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/rng.h"
#include "digcl/runtime.h"
#include "digcl/safetensors.h"

#define DIGCL_PARAMS_ALIGNMENT_BYTES 512
#define DIGCL_PARAM_MAX_RANK         4
#define DIGCL_PARAM_NAME_SIZE        80

/* ---------------------------------------------------------------- tables */

typedef struct digcl_param_info {
    char name[DIGCL_PARAM_NAME_SIZE]; /* e.g. the upstream state_dict key */
    int rank;
    int64_t shape[DIGCL_PARAM_MAX_RANK];
    size_t numel;
    size_t offset; /* element offset when packed without padding */
    int trainable; /* 0: frozen (no gradient, no optimizer step) */
    int init;      /* owner-defined init rule (models: digcl_param_init) */
} digcl_param_info;

typedef struct digcl_param_table {
    size_t count;
    digcl_param_info *params; /* table order */
    size_t total;             /* all elements */
    size_t trainable;         /* elements of trainable tensors */
} digcl_param_table;

/* Appends a tensor; returns its index, or -1 when out of memory, the name is
 * too long, the rank is outside [0, DIGCL_PARAM_MAX_RANK], a dim is negative or
 * the element count overflows. */
long digcl_param_table_add(digcl_param_table *table, const char *name, int rank,
                           const int64_t *shape, int trainable, int init);
void digcl_param_table_free(digcl_param_table *table);
/* A deep copy; 0, or -1 when out of memory. */
int digcl_param_table_copy(const digcl_param_table *from, digcl_param_table *to);
const digcl_param_info *digcl_param_table_find(const digcl_param_table *table, const char *name);
/* 1 when both tables list the same names and shapes in the same order. */
int digcl_param_table_same_layout(const digcl_param_table *a, const digcl_param_table *b);

/* The flat layout of a table without a device: writes each tensor's aligned
 * element offset into offsets[count] (may be NULL) and returns the flat count
 * in floats (padding included). */
size_t digcl_param_table_layout(const digcl_param_table *table, size_t *offsets);
/* Bytes of one flat buffer of this table: digcl_param_table_layout * 4. */
size_t digcl_param_table_flat_bytes(const digcl_param_table *table);

/* ---------------------------------------------------------------- stores */

typedef struct digcl_params digcl_params;

/* Allocates the flat buffer (zeroed) for a copy of `table`; `what` names it in
 * out-of-memory messages ("model parameters", "EMA"). Fails (digcl_fatal) when
 * the device's base address alignment exceeds DIGCL_PARAMS_ALIGNMENT_BYTES. */
digcl_params *digcl_params_create(digcl_context *ctx, const digcl_param_table *table,
                                  const char *what);
void digcl_params_release(digcl_params *params);

const digcl_param_table *digcl_params_table(const digcl_params *params);
digcl_context *digcl_params_context(const digcl_params *params);
size_t digcl_params_flat_count(const digcl_params *params);
size_t digcl_params_offset(const digcl_params *params, size_t index); /* elements */

/* The flat buffer and the view (sub-buffer) of tensor `index`. */
cl_mem digcl_params_buffer(const digcl_params *params);
cl_mem digcl_params_view(const digcl_params *params, size_t index);
/* The gradient buffer and views, allocated and zeroed on first call. */
cl_mem digcl_params_grad_buffer(digcl_params *params);
cl_mem digcl_params_grad_view(digcl_params *params, size_t index);
int digcl_params_has_grads(const digcl_params *params);

/* Fills every value (padding included) with `value`; asynchronous. */
void digcl_params_fill(digcl_params *params, float value);
void digcl_params_zero_grad(digcl_params *params);
/* dst = src, element for element (tables of the same layout); asynchronous. */
void digcl_params_copy(digcl_params *dst, const digcl_params *src);

/* Host copies of tensor `index`: numel floats. Blocking. */
void digcl_params_read(const digcl_params *params, size_t index, float *host);
void digcl_params_write(digcl_params *params, size_t index, const float *host);
void digcl_params_read_grad(digcl_params *params, size_t index, float *host);

/* ---------------------------------------------------------------- initialisation */

/* Fills values[numel] of tensor `index` from `key` (draws addressed by
 * step 0, sample = index, element). */
typedef void (*digcl_params_init_fn)(void *user, digcl_rng_key key, size_t index,
                                     const digcl_param_info *info, float *values);

/* Calls init for every tensor with key {seed, DIGCL_RNG_INIT} and uploads the
 * values: a tensor's values depend only on (seed, its index, its shape). */
void digcl_params_init(digcl_params *params, uint64_t seed, digcl_params_init_fn init, void *user);

/* Building blocks for init hooks. values[numel]. */
void digcl_params_fill_normal(digcl_rng_key key, size_t index, size_t numel, double stddev,
                              float *values);
/* xavier_uniform with fan_out = shape[0], fan_in = numel / shape[0]. */
void digcl_params_fill_xavier_uniform(digcl_rng_key key, size_t index, const digcl_param_info *info,
                                      double gain, float *values);

/* ---------------------------------------------------------------- safetensors */

/* Downloads every tensor into one malloc'ed host array (*host, freed by the
 * caller after the write: the writer keeps references) and adds it to w as
 * prefix + name (prefix may be NULL or ""), F32. */
int digcl_params_add_to_writer(const digcl_params *params, const char *prefix, digcl_st_writer *w,
                               float **host, char *error, size_t size);

/* Checks that st holds every tensor as prefix + name with the exact shape, a
 * float dtype (F32, F16, BF16, F64) and finite values; uploads nothing. */
int digcl_params_check_file(const digcl_params *params, const digcl_safetensors *st,
                            const char *prefix, char *error, size_t size);
/* digcl_params_check_file, then converts and uploads every tensor. */
int digcl_params_load_from(digcl_params *params, const digcl_safetensors *st, const char *prefix,
                           char *error, size_t size);
/* 1 when `name` is prefix + the name of one of the store's tensors. */
int digcl_params_owns_name(const digcl_params *params, const char *prefix, const char *name);

/* Loading by name under the owner's spellings (the VAE: diffusers, LDM, TAESD):
 * `find` returns the file's tensor for table tensor `index` after checking its
 * shape (the owner may accept a layout of the same element count, e.g. a
 * Linear weight stored as a 1x1 conv), or NULL with one line in error[size].
 * The store then checks every tensor (float dtype, element count, finite
 * values) before uploading anything, so a failed load leaves it unchanged. */
typedef const digcl_st_tensor *(*digcl_params_find_fn)(void *user, const digcl_safetensors *st,
                                                       size_t index, const digcl_param_info *info,
                                                       char *error, size_t size);
int digcl_params_load_found(digcl_params *params, const digcl_safetensors *st,
                            digcl_params_find_fn find, void *user, char *error, size_t size);

/* One store and its tensor-name prefix in a file. */
typedef struct digcl_params_file_entry {
    digcl_params *params;
    const char *prefix; /* NULL or "": bare names */
    int trainable_only; /* 1: only the trainable tensors (AdamW moments, as torch.optim) */
} digcl_params_file_entry;

/* Writes the stores into one safetensors file, atomically, with metadata
 * (key, value) pairs metadata[2 * i], metadata[2 * i + 1] for i < n_metadata. */
int digcl_params_save_file(const char *path, const digcl_params_file_entry *entries, int count,
                           const char *const *metadata, int n_metadata, char *error, size_t size);
/* Loads the stores from one file; with strict, a tensor that belongs to no
 * entry is an error. Nothing is uploaded unless every entry checks out. */
int digcl_params_load_file(const char *path, const digcl_params_file_entry *entries, int count,
                           int strict, char *error, size_t size);
/* The same from an open file (whose metadata the caller reads too). */
int digcl_params_load_entries(const digcl_safetensors *st, const digcl_params_file_entry *entries,
                              int count, int strict, char *error, size_t size);

#endif
