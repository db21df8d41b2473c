/* digcl/linear.h: the fully connected layer, PyTorch nn.Linear semantics.
 *
 *   y = x W^T + b,  x [rows, in], W [out, in] (PyTorch layout), b [out] or none
 *   backward: dx = dy W,  dW += dy^T x,  db += sum_rows dy
 *
 * rows is N*T (or N for per-sample linears). The GEMMs go through CLBlast
 * (digcl/gemm.h); the bias add and the column sum for db are OpenCL kernels
 * (cl/linear.cl, digcl_column_sum in cl/reduce.cl).
 *
 * Parameters and their gradients live in flat buffers, so weight, bias,
 * dweight and dbias are (buffer, element offset) pairs. dweight and dbias
 * **accumulate** (+=, GEMM beta = 1); dx is overwritten unless
 * accumulate_dx (needed where x feeds two branches, e.g. SiLU(c) feeding
 * every block's adaLN linear).
 */
#ifndef DIGCL_LINEAR_H
#define DIGCL_LINEAR_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct digcl_linear_shape {
    int rows; /* N*T */
    int in;   /* input features */
    int out;  /* output features */
} digcl_linear_shape;

typedef struct digcl_linear_forward_args {
    cl_mem x; /* [rows, in] */
    cl_mem weight;
    size_t weight_offset; /* [out, in] */
    cl_mem bias;
    size_t bias_offset;        /* [out], or NULL: no bias */
    cl_mem y;                  /* [rows, out] overwritten */
    size_t x_offset, x_stride; /* x row r at x_offset + r * x_stride (x_stride 0: in) */
} digcl_linear_forward_args;

typedef struct digcl_linear_backward_args {
    cl_mem dy; /* [rows, out] */
    cl_mem x;  /* [rows, in] */
    cl_mem weight;
    size_t weight_offset; /* [out, in] */
    cl_mem dx;            /* [rows, in], or NULL: not needed */
    int accumulate_dx;    /* 0: dx = dy W; 1: dx += dy W */
    cl_mem dweight;
    size_t dweight_offset; /* [out, in] +=, or NULL */
    cl_mem dbias;
    size_t dbias_offset;         /* [out] +=, or NULL */
    cl_mem workspace;            /* digcl_linear_backward_workspace_bytes */
    size_t x_offset, x_stride;   /* x row r at x_offset + r * x_stride (x_stride 0: in) */
    size_t dx_offset, dx_stride; /* dx likewise: a column slice of wider rows */
} digcl_linear_backward_args;

void digcl_linear_forward(digcl_context *ctx, digcl_linear_shape shape,
                          const digcl_linear_forward_args *args);

/* Scratch for the db column sum (0 when not needed). */
size_t digcl_linear_backward_workspace_bytes(digcl_linear_shape shape);

void digcl_linear_backward(digcl_context *ctx, digcl_linear_shape shape,
                           const digcl_linear_backward_args *args);

/* y[rows, out] += bias[out] (used by the forward after the GEMM). */
void digcl_bias_add(digcl_context *ctx, int rows, int out, cl_mem y, /* [rows, out] */
                    cl_mem bias, size_t bias_offset);                /* [out] */
#endif
