/* digcl/ref/token_merge.h: the plain-C double-precision oracles of digcl/token_merge.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_TOKEN_MERGE_H
#define DIGCL_REF_TOKEN_MERGE_H

#include "digcl/token_merge.h"

/* Double references, same layouts; accumulate as above. */
void digcl_ref_token_merge_forward(int N, int side, int D, const double *x, double *y);

void digcl_ref_token_merge_backward(int N, int side, int D, const double *dy, double *dx,
                                    int accumulate);

void digcl_ref_depth_to_space_forward(int N, int side, int D, const double *x, double *y);

void digcl_ref_depth_to_space_backward(int N, int side, int D, const double *dy, double *dx,
                                       int accumulate);

void digcl_ref_scan_to_rows_forward(digcl_scan_order order, int N, int side, int D, const double *x,
                                    double *y);

void digcl_ref_scan_to_rows_backward(digcl_scan_order order, int N, int side, int D,
                                     const double *dy, double *dx);

#endif
