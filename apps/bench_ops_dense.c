/* bench_ops_dense.c: `digcl bench ops` rows for the dense layer ops (linear,
 * norms, activations, adaLN, losses and reductions, AdamW, EMA) at DiG-S/2
 * training shapes (N=32, T=256, D=384; SwiGLU F=1024; GELU hidden 1536; H=6,
 * V=64; ~33M parameters) and at high resolution (N=1, T=12544).
 *
 * Each timed call enqueues the op INNER times (one digcl_finish at the end), so
 * launch and sync overhead is amortised; the row shows the time of one op.
 * "bytes" is the minimum traffic: every input read once, every output written
 * once (read too when accumulating), workspace partials not counted. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "digcl/activation.h"
#include "digcl/adaln.h"
#include "digcl/linear.h"
#include "digcl/norm.h"
#include "digcl/optim.h"
#include "digcl/reduce.h"

#define INNER    10
#define WARMUP   2
#define REPEATS  7
#define D_MODEL  384
#define F_SWIGLU 1024
#define F_GELU   1536
#define HEADS    6
#define V_HEAD   64
#ifndef PARAMS
#define PARAMS 33000000 /* DiG-S/2: 33.1M */
#endif

typedef struct dense_bench {
    int N, T, D;
    int rows;
    /* activations: big enough for [rows, 2 F_SWIGLU] */
    cl_mem a, b, c, d, e;
    cl_mem adaln, dadaln;   /* [N, 6D] */
    cl_mem mean, rstd;      /* [rows] */
    cl_mem weight, dweight; /* [D, D] + [D] bias + [V] norm weight */
    cl_mem workspace;
    cl_mem scalar; /* [4] */
} dense_bench;

typedef void (*dense_op)(digcl_context *ctx, const dense_bench *s);

typedef struct bench_call {
    dense_op op;
    const dense_bench *state;
} bench_call;

static void run_inner(digcl_context *ctx, void *arg) {
    const bench_call *call = arg;
    for (int i = 0; i < INNER; ++i) call->op(ctx, call->state);
}

static void time_row(digcl_context *ctx, const dense_bench *s, const char *name, dense_op op,
                     double bytes, double flops, double copy_gbps) {
    bench_call call = {op, s};
    double ms = bench_time_ms(ctx, run_inner, &call, WARMUP, REPEATS) / INNER;
    char shape[64];
    snprintf(shape, sizeof shape, "N=%d T=%d D=%d", s->N, s->T, s->D);
    bench_print_row(name, shape, ms, bytes, flops, copy_gbps);
}

static digcl_row_view chunk(const dense_bench *s, cl_mem mem, int index) {
    return digcl_row_view_chunk(mem, index, 6, s->D);
}

/* ---------------------------------------------------------------- ops */

static void op_linear_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_linear_shape shape = {s->rows, s->D, s->D};
    digcl_linear_forward_args args = {s->a, s->weight, 0, s->weight, (size_t)s->D * s->D,
                                      s->b, 0,         0};
    digcl_linear_forward(ctx, shape, &args);
}
static void op_linear_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_linear_shape shape = {s->rows, s->D, s->D};
    digcl_linear_backward_args args = {
        s->b,         s->a, s->weight, 0, s->c, 0, s->dweight, 0, s->dweight, (size_t)s->D * s->D,
        s->workspace, 0,    0,         0, 0};
    digcl_linear_backward(ctx, shape, &args);
}
static void op_bias_column_sum(digcl_context *ctx, const dense_bench *s) {
    digcl_column_sum(ctx, 1, s->rows, s->D, s->b, 0, 1.0f, s->dweight, 0, 0, 1, s->workspace, 0);
}
static void op_layernorm_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_layernorm_forward(ctx, s->rows, s->D, s->a, s->b, s->mean, s->rstd);
}
static void op_layernorm_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_layernorm_backward(ctx, s->rows, s->D, s->c, s->a, s->mean, s->rstd, s->d, 1);
}
static void op_ln_modulate_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_layernorm_modulate_forward(ctx, s->N, s->T, s->D, s->a, chunk(s, s->adaln, 0),
                                     chunk(s, s->adaln, 1), s->b, s->mean, s->rstd);
}
static void op_ln_modulate_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_layernorm_modulate_backward(ctx, s->N, s->T, s->D, s->c, s->a, s->mean, s->rstd,
                                      chunk(s, s->adaln, 1), s->d, 1, chunk(s, s->dadaln, 0),
                                      chunk(s, s->dadaln, 1), s->workspace);
}
static void op_modulate_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_modulate_forward(ctx, s->N, s->T, s->D, s->a, chunk(s, s->adaln, 0),
                           chunk(s, s->adaln, 1), s->b);
}
static void op_modulate_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_modulate_backward(ctx, s->N, s->T, s->D, s->c, s->a, chunk(s, s->adaln, 1), s->d, 0,
                            chunk(s, s->dadaln, 0), chunk(s, s->dadaln, 1), s->workspace);
}
static void op_gated_residual_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_gated_residual_forward(ctx, s->N, s->T, s->D, s->a, chunk(s, s->adaln, 2), s->b, s->a);
}
static void op_gated_residual_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_gated_residual_backward(ctx, s->N, s->T, s->D, s->c, s->b, chunk(s, s->adaln, 2), s->d, 0,
                                  chunk(s, s->dadaln, 2), s->workspace);
}
static void op_rmsnorm_gate_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_rmsnorm_gate_forward(ctx, s->rows * HEADS, V_HEAD, s->a, s->b,
                               digcl_gate_rows_dense(V_HEAD), s->weight, 0, s->c);
}
static void op_rmsnorm_gate_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_rmsnorm_gate_backward(ctx, s->rows * HEADS, V_HEAD, s->c, s->a, s->b,
                                digcl_gate_rows_dense(V_HEAD), s->weight, 0, s->d, s->e, 0,
                                s->dweight, 0, s->workspace);
}
static void op_silu_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_silu_forward(ctx, s->rows * s->D, s->a, s->b);
}
static void op_silu_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_silu_backward(ctx, s->rows * s->D, s->c, s->a, s->d, 0);
}
static void op_gelu_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_gelu_tanh_forward(ctx, s->rows * F_GELU, s->a, s->b);
}
static void op_gelu_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_gelu_tanh_backward(ctx, s->rows * F_GELU, s->c, s->a, s->d, 0);
}
static void op_swiglu_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_swiglu_forward(ctx, s->rows, F_SWIGLU, s->a, s->b);
}
static void op_swiglu_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_swiglu_backward(ctx, s->rows, F_SWIGLU, s->c, s->a, s->d, 0);
}
static void op_forget_gate_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_forget_gate_forward(ctx, s->rows * s->D / 2, DIGCL_FORGET_GATE_NORMALIZER, s->a, s->b);
}
static void op_forget_gate_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_forget_gate_backward(ctx, s->rows * s->D / 2, DIGCL_FORGET_GATE_NORMALIZER, s->c, s->a,
                               s->d, 0);
}
static void op_mse_forward(digcl_context *ctx, const dense_bench *s) {
    digcl_mse_forward(ctx, s->rows * s->D, s->a, s->b, s->scalar, 0, s->workspace);
}
static void op_mse_backward(digcl_context *ctx, const dense_bench *s) {
    digcl_mse_backward(ctx, s->rows * s->D, 1.0f, s->a, s->b, s->c, 0);
}

/* ---------------------------------------------------------------- flat parameter ops */

typedef struct flat_bench {
    int count;
    cl_mem params, grads, m, v, ema, workspace, scalar;
} flat_bench;

typedef void (*flat_op)(digcl_context *ctx, const flat_bench *f);

typedef struct flat_call {
    flat_op op;
    const flat_bench *state;
} flat_call;

static void run_flat(digcl_context *ctx, void *arg) {
    const flat_call *call = arg;
    for (int i = 0; i < INNER; ++i) call->op(ctx, call->state);
}

static void op_adamw(digcl_context *ctx, const flat_bench *f) {
    digcl_adamw_hparams hp = digcl_adamw_defaults();
    digcl_adamw_step(ctx, f->count, &hp, 10, f->params, f->grads, f->m, f->v);
}
static void op_ema(digcl_context *ctx, const flat_bench *f) {
    digcl_ema_update(ctx, f->count, 0.9999f, f->ema, f->params);
}
static void op_global_norm(digcl_context *ctx, const flat_bench *f) {
    digcl_global_norm(ctx, f->count, f->grads, f->scalar, 0, f->workspace);
}
static void op_clip(digcl_context *ctx, const flat_bench *f) {
    digcl_clip_by_norm(ctx, f->count, f->grads, f->scalar, 0, 1e9f);
}

static void time_flat(digcl_context *ctx, const flat_bench *f, const char *name, flat_op op,
                      double bytes, double flops, double copy_gbps) {
    flat_call call = {op, f};
    double ms = bench_time_ms(ctx, run_flat, &call, WARMUP, REPEATS) / INNER;
    char shape[64];
    snprintf(shape, sizeof shape, "params=%d", f->count);
    bench_print_row(name, shape, ms, bytes, flops, copy_gbps);
}

static void bench_flat(digcl_context *ctx, double copy_gbps) {
    flat_bench f = {PARAMS, NULL, NULL, NULL, NULL, NULL, NULL, NULL};
    const size_t bytes = (size_t)PARAMS * sizeof(float);
    cl_mem *buffers[] = {&f.params, &f.grads, &f.m, &f.v, &f.ema};
    digcl_buffer owned[7];
    for (int i = 0; i < 5; ++i) {
        owned[i] = digcl_buffer_create(ctx, bytes, "bench flat");
        digcl_fill_f32(ctx, owned[i].mem, 0, PARAMS, 0.01f * (float)(i + 1));
        *buffers[i] = owned[i].mem;
    }
    owned[5] = digcl_buffer_create(ctx, digcl_reduce_workspace_bytes(PARAMS), "bench workspace");
    owned[6] = digcl_buffer_create(ctx, 16, "bench scalar");
    f.workspace = owned[5].mem, f.scalar = owned[6].mem;
    const double P = PARAMS * 4.0;
    time_flat(ctx, &f, "adamw_step", op_adamw, 7 * P, 15.0 * PARAMS, copy_gbps);
    time_flat(ctx, &f, "ema_update", op_ema, 3 * P, 3.0 * PARAMS, copy_gbps);
    time_flat(ctx, &f, "global_norm", op_global_norm, P, 2.0 * PARAMS, copy_gbps);
    time_flat(ctx, &f, "clip_by_norm", op_clip, 2 * P, 1.0 * PARAMS, copy_gbps);
    for (int i = 0; i < 7; ++i) digcl_buffer_release(&owned[i]);
}

/* ---------------------------------------------------------------- per-shape rows */

static size_t max_size(size_t a, size_t b) { return a > b ? a : b; }

static size_t workspace_bytes(const dense_bench *s) {
    size_t bytes = digcl_linear_backward_workspace_bytes((digcl_linear_shape){s->rows, s->D, s->D});
    bytes = max_size(bytes, digcl_layernorm_modulate_backward_workspace_bytes(s->N, s->T, s->D));
    bytes = max_size(bytes, digcl_modulate_backward_workspace_bytes(s->N, s->T, s->D));
    bytes = max_size(bytes, digcl_gated_residual_backward_workspace_bytes(s->N, s->T, s->D));
    bytes = max_size(bytes, digcl_rmsnorm_gate_backward_workspace_bytes(s->rows * HEADS, V_HEAD));
    bytes = max_size(bytes, digcl_reduce_workspace_bytes(s->rows * s->D));
    return bytes;
}

static void bench_shape(digcl_context *ctx, int N, int T, double copy_gbps) {
    dense_bench s = {N,    T,    D_MODEL, N * T, NULL, NULL, NULL, NULL, NULL,
                     NULL, NULL, NULL,    NULL,  NULL, NULL, NULL, NULL};
    const size_t act = (size_t)s.rows * 2 * F_SWIGLU;
    const size_t sizes[] = {act,
                            act,
                            act,
                            act,
                            act,
                            (size_t)N * 6 * s.D,
                            (size_t)N * 6 * s.D,
                            (size_t)s.rows,
                            (size_t)s.rows,
                            (size_t)s.D * (s.D + 1) + V_HEAD,
                            (size_t)s.D * (s.D + 1) + V_HEAD,
                            workspace_bytes(&s) / 4 + 1,
                            4};
    cl_mem *slots[] = {&s.a,    &s.b,    &s.c,      &s.d,       &s.e,         &s.adaln, &s.dadaln,
                       &s.mean, &s.rstd, &s.weight, &s.dweight, &s.workspace, &s.scalar};
    enum { SLOTS = sizeof sizes / sizeof sizes[0] };
    digcl_buffer owned[SLOTS];
    for (int i = 0; i < SLOTS; ++i) {
        owned[i] = digcl_buffer_create(ctx, sizes[i] * sizeof(float), "bench dense");
        digcl_fill_f32(ctx, owned[i].mem, 0, sizes[i], 0.1f + 0.05f * (float)i);
        *slots[i] = owned[i].mem;
    }
    const double X = (double)s.rows * s.D * 4.0, R = (double)s.rows * 4.0, E = (double)s.rows * s.D;
    const double V6 = (double)N * 6 * s.D * 4.0;
    time_row(ctx, &s, "linear_forward D->D +bias", op_linear_forward, 2 * X, 2.0 * E * s.D,
             copy_gbps);
    time_row(ctx, &s, "linear_backward dx,dW,db", op_linear_backward, 3 * X, 4.0 * E * s.D,
             copy_gbps);
    time_row(ctx, &s, "column_sum (db)", op_bias_column_sum, X, E, copy_gbps);
    time_row(ctx, &s, "layernorm_forward", op_layernorm_forward, 2 * X + 2 * R, 5 * E, copy_gbps);
    time_row(ctx, &s, "layernorm_backward (+=)", op_layernorm_backward, 4 * X + 2 * R, 8 * E,
             copy_gbps);
    time_row(ctx, &s, "layernorm_modulate_forward", op_ln_modulate_forward, 2 * X + 2 * R + V6 / 3,
             7 * E, copy_gbps);
    time_row(ctx, &s, "layernorm_modulate_backward (+=)", op_ln_modulate_backward,
             4 * X + 2 * R + V6 / 2, 12 * E, copy_gbps);
    time_row(ctx, &s, "modulate_forward", op_modulate_forward, 2 * X + V6 / 3, 2 * E, copy_gbps);
    time_row(ctx, &s, "modulate_backward", op_modulate_backward, 3 * X + V6 / 2, 4 * E, copy_gbps);
    time_row(ctx, &s, "gated_residual_forward (in place)", op_gated_residual_forward, 3 * X, 2 * E,
             copy_gbps);
    time_row(ctx, &s, "gated_residual_backward", op_gated_residual_backward, 3 * X, 3 * E,
             copy_gbps);
    time_row(ctx, &s, "rmsnorm_gate_forward H=6 V=64", op_rmsnorm_gate_forward, 3 * X, 10 * E,
             copy_gbps);
    time_row(ctx, &s, "rmsnorm_gate_backward H=6 V=64", op_rmsnorm_gate_backward, 5 * X, 25 * E,
             copy_gbps);
    time_row(ctx, &s, "silu_forward", op_silu_forward, 2 * X, 4 * E, copy_gbps);
    time_row(ctx, &s, "silu_backward", op_silu_backward, 3 * X, 7 * E, copy_gbps);
    const double G = X * F_GELU / s.D, S = X * F_SWIGLU / s.D;
    time_row(ctx, &s, "gelu_tanh_forward F=1536", op_gelu_forward, 2 * G, 10 * E * 4, copy_gbps);
    time_row(ctx, &s, "gelu_tanh_backward F=1536", op_gelu_backward, 3 * G, 16 * E * 4, copy_gbps);
    time_row(ctx, &s, "swiglu_forward F=1024", op_swiglu_forward, 3 * S, 5 * E * F_SWIGLU / s.D,
             copy_gbps);
    time_row(ctx, &s, "swiglu_backward F=1024", op_swiglu_backward, 5 * S, 9 * E * F_SWIGLU / s.D,
             copy_gbps);
    time_row(ctx, &s, "forget_gate_forward Dk=D/2", op_forget_gate_forward, X, 3 * E, copy_gbps);
    time_row(ctx, &s, "forget_gate_backward Dk=D/2", op_forget_gate_backward, 1.5 * X, 2 * E,
             copy_gbps);
    time_row(ctx, &s, "mse_forward", op_mse_forward, 2 * X, 3 * E, copy_gbps);
    time_row(ctx, &s, "mse_backward", op_mse_backward, 3 * X, 3 * E, copy_gbps);
    for (int i = 0; i < SLOTS; ++i) digcl_buffer_release(&owned[i]);
}

void bench_ops_dense(digcl_context *ctx, double copy_gbps) {
    bench_shape(ctx, 32, 256, copy_gbps);
    bench_shape(ctx, 1, 12544, copy_gbps);
    bench_flat(ctx, copy_gbps);
}
