/* The parts DiG and DiT share (docs/MODEL.md §3): patch embedding + frozen
 * sin-cos pos_embed, timestep and label embeddings giving the condition
 * c = t_emb + y_emb, SiLU(c) for every adaLN, and the final layer
 * (LN, adaLN shift/scale, Linear) with unpatchify. */
#include "digcl/activation.h"
#include "digcl/adaln.h"
#include "digcl/embed.h"
#include "digcl/norm.h"
#include "digcl/patch.h"
#include "model/model_internal.h"

static digcl_patch_shape input_patches(const digcl_model *model, int channels) {
    const digcl_model_config *c = &model->config;
    digcl_patch_shape shape = {model->batch, channels, c->input_size, c->input_size, c->patch_size};
    return shape;
}

/* stream [N, T, D] = patch_embed(x) + pos_embed; condition_act [N, D] = SiLU(t_emb + y_emb). */
void digcl_model_stem_forward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem stream) {
    const digcl_model_config *c = &model->config;
    const stem_params *p = &model->stem;
    model_embedding *e = &model->embedding;
    int N = model->batch, D = c->hidden_size;
    digcl_patch_shape patches = input_patches(model, c->in_channels);
    digcl_patch_embed_forward(
        model->ctx, &patches, D, inputs->x, digcl_model_weight(model, p->patch_weight),
        digcl_model_weight(model, p->patch_bias), digcl_model_weight(model, p->pos_embed), stream,
        model->scratch.workspace);
    digcl_timestep_embed_forward(model->ctx, N, DIGCL_TIMESTEP_FREQUENCY_DIM, inputs->t,
                                 e->frequency_table, e->t_frequency);
    digcl_model_linear(model, N, DIGCL_TIMESTEP_FREQUENCY_DIM, D, e->t_frequency, p->t_mlp0_weight,
                       p->t_mlp0_bias, e->t_hidden);
    digcl_silu_forward(model->ctx, N * D, e->t_hidden, e->t_hidden_act);
    digcl_model_linear(model, N, D, D, e->t_hidden_act, p->t_mlp2_weight, p->t_mlp2_bias,
                       e->condition);
    digcl_label_embed_forward(model->ctx, N, D, c->num_classes + 1, 1, inputs->y,
                              digcl_model_weight(model, p->label_table), e->condition);
    digcl_silu_forward(model->ctx, N * D, e->condition, e->condition_act);
}

/* out [N, C_out, H, W] = unpatchify(Linear(modulate(LN(stream), shift, scale))). */
void digcl_model_head_forward(digcl_model *model, cl_mem stream, cl_mem out) {
    const digcl_model_config *c = &model->config;
    const stem_params *p = &model->stem;
    model_scratch *s = &model->scratch;
    int N = model->batch, T = c->tokens, D = c->hidden_size;
    int features = c->patch_size * c->patch_size * c->out_channels;
    digcl_model_linear(model, N, D, 2 * D, model->embedding.condition_act, p->final_adaln_weight,
                       p->final_adaln_bias, s->final_modulation);
    digcl_layernorm_modulate_forward(model->ctx, N, T, D, stream,
                                     digcl_row_view_chunk(s->final_modulation, 0, 2, D),
                                     digcl_row_view_chunk(s->final_modulation, 1, 2, D), s->final_x,
                                     s->final_mean, s->final_rstd);
    digcl_model_linear(model, N * T, D, features, s->final_x, p->final_weight, p->final_bias,
                       s->tokens_out);
    digcl_patch_shape image = input_patches(model, c->out_channels);
    digcl_unpatchify_forward(model->ctx, &image, s->tokens_out, out);
}

/* d_stream [N, T, D] overwritten; d_condition [N, D] accumulates. */
void digcl_model_head_backward(digcl_model *model, cl_mem stream, cl_mem dout, cl_mem d_stream) {
    const digcl_model_config *c = &model->config;
    const stem_params *p = &model->stem;
    model_scratch *s = &model->scratch;
    int N = model->batch, T = c->tokens, D = c->hidden_size;
    int features = c->patch_size * c->patch_size * c->out_channels;
    digcl_patch_shape image = input_patches(model, c->out_channels);
    digcl_unpatchify_backward(model->ctx, &image, dout, s->d_tokens_out);
    digcl_model_linear_backward(model, N * T, D, features, s->d_tokens_out, s->final_x,
                                p->final_weight, p->final_bias, s->d_a, 0);
    digcl_layernorm_modulate_backward(
        model->ctx, N, T, D, s->d_a, stream, s->final_mean, s->final_rstd,
        digcl_row_view_chunk(s->final_modulation, 1, 2, D), d_stream, 0,
        digcl_row_view_chunk(s->d_final_modulation, 0, 2, D),
        digcl_row_view_chunk(s->d_final_modulation, 1, 2, D), s->workspace);
    digcl_model_linear_backward(model, N, D, 2 * D, s->d_final_modulation,
                                model->embedding.condition_act, p->final_adaln_weight,
                                p->final_adaln_bias, s->d_condition, 1);
}

/* From d_stream (gradient of the patch embedding output) and d_condition
 * (gradient of SiLU(c), summed over every adaLN): parameter gradients of the
 * stem, and dx [N, C, H, W] when not NULL. */
void digcl_model_stem_backward(digcl_model *model, const digcl_model_inputs *inputs,
                               cl_mem d_stream, cl_mem dx) {
    const digcl_model_config *c = &model->config;
    const stem_params *p = &model->stem;
    model_embedding *e = &model->embedding;
    model_scratch *s = &model->scratch;
    int N = model->batch, D = c->hidden_size;
    digcl_silu_backward(model->ctx, N * D, s->d_condition, e->condition, s->d_condition_pre, 0);
    digcl_label_embed_backward(model->ctx, N, D, c->num_classes + 1, inputs->y, s->d_condition_pre,
                               digcl_model_weight_grad(model, p->label_table));
    digcl_model_linear_backward(model, N, D, D, s->d_condition_pre, e->t_hidden_act,
                                p->t_mlp2_weight, p->t_mlp2_bias, e->d_t_hidden, 0);
    digcl_silu_backward(model->ctx, N * D, e->d_t_hidden, e->t_hidden, s->d_a, 0);
    digcl_model_linear_backward(model, N, DIGCL_TIMESTEP_FREQUENCY_DIM, D, s->d_a, e->t_frequency,
                                p->t_mlp0_weight, p->t_mlp0_bias, NULL, 0);
    digcl_patch_shape patches = input_patches(model, c->in_channels);
    digcl_patch_embed_backward(model->ctx, &patches, D, inputs->x,
                               digcl_model_weight(model, p->patch_weight), d_stream,
                               digcl_model_weight_grad(model, p->patch_weight),
                               digcl_model_weight_grad(model, p->patch_bias), dx, s->workspace);
}
