/* Float64 oracle of gated linear attention: the token-by-token recurrence of
 * docs/GLA.md section 1.1 and its reverse-mode gradients
 * (section 8.6). It shares nothing with the chunk algorithm of cl/gla.cl.
 *
 *   S_t = Diag(exp(g_t)) S_{t-1} + k_t v_t^T,  o_t = s S_t^T q_t
 *   dS_t += s q_t do_t^T;  dq_t = s S_t do_t;  dk_t = dS_t v_t;
 *   dv_t = dS_t^T k_t;  dg_t = exp(g_t) * rowsum(dS_t * S_{t-1});
 *   dS_{t-1} = Diag(exp(g_t)) dS_t
 *
 * The backward recomputes S_t segment by segment from states checkpointed
 * every GLA_REF_SEGMENT tokens, so memory stays O((T/32 + 32) K V) per head.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/error.h"
#include "digcl/gla.h"
#include "digcl/ref/gla.h"

enum { GLA_REF_SEGMENT = 32 };

/* Pointers to one (n, h) slice of every tensor. */
typedef struct gla_ref_head {
    const double *q, *k, *v, *g, *do_; /* token-strided rows */
    double *o, *dq, *dk, *dv, *dg;
    size_t q_token, k_token, g_token, v_token, o_token; /* gradients: their tensor's */
    int T, K, V;
    double scale;
} gla_ref_head;

static double default_scale(const digcl_gla_shape *shape, double scale) {
    return scale > 0 ? scale : 1.0 / sqrt((double)shape->K);
}

/* Element (n, 0, h, 0) of a tensor with this layout. */
static size_t base(const digcl_gla_strides *x, int n, int h) {
    return x->offset + (size_t)n * x->batch + (size_t)h * x->head;
}

static size_t state_base(const digcl_gla_shape *shape, int n, int h) {
    return ((size_t)n * shape->H + h) * shape->K * shape->V;
}

static void *ref_calloc(size_t count, size_t size) {
    void *memory = calloc(count ? count : 1, size);
    if (!memory) digcl_fatal("gla reference: out of host memory (%zu bytes)", count * size);
    return memory;
}

/* S = Diag(exp(g_t)) S + k_t v_t^T for token t. S: [K, V] */
static void state_step(const gla_ref_head *x, int t, double *S) {
    const double *g = x->g + (size_t)t * x->g_token;
    const double *k = x->k + (size_t)t * x->k_token;
    const double *v = x->v + (size_t)t * x->v_token;
    for (int i = 0; i < x->K; i++) {
        double decay = exp(g[i]);
        for (int j = 0; j < x->V; j++) S[i * x->V + j] = decay * S[i * x->V + j] + k[i] * v[j];
    }
}

/* o_t = s S^T q_t. S: [K, V] */
static void output_row(const gla_ref_head *x, int t, const double *S) {
    const double *q = x->q + (size_t)t * x->q_token;
    double *o = x->o + (size_t)t * x->o_token;
    for (int j = 0; j < x->V; j++) {
        double sum = 0;
        for (int i = 0; i < x->K; i++) sum += q[i] * S[i * x->V + j];
        o[j] = x->scale * sum;
    }
}

static gla_ref_head head_slice(const digcl_gla_shape *shape, int n, int h, const double *q,
                               const double *k, const double *v, const double *g, double scale) {
    gla_ref_head x;
    memset(&x, 0, sizeof x);
    x.q = q + base(&shape->q, n, h);
    x.k = k + base(&shape->k, n, h);
    x.g = g + base(&shape->g, n, h);
    x.v = v + base(&shape->v, n, h);
    x.q_token = shape->q.token;
    x.k_token = shape->k.token;
    x.g_token = shape->g.token;
    x.v_token = shape->v.token;
    x.o_token = shape->o.token;
    x.T = shape->T;
    x.K = shape->K;
    x.V = shape->V;
    x.scale = scale;
    return x;
}

static void load_state(double *S, const double *source, size_t count) {
    if (source) memcpy(S, source, count * sizeof *S);
    else memset(S, 0, count * sizeof *S);
}

void digcl_ref_gla_forward(const digcl_gla_shape *shape, const double *q, const double *k,
                           const double *v, const double *g, const double *h0, double *o,
                           double *hT, double scale) {
    size_t KV = (size_t)shape->K * shape->V;
    double *S = ref_calloc(KV, sizeof *S); /* [K, V] */
    for (int n = 0; n < shape->N; n++)
        for (int h = 0; h < shape->H; h++) {
            gla_ref_head x = head_slice(shape, n, h, q, k, v, g, default_scale(shape, scale));
            x.o = o + base(&shape->o, n, h);
            load_state(S, h0 ? h0 + state_base(shape, n, h) : NULL, KV);
            for (int t = 0; t < shape->T; t++) {
                state_step(&x, t, S);
                output_row(&x, t, S);
            }
            if (hT) memcpy(hT + state_base(shape, n, h), S, KV * sizeof *S);
        }
    free(S);
}

/* Gradients of token t given S_{t-1} (previous) and S_t (current); updates the
 * running dS from dS_t to dS_{t-1}. All states: [K, V] */
static void backward_token(const gla_ref_head *x, int t, const double *previous,
                           const double *current, double *dS) {
    const double *q = x->q + (size_t)t * x->q_token, *k = x->k + (size_t)t * x->k_token;
    const double *g = x->g + (size_t)t * x->g_token;
    const double *v = x->v + (size_t)t * x->v_token;
    const double *do_ = x->do_ + (size_t)t * x->o_token;
    double *dq = x->dq + (size_t)t * x->q_token, *dk = x->dk + (size_t)t * x->k_token;
    double *dg = x->dg + (size_t)t * x->g_token, *dv = x->dv + (size_t)t * x->v_token;
    int K = x->K, V = x->V;
    for (int i = 0; i < K; i++) {
        double sum = 0;
        for (int j = 0; j < V; j++) {
            dS[i * V + j] += x->scale * q[i] * do_[j];
            sum += current[i * V + j] * do_[j];
        }
        dq[i] = x->scale * sum;
    }
    for (int j = 0; j < V; j++) {
        double sum = 0;
        for (int i = 0; i < K; i++) sum += dS[i * V + j] * k[i];
        dv[j] = sum;
    }
    for (int i = 0; i < K; i++) {
        double key = 0, gate = 0, decay = exp(g[i]);
        for (int j = 0; j < V; j++) {
            key += dS[i * V + j] * v[j];
            gate += dS[i * V + j] * previous[i * V + j];
        }
        dk[i] = key;
        dg[i] = decay * gate;
        for (int j = 0; j < V; j++) dS[i * V + j] *= decay;
    }
}

static void backward_head(const gla_ref_head *x, const double *h0, const double *dhT, double *dh0) {
    size_t KV = (size_t)x->K * x->V;
    int segments = (x->T + GLA_REF_SEGMENT - 1) / GLA_REF_SEGMENT;
    double *checkpoints = ref_calloc((size_t)(segments + 1) * KV, sizeof(double));
    double *states = ref_calloc((size_t)(GLA_REF_SEGMENT + 1) * KV, sizeof(double));
    double *dS = ref_calloc(KV, sizeof(double));
    /* checkpoint s: the state before token s * SEGMENT. checkpoints: [segments + 1, K, V] */
    load_state(checkpoints, h0, KV);
    for (int s = 0; s < segments; s++) {
        memcpy(states, checkpoints + (size_t)s * KV, KV * sizeof(double));
        int end = (s + 1) * GLA_REF_SEGMENT < x->T ? (s + 1) * GLA_REF_SEGMENT : x->T;
        for (int t = s * GLA_REF_SEGMENT; t < end; t++) state_step(x, t, states);
        memcpy(checkpoints + (size_t)(s + 1) * KV, states, KV * sizeof(double));
    }
    load_state(dS, dhT, KV);
    for (int s = segments - 1; s >= 0; s--) {
        int start = s * GLA_REF_SEGMENT;
        int end = start + GLA_REF_SEGMENT < x->T ? start + GLA_REF_SEGMENT : x->T;
        memcpy(states, checkpoints + (size_t)s * KV, KV * sizeof(double)); /* [SEGMENT + 1, K, V] */
        for (int t = start; t < end; t++) {
            memcpy(states + (size_t)(t - start + 1) * KV, states + (size_t)(t - start) * KV,
                   KV * sizeof(double));
            state_step(x, t, states + (size_t)(t - start + 1) * KV);
        }
        for (int t = end - 1; t >= start; t--)
            backward_token(x, t, states + (size_t)(t - start) * KV,
                           states + (size_t)(t - start + 1) * KV, dS);
    }
    if (dh0) memcpy(dh0, dS, KV * sizeof(double));
    free(checkpoints);
    free(states);
    free(dS);
}

void digcl_ref_gla_backward(const digcl_gla_shape *shape, const double *q, const double *k,
                            const double *v, const double *g, const double *h0, const double *do_,
                            const double *dhT, double *dq, double *dk, double *dv, double *dg,
                            double *dh0, double scale) {
    for (int n = 0; n < shape->N; n++)
        for (int h = 0; h < shape->H; h++) {
            gla_ref_head x = head_slice(shape, n, h, q, k, v, g, default_scale(shape, scale));
            size_t state = state_base(shape, n, h);
            x.do_ = do_ + base(&shape->o, n, h);
            x.dq = dq + base(&shape->q, n, h);
            x.dk = dk + base(&shape->k, n, h);
            x.dg = dg + base(&shape->g, n, h);
            x.dv = dv + base(&shape->v, n, h);
            backward_head(&x, h0 ? h0 + state : NULL, dhT ? dhT + state : NULL,
                          dh0 ? dh0 + state : NULL);
        }
}
