/* digcl/model_config.h: DiG / DiT model configurations, presets, the
 * "dig.config" JSON stored in safetensors __metadata__, and the parameter
 * table (upstream state_dict names, shapes, trainable flag, init rule).
 *
 * Spec: docs/MODEL.md §1-§3. Names and shapes equal upstream's
 * state_dict (tests/reference/dig_s2_state_dict.txt, dit_s2_state_dict.txt);
 * counts equal tests/reference/param_counts.txt.
 *
 * Dimension legend: D hidden_size, H num_heads, p patch_size, C in_channels,
 * E = input_size / p (token grid side), T = E*E tokens, F mlp_hidden,
 * Dk = D/2 (DiG key dim), Dv = D (DiG value dim), K = num_classes.
 */
#ifndef DIGCL_MODEL_CONFIG_H
#define DIGCL_MODEL_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/params.h"

#define DIGCL_CONFIG_METADATA_KEY "dig.config"
#define DIGCL_GLA_GATE_LOW_RANK   16 /* gk_proj: D -> 16 -> Dk */

/* DIGCL_ARCH_UDIG: the U-shape DiG of docs/MODEL.md "U-DiG", this project's own
 * definition: five stages of DiG blocks on three grids. */
typedef enum digcl_arch { DIGCL_ARCH_DIG, DIGCL_ARCH_DIT, DIGCL_ARCH_UDIG } digcl_arch;

/* How DiT blocks compute softmax attention. A runtime choice, not part of the
 * architecture: the weights and the function are the same, dig.config does
 * not record it, and a checkpoint trained in one mode loads in the other.
 * docs/MODEL.md "DiT attention modes". */
typedef enum digcl_attention_mode {
    DIGCL_ATTENTION_TILED = 0, /* O(T)-memory online softmax (digcl/attention.h), the default */
    DIGCL_ATTENTION_NAIVE = 1  /* [N, H, T, T] probabilities materialised, kept per block for
                                * backward, as timm's Attention without fused attention */
} digcl_attention_mode;

/* "tiled" / "naive" ("?" for other values). */
const char *digcl_attention_mode_name(digcl_attention_mode mode);
/* 0 and *mode for "tiled" or "naive"; -1 otherwise. */
int digcl_attention_mode_parse(const char *name, digcl_attention_mode *mode);

/* What a training forward keeps for the backward. A runtime choice like the attention
 * mode (dig.config does not record it; gradients are the same bit for bit): RECOMPUTE
 * keeps the inputs of the expensive ops and has the backward recompute the elementwise
 * ones (modulated norms, gated residual streams, the gated RMSNorm and forget gate of
 * DiG, the SwiGLU / GELU output) into shared scratch; KEEP gives each block its own
 * copies instead, about 100 MB more per DiG-S block at batch 32 for about 1 ms less per
 * training step (docs/MODEL.md "Activation memory"). */
typedef enum digcl_activation_mode {
    DIGCL_ACTIVATIONS_RECOMPUTE = 0, /* the default */
    DIGCL_ACTIVATIONS_KEEP = 1
} digcl_activation_mode;

/* "recompute" / "keep" ("?" for other values). */
const char *digcl_activation_mode_name(digcl_activation_mode mode);
/* 0 and *mode for "recompute" or "keep"; -1 otherwise. */
int digcl_activation_mode_parse(const char *name, digcl_activation_mode *mode);

typedef struct digcl_config_error {
    char message[512];
} digcl_config_error;

typedef struct digcl_model_config {
    /* ---- set by the user (or a preset, or dig.config JSON) ---- */
    digcl_arch arch;
    int depth;          /* number of blocks */
    int hidden_size;    /* D */
    int num_heads;      /* H */
    int patch_size;     /* p */
    int input_size;     /* latent side; E = input_size / p */
    int in_channels;    /* C */
    int num_classes;    /* K; the label table has K + 1 rows (row K = null class) */
    int learn_sigma;    /* 1: out_channels = 2C (eps + variance) */
    int skip;           /* DiG only: long skips (skip_linear in blocks i > depth/2) */
    int skip_zero_init; /* DiG "-skipzero": skip_linear starts as [I | 0] */
    /* ---- runtime options (not architecture: never in dig.config JSON) ---- */
    digcl_attention_mode attention;    /* DiT only; DiG and U-DiG need TILED (= 0) */
    digcl_activation_mode activations; /* training: recomputed (0) or kept per block */
    /* ---- derived by digcl_model_config_finish ---- */
    int qk_dim;       /* DiG: Dk = D/2; DiT: D */
    int v_dim;        /* D */
    int head_qk_dim;  /* qk_dim / H (32 for every DiG preset) */
    int head_v_dim;   /* v_dim / H (64 for every DiG preset) */
    int mlp_hidden;   /* F: DiG SwiGLU 256*ceil(int(8D/3)/256); DiT GELU 4D */
    int out_channels; /* learn_sigma ? 2C : C */
    int grid;         /* E */
    int tokens;       /* T = E*E */
    int n_skip;       /* number of blocks with skip_linear */
} digcl_model_config;

/* Validates the user fields and fills the derived ones. Fails for
 * non-positive sizes, D not divisible by H (DiG: D/2 too), input_size not a
 * multiple of p, num_classes < 1, skip on DiT; for udig also depth not a
 * multiple of 5, patch_size other than 1, input_size not a multiple of 4, skip. */
int digcl_model_config_finish(digcl_model_config *cfg, digcl_config_error *err);

/* Presets: "U-DiG-S", "U-DiG-B", "U-DiG-L", "U-DiG-XL" (depth 15 15 25 30, patch 1,
 * the plain model's width and heads), "DiG-S/2", "DiG-B/4", "DiG-XL/8", "DiG-L/2-skip", "DiG-S/2-skipzero",
 * "DiT-S/2" ... (sizes S B L XL, patches 2 4 8), plus upstream's constructor
 * names ("DiG-S/2-bid-layer-dwconv-qdir", "DiG-XL/2-bid-layer-dwconv-qdir-head18",
 * with -skip / -skipzero). input_size 32, in_channels 4, num_classes 1000,
 * learn_sigma on. The result is finished. */
int digcl_model_config_preset(const char *name, digcl_model_config *cfg, digcl_config_error *err);
/* The canonical preset names, NULL-terminated (for --help and tests). */
const char *const *digcl_model_config_preset_names(void);

/* "dig" / "dit" / "udig" */
const char *digcl_arch_name(digcl_arch arch);

/* ---- U-DiG geometry (docs/MODEL.md "U-DiG") ----
 * Stages in pipeline order: encoder 1, encoder 2, bottleneck, decoder 2,
 * decoder 1, each depth/5 blocks; blocks are numbered 0..depth-1 across the
 * stages. Stage s runs on the grid E / 2^level(s), levels 0 1 2 1 0. */
#define DIGCL_UDIG_STAGES 5
/* 1 for the archs whose blocks are DiG blocks (GLA, SwiGLU, DW-conv): dig, udig. */
int digcl_arch_has_dig_blocks(digcl_arch arch);
/* Blocks per stage (depth / 5); 0 for archs other than udig. */
int digcl_udig_stage_depth(const digcl_model_config *cfg);
/* 0..4 for udig, 0 for the other archs. */
int digcl_model_block_stage(const digcl_model_config *cfg, int block);
/* 0, 1 or 2 (grid halvings below the full token grid) of a U-DiG stage. */
int digcl_udig_stage_level(int stage);
/* Side of the token grid block `block` runs on: cfg->grid, or for udig
 * cfg->grid >> level(stage). */
int digcl_model_block_grid(const digcl_model_config *cfg, int block);

/* dig.config JSON (the architecture only; `attention` is left out and reads back
 * as TILED): {"arch":"dig","depth":12,"hidden_size":384,"num_heads":6,
 * "patch_size":2,"input_size":32,"in_channels":4,"num_classes":1000,
 * "learn_sigma":true,"skip":false} (+ "skip_zero_init" when true).
 * to_json returns a malloc'ed string (free with free()), NULL when out of memory. */
char *digcl_model_config_to_json(const digcl_model_config *cfg);
/* Parses and finishes. Every key above is required with the right JSON type
 * (numbers are integers, flags are booleans); "skip_zero_init" is optional;
 * unknown keys are rejected. */
int digcl_model_config_from_json(const char *json, digcl_model_config *cfg,
                                 digcl_config_error *err);

/* ---- parameter table ---- */

typedef enum digcl_param_init {
    DIGCL_INIT_XAVIER,     /* xavier_uniform, gain 1 (conv: on the [D, C*p*p] view) */
    DIGCL_INIT_XAVIER_GLA, /* xavier_uniform, gain 2^-2.5 (GLA linears) */
    DIGCL_INIT_ZERO,
    DIGCL_INIT_ONE,
    DIGCL_INIT_NORMAL_002,   /* N(0, 0.02): label table, timestep MLP weights */
    DIGCL_INIT_SINCOS_2D,    /* fixed 2-D sin-cos table (frozen pos_embed) */
    DIGCL_INIT_DW_IDENTITY,  /* depthwise conv: zeros, centre tap 1 */
    DIGCL_INIT_SKIP_IDENTITY /* skip_linear [D, 2D] = [I | 0] (skipzero) */
} digcl_param_init;

/* Builds the table of a finished config; returns 0, or -1 when out of memory. */
int digcl_param_table_build(const digcl_model_config *cfg, digcl_param_table *table);
const char *digcl_param_init_name(digcl_param_init init); /* "xavier", "zero", ... */

#endif
