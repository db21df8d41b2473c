/* digcl/ref/vae_ops.h: the plain-C double-precision oracles of digcl/vae_ops.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_VAE_OPS_H
#define DIGCL_REF_VAE_OPS_H

#include "digcl/vae_ops.h"

/* References in double. */
void digcl_ref_posterior_sample_forward(size_t count, double scale, const double *mean,
                                        const double *logvar, const double *eps,
                                        double *z); /* all [count] */

void digcl_ref_posterior_draw_forward(size_t rows, size_t row_length, double scale,
                                      int spread_is_logvar, digcl_rng_key key, uint64_t step,
                                      const double *mean,        /* [rows, row_length] */
                                      const double *spread,      /* [rows, row_length] */
                                      const int32_t *draw_index, /* [rows] */
                                      double *z);                /* [rows, row_length] */

void digcl_ref_spatial_attention_forward(int C, int T, const double *q, const double *k,
                                         const double *v, double *out); /* all [C, T] */

#endif
