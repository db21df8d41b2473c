/* digcl/ref/embed.h: the plain-C double-precision oracles of digcl/embed.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_EMBED_H
#define DIGCL_REF_EMBED_H

#include "digcl/embed.h"

/* The table in double (also the reference). */
void digcl_ref_pos_embed_2d(int D, int grid_h, int grid_w, double *table); /* [grid_h*grid_w, D] */

void digcl_ref_timestep_embed_forward(int N, int dim, const double *timesteps, /* [N] */
                                      double *embedding);                      /* [N, dim] */

void digcl_ref_label_embed_forward(int N, int D, int accumulate, const int *labels, /* [N] */
                                   const double *table,                             /* [rows, D] */
                                   double *out);                                    /* [N, D] */

void digcl_ref_label_embed_backward(int N, int D, const int *labels, /* [N] */
                                    const double *dout,              /* [N, D] */
                                    double *dtable);                 /* [rows, D] accumulate */

#endif
