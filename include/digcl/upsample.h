/* digcl/upsample.h: nearest upsampling by an integer factor (nn.Upsample(mode="nearest")):
 *   y[n, c, i, j] = x[n, c, i / F, j / F],  y [N, C, F H, F W]. */
#ifndef DIGCL_UPSAMPLE_H
#define DIGCL_UPSAMPLE_H

#include "digcl/runtime.h"

void digcl_upsample_nearest_forward(digcl_context *ctx, int planes /* N C */, int H, int W,
                                    int factor, cl_mem x /* [N, C, H, W] */,
                                    cl_mem y /* [N, C, F H, F W] */);
#endif
