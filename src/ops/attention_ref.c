/* Naive double-precision softmax attention (include/digcl/attention.h), the
 * test oracle, and the row softmax of the naive path. Memory O(T) per row;
 * time O(N H T^2 dh). */
#include <math.h>
#include <stdlib.h>

#include "digcl/attention.h"
#include "digcl/ref/attention.h"

/* Element index of q (which = 0), k (1) or v (2) of token t, head h, channel 0. */
static size_t qkv_index(const digcl_attention_shape *s, int which, int n, int t, int h) {
    return ((((size_t)n * (size_t)s->T + (size_t)t) * 3 + (size_t)which) * (size_t)s->H +
            (size_t)h) *
           (size_t)s->head_dim;
}

static size_t out_index(const digcl_attention_shape *s, int n, int t, int h) {
    return (((size_t)n * (size_t)s->T + (size_t)t) * (size_t)s->H + (size_t)h) *
           (size_t)s->head_dim;
}

static double dot(const double *a, const double *b, int length) {
    double sum = 0.0;
    for (int c = 0; c < length; c++) sum += a[c] * b[c];
    return sum;
}

/* probabilities[j] = softmax_j(scale q_i k_j); returns the logsumexp. */
static double softmax_row(const digcl_attention_shape *s, const double *qkv, int n, int i, int h,
                          double *probabilities) {
    const double scale = 1.0 / sqrt((double)s->head_dim);
    const double *q = qkv + qkv_index(s, 0, n, i, h);
    double maximum = -INFINITY, total = 0.0;
    for (int j = 0; j < s->T; j++) {
        probabilities[j] = scale * dot(q, qkv + qkv_index(s, 1, n, j, h), s->head_dim);
        if (probabilities[j] > maximum) maximum = probabilities[j];
    }
    for (int j = 0; j < s->T; j++) total += (probabilities[j] = exp(probabilities[j] - maximum));
    for (int j = 0; j < s->T; j++) probabilities[j] /= total;
    return maximum + log(total);
}

void digcl_ref_attention_forward_row(const digcl_attention_shape *s, const double *qkv, int n,
                                     int t, int h, double *out_row, double *logsumexp) {
    double *probabilities = malloc((size_t)s->T * sizeof *probabilities);
    const double lse = softmax_row(s, qkv, n, t, h, probabilities);
    for (int c = 0; c < s->head_dim; c++) out_row[c] = 0.0;
    for (int j = 0; j < s->T; j++) {
        const double *v = qkv + qkv_index(s, 2, n, j, h);
        for (int c = 0; c < s->head_dim; c++) out_row[c] += probabilities[j] * v[c];
    }
    if (logsumexp) *logsumexp = lse;
    free(probabilities);
}

void digcl_ref_attention_forward(const digcl_attention_shape *s, const double *qkv, double *out,
                                 double *logsumexp) {
    for (int n = 0; n < s->N; n++)
        for (int h = 0; h < s->H; h++)
            for (int t = 0; t < s->T; t++)
                digcl_ref_attention_forward_row(
                    s, qkv, n, t, h, out + out_index(s, n, t, h),
                    logsumexp ? logsumexp + ((size_t)n * (size_t)s->H + (size_t)h) * (size_t)s->T +
                                    (size_t)t
                              : NULL);
}

/* Gradients of one query row i: dq_i, and its contributions to dk_j, dv_j. */
static void backward_row(const digcl_attention_shape *s, const double *qkv, const double *dout,
                         double *dqkv, int n, int i, int h, double *probabilities) {
    const int dh = s->head_dim;
    const double scale = 1.0 / sqrt((double)dh);
    const double *q = qkv + qkv_index(s, 0, n, i, h), *g = dout + out_index(s, n, i, h);
    softmax_row(s, qkv, n, i, h, probabilities);
    double delta = 0.0; /* sum_j P_ij dP_ij = dout_i . out_i */
    for (int j = 0; j < s->T; j++)
        delta += probabilities[j] * dot(g, qkv + qkv_index(s, 2, n, j, h), dh);
    double *dq = dqkv + qkv_index(s, 0, n, i, h);
    for (int j = 0; j < s->T; j++) {
        const double *k = qkv + qkv_index(s, 1, n, j, h), *v = qkv + qkv_index(s, 2, n, j, h);
        const double dscore = probabilities[j] * (dot(g, v, dh) - delta);
        double *dk = dqkv + qkv_index(s, 1, n, j, h), *dv = dqkv + qkv_index(s, 2, n, j, h);
        for (int c = 0; c < dh; c++) {
            dq[c] += scale * dscore * k[c];
            dk[c] += scale * dscore * q[c];
            dv[c] += probabilities[j] * g[c];
        }
    }
}

void digcl_ref_attention_backward(const digcl_attention_shape *s, const double *qkv,
                                  const double *dout, double *dqkv) {
    const size_t total = (size_t)s->N * (size_t)s->T * 3 * (size_t)s->H * (size_t)s->head_dim;
    double *probabilities = malloc((size_t)s->T * sizeof *probabilities);
    for (size_t e = 0; e < total; e++) dqkv[e] = 0.0;
    for (int n = 0; n < s->N; n++)
        for (int h = 0; h < s->H; h++)
            for (int i = 0; i < s->T; i++) backward_row(s, qkv, dout, dqkv, n, i, h, probabilities);
    free(probabilities);
}

void digcl_ref_softmax_rows_forward(size_t rows, int cols, const double *x, double *p) {
    for (size_t r = 0; r < rows; r++) {
        const double *in = x + r * (size_t)cols;
        double *out = p + r * (size_t)cols, maximum = -INFINITY, total = 0.0;
        for (int j = 0; j < cols; j++)
            if (in[j] > maximum) maximum = in[j];
        for (int j = 0; j < cols; j++) total += (out[j] = exp(in[j] - maximum));
        for (int j = 0; j < cols; j++) out[j] /= total;
    }
}

void digcl_ref_softmax_rows_backward(size_t rows, int cols, const double *p, const double *dp,
                                     double *dx) {
    for (size_t r = 0; r < rows; r++) {
        const size_t first = r * (size_t)cols;
        const double inner = dot(p + first, dp + first, cols); /* sum_k p_k dp_k */
        for (int j = 0; j < cols; j++) dx[first + j] = p[first + j] * (dp[first + j] - inner);
    }
}
