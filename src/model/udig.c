/* U-DiG, the U-shape DiG (this project's definition, docs/MODEL.md "U-DiG"): the stage
 * pipeline around the plain DiG blocks.
 *
 *   h = patch_embed_p1(x) + pos_embed                       // [N, T, D], T = E*E
 *   skip_1 = stage_0(h)                                     // encoder 1, E x E
 *   skip_2 = stage_1(down_0(skip_1))                        // encoder 2, E/2 x E/2
 *   b      = stage_2(down_1(skip_2))                        // bottleneck, E/4 x E/4
 *   d_2    = stage_3(fuse_0(up_0(b), skip_2))               // decoder 2, E/2 x E/2
 *   h      = stage_4(fuse_1(up_1(d_2), skip_1))             // decoder 1, E x E
 *   out    = final_layer(h)
 *
 *   down_k(h) = Linear_{4D->D}(token_merge(h))     up_k(h) = depth_to_space(Linear_{D->4D}(h))
 *   fuse_k(h, s) = Linear_{2D->D}([h | s])
 *
 * Every stage is depth/5 DiG blocks (dig_block.c) on its own grid with the SREM
 * cycle restarting at R; its last block reorders back to R
 * (model_block_reorient_*), so every transition sees row-major tokens.
 * Backward recomputes the token merges of the skips instead of keeping them. */
#include <stdio.h>

#include "digcl/elementwise.h"
#include "digcl/srem.h"
#include "digcl/token_merge.h"
#include "model/model_internal.h"

/* ------------------------------------------------------------ parameters and plan */

static int find_index(const digcl_model *model, const char *format, int k) {
    char name[DIGCL_PARAM_NAME_SIZE];
    snprintf(name, sizeof name, format, k);
    const digcl_param_info *info = digcl_param_table_find(model->table, name);
    if (!info) digcl_fatal("internal: parameter '%s' missing from the table", name);
    return (int)(info - model->table->params);
}

void digcl_udig_find_params(digcl_model *model) {
    udig_params *u = &model->udig;
    for (int k = 0; k < 2; k++) {
        u->down_weight[k] = find_index(model, "downsample.%d.weight", k);
        u->down_bias[k] = find_index(model, "downsample.%d.bias", k);
        u->up_weight[k] = find_index(model, "upsample.%d.weight", k);
        u->up_bias[k] = find_index(model, "upsample.%d.bias", k);
        u->fuse_weight[k] = find_index(model, "skip_fuse.%d.weight", k);
        u->fuse_bias[k] = find_index(model, "skip_fuse.%d.bias", k);
    }
}

/* Tokens of the grid at `level` halvings below the full grid. */
static size_t level_tokens(const digcl_model_config *c, int level) {
    size_t side = (size_t)(c->grid >> level);
    return side * side;
}

void digcl_udig_plan(model_arena *arena, const digcl_model_config *c, int batch, int training,
                     cl_mem *slots, cl_mem *d_slots) {
    static const int slot_level[UDIG_SLOTS] = {
        [UDIG_SKIP1] = 0, [UDIG_SKIP2] = 1,    [UDIG_BOTTLENECK] = 2,
        [UDIG_UP2] = 1,   [UDIG_DECODER2] = 1, [UDIG_UP1] = 0};
    size_t N = (size_t)batch, D = (size_t)c->hidden_size;
    for (int k = 0; k < UDIG_SLOTS; k++)
        digcl_arena_add(arena, &slots[k], N * level_tokens(c, slot_level[k]) * D);
    if (!training) return;
    digcl_arena_add(arena, &d_slots[UDIG_SKIP1], N * level_tokens(c, 0) * D);
    digcl_arena_add(arena, &d_slots[UDIG_SKIP2], N * level_tokens(c, 1) * D);
}

/* ------------------------------------------------------------ block order */

static int last_in_stage(const digcl_model_config *c, int block) {
    int stage_depth = digcl_udig_stage_depth(c);
    return block % stage_depth == stage_depth - 1;
}

typedef void (*reorder_step)(digcl_context *, digcl_scan_order, int, int, int, cl_mem, cl_mem);

static void reorient(digcl_model *model, int block, int N, int side, int D, cl_mem in, cl_mem out,
                     int backward) {
    const digcl_model_config *c = &model->config;
    reorder_step srem = backward ? digcl_srem_backward : digcl_srem_forward;
    reorder_step to_rows = backward ? digcl_scan_to_rows_backward : digcl_scan_to_rows_forward;
    if (c->arch != DIGCL_ARCH_UDIG) {
        srem(model->ctx, digcl_srem_block_order(block), N, side, D, in, out);
        return;
    }
    digcl_scan_order order = digcl_srem_block_order(block % digcl_udig_stage_depth(c));
    if (last_in_stage(c, block)) to_rows(model->ctx, order, N, side, D, in, out);
    else srem(model->ctx, order, N, side, D, in, out);
}

void digcl_model_block_reorient_forward(digcl_model *model, int block, int N, int side, int D,
                                        cl_mem x, cl_mem y) {
    reorient(model, block, N, side, D, x, y, 0);
}

void digcl_model_block_reorient_backward(digcl_model *model, int block, int N, int side, int D,
                                         cl_mem dy, cl_mem dx) {
    reorient(model, block, N, side, D, dy, dx, 1);
}

/* ------------------------------------------------------------ stage transitions */

typedef struct udig_dims {
    int N, D, side[3]; /* grid side at level 0, 1, 2 */
    size_t rows[3];    /* N * tokens at level 0, 1, 2 */
} udig_dims;

static udig_dims dims_of(const digcl_model *model) {
    udig_dims d;
    d.N = model->batch;
    d.D = model->config.hidden_size;
    for (int level = 0; level < 3; level++) {
        d.side[level] = model->config.grid >> level;
        d.rows[level] = (size_t)d.N * level_tokens(&model->config, level);
    }
    return d;
}

/* 1 when the active activations keep one set per block (a training plan, which
 * serves inference too: see digcl_model_prepare). */
static int training(const digcl_model *model) { return model->layout == DIGCL_MODE_TRAINING; }

static cl_mem block_input(digcl_model *model, int block) {
    return training(model) ? model->saved[block].h_in : model->scratch.stream_ping[block % 2];
}

/* Where stage `stage` leaves its output (R order). */
static cl_mem stage_output(digcl_model *model, int stage) {
    static const int slot[DIGCL_UDIG_STAGES - 1] = {UDIG_SKIP1, UDIG_SKIP2, UDIG_BOTTLENECK,
                                                    UDIG_DECODER2};
    return stage == DIGCL_UDIG_STAGES - 1 ? model->scratch.stream_out : model->skips[slot[stage]];
}

/* Encoder skip k+1 (k = 0: skip_1 on the full grid, k = 1: skip_2). */
static int skip_slot(int k) { return k == 0 ? UDIG_SKIP1 : UDIG_SKIP2; }

/* down_k: skip_{k+1} [N, T_k, D] -> next [N, T_k/4, D]; k = 0, 1 before stages 1, 2. */
static void downsample_forward(digcl_model *model, const udig_dims *d, int k, cl_mem next) {
    const udig_params *u = &model->udig;
    cl_mem merged = model->scratch.wide; /* [N, T_k/4, 4D] */
    digcl_token_merge_forward(model->ctx, d->N, d->side[k], d->D, model->skips[skip_slot(k)],
                              merged);
    digcl_model_linear(model, (int)d->rows[k + 1], 4 * d->D, d->D, merged, u->down_weight[k],
                       u->down_bias[k], next);
}

/* up then fuse before decoder stage 3 (k = 0) or 4 (k = 1): from level 2-k to level 1-k. */
static void upsample_fuse_forward(digcl_model *model, const udig_dims *d, int k, cl_mem from,
                                  cl_mem next) {
    const udig_params *u = &model->udig;
    int fine = 1 - k;
    cl_mem wide = model->scratch.wide; /* [N, T_fine/4, 4D] */
    cl_mem up = model->skips[k == 0 ? UDIG_UP2 : UDIG_UP1];
    digcl_model_linear(model, (int)d->rows[fine + 1], d->D, 4 * d->D, from, u->up_weight[k],
                       u->up_bias[k], wide);
    digcl_depth_to_space_forward(model->ctx, d->N, d->side[fine], d->D, wide, up);
    digcl_model_concat_linear_forward(model, d->rows[fine], u->fuse_weight[k], u->fuse_bias[k], up,
                                      model->skips[skip_slot(fine)], next);
}

static void transition_forward(digcl_model *model, const udig_dims *d, int stage, cl_mem next) {
    if (stage == 1 || stage == 2) downsample_forward(model, d, stage - 1, next);
    else if (stage == 3) upsample_fuse_forward(model, d, 0, model->skips[UDIG_BOTTLENECK], next);
    else if (stage == 4) upsample_fuse_forward(model, d, 1, model->skips[UDIG_DECODER2], next);
}

/* d_next: gradient of the downsample output; adds the gradient of skip_{k+1} into d_skips. */
static void downsample_backward(digcl_model *model, const udig_dims *d, int k, cl_mem d_next) {
    const udig_params *u = &model->udig;
    model_scratch *s = &model->scratch;
    cl_mem skip = model->skips[skip_slot(k)], d_skip = model->d_skips[skip_slot(k)];
    digcl_token_merge_forward(model->ctx, d->N, d->side[k], d->D, skip, s->wide); /* recompute */
    digcl_model_linear_backward(model, (int)d->rows[k + 1], 4 * d->D, d->D, d_next, s->wide,
                                u->down_weight[k], u->down_bias[k], s->d_a, 0);
    digcl_token_merge_backward(model->ctx, d->N, d->side[k], d->D, s->d_a, d_skip, 1);
}

/* d_fused: gradient of the fuse output (overwritten with the gradient of `from`);
 * the skip's gradient starts in d_skips; `spare` is free [N, T_fine, D] scratch. */
static void upsample_fuse_backward(digcl_model *model, const udig_dims *d, int k, cl_mem from,
                                   cl_mem d_fused, cl_mem spare) {
    const udig_params *u = &model->udig;
    model_scratch *s = &model->scratch;
    int fine = 1 - k;
    cl_mem up = model->skips[k == 0 ? UDIG_UP2 : UDIG_UP1];
    digcl_model_concat_linear_backward(model, d->rows[fine], u->fuse_weight[k], u->fuse_bias[k], up,
                                       model->skips[skip_slot(fine)], d_fused, spare,
                                       model->d_skips[skip_slot(fine)]);
    digcl_depth_to_space_backward(model->ctx, d->N, d->side[fine], d->D, spare, s->d_a, 0);
    digcl_model_linear_backward(model, (int)d->rows[fine + 1], d->D, 4 * d->D, s->d_a, from,
                                u->up_weight[k], u->up_bias[k], d_fused, 0);
}

/* grad: gradient of stage `stage`'s input; returns the buffer holding the
 * gradient of the previous stage's output. */
static cl_mem transition_backward(digcl_model *model, const udig_dims *d, int stage, cl_mem grad,
                                  cl_mem spare) {
    if (stage == 1 || stage == 2) {
        downsample_backward(model, d, stage - 1, grad);
        return model->d_skips[skip_slot(stage - 1)];
    }
    if (stage == 3) upsample_fuse_backward(model, d, 0, model->skips[UDIG_BOTTLENECK], grad, spare);
    if (stage == 4) upsample_fuse_backward(model, d, 1, model->skips[UDIG_DECODER2], grad, spare);
    return grad;
}

/* ------------------------------------------------------------ forward and backward */

void digcl_udig_forward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem out) {
    const int stage_depth = digcl_udig_stage_depth(&model->config);
    udig_dims d = dims_of(model);
    digcl_model_stem_forward(model, inputs, block_input(model, 0));
    for (int stage = 0; stage < DIGCL_UDIG_STAGES; stage++) {
        int first = stage * stage_depth, last = first + stage_depth - 1;
        if (stage > 0) transition_forward(model, &d, stage, block_input(model, first));
        for (int block = first; block <= last; block++) {
            block_saved *saved = training(model) ? &model->saved[block] : &model->saved[0];
            cl_mem h_out =
                block == last ? stage_output(model, stage) : block_input(model, block + 1);
            digcl_dig_block_forward(model, block, block_input(model, block), h_out, saved);
        }
    }
    digcl_model_head_forward(model, model->scratch.stream_out, out);
}

void digcl_udig_backward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem dout,
                         cl_mem dx) {
    const int stage_depth = digcl_udig_stage_depth(&model->config);
    udig_dims d = dims_of(model);
    cl_mem *ping = model->scratch.d_stream;
    digcl_fill_f32(model->ctx, model->scratch.d_condition, 0, (size_t)d.N * d.D, 0.0f);
    cl_mem grad = ping[0]; /* gradient of the stream where the loop stands */
    digcl_model_head_backward(model, model->scratch.stream_out, dout, grad);
    for (int stage = DIGCL_UDIG_STAGES - 1; stage >= 0; stage--) {
        for (int block = (stage + 1) * stage_depth - 1; block >= stage * stage_depth; block--) {
            cl_mem next = grad == ping[0] ? ping[1] : ping[0];
            digcl_dig_block_backward(model, block, &model->saved[block], grad, next);
            grad = next;
        }
        if (stage > 0)
            grad = transition_backward(model, &d, stage, grad, grad == ping[0] ? ping[1] : ping[0]);
    }
    digcl_model_stem_backward(model, inputs, grad, dx);
}
