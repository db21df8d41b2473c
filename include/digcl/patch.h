/* digcl/patch.h: patch embedding (timm PatchEmbed: Conv2d kernel p, stride p,
 * with bias; flatten + transpose to row-major tokens) and unpatchify (DiT).
 * Spec: docs/MODEL.md §3.1 (patch embed), §3.2 (pos-embed added once), §3.5.
 *
 * Dimensions: N batch, C channels, H x W image, p patch size,
 * h = H/p, w = W/p, T = h*w tokens, K = C*p*p patch features, D model width.
 *
 * Patchify writes patch features in PyTorch conv weight order (c, py, px):
 *   patches[n, y*w + x, (c*p + py)*p + px] = image[n, c, y*p + py, x*p + px]
 * so the conv weight [D, C, p, p] read as [D, K] is a plain linear:
 *   tokens[n, t, :] = patches[n, t, :] W^T + bias (+ pos_embed[t, :]).
 *
 * Unpatchify (DiT `unpatchify`): x [N, T, p*p*C] reshaped (N, h, w, p, q, C),
 * einsum nhwpqc->nchpwq, reshaped to (N, C, h*p, w*p):
 *   image[n, c, y*p + py, x*p + px] = x[n, y*w + x, (py*p + px)*C + c]
 *
 * Gradients: dweight and dbias accumulate (+=); dimage and dx are overwritten.
 */
#ifndef DIGCL_PATCH_H
#define DIGCL_PATCH_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_patch_shape {
    int N;    /* batch */
    int C;    /* image channels (conv in_channels, or unpatchify out_channels) */
    int H, W; /* image height and width, multiples of p */
    int p;    /* patch size (1, 2, 4, 8, ...) */
} digcl_patch_shape;

/* Tokens per image: (H/p) * (W/p). */
int digcl_patch_tokens(const digcl_patch_shape *shape);
/* Features per patch: C*p*p. */
int digcl_patch_features(const digcl_patch_shape *shape);

/* ---------------------------------------------------------- patchify */

/* patches = patchify(image). */
void digcl_patchify_forward(digcl_context *ctx, const digcl_patch_shape *shape,
                            cl_mem image,    /* [N, C, H, W] */
                            cl_mem patches); /* [N, T, C*p*p] */
/* dimage = patchify^-1(dpatches) (a permutation: overwritten). */
void digcl_patchify_backward(digcl_context *ctx, const digcl_patch_shape *shape,
                             cl_mem dpatches, /* [N, T, C*p*p] */
                             cl_mem dimage);  /* [N, C, H, W] */

/* ---------------------------------------------------------- patch embedding */

/* Scratch for digcl_patch_embed_forward/backward, in bytes. */
size_t digcl_patch_embed_workspace_bytes(const digcl_patch_shape *shape, int D);

/* tokens = patchify(image) weight^T + bias + pos_embed (pos_embed may be 0/NULL). */
void digcl_patch_embed_forward(digcl_context *ctx, const digcl_patch_shape *shape, int D,
                               cl_mem image,     /* [N, C, H, W] */
                               cl_mem weight,    /* [D, C, p, p] */
                               cl_mem bias,      /* [D] */
                               cl_mem pos_embed, /* [T, D] or NULL */
                               cl_mem tokens,    /* [N, T, D] */
                               cl_mem workspace);
/* dweight += dtokens^T patchify(image); dbias += sum_{n,t} dtokens;
 * dimage = patchify^-1(dtokens weight) when dimage is not NULL. */
void digcl_patch_embed_backward(digcl_context *ctx, const digcl_patch_shape *shape, int D,
                                cl_mem image,   /* [N, C, H, W] */
                                cl_mem weight,  /* [D, C, p, p] */
                                cl_mem dtokens, /* [N, T, D] */
                                cl_mem dweight, /* [D, C, p, p] accumulate */
                                cl_mem dbias,   /* [D] accumulate */
                                cl_mem dimage,  /* [N, C, H, W] or NULL */
                                cl_mem workspace);

/* ---------------------------------------------------------- unpatchify */

/* image = unpatchify(x); shape->C is the output channel count. */
void digcl_unpatchify_forward(digcl_context *ctx, const digcl_patch_shape *shape,
                              cl_mem x,      /* [N, T, p*p*C] */
                              cl_mem image); /* [N, C, H, W] */
void digcl_unpatchify_backward(digcl_context *ctx, const digcl_patch_shape *shape,
                               cl_mem dimage, /* [N, C, H, W] */
                               cl_mem dx);    /* [N, T, p*p*C] */
#endif
