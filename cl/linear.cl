/* linear.cl: the bias add of nn.Linear, y = x W^T + b (digcl/linear.h; PyTorch
 * https://pytorch.org/docs/stable/generated/torch.nn.Linear.html). The GEMMs are
 * CLBlast's; db = column sum of dy is reduce.cl's reduce_columns.
 *
 *   bias_add: y[r, o] += b[o]     global size (out / VEC, rows)
 *
 * Options: -DVEC=1|4 (float4 when out and the bias offset are multiples of 4).
 */
#include "vector.cl"

__kernel void bias_add(__global vec *y, const int rows, const int out_vec,
                       __global const float *bias, const int bias_offset) {
    const int o = get_global_id(0), r = get_global_id(1);
    if (o >= out_vec || r >= rows) return;
    y[(size_t)r * out_vec + o] += ((__global const vec *)(bias + bias_offset))[o];
}
