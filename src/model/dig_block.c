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
 * output and the streams h1, h2 from what the forward kept, into the shared
 * scratch; with DIGCL_ACTIVATIONS_KEEP the forward writes them into the block's
 * own buffers (block_saved) and the backward reads them there. */
#include <math.h>

#include "digcl/activation.h"
#include "digcl/adaln.h"
#include "digcl/conv.h"
#include "digcl/gemm.h"
#include "digcl/gla.h"
#include "digcl/linear.h"
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

/* Columns of the fused projection [q | k | v | g | low-rank gate]: the layout of
 * saved->projections and, in backward, of their gradients in scratch.wide. */
enum { PART_Q, PART_K, PART_V, PART_G, PART_LOW_RANK, PARTS };

static int fused_width(const dig_dims *d) { return 2 * d->Dk + 2 * d->D + DIGCL_GLA_GATE_LOW_RANK; }

typedef struct projection_part {
    int column, width;
} projection_part;

static projection_part fused_part(const dig_dims *d, int which) {
    const int widths[PARTS] = {d->Dk, d->Dk, d->D, d->D, DIGCL_GLA_GATE_LOW_RANK};
    int column = 0;
    for (int i = 0; i < which; i++) column += widths[i];
    return (projection_part){column, widths[which]};
}

/* Columns of parts [first, first + parts): adjacent in the rows and in the weights. */
static size_t parts_width(const dig_dims *d, int first, int parts) {
    size_t width = 0;
    for (int i = first; i < first + parts; i++) width += (size_t)fused_part(d, i).width;
    return width;
}

/* Head slices of one part of the projection rows, as the GLA reads them. */
static digcl_gla_strides projection_slice(const dig_dims *d, int which, int head_width) {
    size_t width = (size_t)fused_width(d);
    digcl_gla_strides x = {(size_t)fused_part(d, which).column, width, (size_t)head_width,
                           (size_t)d->T * width};
    return x;
}

/* q, k, v (and dq, dk, dv) in the projection rows; the log gate and o dense. */
static digcl_gla_shape gla_shape(const dig_dims *d) {
    digcl_gla_shape shape = digcl_gla_shape_token_major(d->N, d->T, d->H, d->K, d->V, 0);
    shape.q = projection_slice(d, PART_Q, d->K);
    shape.k = projection_slice(d, PART_K, d->K);
    shape.v = projection_slice(d, PART_V, d->V);
    return shape;
}

/* The g part's rows per (token, head), for the gated RMSNorm. */
static digcl_gate_rows output_gate_rows(const dig_dims *d) {
    digcl_gate_rows rows = {(size_t)fused_part(d, PART_G).column, (size_t)fused_width(d), d->H};
    return rows;
}

static float gla_scale(const dig_dims *d) { return 1.0f / sqrtf((float)d->K); }

/* x1 = modulate(LN(h_in), shift1, scale1), also (re)writing mean1/rstd1. */
static void modulated_norm1(digcl_model *model, const dig_dims *d, block_saved *saved,
                            cl_mem h_in) {
    digcl_layernorm_modulate_forward(model->ctx, d->N, d->T, d->D, h_in,
                                     block_modulation_vector(saved->modulation, 0, d->D),
                                     block_modulation_vector(saved->modulation, 1, d->D),
                                     kept_x1(model, saved), saved->mean1, saved->rstd1);
}

static void modulated_norm2(digcl_model *model, const dig_dims *d, block_saved *saved,
                            cl_mem h_mid) {
    digcl_layernorm_modulate_forward(model->ctx, d->N, d->T, d->D, h_mid,
                                     block_modulation_vector(saved->modulation, 3, d->D),
                                     block_modulation_vector(saved->modulation, 4, d->D),
                                     kept_x2(model, saved), saved->mean2, saved->rstd2);
}

/* h_mid = h_in + gate1 * branch1 */
static void first_stream(digcl_model *model, const dig_dims *d, block_saved *saved, cl_mem h_in) {
    digcl_gated_residual_forward(model->ctx, d->N, d->T, d->D, h_in,
                                 block_modulation_vector(saved->modulation, 2, d->D),
                                 saved->branch1, kept_h_mid(model, saved));
}

/* h_post = h_mid + gate2 * branch2 */
static void second_stream(digcl_model *model, const dig_dims *d, block_saved *saved) {
    digcl_gated_residual_forward(model->ctx, d->N, d->T, d->D, kept_h_mid(model, saved),
                                 block_modulation_vector(saved->modulation, 5, d->D),
                                 saved->branch2, kept_h_post(model, saved));
}

static void normed_gla_output(digcl_model *model, const dig_dims *d, const block_params *p,
                              block_saved *saved) {
    digcl_rmsnorm_gate_forward(model->ctx, d->rows * d->H, d->V, saved->o, saved->projections,
                               output_gate_rows(d), digcl_model_weight(model, p->norm_gate_weight),
                               0, kept_normed(model, saved));
}

static void forget_gate(digcl_model *model, const dig_dims *d, block_saved *saved) {
    digcl_forget_gate_forward(model->ctx, d->rows * d->Dk, DIGCL_FORGET_GATE_NORMALIZER,
                              saved->gate_raw, kept_log_gate(model, saved));
}

/* ------------------------------------------------------------ forward */

/* ------------------------------------------------------------ projections */

/* The fused path multiplies by W_all [width, D] (q_proj ... gk_proj.0 adjacent in the
 * parameters) at once; the separate path (DIGCL_FUSED_PROJECTIONS=0, or weights that
 * are not adjacent) by each part's weight. Both keep the same projection rows. */
static size_t part_weight_offset(digcl_model *model, const block_params *p, int which) {
    const int weights[PARTS] = {p->q_weight, p->k_weight, p->v_weight, p->g_weight,
                                p->gate_low_weight};
    return digcl_params_offset(model->params, (size_t)weights[which]);
}

/* projections[:, part] = x1 W_part^T: [rows, D] x [width, D]^T; width = all parts (fused)
 * or one. */
static void projection_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                               block_saved *saved, int first, int parts) {
    digcl_gemm_args args = {.transpose_b = 1,
                            .M = (size_t)d->rows,
                            .N = parts_width(d, first, parts),
                            .K = (size_t)d->D,
                            .alpha = 1.0f,
                            .beta = 0.0f,
                            .A = kept_x1(model, saved),
                            .lda = (size_t)d->D,
                            .B = digcl_params_buffer(model->active),
                            .b_offset = part_weight_offset(model, p, first),
                            .ldb = (size_t)d->D,
                            .C = saved->projections,
                            .c_offset = (size_t)fused_part(d, first).column,
                            .ldc = (size_t)fused_width(d)};
    digcl_gemm(model->ctx, &args);
}

static void projections_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                                block_saved *saved) {
    if (model->fused_projections) {
        projection_forward(model, d, p, saved, 0, PARTS);
        return;
    }
    for (int i = 0; i < PARTS; i++) projection_forward(model, d, p, saved, i, 1);
}

/* From the gradients of the projection rows (scratch.wide, same columns):
 * dx1 (=|+=) d_part W_part into d_a, and dW_part += d_part^T x1. */
static void projection_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                                const block_saved *saved, int first, int parts, int accumulate) {
    model_scratch *s = &model->scratch;
    size_t width = parts_width(d, first, parts), weights = part_weight_offset(model, p, first);
    size_t rows = (size_t)d->rows, D = (size_t)d->D, row = (size_t)fused_width(d);
    size_t column = (size_t)fused_part(d, first).column;
    digcl_gemm_args input_grad = {.M = rows,
                                  .N = D,
                                  .K = width,
                                  .alpha = 1.0f,
                                  .beta = accumulate ? 1.0f : 0.0f,
                                  .A = s->wide,
                                  .a_offset = column,
                                  .lda = row,
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
                                   .a_offset = column,
                                   .lda = row,
                                   .B = kept_x1(model, saved),
                                   .ldb = D,
                                   .C = digcl_params_grad_buffer(model->params),
                                   .c_offset = weights,
                                   .ldc = D};
    digcl_gemm(model->ctx, &weight_grad);
}

/* raw log gate = (x1 W0^T) W1^T + b1, reading x1 W0^T from the projection rows. */
static void gate_high_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                              block_saved *saved) {
    digcl_linear_shape shape = {d->rows, DIGCL_GLA_GATE_LOW_RANK, d->Dk};
    digcl_linear_forward_args args = {saved->projections,
                                      digcl_model_weight(model, p->gate_high_weight),
                                      0,
                                      digcl_model_weight(model, p->gate_high_bias),
                                      0,
                                      saved->gate_raw,
                                      (size_t)fused_part(d, PART_LOW_RANK).column,
                                      (size_t)fused_width(d)};
    digcl_linear_forward(model->ctx, shape, &args);
}

/* Its backward: d(x1 W0^T) into the low-rank columns of scratch.wide. */
static void gate_high_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                               block_saved *saved) {
    model_scratch *s = &model->scratch;
    digcl_linear_shape shape = {d->rows, DIGCL_GLA_GATE_LOW_RANK, d->Dk};
    const size_t column = (size_t)fused_part(d, PART_LOW_RANK).column, row = (size_t)fused_width(d);
    digcl_linear_backward_args args = {s->d_gate_raw,
                                       saved->projections,
                                       digcl_model_weight(model, p->gate_high_weight),
                                       0,
                                       s->wide,
                                       0,
                                       digcl_model_weight_grad(model, p->gate_high_weight),
                                       0,
                                       digcl_model_weight_grad(model, p->gate_high_bias),
                                       0,
                                       s->workspace,
                                       column,
                                       row,
                                       column,
                                       row};
    digcl_linear_backward(model->ctx, shape, &args);
}

/* ------------------------------------------------------------ forward */

static void gla_mixer_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                              block_saved *saved) {
    model_scratch *s = &model->scratch;
    projections_forward(model, d, p, saved);
    gate_high_forward(model, d, p, saved);
    forget_gate(model, d, saved);
    digcl_gla_shape shape = gla_shape(d);
    cl_mem rows = saved->projections; /* q, k, v */
    digcl_gla_forward(model->ctx, &shape, rows, rows, rows, kept_log_gate(model, saved), NULL,
                      saved->o, NULL, s->workspace, gla_scale(d));
    normed_gla_output(model, d, p, saved);
    digcl_model_linear(model, d->rows, d->D, d->D, kept_normed(model, saved), p->o_weight, -1,
                       saved->branch1);
}

static void mlp_forward(digcl_model *model, const dig_dims *d, const block_params *p,
                        block_saved *saved) {
    cl_mem activation = kept_mlp_act(model, saved); /* [N, T, F] */
    digcl_model_linear(model, d->rows, d->D, 2 * d->F, kept_x2(model, saved), p->mlp_gate_weight,
                       -1, saved->mlp_hidden);
    digcl_swiglu_forward(model->ctx, d->rows, d->F, saved->mlp_hidden, activation);
    digcl_model_linear(model, d->rows, d->F, d->D, activation, p->mlp_down_weight, -1,
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
    first_stream(model, &d, saved, h_in);
    modulated_norm2(model, &d, saved, kept_h_mid(model, saved));
    mlp_forward(model, &d, p, saved);
    second_stream(model, &d, saved);
    digcl_grid_shape grid = {d.N, d.E, d.E, d.D};
    digcl_depthwise_conv_forward(model->ctx, &grid, kept_h_post(model, saved),
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
    if (!saved->mlp_act) /* recompute */
        digcl_swiglu_forward(model->ctx, d->rows, d->F, saved->mlp_hidden,
                             kept_mlp_act(model, saved));
    digcl_model_linear_backward(model, d->rows, d->F, d->D, s->d_b, kept_mlp_act(model, saved),
                                p->mlp_down_weight, -1, s->d_c, 0);
    digcl_swiglu_backward(model->ctx, d->rows, d->F, s->d_c, saved->mlp_hidden, s->d_a, 0);
    if (!saved->x2) modulated_norm2(model, d, saved, kept_h_mid(model, saved)); /* recompute */
    digcl_model_linear_backward(model, d->rows, d->D, 2 * d->F, s->d_a, kept_x2(model, saved),
                                p->mlp_gate_weight, -1, s->d_b, 0);
    digcl_layernorm_modulate_backward(
        model->ctx, d->N, d->T, d->D, s->d_b, kept_h_mid(model, saved), saved->mean2, saved->rstd2,
        block_modulation_vector(saved->modulation, 4, d->D), d_in, 1,
        block_modulation_vector(s->d_modulation, 3, d->D),
        block_modulation_vector(s->d_modulation, 4, d->D), s->workspace);
}

/* Projections of x1: dx1 = sum over q, k, v, g, low-rank gate (into d_a), from the
 * projection rows' gradients in scratch.wide (dq, dk, dv, dg there already). */
static void projections_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                                 block_saved *saved) {
    model_scratch *s = &model->scratch;
    digcl_forget_gate_backward(model->ctx, d->rows * d->Dk, DIGCL_FORGET_GATE_NORMALIZER, s->d_gate,
                               saved->gate_raw, s->d_gate_raw, 0);
    gate_high_backward(model, d, p, saved);
    if (model->fused_projections) {
        projection_backward(model, d, p, saved, 0, PARTS, 0);
        return;
    }
    for (int i = 0; i < PARTS; i++) projection_backward(model, d, p, saved, i, 1, i > 0);
}

/* d_in = dL/dh_mid on entry; leaves dL/dh_in. */
static void gla_mixer_backward(digcl_model *model, const dig_dims *d, const block_params *p,
                               block_saved *saved, cl_mem h_in, cl_mem d_in) {
    model_scratch *s = &model->scratch;
    digcl_gated_residual_backward(model->ctx, d->N, d->T, d->D, d_in, saved->branch1,
                                  block_modulation_vector(saved->modulation, 2, d->D), s->d_b, 0,
                                  block_modulation_vector(s->d_modulation, 2, d->D), s->workspace);
    if (!saved->normed) normed_gla_output(model, d, p, saved); /* recompute */
    digcl_model_linear_backward(model, d->rows, d->D, d->D, s->d_b, kept_normed(model, saved),
                                p->o_weight, -1, s->d_c, 0);
    /* d_c: d normed o -> d_a: d o; d g into the g columns of scratch.wide */
    digcl_rmsnorm_gate_backward(
        model->ctx, d->rows * d->H, d->V, s->d_c, saved->o, saved->projections, output_gate_rows(d),
        digcl_model_weight(model, p->norm_gate_weight), 0, s->d_a, s->wide, 0,
        digcl_model_weight_grad(model, p->norm_gate_weight), 0, s->workspace);
    if (!saved->log_gate) forget_gate(model, d, saved); /* recompute */
    digcl_gla_shape shape = gla_shape(d);
    cl_mem rows = saved->projections, d_rows = s->wide; /* q, k, v; dq, dk, dv */
    digcl_gla_backward(model->ctx, &shape, rows, rows, rows, kept_log_gate(model, saved), NULL,
                       s->d_a, NULL, d_rows, d_rows, d_rows, s->d_gate, NULL, s->workspace,
                       gla_scale(d), 0);
    if (!saved->x1) modulated_norm1(model, d, saved, h_in); /* recompute */
    projections_backward(model, d, p, saved);
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
    if (!saved->h_mid) first_stream(model, &d, saved, h_in); /* recompute */
    if (!saved->h_post) second_stream(model, &d, saved);
    digcl_grid_shape grid = {d.N, d.E, d.E, d.D};
    digcl_depthwise_conv_backward(model->ctx, &grid, kept_h_post(model, saved),
                                  digcl_model_weight(model, p->conv_weight), s->d_a, d_in,
                                  digcl_model_weight_grad(model, p->conv_weight),
                                  digcl_model_weight_grad(model, p->conv_bias), s->workspace);
    mlp_backward(model, &d, p, saved, d_in);
    gla_mixer_backward(model, &d, p, saved, h_in, d_in);
    digcl_model_linear_backward(model, d.N, d.D, 6 * d.D, s->d_modulation,
                                model->embedding.condition_act, p->adaln_weight, p->adaln_bias,
                                s->d_condition, 1);
}
