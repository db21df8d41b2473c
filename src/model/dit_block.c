/* One DiT block (facebookresearch/DiT, docs/MODEL.md (DiT)), forward and backward:
 *
 *   m = adaLN(SiLU(c))                        -> shift1 scale1 gate1 shift2 scale2 gate2
 *   h1 = h + gate1 * Proj(Attention(QKV(modulate(LN(h), shift1, scale1))))
 *   h_out = h1 + gate2 * FC2(GELU_tanh(FC1(modulate(LN(h1), shift2, scale2))))
 *
 * Attention is timm's fused-qkv layout [N, T, 3, H, dh], non-causal, scale
 * dh^-0.5, through the O(T)-memory tiled kernel, or with config.attention
 * naive through the materialised [N, H, T, T] probabilities, kept per block
 * (docs/MODEL.md "DiT attention modes"). Backward recomputes the modulated
 * norms, h1 and the GELU output, or with DIGCL_ACTIVATIONS_KEEP reads the
 * block's own copies of them that the forward wrote. */
#include "digcl/activation.h"
#include "digcl/adaln.h"
#include "digcl/attention.h"
#include "digcl/norm.h"
#include "model/model_internal.h"

typedef struct dit_dims {
    int N, T, D, F, H, rows;
} dit_dims;

static dit_dims dims_of(const digcl_model *model) {
    const digcl_model_config *c = &model->config;
    dit_dims d = {model->batch,  c->tokens,    c->hidden_size,
                  c->mlp_hidden, c->num_heads, model->batch * c->tokens};
    return d;
}

static digcl_attention_shape attention_shape(const digcl_model *model, const dit_dims *d) {
    digcl_attention_shape shape = {d->N, d->T, d->H, model->config.hidden_size / d->H};
    return shape;
}

static int naive_attention(const digcl_model *model) {
    return model->config.attention == DIGCL_ATTENTION_NAIVE;
}

/* saved->attention [N, T, D] from saved->qkv [N, T, 3D]. */
static void attention_forward(digcl_model *model, const dit_dims *d, block_saved *saved) {
    digcl_attention_shape shape = attention_shape(model, d);
    if (naive_attention(model))
        digcl_attention_naive_forward(model->ctx, &shape, saved->qkv, saved->attention,
                                      saved->probs);
    else
        digcl_attention_forward(model->ctx, &shape, saved->qkv, saved->attention, saved->logsumexp);
}

static void modulated_norm(digcl_model *model, const dit_dims *d, block_saved *saved, cl_mem h,
                           int second) {
    cl_mem out = second ? kept_x2(model, saved) : kept_x1(model, saved);
    digcl_layernorm_modulate_forward(
        model->ctx, d->N, d->T, d->D, h,
        block_modulation_vector(saved->modulation, second ? 3 : 0, d->D),
        block_modulation_vector(saved->modulation, second ? 4 : 1, d->D), out,
        second ? saved->mean2 : saved->mean1, second ? saved->rstd2 : saved->rstd1);
}

static void first_residual(digcl_model *model, const dit_dims *d, block_saved *saved, cl_mem h_in) {
    digcl_gated_residual_forward(model->ctx, d->N, d->T, d->D, h_in,
                                 block_modulation_vector(saved->modulation, 2, d->D),
                                 saved->branch1, kept_h_mid(model, saved));
}

void digcl_dit_block_forward(digcl_model *model, int index, cl_mem h_in, cl_mem h_out,
                             block_saved *saved) {
    const block_params *p = &model->blocks[index];
    dit_dims d = dims_of(model);
    digcl_model_linear(model, d.N, d.D, 6 * d.D, model->embedding.condition_act, p->adaln_weight,
                       p->adaln_bias, saved->modulation);
    modulated_norm(model, &d, saved, h_in, 0);
    digcl_model_linear(model, d.rows, d.D, 3 * d.D, kept_x1(model, saved), p->qkv_weight,
                       p->qkv_bias, saved->qkv);
    attention_forward(model, &d, saved);
    digcl_model_linear(model, d.rows, d.D, d.D, saved->attention, p->proj_weight, p->proj_bias,
                       saved->branch1);
    first_residual(model, &d, saved, h_in);
    cl_mem h_mid = kept_h_mid(model, saved), activation = kept_mlp_act(model, saved);
    modulated_norm(model, &d, saved, h_mid, 1);
    digcl_model_linear(model, d.rows, d.D, d.F, kept_x2(model, saved), p->fc1_weight, p->fc1_bias,
                       saved->fc1);
    digcl_gelu_tanh_forward(model->ctx, d.rows * d.F, saved->fc1, activation);
    digcl_model_linear(model, d.rows, d.F, d.D, activation, p->fc2_weight, p->fc2_bias,
                       saved->branch2);
    digcl_gated_residual_forward(model->ctx, d.N, d.T, d.D, h_mid,
                                 block_modulation_vector(saved->modulation, 5, d.D), saved->branch2,
                                 h_out);
}

/* d_in = d_out on entry; leaves dL/dh_mid. */
static void mlp_backward(digcl_model *model, const dit_dims *d, const block_params *p,
                         block_saved *saved, cl_mem d_in) {
    model_scratch *s = &model->scratch;
    digcl_gated_residual_backward(model->ctx, d->N, d->T, d->D, d_in, saved->branch2,
                                  block_modulation_vector(saved->modulation, 5, d->D), s->d_b, 0,
                                  block_modulation_vector(s->d_modulation, 5, d->D), s->workspace);
    if (!saved->mlp_act) /* recompute */
        digcl_gelu_tanh_forward(model->ctx, d->rows * d->F, saved->fc1, kept_mlp_act(model, saved));
    digcl_model_linear_backward(model, d->rows, d->F, d->D, s->d_b, kept_mlp_act(model, saved),
                                p->fc2_weight, p->fc2_bias, s->d_c, 0);
    digcl_gelu_tanh_backward(model->ctx, d->rows * d->F, s->d_c, saved->fc1, s->d_a, 0);
    if (!saved->x2) modulated_norm(model, d, saved, kept_h_mid(model, saved), 1); /* recompute */
    digcl_model_linear_backward(model, d->rows, d->D, d->F, s->d_a, kept_x2(model, saved),
                                p->fc1_weight, p->fc1_bias, s->d_b, 0);
    digcl_layernorm_modulate_backward(
        model->ctx, d->N, d->T, d->D, s->d_b, kept_h_mid(model, saved), saved->mean2, saved->rstd2,
        block_modulation_vector(saved->modulation, 4, d->D), d_in, 1,
        block_modulation_vector(s->d_modulation, 3, d->D),
        block_modulation_vector(s->d_modulation, 4, d->D), s->workspace);
}

/* d_in = dL/dh_mid on entry; leaves dL/dh_in. */
static void attention_backward(digcl_model *model, const dit_dims *d, const block_params *p,
                               block_saved *saved, cl_mem h_in, cl_mem d_in) {
    model_scratch *s = &model->scratch;
    digcl_attention_shape shape = attention_shape(model, d);
    digcl_gated_residual_backward(model->ctx, d->N, d->T, d->D, d_in, saved->branch1,
                                  block_modulation_vector(saved->modulation, 2, d->D), s->d_b, 0,
                                  block_modulation_vector(s->d_modulation, 2, d->D), s->workspace);
    digcl_model_linear_backward(model, d->rows, d->D, d->D, s->d_b, saved->attention,
                                p->proj_weight, p->proj_bias, s->d_c, 0);
    if (naive_attention(model))
        digcl_attention_naive_backward(model->ctx, &shape, saved->qkv, saved->probs, s->d_c, s->d_a,
                                       s->d_probs);
    else
        digcl_attention_backward(model->ctx, &shape, saved->qkv, saved->attention, saved->logsumexp,
                                 s->d_c, s->d_a, s->workspace);
    if (!saved->x1) modulated_norm(model, d, saved, h_in, 0); /* recompute */
    digcl_model_linear_backward(model, d->rows, d->D, 3 * d->D, s->d_a, kept_x1(model, saved),
                                p->qkv_weight, p->qkv_bias, s->d_b, 0);
    digcl_layernorm_modulate_backward(
        model->ctx, d->N, d->T, d->D, s->d_b, h_in, saved->mean1, saved->rstd1,
        block_modulation_vector(saved->modulation, 1, d->D), d_in, 1,
        block_modulation_vector(s->d_modulation, 0, d->D),
        block_modulation_vector(s->d_modulation, 1, d->D), s->workspace);
}

void digcl_dit_block_backward(digcl_model *model, int index, block_saved *saved, cl_mem d_out,
                              cl_mem d_in) {
    const block_params *p = &model->blocks[index];
    dit_dims d = dims_of(model);
    size_t stream_bytes = (size_t)d.rows * d.D * sizeof(float);
    digcl_copy(model->ctx, d_out, 0, d_in, 0, stream_bytes);          /* the residual path */
    if (!saved->h_mid) first_residual(model, &d, saved, saved->h_in); /* recompute */
    mlp_backward(model, &d, p, saved, d_in);
    attention_backward(model, &d, p, saved, saved->h_in, d_in);
    digcl_model_linear_backward(model, d.N, d.D, 6 * d.D, model->scratch.d_modulation,
                                model->embedding.condition_act, p->adaln_weight, p->adaln_bias,
                                model->scratch.d_condition, 1);
}
