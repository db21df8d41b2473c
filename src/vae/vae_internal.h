/* vae_internal.h: what the VAE files share: the parameter table (vae_params.c), the per-tile
 * plan and the networks (vae_kl.c, vae_taesd.c). */
#ifndef DIGCL_VAE_INTERNAL_H
#define DIGCL_VAE_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/params.h"
#include "digcl/runtime.h"
#include "digcl/vae.h"

#define VAE_NAME_MAX 96

/* The VAE's tensors are a parameter store (digcl/params.h) of a table built from the
 * architecture: canonical (diffusers) names and shapes, every tensor frozen, and `init` holding
 * the part (DIGCL_VAE_ENCODER or DIGCL_VAE_DECODER) it belongs to. */

/* The tensors of `parts` of a network, in a fixed order (checked against
 * tests/reference/{vae_kl_f8,taesd}_names.txt); free with digcl_param_table_free. */
int digcl_vae_table_build(digcl_param_table *table, const digcl_vae_config *config, int parts);

/* The other spellings of a canonical name (LDM with and without first_stage_model.,
 * diffusers' old attention names, TAESD's original numbering), the canonical first.
 * Returns how many were written (at most max). */
int digcl_vae_name_spellings(const digcl_vae_config *config, const char *canonical,
                             char spellings[][VAE_NAME_MAX], int max);

/* Which parts of `kind` the file holds (by its first tensors under any spelling). */
struct digcl_safetensors;
int digcl_vae_parts_in_file(const struct digcl_safetensors *st, const digcl_vae_config *config);
digcl_vae_kind digcl_vae_kind_of_file(const struct digcl_safetensors *st);

/* Uploads every tensor of the store (a table of digcl_vae_table_build) from the file under any
 * spelling. -1 and a message on a missing tensor or a wrong shape; the store is unchanged. */
int digcl_vae_params_load(digcl_params *params, const struct digcl_safetensors *st,
                          const digcl_vae_config *config, char *error, size_t error_size);

/* Device buffers of one pass over up to `capacity` tiles (or whole images) of H x W image
 * pixels (h x w latents) at once; a pass runs the first N of them (input and output
 * [N, C, H, W]). */
typedef struct vae_plan {
    int part, H, W;
    int capacity, N;     /* images the buffers hold; images of the current pass */
    size_t act_floats;   /* each of act[0..2] */
    size_t col_floats;   /* im2col scratch (one image; 0 where convolutions need none) */
    size_t norm_floats;  /* GroupNorm scratch */
    size_t score_floats; /* attention scores */
    digcl_buffer act[3], col, norm, scores, input, output;
} vae_plan;

/* Floats of the mid-block attention's score buffer for T positions: T x T, capped at 64 MiB
 * per query block (digcl_spatial_attention_forward takes blocks of rows). */
size_t digcl_vae_score_floats(size_t T);
/* A device buffer of `floats` floats (at least one). */
digcl_buffer digcl_vae_buffer(digcl_context *ctx, size_t floats, const char *what);

/* Sizes of a plan for `capacity` images (no allocation); bytes of device memory it needs.
 * implicit_conv: the context's convolutions need no im2col scratch (digcl_conv2d_implicit). */
size_t digcl_vae_plan_size(vae_plan *plan, const digcl_vae_config *config, int part, int capacity,
                           int H, int W, int implicit_conv);
void digcl_vae_plan_allocate(digcl_context *ctx, vae_plan *plan);
void digcl_vae_plan_release(vae_plan *plan);

/* The networks over plan->N tiles, input in plan->input, result in plan->output:
 * encoder: images [N, 3, H, W] in [-1, 1] -> moments [N, 2 L, H/8, W/8] (quant_conv output);
 * decoder: raw latents [N, L, h, w] -> images [N, 3, 8h, 8w] in about [-1, 1]. */
typedef struct vae_weights {
    const digcl_params *params;
    cl_mem mem; /* digcl_params_buffer(params) */
} vae_weights;

void digcl_vae_kl_encode(digcl_context *ctx, const digcl_vae_config *config, const vae_weights *w,
                         vae_plan *plan);
void digcl_vae_kl_decode(digcl_context *ctx, const digcl_vae_config *config, const vae_weights *w,
                         vae_plan *plan);
void digcl_vae_taesd_encode(digcl_context *ctx, const digcl_vae_config *config,
                            const vae_weights *w, vae_plan *plan);
void digcl_vae_taesd_decode(digcl_context *ctx, const digcl_vae_config *config,
                            const vae_weights *w, vae_plan *plan);

/* y (+)= conv(x) for the conv `name` (name.weight [O, C, K, K], name.bias when has_bias) on the
 * plan's N images; pad = (top, left, bottom, right). Column scratch from the plan. */
void digcl_vae_conv(digcl_context *ctx, const vae_weights *w, vae_plan *plan, const char *name,
                    cl_mem x, size_t x_offset, int C, int H, int W, int O, int K, int stride,
                    const int pad[4], int has_bias, cl_mem y, size_t y_offset, int accumulate);
/* The same on one image with an explicit column scratch of col_floats floats. */
void digcl_vae_conv_scratch(digcl_context *ctx, const vae_weights *w, cl_mem col, size_t col_floats,
                            const char *name, cl_mem x, size_t x_offset, int C, int H, int W, int O,
                            int K, int stride, const int pad[4], int has_bias, cl_mem y,
                            size_t y_offset, int accumulate);

/* The KL encoder and decoder streamed in row strips (vae_kl_stream.c, docs/VAE.md "Tiling"):
 * every tensor whole in host memory (three rotating slots), each layer over strips of full
 * width on the device, GroupNorm with the whole tensor's statistics: equal to the whole-image
 * pass. */
typedef struct vae_stream_plan {
    int part, h, w;        /* DIGCL_VAE_ENCODER or _DECODER; the latent it was planned for */
    size_t strip_floats;   /* each of in, norm, out, res: a strip of any layer, and the latent */
    size_t norm_floats;    /* GroupNorm scratch */
    size_t score_floats;   /* attention scores */
    size_t latent_floats;  /* one top-level tensor of the latent: [C_top, h, w] */
    size_t host_floats[3]; /* each of the three host tensors (the largest it holds) */
    digcl_buffer in, norm, out, res, col, qkv, gn, scores;
    float *host[3], *staging; /* staging: [strip_floats] */
} vae_stream_plan;

/* Sizes for a latent of h x w with strips of about strip_floats floats (raised to what the
 * widest layer and the latent need), from a dry run of the network; returns the device
 * bytes. No allocation. */
size_t digcl_vae_stream_plan_size(vae_stream_plan *plan, const digcl_vae_config *config, int part,
                                  int h, int w, size_t strip_floats);
/* Host bytes of a plan: the three tensors and the staging strip. */
size_t digcl_vae_stream_host_bytes(const vae_stream_plan *plan);
void digcl_vae_stream_plan_allocate(digcl_context *ctx, vae_stream_plan *plan);
void digcl_vae_stream_plan_release(vae_stream_plan *plan);
/* image [3, 8h, 8w] in [-1, 1] -> moments [2 L, h, w] (quant_conv's output). */
void digcl_vae_kl_encode_streamed(digcl_context *ctx, const digcl_vae_config *config,
                                  const vae_weights *w, vae_stream_plan *plan, const float *image,
                                  float *moments);
/* z: the raw latent [L, h, w] (already divided by the scale); image: [3, 8h, 8w]. */
void digcl_vae_kl_decode_streamed(digcl_context *ctx, const digcl_vae_config *config,
                                  const vae_weights *w, vae_stream_plan *plan, const float *z,
                                  float *image);

/* snprintf into a name buffer of VAE_NAME_MAX; fatal on truncation. */
void digcl_vae_format_name(char *out, const char *format, ...) DIGCL_PRINTF(2, 3);

/* Offset (floats) of a tensor that must exist; fatal otherwise (a programming error). */
size_t digcl_vae_offset(const vae_weights *w, const char *format, ...) DIGCL_PRINTF(2, 3);

#endif
