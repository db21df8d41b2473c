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

void digcl_ref_spatial_attention_forward(int C, int T, const double *q, const double *k,
                                         const double *v, double *out); /* all [C, T] */

#endif
