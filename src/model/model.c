/* digcl_model: creation, the flat parameter/gradient buffers and their named
 * views, initialisation, host access, and the forward/backward drivers that
 * run the stem, the blocks (with DiG's long skips) and the head. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/elementwise.h"
#include "digcl/embed.h"
#include "model/model_internal.h"

/* ------------------------------------------------------------ the parameter store */

static int env_disables(const char *name) {
    const char *value = getenv(name);
    return value && strcmp(value, "0") == 0;
}

/* DiG's q, k, v, g and gk_proj.0 weights are consecutive table entries; when
 * no alignment padding separates them in the flat layout they form one
 * [2Dk + 2D + 16, D] matrix, and the five projections become one GEMM. */
static int projections_adjacent(const digcl_model *model) {
    if (!digcl_arch_has_dig_blocks(model->config.arch)) return 0;
    const digcl_param_table *table = model->table;
    for (int b = 0; b < model->config.depth; b++) {
        const block_params *p = &model->blocks[b];
        const int order[] = {p->q_weight, p->k_weight, p->v_weight, p->g_weight,
                             p->gate_low_weight};
        for (int i = 1; i < 5; i++) {
            size_t end = digcl_params_offset(model->params, (size_t)order[i - 1]) +
                         table->params[order[i - 1]].numel;
            if (order[i] != order[i - 1] + 1 ||
                digcl_params_offset(model->params, (size_t)order[i]) != end)
                return 0;
        }
    }
    return 1;
}

digcl_model *digcl_model_create(digcl_context *ctx, const digcl_model_config *config) {
    digcl_model *model = calloc(1, sizeof *model);
    if (!model) digcl_fatal("out of host memory");
    model->ctx = ctx;
    model->config = *config;
    digcl_param_table table;
    if (digcl_param_table_build(config, &table) != 0) digcl_fatal("out of host memory");
    model->params = digcl_params_create(ctx, &table, "model parameters");
    digcl_param_table_free(&table);
    model->table = digcl_params_table(model->params);
    model->active = model->params;
    digcl_model_find_params(model);
    model->fused_projections =
        projections_adjacent(model) && !env_disables("DIGCL_FUSED_PROJECTIONS");
    return model;
}

static void release_activations(model_activations *plan) {
    digcl_arena_release(&plan->arena);
    free(plan->saved);
    free(plan->skips);
    free(plan->d_skips);
    memset(plan, 0, sizeof *plan);
}

void digcl_model_release(digcl_model *model) {
    if (!model) return;
    release_activations(&model->plans[DIGCL_MODE_INFERENCE]);
    release_activations(&model->plans[DIGCL_MODE_TRAINING]);
    digcl_params_release(model->params);
    free(model->blocks);
    free(model->progress_from);
    free(model);
}

int digcl_model_fused_projections(const digcl_model *model) { return model->fused_projections; }
const digcl_model_config *digcl_model_get_config(const digcl_model *model) {
    return &model->config;
}
const digcl_param_table *digcl_model_param_table(const digcl_model *model) { return model->table; }
digcl_params *digcl_model_params(digcl_model *model) { return model->params; }
cl_mem digcl_model_param(const digcl_model *model, size_t index) {
    return digcl_params_view(model->params, index);
}
cl_mem digcl_model_grad(digcl_model *model, size_t index) {
    return digcl_params_grad_view(model->params, index);
}
cl_mem digcl_model_param_buffer(const digcl_model *model) {
    return digcl_params_buffer(model->params);
}
cl_mem digcl_model_grad_buffer(digcl_model *model) {
    return digcl_params_grad_buffer(model->params);
}
size_t digcl_model_flat_count(const digcl_model *model) {
    return digcl_params_flat_count(model->params);
}
void digcl_model_zero_grad(digcl_model *model) { digcl_params_zero_grad(model->params); }

void digcl_model_read_param(const digcl_model *model, size_t index, float *host) {
    digcl_params_read(model->params, index, host);
}

void digcl_model_write_param(digcl_model *model, size_t index, const float *host) {
    digcl_params_write(model->params, index, host);
}

void digcl_model_read_grad(digcl_model *model, size_t index, float *host) {
    digcl_params_read_grad(model->params, index, host);
}

void digcl_model_use_params(digcl_model *model, const digcl_params *params) {
    if (!params) {
        model->active = model->params;
        return;
    }
    if (digcl_params_context(params) != model->ctx)
        digcl_fatal("digcl_model_use_params: the parameter store belongs to another context");
    if (!digcl_param_table_same_layout(digcl_params_table(params), model->table))
        digcl_fatal("digcl_model_use_params: the parameter store's table differs from the model's "
                    "(%zu tensors, expected %zu of the same names and shapes)",
                    digcl_params_table(params)->count, model->table->count);
    model->active = params;
}

const digcl_params *digcl_model_active_params(const digcl_model *model) { return model->active; }
int digcl_model_activation_allocations(const digcl_model *model) { return model->allocations; }

/* ------------------------------------------------------------ initialisation */

static void init_tensor(void *user, digcl_rng_key key, size_t index, const digcl_param_info *p,
                        float *values) {
    const digcl_model_config *config = user;
    switch ((digcl_param_init)p->init) {
    case DIGCL_INIT_XAVIER: digcl_params_fill_xavier_uniform(key, index, p, 1.0, values); break;
    case DIGCL_INIT_XAVIER_GLA:
        digcl_params_fill_xavier_uniform(key, index, p, pow(2.0, -2.5), values);
        break;
    case DIGCL_INIT_ZERO: break;
    case DIGCL_INIT_ONE:
        for (size_t i = 0; i < p->numel; i++) values[i] = 1.0f;
        break;
    case DIGCL_INIT_NORMAL_002: digcl_params_fill_normal(key, index, p->numel, 0.02, values); break;
    case DIGCL_INIT_SINCOS_2D:
        digcl_pos_embed_2d(config->hidden_size, config->grid, config->grid, values);
        break;
    case DIGCL_INIT_DW_IDENTITY: /* [D, 1, 3, 3]: centre tap 1 */
        for (size_t c = 0; c < p->numel / 9; c++) values[c * 9 + 4] = 1.0f;
        break;
    case DIGCL_INIT_SKIP_IDENTITY: { /* [D, 2D] = [I | 0] */
        size_t rows = (size_t)p->shape[0], cols = (size_t)p->shape[1];
        for (size_t r = 0; r < rows; r++) values[r * cols + r] = 1.0f;
        break;
    }
    }
}

void digcl_model_init(digcl_model *model, uint64_t seed) {
    digcl_params_init(model->params, seed, init_tensor, &model->config);
}

static void random_tensor(void *user, digcl_rng_key key, size_t index, const digcl_param_info *p,
                          float *values) {
    digcl_params_fill_normal(key, index, p->numel, *(const float *)user, values);
}

void digcl_model_randomize(digcl_model *model, uint64_t seed, float stddev) {
    digcl_params_init(model->params, seed, random_tensor, &stddev);
}

/* ------------------------------------------------------------ planning */

/* Plans and allocates one set of activations for `batch` samples. */
static void allocate_activations(digcl_model *model, model_activations *plan, int batch,
                                 digcl_model_mode mode) {
    digcl_model_plan(&model->config, batch, mode, DIGCL_PARAMS_ALIGNMENT_BYTES, &plan->arena,
                     &plan->embedding, &plan->scratch, &plan->saved, &plan->skips, &plan->d_skips);
    char what[96];
    snprintf(what, sizeof what, "activations (batch %d, %s)", batch,
             mode == DIGCL_MODE_TRAINING ? "training" : "inference");
    digcl_arena_allocate(&plan->arena, model->ctx, what);
    plan->batch = batch;
    model->allocations++;
    float table[DIGCL_TIMESTEP_FREQUENCY_DIM];
    digcl_timestep_frequency_table(DIGCL_TIMESTEP_FREQUENCY_DIM, table);
    digcl_write(model->ctx, plan->embedding.frequency_table, 0, sizeof table, table);
}

static void activate(digcl_model *model, const model_activations *plan, digcl_model_mode layout) {
    model->embedding = plan->embedding;
    model->scratch = plan->scratch;
    model->saved = plan->saved;
    model->skips = plan->skips;
    model->d_skips = plan->d_skips;
    model->layout = layout;
}

/* Activations are only ever added: a training plan serves inference too, and
 * a plan for a larger batch serves every smaller one, so a loop alternating
 * training steps and (smaller or larger) inference batches plans each mode at
 * most until it has seen its largest batch. */
void digcl_model_prepare(digcl_model *model, int batch, digcl_model_mode mode) {
    if (batch < 1) digcl_fatal("batch size must be at least 1, got %d", batch);
    char error[256];
    if (digcl_model_check_batch(&model->config, batch, error, sizeof error) != 0)
        digcl_fatal("%s", error);
    if (mode == DIGCL_MODE_TRAINING) digcl_params_grad_buffer(model->params);
    model_activations *training_plan = &model->plans[DIGCL_MODE_TRAINING];
    model_activations *inference_plan = &model->plans[DIGCL_MODE_INFERENCE];
    if (training_plan->batch < batch &&
        (mode == DIGCL_MODE_TRAINING || inference_plan->batch < batch)) {
        model_activations *plan = &model->plans[mode];
        release_activations(plan);
        allocate_activations(model, plan, batch, mode);
        if (mode == DIGCL_MODE_TRAINING && inference_plan->batch <= batch)
            release_activations(inference_plan);
    }
    if (training_plan->batch >= batch) activate(model, training_plan, DIGCL_MODE_TRAINING);
    else activate(model, inference_plan, DIGCL_MODE_INFERENCE);
    model->batch = batch;
    model->mode = mode;
}

/* ------------------------------------------------------------ forward and backward */

/* DiG long skips (docs/MODEL.md §1.4): pushed after block i for i < depth/2 - 1,
 * popped (LIFO) before block i for i > depth/2. */
static int pushes_skip(const digcl_model_config *c, int block) {
    return c->skip && block < c->depth / 2 - 1;
}
static int pops_skip(const digcl_model_config *c, int block) {
    return c->skip && block > c->depth / 2;
}
static int popped_slot(const digcl_model_config *c, int block) { return (c->depth - 1) - block; }

/* 1 when the active activations keep one set per block (a training plan). */
static int training(const digcl_model *model) { return model->layout == DIGCL_MODE_TRAINING; }

static block_saved *saved_for(digcl_model *model, int block) {
    return training(model) ? &model->saved[block] : &model->saved[0];
}

/* Where block `block` reads its input stream (before any skip fuse). */
static cl_mem block_input(digcl_model *model, int block) {
    if (!training(model)) return model->scratch.stream_ping[block % 2];
    block_saved *saved = &model->saved[block];
    return pops_skip(&model->config, block) ? saved->skip_in : saved->h_in;
}

static cl_mem block_output(digcl_model *model, int block) {
    return block == model->config.depth - 1 ? model->scratch.stream_out
                                            : block_input(model, block + 1);
}

static void check_buffer(cl_mem mem, size_t floats, const char *what, int batch) {
    size_t bytes = 0;
    if (!mem || clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) != CL_SUCCESS)
        digcl_fatal("model %s: not a valid device buffer", what);
    if (bytes < floats * sizeof(float))
        digcl_fatal("model %s: buffer holds %zu bytes, batch %d needs %zu", what, bytes, batch,
                    floats * sizeof(float));
}

/* The buffers must hold the prepared batch: a smaller one would be read past its end. */
static void check_inputs(const digcl_model *model, const digcl_model_inputs *inputs, cl_mem out) {
    const digcl_model_config *c = &model->config;
    size_t N = (size_t)model->batch, pixels = (size_t)c->input_size * c->input_size;
    check_buffer(inputs->x, N * c->in_channels * pixels, "input x [N, C, H, W]", model->batch);
    check_buffer(inputs->t, N, "input t [N]", model->batch);
    check_buffer(inputs->y, N, "input y [N]", model->batch);
    check_buffer(out, N * c->out_channels * pixels, "output [N, C_out, H, W]", model->batch);
}

void digcl_model_forward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem out) {
    if (!model->batch) digcl_fatal("digcl_model_forward: call digcl_model_prepare first");
    check_inputs(model, inputs, out);
    if (model->config.arch == DIGCL_ARCH_UDIG) {
        digcl_udig_forward(model, inputs, out);
        return;
    }
    const digcl_model_config *c = &model->config;
    size_t stream_bytes = (size_t)model->batch * c->tokens * c->hidden_size * sizeof(float);
    digcl_model_stem_forward(model, inputs,
                             c->depth ? block_input(model, 0) : model->scratch.stream_out);
    for (int block = 0; block < c->depth; block++) {
        block_saved *saved = saved_for(model, block);
        cl_mem h_in = block_input(model, block);
        if (pops_skip(c, block)) {
            digcl_model_skip_fuse_forward(model, block, h_in, model->skips[popped_slot(c, block)],
                                          saved->h_in);
            h_in = saved->h_in;
        }
        if (digcl_arch_has_dig_blocks(c->arch))
            digcl_dig_block_forward(model, block, h_in, block_output(model, block), saved);
        else digcl_dit_block_forward(model, block, h_in, block_output(model, block), saved);
        if (pushes_skip(c, block))
            digcl_copy(model->ctx, block_output(model, block), 0, model->skips[block], 0,
                       stream_bytes);
    }
    digcl_model_head_forward(model, model->scratch.stream_out, out);
}

/* ------------------------------------------------------------ backward progress */

/* Which part of the network a tensor belongs to: its block, depth for the
 * final layer, -1 for the stem (embeddings). */
static int tensor_part(const digcl_model *model, const char *name) {
    if (strncmp(name, "final_layer.", 12) == 0) return model->config.depth;
    int block = -1;
    if (sscanf(name, "blocks.%d.", &block) == 1) return block;
    return -1;
}

/* progress_from[k]: the lowest offset of the tensors of blocks >= k and the
 * final layer, when no other tensor lies above it (else the flat count: no
 * early report). */
static void plan_progress(digcl_model *model) {
    const int depth = model->config.depth;
    size_t count = digcl_params_flat_count(model->params);
    for (int k = 0; k <= depth; k++) {
        size_t from = count, other = 0;
        for (size_t i = 0; i < model->table->count; i++) {
            size_t offset = digcl_params_offset(model->params, i);
            size_t end = offset + model->table->params[i].numel;
            if (tensor_part(model, model->table->params[i].name) >= k) {
                if (offset < from) from = offset;
            } else if (end > other) {
                other = end;
            }
        }
        model->progress_from[k] = other <= from ? from : count;
    }
}

void digcl_model_set_backward_progress(digcl_model *model, digcl_backward_progress progress,
                                       void *user) {
    model->progress = progress;
    model->progress_user = user;
    if (!progress || model->progress_from) return;
    model->progress_from = calloc((size_t)model->config.depth + 1, sizeof(size_t));
    if (!model->progress_from) digcl_fatal("out of host memory");
    plan_progress(model);
}

static void report_progress(const digcl_model *model, int part) {
    if (model->progress) model->progress(model->progress_user, model->progress_from[part]);
}

void digcl_model_backward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem dout,
                          cl_mem dx) {
    if (model->mode != DIGCL_MODE_TRAINING)
        digcl_fatal(
            "digcl_model_backward: the model was prepared for inference; prepare it for training");
    check_inputs(model, inputs, dout);
    if (dx)
        check_buffer(dx,
                     (size_t)model->batch * model->config.in_channels * model->config.input_size *
                         model->config.input_size,
                     "input gradient dx", model->batch);
    if (model->config.arch == DIGCL_ARCH_UDIG) {
        digcl_udig_backward(model, inputs, dout, dx);
        return;
    }
    const digcl_model_config *c = &model->config;
    size_t stream_floats = (size_t)model->batch * c->tokens * c->hidden_size;
    cl_mem *d = model->scratch.d_stream;
    int current = 0; /* d[current]: gradient of the stream where the loop stands */
    digcl_fill_f32(model->ctx, model->scratch.d_condition, 0, (size_t)model->batch * c->hidden_size,
                   0.0f);
    digcl_model_head_backward(model, model->scratch.stream_out, dout, d[current]);
    report_progress(model, c->depth);
    for (int block = c->depth - 1; block >= 0; block--) {
        if (pushes_skip(c, block))
            digcl_axpy(model->ctx, stream_floats, 1.0f, model->d_skips[block], d[current]);
        block_saved *saved = saved_for(model, block);
        if (digcl_arch_has_dig_blocks(c->arch))
            digcl_dig_block_backward(model, block, saved, d[current], d[1 - current]);
        else digcl_dit_block_backward(model, block, saved, d[current], d[1 - current]);
        if (pops_skip(c, block)) { /* d[1-current] is d(fused input): split it */
            int slot = popped_slot(c, block);
            digcl_model_skip_fuse_backward(model, block, saved->skip_in, model->skips[slot],
                                           d[1 - current], d[current], model->d_skips[slot]);
        } else {
            current = 1 - current;
        }
        report_progress(model, block);
    }
    digcl_model_stem_backward(model, inputs, d[current], dx);
}
