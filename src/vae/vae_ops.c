/* vae_ops.c: launchers and references of digcl/vae_ops.h (cl/vae.cl and digcl_gemm). */
#include "digcl/vae_ops.h"

#include <math.h>
#include <stdlib.h>

#include "digcl/gemm.h"
#include "digcl/ref/vae_ops.h"

static int checked_count(size_t count, const char *op) {
    if (count > 2147483647u) digcl_fatal("%s over %zu elements exceeds the int range", op, count);
    return (int)count;
}

static void launch_flat(digcl_context *ctx, cl_kernel kernel, const char *label, size_t count) {
    const size_t local = 256;
    digcl_launch(ctx, kernel, label, 1, &count, &local);
}

void digcl_relu_inplace(digcl_context *ctx, size_t count, cl_mem x) {
    cl_kernel kernel = digcl_kernel(ctx, "vae", "relu_inplace", "");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_int(kernel, 1, checked_count(count, "relu"));
    launch_flat(ctx, kernel, "relu_inplace", count);
}

void digcl_tanh_clamp_forward(digcl_context *ctx, size_t count, cl_mem x, cl_mem y) {
    cl_kernel kernel = digcl_kernel(ctx, "vae", "tanh_clamp", "");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_mem(kernel, 1, y);
    digcl_arg_int(kernel, 2, checked_count(count, "tanh clamp"));
    launch_flat(ctx, kernel, "tanh_clamp", count);
}

void digcl_affine_inplace(digcl_context *ctx, size_t count, float a, float b, cl_mem x) {
    cl_kernel kernel = digcl_kernel(ctx, "vae", "affine_inplace", "");
    digcl_arg_mem(kernel, 0, x);
    digcl_arg_float(kernel, 1, a);
    digcl_arg_float(kernel, 2, b);
    digcl_arg_int(kernel, 3, checked_count(count, "affine"));
    launch_flat(ctx, kernel, "affine_inplace", count);
}

void digcl_posterior_sample_forward(digcl_context *ctx, size_t count, float scale, cl_mem mean_z,
                                    cl_mem logvar, cl_mem eps) {
    cl_kernel kernel = digcl_kernel(ctx, "vae", "posterior_sample", "");
    digcl_arg_mem(kernel, 0, mean_z);
    digcl_arg_mem(kernel, 1, logvar);
    digcl_arg_mem(kernel, 2, eps);
    digcl_arg_float(kernel, 3, scale);
    digcl_arg_int(kernel, 4, checked_count(count, "posterior sample"));
    launch_flat(ctx, kernel, "posterior_sample", count);
}

void digcl_posterior_draw_forward(digcl_context *ctx, size_t rows, size_t row_length, float scale,
                                  int spread_is_logvar, digcl_rng_key key, uint64_t step,
                                  cl_mem mean_z, cl_mem spread, cl_mem draw_index) {
    checked_count(rows * row_length, "posterior draw");
    if (rows == 0 || row_length == 0) return;
    cl_kernel kernel =
        digcl_kernel(ctx, "vae", "posterior_draw",
                     spread_is_logvar ? "-DSPREAD_IS_LOGVAR=1" : "-DSPREAD_IS_LOGVAR=0");
    const cl_uint words[4] = {(cl_uint)key.seed, (cl_uint)(key.seed >> 32), key.stream,
                              (cl_uint)step};
    digcl_arg_mem(kernel, 0, mean_z);
    digcl_arg_mem(kernel, 1, spread);
    digcl_arg_mem(kernel, 2, draw_index);
    for (unsigned k = 0; k < 4; k++)
        DIGCL_CL_CHECK(clSetKernelArg(kernel, 3 + k, sizeof(cl_uint), &words[k]));
    digcl_arg_float(kernel, 7, scale);
    digcl_arg_int(kernel, 8, (int)rows);
    digcl_arg_int(kernel, 9, (int)row_length);
    const size_t global[2] = {(row_length + 3) / 4, rows};
    const size_t local[2] = {global[0] < 64 ? global[0] : 64, 1};
    digcl_launch(ctx, kernel, "posterior_draw", 2, global, local);
}

int digcl_spatial_attention_block_rows(int T, size_t score_floats) {
    if (T < 1 || score_floats < (size_t)T)
        digcl_fatal("spatial attention: a scores workspace of %zu floats is below one row (T = %d)",
                    score_floats, T);
    const size_t rows = score_floats / (size_t)T;
    return rows >= (size_t)T ? T : (int)rows;
}

void digcl_spatial_attention_forward(digcl_context *ctx, int C, int T, digcl_plane_ref q,
                                     digcl_plane_ref k, digcl_plane_ref v, digcl_plane_ref out,
                                     cl_mem scores, size_t score_floats) {
    const int B = digcl_spatial_attention_block_rows(T, score_floats);
    cl_kernel softmax = digcl_kernel(ctx, "vae", "softmax_rows", "");
    const float scale = (float)(1.0 / sqrt((double)C));
    for (int i0 = 0; i0 < T; i0 += B) {
        const int rows = T - i0 < B ? T - i0 : B;
        /* S [rows, T] = q[:, i0 : i0 + rows]^T k */
        digcl_gemm_args s = {0};
        s.transpose_a = 1, s.M = (size_t)rows, s.N = (size_t)T, s.K = (size_t)C;
        s.alpha = 1.0f, s.beta = 0.0f;
        s.A = q.mem, s.a_offset = q.offset + (size_t)i0, s.lda = (size_t)T;
        s.B = k.mem, s.b_offset = k.offset, s.ldb = (size_t)T;
        s.C = scores, s.c_offset = 0, s.ldc = (size_t)T;
        digcl_gemm(ctx, &s);
        digcl_arg_mem(softmax, 0, scores);
        digcl_arg_int(softmax, 1, T);
        digcl_arg_float(softmax, 2, scale);
        const size_t global = (size_t)rows * 256, local = 256;
        digcl_launch(ctx, softmax, "softmax_rows", 1, &global, &local);
        /* out[:, i0 : i0 + rows] [C, rows] = v [C, T] S^T */
        digcl_gemm_args o = {0};
        o.transpose_b = 1, o.M = (size_t)C, o.N = (size_t)rows, o.K = (size_t)T;
        o.alpha = 1.0f, o.beta = 0.0f;
        o.A = v.mem, o.a_offset = v.offset, o.lda = (size_t)T;
        o.B = scores, o.b_offset = 0, o.ldb = (size_t)T;
        o.C = out.mem, o.c_offset = out.offset + (size_t)i0, o.ldc = (size_t)T;
        digcl_gemm(ctx, &o);
    }
}

void digcl_ref_posterior_sample_forward(size_t count, double scale, const double *mean,
                                        const double *logvar, const double *eps, double *z) {
    for (size_t i = 0; i < count; ++i) {
        const double lv = fmin(fmax(logvar[i], -30.0), 20.0);
        z[i] = scale * (mean[i] + exp(0.5 * lv) * eps[i]);
    }
}

void digcl_ref_posterior_draw_forward(size_t rows, size_t row_length, double scale,
                                      int spread_is_logvar, digcl_rng_key key, uint64_t step,
                                      const double *mean, const double *spread,
                                      const int32_t *draw_index, double *z) {
    for (size_t n = 0; n < rows; n++)
        for (size_t j = 0; j < row_length; j++) {
            const size_t i = n * row_length + j;
            const double sd =
                spread_is_logvar ? exp(0.5 * fmin(fmax(spread[i], -30.0), 20.0)) : spread[i];
            const double eps = digcl_rng_normal_double(key, step, (uint64_t)draw_index[n], j);
            z[i] = scale * (mean[i] + sd * eps);
        }
}

void digcl_ref_spatial_attention_forward(int C, int T, const double *q, const double *k,
                                         const double *v, double *out) {
    double *p = malloc((size_t)T * sizeof *p);
    if (!p) digcl_fatal("spatial attention reference: out of host memory");
    const double scale = 1.0 / sqrt((double)C);
    for (int i = 0; i < T; ++i) {
        double m = -INFINITY, sum = 0.0;
        for (int j = 0; j < T; ++j) {
            double dot = 0.0;
            for (int c = 0; c < C; ++c) dot += q[(size_t)c * T + i] * k[(size_t)c * T + j];
            p[j] = scale * dot;
            if (p[j] > m) m = p[j];
        }
        for (int j = 0; j < T; ++j) sum += (p[j] = exp(p[j] - m));
        for (int c = 0; c < C; ++c) {
            double acc = 0.0;
            for (int j = 0; j < T; ++j) acc += p[j] * v[(size_t)c * T + j];
            out[(size_t)c * T + i] = acc / sum;
        }
    }
    free(p);
}
