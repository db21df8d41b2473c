/* linear.c: nn.Linear forward and backward through CLBlast GEMMs, the bias add
 * (cl/linear.cl) and the db column sum (digcl_column_sum) (digcl/linear.h). */
#include "digcl/linear.h"

#include "ops_common.h"
#include "digcl/gemm.h"
#include "digcl/reduce.h"

static void check_shape(digcl_linear_shape shape, const char *op) {
    ops_check_positive(shape.rows, "rows", op);
    ops_check_positive(shape.in, "in", op);
    ops_check_positive(shape.out, "out", op);
}

void digcl_bias_add(digcl_context *ctx, int rows, int out, cl_mem y, cl_mem bias,
                    size_t bias_offset) {
    ops_check_int(bias_offset + (size_t)out, "bias extent", "bias_add");
    ops_check_int((size_t)rows * out, "rows * out", "bias_add");
    size_t alignment[2] = {(size_t)out, bias_offset};
    const int vec = ops_vec_width(alignment, 2);
    cl_kernel kernel = digcl_kernel(ctx, "linear", "bias_add", vec == 4 ? "-DVEC=4" : "-DVEC=1");
    digcl_arg_mem(kernel, 0, y);
    digcl_arg_int(kernel, 1, rows);
    digcl_arg_int(kernel, 2, out / vec);
    digcl_arg_mem(kernel, 3, bias);
    digcl_arg_int(kernel, 4, (int)bias_offset);
    size_t global[2] = {(size_t)(out / vec), (size_t)rows};
    size_t local[2] = {32, 8};
    if (out / vec < 32)
        local[0] = ops_pow2_at_least((size_t)(out / vec)), local[1] = 256 / local[0];
    digcl_launch(ctx, kernel, "bias_add", 2, global, local);
}

/* y = x W^T (+ b). */
/* Row stride of x or dx: `stride`, or dense (in) when 0. */
static size_t rows_stride(size_t stride, int in) { return stride ? stride : (size_t)in; }

void digcl_linear_forward(digcl_context *ctx, digcl_linear_shape shape,
                          const digcl_linear_forward_args *args) {
    check_shape(shape, "linear_forward");
    digcl_gemm_args gemm = {0};
    gemm.transpose_a = 0;
    gemm.transpose_b = 1;
    gemm.M = (size_t)shape.rows;
    gemm.N = (size_t)shape.out;
    gemm.K = (size_t)shape.in;
    gemm.alpha = 1.0f;
    gemm.beta = 0.0f;
    gemm.A = args->x, gemm.a_offset = args->x_offset;
    gemm.lda = rows_stride(args->x_stride, shape.in);
    gemm.B = args->weight, gemm.b_offset = args->weight_offset, gemm.ldb = (size_t)shape.in;
    gemm.C = args->y, gemm.ldc = (size_t)shape.out;
    digcl_gemm(ctx, &gemm);
    if (args->bias)
        digcl_bias_add(ctx, shape.rows, shape.out, args->y, args->bias, args->bias_offset);
}

size_t digcl_linear_backward_workspace_bytes(digcl_linear_shape shape) {
    return digcl_column_sum_workspace_bytes(1, shape.rows, shape.out);
}

/* dx (=|+=) dy W: [rows, out] x [out, in]. */
static void backward_input(digcl_context *ctx, digcl_linear_shape shape,
                           const digcl_linear_backward_args *args) {
    digcl_gemm_args gemm = {0};
    gemm.M = (size_t)shape.rows;
    gemm.N = (size_t)shape.in;
    gemm.K = (size_t)shape.out;
    gemm.alpha = 1.0f;
    gemm.beta = args->accumulate_dx ? 1.0f : 0.0f;
    gemm.A = args->dy, gemm.lda = (size_t)shape.out;
    gemm.B = args->weight, gemm.b_offset = args->weight_offset, gemm.ldb = (size_t)shape.in;
    gemm.C = args->dx, gemm.c_offset = args->dx_offset;
    gemm.ldc = rows_stride(args->dx_stride, shape.in);
    digcl_gemm(ctx, &gemm);
}

/* dW += dy^T x: [out, rows] x [rows, in]. */
static void backward_weight(digcl_context *ctx, digcl_linear_shape shape,
                            const digcl_linear_backward_args *args) {
    digcl_gemm_args gemm = {0};
    gemm.transpose_a = 1;
    gemm.M = (size_t)shape.out;
    gemm.N = (size_t)shape.in;
    gemm.K = (size_t)shape.rows;
    gemm.alpha = 1.0f;
    gemm.beta = 1.0f;
    gemm.A = args->dy, gemm.lda = (size_t)shape.out;
    gemm.B = args->x, gemm.b_offset = args->x_offset;
    gemm.ldb = rows_stride(args->x_stride, shape.in);
    gemm.C = args->dweight, gemm.c_offset = args->dweight_offset, gemm.ldc = (size_t)shape.in;
    digcl_gemm(ctx, &gemm);
}

void digcl_linear_backward(digcl_context *ctx, digcl_linear_shape shape,
                           const digcl_linear_backward_args *args) {
    check_shape(shape, "linear_backward");
    if (args->dx) backward_input(ctx, shape, args);
    if (args->dweight) backward_weight(ctx, shape, args);
    if (args->dbias)
        digcl_column_sum(ctx, 1, shape.rows, shape.out, args->dy, 0, 1.0f, args->dbias,
                         args->dbias_offset, 0, 1, args->workspace, 0);
}
