/* rng.cl: device fills from the counter-based generator (include/digcl/rng.h).
 *
 *   out[n, j] = normal (or uniform) draw (seed, stream, step, first_sample + n, j)
 *
 * One work-item per block of 4 draws of one row; rows whose length is not a
 * multiple of 4 use the leading lanes of their last block, exactly as the
 * host draw of index j uses lane j % 4 of block j / 4. */
#include "philox.cl"

__kernel void rng_fill_normal(__global float *out, const uint seed_lo, const uint seed_hi,
                              const uint stream, const uint step, const uint first_sample,
                              const int rows, const int row_length) {
    const int block = get_global_id(0), row = get_global_id(1);
    const int column = block * 4;
    if (row >= rows || column >= row_length) return;
    const uint4 draws = philox_block((uint2)(seed_lo, seed_hi), stream, step,
                                     first_sample + (uint)row, (uint)block);
    const float4 z = philox_normal4(draws);
    __global float *dst = out + (size_t)row * row_length + column;
    const float lanes[4] = {z.x, z.y, z.z, z.w};
    for (int lane = 0; lane < 4 && column + lane < row_length; ++lane) dst[lane] = lanes[lane];
}

__kernel void rng_fill_uniform(__global float *out, const uint seed_lo, const uint seed_hi,
                               const uint stream, const uint step, const uint first_sample,
                               const int rows, const int row_length) {
    const int block = get_global_id(0), row = get_global_id(1);
    const int column = block * 4;
    if (row >= rows || column >= row_length) return;
    const uint4 d = philox_block((uint2)(seed_lo, seed_hi), stream, step,
                                 first_sample + (uint)row, (uint)block);
    const uint lanes[4] = {d.x, d.y, d.z, d.w};
    __global float *dst = out + (size_t)row * row_length + column;
    for (int lane = 0; lane < 4 && column + lane < row_length; ++lane)
        dst[lane] = philox_uniform(lanes[lane]);
}
