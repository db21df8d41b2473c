/* gemm_backend.h: which library runs digcl_gemm on a device (private to
 * src/ops). See gemm_blas.c for the selection rule. */
#ifndef DIGCL_OPS_GEMM_BACKEND_H
#define DIGCL_OPS_GEMM_BACKEND_H

#include <stddef.h>

#include "digcl/gemm.h"

typedef enum digcl_gemm_backend_kind {
    DIGCL_GEMM_BACKEND_CLBLAST = 0, /* CLBlast kernels on the device (portable) */
    DIGCL_GEMM_BACKEND_BLAS = 1     /* OpenBLAS on the mapped buffers of a CPU device */
} digcl_gemm_backend_kind;

digcl_gemm_backend_kind digcl_gemm_backend(const digcl_context *ctx);

/* `batch` GEMMs with element strides between them, through OpenBLAS; blocks
 * until the queue has produced the operands. */
void digcl_gemm_blas(digcl_context *ctx, const digcl_gemm_args *args, size_t stride_a,
                     size_t stride_b, size_t stride_c, size_t batch);

#endif
