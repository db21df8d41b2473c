/* One DiG block (docs/MODEL.md §2.1-§2.4), forward and backward:
 *
 *   m = adaLN(SiLU(c))                       -> shift1 scale1 gate1 shift2 scale2 gate2
 *   x1 = LN(h) (1 + scale1) + shift1
 *   q, k = x1 Wq^T, x1 Wk^T   v, g = x1 Wv^T, x1 Wg^T        // [N, T, Dk], [N, T, D]
 *   log gate = logsigmoid((x1 W0^T) W1^T + b1) / 16          // [N, T, Dk]
 *   o = GLA(q, k, v, log gate)                               // causal, per head
 *   h1 = h + gate1 * (RMSNorm(o) w * swish(g)) Wo^T
 *   x2 = LN(h1) (1 + scale2) + shift2
 *   h2 = h1 + gate2 * (swish(a) * b) Wdown^T,  [a | b] = x2 Wgate^T
 *   h_out = SREM_i(DWConv3x3(h2))                            // no residual
 *
 * Backward recomputes x1, x2, the log gate, the normed GLA output, the SwiGLU
 * output and the streams h1, h2 from what the forward kept. */
#include <math.h>

#include "digcl/activation.h"
#include "digcl/adaln.h"
#include "digcl/conv.h"
#include "digcl/gemm.h"
#include "digcl/gla.h"
#include "digcl/norm.h"
#include "digcl/srem.h"
#include "model/model_internal.h"

typedef struct dig_dims {
    int N, T, D, Dk, F, H, K, V, E, rows;
} dig_dims;

/* The block's own grid: the model's, or its U-DiG stage's (E = grid side, T = E*E). */
static dig_dims dims_of(const digcl_model *model, int index) {
    const digcl_model_config *c = &model->config;
    int E = digcl_model_block_grid(c, index), T = E * E;
    dig_dims d = {
        model->batch,  T, c->hidden_size,  c->qk_dim, c->mlp_hidden, c->num_heads, c->head_qk_dim,
        c->head_v_dim, E, model->batch * T};
    return d;
}

static digcl_gla_shape gla_shape(const dig_dims *d) {
    return digcl_gla_shape_token_major(d->N, d->T, d->H, d->K, d->V, 0);
}

static float gla_scale(const dig_dims *d) { return 1.0f / sqrtf((float)d->K); }

/* x1 = modulate(LN(h_in), shift1, scale1), also (re)writing mean1/rstd1. */
static void modulated_norm1(digcl_model *model, const dig_dims *d, block_saved *saved,
                            cl_mem h_in) {
    digcl_layernorm_modulate_forward(model->ctx, d->N, d->T, d->D, h_in,
                                     block_modulation_vector(saved->modulation, 0, d->D),
                                     block_modulation_vector(saved->modulation, 1, d->D),
                                     model->scratch.x1, saved->mean1, saved->rstd1);
}

static void modulated_norm2(digcl_model *model, const dig_dims *d, block_saved *saved,
                            cl_mem h_mid) {
    digcl_layernorm_modulate_forward(model->ctx, d->N, d->T, d->D, h_mid,
                                     block_modulation_vector(saved->modulation, 3, d->D),
                                     block_modulation_vector(saved->modulation, 4, d->D),
                                     model->scratch.x2, saved->mean2, saved->rstd2);
}

/* h_mid = h_in + gate1 * branch1; h_post = h_mid + gate2 * branch2. */
static void residual_streams(digcl_model *model, const dig_dims *d, block_saved *saved, cl_mem h_in,
                             int second) {
    model_scratch *s = &model->scratch;
    digcl_gated_residual_forward(model->ctx, d->N, d->T, d->D, h_in,
                                 block_modulation_vector(saved->modulation, 2, d->D),
                                 saved->branch1, s->h_mid);
    if (second)
        digcl_gated_residual_forward(model->ctx, d->N, d->T, d->D, s->h_mid,
                                     block_modulation_vector(saved->modulation, 5, d->D),
                                     saved->branch2, s->h_post);
}

static void normed_gla_output(digcl_model *model, const dig_dims *d, const block_params *p,
                              block_saved *saved) {
    digcl_rmsnorm_gate_forward(model->ctx, d->rows * d->H, d->V, saved->o, saved->g,
                               digcl_model_weight(model, p->norm_gate_weight), 0,
                               model->scratch.narrow);
}

/* ------------------------------------------------------------ forward */

/* ------------------------------------------------------------ fused projections */

/* Columns of the fused projection [q | k | v | g | low-rank gate]. */
static int fused_width(const dig_dims *d) { return 2 * d->Dk + 2 * d->D + DIGCL_GLA_GATE_LOW_RANK; }

typedef struct projection_part {
    int column, width;
} projection_part;

static void fused_parts(const dig_dims *d, projection_part parts[5]) {
    const int widths[5] = {d->Dk, d->Dk, d->D, d->D, DIGCL_GLA_GATE_LOW_RANK};
    for (int i = 0, column = 0; i < 5; column += widths[i], i++)
        parts[i] = (projection_part){column, widths[i]};
}

/* [rows, width] = x1 [rows, D] W_all^T, W_all [width, D] starting at q_proj. */
static void fused_projections_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                                      block_saved *saved) {
    model_scratch *s = &model->scratch;
    size_t width = (size_t)fused_width(d);
    digcl_gemm_args args = {.transpose_b = 1,
                            .M = (size_t)d->rows,
                            .N = width,
                            .K = (size_t)d->D,
                            .alpha = 1.0f,
                            .beta = 0.0f,
                            .A = s->x1,
                            .lda = (size_t)d->D,
                            .B = digcl_params_buffer(model->active),
                            .b_offset = digcl_params_offset(model->params, (size_t)p->q_weight),
                            .ldb = (size_t)d->D,
                            .C = s->wide,
                            .ldc = width};
    digcl_gemm(model->ctx, &args);
    cl_mem outputs[5] = {saved->q, saved->k, saved->v, saved->g, saved->gate_low};
    projection_part parts[5];
    fused_parts(d, parts);
    for (int i = 0; i < 5; i++)
        digcl_copy_columns(model->ctx, s->wide, width, (size_t)parts[i].column, outputs[i],
                           (size_t)parts[i].width, 0, (size_t)d->rows, (size_t)parts[i].width);
}

/* d_a = dx1 = [dq | dk | dv | dg | d low-rank] W_all; dW_all += d_all^T x1. */
static void fused_projections_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                                       cl_mem d_v, cl_mem d_g) {
    model_scratch *s = &model->scratch;
    size_t width = (size_t)fused_width(d), rows = (size_t)d->rows, D = (size_t)d->D;
    cl_mem gradients[5] = {s->d_q, s->d_k, d_v, d_g, s->d_gate_low};
    projection_part parts[5];
    fused_parts(d, parts);
    for (int i = 0; i < 5; i++)
        digcl_copy_columns(model->ctx, gradients[i], (size_t)parts[i].width, 0, s->wide, width,
                           (size_t)parts[i].column, rows, (size_t)parts[i].width);
    size_t weights = digcl_params_offset(model->params, (size_t)p->q_weight);
    digcl_gemm_args input_grad = {.M = rows,
                                  .N = D,
                                  .K = width,
                                  .alpha = 1.0f,
                                  .beta = 0.0f,
                                  .A = s->wide,
                                  .lda = width,
                                  .B = digcl_params_buffer(model->active),
                                  .b_offset = weights,
                                  .ldb = D,
                                  .C = s->d_a,
                                  .ldc = D};
    digcl_gemm(model->ctx, &input_grad);
    digcl_gemm_args weight_grad = {.transpose_a = 1,
                                   .M = width,
                                   .N = D,
                                   .K = rows,
                                   .alpha = 1.0f,
                                   .beta = 1.0f,
                                   .A = s->wide,
                                   .lda = width,
                                   .B = s->x1,
                                   .ldb = D,
                                   .C = digcl_params_grad_buffer(model->params),
                                   .c_offset = weights,
                                   .ldc = D};
    digcl_gemm(model->ctx, &weight_grad);
}

static void separate_projections_forward(digcl_model *model, const dig_dims *d,
                                         const block_params *p, block_saved *saved) {
    model_scratch *s = &model->scratch;
    digcl_model_linear(model, d->rows, d->D, d->Dk, s->x1, p->q_weight, -1, saved->q);
    digcl_model_linear(model, d->rows, d->D, d->Dk, s->x1, p->k_weight, -1, saved->k);
    digcl_model_linear(model, d->rows, d->D, d->D, s->x1, p->v_weight, -1, saved->v);
    digcl_model_linear(model, d->rows, d->D, d->D, s->x1, p->g_weight, -1, saved->g);
    digcl_model_linear(model, d->rows, d->D, DIGCL_GLA_GATE_LOW_RANK, s->x1, p->gate_low_weight, -1,
                       saved->gate_low);
}

/* ------------------------------------------------------------ forward */

static void gla_mixer_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                              block_saved *saved) {
    model_scratch *s = &model->scratch;
    if (model->fused_projections) fused_projections_forward(model, d, p, saved);
    else separate_projections_forward(model, d, p, saved);
    digcl_model_linear(model, d->rows, DIGCL_GLA_GATE_LOW_RANK, d->Dk, saved->gate_low,
                       p->gate_high_weight, p->gate_high_bias, saved->gate_raw);
    digcl_forget_gate_forward(model->ctx, d->rows * d->Dk, DIGCL_FORGET_GATE_NORMALIZER,
                              saved->gate_raw, s->gate);
    digcl_gla_shape shape = gla_shape(d);
    digcl_gla_forward(model->ctx, &shape, saved->q, saved->k, saved->v, s->gate, NULL, saved->o,
                      NULL, s->workspace, gla_scale(d));
    normed_gla_output(model, d, p, saved);
    digcl_model_linear(model, d->rows, d->D, d->D, s->narrow, p->o_weight, -1, saved->branch1);
}

static void mlp_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                        block_saved *saved) {
    model_scratch *s = &model->scratch;
    digcl_model_linear(model, d->rows, d->D, 2 * d->F, s->x2, p->mlp_gate_weight, -1,
                       saved->mlp_hidden);
    digcl_swiglu_forward(model->ctx, d->rows, d->F, saved->mlp_hidden, s->narrow);
    digcl_model_linear(model, d->rows, d->F, d->D, s->narrow, p->mlp_down_weight, -1,
                       saved->branch2);
}

void digcl_dig_block_forward(digcl_model *model, int index, cl_mem h_in, cl_mem h_out,
                             block_saved *saved) {
    const block_params *p = &model->blocks[index];
    model_scratch *s = &model->scratch;
    dig_dims d = dims_of(model, index);
    digcl_model_linear(model, d.N, d.D, 6 * d.D, model->embedding.condition_act, p->adaln_weight,
                       p->adaln_bias, saved->modulation);
    modulated_norm1(model, &d, saved, h_in);
    gla_mixer_forward(model, &d, p, saved);
    residual_streams(model, &d, saved, h_in, 0);
    modulated_norm2(model, &d, saved, s->h_mid);
    mlp_forward(model, &d, p, saved);
    digcl_gated_residual_forward(model->ctx, d.N, d.T, d.D, s->h_mid,
                                 block_modulation_vector(saved->modulation, 5, d.D), saved->branch2,
                                 s->h_post);
    digcl_grid_shape grid = {d.N, d.E, d.E, d.D};
    digcl_depthwise_conv_forward(model->ctx, &grid, s->h_post,
                                 digcl_model_weight(model, p->conv_weight),
                                 digcl_model_weight(model, p->conv_bias), s->x1);
    digcl_model_block_reorient_forward(model, index, d.N, d.E, d.D, s->x1, h_out);
}

/* ------------------------------------------------------------ backward */

/* d_in = dL/dh_post + (through x2) on entry to the MLP branch; leaves dL/dh_mid. */
static void mlp_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                         block_saved *saved, cl_mem d_in) {
    model_scratch *s = &model->scratch;
    digcl_gated_residual_backward(model->ctx, d->N, d->T, d->D, d_in, saved->branch2,
                                  block_modulation_vector(saved->modulation, 5, d->D), s->d_b, 0,
                                  block_modulation_vector(s->d_modulation, 5, d->D), s->workspace);
    digcl_swiglu_forward(model->ctx, d->rows, d->F, saved->mlp_hidden, s->narrow); /* recompute */
    digcl_model_linear_backward(model, d->rows, d->F, d->D, s->d_b, s->narrow, p->mlp_down_weight,
                                -1, s->d_c, 0);
    digcl_swiglu_backward(model->ctx, d->rows, d->F, s->d_c, saved->mlp_hidden, s->d_a, 0);
    modulated_norm2(model, d, saved, s->h_mid); /* recompute x2 */
    digcl_model_linear_backward(model, d->rows, d->D, 2 * d->F, s->d_a, s->x2, p->mlp_gate_weight,
                                -1, s->d_b, 0);
    digcl_layernorm_modulate_backward(
        model->ctx, d->N, d->T, d->D, s->d_b, s->h_mid, saved->mean2, saved->rstd2,
        block_modulation_vector(saved->modulation, 4, d->D), d_in, 1,
        block_modulation_vector(s->d_modulation, 3, d->D),
        block_modulation_vector(s->d_modulation, 4, d->D), s->workspace);
}

/* Projections of x1: dx1 = sum over q, k, v, g, low-rank gate (into d_a). */
static void projections_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                                 block_saved *saved, cl_mem d_v, cl_mem d_g) {
    model_scratch *s = &model->scratch;
    digcl_forget_gate_backward(model->ctx, d->rows * d->Dk, DIGCL_FORGET_GATE_NORMALIZER, s->d_gate,
                               saved->gate_raw, s->d_gate_raw, 0);
    digcl_model_linear_backward(model, d->rows, DIGCL_GLA_GATE_LOW_RANK, d->Dk, s->d_gate_raw,
                                saved->gate_low, p->gate_high_weight, p->gate_high_bias,
                                s->d_gate_low, 0);
    if (model->fused_projections) {
        fused_projections_backward(model, d, p, d_v, d_g);
        return;
    }
    digcl_model_linear_backward(model, d->rows, d->D, DIGCL_GLA_GATE_LOW_RANK, s->d_gate_low, s->x1,
                                p->gate_low_weight, -1, s->d_a, 0);
    digcl_model_linear_backward(model, d->rows, d->D, d->Dk, s->d_q, s->x1, p->q_weight, -1, s->d_a,
                                1);
    digcl_model_linear_backward(model, d->rows, d->D, d->Dk, s->d_k, s->x1, p->k_weight, -1, s->d_a,
                                1);
    digcl_model_linear_backward(model, d->rows, d->D, d->D, d_v, s->x1, p->v_weight, -1, s->d_a, 1);
    digcl_model_linear_backward(model, d->rows, d->D, d->D, d_g, s->x1, p->g_weight, -1, s->d_a, 1);
}

/* d_in = dL/dh_mid on entry; leaves dL/dh_in. */
static void gla_mixer_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                               block_saved *saved, cl_mem h_in, cl_mem d_in) {
    model_scratch *s = &model->scratch;
    digcl_gated_residual_backward(model->ctx, d->N, d->T, d->D, d_in, saved->branch1,
                                  block_modulation_vector(saved->modulation, 2, d->D), s->d_b, 0,
                                  block_modulation_vector(s->d_modulation, 2, d->D), s->workspace);
    normed_gla_output(model, d, p, saved); /* recompute */
    digcl_model_linear_backward(model, d->rows, d->D, d->D, s->d_b, s->narrow, p->o_weight, -1,
                                s->d_c, 0);
    /* d_c: d normed o -> d_a: d o, d_b: d g */
    digcl_rmsnorm_gate_backward(model->ctx, d->rows * d->H, d->V, s->d_c, saved->o, saved->g,
                                digcl_model_weight(model, p->norm_gate_weight), 0, s->d_a, s->d_b,
                                0, digcl_model_weight_grad(model, p->norm_gate_weight), 0,
                                s->workspace);
    digcl_forget_gate_forward(model->ctx, d->rows * d->Dk, DIGCL_FORGET_GATE_NORMALIZER,
                              saved->gate_raw, s->gate);
    digcl_gla_shape shape = gla_shape(d);
    digcl_gla_backward(model->ctx, &shape, saved->q, saved->k, saved->v, s->gate, NULL, s->d_a,
                       NULL, s->d_q, s->d_k, s->d_c, s->d_gate, NULL, s->workspace, gla_scale(d),
                       0);
    modulated_norm1(model, d, saved, h_in); /* recompute x1 */
    projections_backward(model, d, p, saved, s->d_c, s->d_b);
    digcl_layernorm_modulate_backward(
        model->ctx, d->N, d->T, d->D, s->d_a, h_in, saved->mean1, saved->rstd1,
        block_modulation_vector(saved->modulation, 1, d->D), d_in, 1,
        block_modulation_vector(s->d_modulation, 0, d->D),
        block_modulation_vector(s->d_modulation, 1, d->D), s->workspace);
}

void digcl_dig_block_backward(digcl_model *model, int index, block_saved *saved, cl_mem d_out,
                              cl_mem d_in) {
    const block_params *p = &model->blocks[index];
    model_scratch *s = &model->scratch;
    dig_dims d = dims_of(model, index);
    cl_mem h_in = saved->h_in;
    digcl_model_block_reorient_backward(model, index, d.N, d.E, d.D, d_out, s->d_a);
    residual_streams(model, &d, saved, h_in, 1); /* recompute h_mid, h_post */
    digcl_grid_shape grid = {d.N, d.E, d.E, d.D};
    digcl_depthwise_conv_backward(model->ctx, &grid, s->h_post,
                                  digcl_model_weight(model, p->conv_weight), s->d_a, d_in,
                                  digcl_model_weight_grad(model, p->conv_weight),
                                  digcl_model_weight_grad(model, p->conv_bias), s->workspace);
    mlp_backward(model, &d, p, saved, d_in);
    gla_mixer_backward(model, &d, p, saved, h_in, d_in);
    digcl_model_linear_backward(model, d.N, d.D, 6 * d.D, s->d_modulation,
                                model->embedding.condition_act, p->adaln_weight, p->adaln_bias,
                                s->d_condition, 1);
}
