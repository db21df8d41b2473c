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

/* ------------------------------------------------------------ flat buffers */

static void layout_flat_buffers(digcl_model *model) {
    size_t alignment = digcl_context_device(model->ctx)->mem_base_addr_align_bytes / sizeof(float);
    if (alignment == 0) alignment = 1;
    model->flat_offsets = malloc(model->table.count * sizeof *model->flat_offsets);
    if (!model->flat_offsets) digcl_fatal("out of host memory");
    size_t offset = 0;
    for (size_t i = 0; i < model->table.count; i++) {
        model->flat_offsets[i] = offset;
        offset += (model->table.params[i].numel + alignment - 1) / alignment * alignment;
    }
    model->flat_count = offset;
}

static cl_mem *make_views(digcl_model *model, cl_mem flat) {
    cl_mem *views = malloc(model->table.count * sizeof *views);
    if (!views) digcl_fatal("out of host memory");
    for (size_t i = 0; i < model->table.count; i++)
        views[i] = digcl_sub_buffer(model->ctx, flat, model->flat_offsets[i] * sizeof(float),
                                    model->table.params[i].numel * sizeof(float));
    return views;
}

static int env_disables(const char *name) {
    const char *value = getenv(name);
    return value && strcmp(value, "0") == 0;
}

/* DiG's q, k, v, g and gk_proj.0 weights are consecutive table entries; when
 * no alignment padding separates them in the flat buffer they form one
 * [2Dk + 2D + 16, D] matrix, and the five projections become one GEMM. */
static int projections_adjacent(const digcl_model *model) {
    if (!digcl_arch_has_dig_blocks(model->config.arch)) return 0;
    for (int b = 0; b < model->config.depth; b++) {
        const block_params *p = &model->blocks[b];
        const int order[] = {p->q_weight, p->k_weight, p->v_weight, p->g_weight, p->gate_low_weight};
        for (int i = 1; i < 5; i++) {
            size_t end = model->flat_offsets[order[i - 1]] + model->table.params[order[i - 1]].numel;
            if (order[i] != order[i - 1] + 1 || model->flat_offsets[order[i]] != end) return 0;
        }
    }
    return 1;
}

digcl_model *digcl_model_create(digcl_context *ctx, const digcl_model_config *config) {
    digcl_model *model = calloc(1, sizeof *model);
    if (!model) digcl_fatal("out of host memory");
    model->ctx = ctx;
    model->config = *config;
    if (digcl_param_table_build(config, &model->table) != 0) digcl_fatal("out of host memory");
    layout_flat_buffers(model);
    model->params = digcl_buffer_create(ctx, model->flat_count * sizeof(float), "model parameters");
    digcl_fill_f32(ctx, model->params.mem, 0, model->flat_count, 0.0f); /* padding stays zero */
    model->param_views = make_views(model, model->params.mem);
    model_find_params(model);
    model->fused_projections = projections_adjacent(model) && !env_disables("DIGCL_FUSED_PROJECTIONS");
    return model;
}

/* The gradient buffer and its views, allocated and zeroed on first use. */
static void ensure_grads(digcl_model *model) {
    if (model->grads.mem) return;
    model->grads = digcl_buffer_create(model->ctx, model->flat_count * sizeof(float), "parameter gradients");
    digcl_fill_f32(model->ctx, model->grads.mem, 0, model->flat_count, 0.0f);
    model->grad_views = make_views(model, model->grads.mem);
}

static void release_views(cl_mem *views, size_t count) {
    for (size_t i = 0; views && i < count; i++) clReleaseMemObject(views[i]);
    free(views);
}

static void release_plan(digcl_model *model) {
    arena_release(&model->arena);
    free(model->saved);
    free(model->skips);
    free(model->d_skips);
    model->saved = NULL;
    model->skips = model->d_skips = NULL;
    model->batch = 0;
}

void digcl_model_release(digcl_model *model) {
    if (!model) return;
    release_plan(model);
    release_views(model->param_views, model->table.count);
    release_views(model->grad_views, model->table.count);
    digcl_buffer_release(&model->params);
    digcl_buffer_release(&model->grads);
    free(model->flat_offsets);
    free(model->blocks);
    digcl_param_table_free(&model->table);
    free(model);
}

int digcl_model_fused_projections(const digcl_model *model) { return model->fused_projections; }
const digcl_model_config *digcl_model_get_config(const digcl_model *model) { return &model->config; }
const digcl_param_table *digcl_model_param_table(const digcl_model *model) { return &model->table; }
cl_mem digcl_model_param(const digcl_model *model, size_t index) { return model->param_views[index]; }
cl_mem digcl_model_grad(digcl_model *model, size_t index) {
    ensure_grads(model);
    return model->grad_views[index];
}
cl_mem digcl_model_param_buffer(const digcl_model *model) { return model->params.mem; }
cl_mem digcl_model_grad_buffer(digcl_model *model) {
    ensure_grads(model);
    return model->grads.mem;
}
size_t digcl_model_flat_count(const digcl_model *model) { return model->flat_count; }

void digcl_model_zero_grad(digcl_model *model) {
    ensure_grads(model);
    digcl_fill_f32(model->ctx, model->grads.mem, 0, model->flat_count, 0.0f);
}

void digcl_model_read_param(const digcl_model *model, size_t index, float *host) {
    digcl_read(model->ctx, model->params.mem, model->flat_offsets[index] * sizeof(float),
               model->table.params[index].numel * sizeof(float), host);
}

void digcl_model_write_param(digcl_model *model, size_t index, const float *host) {
    digcl_write(model->ctx, model->params.mem, model->flat_offsets[index] * sizeof(float),
                model->table.params[index].numel * sizeof(float), host);
}

void digcl_model_read_grad(digcl_model *model, size_t index, float *host) {
    ensure_grads(model);
    digcl_read(model->ctx, model->grads.mem, model->flat_offsets[index] * sizeof(float),
               model->table.params[index].numel * sizeof(float), host);
}

/* ------------------------------------------------------------ initialisation */

typedef struct init_rng {
    uint64_t state;
} init_rng;

static double rng_uniform(init_rng *rng) { /* splitmix64 -> [0, 1) */
    uint64_t z = (rng->state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return (double)((z ^ (z >> 31)) >> 11) * (1.0 / 9007199254740992.0);
}

static double rng_normal(init_rng *rng) {
    double u1 = rng_uniform(rng), u2 = rng_uniform(rng);
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* fan_out = shape[0], fan_in = the product of the rest (Linear [out, in];
 * the patch conv on its [D, C*p*p] view). */
static void xavier_uniform(init_rng *rng, const digcl_param_info *p, double gain, float *values) {
    double fan_out = (double)p->shape[0], fan_in = (double)p->numel / fan_out;
    double bound = gain * sqrt(6.0 / (fan_in + fan_out));
    for (size_t i = 0; i < p->numel; i++) values[i] = (float)((2.0 * rng_uniform(rng) - 1.0) * bound);
}

static void init_values(const digcl_model_config *config, init_rng *rng, const digcl_param_info *p,
                        float *values) {
    memset(values, 0, p->numel * sizeof *values);
    switch (p->init) {
    case DIGCL_INIT_XAVIER: xavier_uniform(rng, p, 1.0, values); break;
    case DIGCL_INIT_XAVIER_GLA: xavier_uniform(rng, p, pow(2.0, -2.5), values); break;
    case DIGCL_INIT_ZERO: break;
    case DIGCL_INIT_ONE:
        for (size_t i = 0; i < p->numel; i++) values[i] = 1.0f;
        break;
    case DIGCL_INIT_NORMAL_002:
        for (size_t i = 0; i < p->numel; i++) values[i] = (float)(0.02 * rng_normal(rng));
        break;
    case DIGCL_INIT_SINCOS_2D: digcl_pos_embed_2d(config->hidden_size, config->grid, config->grid, values); break;
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

static size_t largest_param(const digcl_param_table *table) {
    size_t largest = 1;
    for (size_t i = 0; i < table->count; i++)
        if (table->params[i].numel > largest) largest = table->params[i].numel;
    return largest;
}

void digcl_model_init(digcl_model *model, uint64_t seed) {
    init_rng rng = {seed};
    float *values = malloc(largest_param(&model->table) * sizeof *values);
    if (!values) digcl_fatal("out of host memory");
    for (size_t i = 0; i < model->table.count; i++) {
        init_values(&model->config, &rng, &model->table.params[i], values);
        digcl_model_write_param(model, i, values);
    }
    free(values);
}

void digcl_model_randomize(digcl_model *model, uint64_t seed, float stddev) {
    init_rng rng = {seed};
    float *values = malloc(largest_param(&model->table) * sizeof *values);
    if (!values) digcl_fatal("out of host memory");
    for (size_t i = 0; i < model->table.count; i++) {
        for (size_t j = 0; j < model->table.params[i].numel; j++) values[j] = (float)(stddev * rng_normal(&rng));
        digcl_model_write_param(model, i, values);
    }
    free(values);
}

/* ------------------------------------------------------------ planning */

void digcl_model_prepare(digcl_model *model, int batch, digcl_model_mode mode) {
    if (batch < 1) digcl_fatal("batch size must be at least 1, got %d", batch);
    if (model->batch == batch && model->mode == mode) return;
    if (mode == DIGCL_MODE_TRAINING) ensure_grads(model);
    release_plan(model);
    size_t alignment = digcl_context_device(model->ctx)->mem_base_addr_align_bytes;
    model_plan(&model->config, batch, mode, alignment, &model->arena, &model->embedding, &model->scratch,
               &model->saved, &model->skips, &model->d_skips);
    char what[96];
    snprintf(what, sizeof what, "activations (batch %d, %s)", batch,
             mode == DIGCL_MODE_TRAINING ? "training" : "inference");
    arena_allocate(&model->arena, model->ctx, what);
    model->batch = batch;
    model->mode = mode;
    float table[DIGCL_TIMESTEP_FREQUENCY_DIM];
    digcl_timestep_frequency_table(DIGCL_TIMESTEP_FREQUENCY_DIM, table);
    digcl_write(model->ctx, model->embedding.frequency_table, 0, sizeof table, table);
}

size_t digcl_model_activation_bytes(const digcl_model_config *config, int batch, digcl_model_mode mode,
                                    size_t alignment_bytes) {
    model_arena arena;
    model_embedding embedding;
    model_scratch scratch;
    block_saved *saved = NULL;
    cl_mem *skips = NULL, *d_skips = NULL;
    model_plan(config, batch, mode, alignment_bytes, &arena, &embedding, &scratch, &saved, &skips, &d_skips);
    size_t total = arena.total;
    free(arena.slots);
    free(saved);
    free(skips);
    free(d_skips);
    return total;
}

/* ------------------------------------------------------------ forward and backward */

/* DiG long skips (DIG_MODEL.md §1.4): pushed after block i for i < depth/2 - 1,
 * popped (LIFO) before block i for i > depth/2. */
static int pushes_skip(const digcl_model_config *c, int block) { return c->skip && block < c->depth / 2 - 1; }
static int pops_skip(const digcl_model_config *c, int block) { return c->skip && block > c->depth / 2; }
static int popped_slot(const digcl_model_config *c, int block) { return (c->depth - 1) - block; }

static int training(const digcl_model *model) { return model->mode == DIGCL_MODE_TRAINING; }

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
    return block == model->config.depth - 1 ? model->scratch.stream_out : block_input(model, block + 1);
}

static void check_buffer(cl_mem mem, size_t floats, const char *what, int batch) {
    size_t bytes = 0;
    if (!mem || clGetMemObjectInfo(mem, CL_MEM_SIZE, sizeof bytes, &bytes, NULL) != CL_SUCCESS)
        digcl_fatal("model %s: not a valid device buffer", what);
    if (bytes < floats * sizeof(float))
        digcl_fatal("model %s: buffer holds %zu bytes, batch %d needs %zu", what, bytes, batch, floats * sizeof(float));
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
        udig_forward(model, inputs, out);
        return;
    }
    const digcl_model_config *c = &model->config;
    size_t stream_bytes = (size_t)model->batch * c->tokens * c->hidden_size * sizeof(float);
    model_stem_forward(model, inputs, c->depth ? block_input(model, 0) : model->scratch.stream_out);
    for (int block = 0; block < c->depth; block++) {
        block_saved *saved = saved_for(model, block);
        cl_mem h_in = block_input(model, block);
        if (pops_skip(c, block)) {
            model_skip_fuse_forward(model, block, h_in, model->skips[popped_slot(c, block)], saved->h_in);
            h_in = saved->h_in;
        }
        if (c->arch == DIGCL_ARCH_DIG) dig_block_forward(model, block, h_in, block_output(model, block), saved);
        else dit_block_forward(model, block, h_in, block_output(model, block), saved);
        if (pushes_skip(c, block)) digcl_copy(model->ctx, block_output(model, block), 0, model->skips[block], 0, stream_bytes);
    }
    model_head_forward(model, model->scratch.stream_out, out);
}

void digcl_model_backward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem dout, cl_mem dx) {
    if (!training(model))
        digcl_fatal("digcl_model_backward: the model was prepared for inference; prepare it for training");
    check_inputs(model, inputs, dout);
    if (dx) check_buffer(dx, (size_t)model->batch * model->config.in_channels * model->config.input_size *
                                 model->config.input_size, "input gradient dx", model->batch);
    if (model->config.arch == DIGCL_ARCH_UDIG) {
        udig_backward(model, inputs, dout, dx);
        return;
    }
    const digcl_model_config *c = &model->config;
    size_t stream_floats = (size_t)model->batch * c->tokens * c->hidden_size;
    cl_mem *d = model->scratch.d_stream;
    int current = 0; /* d[current]: gradient of the stream where the loop stands */
    digcl_fill_f32(model->ctx, model->scratch.d_condition, 0, (size_t)model->batch * c->hidden_size, 0.0f);
    model_head_backward(model, model->scratch.stream_out, dout, d[current]);
    for (int block = c->depth - 1; block >= 0; block--) {
        if (pushes_skip(c, block)) digcl_axpy(model->ctx, stream_floats, 1.0f, model->d_skips[block], d[current]);
        block_saved *saved = saved_for(model, block);
        if (c->arch == DIGCL_ARCH_DIG) dig_block_backward(model, block, saved, d[current], d[1 - current]);
        else dit_block_backward(model, block, saved, d[current], d[1 - current]);
        if (pops_skip(c, block)) { /* d[1-current] is d(fused input): split it */
            int slot = popped_slot(c, block);
            model_skip_fuse_backward(model, block, saved->skip_in, model->skips[slot], d[1 - current], d[current],
                                     model->d_skips[slot]);
        } else {
            current = 1 - current;
        }
    }
    model_stem_backward(model, inputs, d[current], dx);
}
