/* Activation plan: every tensor the forward and backward passes touch, sized
 * once per (config, batch, mode). TRAINING keeps per-block tensors that
 * backward needs; cheap elementwise results (modulated norms, the SwiGLU and
 * GELU outputs, the streams between branches, the GLA log gate, the normed GLA
 * output) are recomputed in backward into shared scratch, or with
 * config.activations = KEEP kept per block as well. INFERENCE keeps one
 * shared set. DiT with naive attention keeps the [N, H, T, T] probabilities
 * per block (as timm's autograd does) and one [N, H, T, T] dP scratch. */
#include <stdlib.h>
#include <string.h>

#include "digcl/adaln.h"
#include "digcl/attention.h"
#include "digcl/conv.h"
#include "digcl/embed.h"
#include "digcl/gla.h"
#include "digcl/linear.h"
#include "digcl/norm.h"
#include "digcl/patch.h"
#include "digcl/reduce.h"
#include "model/model_internal.h"

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

typedef struct plan_sizes {
    size_t N, T, D, Dk, F, rows, wide, out_features;
    size_t fused; /* DiG's projection rows [q | k | v | g | low-rank gate]: 2Dk + 2D + 16 */
} plan_sizes;

static plan_sizes sizes_of(const digcl_model_config *c, int batch) {
    plan_sizes s;
    s.N = (size_t)batch;
    s.T = (size_t)c->tokens;
    s.D = (size_t)c->hidden_size;
    s.Dk = (size_t)c->qk_dim;
    s.F = (size_t)c->mlp_hidden;
    s.rows = s.N * s.T;
    s.fused = 2 * s.Dk + 2 * s.D + DIGCL_GLA_GATE_LOW_RANK;
    s.wide = max_size(max_size(max_size(2 * s.F, 3 * s.D), max_size(s.F, 2 * s.D)), s.fused);
    s.out_features = (size_t)(c->patch_size * c->patch_size * c->out_channels);
    return s;
}

static size_t linear_workspace(size_t rows, size_t in, size_t out) {
    digcl_linear_shape shape = {(int)rows, (int)in, (int)out};
    return digcl_linear_backward_workspace_bytes(shape);
}

static int naive_attention(const digcl_model_config *c) {
    return c->arch == DIGCL_ARCH_DIT && c->attention == DIGCL_ATTENTION_NAIVE;
}

/* [N, H, T, T] */
static size_t probs_floats(const digcl_model_config *c, const plan_sizes *s) {
    digcl_attention_shape shape = {(int)s->N, (int)s->T, c->num_heads, c->head_v_dim};
    return digcl_attention_naive_probs_floats(&shape);
}

/* The largest scratch any op of this model asks for. */
static size_t workspace_bytes(const digcl_model_config *c, const plan_sizes *s) {
    int N = (int)s->N, T = (int)s->T, D = (int)s->D;
    size_t bytes = linear_workspace(s->rows, s->D, s->wide);
    bytes = max_size(bytes, linear_workspace(s->rows, s->wide, s->D));
    bytes = max_size(bytes, linear_workspace(s->N, s->D, 6 * s->D));
    bytes = max_size(bytes, linear_workspace(s->rows, s->D, s->out_features));
    bytes = max_size(bytes, digcl_layernorm_modulate_backward_workspace_bytes(N, T, D));
    bytes = max_size(bytes, digcl_modulate_backward_workspace_bytes(N, T, D));
    bytes = max_size(bytes, digcl_gated_residual_backward_workspace_bytes(N, T, D));
    bytes = max_size(bytes, digcl_column_sum_workspace_bytes(1, (int)s->rows, D));
    digcl_patch_shape patch = {N, c->in_channels, c->input_size, c->input_size, c->patch_size};
    bytes = max_size(bytes, digcl_patch_embed_workspace_bytes(&patch, D));
    if (digcl_arch_has_dig_blocks(c->arch)) {
        bytes = max_size(bytes, digcl_rmsnorm_gate_backward_workspace_bytes(
                                    (int)s->rows * c->num_heads, c->head_v_dim));
        digcl_grid_shape grid = {N, c->grid, c->grid, D};
        bytes = max_size(bytes, digcl_depthwise_conv_workspace_bytes(&grid));
        digcl_gla_shape gla =
            digcl_gla_shape_token_major(N, T, c->num_heads, c->head_qk_dim, c->head_v_dim, 0);
        bytes = max_size(bytes, digcl_gla_forward_workspace_bytes(&gla));
        bytes = max_size(bytes, digcl_gla_backward_workspace_bytes(&gla));
    } else if (!naive_attention(c)) {
        digcl_attention_shape attention = {N, T, c->num_heads, c->head_v_dim};
        bytes = max_size(bytes, digcl_attention_backward_workspace_bytes(&attention));
    }
    return bytes;
}

static void plan_embedding(model_arena *a, model_embedding *e, const plan_sizes *s) {
    digcl_arena_add(a, &e->frequency_table, DIGCL_TIMESTEP_FREQUENCY_DIM);
    digcl_arena_add(a, &e->t_frequency, s->N * DIGCL_TIMESTEP_FREQUENCY_DIM);
    digcl_arena_add(a, &e->t_hidden, s->N * s->D);
    digcl_arena_add(a, &e->t_hidden_act, s->N * s->D);
    digcl_arena_add(a, &e->condition, s->N * s->D);
    digcl_arena_add(a, &e->condition_act, s->N * s->D);
    digcl_arena_add(a, &e->d_t_hidden, s->N * s->D);
}

static void plan_scratch(model_arena *a, model_scratch *x, const digcl_model_config *c,
                         const plan_sizes *s, int training) {
    size_t rows = s->rows;
    digcl_arena_add(a, &x->x1, rows * s->D);
    digcl_arena_add(a, &x->x2, rows * s->D);
    /* [N, T, wide]: DiG's projection-row gradients (training) and U-DiG's token merges; DiT
     * and a DiG forward never use it */
    if (c->arch == DIGCL_ARCH_UDIG || (training && c->arch == DIGCL_ARCH_DIG))
        digcl_arena_add(a, &x->wide, rows * s->wide);
    digcl_arena_add(a, &x->narrow, rows * max_size(s->F, s->D));
    digcl_arena_add(a, &x->h_mid, rows * s->D);
    digcl_arena_add(a, &x->h_post, rows * s->D);
    digcl_arena_add(a, &x->gate, rows * s->Dk);
    digcl_arena_add(a, &x->stream_out, rows * s->D);
    digcl_arena_add(a, &x->tokens_out, rows * s->out_features);
    digcl_arena_add(a, &x->final_x, rows * s->D);
    digcl_arena_add(a, &x->final_modulation, s->N * 2 * s->D);
    digcl_arena_add(a, &x->final_mean, rows);
    digcl_arena_add(a, &x->final_rstd, rows);
    x->workspace_bytes = workspace_bytes(c, s);
    digcl_arena_add(a, &x->workspace, (x->workspace_bytes + 3) / 4);
    if (!training) {
        digcl_arena_add(a, &x->stream_ping[0], rows * s->D);
        digcl_arena_add(a, &x->stream_ping[1], rows * s->D);
        return;
    }
    digcl_arena_add(a, &x->d_stream[0], rows * s->D);
    digcl_arena_add(a, &x->d_stream[1], rows * s->D);
    digcl_arena_add(a, &x->d_a, rows * s->wide);
    digcl_arena_add(a, &x->d_b, rows * s->wide);
    digcl_arena_add(a, &x->d_c, rows * s->wide);
    digcl_arena_add(a, &x->d_gate, rows * s->Dk);
    digcl_arena_add(a, &x->d_gate_raw, rows * s->Dk);
    digcl_arena_add(a, &x->d_modulation, s->N * 6 * s->D);
    if (naive_attention(c)) digcl_arena_add(a, &x->d_probs, probs_floats(c, s));
    digcl_arena_add(a, &x->d_condition, s->N * s->D);
    digcl_arena_add(a, &x->d_condition_pre, s->N * s->D);
    digcl_arena_add(a, &x->d_tokens_out, rows * s->out_features);
    digcl_arena_add(a, &x->d_final_modulation, s->N * 2 * s->D);
}

/* With DIGCL_ACTIVATIONS_KEEP, what the backward would otherwise recompute: the block's
 * own x1, x2, h_mid (and DiG's h_post, normed o, log gate) and MLP activation. */
static void plan_kept(model_arena *a, block_saved *b, const digcl_model_config *c,
                      const plan_sizes *s) {
    size_t rows = s->rows;
    digcl_arena_add(a, &b->x1, rows * s->D);
    digcl_arena_add(a, &b->x2, rows * s->D);
    digcl_arena_add(a, &b->h_mid, rows * s->D);
    digcl_arena_add(a, &b->mlp_act, rows * s->F);
    if (!digcl_arch_has_dig_blocks(c->arch)) return;
    digcl_arena_add(a, &b->h_post, rows * s->D);
    digcl_arena_add(a, &b->normed, rows * s->D);
    digcl_arena_add(a, &b->log_gate, rows * s->Dk);
}

/* What one block keeps. In INFERENCE only the first entry exists and is
 * reused by every block. */
static void plan_block(model_arena *a, block_saved *b, const digcl_model_config *c,
                       const plan_sizes *s, int has_skip_input, int training) {
    size_t rows = s->rows;
    digcl_arena_add(a, &b->h_in, rows * s->D);
    if (has_skip_input) digcl_arena_add(a, &b->skip_in, rows * s->D);
    digcl_arena_add(a, &b->modulation, s->N * 6 * s->D);
    digcl_arena_add(a, &b->mean1, rows);
    digcl_arena_add(a, &b->rstd1, rows);
    digcl_arena_add(a, &b->mean2, rows);
    digcl_arena_add(a, &b->rstd2, rows);
    digcl_arena_add(a, &b->branch1, rows * s->D);
    digcl_arena_add(a, &b->branch2, rows * s->D);
    if (digcl_arch_has_dig_blocks(c->arch)) {
        digcl_arena_add(a, &b->projections, rows * s->fused);
        digcl_arena_add(a, &b->gate_raw, rows * s->Dk);
        digcl_arena_add(a, &b->o, rows * s->D);
        digcl_arena_add(a, &b->mlp_hidden, rows * 2 * s->F);
    } else {
        digcl_arena_add(a, &b->qkv, rows * 3 * s->D);
        digcl_arena_add(a, &b->attention, rows * s->D);
        if (naive_attention(c)) digcl_arena_add(a, &b->probs, probs_floats(c, s));
        else digcl_arena_add(a, &b->logsumexp, s->N * (size_t)c->num_heads * s->T);
        digcl_arena_add(a, &b->fc1, rows * s->F);
    }
    if (training && c->activations == DIGCL_ACTIVATIONS_KEEP) plan_kept(a, b, c, s);
}

void digcl_model_plan(const digcl_model_config *config, int batch, digcl_model_mode mode,
                      size_t alignment, model_arena *arena, model_embedding *embedding,
                      model_scratch *scratch, block_saved **saved, cl_mem **skips,
                      cl_mem **d_skips) {
    plan_sizes s = sizes_of(config, batch);
    int training = mode == DIGCL_MODE_TRAINING;
    int depth = config->depth, entries = training ? depth : 1;
    int slots = config->arch == DIGCL_ARCH_UDIG ? UDIG_SLOTS : depth;
    memset(embedding, 0, sizeof *embedding);
    memset(scratch, 0, sizeof *scratch);
    *saved = calloc((size_t)(entries ? entries : 1), sizeof **saved);
    *skips = calloc((size_t)(slots ? slots : 1), sizeof **skips);
    *d_skips = calloc((size_t)(slots ? slots : 1), sizeof **d_skips);
    if (!*saved || !*skips || !*d_skips) digcl_fatal("out of host memory planning activations");
    digcl_arena_begin(arena, alignment);
    plan_embedding(arena, embedding, &s);
    plan_scratch(arena, scratch, config, &s, training);
    for (int b = 0; b < entries; b++) {
        int skip_input = config->skip && (training ? b > depth / 2 : 1);
        plan_sizes block = s; /* the block's own grid (U-DiG stages are smaller) */
        size_t side = (size_t)digcl_model_block_grid(config, b);
        block.T = side * side;
        block.rows = s.N * block.T;
        plan_block(arena, &(*saved)[b], config, &block, skip_input && training, training);
    }
    if (config->arch == DIGCL_ARCH_UDIG)
        digcl_udig_plan(arena, config, batch, training, *skips, *d_skips);
    for (int b = 0; config->skip && b < depth / 2 - 1; b++) {
        digcl_arena_add(arena, &(*skips)[b], s.rows * s.D);
        if (training) digcl_arena_add(arena, &(*d_skips)[b], s.rows * s.D);
    }
}

size_t digcl_model_plan_row_floats(const digcl_model_config *config) {
    return sizes_of(config, 1).wide;
}

/* Plans without a device: only the arena's slots are kept (free them). */
static model_arena dry_plan(const digcl_model_config *config, int batch, digcl_model_mode mode,
                            size_t alignment) {
    model_arena arena;
    model_embedding embedding;
    model_scratch scratch;
    block_saved *saved = NULL;
    cl_mem *skips = NULL, *d_skips = NULL;
    digcl_model_plan(config, batch, mode, alignment, &arena, &embedding, &scratch, &saved, &skips,
                     &d_skips);
    free(saved);
    free(skips);
    free(d_skips);
    return arena;
}

size_t digcl_model_activation_bytes(const digcl_model_config *config, int batch,
                                    digcl_model_mode mode, size_t alignment_bytes) {
    model_arena arena = dry_plan(config, batch, mode, alignment_bytes);
    free(arena.slots);
    return arena.total;
}

size_t digcl_model_plan_largest_tensor(const digcl_model_config *config, int batch) {
    model_arena arena = dry_plan(config, batch, DIGCL_MODE_TRAINING, sizeof(float));
    size_t largest = 0;
    for (int i = 0; i < arena.count; i++)
        if (arena.slots[i].bytes > largest) largest = arena.slots[i].bytes;
    free(arena.slots);
    return largest / sizeof(float);
}
