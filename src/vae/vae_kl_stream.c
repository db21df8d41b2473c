/* vae_kl_stream.c: the AutoencoderKL encoder and decoder streamed in row strips (docs/VAE.md "Tiling").
 * Every tensor of the network lives whole in host memory; each layer runs over strips of full
 * width on the device:
 *   out[:, r0:r1] = conv(up(silu(gn(in)))[:, r0 - p : r1 + p]) (+ residual[:, r0:r1], or its
 *                   1x1 shortcut),
 * reading from the whole input the rows its 3x3 convolution needs, so a strip sees its real
 * neighbours and zero padding only at the image's own edges. Each GroupNorm uses the statistics
 * of the whole tensor, merged on the host from the moments of the strips of the pass that
 * produced it; the mid block's attention runs over the whole latent at once. The result equals
 * the whole-image pass up to float rounding, whatever the strip height. Where an upsample
 * precedes the conv, interior strip boundaries are odd output rows, so that the input rows a
 * strip needs start and end on whole source rows. */
#include <stdlib.h>
#include <string.h>

#include "digcl/groupnorm.h"
#include "digcl/upsample.h"
#include "digcl/vae_ops.h"
#include "vae_internal.h"

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* A whole tensor in host memory. */
typedef struct host_tensor {
    float *data; /* [C, H, W] */
    int C, H, W;
} host_tensor;

/* What a dry run of the network records: the plan's sizes. */
typedef struct stream_sizes {
    size_t strip;   /* floats for two output rows of every layer */
    size_t slot[3]; /* floats of the largest tensor each host slot holds */
    size_t latent;  /* floats of the attention's input */
} stream_sizes;

typedef struct stream {
    digcl_context *ctx;
    const digcl_vae_config *config;
    const vae_weights *w;
    vae_stream_plan *plan;
    host_tensor t[3];    /* the plan's host tensors, rotating between layers */
    stream_sizes *sizes; /* non-NULL: a dry run that only records sizes (no device, no data) */
} stream;

/* One layer over the strips of its output. */
typedef struct conv_pass {
    const char *conv;                 /* weight name */
    int K, stride;                    /* kernel side; stride (0: 1) */
    const int *pads;                  /* top, left, bottom, right; NULL: (K - 1) / 2 each */
    const char *norm;                 /* GroupNorm + SiLU before the conv, or NULL */
    const float *norm_stats;          /* [2 G] (mean, rstd) of the whole input */
    int upsample;                     /* nearest x2 between the norm and the conv */
    const host_tensor *residual;      /* added to the output, or NULL */
    const char *shortcut;             /* the residual through this 1x1 conv, or identity */
    digcl_groupnorm_total *out_total; /* the output's moments, or NULL */
} conv_pass;

/* Sizes of a layer: its conv's input (after the upsample) and output. */
typedef struct geometry {
    int factor, stride, K, pad[4]; /* pad: top, left, bottom, right */
    int Hc, Wc, Ho, Wo;
} geometry;

static geometry geometry_of(int H, int W, int K, int stride, const int *pads, int upsample) {
    geometry g = {upsample ? 2 : 1, stride > 0 ? stride : 1, K, {0}, 0, 0, 0, 0};
    for (int i = 0; i < 4; ++i) g.pad[i] = pads ? pads[i] : (K - 1) / 2;
    g.Hc = H * g.factor, g.Wc = W * g.factor;
    g.Ho = (g.Hc + g.pad[0] + g.pad[2] - K) / g.stride + 1;
    g.Wo = (g.Wc + g.pad[1] + g.pad[3] - K) / g.stride + 1;
    return g;
}

static geometry pass_geometry(const conv_pass *p, const host_tensor *in) {
    return geometry_of(in->H, in->W, p->K, p->stride, p->pads, p->upsample);
}

/* ---------------------------------------------------------------- plan */

/* Floats a strip of `rows` output rows needs in the largest of in, norm, out and res: C input
 * channels, O output channels, a residual of R. */
static size_t strip_need(const geometry *g, int C, int O, int R, int rows) {
    const size_t conv_rows = (size_t)(rows - 1) * g->stride + g->K;
    const size_t widest = max_size((size_t)O, (size_t)R);
    return max_size((size_t)C * conv_rows * g->Wc, widest * rows * g->Wo);
}

static const int DOWN[4] = {0, 0, 1, 1}; /* F.pad(x, (0, 1, 0, 1)) before the stride-2 conv */

void digcl_vae_stream_plan_allocate(digcl_context *ctx, vae_stream_plan *p) {
    p->in = digcl_vae_buffer(ctx, p->strip_floats, "vae strip input");
    p->norm = digcl_vae_buffer(ctx, p->strip_floats, "vae strip normalised");
    p->out = digcl_vae_buffer(ctx, p->strip_floats, "vae strip output");
    p->res = digcl_vae_buffer(ctx, p->strip_floats, "vae strip residual");
    p->col = digcl_vae_buffer(ctx, p->strip_floats, "vae strip im2col scratch");
    p->qkv = digcl_vae_buffer(ctx, 3 * p->latent_floats, "vae attention q, k, v");
    p->gn = digcl_vae_buffer(ctx, p->norm_floats, "vae group-norm scratch");
    p->scores = digcl_vae_buffer(ctx, p->score_floats, "vae attention scores");
    for (int i = 0; i < 3; ++i) p->host[i] = malloc((p->host_floats[i] + 1) * sizeof(float));
    p->staging = malloc(p->strip_floats * sizeof(float));
    if (!p->host[0] || !p->host[1] || !p->host[2] || !p->staging)
        digcl_fatal("vae: out of host memory for the streamed pass (%.1f MiB)",
                    digcl_vae_stream_host_bytes(p) / 1048576.0);
}

void digcl_vae_stream_plan_release(vae_stream_plan *p) {
    digcl_buffer *all[] = {&p->in,  &p->norm, &p->out, &p->res,
                           &p->col, &p->qkv,  &p->gn,  &p->scores};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]->mem) digcl_buffer_release(all[i]);
    for (int i = 0; i < 3; ++i) free(p->host[i]);
    free(p->staging);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- strips */

/* Rows [r0, r1) of every channel of t -> device buffer [C, r1 - r0, W]. */
static void upload_rows(const stream *s, const host_tensor *t, int r0, int r1, cl_mem to) {
    const size_t row = (size_t)t->W, rows = (size_t)(r1 - r0);
    float *staging = s->plan->staging;
    for (int c = 0; c < t->C; ++c)
        memcpy(staging + c * rows * row, t->data + ((size_t)c * t->H + r0) * row,
               rows * row * sizeof *staging);
    digcl_write(s->ctx, to, 0, (size_t)t->C * rows * row * sizeof *staging, staging);
}

/* Device buffer [C, r1 - r0, W] -> rows [r0, r1) of every channel of t. */
static void download_rows(const stream *s, cl_mem from, host_tensor *t, int r0, int r1) {
    const size_t row = (size_t)t->W, rows = (size_t)(r1 - r0);
    float *staging = s->plan->staging;
    digcl_read(s->ctx, from, 0, (size_t)t->C * rows * row * sizeof *staging, staging);
    for (int c = 0; c < t->C; ++c)
        memcpy(t->data + ((size_t)c * t->H + r0) * row, staging + c * rows * row,
               rows * row * sizeof *staging);
}

/* Output rows per strip of a pass: as many as the strip buffers hold (at least 2). */
static int strip_rows(const stream *s, const host_tensor *in, const conv_pass *p, int O) {
    const geometry g = pass_geometry(p, in);
    const int R = p->residual ? p->residual->C : 0;
    const size_t limit = s->plan->strip_floats;
    int rows = 2;
    while (rows < g.Ho && strip_need(&g, in->C, O, R, 2 * rows) <= limit) rows *= 2;
    while (rows < g.Ho && strip_need(&g, in->C, O, R, rows + 1) <= limit) ++rows;
    return rows;
}

/* The end of the strip that starts at r0: odd interior boundaries after an upsample. */
static int strip_end(int r0, int rows, int H, int upsample) {
    int r1 = r0 + rows;
    if (upsample && r1 < H && r1 % 2 == 0) --r1;
    return r1 < H ? r1 : H;
}

static void norm_and_upsample(const stream *s, const conv_pass *p, const host_tensor *in, int rows,
                              cl_mem *x) {
    vae_stream_plan *plan = s->plan;
    if (p->norm) {
        const digcl_groupnorm_shape g = {1, in->C, rows * in->W, s->config->groups, s->config->eps};
        digcl_groupnorm_apply_stats(s->ctx, &g, plan->in.mem, s->w->mem,
                                    digcl_vae_offset(s->w, "%s.weight", p->norm),
                                    digcl_vae_offset(s->w, "%s.bias", p->norm), 1, plan->in.mem,
                                    plan->gn.mem, p->norm_stats);
    }
    *x = plan->in.mem;
    if (p->upsample) {
        digcl_upsample_nearest_forward(s->ctx, in->C, rows, in->W, 2, plan->in.mem, plan->norm.mem);
        *x = plan->norm.mem;
    }
}

/* The residual rows [r0, r1) into plan->out (identity or through the 1x1 shortcut). */
static void residual_rows(const stream *s, const conv_pass *p, int r0, int r1, int O) {
    vae_stream_plan *plan = s->plan;
    if (!p->shortcut) {
        upload_rows(s, p->residual, r0, r1, plan->out.mem);
        return;
    }
    static const int NONE[4] = {0, 0, 0, 0};
    upload_rows(s, p->residual, r0, r1, plan->res.mem);
    digcl_vae_conv_scratch(s->ctx, s->w, plan->col.mem, plan->strip_floats, p->shortcut,
                           plan->res.mem, 0, p->residual->C, r1 - r0, p->residual->W, O, 1, 1, NONE,
                           1, plan->out.mem, 0, 0);
}

static void run_strip(const stream *s, const conv_pass *p, const host_tensor *in, host_tensor *out,
                      int r0, int r1) {
    vae_stream_plan *plan = s->plan;
    const geometry g = pass_geometry(p, in);
    const int first = r0 * g.stride - g.pad[0], end = (r1 - 1) * g.stride - g.pad[0] + g.K;
    const int a = first > 0 ? first : 0, b = end < g.Hc ? end : g.Hc;
    const int pads[4] = {a - first, g.pad[1], end - b, g.pad[3]};
    upload_rows(s, in, a / g.factor, b / g.factor, plan->in.mem);
    cl_mem x;
    norm_and_upsample(s, p, in, (b - a) / g.factor, &x);
    if (p->residual) residual_rows(s, p, r0, r1, out->C);
    digcl_vae_conv_scratch(s->ctx, s->w, plan->col.mem, plan->strip_floats, p->conv, x, 0, in->C,
                           b - a, g.Wc, out->C, g.K, g.stride, pads, 1, plan->out.mem, 0,
                           p->residual != NULL);
    if (p->out_total) {
        const digcl_groupnorm_shape gn = {1, out->C, (r1 - r0) * out->W, s->config->groups,
                                          s->config->eps};
        float moments[2 * DIGCL_GROUPNORM_MAX_GROUPS];
        digcl_groupnorm_moments(s->ctx, &gn, plan->out.mem, plan->gn.mem, moments);
        digcl_groupnorm_total_add(p->out_total,
                                  (double)out->C / s->config->groups * (r1 - r0) * out->W, moments);
    }
    download_rows(s, plan->out.mem, out, r0, r1);
}

/* A dry run: the largest tensor of out's host slot (the caller's output is not a slot). */
static void record_output(const stream *s, const host_tensor *out) {
    for (int i = 0; i < 3; ++i)
        if (out == &s->t[i])
            s->sizes->slot[i] = max_size(s->sizes->slot[i], (size_t)out->C * out->H * out->W);
}

/* out (its C set by the caller; H, W here) = the pass over the strips of its rows. */
static void run_pass(const stream *s, const conv_pass *p, const host_tensor *in, host_tensor *out) {
    const geometry g = pass_geometry(p, in);
    out->H = g.Ho, out->W = g.Wo;
    if (p->out_total) *p->out_total = digcl_groupnorm_total_empty(s->config->groups);
    if (s->sizes) {
        record_output(s, out);
        s->sizes->strip = max_size(
            s->sizes->strip,
            strip_need(&g, in->C, out->C, p->residual ? p->residual->C : 0, 2 < g.Ho ? 2 : g.Ho));
        return;
    }
    const int rows = strip_rows(s, in, p, out->C);
    for (int r0 = 0; r0 < out->H;) {
        const int r1 = strip_end(r0, rows, out->H, p->upsample);
        run_strip(s, p, in, out, r0, r1);
        r0 = r1;
    }
}

/* ---------------------------------------------------------------- the network */

/* The result of a layer: which host tensor, and the moments of its groups. */
typedef struct layer_out {
    int slot;
    digcl_groupnorm_total total;
} layer_out;

static host_tensor *slot_tensor(stream *s, int slot, int C) {
    s->t[slot].C = C;
    return &s->t[slot];
}

static layer_out resnet(stream *s, const char *prefix, layer_out x, int out) {
    char conv1[VAE_NAME_MAX], norm1[VAE_NAME_MAX], conv2[VAE_NAME_MAX], norm2[VAE_NAME_MAX];
    char shortcut[VAE_NAME_MAX];
    digcl_vae_format_name(conv1, "%s.conv1", prefix);
    digcl_vae_format_name(norm1, "%s.norm1", prefix);
    digcl_vae_format_name(conv2, "%s.conv2", prefix);
    digcl_vae_format_name(norm2, "%s.norm2", prefix);
    digcl_vae_format_name(shortcut, "%s.conv_shortcut", prefix);
    const host_tensor *in = &s->t[x.slot];
    const int h_slot = (x.slot + 1) % 3, y_slot = (x.slot + 2) % 3;
    float stats[2 * DIGCL_GROUPNORM_MAX_GROUPS];
    layer_out h = {h_slot, {0}}, y = {y_slot, {0}};
    digcl_groupnorm_total_stats(&x.total, s->config->eps, stats);
    const conv_pass first = {
        .conv = conv1, .K = 3, .norm = norm1, .norm_stats = stats, .out_total = &h.total};
    run_pass(s, &first, in, slot_tensor(s, h_slot, out));
    digcl_groupnorm_total_stats(&h.total, s->config->eps, stats);
    const conv_pass second = {.conv = conv2,
                              .K = 3,
                              .norm = norm2,
                              .norm_stats = stats,
                              .residual = in,
                              .shortcut = in->C != out ? shortcut : NULL,
                              .out_total = &y.total};
    run_pass(s, &second, &s->t[h_slot], slot_tensor(s, y_slot, out));
    return y;
}

/* x + to_out(attention(to_q, to_k, to_v of gn(x))) over the whole latent at once. */
static layer_out attention(stream *s, const char *prefix, layer_out x) {
    vae_stream_plan *plan = s->plan;
    const host_tensor *in = &s->t[x.slot];
    const int C = in->C, T = in->H * in->W;
    const size_t plane = (size_t)C * T;
    static const int NONE[4] = {0, 0, 0, 0};
    static const char *const qkv[3] = {"to_q", "to_k", "to_v"};
    char name[VAE_NAME_MAX];
    float stats[2 * DIGCL_GROUPNORM_MAX_GROUPS];
    layer_out y = {(x.slot + 1) % 3, digcl_groupnorm_total_empty(s->config->groups)};
    host_tensor *result = slot_tensor(s, y.slot, C);
    result->H = in->H, result->W = in->W;
    if (s->sizes) {
        record_output(s, result);
        s->sizes->latent = max_size(s->sizes->latent, plane);
        return y;
    }
    upload_rows(s, in, 0, in->H, plan->in.mem);
    digcl_groupnorm_total_stats(&x.total, s->config->eps, stats);
    digcl_vae_format_name(name, "%s.group_norm", prefix);
    const digcl_groupnorm_shape g = {1, C, T, s->config->groups, s->config->eps};
    digcl_groupnorm_apply_stats(
        s->ctx, &g, plan->in.mem, s->w->mem, digcl_vae_offset(s->w, "%s.weight", name),
        digcl_vae_offset(s->w, "%s.bias", name), 0, plan->norm.mem, plan->gn.mem, stats);
    for (int i = 0; i < 3; ++i) { /* Linear over channels = a 1x1 conv on [C, T] */
        digcl_vae_format_name(name, "%s.%s", prefix, qkv[i]);
        digcl_vae_conv_scratch(s->ctx, s->w, plan->col.mem, plan->strip_floats, name,
                               plan->norm.mem, 0, C, in->H, in->W, C, 1, 1, NONE, 1, plan->qkv.mem,
                               i * plane, 0);
    }
    const digcl_plane_ref q = {plan->qkv.mem, 0}, k = {plan->qkv.mem, plane};
    const digcl_plane_ref v = {plan->qkv.mem, 2 * plane}, out = {plan->res.mem, 0};
    digcl_spatial_attention_forward(s->ctx, C, T, q, k, v, out, plan->scores.mem,
                                    plan->score_floats);
    digcl_vae_format_name(name, "%s.to_out.0", prefix);
    digcl_vae_conv_scratch(s->ctx, s->w, plan->col.mem, plan->strip_floats, name, plan->res.mem, 0,
                           C, in->H, in->W, C, 1, 1, NONE, 1, plan->in.mem, 0, 1);
    float moments[2 * DIGCL_GROUPNORM_MAX_GROUPS];
    digcl_groupnorm_moments(s->ctx, &g, plan->in.mem, plan->gn.mem, moments);
    digcl_groupnorm_total_add(&y.total, (double)C / s->config->groups * T, moments);
    download_rows(s, plan->in.mem, result, 0, in->H);
    return y;
}

static layer_out upsample(stream *s, const char *conv, layer_out x) {
    layer_out y = {(x.slot + 1) % 3, {0}};
    const conv_pass p = {.conv = conv, .K = 3, .upsample = 1, .out_total = &y.total};
    run_pass(s, &p, &s->t[x.slot], slot_tensor(s, y.slot, s->t[x.slot].C));
    return y;
}

static layer_out downsample(stream *s, const char *conv, layer_out x) {
    layer_out y = {(x.slot + 1) % 3, {0}};
    const conv_pass p = {.conv = conv, .K = 3, .stride = 2, .pads = DOWN, .out_total = &y.total};
    run_pass(s, &p, &s->t[x.slot], slot_tensor(s, y.slot, s->t[x.slot].C));
    return y;
}

static layer_out mid_block(stream *s, const char *side, layer_out x) {
    char name[VAE_NAME_MAX];
    const int C = s->t[x.slot].C;
    digcl_vae_format_name(name, "%s.mid_block.resnets.0", side);
    x = resnet(s, name, x, C);
    digcl_vae_format_name(name, "%s.mid_block.attentions.0", side);
    x = attention(s, name, x);
    digcl_vae_format_name(name, "%s.mid_block.resnets.1", side);
    return resnet(s, name, x, C);
}

static stream stream_of(digcl_context *ctx, const digcl_vae_config *c, const vae_weights *w,
                        vae_stream_plan *plan, stream_sizes *sizes) {
    stream s = {ctx, c, w, plan, {{0}}, sizes};
    for (int i = 0; i < 3; ++i) s.t[i].data = plan->host[i];
    return s;
}

/* image [3, 8h, 8w] -> moments [2 L, h, w], or with s->sizes the sizes only. */
static void encode_flow(stream s, const float *image, float *moments) {
    const digcl_vae_config *c = s.config;
    const vae_stream_plan *plan = s.plan;
    char name[VAE_NAME_MAX];
    const host_tensor input = {(float *)image, 3, 8 * plan->h, 8 * plan->w};
    layer_out x = {0, {0}};
    const conv_pass conv_in = {.conv = "encoder.conv_in", .K = 3, .out_total = &x.total};
    run_pass(&s, &conv_in, &input, slot_tensor(&s, 0, c->channels[0]));
    for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
        for (int j = 0; j < c->encoder_blocks; ++j) {
            digcl_vae_format_name(name, "encoder.down_blocks.%d.resnets.%d", i, j);
            x = resnet(&s, name, x, c->channels[i]);
        }
        if (i == DIGCL_VAE_LEVELS - 1) continue;
        digcl_vae_format_name(name, "encoder.down_blocks.%d.downsamplers.0.conv", i);
        x = downsample(&s, name, x);
    }
    x = mid_block(&s, "encoder", x);
    float stats[2 * DIGCL_GROUPNORM_MAX_GROUPS];
    digcl_groupnorm_total_stats(&x.total, c->eps, stats);
    const int head_slot = (x.slot + 1) % 3, L2 = 2 * c->latent_channels;
    const conv_pass head = {
        .conv = "encoder.conv_out", .K = 3, .norm = "encoder.conv_norm_out", .norm_stats = stats};
    run_pass(&s, &head, &s.t[x.slot], slot_tensor(&s, head_slot, L2));
    host_tensor result = {moments, L2, 0, 0};
    const conv_pass quant = {.conv = "quant_conv", .K = 1};
    run_pass(&s, &quant, &s.t[head_slot], &result);
}

/* z [L, h, w] -> image [3, 8h, 8w], or with s->sizes the sizes only. */
static void decode_flow(stream s, const float *z, float *image) {
    const digcl_vae_config *c = s.config;
    const vae_stream_plan *plan = s.plan;
    const int L = c->latent_channels, top = c->channels[DIGCL_VAE_LEVELS - 1];
    char name[VAE_NAME_MAX];
    const host_tensor latent = {(float *)z, L, plan->h, plan->w};
    const conv_pass post_quant = {.conv = "post_quant_conv", .K = 1};
    run_pass(&s, &post_quant, &latent, slot_tensor(&s, 0, L));
    layer_out x = {1, {0}};
    const conv_pass conv_in = {.conv = "decoder.conv_in", .K = 3, .out_total = &x.total};
    run_pass(&s, &conv_in, &s.t[0], slot_tensor(&s, 1, top));
    x = mid_block(&s, "decoder", x);
    for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
        const int out = c->channels[DIGCL_VAE_LEVELS - 1 - i];
        for (int j = 0; j < c->decoder_blocks; ++j) {
            digcl_vae_format_name(name, "decoder.up_blocks.%d.resnets.%d", i, j);
            x = resnet(&s, name, x, out);
        }
        if (i == DIGCL_VAE_LEVELS - 1) continue;
        digcl_vae_format_name(name, "decoder.up_blocks.%d.upsamplers.0.conv", i);
        x = upsample(&s, name, x);
    }
    float stats[2 * DIGCL_GROUPNORM_MAX_GROUPS];
    digcl_groupnorm_total_stats(&x.total, c->eps, stats);
    host_tensor result = {image, 3, 0, 0};
    const conv_pass head = {
        .conv = "decoder.conv_out", .K = 3, .norm = "decoder.conv_norm_out", .norm_stats = stats};
    run_pass(&s, &head, &s.t[x.slot], &result);
}

void digcl_vae_kl_encode_streamed(digcl_context *ctx, const digcl_vae_config *c,
                                  const vae_weights *w, vae_stream_plan *plan, const float *image,
                                  float *moments) {
    encode_flow(stream_of(ctx, c, w, plan, NULL), image, moments);
}

void digcl_vae_kl_decode_streamed(digcl_context *ctx, const digcl_vae_config *c,
                                  const vae_weights *w, vae_stream_plan *plan, const float *z,
                                  float *image) {
    decode_flow(stream_of(ctx, c, w, plan, NULL), z, image);
}

/* ---------------------------------------------------------------- plan sizes */

size_t digcl_vae_stream_plan_size(vae_stream_plan *p, const digcl_vae_config *c, int part, int h,
                                  int w, size_t strip_floats) {
    memset(p, 0, sizeof *p);
    p->part = part, p->h = h, p->w = w;
    stream_sizes sizes = {0};
    const stream dry = stream_of(NULL, c, NULL, p, &sizes); /* the network, sizes only */
    if (part == DIGCL_VAE_ENCODER) encode_flow(dry, NULL, NULL);
    else decode_flow(dry, NULL, NULL);
    const size_t T = (size_t)h * w;
    p->latent_floats = sizes.latent;
    p->strip_floats = max_size(strip_floats, max_size(sizes.strip, sizes.latent));
    for (int i = 0; i < 3; ++i) p->host_floats[i] = sizes.slot[i];
    digcl_groupnorm_shape g = {1, c->groups, (int)(p->strip_floats / (size_t)c->groups), c->groups,
                               c->eps};
    p->norm_floats = digcl_groupnorm_workspace_floats(&g);
    p->score_floats = digcl_vae_score_floats(T);
    return sizeof(float) *
           (5 * p->strip_floats + 3 * p->latent_floats + p->norm_floats + p->score_floats);
}

size_t digcl_vae_stream_host_bytes(const vae_stream_plan *p) {
    return sizeof(float) *
           (p->host_floats[0] + p->host_floats[1] + p->host_floats[2] + p->strip_floats);
}
