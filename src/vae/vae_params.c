/* vae_params.c: the VAE's and TAESD's tensor tables (canonical diffusers names and shapes,
 * derived from the architecture, docs/VAE.md "Weights") as parameter-store tables, and their
 * loading into the store (digcl_params_load_found) under every accepted spelling. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/safetensors.h"
#include "vae_internal.h"

/* ---------------------------------------------------------------- configs */

digcl_vae_config digcl_vae_config_sd(void) {
    digcl_vae_config c = {DIGCL_VAE_KL, {128, 256, 512, 512}, 2, 3, 32, 1e-6f, 4};
    return c;
}

digcl_vae_config digcl_vae_config_taesd(void) {
    digcl_vae_config c = {DIGCL_VAE_TAESD, {64, 64, 64, 64}, 0, 0, 0, 0.0f, 4};
    return c;
}

/* ---------------------------------------------------------------- building the table */

static void add(digcl_param_table *t, int part, int rank, const int64_t *shape, const char *format,
                ...) DIGCL_PRINTF(5, 6);

static void add(digcl_param_table *t, int part, int rank, const int64_t *shape, const char *format,
                ...) {
    char name[VAE_NAME_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(name, sizeof name, format, args);
    va_end(args);
    if (digcl_param_table_add(t, name, rank, shape, 0, part) < 0)
        digcl_fatal("vae: cannot add tensor '%s' to the table (out of host memory or too long)",
                    name);
}

static void add_conv(digcl_param_table *t, int part, const char *prefix, int out, int in, int k,
                     int bias) {
    const int64_t w[4] = {out, in, k, k}, b[1] = {out};
    add(t, part, 4, w, "%s.weight", prefix);
    if (bias) add(t, part, 1, b, "%s.bias", prefix);
}

static void add_norm(digcl_param_table *t, int part, const char *prefix, int channels) {
    const int64_t s[1] = {channels};
    add(t, part, 1, s, "%s.weight", prefix);
    add(t, part, 1, s, "%s.bias", prefix);
}

static void add_linear(digcl_param_table *t, int part, const char *prefix, int channels) {
    const int64_t w[2] = {channels, channels}, b[1] = {channels};
    add(t, part, 2, w, "%s.weight", prefix);
    add(t, part, 1, b, "%s.bias", prefix);
}

static void add_resnet(digcl_param_table *t, int part, const char *prefix, int in, int out) {
    char name[VAE_NAME_MAX];
    digcl_vae_format_name(name, "%s.norm1", prefix), add_norm(t, part, name, in);
    digcl_vae_format_name(name, "%s.conv1", prefix), add_conv(t, part, name, out, in, 3, 1);
    digcl_vae_format_name(name, "%s.norm2", prefix), add_norm(t, part, name, out);
    digcl_vae_format_name(name, "%s.conv2", prefix), add_conv(t, part, name, out, out, 3, 1);
    if (in != out)
        digcl_vae_format_name(name, "%s.conv_shortcut", prefix),
            add_conv(t, part, name, out, in, 1, 1);
}

static void add_mid(digcl_param_table *t, int part, const char *side, int c) {
    char name[VAE_NAME_MAX];
    digcl_vae_format_name(name, "%s.mid_block.resnets.0", side), add_resnet(t, part, name, c, c);
    static const char *const projections[] = {"to_q", "to_k", "to_v", "to_out.0"};
    digcl_vae_format_name(name, "%s.mid_block.attentions.0.group_norm", side);
    add_norm(t, part, name, c);
    for (int i = 0; i < 4; ++i) {
        digcl_vae_format_name(name, "%s.mid_block.attentions.0.%s", side, projections[i]);
        add_linear(t, part, name, c);
    }
    digcl_vae_format_name(name, "%s.mid_block.resnets.1", side), add_resnet(t, part, name, c, c);
}

static void build_kl_encoder(digcl_param_table *t, const digcl_vae_config *c) {
    const int E = DIGCL_VAE_ENCODER, L = c->latent_channels, top = c->channels[3];
    char name[VAE_NAME_MAX];
    add_conv(t, E, "encoder.conv_in", c->channels[0], 3, 3, 1);
    int in = c->channels[0];
    for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
        for (int j = 0; j < c->encoder_blocks; ++j) {
            digcl_vae_format_name(name, "encoder.down_blocks.%d.resnets.%d", i, j);
            add_resnet(t, E, name, in, c->channels[i]);
            in = c->channels[i];
        }
        if (i == DIGCL_VAE_LEVELS - 1) continue;
        digcl_vae_format_name(name, "encoder.down_blocks.%d.downsamplers.0.conv", i);
        add_conv(t, E, name, in, in, 3, 1);
    }
    add_mid(t, E, "encoder", top);
    add_norm(t, E, "encoder.conv_norm_out", top);
    add_conv(t, E, "encoder.conv_out", 2 * L, top, 3, 1);
    add_conv(t, E, "quant_conv", 2 * L, 2 * L, 1, 1);
}

static void build_kl_decoder(digcl_param_table *t, const digcl_vae_config *c) {
    const int D = DIGCL_VAE_DECODER, L = c->latent_channels, top = c->channels[3];
    char name[VAE_NAME_MAX];
    add_conv(t, D, "post_quant_conv", L, L, 1, 1);
    add_conv(t, D, "decoder.conv_in", top, L, 3, 1);
    add_mid(t, D, "decoder", top);
    int in = top;
    for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
        const int out = c->channels[DIGCL_VAE_LEVELS - 1 - i];
        for (int j = 0; j < c->decoder_blocks; ++j) {
            digcl_vae_format_name(name, "decoder.up_blocks.%d.resnets.%d", i, j);
            add_resnet(t, D, name, in, out);
            in = out;
        }
        if (i == DIGCL_VAE_LEVELS - 1) continue;
        digcl_vae_format_name(name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
        add_conv(t, D, name, out, out, 3, 1);
    }
    add_norm(t, D, "decoder.conv_norm_out", c->channels[0]);
    add_conv(t, D, "decoder.conv_out", 3, c->channels[0], 3, 1);
}

/* TAESD blocks: conv.0, conv.2, conv.4 (3x3 with bias); the 1x1 skip only when widths differ
 * (never at one width). */
static void add_taesd_block(digcl_param_table *t, int part, const char *side, int index,
                            int width) {
    char name[VAE_NAME_MAX];
    for (int k = 0; k <= 4; k += 2) {
        digcl_vae_format_name(name, "%s.layers.%d.conv.%d", side, index, k);
        add_conv(t, part, name, width, width, 3, 1);
    }
}

static void build_taesd_encoder(digcl_param_table *t, const digcl_vae_config *c) {
    const int E = DIGCL_VAE_ENCODER, w = c->channels[0];
    char name[VAE_NAME_MAX];
    int index = 0;
    for (int level = 0; level < DIGCL_VAE_LEVELS; ++level) {
        digcl_vae_format_name(name, "encoder.layers.%d", index++);
        add_conv(t, E, name, w, level == 0 ? 3 : w, 3, level == 0);
        for (int b = 0; b < (level == 0 ? 1 : 3); ++b) add_taesd_block(t, E, "encoder", index++, w);
    }
    digcl_vae_format_name(name, "encoder.layers.%d", index);
    add_conv(t, E, name, c->latent_channels, w, 3, 1);
}

static void build_taesd_decoder(digcl_param_table *t, const digcl_vae_config *c) {
    const int D = DIGCL_VAE_DECODER, w = c->channels[0];
    char name[VAE_NAME_MAX];
    add_conv(t, D, "decoder.layers.0", w, c->latent_channels, 3, 1);
    int index = 2; /* layers.1 is the ReLU */
    for (int level = 0; level < DIGCL_VAE_LEVELS; ++level) {
        const int last = level == DIGCL_VAE_LEVELS - 1;
        for (int b = 0; b < (last ? 1 : 3); ++b) add_taesd_block(t, D, "decoder", index++, w);
        if (!last) index++; /* the Upsample */
        digcl_vae_format_name(name, "decoder.layers.%d", index++);
        add_conv(t, D, name, last ? 3 : w, w, 3, last);
    }
}

int digcl_vae_table_build(digcl_param_table *t, const digcl_vae_config *c, int parts) {
    memset(t, 0, sizeof *t);
    const int kl = c->kind == DIGCL_VAE_KL;
    if (parts & DIGCL_VAE_ENCODER) kl ? build_kl_encoder(t, c) : build_taesd_encoder(t, c);
    if (parts & DIGCL_VAE_DECODER) kl ? build_kl_decoder(t, c) : build_taesd_decoder(t, c);
    return (int)t->count;
}

int64_t digcl_vae_parameter_count(const digcl_vae_config *config, int part) {
    digcl_param_table t;
    digcl_vae_table_build(&t, config, part);
    const int64_t count = (int64_t)t.total;
    digcl_param_table_free(&t);
    return count;
}

int digcl_vae_tensor_info(const digcl_vae_config *config, int parts, int index, char *name,
                          size_t name_size, int *rank, int64_t shape[4]) {
    digcl_param_table t;
    digcl_vae_table_build(&t, config, parts);
    const int ok = index >= 0 && (size_t)index < t.count;
    if (ok) {
        const digcl_param_info *x = &t.params[index];
        snprintf(name, name_size, "%s", x->name);
        *rank = x->rank;
        for (int d = 0; d < 4; ++d) shape[d] = d < x->rank ? x->shape[d] : 0;
    }
    digcl_param_table_free(&t);
    return ok ? 0 : -1;
}

/* ---------------------------------------------------------------- spellings */

/* snprintf without the truncation warning (names are short; a cut name just fails to match). */
static int format_to(char *out, size_t size, const char *format, ...) DIGCL_PRINTF(3, 4);
static int format_to(char *out, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    const int n = vsnprintf(out, size, format, args);
    va_end(args);
    return n;
}

static const char *after(const char *s, const char *prefix) {
    const size_t n = strlen(prefix);
    return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

/* "conv_shortcut" -> "nin_shortcut" inside a ResNet's tail ("conv1.weight" stays). */
static void ldm_resnet_tail(const char *tail, char *out, size_t size) {
    const char *rest = after(tail, "conv_shortcut.");
    if (rest) format_to(out, size, "nin_shortcut.%s", rest);
    else format_to(out, size, "%s", tail);
}

/* The mid block: resnets.0 -> block_1, attentions.0.{group_norm,to_q,..} -> attn_1.{norm,q,..}. */
static int ldm_mid(const char *side, const char *tail, char *out, size_t size) {
    static const char *const from[] = {"group_norm.", "to_q.", "to_k.", "to_v.", "to_out.0."};
    static const char *const to[] = {"norm.", "q.", "k.", "v.", "proj_out."};
    const char *rest;
    char fixed[VAE_NAME_MAX];
    if ((rest = after(tail, "resnets.0."))) {
        ldm_resnet_tail(rest, fixed, sizeof fixed);
        return format_to(out, size, "%s.mid.block_1.%s", side, fixed), 1;
    }
    if ((rest = after(tail, "resnets.1."))) {
        ldm_resnet_tail(rest, fixed, sizeof fixed);
        return format_to(out, size, "%s.mid.block_2.%s", side, fixed), 1;
    }
    if (!(rest = after(tail, "attentions.0."))) return 0;
    for (int i = 0; i < 5; ++i) {
        const char *leaf = after(rest, from[i]);
        if (leaf) return format_to(out, size, "%s.mid.attn_1.%s%s", side, to[i], leaf), 1;
    }
    return 0;
}

/* The original Stable Diffusion (LDM) name of a canonical KL name. */
static void ldm_name(const digcl_vae_config *c, const char *name, char *out, size_t size) {
    (void)c;
    int level, block, consumed = 0;
    char fixed[VAE_NAME_MAX];
    const char *rest;
    format_to(out, size, "%s", name);
    for (int side = 0; side < 2; ++side) {
        const char *label = side ? "decoder" : "encoder";
        char prefix[32];
        format_to(prefix, sizeof prefix, "%s.", label);
        const char *tail = after(name, prefix);
        if (!tail) continue;
        if ((rest = after(tail, "mid_block.")) && ldm_mid(label, rest, out, size)) return;
        if ((rest = after(tail, "conv_norm_out."))) {
            format_to(out, size, "%s.norm_out.%s", label, rest);
            return;
        }
        const char *blocks = side ? "up_blocks" : "down_blocks";
        char pattern[64];
        format_to(pattern, sizeof pattern, "%s.%%d.resnets.%%d.%%n", blocks);
        if (sscanf(tail, pattern, &level, &block, &consumed) == 2 && consumed > 0) {
            const int ldm_level = side ? DIGCL_VAE_LEVELS - 1 - level : level;
            ldm_resnet_tail(tail + consumed, fixed, sizeof fixed);
            format_to(out, size, "%s.%s.%d.block.%d.%s", label, side ? "up" : "down", ldm_level,
                      block, fixed);
            return;
        }
        consumed = 0;
        format_to(pattern, sizeof pattern, "%s.%%d.%%n", blocks);
        if (sscanf(tail, pattern, &level, &consumed) == 1 && consumed > 0) {
            const char *sampler = side ? "upsamplers.0.conv." : "downsamplers.0.conv.";
            if ((rest = after(tail + consumed, sampler))) {
                const int ldm_level = side ? DIGCL_VAE_LEVELS - 1 - level : level;
                format_to(out, size, "%s.%s.%d.%s.conv.%s", label, side ? "up" : "down", ldm_level,
                          side ? "upsample" : "downsample", rest);
            }
        }
        return;
    }
}

/* diffusers' old attention names: to_q/to_k/to_v/to_out.0 -> query/key/value/proj_attn. */
static int old_attention_name(const char *name, char *out, size_t size) {
    static const char *const from[] = {".to_q.", ".to_k.", ".to_v.", ".to_out.0."};
    static const char *const to[] = {".query.", ".key.", ".value.", ".proj_attn."};
    for (int i = 0; i < 4; ++i) {
        const char *at = strstr(name, from[i]);
        if (!at) continue;
        format_to(out, size, "%.*s%s%s", (int)(at - name), name, to[i], at + strlen(from[i]));
        return 1;
    }
    return 0;
}

/* TAESD's original files: encoder.layers.K.x -> K.x, decoder.layers.K.x -> (K+1).x (the
 * original decoder starts with the Clamp module). */
static int taesd_original_name(const char *name, char *out, size_t size) {
    int index, consumed = 0;
    if (sscanf(name, "encoder.layers.%d.%n", &index, &consumed) == 1 && consumed > 0)
        return format_to(out, size, "%d.%s", index, name + consumed), 1;
    consumed = 0;
    if (sscanf(name, "decoder.layers.%d.%n", &index, &consumed) == 1 && consumed > 0)
        return format_to(out, size, "%d.%s", index + 1, name + consumed), 1;
    return 0;
}

int digcl_vae_name_spellings(const digcl_vae_config *c, const char *canonical,
                             char spellings[][VAE_NAME_MAX], int max) {
    int n = 0;
    char ldm[VAE_NAME_MAX];
    if (n < max) format_to(spellings[n++], VAE_NAME_MAX, "%s", canonical);
    if (c->kind == DIGCL_VAE_TAESD) {
        if (n < max && taesd_original_name(canonical, spellings[n], VAE_NAME_MAX)) n++;
        return n;
    }
    if (n < max && old_attention_name(canonical, spellings[n], VAE_NAME_MAX)) n++;
    ldm_name(c, canonical, ldm, sizeof ldm);
    if (strcmp(ldm, canonical) != 0 && n < max) format_to(spellings[n++], VAE_NAME_MAX, "%s", ldm);
    if (n < max) format_to(spellings[n++], VAE_NAME_MAX, "first_stage_model.%s", ldm);
    return n;
}

/* ---------------------------------------------------------------- loading */

#define MAX_SPELLINGS 6

static const digcl_st_tensor *find_any(const digcl_safetensors *st, const digcl_vae_config *c,
                                       const char *canonical) {
    char spellings[MAX_SPELLINGS][VAE_NAME_MAX];
    const int n = digcl_vae_name_spellings(c, canonical, spellings, MAX_SPELLINGS);
    for (int i = 0; i < n; ++i) {
        const digcl_st_tensor *t = digcl_st_find(st, spellings[i]);
        if (t) return t;
    }
    return NULL;
}

digcl_vae_kind digcl_vae_kind_of_file(const digcl_safetensors *st) {
    if (digcl_st_find(st, "encoder.layers.0.weight") ||
        digcl_st_find(st, "decoder.layers.0.weight") || digcl_st_find(st, "0.weight") ||
        digcl_st_find(st, "1.weight"))
        return DIGCL_VAE_TAESD;
    return DIGCL_VAE_KL;
}

/* A part is present when its first tensor is (TAESD's original files share index names, so
 * the first conv's input channels tell an encoder [w, 3, 3, 3] from a decoder [w, 4, 3, 3]). */
int digcl_vae_parts_in_file(const digcl_safetensors *st, const digcl_vae_config *c) {
    int parts = 0;
    for (int part = DIGCL_VAE_ENCODER; part <= DIGCL_VAE_DECODER; part <<= 1) {
        digcl_param_table t;
        digcl_vae_table_build(&t, c, part);
        const digcl_st_tensor *first = find_any(st, c, t.params[0].name);
        if (first && first->rank == 4 && first->shape[1] == t.params[0].shape[1]) parts |= part;
        digcl_param_table_free(&t);
    }
    return parts;
}

/* Equal shapes, or a Linear weight [a, b] stored as a 1x1 conv [a, b, 1, 1] (LDM attention). */
static int shape_matches(const digcl_param_info *want, const digcl_st_tensor *got) {
    if (got->rank == want->rank) {
        for (int d = 0; d < want->rank; ++d)
            if (got->shape[d] != want->shape[d]) return 0;
        return 1;
    }
    return want->rank == 2 && got->rank == 4 && got->shape[0] == want->shape[0] &&
           got->shape[1] == want->shape[1] && got->shape[2] == 1 && got->shape[3] == 1;
}

/* digcl_params_find_fn: the file's tensor of table tensor x under any spelling, shape checked. */
static const digcl_st_tensor *find_checked(void *user, const digcl_safetensors *st, size_t index,
                                           const digcl_param_info *x, char *error, size_t size) {
    const digcl_vae_config *c = user;
    char want[96], got[96];
    (void)index;
    digcl_st_format_shape(want, sizeof want, x->rank, x->shape);
    const digcl_st_tensor *t = find_any(st, c, x->name);
    if (!t) {
        char spellings[MAX_SPELLINGS][VAE_NAME_MAX], also[512] = "";
        const int n = digcl_vae_name_spellings(c, x->name, spellings, MAX_SPELLINGS);
        for (int i = 1; i < n; ++i) {
            const size_t used = strlen(also);
            snprintf(also + used, sizeof also - used, "%s'%s'", i > 1 ? ", " : "", spellings[i]);
        }
        digcl_format_error(error, size, "%s: missing tensor '%s' %s%s%s%s", st->label, x->name,
                           want, n > 1 ? " (also looked for " : "", also, n > 1 ? ")" : "");
        return NULL;
    }
    if (!shape_matches(x, t)) {
        digcl_st_format_shape(got, sizeof got, t->rank, t->shape);
        digcl_format_error(error, size, "%s: tensor '%s' has shape %s, expected %s", st->label,
                           t->name, got, want);
        return NULL;
    }
    return t;
}

int digcl_vae_params_load(digcl_params *params, const digcl_safetensors *st,
                          const digcl_vae_config *c, char *error, size_t size) {
    return digcl_params_load_found(params, st, find_checked, (void *)c, error, size);
}
