/* Parameter lookup by upstream name, and the linear/skip-fuse helpers the
 * blocks use on named table entries. */
#include <stdio.h>
#include <stdlib.h>

#include "digcl/gemm.h"
#include "digcl/linear.h"
#include "digcl/reduce.h"
#include "model/model_internal.h"

static int find(const digcl_model *model, const char *name) {
    const digcl_param_info *info = digcl_param_table_find(model->table, name);
    if (!info) digcl_fatal("internal: parameter '%s' missing from the table", name);
    return (int)(info - model->table->params);
}

static int find_optional(const digcl_model *model, const char *name) {
    const digcl_param_info *info = digcl_param_table_find(model->table, name);
    return info ? (int)(info - model->table->params) : -1;
}

static int find_block(const digcl_model *model, int block, const char *suffix, int optional) {
    char name[DIGCL_PARAM_NAME_SIZE];
    snprintf(name, sizeof name, "blocks.%d.%s", block, suffix);
    return optional ? find_optional(model, name) : find(model, name);
}

static void find_dig_block(const digcl_model *model, int i, block_params *b) {
    b->q_weight = find_block(model, i, "attn.q_proj.weight", 0);
    b->k_weight = find_block(model, i, "attn.k_proj.weight", 0);
    b->v_weight = find_block(model, i, "attn.v_proj.weight", 0);
    b->g_weight = find_block(model, i, "attn.g_proj.weight", 0);
    b->gate_low_weight = find_block(model, i, "attn.gk_proj.0.weight", 0);
    b->gate_high_weight = find_block(model, i, "attn.gk_proj.1.weight", 0);
    b->gate_high_bias = find_block(model, i, "attn.gk_proj.1.bias", 0);
    b->o_weight = find_block(model, i, "attn.o_proj.weight", 0);
    b->norm_gate_weight = find_block(model, i, "attn.g_norm_swish_gate.weight", 0);
    b->mlp_gate_weight = find_block(model, i, "mlp.gate_proj.weight", 0);
    b->mlp_down_weight = find_block(model, i, "mlp.down_proj.weight", 0);
    b->conv_weight = find_block(model, i, "dw_conv.weight", 0);
    b->conv_bias = find_block(model, i, "dw_conv.bias", 0);
    b->skip_weight = find_block(model, i, "skip_linear.weight", 1);
    b->skip_bias = find_block(model, i, "skip_linear.bias", 1);
}

static void find_dit_block(const digcl_model *model, int i, block_params *b) {
    b->qkv_weight = find_block(model, i, "attn.qkv.weight", 0);
    b->qkv_bias = find_block(model, i, "attn.qkv.bias", 0);
    b->proj_weight = find_block(model, i, "attn.proj.weight", 0);
    b->proj_bias = find_block(model, i, "attn.proj.bias", 0);
    b->fc1_weight = find_block(model, i, "mlp.fc1.weight", 0);
    b->fc1_bias = find_block(model, i, "mlp.fc1.bias", 0);
    b->fc2_weight = find_block(model, i, "mlp.fc2.weight", 0);
    b->fc2_bias = find_block(model, i, "mlp.fc2.bias", 0);
    b->skip_weight = b->skip_bias = -1;
}

void digcl_model_find_params(digcl_model *model) {
    stem_params *s = &model->stem;
    s->pos_embed = find(model, "pos_embed");
    s->patch_weight = find(model, "x_embedder.proj.weight");
    s->patch_bias = find(model, "x_embedder.proj.bias");
    s->t_mlp0_weight = find(model, "t_embedder.mlp.0.weight");
    s->t_mlp0_bias = find(model, "t_embedder.mlp.0.bias");
    s->t_mlp2_weight = find(model, "t_embedder.mlp.2.weight");
    s->t_mlp2_bias = find(model, "t_embedder.mlp.2.bias");
    s->label_table = find(model, "y_embedder.embedding_table.weight");
    s->final_adaln_weight = find(model, "final_layer.adaLN_modulation.1.weight");
    s->final_adaln_bias = find(model, "final_layer.adaLN_modulation.1.bias");
    s->final_weight = find(model, "final_layer.linear.weight");
    s->final_bias = find(model, "final_layer.linear.bias");
    model->blocks =
        calloc((size_t)(model->config.depth ? model->config.depth : 1), sizeof *model->blocks);
    if (!model->blocks) digcl_fatal("out of host memory");
    for (int i = 0; i < model->config.depth; i++) {
        block_params *b = &model->blocks[i];
        b->adaln_weight = find_block(model, i, "adaLN_modulation.1.weight", 0);
        b->adaln_bias = find_block(model, i, "adaLN_modulation.1.bias", 0);
        if (digcl_arch_has_dig_blocks(model->config.arch)) find_dig_block(model, i, b);
        else find_dit_block(model, i, b);
    }
    if (model->config.arch == DIGCL_ARCH_UDIG) digcl_udig_find_params(model);
}

cl_mem digcl_model_weight(const digcl_model *model, int index) {
    return digcl_params_view(model->active, (size_t)index);
}
cl_mem digcl_model_weight_grad(const digcl_model *model, int index) {
    return digcl_params_grad_view(model->params, (size_t)index);
}

void digcl_model_linear(digcl_model *model, int rows, int in, int out, cl_mem x, int weight,
                        int bias, cl_mem y) {
    digcl_linear_shape shape = {rows, in, out};
    digcl_linear_forward_args args = {x, digcl_model_weight(model, weight),
                                      0, bias >= 0 ? digcl_model_weight(model, bias) : NULL,
                                      0, y,
                                      0, 0};
    digcl_linear_forward(model->ctx, shape, &args);
}

void digcl_model_linear_backward(digcl_model *model, int rows, int in, int out, cl_mem dy, cl_mem x,
                                 int weight, int bias, cl_mem dx, int accumulate_dx) {
    digcl_linear_shape shape = {rows, in, out};
    digcl_linear_backward_args args = {dy,
                                       x,
                                       digcl_model_weight(model, weight),
                                       0,
                                       dx,
                                       accumulate_dx,
                                       digcl_model_weight_grad(model, weight),
                                       0,
                                       bias >= 0 ? digcl_model_weight_grad(model, bias) : NULL,
                                       0,
                                       model->scratch.workspace,
                                       0,
                                       0,
                                       0,
                                       0};
    digcl_linear_backward(model->ctx, shape, &args);
}

/* ------------------------------------------------------------ skip fuse */

/* W = [W_stream | W_skip], [D, 2D]: fused = stream W_stream^T + skip W_skip^T + b. */
void digcl_model_skip_fuse_forward(digcl_model *model, int block, cl_mem stream, cl_mem skip,
                                   cl_mem fused) {
    const block_params *b = &model->blocks[block];
    digcl_model_concat_linear_forward(model, (size_t)model->batch * model->config.tokens,
                                      b->skip_weight, b->skip_bias, stream, skip, fused);
}

void digcl_model_skip_fuse_backward(digcl_model *model, int block, cl_mem stream, cl_mem skip,
                                    cl_mem d_fused, cl_mem d_stream, cl_mem d_skip) {
    const block_params *b = &model->blocks[block];
    digcl_model_concat_linear_backward(model, (size_t)model->batch * model->config.tokens,
                                       b->skip_weight, b->skip_bias, stream, skip, d_fused,
                                       d_stream, d_skip);
}

void digcl_model_concat_linear_forward(digcl_model *model, size_t rows, int weight_index, int bias,
                                       cl_mem stream, cl_mem skip, cl_mem fused) {
    size_t D = (size_t)model->config.hidden_size;
    cl_mem weight = digcl_model_weight(model, weight_index);
    digcl_gemm_args args = {.transpose_b = 1,
                            .M = rows,
                            .N = D,
                            .K = D,
                            .alpha = 1.0f,
                            .beta = 0.0f,
                            .A = stream,
                            .lda = D,
                            .B = weight,
                            .ldb = 2 * D,
                            .C = fused,
                            .ldc = D};
    digcl_gemm(model->ctx, &args);
    args.A = skip;
    args.b_offset = D;
    args.beta = 1.0f;
    digcl_gemm(model->ctx, &args);
    digcl_bias_add(model->ctx, (int)rows, (int)D, fused, digcl_model_weight(model, bias), 0);
}

void digcl_model_concat_linear_backward(digcl_model *model, size_t rows, int weight_index, int bias,
                                        cl_mem stream, cl_mem skip, cl_mem d_fused, cl_mem d_stream,
                                        cl_mem d_skip) {
    size_t D = (size_t)model->config.hidden_size;
    cl_mem weight = digcl_model_weight(model, weight_index),
           d_weight = digcl_model_weight_grad(model, weight_index);
    /* d_stream = d_fused W_stream, d_skip = d_fused W_skip: [rows, D] x [D, D] */
    digcl_gemm_args input_grad = {.M = rows,
                                  .N = D,
                                  .K = D,
                                  .alpha = 1.0f,
                                  .beta = 0.0f,
                                  .A = d_fused,
                                  .lda = D,
                                  .B = weight,
                                  .ldb = 2 * D,
                                  .C = d_stream,
                                  .ldc = D};
    digcl_gemm(model->ctx, &input_grad);
    input_grad.C = d_skip;
    input_grad.b_offset = D;
    digcl_gemm(model->ctx, &input_grad);
    /* dW_stream += d_fused^T stream, dW_skip += d_fused^T skip: [D, rows] x [rows, D] */
    digcl_gemm_args weight_grad = {.transpose_a = 1,
                                   .M = D,
                                   .N = D,
                                   .K = rows,
                                   .alpha = 1.0f,
                                   .beta = 1.0f,
                                   .A = d_fused,
                                   .lda = D,
                                   .B = stream,
                                   .ldb = D,
                                   .C = d_weight,
                                   .ldc = 2 * D};
    digcl_gemm(model->ctx, &weight_grad);
    weight_grad.B = skip;
    weight_grad.c_offset = D;
    digcl_gemm(model->ctx, &weight_grad);
    digcl_column_sum(model->ctx, 1, (int)rows, (int)D, d_fused, 0, 1.0f,
                     digcl_model_weight_grad(model, bias), 0, D, 1, model->scratch.workspace, 0);
}
