/* vae_kl.c: the AutoencoderKL encoder and decoder over the tiles (or images) of one pass
 * (docs/VAE.md "Networks"), on three activation buffers of plan->act_floats floats that rotate
 * between layers:
 *   ResNet(x): h = conv1(silu(gn1(x))); h = conv2(silu(gn2(h))); out = shortcut(x) + h
 *   attention(x): h = gn(x); q, k, v = W h + b (1x1); out = x + W_o attn(q, k, v) + b_o
 *   downsample: F.pad(x, (0, 1, 0, 1)) then conv3x3 stride 2; upsample: nearest x2, conv3x3
 * The shortcut add is fused into conv2 (a GEMM with beta = 1 onto x or the 1x1 shortcut).
 * Every op runs on the plan's N images at once ([N, C, H, W] per buffer). */
#include <stdarg.h>
#include <stdio.h>

#include "digcl/conv2d.h"
#include "digcl/groupnorm.h"
#include "digcl/upsample.h"
#include "digcl/vae_ops.h"
#include "vae_internal.h"

void digcl_vae_format_name(char *out, const char *format, ...) {
    va_list args;
    va_start(args, format);
    const int n = vsnprintf(out, VAE_NAME_MAX, format, args);
    va_end(args);
    if (n < 0 || n >= VAE_NAME_MAX) digcl_fatal("vae: tensor name too long: %s...", out);
}

size_t digcl_vae_offset(const vae_weights *w, const char *format, ...) {
    char name[VAE_NAME_MAX];
    va_list args;
    va_start(args, format);
    vsnprintf(name, sizeof name, format, args);
    va_end(args);
    const digcl_param_table *table = digcl_params_table(w->params);
    const digcl_param_info *t = digcl_param_table_find(table, name);
    if (!t) digcl_fatal("vae: no tensor '%s' in the loaded table", name);
    return digcl_params_offset(w->params, (size_t)(t - table->params));
}

/* The tensor being computed: a buffer of the plan, its channels and size. */
typedef struct activation {
    int slot; /* index into plan->act */
    int C, H, W;
} activation;

typedef struct kl_run {
    digcl_context *ctx;
    const digcl_vae_config *config;
    const vae_weights *w;
    vae_plan *plan;
} kl_run;

static cl_mem slot_mem(const kl_run *r, int slot) { return r->plan->act[slot].mem; }

/* y = conv(x) (+ y when accumulate) for a conv named `name` (weight and bias) on N images. */
static void conv_images(digcl_context *ctx, const vae_weights *w, cl_mem col, size_t col_floats,
                        const char *name, int N, cl_mem x, size_t x_offset, int C, int H, int W,
                        int O, int K, int stride, const int pad[4], int has_bias, cl_mem y,
                        size_t y_offset, int accumulate) {
    digcl_conv2d_shape s = {N, C, H, W, O, K, stride, pad[0], pad[1], pad[2], pad[3]};
    const size_t wo = digcl_vae_offset(w, "%s.weight", name);
    const size_t bo = has_bias ? digcl_vae_offset(w, "%s.bias", name) : 0;
    digcl_conv2d_forward(ctx, &s, x, x_offset, w->mem, wo, has_bias ? w->mem : NULL, bo, y,
                         y_offset, accumulate, col, col_floats);
}

void digcl_vae_conv_scratch(digcl_context *ctx, const vae_weights *w, cl_mem col, size_t col_floats,
                            const char *name, cl_mem x, size_t x_offset, int C, int H, int W, int O,
                            int K, int stride, const int pad[4], int has_bias, cl_mem y,
                            size_t y_offset, int accumulate) {
    conv_images(ctx, w, col, col_floats, name, 1, x, x_offset, C, H, W, O, K, stride, pad, has_bias,
                y, y_offset, accumulate);
}

void digcl_vae_conv(digcl_context *ctx, const vae_weights *w, vae_plan *plan, const char *name,
                    cl_mem x, size_t x_offset, int C, int H, int W, int O, int K, int stride,
                    const int pad[4], int has_bias, cl_mem y, size_t y_offset, int accumulate) {
    conv_images(ctx, w, plan->col.mem, plan->col_floats, name, plan->N, x, x_offset, C, H, W, O, K,
                stride, pad, has_bias, y, y_offset, accumulate);
}

static const int SAME[4] = {1, 1, 1, 1}, NONE[4] = {0, 0, 0, 0}, DOWN[4] = {0, 0, 1, 1};

static void group_norm(const kl_run *r, const char *name, cl_mem x, int C, int pixels, int silu,
                       cl_mem y) {
    digcl_groupnorm_shape s = {r->plan->N, C, pixels, r->config->groups, r->config->eps};
    digcl_groupnorm_forward(r->ctx, &s, x, r->w->mem, digcl_vae_offset(r->w, "%s.weight", name),
                            digcl_vae_offset(r->w, "%s.bias", name), silu, y, r->plan->norm.mem);
}

static int other(int a, int b) { return 3 - a - b; }

/* x -> ResNet(x) with `out` channels; returns the result's slot. */
static activation resnet(const kl_run *r, const char *prefix, activation x, int out) {
    char name[VAE_NAME_MAX];
    const int t1 = (x.slot + 1) % 3, t2 = other(x.slot, t1), pixels = x.H * x.W;
    digcl_vae_format_name(name, "%s.norm1", prefix);
    group_norm(r, name, slot_mem(r, x.slot), x.C, pixels, 1, slot_mem(r, t1));
    digcl_vae_format_name(name, "%s.conv1", prefix);
    digcl_vae_conv(r->ctx, r->w, r->plan, name, slot_mem(r, t1), 0, x.C, x.H, x.W, out, 3, 1, SAME,
                   1, slot_mem(r, t2), 0, 0);
    digcl_vae_format_name(name, "%s.norm2", prefix);
    group_norm(r, name, slot_mem(r, t2), out, pixels, 1, slot_mem(r, t1));
    activation y = {x.slot, out, x.H, x.W};
    if (x.C != out) { /* the 1x1 shortcut into t2, then conv2 adds onto it */
        digcl_vae_format_name(name, "%s.conv_shortcut", prefix);
        digcl_vae_conv(r->ctx, r->w, r->plan, name, slot_mem(r, x.slot), 0, x.C, x.H, x.W, out, 1,
                       1, NONE, 1, slot_mem(r, t2), 0, 0);
        y.slot = t2;
    }
    digcl_vae_format_name(name, "%s.conv2", prefix);
    digcl_vae_conv(r->ctx, r->w, r->plan, name, slot_mem(r, t1), 0, out, x.H, x.W, out, 3, 1, SAME,
                   1, slot_mem(r, y.slot), 0, 1);
    return y;
}

/* x += W_o attention(gn(x)) + b_o, in place, each image attending over its own positions.
 * t1 holds gn(x) [N, C, T] then the attention output [N, C, T]; t2 holds q, k, v
 * ([3][N, C, T]). */
static void attention(const kl_run *r, const char *prefix, activation x) {
    char name[VAE_NAME_MAX];
    const int t1 = (x.slot + 1) % 3, t2 = other(x.slot, t1), T = x.H * x.W, N = r->plan->N;
    const size_t plane = (size_t)x.C * T, planes = (size_t)N * plane;
    static const char *const qkv[3] = {"to_q", "to_k", "to_v"};
    digcl_vae_format_name(name, "%s.group_norm", prefix);
    group_norm(r, name, slot_mem(r, x.slot), x.C, T, 0, slot_mem(r, t1));
    for (int i = 0; i < 3; ++i) { /* Linear over channels = a 1x1 conv on [C, T] */
        digcl_vae_format_name(name, "%s.%s", prefix, qkv[i]);
        digcl_vae_conv(r->ctx, r->w, r->plan, name, slot_mem(r, t1), 0, x.C, x.H, x.W, x.C, 1, 1,
                       NONE, 1, slot_mem(r, t2), i * planes, 0);
    }
    for (int n = 0; n < N; ++n) {
        const size_t at = (size_t)n * plane;
        digcl_plane_ref q = {slot_mem(r, t2), at}, k = {slot_mem(r, t2), planes + at};
        digcl_plane_ref v = {slot_mem(r, t2), 2 * planes + at},
                        out = {slot_mem(r, t1), planes + at};
        digcl_spatial_attention_forward(r->ctx, x.C, T, q, k, v, out, r->plan->scores.mem,
                                        r->plan->score_floats);
    }
    digcl_vae_format_name(name, "%s.to_out.0", prefix);
    digcl_vae_conv(r->ctx, r->w, r->plan, name, slot_mem(r, t1), planes, x.C, x.H, x.W, x.C, 1, 1,
                   NONE, 1, slot_mem(r, x.slot), 0, 1);
}

static activation mid_block(const kl_run *r, const char *side, activation x) {
    char name[VAE_NAME_MAX];
    digcl_vae_format_name(name, "%s.mid_block.resnets.0", side);
    x = resnet(r, name, x, x.C);
    digcl_vae_format_name(name, "%s.mid_block.attentions.0", side);
    attention(r, name, x);
    digcl_vae_format_name(name, "%s.mid_block.resnets.1", side);
    return resnet(r, name, x, x.C);
}

/* silu(gn(x)) then conv3x3 into `y` (the encoder's and decoder's heads). */
static void head(const kl_run *r, const char *side, activation x, int out, cl_mem y) {
    char name[VAE_NAME_MAX];
    const int t1 = (x.slot + 1) % 3;
    digcl_vae_format_name(name, "%s.conv_norm_out", side);
    group_norm(r, name, slot_mem(r, x.slot), x.C, x.H * x.W, 1, slot_mem(r, t1));
    digcl_vae_format_name(name, "%s.conv_out", side);
    digcl_vae_conv(r->ctx, r->w, r->plan, name, slot_mem(r, t1), 0, x.C, x.H, x.W, out, 3, 1, SAME,
                   1, y, 0, 0);
}

void digcl_vae_kl_encode(digcl_context *ctx, const digcl_vae_config *c, const vae_weights *w,
                         vae_plan *plan) {
    const kl_run r = {ctx, c, w, plan};
    char name[VAE_NAME_MAX];
    activation x = {0, c->channels[0], plan->H, plan->W};
    digcl_vae_conv(ctx, w, plan, "encoder.conv_in", plan->input.mem, 0, 3, x.H, x.W, x.C, 3, 1,
                   SAME, 1, slot_mem(&r, 0), 0, 0);
    for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
        for (int j = 0; j < c->encoder_blocks; ++j) {
            digcl_vae_format_name(name, "encoder.down_blocks.%d.resnets.%d", i, j);
            x = resnet(&r, name, x, c->channels[i]);
        }
        if (i == DIGCL_VAE_LEVELS - 1) continue;
        digcl_vae_format_name(name, "encoder.down_blocks.%d.downsamplers.0.conv", i);
        activation y = {(x.slot + 1) % 3, x.C, (x.H + 1 - 3) / 2 + 1, (x.W + 1 - 3) / 2 + 1};
        digcl_vae_conv(ctx, w, plan, name, slot_mem(&r, x.slot), 0, x.C, x.H, x.W, x.C, 3, 2, DOWN,
                       1, slot_mem(&r, y.slot), 0, 0);
        x = y;
    }
    x = mid_block(&r, "encoder", x);
    const int moments = 2 * c->latent_channels, t2 = (x.slot + 2) % 3;
    head(&r, "encoder", x, moments, slot_mem(&r, t2));
    digcl_vae_conv(ctx, w, plan, "quant_conv", slot_mem(&r, t2), 0, moments, x.H, x.W, moments, 1,
                   1, NONE, 1, plan->output.mem, 0, 0);
}

void digcl_vae_kl_decode(digcl_context *ctx, const digcl_vae_config *c, const vae_weights *w,
                         vae_plan *plan) {
    const kl_run r = {ctx, c, w, plan};
    char name[VAE_NAME_MAX];
    const int L = c->latent_channels, h = plan->H / 8, wd = plan->W / 8;
    digcl_vae_conv(ctx, w, plan, "post_quant_conv", plan->input.mem, 0, L, h, wd, L, 1, 1, NONE, 1,
                   slot_mem(&r, 1), 0, 0);
    activation x = {0, c->channels[DIGCL_VAE_LEVELS - 1], h, wd};
    digcl_vae_conv(ctx, w, plan, "decoder.conv_in", slot_mem(&r, 1), 0, L, h, wd, x.C, 3, 1, SAME,
                   1, slot_mem(&r, 0), 0, 0);
    x = mid_block(&r, "decoder", x);
    for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
        const int out = c->channels[DIGCL_VAE_LEVELS - 1 - i];
        for (int j = 0; j < c->decoder_blocks; ++j) {
            digcl_vae_format_name(name, "decoder.up_blocks.%d.resnets.%d", i, j);
            x = resnet(&r, name, x, out);
        }
        if (i == DIGCL_VAE_LEVELS - 1) continue;
        const int up = (x.slot + 1) % 3, y = other(x.slot, up);
        digcl_upsample_nearest_forward(ctx, plan->N * x.C, x.H, x.W, 2, slot_mem(&r, x.slot),
                                       slot_mem(&r, up));
        digcl_vae_format_name(name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
        digcl_vae_conv(ctx, w, plan, name, slot_mem(&r, up), 0, x.C, 2 * x.H, 2 * x.W, x.C, 3, 1,
                       SAME, 1, slot_mem(&r, y), 0, 0);
        x.slot = y, x.H *= 2, x.W *= 2;
    }
    head(&r, "decoder", x, 3, plan->output.mem);
}
