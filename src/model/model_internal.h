/* The digcl_model layout and the pieces shared by the src/model files. */
#ifndef DIGCL_MODEL_INTERNAL_H
#define DIGCL_MODEL_INTERNAL_H

#include "digcl/adaln.h"
#include "digcl/model.h"
#include "digcl/params.h"
#include "model/arena.h"

/* Table indices of one DiG or DiT block's parameters (-1: absent). */
typedef struct block_params {
    int adaln_weight, adaln_bias; /* [6D, D], [6D] */
    int skip_weight, skip_bias;   /* [D, 2D], [D] (DiG skip blocks) */
    /* DiG */
    int q_weight, k_weight, v_weight, g_weight; /* [Dk, D], [Dk, D], [D, D], [D, D] */
    int gate_low_weight;                        /* gk_proj.0 [16, D] */
    int gate_high_weight, gate_high_bias;       /* gk_proj.1 [Dk, 16], [Dk] */
    int o_weight;                               /* [D, D] */
    int norm_gate_weight;                       /* [64] */
    int mlp_gate_weight, mlp_down_weight;       /* [2F, D], [D, F] */
    int conv_weight, conv_bias;                 /* [D, 1, 3, 3], [D] */
    /* DiT */
    int qkv_weight, qkv_bias;   /* [3D, D], [3D] */
    int proj_weight, proj_bias; /* [D, D], [D] */
    int fc1_weight, fc1_bias;   /* [F, D], [F] */
    int fc2_weight, fc2_bias;   /* [D, F], [D] */
} block_params;

typedef struct stem_params {
    int pos_embed, patch_weight, patch_bias;
    int t_mlp0_weight, t_mlp0_bias, t_mlp2_weight, t_mlp2_bias;
    int label_table;
    int final_adaln_weight, final_adaln_bias, final_weight, final_bias;
} stem_params;

/* U-DiG (udig.c, docs/MODEL.md "U-DiG"): table indices of the stage transitions;
 * index k = 0 is the transition next to the bottleneck's outer side
 * (downsample.0: E -> E/2, upsample.1: E/2 -> E, skip_fuse.1 with skip_1). */
typedef struct udig_params {
    int down_weight[2], down_bias[2]; /* [D, 4D], [D] */
    int up_weight[2], up_bias[2];     /* [4D, D], [4D] */
    int fuse_weight[2], fuse_bias[2]; /* [D, 2D], [D] */
} udig_params;

/* What a U-DiG plan puts in model->skips (d_skips: UDIG_SKIP1, UDIG_SKIP2 in TRAINING). */
enum udig_slot {
    UDIG_SKIP1,      /* [N, T, D] encoder stage 1 output: skip_1 */
    UDIG_SKIP2,      /* [N, T/4, D] encoder stage 2 output: skip_2 */
    UDIG_BOTTLENECK, /* [N, T/16, D] bottleneck output */
    UDIG_UP2,        /* [N, T/4, D] upsample.0 output (before skip_fuse.0) */
    UDIG_DECODER2,   /* [N, T/4, D] decoder stage 2 output */
    UDIG_UP1,        /* [N, T, D] upsample.1 output (before skip_fuse.1) */
    UDIG_SLOTS
};

/* Activations of one block kept for backward (TRAINING) or reused (INFERENCE). */
typedef struct block_saved {
    cl_mem h_in;                       /* [N, T, D] block input (after the skip fuse) */
    cl_mem skip_in;                    /* [N, T, D] stream before the skip fuse (skip blocks) */
    cl_mem modulation;                 /* [N, 6D] */
    cl_mem mean1, rstd1, mean2, rstd2; /* [N*T] */
    cl_mem branch1;                    /* [N, T, D] attention/GLA branch output before the gate */
    cl_mem branch2;                    /* [N, T, D] MLP branch output before the gate */
    /* DiG */
    cl_mem projections; /* [N, T, 2Dk + 2D + 16]: [q | k | v | g | low-rank gate] columns */
    cl_mem gate_raw;    /* [N, T, Dk] before logsigmoid/16 */
    cl_mem o;           /* [N, T, D] GLA output */
    cl_mem mlp_hidden;  /* [N, T, 2F] gate_proj output */
    /* DiT */
    cl_mem qkv;       /* [N, T, 3D] */
    cl_mem attention; /* [N, T, D] */
    cl_mem logsumexp; /* [N, H, T] (tiled attention) */
    cl_mem probs;     /* [N, H, T, T] softmax(scale q k^T) (naive attention) */
    cl_mem fc1;       /* [N, T, F] */
    /* DIGCL_ACTIVATIONS_KEEP (training) only, else NULL: the backward recomputes them into
     * model_scratch (read them through kept_x1 ... kept_mlp_act) */
    cl_mem x1, x2;        /* [N, T, D] modulated norms */
    cl_mem h_mid, h_post; /* [N, T, D] streams between the branches (h_post: DiG) */
    cl_mem normed;        /* [N, T, D] DiG: the gated RMSNorm of o */
    cl_mem log_gate;      /* [N, T, Dk] DiG: the GLA log gate */
    cl_mem mlp_act;       /* [N, T, F] SwiGLU (DiG) or GELU (DiT) output */
} block_saved;

/* Scratch shared by all blocks (never needed across blocks). */
typedef struct model_scratch {
    cl_mem x1, x2;             /* [N, T, D] modulated norms */
    cl_mem wide;               /* [N, T, wide]; DiG backward: the projection rows' gradients */
    cl_mem narrow;             /* [N, T, max(F, D)] */
    cl_mem h_mid;              /* [N, T, D] stream between the branches */
    cl_mem h_post;             /* [N, T, D] stream before conv/SREM */
    cl_mem gate;               /* [N, T, Dk] GLA log gate */
    cl_mem d_stream[2];        /* [N, T, D] running stream gradient (ping-pong) */
    cl_mem d_a, d_b, d_c;      /* [N, T, wide], wide = max(2F, 3D, F, 2D, 2Dk + 2D + 16) */
    cl_mem d_gate, d_gate_raw; /* [N, T, Dk] */
    cl_mem d_modulation;       /* [N, 6D] */
    cl_mem d_probs;            /* [N, H, T, T] naive attention: dP, then dS */
    cl_mem d_condition;        /* [N, D] gradient of SiLU(c), summed over blocks and head */
    cl_mem d_condition_pre;    /* [N, D] gradient of c */
    cl_mem stream_ping[2];     /* [N, T, D] INFERENCE block inputs */
    cl_mem workspace;          /* the largest workspace any op asks for */
    size_t workspace_bytes;
    cl_mem gla_workspace; /* per-block GLA states are recomputed in backward */
    cl_mem tokens_out;    /* [N, T, p*p*Cout] */
    cl_mem d_tokens_out;  /* [N, T, p*p*Cout] */
    cl_mem final_x, final_modulation, final_mean, final_rstd; /* [N,T,D], [N,2D], [N*T] x2 */
    cl_mem d_final_modulation;                                /* [N, 2D] */
    cl_mem stream_out; /* [N, T, D] stream after the last block */
} model_scratch;

typedef struct model_embedding {
    cl_mem frequency_table; /* [2, 128] */
    cl_mem t_frequency;     /* [N, 256] */
    cl_mem t_hidden;        /* [N, D] mlp.0 output */
    cl_mem t_hidden_act;    /* [N, D] SiLU of it */
    cl_mem condition;       /* [N, D] c = t_emb + y_emb */
    cl_mem condition_act;   /* [N, D] SiLU(c) */
    cl_mem d_t_hidden;      /* [N, D] */
} model_embedding;

/* One planned set of activations (see digcl_model_prepare). */
typedef struct model_activations {
    int batch; /* capacity; 0: not planned */
    model_arena arena;
    model_embedding embedding;
    model_scratch scratch;
    block_saved *saved;
    cl_mem *skips, *d_skips;
} model_activations;

struct digcl_model {
    digcl_context *ctx;
    digcl_model_config config;
    digcl_params *params;           /* the model's own parameters (and gradients) */
    const digcl_params *active;     /* what forward and backward read: params or an EMA copy */
    const digcl_param_table *table; /* = digcl_params_table(params) */
    stem_params stem;
    block_params *blocks;
    int fused_projections; /* DiG: q, k, v, g, gk_proj.0 adjacent -> one GEMM */

    int batch;                  /* prepared batch */
    digcl_model_mode mode;      /* prepared mode */
    digcl_model_mode layout;    /* mode of the active activations (training serves inference too) */
    model_activations plans[2]; /* indexed by mode */
    int allocations;            /* activation plans allocated so far */
    /* the active plan's tensors */
    model_embedding embedding;
    model_scratch scratch;
    block_saved *saved; /* depth entries (TRAINING) or 1 shared (INFERENCE) */
    cl_mem *skips;      /* [N, T, D] per pushed skip */
    cl_mem *d_skips;    /* gradients of the pushed skips */
    udig_params udig;   /* U-DiG stage transitions (arch udig) */
    /* digcl_model_set_backward_progress: progress_from[k] is where the final
     * gradients begin once block k's backward is enqueued, [depth] after the head. */
    digcl_backward_progress progress;
    void *progress_user;
    size_t *progress_from;
};

/* Where a block's recomputable activation lives: its own copy (non-NULL with
 * DIGCL_ACTIVATIONS_KEEP) or the shared scratch the backward recomputes it into. One place
 * pairs each with its scratch (the normed GLA output and the MLP activation share narrow). */
static inline cl_mem block_kept(cl_mem kept, cl_mem scratch) { return kept ? kept : scratch; }
static inline cl_mem kept_x1(const digcl_model *m, const block_saved *b) {
    return block_kept(b->x1, m->scratch.x1);
}
static inline cl_mem kept_x2(const digcl_model *m, const block_saved *b) {
    return block_kept(b->x2, m->scratch.x2);
}
static inline cl_mem kept_h_mid(const digcl_model *m, const block_saved *b) {
    return block_kept(b->h_mid, m->scratch.h_mid);
}
static inline cl_mem kept_h_post(const digcl_model *m, const block_saved *b) {
    return block_kept(b->h_post, m->scratch.h_post);
}
static inline cl_mem kept_normed(const digcl_model *m, const block_saved *b) {
    return block_kept(b->normed, m->scratch.narrow);
}
static inline cl_mem kept_log_gate(const digcl_model *m, const block_saved *b) {
    return block_kept(b->log_gate, m->scratch.gate);
}
static inline cl_mem kept_mlp_act(const digcl_model *m, const block_saved *b) {
    return block_kept(b->mlp_act, m->scratch.narrow);
}

/* model_params.c */
void digcl_model_find_params(digcl_model *model);

/* model_plan.c */
void digcl_model_plan(const digcl_model_config *config, int batch, digcl_model_mode mode,
                      size_t alignment, model_arena *arena, model_embedding *embedding,
                      model_scratch *scratch, block_saved **saved, cl_mem **skips,
                      cl_mem **d_skips);
/* The widest activation row (floats per token), and the largest tensor (floats)
 * of a training plan for `batch` (the inference plan's tensors are no larger). */
size_t digcl_model_plan_row_floats(const digcl_model_config *config);
size_t digcl_model_plan_largest_tensor(const digcl_model_config *config, int batch);

/* model_stem.c: patch/timestep/label embeddings and the final layer. */
void digcl_model_stem_forward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem stream);
void digcl_model_head_forward(digcl_model *model, cl_mem stream, cl_mem out);
void digcl_model_head_backward(digcl_model *model, cl_mem stream, cl_mem dout, cl_mem d_stream);
void digcl_model_stem_backward(digcl_model *model, const digcl_model_inputs *inputs,
                               cl_mem d_stream, cl_mem dx);

/* model.c: the DiG long-skip fuse h = skip_linear(cat[h, skip]) and its backward
 * (d_fused -> d_stream overwritten, d_skip overwritten). */
void digcl_model_skip_fuse_forward(digcl_model *model, int block, cl_mem stream, cl_mem skip,
                                   cl_mem fused);
void digcl_model_skip_fuse_backward(digcl_model *model, int block, cl_mem stream, cl_mem skip,
                                    cl_mem d_fused, cl_mem d_stream, cl_mem d_skip);

/* model_params.c: the skip fuse on any rows and weights (by table index), as U-DiG
 * uses it too: fused [rows, D] = stream W_s^T + skip W_k^T + bias, W = [W_s | W_k]
 * [D, 2D]; backward overwrites d_stream and d_skip, accumulates dW and dbias. */
void digcl_model_concat_linear_forward(digcl_model *model, size_t rows, int weight, int bias,
                                       cl_mem stream, cl_mem skip, cl_mem fused);
void digcl_model_concat_linear_backward(digcl_model *model, size_t rows, int weight, int bias,
                                        cl_mem stream, cl_mem skip, cl_mem d_fused, cl_mem d_stream,
                                        cl_mem d_skip);

/* udig.c: U-DiG's stage pipeline (docs/MODEL.md "U-DiG"). */
void digcl_udig_find_params(digcl_model *model);
void digcl_udig_plan(model_arena *arena, const digcl_model_config *config, int batch, int training,
                     cl_mem *slots, cl_mem *d_slots);
void digcl_udig_forward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem out);
void digcl_udig_backward(digcl_model *model, const digcl_model_inputs *inputs, cl_mem dout,
                         cl_mem dx);
/* The reorientation after DiG block `block` (y from x, [N, side*side, D]): SREM for
 * dig; for udig SREM by the block's index inside its stage, and back to R order
 * after a stage's last block. The backward overwrites dx. */
void digcl_model_block_reorient_forward(digcl_model *model, int block, int N, int side, int D,
                                        cl_mem x, cl_mem y);
void digcl_model_block_reorient_backward(digcl_model *model, int block, int N, int side, int D,
                                         cl_mem dy, cl_mem dx);

/* dig_block.c, dit_block.c */
void digcl_dig_block_forward(digcl_model *model, int index, cl_mem h_in, cl_mem h_out,
                             block_saved *saved);
void digcl_dig_block_backward(digcl_model *model, int index, block_saved *saved, cl_mem d_out,
                              cl_mem d_in);
void digcl_dit_block_forward(digcl_model *model, int index, cl_mem h_in, cl_mem h_out,
                             block_saved *saved);
void digcl_dit_block_backward(digcl_model *model, int index, block_saved *saved, cl_mem d_out,
                              cl_mem d_in);

/* Vector `index` of a block's six adaLN vectors (shift1 scale1 gate1 shift2
 * scale2 gate2), read in place from the [N, 6D] modulation. */
static inline digcl_row_view block_modulation_vector(cl_mem modulation, int index, int D) {
    return digcl_row_view_chunk(modulation, index, 6, D);
}

/* Shorthands for ops on table entries. */
cl_mem digcl_model_weight(const digcl_model *model, int index);
cl_mem digcl_model_weight_grad(const digcl_model *model, int index);
/* y [rows, out] = x W^T (+ b), weight/bias by table index (bias -1: none). */
void digcl_model_linear(digcl_model *model, int rows, int in, int out, cl_mem x, int weight,
                        int bias, cl_mem y);
/* dW += dy^T x, db += colsum(dy), dx (=|+=) dy W (dx may be NULL). */
void digcl_model_linear_backward(digcl_model *model, int rows, int in, int out, cl_mem dy, cl_mem x,
                                 int weight, int bias, cl_mem dx, int accumulate_dx);

#endif
