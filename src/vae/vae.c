/* vae.c: the public VAE API (digcl/vae.h): loading, per-tile plans and the tiled encode and
 * decode with linear-ramp blending of overlapping tiles (docs/VAE.md "Tiling"). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "digcl/conv2d.h"
#include "digcl/groupnorm.h"
#include "digcl/log.h"
#include "digcl/vae_ops.h"
#include "digcl/safetensors.h"
#include "vae_internal.h"

#define SCORE_CAP_FLOATS ((size_t)16 << 20) /* attention scores: 64 MiB per query block */
#define MIN_TILE         64                 /* image pixels */

struct digcl_vae {
    digcl_context *ctx;
    digcl_vae_config config;
    int parts;
    digcl_params *weights; /* the table of digcl_vae_table_build(config, parts) */
    vae_plan plans[3];     /* by part (index 1 encoder, 2 decoder), reused while the tile fits */
    vae_stream_plan streams[3]; /* the streamed KL passes' (by part), reused while they fit */
    char name[64];
    /* digcl_vae_encode_sample's buffers: host posterior and device z, logvar, eps, grown to
     * the largest batch asked for (a training run asks for one size: allocated once). */
    size_t sample_floats;
    float *host_mean, *host_logvar;
    digcl_buffer sample_z, sample_logvar, sample_eps;
};

/* ---------------------------------------------------------------- plans */

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

/* Floats of one activation buffer and the largest im2col of one pass. */
static void kl_sizes(const digcl_vae_config *c, int part, int H, int W, size_t *act, size_t *col) {
    const int h = H / 8, w = W / 8, top = c->channels[DIGCL_VAE_LEVELS - 1];
    size_t a = 3 * (size_t)top * h * w, k = (size_t)top * 9 * h * w; /* mid block */
    if (part == DIGCL_VAE_ENCODER) {
        int in = 3, y = H, x = W;
        for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
            const size_t pixels = (size_t)y * x,
                         wide = max_size((size_t)in, (size_t)c->channels[i]);
            a = max_size(a, wide * pixels), k = max_size(k, wide * 9 * pixels);
            in = c->channels[i], y = (y + 1 - 3) / 2 + 1, x = (x + 1 - 3) / 2 + 1;
        }
    } else {
        int in = top;
        for (int i = 0; i < DIGCL_VAE_LEVELS; ++i) {
            const int out = c->channels[DIGCL_VAE_LEVELS - 1 - i];
            const size_t pixels = (size_t)(h << i) * (size_t)(w << i);
            const size_t wide = max_size((size_t)in, (size_t)out);
            a = max_size(a, wide * pixels), k = max_size(k, wide * 9 * pixels);
            if (i < DIGCL_VAE_LEVELS - 1) /* the upsampled tensor and its conv */
                a = max_size(a, (size_t)out * 4 * pixels),
                k = max_size(k, (size_t)out * 36 * pixels);
            in = out;
        }
    }
    *act = a, *col = k;
}

size_t digcl_vae_plan_size(vae_plan *p, const digcl_vae_config *c, int part, int capacity, int H,
                           int W, int implicit_conv) {
    memset(p, 0, sizeof *p);
    p->part = part, p->H = H, p->W = W, p->capacity = capacity, p->N = capacity;
    const size_t pixels = (size_t)H * W, latent = pixels / 64;
    const int L = c->latent_channels;
    size_t col_full, min_col;
    if (c->kind == DIGCL_VAE_KL) {
        kl_sizes(c, part, H, W, &p->act_floats, &col_full);
        min_col = (size_t)c->channels[DIGCL_VAE_LEVELS - 1] * 9 * 64;
        digcl_groupnorm_shape g = {capacity, c->groups, (int)(p->act_floats / (size_t)c->groups),
                                   c->groups, c->eps};
        p->norm_floats = digcl_groupnorm_workspace_floats(&g);
        p->score_floats = digcl_vae_score_floats(latent);
    } else {
        p->act_floats = (size_t)c->channels[0] * pixels;
        col_full = p->act_floats * 9;
        min_col = (size_t)c->channels[0] * 9 * 64;
    }
    p->col_floats =
        col_full < max_size(p->act_floats, min_col) ? col_full : max_size(p->act_floats, min_col);
    if (implicit_conv) p->col_floats = 0;
    p->act_floats *= (size_t)capacity; /* the images of a pass side by side: [N, C, H, W] */
    const size_t in =
        (size_t)capacity * (part == DIGCL_VAE_ENCODER ? 3 * pixels : (size_t)L * latent);
    const size_t out =
        (size_t)capacity * (part == DIGCL_VAE_ENCODER ? 2 * (size_t)L * latent : 3 * pixels);
    return sizeof(float) *
           (3 * p->act_floats + p->col_floats + p->norm_floats + p->score_floats + in + out);
}

size_t digcl_vae_score_floats(size_t T) {
    return T * T < max_size(T, SCORE_CAP_FLOATS) ? T * T : max_size(T, SCORE_CAP_FLOATS);
}

digcl_buffer digcl_vae_buffer(digcl_context *ctx, size_t floats, const char *what) {
    return digcl_buffer_create(ctx, (floats ? floats : 1) * sizeof(float), what);
}

void digcl_vae_plan_allocate(digcl_context *ctx, vae_plan *p) {
    const size_t pixels = (size_t)p->H * p->W, latent = pixels / 64;
    const int enc = p->part == DIGCL_VAE_ENCODER;
    for (int i = 0; i < 3; ++i) p->act[i] = digcl_vae_buffer(ctx, p->act_floats, "vae activations");
    p->col = digcl_vae_buffer(ctx, p->col_floats, "vae im2col scratch");
    p->norm = digcl_vae_buffer(ctx, p->norm_floats, "vae group-norm scratch");
    p->scores = digcl_vae_buffer(ctx, p->score_floats, "vae attention scores");
    const size_t images = (size_t)p->capacity;
    p->input = digcl_vae_buffer(ctx, images * (enc ? 3 * pixels : 8 * latent), "vae input tiles");
    p->output = digcl_vae_buffer(ctx, images * (enc ? 8 * latent : 3 * pixels), "vae output tiles");
}

void digcl_vae_plan_release(vae_plan *p) {
    digcl_buffer *all[] = {&p->act[0], &p->act[1], &p->act[2], &p->col,
                           &p->norm,   &p->scores, &p->input,  &p->output};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; ++i)
        if (all[i]->mem) digcl_buffer_release(all[i]);
    memset(p, 0, sizeof *p);
}

/* ---------------------------------------------------------------- loading */

/* The store of the table of (config, parts), zeroed. */
static void create_weights(digcl_vae *vae) {
    digcl_param_table table;
    digcl_vae_table_build(&table, &vae->config, vae->parts);
    vae->weights = digcl_params_create(vae->ctx, &table, "vae weights");
    digcl_param_table_free(&table);
}

/* A reduced KL network (tests, the committed fixtures) describes itself in the file's
 * __metadata__: "channels" "(16, 32, 32, 32)", "groups", "eps", "encoder_blocks",
 * "decoder_blocks"; each key present replaces the published value. */
static void kl_config_from_metadata(const digcl_safetensors *st, digcl_vae_config *c) {
    const char *channels = digcl_st_metadata(st, "channels");
    int v[DIGCL_VAE_LEVELS];
    if (channels && sscanf(channels, " (%d, %d, %d, %d)", &v[0], &v[1], &v[2], &v[3]) == 4 &&
        v[0] > 0 && v[1] > 0 && v[2] > 0 && v[3] > 0)
        memcpy(c->channels, v, sizeof v);
    const char *keys[] = {"groups", "encoder_blocks", "decoder_blocks"};
    int *fields[] = {&c->groups, &c->encoder_blocks, &c->decoder_blocks};
    for (int i = 0; i < 3; ++i) {
        const char *text = digcl_st_metadata(st, keys[i]);
        const long value = text ? strtol(text, NULL, 10) : 0;
        if (value > 0 && value < 4096) *fields[i] = (int)value;
    }
    const char *eps = digcl_st_metadata(st, "eps");
    const double e = eps ? strtod(eps, NULL) : 0.0;
    if (e > 0.0 && e < 1.0) c->eps = (float)e;
}

digcl_vae *digcl_vae_load(digcl_context *ctx, const char *path,
                          const digcl_vae_load_options *options, char *error, size_t size) {
    digcl_st_error err;
    digcl_safetensors *st = NULL;
    if (digcl_st_open(path, &st, &err) != 0) {
        snprintf(error, size, "%s", err.message);
        return NULL;
    }
    const digcl_vae_load_options none = {0, NULL, 0};
    if (!options) options = &none;
    const digcl_vae_kind kind = options->kind ? options->kind : digcl_vae_kind_of_file(st);
    digcl_vae *vae = calloc(1, sizeof *vae);
    if (!vae) digcl_fatal("vae: out of host memory");
    vae->ctx = ctx;
    vae->config = options->config           ? *options->config
                  : kind == DIGCL_VAE_TAESD ? digcl_vae_config_taesd()
                                            : digcl_vae_config_sd();
    if (!options->config && vae->config.kind == DIGCL_VAE_KL)
        kl_config_from_metadata(st, &vae->config);
    if (!options->config &&
        vae->config.kind == DIGCL_VAE_TAESD) { /* the width from the first conv */
        static const char *const first[] = {"encoder.layers.0.weight", "decoder.layers.0.weight",
                                            "0.weight", "1.weight"};
        for (int i = 0; i < 4; ++i) {
            const digcl_st_tensor *t = digcl_st_find(st, first[i]);
            if (!t || t->rank != 4) continue;
            for (int l = 0; l < DIGCL_VAE_LEVELS; ++l) vae->config.channels[l] = (int)t->shape[0];
            break;
        }
    }
    const int present = digcl_vae_parts_in_file(st, &vae->config);
    vae->parts = options->parts ? options->parts : present;
    if (!vae->parts) {
        snprintf(error, size, "%s: no %s encoder or decoder found (looked for '%s')", path,
                 vae->config.kind == DIGCL_VAE_TAESD ? "TAESD" : "AutoencoderKL",
                 vae->config.kind == DIGCL_VAE_TAESD ? "encoder.layers.0.weight"
                                                     : "encoder.conv_in.weight");
        free(vae), digcl_st_close(st);
        return NULL;
    }
    create_weights(vae);
    if (digcl_vae_params_load(vae->weights, st, &vae->config, error, size) != 0) {
        digcl_params_release(vae->weights), free(vae), digcl_st_close(st);
        return NULL;
    }
    const char *name = digcl_st_metadata(st, "name");
    snprintf(vae->name, sizeof vae->name, "%s",
             name                                  ? name
             : vae->config.kind == DIGCL_VAE_TAESD ? "taesd"
                                                   : "sd-vae-kl-f8");
    digcl_st_close(st);
    digcl_log(DIGCL_LOG_DEBUG, "vae: %s from %s (%zu tensors, parts %d)", vae->name, path,
              digcl_params_table(vae->weights)->count, vae->parts);
    return vae;
}

digcl_vae *digcl_vae_create_random(digcl_context *ctx, const digcl_vae_config *config, int parts,
                                   uint64_t seed) {
    digcl_vae *vae = calloc(1, sizeof *vae);
    if (!vae) digcl_fatal("vae: out of host memory");
    vae->ctx = ctx, vae->config = *config, vae->parts = parts;
    create_weights(vae);
    const digcl_param_table *table = digcl_params_table(vae->weights);
    float *host = malloc((table->total ? table->total : 1) * sizeof *host); /* packed */
    if (!host) digcl_fatal("vae: out of host memory for %zu weights", table->total);
    uint64_t state = seed * 0x9E3779B97F4A7C15ull + 1;
    for (size_t i = 0; i < table->count; ++i) {
        const digcl_param_info *t = &table->params[i];
        const size_t fan_in = t->rank >= 2 ? t->numel / (size_t)t->shape[0] : 0;
        const int gamma = t->rank == 1 && strstr(t->name, "norm") && strstr(t->name, ".weight");
        const double a = fan_in ? sqrt(3.0 / (double)fan_in) : 0.01;
        for (size_t k = 0; k < t->numel; ++k) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const double u = (double)(state >> 11) / 9007199254740992.0 * 2.0 - 1.0;
            host[t->offset + k] = gamma ? 1.0f : (float)(a * u);
        }
        digcl_params_write(vae->weights, i, host + t->offset);
    }
    snprintf(vae->name, sizeof vae->name, "%s-random",
             config->kind == DIGCL_VAE_TAESD ? "taesd" : "sd-vae-kl-f8");
    free(host);
    return vae;
}

static void release_sample_buffers(digcl_vae *vae) {
    digcl_buffer *all[] = {&vae->sample_z, &vae->sample_logvar, &vae->sample_eps};
    for (int i = 0; i < 3; ++i)
        if (all[i]->mem) digcl_buffer_release(all[i]);
    free(vae->host_mean), free(vae->host_logvar);
    vae->host_mean = vae->host_logvar = NULL;
    vae->sample_floats = 0;
}

void digcl_vae_free(digcl_vae *vae) {
    if (!vae) return;
    release_sample_buffers(vae);
    for (int i = 0; i < 3; ++i) digcl_vae_plan_release(&vae->plans[i]);
    for (int i = 0; i < 3; ++i) digcl_vae_stream_plan_release(&vae->streams[i]);
    digcl_params_release(vae->weights);
    free(vae);
}

const digcl_vae_config *digcl_vae_get_config(const digcl_vae *vae) { return &vae->config; }
int digcl_vae_parts(const digcl_vae *vae) { return vae->parts; }
const char *digcl_vae_name(const digcl_vae *vae) { return vae->name; }

/* ---------------------------------------------------------------- tiling */

static size_t budget(const digcl_vae *vae, const digcl_vae_tiling *tiling) {
    if (tiling && tiling->max_memory) return tiling->max_memory;
    const digcl_device_info *d = digcl_context_device(vae->ctx);
    const digcl_memory_stats m = digcl_memory_stats_get(vae->ctx);
    const double free_bytes = (double)d->global_mem_bytes - (double)m.in_use_bytes;
    return free_bytes > 0 ? (size_t)(0.8 * free_bytes) : 0;
}

static size_t plan_size(const digcl_vae *vae, vae_plan *p, int part, int capacity, int H, int W) {
    return digcl_vae_plan_size(p, &vae->config, part, capacity, H, W,
                               digcl_conv2d_implicit(vae->ctx));
}

static int fits(const digcl_vae *vae, int part, int capacity, int H, int W, size_t limit,
                size_t *bytes) {
    vae_plan p;
    *bytes = plan_size(vae, &p, part, capacity, H, W);
    const uint64_t max_alloc = digcl_context_device(vae->ctx)->max_alloc_bytes;
    const size_t biggest =
        sizeof(float) * max_size(max_size(p.act_floats, p.col_floats), p.score_floats);
    return *bytes <= limit && biggest <= max_alloc;
}

/* Images per untiled pass: about a megapixel (as one 1024 px image, which fills a large
 * device), halved until the memory limit holds them, at least 1. */
static int images_per_pass(const digcl_vae *vae, int part, int H, int W, size_t limit) {
    const size_t per_pass = ((size_t)1 << 20) / ((size_t)H * W);
    int images = per_pass < 1 ? 1 : per_pass > 4096 ? 4096 : (int)per_pass;
    size_t bytes;
    while (images > 1 && !fits(vae, part, images, H, W, limit, &bytes)) images = (images + 1) / 2;
    return images;
}

/* MemAvailable of /proc/meminfo (Linux), else the physical memory. */
static double available_host_bytes(void) {
    FILE *f = fopen("/proc/meminfo", "r");
    char line[256];
    double kib = -1.0;
    while (f && kib < 0 && fgets(line, sizeof line, f))
        if (sscanf(line, "MemAvailable: %lf kB", &kib) != 1) kib = -1.0;
    if (f) fclose(f);
    if (kib >= 0) return kib * 1024.0;
    return (double)sysconf(_SC_PHYS_PAGES) * (double)sysconf(_SC_PAGESIZE);
}

/* The strip buffers of a streamed pass in the device memory of one tile pass: five strip
 * buffers (input, normalised, output, residual, im2col) in about five sixths of it. */
static size_t strip_floats(size_t tile_bytes) { return tile_bytes / sizeof(float) / 6; }

digcl_vae_tile_plan digcl_vae_plan_tiles(const digcl_vae *vae, int part, int H, int W,
                                         const digcl_vae_tiling *tiling) {
    digcl_vae_tile_plan t = {0, H, W, 0, 0, 0, 0, 1};
    const size_t limit = budget(vae, tiling);
    const int asked = tiling ? tiling->tile_size : 0;
    if (asked > 0 && (asked < H || asked < W)) {
        t.tiled = 1;
        t.tile_height = asked < H ? asked : H, t.tile_width = asked < W ? asked : W;
    } else if (asked <= 0 && !fits(vae, part, 1, H, W, limit, &t.bytes)) {
        int side = (H > W ? H : W) / 8 * 8;
        while (side > MIN_TILE &&
               !fits(vae, part, 1, side < H ? side : H, side < W ? side : W, limit, &t.bytes))
            side = (side / 2 + 7) / 8 * 8;
        t.tiled = 1;
        t.tile_height = side < H ? side : H, t.tile_width = side < W ? side : W;
    }
    if (t.tiled) {
        const int overlap = tiling && tiling->tile_overlap >= 0
                                ? tiling->tile_overlap
                                : (t.tile_height < t.tile_width ? t.tile_height : t.tile_width) / 4;
        t.overlap = overlap / 8 * 8;
    }
    vae_plan p;
    t.bytes = plan_size(vae, &p, part, 1, t.tile_height, t.tile_width);
    if (t.tiled && vae->config.kind == DIGCL_VAE_KL) {
        vae_stream_plan sp;
        const size_t bytes = digcl_vae_stream_plan_size(&sp, &vae->config, part, H / 8, W / 8,
                                                        strip_floats(t.bytes));
        const size_t host = digcl_vae_stream_host_bytes(&sp);
        if ((double)host <= 0.8 * (double)available_host_bytes()) /* else overlapping tiles */
            t.streamed = 1, t.overlap = 0, t.bytes = bytes, t.host_bytes = host;
    }
    if (!t.tiled) t.images = images_per_pass(vae, part, H, W, limit);
    return t;
}

/* The plan of `part` for passes of up to `capacity` tiles of H x W, reused while it is the same;
 * its N is set to `capacity`. */
static vae_plan *plan_for(digcl_vae *vae, int part, int capacity, int H, int W) {
    vae_plan *p = &vae->plans[part];
    if (!(p->act[0].mem && p->H == H && p->W == W && p->capacity == capacity)) {
        digcl_vae_plan_release(p);
        plan_size(vae, p, part, capacity, H, W);
        digcl_vae_plan_allocate(vae->ctx, p);
    }
    p->N = capacity;
    return p;
}

/* The stream plan of a pass of `part` planned as t (whose bytes are the stream plan's). */
static vae_stream_plan *stream_plan_for(digcl_vae *vae, int part, int h, int w,
                                        const digcl_vae_tile_plan *t) {
    vae_stream_plan *p = &vae->streams[part], wanted;
    vae_plan tile;
    const size_t tile_bytes = plan_size(vae, &tile, part, 1, t->tile_height, t->tile_width);
    digcl_vae_stream_plan_size(&wanted, &vae->config, part, h, w, strip_floats(tile_bytes));
    if (p->in.mem && p->h == h && p->w == w && p->strip_floats == wanted.strip_floats) return p;
    digcl_vae_stream_plan_release(p);
    *p = wanted;
    digcl_vae_stream_plan_allocate(vae->ctx, p);
    return p;
}

/* Tile starts along one axis of `size` latent pixels: tiles of `tile`, stepping by
 * tile - overlap, the last one flush with the end. Returns the count. */
static int tile_starts(int size, int tile, int overlap, int *starts, int max) {
    if (tile >= size) return starts[0] = 0, 1;
    const int step = tile - overlap > 0 ? tile - overlap : tile;
    int n = 0;
    for (int s = 0; n < max; s += step) {
        if (s + tile >= size) {
            starts[n++] = size - tile;
            break;
        }
        starts[n++] = s;
    }
    return n;
}

/* Blend weight of position i (0..tile) of a tile along one axis. On each side that borders
 * another tile, the outer quarter of the overlap is dropped (weight 0: the pixels nearest the
 * tile's cut see zero padding instead of their neighbours) and the middle half is a linear
 * ramp; `overlap` in output pixels. */
static float ramp_weight(int i, int tile, int overlap, int first, int last) {
    if (overlap < 4) return 1.0f;
    const float dead = overlap / 4.0f, ramp = overlap / 2.0f;
    float w = 1.0f;
    if (!first) w = fminf(w, fmaxf(0.0f, (i + 0.5f - dead) / ramp));
    if (!last) w = fminf(w, fmaxf(0.0f, (tile - i - 0.5f - dead) / ramp));
    return w;
}

typedef struct tile_job {
    int part;
    int in_channels, out_channels; /* of the tensors being tiled */
    int in_factor, out_factor;     /* pixels per latent pixel: 8 for images, 1 for latents */
} tile_job;

/* The network of `part` over the plan's N tiles (plan->input -> plan->output). */
static void run_network(digcl_vae *vae, int part, vae_plan *plan) {
    const vae_weights weights = {vae->weights, digcl_params_buffer(vae->weights)};
    const int kl = vae->config.kind == DIGCL_VAE_KL;
    if (part == DIGCL_VAE_ENCODER)
        kl ? digcl_vae_kl_encode(vae->ctx, &vae->config, &weights, plan)
           : digcl_vae_taesd_encode(vae->ctx, &vae->config, &weights, plan);
    else
        kl ? digcl_vae_kl_decode(vae->ctx, &vae->config, &weights, plan)
           : digcl_vae_taesd_decode(vae->ctx, &vae->config, &weights, plan);
}

/* Runs `part` untiled over N whole images, t->images per pass: in [N, in_channels, h fi, w fi]
 * -> out [N, out_channels, h fo, w fo]; h, w in latent pixels. */
static void run_batched(digcl_vae *vae, const tile_job *job, const digcl_vae_tile_plan *t, int N,
                        int h, int w, const float *in, float *out) {
    const int images = t->images < N ? t->images : N;
    vae_plan *plan = plan_for(vae, job->part, images, 8 * h, 8 * w);
    const size_t plane = (size_t)h * w;
    const size_t in_image = (size_t)job->in_channels * plane * job->in_factor * job->in_factor;
    const size_t out_image = (size_t)job->out_channels * plane * job->out_factor * job->out_factor;
    for (int n = 0; n < N; n += images) {
        plan->N = N - n < images ? N - n : images;
        digcl_write(vae->ctx, plan->input.mem, 0, plan->N * in_image * sizeof *in,
                    in + n * in_image);
        run_network(vae, job->part, plan);
        digcl_read(vae->ctx, plan->output.mem, 0, plan->N * out_image * sizeof *out,
                   out + n * out_image);
    }
}

/* Runs `part` over every tile of one image, blending into out [out_channels, h f, w f].
 * in [in_channels, h fi, w fi]; h, w in latent pixels. */
static void run_tiled(digcl_vae *vae, const tile_job *job, const digcl_vae_tile_plan *t, int h,
                      int w, const float *in, float *out) {
    const int th = t->tile_height / 8, tw = t->tile_width / 8, overlap = t->overlap / 8;
    enum { MAX_TILES = 4096 };
    int ys[MAX_TILES], xs[MAX_TILES];
    const int ny = tile_starts(h, th, overlap, ys, MAX_TILES);
    const int nx = tile_starts(w, tw, overlap, xs, MAX_TILES);
    vae_plan *plan = plan_for(vae, job->part, 1, th * 8, tw * 8);
    const int fi = job->in_factor, fo = job->out_factor, ramp = overlap * fo;
    const size_t in_tile = (size_t)job->in_channels * th * fi * tw * fi;
    const size_t out_tile = (size_t)job->out_channels * th * fo * tw * fo;
    const size_t out_plane = (size_t)h * fo * w * fo;
    float *tin = malloc(in_tile * sizeof *tin), *tout = malloc(out_tile * sizeof *tout);
    float *wsum = calloc(out_plane, sizeof *wsum);
    if (!tin || !tout || !wsum) digcl_fatal("vae: out of host memory for tiles");
    memset(out, 0, out_plane * job->out_channels * sizeof *out);
    for (int a = 0; a < ny; ++a)
        for (int b = 0; b < nx; ++b) {
            const int Hi = h * fi, Wi = w * fi, y0 = ys[a] * fi, x0 = xs[b] * fi;
            for (int c = 0; c < job->in_channels; ++c)
                for (int i = 0; i < th * fi; ++i)
                    memcpy(tin + ((size_t)c * th * fi + i) * tw * fi,
                           in + ((size_t)c * Hi + y0 + i) * Wi + x0, (size_t)tw * fi * sizeof *in);
            digcl_write(vae->ctx, plan->input.mem, 0, in_tile * sizeof *tin, tin);
            run_network(vae, job->part, plan);
            digcl_read(vae->ctx, plan->output.mem, 0, out_tile * sizeof *tout, tout);
            const int Ho = h * fo, Wo = w * fo, oy = ys[a] * fo, ox = xs[b] * fo;
            for (int i = 0; i < th * fo; ++i) {
                const float wy = ramp_weight(i, th * fo, ramp, a == 0, a == ny - 1);
                for (int j = 0; j < tw * fo; ++j) {
                    const float wgt = wy * ramp_weight(j, tw * fo, ramp, b == 0, b == nx - 1);
                    const size_t at = (size_t)(oy + i) * Wo + ox + j;
                    wsum[at] += wgt;
                    for (int c = 0; c < job->out_channels; ++c)
                        out[(size_t)c * Ho * Wo + at] +=
                            wgt * tout[((size_t)c * th * fo + i) * tw * fo + j];
                }
            }
        }
    for (size_t at = 0; at < out_plane; ++at)
        for (int c = 0; c < job->out_channels; ++c) out[(size_t)c * out_plane + at] /= wsum[at];
    free(tin), free(tout), free(wsum);
}

static void require_part(const digcl_vae *vae, int part, const char *what) {
    if (!(vae->parts & part))
        digcl_fatal("vae: %s needs the %s, which was not loaded", what,
                    part == DIGCL_VAE_ENCODER ? "encoder" : "decoder");
}

void digcl_vae_encode(digcl_vae *vae, const digcl_vae_tiling *tiling, int N, int H, int W,
                      const float *images, float *mean, float *logvar) {
    require_part(vae, DIGCL_VAE_ENCODER, "encode");
    if (N < 1 || H < 8 || W < 8 || H % 8 || W % 8)
        digcl_fatal("vae encode: images of %dx%d (N = %d); expected sides that are multiples of 8",
                    H, W, N);
    const int L = vae->config.latent_channels, h = H / 8, w = W / 8;
    const digcl_vae_tile_plan t = digcl_vae_plan_tiles(vae, DIGCL_VAE_ENCODER, H, W, tiling);
    const tile_job job = {DIGCL_VAE_ENCODER, 3, vae->config.kind == DIGCL_VAE_KL ? 2 * L : L, 8, 1};
    const size_t plane = (size_t)h * w, image = (size_t)3 * H * W;
    const size_t moment_floats = (size_t)job.out_channels * plane;
    float *moments = malloc((size_t)N * moment_floats * sizeof *moments);
    if (!moments) digcl_fatal("vae encode: out of host memory");
    const vae_weights weights = {vae->weights, digcl_params_buffer(vae->weights)};
    vae_stream_plan *stream = t.streamed ? stream_plan_for(vae, DIGCL_VAE_ENCODER, h, w, &t) : NULL;
    if (!t.tiled) run_batched(vae, &job, &t, N, h, w, images, moments);
    else
        for (int n = 0; n < N; ++n) {
            if (stream)
                digcl_vae_kl_encode_streamed(vae->ctx, &vae->config, &weights, stream,
                                             images + n * image, moments + n * moment_floats);
            else run_tiled(vae, &job, &t, h, w, images + n * image, moments + n * moment_floats);
        }
    for (int n = 0; n < N; ++n) {
        const float *m = moments + n * moment_floats;
        for (size_t i = 0; i < (size_t)L * plane; ++i) {
            mean[n * L * plane + i] = m[i];
            if (!logvar) continue;
            float lv = job.out_channels == 2 * L ? m[L * plane + i] : DIGCL_VAE_LOGVAR_MIN;
            logvar[n * L * plane + i] =
                fminf(fmaxf(lv, DIGCL_VAE_LOGVAR_MIN), DIGCL_VAE_LOGVAR_MAX);
        }
    }
    free(moments);
}

void digcl_vae_decode(digcl_vae *vae, const digcl_vae_tiling *tiling, int N, int h, int w,
                      const float *latents, float latent_scale, float *images) {
    require_part(vae, DIGCL_VAE_DECODER, "decode");
    if (N < 1 || h < 1 || w < 1 || !(latent_scale > 0.0f))
        digcl_fatal("vae decode: latents of %dx%d (N = %d), scale %g", h, w, N,
                    (double)latent_scale);
    const int L = vae->config.latent_channels;
    const digcl_vae_tile_plan t =
        digcl_vae_plan_tiles(vae, DIGCL_VAE_DECODER, 8 * h, 8 * w, tiling);
    const tile_job job = {DIGCL_VAE_DECODER, L, 3, 1, 8};
    const size_t plane = (size_t)h * w, latent = (size_t)L * plane;
    float *z = malloc((size_t)N * latent * sizeof *z);
    if (!z) digcl_fatal("vae decode: out of host memory");
    for (size_t i = 0; i < (size_t)N * latent; ++i) z[i] = latents[i] / latent_scale;
    const vae_weights weights = {vae->weights, digcl_params_buffer(vae->weights)};
    vae_stream_plan *stream = t.streamed ? stream_plan_for(vae, DIGCL_VAE_DECODER, h, w, &t) : NULL;
    if (!t.tiled) run_batched(vae, &job, &t, N, h, w, z, images);
    else
        for (int n = 0; n < N; ++n) {
            float *image = images + (size_t)n * 3 * 64 * plane;
            if (stream)
                digcl_vae_kl_decode_streamed(vae->ctx, &vae->config, &weights, stream,
                                             z + n * latent, image);
            else run_tiled(vae, &job, &t, h, w, z + n * latent, image);
        }
    free(z);
}

void digcl_vae_encode_sample(digcl_vae *vae, const digcl_vae_tiling *tiling, int N, int H, int W,
                             const float *images, digcl_rng_key key, uint64_t step,
                             uint64_t first_sample, float scale, float *latents) {
    const size_t row = (size_t)vae->config.latent_channels * (H / 8) * (W / 8);
    const size_t count = (size_t)(N > 0 ? N : 1) * row;
    if (count > vae->sample_floats) {
        release_sample_buffers(vae);
        vae->host_mean = malloc(count * sizeof(float));
        vae->host_logvar = malloc(count * sizeof(float));
        if (!vae->host_mean || !vae->host_logvar)
            digcl_fatal("vae encode: out of host memory for %zu latents", count);
        vae->sample_z = digcl_vae_buffer(vae->ctx, count, "vae posterior sample");
        vae->sample_logvar = digcl_vae_buffer(vae->ctx, count, "vae posterior logvar");
        vae->sample_eps = digcl_vae_buffer(vae->ctx, count, "vae posterior eps");
        vae->sample_floats = count;
    }
    digcl_vae_encode(vae, tiling, N, H, W, images, vae->host_mean, vae->host_logvar);
    digcl_write(vae->ctx, vae->sample_z.mem, 0, count * sizeof(float), vae->host_mean);
    digcl_write(vae->ctx, vae->sample_logvar.mem, 0, count * sizeof(float), vae->host_logvar);
    digcl_rng_fill_normal(vae->ctx, key, step, first_sample, (size_t)N, row, vae->sample_eps.mem);
    digcl_posterior_sample_forward(vae->ctx, count, scale, vae->sample_z.mem,
                                   vae->sample_logvar.mem, vae->sample_eps.mem);
    digcl_read(vae->ctx, vae->sample_z.mem, 0, count * sizeof(float), latents);
}
