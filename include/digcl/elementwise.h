/* digcl/elementwise.h: whole-buffer elementwise helpers (cl/util.cl). */
#ifndef DIGCL_ELEMENTWISE_H
#define DIGCL_ELEMENTWISE_H

#include <stddef.h>

#include "digcl/runtime.h"

/* y[i] += alpha * x[i], i < count. */
void digcl_axpy(digcl_context *ctx, size_t count, float alpha, cl_mem x /* [count] */,
                cl_mem y /* [count] */);

#endif
