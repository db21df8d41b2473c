/* `digcl bench ops` family "spatial": patch embedding / unpatchify,
 * embeddings, the SREM depthwise conv and reorientation, and the DiT softmax
 * attention, at DiG-S/2 training shapes (N=32, latent 32x32x4, p=2, T=256,
 * D=384, H=6, dh=64) and at high resolution (N=1, latent 224x224x4, T=12544).
 *
 * Each row is the time of one op, enqueued INNER times per timed call.
 * Bytes are the minimum traffic (each input read once, each output written
 * once); attention flops are 4 N H T^2 dh forward and 2.5x that backward. */
#include <stdio.h>
#include <stdlib.h>

#include "bench.h"
#include "digcl/attention.h"
#include "digcl/conv.h"
#include "digcl/embed.h"
#include "digcl/patch.h"
#include "digcl/srem.h"

enum { WARMUP = 2, REPEATS = 10, INNER = 10, OUT_CHANNELS = 8, NUM_CLASSES = 1000 };

typedef struct spatial_setup {
    int N, latent, channels, p, T, side, D, H, head_dim;
    digcl_patch_shape patch, unpatch;
    digcl_grid_shape grid;
    digcl_attention_shape attention;
    digcl_buffer image, weight, bias, dweight, dbias, pos, tokens, patch_workspace, final_x,
        final_image;
    digcl_buffer timesteps, frequencies, time_embedding, labels, table, label_out, dtable;
    digcl_buffer x, y, dy, dx, conv_weight, conv_bias, dconv_weight, dconv_bias, conv_workspace;
    digcl_buffer qkv, out, lse, dout, dqkv, attention_workspace;
} spatial_setup;

static digcl_buffer filled(digcl_context *ctx, size_t floats, float value, const char *what) {
    digcl_buffer buffer = digcl_buffer_create(ctx, (floats ? floats : 1) * sizeof(float), what);
    digcl_fill_f32(ctx, buffer.mem, 0, floats ? floats : 1, value);
    return buffer;
}

static void setup_shapes(spatial_setup *s, int N, int latent) {
    s->N = N, s->latent = latent, s->channels = 4, s->p = 2, s->D = 384, s->H = 6;
    s->head_dim = 64;
    s->side = latent / s->p, s->T = s->side * s->side;
    s->patch = (digcl_patch_shape){N, s->channels, latent, latent, s->p};
    s->unpatch = (digcl_patch_shape){N, OUT_CHANNELS, latent, latent, s->p};
    s->grid = (digcl_grid_shape){N, s->side, s->side, s->D};
    s->attention = (digcl_attention_shape){N, s->T, s->H, s->head_dim};
}

static void setup_buffers(digcl_context *ctx, spatial_setup *s) {
    const size_t N = (size_t)s->N, T = (size_t)s->T, D = (size_t)s->D;
    const size_t image = N * (size_t)s->channels * (size_t)s->latent * (size_t)s->latent;
    const size_t K = (size_t)digcl_patch_features(&s->patch);
    const size_t final_features = (size_t)digcl_patch_features(&s->unpatch);
    s->image = filled(ctx, image, 0.5f, "bench image");
    s->weight = filled(ctx, D * K, 0.01f, "bench patch weight");
    s->bias = filled(ctx, D, 0.1f, "bench patch bias");
    s->dweight = filled(ctx, D * K, 0.0f, "bench patch weight grad");
    s->dbias = filled(ctx, D, 0.0f, "bench patch bias grad");
    s->pos = filled(ctx, T * D, 0.2f, "bench pos embed");
    s->tokens = filled(ctx, N * T * D, 0.0f, "bench tokens");
    s->patch_workspace = filled(ctx, digcl_patch_embed_workspace_bytes(&s->patch, s->D) / 4, 0.0f,
                                "bench patch workspace");
    s->final_x = filled(ctx, N * T * final_features, 0.3f, "bench final tokens");
    s->final_image = filled(ctx, N * (size_t)OUT_CHANNELS * (size_t)s->latent * (size_t)s->latent,
                            0.0f, "bench final image");
    s->timesteps = filled(ctx, N, 500.0f, "bench timesteps");
    s->frequencies = filled(ctx, DIGCL_TIMESTEP_FREQUENCY_DIM, 0.0f, "bench frequencies");
    s->time_embedding = filled(ctx, N * DIGCL_TIMESTEP_FREQUENCY_DIM, 0.0f, "bench t embedding");
    s->labels = digcl_buffer_create(ctx, N * sizeof(int), "bench labels");
    int *labels = malloc(N * sizeof *labels);
    for (size_t n = 0; n < N; n++) labels[n] = (int)((n * 7919) % (NUM_CLASSES + 1));
    digcl_write(ctx, s->labels.mem, 0, N * sizeof(int), labels);
    free(labels);
    s->table = filled(ctx, (NUM_CLASSES + 1) * D, 0.02f, "bench label table");
    s->label_out = filled(ctx, N * D, 0.0f, "bench label out");
    s->dtable = filled(ctx, (NUM_CLASSES + 1) * D, 0.0f, "bench label grad");
    s->x = filled(ctx, N * T * D, 0.5f, "bench x");
    s->y = filled(ctx, N * T * D, 0.0f, "bench y");
    s->dy = filled(ctx, N * T * D, 0.25f, "bench dy");
    s->dx = filled(ctx, N * T * D, 0.0f, "bench dx");
    s->conv_weight = filled(ctx, 9 * D, 0.1f, "bench conv weight");
    s->conv_bias = filled(ctx, D, 0.0f, "bench conv bias");
    s->dconv_weight = filled(ctx, 9 * D, 0.0f, "bench conv weight grad");
    s->dconv_bias = filled(ctx, D, 0.0f, "bench conv bias grad");
    s->conv_workspace = filled(ctx, digcl_depthwise_conv_workspace_bytes(&s->grid) / 4, 0.0f,
                               "bench conv workspace");
    s->qkv = filled(ctx, 3 * N * T * D, 0.05f, "bench qkv");
    s->out = filled(ctx, N * T * D, 0.0f, "bench attention out");
    s->lse = filled(ctx, N * (size_t)s->H * T, 0.0f, "bench logsumexp");
    s->dout = filled(ctx, N * T * D, 0.01f, "bench attention dout");
    s->dqkv = filled(ctx, 3 * N * T * D, 0.0f, "bench dqkv");
    s->attention_workspace =
        filled(ctx, digcl_attention_backward_workspace_bytes(&s->attention) / 4, 0.0f,
               "bench attention workspace");
}

static void release_buffers(spatial_setup *s) {
    digcl_buffer *all[] = {&s->image,
                           &s->weight,
                           &s->bias,
                           &s->dweight,
                           &s->dbias,
                           &s->pos,
                           &s->tokens,
                           &s->patch_workspace,
                           &s->final_x,
                           &s->final_image,
                           &s->timesteps,
                           &s->frequencies,
                           &s->time_embedding,
                           &s->labels,
                           &s->table,
                           &s->label_out,
                           &s->dtable,
                           &s->x,
                           &s->y,
                           &s->dy,
                           &s->dx,
                           &s->conv_weight,
                           &s->conv_bias,
                           &s->dconv_weight,
                           &s->dconv_bias,
                           &s->conv_workspace,
                           &s->qkv,
                           &s->out,
                           &s->lse,
                           &s->dout,
                           &s->dqkv,
                           &s->attention_workspace};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) digcl_buffer_release(all[i]);
}

/* ---------------------------------------------------------- the timed calls */

static void run_patchify(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_patchify_forward(ctx, &s->patch, s->image.mem, s->patch_workspace.mem);
}
static void run_patch_embed_forward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_patch_embed_forward(ctx, &s->patch, s->D, s->image.mem, s->weight.mem, s->bias.mem,
                              s->pos.mem, s->tokens.mem, s->patch_workspace.mem);
}
static void run_patch_embed_backward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_patch_embed_backward(ctx, &s->patch, s->D, s->image.mem, s->weight.mem, s->dy.mem,
                               s->dweight.mem, s->dbias.mem, NULL, s->patch_workspace.mem);
}
static void run_unpatchify_forward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_unpatchify_forward(ctx, &s->unpatch, s->final_x.mem, s->final_image.mem);
}
static void run_unpatchify_backward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_unpatchify_backward(ctx, &s->unpatch, s->final_image.mem, s->final_x.mem);
}
static void run_timestep(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_timestep_embed_forward(ctx, s->N, DIGCL_TIMESTEP_FREQUENCY_DIM, s->timesteps.mem,
                                 s->frequencies.mem, s->time_embedding.mem);
}
static void run_label_forward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_label_embed_forward(ctx, s->N, s->D, NUM_CLASSES + 1, 1, s->labels.mem, s->table.mem,
                              s->label_out.mem);
}
static void run_label_backward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_label_embed_backward(ctx, s->N, s->D, NUM_CLASSES + 1, s->labels.mem, s->label_out.mem,
                               s->dtable.mem);
}
static void run_conv_forward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_depthwise_conv_forward(ctx, &s->grid, s->x.mem, s->conv_weight.mem, s->conv_bias.mem,
                                 s->y.mem);
}
static void run_conv_backward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_depthwise_conv_backward(ctx, &s->grid, s->x.mem, s->conv_weight.mem, s->dy.mem, s->dx.mem,
                                  s->dconv_weight.mem, s->dconv_bias.mem, s->conv_workspace.mem);
}
static void run_srem_forward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_srem_forward(ctx, DIGCL_SCAN_ROWS_REVERSED, s->N, s->side, s->D, s->x.mem, s->y.mem);
}
static void run_srem_backward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_srem_backward(ctx, DIGCL_SCAN_ROWS_REVERSED, s->N, s->side, s->D, s->dy.mem, s->dx.mem);
}
static void run_attention_forward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_attention_forward(ctx, &s->attention, s->qkv.mem, s->out.mem, s->lse.mem);
}
static void run_attention_backward(digcl_context *ctx, void *arg) {
    spatial_setup *s = arg;
    digcl_attention_backward(ctx, &s->attention, s->qkv.mem, s->out.mem, s->lse.mem, s->dout.mem,
                             s->dqkv.mem, s->attention_workspace.mem);
}

/* ---------------------------------------------------------- table */

/* Each timed call enqueues the op INNER times before one digcl_finish (as in
 * bench_ops_dense.c), so host launch and sync overhead is amortised and the row
 * shows the device time of one op. */
typedef struct inner_call {
    bench_fn run;
    spatial_setup *setup;
} inner_call;

static void run_inner(digcl_context *ctx, void *arg) {
    const inner_call *call = arg;
    for (int i = 0; i < INNER; i++) call->run(ctx, call->setup);
}

typedef struct spatial_case {
    const char *name;
    bench_fn run;
    double bytes, flops;
} spatial_case;

static void bench_setup(digcl_context *ctx, double copy_gbps, int N, int latent,
                        int with_attention) {
    spatial_setup s;
    setup_shapes(&s, N, latent);
    setup_buffers(ctx, &s);
    const double f = sizeof(float), tokens = (double)s.N * s.T * s.D;
    const double image = (double)s.N * s.channels * latent * latent;
    const double final_image = (double)s.N * OUT_CHANNELS * latent * latent;
    const double K = digcl_patch_features(&s.patch), rows = (double)s.N * s.T;
    const double attention_flops = 4.0 * s.N * s.H * (double)s.T * s.T * s.head_dim;
    const double labels = (double)s.N * s.D;
    const spatial_case cases[] = {
        {"patchify", run_patchify, 2 * image * f, 0},
        {"patch_embed fwd", run_patch_embed_forward, (image + K * s.D + s.T * s.D + tokens) * f,
         2 * rows * K * s.D},
        {"patch_embed bwd (dW, db)", run_patch_embed_backward, (image + tokens + K * s.D) * f,
         2 * rows * K * s.D},
        {"unpatchify fwd", run_unpatchify_forward, 2 * final_image * f, 0},
        {"unpatchify bwd", run_unpatchify_backward, 2 * final_image * f, 0},
        {"timestep_embed", run_timestep, (s.N + s.N * 256.0 + 256) * f, 0},
        {"label_embed fwd (accumulate)", run_label_forward, 3 * labels * f, 0},
        {"label_embed bwd", run_label_backward, 3 * labels * f, 0},
        {"dwconv3x3 fwd", run_conv_forward, 2 * tokens * f, 18 * tokens},
        {"dwconv3x3 bwd (dx, dW, db)", run_conv_backward, 4 * tokens * f, 38 * tokens},
        {"srem fwd (flip+transpose)", run_srem_forward, 2 * tokens * f, 0},
        {"srem bwd", run_srem_backward, 2 * tokens * f, 0},
        {"attention fwd", run_attention_forward, (4 * tokens + rows * s.H) * f, attention_flops},
        {"attention bwd", run_attention_backward, (9 * tokens + rows * s.H) * f,
         2.5 * attention_flops},
    };
    char shape[96];
    snprintf(shape, sizeof shape, "N%d %dx%dx4 p2 T%d D%d H%d", s.N, latent, latent, s.T, s.D, s.H);
    const size_t count = sizeof cases / sizeof *cases - (with_attention ? 0 : 2);
    for (size_t c = 0; c < count; c++) {
        inner_call call = {cases[c].run, &s};
        const double ms = bench_time_ms(ctx, run_inner, &call, WARMUP, REPEATS) / INNER;
        bench_print_row(cases[c].name, shape, ms, cases[c].bytes, cases[c].flops, copy_gbps);
    }
    if (!with_attention) printf("  (attention at T=%d skipped on a CPU device)\n", s.T);
    release_buffers(&s);
}

void bench_ops_spatial(digcl_context *ctx, double copy_gbps) {
    const int on_cpu = (digcl_context_device(ctx)->type & CL_DEVICE_TYPE_CPU) != 0;
    bench_setup(ctx, copy_gbps, 32, 32, 1);       /* DiG-S/2 training batch */
    bench_setup(ctx, copy_gbps, 1, 224, !on_cpu); /* high resolution, T = 12544 */
}
