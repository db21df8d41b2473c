/* digcl/ref/reduce.h: the plain-C double-precision oracles of digcl/reduce.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_REDUCE_H
#define DIGCL_REF_REDUCE_H

#include "digcl/reduce.h"

/* out[b*cols + c] = scale * sum_r x[b, r, c] (overwritten). */
void digcl_ref_column_sum(int batch, int rows, int cols, const double *x, double scale,
                          double *out);

double digcl_ref_sum(int count, const double *x);

double digcl_ref_global_norm(int count, const double *x);

/* x *= min(1, max_norm / (norm + 1e-6)) with the norm of x itself. */
void digcl_ref_clip_by_norm(int count, double *x, double max_norm);

double digcl_ref_mse_forward(int count, const double *prediction, const double *target);

void digcl_ref_mse_backward(int count, double dloss, const double *prediction, const double *target,
                            double *dprediction);

#endif
