/* digcl/vae.h: the Stable Diffusion VAE (AutoencoderKL, "KL-f8": sd-vae-ft-ema/-mse, the
 * first stage of SD 1.x) and TAESD (the tiny autoencoder) in OpenCL, forward only.
 * Architecture, names and tiling: docs/VAE.md.
 *
 * Images are NCHW RGB in [-1, 1] for both networks (TAESD's [0, 1] is mapped inside).
 * Latents are 8x smaller, 4 channels. The diffusion model works on scaled latents
 * x = DIGCL_VAE_SD_SCALE * z (upstream: vae.encode(x).latent_dist.sample().mul_(0.18215),
 * vae.decode(samples / 0.18215)); encode returns the raw posterior of z, decode takes
 * x and the scale. TAESD's latents are the same unscaled z.
 *
 * Host in, host out: each call uploads, runs tile by tile when the whole image would not fit
 * the memory budget (or tiles are asked for), blends overlapping tiles with linear ramps and
 * downloads. Errors in user files come back as -1 with one line in error[]; device failures
 * go through digcl_fatal.
 */
#ifndef DIGCL_VAE_H
#define DIGCL_VAE_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/rng.h"
#include "digcl/runtime.h"

#define DIGCL_VAE_SD_SCALE   0.18215f /* Stable Diffusion's latent scale factor */
#define DIGCL_VAE_LOGVAR_MIN -30.0f
#define DIGCL_VAE_LOGVAR_MAX 20.0f

typedef enum digcl_vae_kind {
    DIGCL_VAE_KL = 1,   /* AutoencoderKL (diffusers) / first_stage_model (LDM) */
    DIGCL_VAE_TAESD = 2 /* AutoencoderTiny (diffusers) / taesd_{encoder,decoder} */
} digcl_vae_kind;

enum { DIGCL_VAE_ENCODER = 1, DIGCL_VAE_DECODER = 2 }; /* parts, a bitmask */

#define DIGCL_VAE_LEVELS 4

typedef struct digcl_vae_config {
    digcl_vae_kind kind;
    int channels[DIGCL_VAE_LEVELS]; /* KL: block_out_channels; TAESD: channels[0] = width */
    int encoder_blocks;             /* KL: ResNet blocks per encoder level (2) */
    int decoder_blocks;             /* KL: per decoder level (3) */
    int groups;                     /* KL: GroupNorm groups (32) */
    float eps;                      /* KL: GroupNorm eps (1e-6) */
    int latent_channels;            /* 4 */
} digcl_vae_config;

/* The published networks: KL-f8 (128, 256, 512, 512) and TAESD (64). */
digcl_vae_config digcl_vae_config_sd(void);
digcl_vae_config digcl_vae_config_taesd(void);

/* Parameters of one part (encoder with quant_conv, decoder with post_quant_conv). */
int64_t digcl_vae_parameter_count(const digcl_vae_config *config, int part);

/* Tensor `index` of the parts' table (canonical diffusers name, shape): 0, or -1 past the end. */
int digcl_vae_tensor_info(const digcl_vae_config *config, int parts, int index, char *name,
                          size_t name_size, int *rank, int64_t shape[4]);

typedef struct digcl_vae_load_options {
    int parts;                      /* DIGCL_VAE_ENCODER | DECODER; 0: every part in the file */
    const digcl_vae_config *config; /* NULL: the published network of the file's kind (a KL
                                        file's metadata "channels", "groups", "eps",
                                        "encoder_blocks", "decoder_blocks" override it;
                                        TAESD's width comes from its first conv) */
    digcl_vae_kind kind;            /* 0: detect from the names */
} digcl_vae_load_options;

typedef struct digcl_vae digcl_vae;

/* Loads diffusers (both attention spellings), LDM (with or without "first_stage_model.")
 * or TAESD names, F32/F16/BF16. NULL and a message naming the file and tensor on failure. */
digcl_vae *digcl_vae_load(digcl_context *ctx, const char *path,
                          const digcl_vae_load_options *options, char *error, size_t error_size);
/* A network with seeded random weights (benchmarks, tests): convs ~ U(-a, a), a = (3 / fan_in)^1/2,
 * norms' gamma 1 and beta 0, biases 0.01-scale. */
digcl_vae *digcl_vae_create_random(digcl_context *ctx, const digcl_vae_config *config, int parts,
                                   uint64_t seed);
void digcl_vae_free(digcl_vae *vae);

const digcl_vae_config *digcl_vae_get_config(const digcl_vae *vae);
int digcl_vae_parts(const digcl_vae *vae);
/* "sd-vae-kl-f8" or "taesd" (or the file's __metadata__ "name"), for latents metadata. */
const char *digcl_vae_name(const digcl_vae *vae);

typedef struct digcl_vae_tiling {
    int tile_size;     /* image pixels per tile side, a multiple of 8; 0: automatic */
    int tile_overlap;  /* image pixels shared by neighbouring tiles; < 0: tile_size / 4 */
    size_t max_memory; /* bytes of device memory for activations; 0: 80% of what is free */
} digcl_vae_tiling;

/* The tile the calls below would use for an image of H x W pixels: tile side in pixels
 * (H or W or more when untiled) and the bytes of device memory one tile needs. */
typedef struct digcl_vae_tile_plan {
    int tiled;                            /* 0: one pass over the whole image */
    int tile_height, tile_width, overlap; /* image pixels */
    size_t bytes;                         /* device memory of one pass */
    /* 1: the KL encoder or decoder runs layer by layer in row strips of the whole width
     * instead of overlapping tiles, each GroupNorm with the whole image's statistics: the
     * result equals the untiled pass (docs/VAE.md "Tiling"); tile_height/width give its
     * device budget, overlap is 0, and host_bytes of host memory hold three whole
     * activations. Chosen for the KL VAE whenever it tiles and those fit in 80 % of the
     * available host memory; TAESD (local, exact in overlapping tiles) never streams. */
    int streamed;
    size_t host_bytes;
    /* Untiled: the images one pass takes at once (about a megapixel's worth, as many as the
     * memory budget holds, found by halving; `bytes` stays the one-image pass). Tiled: 1. */
    int images;
} digcl_vae_tile_plan;
digcl_vae_tile_plan digcl_vae_plan_tiles(const digcl_vae *vae, int part, int H, int W,
                                         const digcl_vae_tiling *tiling);

/* images [N, 3, H, W] in [-1, 1] (H, W multiples of 8) -> the posterior of z:
 * mean [N, 4, H/8, W/8] and logvar (clamped to [-30, 20]; may be NULL). TAESD has no
 * posterior: mean is its latent, logvar is -30. tiling may be NULL (automatic). */
void digcl_vae_encode(digcl_vae *vae, const digcl_vae_tiling *tiling, int N, int H, int W,
                      const float *images, float *mean, float *logvar);

/* Training on images (upstream's vae.encode(x).latent_dist.sample().mul_(0.18215)): images
 * [N, 3, H, W] -> latents [N, 4, H/8, W/8] = scale (mean + std eps) with the posterior of
 * digcl_vae_encode and eps[n, j] = digcl_rng_normal(key, step, first_sample + n, j) drawn and
 * combined on the device (cl/vae.cl posterior_sample). Buffers are kept for the next call of
 * the same or a smaller N. */
void digcl_vae_encode_sample(digcl_vae *vae, const digcl_vae_tiling *tiling, int N, int H, int W,
                             const float *images, digcl_rng_key key, uint64_t step,
                             uint64_t first_sample, float scale, float *latents);

/* latents [N, 4, h, w] (x = scale z; pass 1 for raw z) -> images [N, 3, 8h, 8w], about
 * [-1, 1], not clamped. */
void digcl_vae_decode(digcl_vae *vae, const digcl_vae_tiling *tiling, int N, int h, int w,
                      const float *latents, float latent_scale, float *images);

#endif
