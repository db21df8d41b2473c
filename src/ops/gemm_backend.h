/* gemm_backend.h: which path runs digcl_gemm on a device (private to
 * src/ops). See gemm_backend.c for the selection rule. */
#ifndef DIGCL_OPS_GEMM_BACKEND_H
#define DIGCL_OPS_GEMM_BACKEND_H

#include <stddef.h>

#include "digcl/conv2d.h"
#include "digcl/gemm.h"

typedef enum digcl_gemm_backend_kind {
    DIGCL_GEMM_BACKEND_CLBLAST = 0, /* CLBlast kernels on the device (portable) */
    DIGCL_GEMM_BACKEND_BLAS = 1,    /* OpenBLAS on the mapped buffers of a CPU device */
    DIGCL_GEMM_BACKEND_TENSOR = 2   /* our mma kernels on NVIDIA tensor cores (gemm_tc.c) */
} digcl_gemm_backend_kind;

digcl_gemm_backend_kind digcl_gemm_backend(const digcl_context *ctx);

/* `batch` GEMMs with element strides between them, through OpenBLAS; blocks
 * until the queue has produced the operands. */
void digcl_gemm_blas(digcl_context *ctx, const digcl_gemm_args *args, size_t stride_a,
                     size_t stride_b, size_t stride_c, size_t batch);

/* Whether the device can run the tensor-core kernels (NVIDIA, sm_80+). */
int digcl_gemm_tc_supported(const digcl_device_info *device);
/* DIGCL_GEMM=tensor-emulate: the tensor-core kernels with their PTX
 * emulated (any device; tests). */
int digcl_gemm_tc_emulated(void);
/* Whether GEMMs of the context's precision take the wgmma kernels here (compute capability
 * 9.0: TF32 by default, for A [M, K] times B stored [N, K]; 3xTF32 with DIGCL_GEMM_WGMMA=1). */
int digcl_gemm_tc_wgmma(const digcl_context *ctx);
/* `batch` GEMMs on tensor cores (3xTF32, or TF32 when the context allows it).
 * Returns 0 without enqueueing anything when the operands exceed the
 * kernel's 32-bit index range (the caller falls back to CLBlast). */
int digcl_gemm_tc(digcl_context *ctx, const digcl_gemm_args *args, size_t stride_a, size_t stride_b,
                  size_t stride_c, size_t batch);

/* The convolution of digcl_conv2d_forward as an implicit GEMM on tensor cores (cl/gemm_tc.cl,
 * conv2d_tc: the im2col matrix is gathered from x tile by tile, the bias added in the epilogue,
 * all images in one launch). Returns 0 without enqueueing anything when a matrix exceeds the
 * kernel's 32-bit index range. */
int digcl_conv2d_tc(digcl_context *ctx, const digcl_conv2d_shape *shape, cl_mem x, size_t x_offset,
                    cl_mem weight, size_t w_offset, cl_mem bias, size_t b_offset, cl_mem y,
                    size_t y_offset, int accumulate);

#endif
