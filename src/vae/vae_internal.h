/* vae_internal.h: what the VAE files share: the parameter table (vae_params.c), the per-tile
 * plan and the networks (vae_kl.c, vae_taesd.c). */
#ifndef DIGCL_VAE_INTERNAL_H
#define DIGCL_VAE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/runtime.h"
#include "digcl/vae.h"

#define VAE_NAME_MAX 96

/* One tensor of the table: its canonical (diffusers) name, shape and place in the flat
 * parameter buffer. */
typedef struct vae_tensor {
    char name[VAE_NAME_MAX];
    int part;              /* DIGCL_VAE_ENCODER or DIGCL_VAE_DECODER */
    int rank;
    int64_t shape[4];
    size_t numel;
    size_t offset;         /* floats into the flat buffer */
} vae_tensor;

typedef struct vae_table {
    vae_tensor *tensors;
    int count, capacity;
    size_t total_floats;
} vae_table;

/* The tensors of `parts` of a network, in a fixed order (checked against
 * tests/reference/{vae_kl_f8,taesd}_names.txt). */
int vae_table_build(vae_table *table, const digcl_vae_config *config, int parts);
void vae_table_free(vae_table *table);
const vae_tensor *vae_table_find(const vae_table *table, const char *name);

/* The other spellings of a canonical name (LDM with and without first_stage_model.,
 * diffusers' old attention names, TAESD's original numbering), the canonical first.
 * Returns how many were written (at most max). */
int vae_name_spellings(const digcl_vae_config *config, const char *canonical,
                       char spellings[][VAE_NAME_MAX], int max);

/* Which parts of `kind` the file holds (by its first tensors under any spelling). */
struct digcl_safetensors;
int vae_parts_in_file(const struct digcl_safetensors *st, const digcl_vae_config *config);
digcl_vae_kind vae_kind_of_file(const struct digcl_safetensors *st);

/* Fills host[table->total_floats] from the file. -1 and a message on a missing tensor or a
 * wrong shape. */
int vae_table_load(const vae_table *table, const struct digcl_safetensors *st,
                   const digcl_vae_config *config, float *host, char *error, size_t error_size);

/* Device buffers of one pass over a tile of H x W image pixels (h x w latents). */
typedef struct vae_plan {
    int part, H, W;
    size_t act_floats;      /* each of act[0..2] */
    size_t col_floats;      /* im2col scratch */
    size_t norm_floats;     /* GroupNorm scratch */
    size_t score_floats;    /* attention scores */
    digcl_buffer act[3], col, norm, scores, input, output;
} vae_plan;

/* Sizes of a plan (no allocation); bytes of device memory it needs. */
size_t vae_plan_size(vae_plan *plan, const digcl_vae_config *config, int part, int H, int W);
void vae_plan_allocate(digcl_context *ctx, vae_plan *plan);
void vae_plan_release(vae_plan *plan);

/* The networks over one tile, input in plan->input, result in plan->output:
 * encoder: image [3, H, W] in [-1, 1] -> moments [2 L, H/8, W/8] (quant_conv output);
 * decoder: raw latent [L, h, w] -> image [3, 8h, 8w] in about [-1, 1]. */
typedef struct vae_weights {
    const vae_table *table;
    cl_mem mem;
} vae_weights;

void vae_kl_encode(digcl_context *ctx, const digcl_vae_config *config, const vae_weights *w,
                   vae_plan *plan);
void vae_kl_decode(digcl_context *ctx, const digcl_vae_config *config, const vae_weights *w,
                   vae_plan *plan);
void vae_taesd_encode(digcl_context *ctx, const digcl_vae_config *config, const vae_weights *w,
                      vae_plan *plan);
void vae_taesd_decode(digcl_context *ctx, const digcl_vae_config *config, const vae_weights *w,
                      vae_plan *plan);

/* y (+)= conv(x) for the conv `name` (name.weight [O, C, K, K], name.bias when has_bias) on one
 * image; pad = (top, left, bottom, right). Column scratch from the plan. */
void vae_conv(digcl_context *ctx, const vae_weights *w, vae_plan *plan, const char *name,
              cl_mem x, size_t x_offset, int C, int H, int W, int O, int K, int stride,
              const int pad[4], int has_bias, cl_mem y, size_t y_offset, int accumulate);

/* snprintf into a name buffer of VAE_NAME_MAX; fatal on truncation. */
void vae_name(char *out, const char *format, ...) DIGCL_PRINTF(2, 3);

/* Offset (floats) of a tensor that must exist; fatal otherwise (a programming error). */
size_t vae_offset(const vae_weights *w, const char *format, ...) DIGCL_PRINTF(2, 3);

#endif
