/* digcl/ref/patch.h: the plain-C double-precision oracles of digcl/patch.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_PATCH_H
#define DIGCL_REF_PATCH_H

#include "digcl/patch.h"

void digcl_ref_patchify_forward(const digcl_patch_shape *shape,
                                const double *image, /* [N, C, H, W] */
                                double *patches);    /* [N, T, C*p*p] */

void digcl_ref_patchify_backward(const digcl_patch_shape *shape,
                                 const double *dpatches, /* [N, T, C*p*p] */
                                 double *dimage);        /* [N, C, H, W] */

void digcl_ref_patch_embed_forward(const digcl_patch_shape *shape, int D,
                                   const double *image,     /* [N, C, H, W] */
                                   const double *weight,    /* [D, C*p*p] */
                                   const double *bias,      /* [D] */
                                   const double *pos_embed, /* [T, D] or NULL */
                                   double *tokens);         /* [N, T, D] */

void digcl_ref_patch_embed_backward(const digcl_patch_shape *shape, int D,
                                    const double *image,   /* [N, C, H, W] */
                                    const double *weight,  /* [D, C*p*p] */
                                    const double *dtokens, /* [N, T, D] */
                                    double *dweight,       /* [D, C*p*p] accumulate */
                                    double *dbias,         /* [D] accumulate */
                                    double *dimage);       /* [N, C, H, W] or NULL */

void digcl_ref_unpatchify_forward(const digcl_patch_shape *shape,
                                  const double *x, /* [N, T, p*p*C] */
                                  double *image);  /* [N, C, H, W] */

void digcl_ref_unpatchify_backward(const digcl_patch_shape *shape,
                                   const double *dimage, /* [N, C, H, W] */
                                   double *dx);          /* [N, T, p*p*C] */

#endif
