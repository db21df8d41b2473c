/* rng.c: the host side of the counter-based generator (digcl/rng.h) and the
 * launchers of its device fills (cl/rng.cl, cl/philox.cl). */
#include "digcl/rng.h"

#include <math.h>

#include "ops_common.h"

void digcl_philox4x32(const uint32_t key_in[2], const uint32_t counter_in[4], uint32_t out[4]) {
    uint32_t key[2] = {key_in[0], key_in[1]};
    uint32_t c[4] = {counter_in[0], counter_in[1], counter_in[2], counter_in[3]};
    for (int round = 0; round < 10; ++round) {
        const uint64_t product0 = (uint64_t)0xD2511F53u * c[0];
        const uint64_t product1 = (uint64_t)0xCD9E8D57u * c[2];
        const uint32_t hi0 = (uint32_t)(product0 >> 32), lo0 = (uint32_t)product0;
        const uint32_t hi1 = (uint32_t)(product1 >> 32), lo1 = (uint32_t)product1;
        c[0] = hi1 ^ c[1] ^ key[0];
        c[1] = lo1;
        c[2] = hi0 ^ c[3] ^ key[1];
        c[3] = lo0;
        key[0] += 0x9E3779B9u;
        key[1] += 0xBB67AE85u;
    }
    for (int i = 0; i < 4; ++i) out[i] = c[i];
}

static void rng_block(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t block,
                      uint32_t out[4]) {
    const uint32_t k[2] = {(uint32_t)key.seed, (uint32_t)(key.seed >> 32)};
    const uint32_t counter[4] = {(uint32_t)block, (uint32_t)sample, (uint32_t)step, key.stream};
    digcl_philox4x32(k, counter, out);
}

uint32_t digcl_rng_u32(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index) {
    uint32_t out[4];
    rng_block(key, step, sample, index / 4, out);
    return out[index % 4];
}

static float uniform_from_u32(uint32_t u) { return (float)(u >> 8) * 0x1.0p-24f; }

float digcl_rng_uniform(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index) {
    return uniform_from_u32(digcl_rng_u32(key, step, sample, index));
}

double digcl_rng_uniform_double(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index) {
    const uint64_t hi = digcl_rng_u32(key, step, sample, 2 * index) >> 6;     /* 26 bits */
    const uint64_t lo = digcl_rng_u32(key, step, sample, 2 * index + 1) >> 5; /* 27 bits */
    return (double)((hi << 27) | lo) * 0x1.0p-53;
}

uint32_t digcl_rng_below(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index,
                         uint32_t bound) {
    return (uint32_t)(((uint64_t)digcl_rng_u32(key, step, sample, index) * bound) >> 32);
}

/* Lane pair (a, b) of the block holding `index`, and which of the pair's two
 * outputs (cos or sin) the index takes. */
static void normal_pair(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index,
                        uint32_t *a, uint32_t *b) {
    uint32_t out[4];
    rng_block(key, step, sample, index / 4, out);
    const int pair = (int)(index % 4) / 2;
    *a = out[2 * pair];
    *b = out[2 * pair + 1];
}

float digcl_rng_normal(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index) {
    uint32_t a, b;
    normal_pair(key, step, sample, index, &a, &b);
    const float u1 = (float)((a >> 8) + 1u) * 0x1.0p-24f;
    const float u2 = (float)(b >> 8) * 0x1.0p-24f;
    const float r = sqrtf(-2.0f * logf(u1));
    const float angle = 6.2831853071795864769f * u2;
    return index % 2 == 0 ? r * cosf(angle) : r * sinf(angle);
}

double digcl_rng_normal_double(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index) {
    uint32_t a, b;
    normal_pair(key, step, sample, index, &a, &b);
    const double u1 = (double)((a >> 8) + 1u) * 0x1.0p-24;
    const double u2 = (double)(b >> 8) * 0x1.0p-24;
    const double r = sqrt(-2.0 * log(u1));
    const double angle = 6.283185307179586476925 * u2;
    return index % 2 == 0 ? r * cos(angle) : r * sin(angle);
}

static void rng_fill(digcl_context *ctx, const char *name, digcl_rng_key key, uint64_t step,
                     uint64_t first_sample, size_t rows, size_t row_length, cl_mem out) {
    ops_check_int(rows, "rows", name);
    ops_check_int(row_length, "row_length", name);
    if (rows == 0 || row_length == 0) return;
    cl_kernel kernel = digcl_kernel(ctx, "rng", name, "");
    digcl_arg_mem(kernel, 0, out);
    DIGCL_CL_CHECK(clSetKernelArg(kernel, 1, sizeof(cl_uint), &(cl_uint){(cl_uint)key.seed}));
    DIGCL_CL_CHECK(
        clSetKernelArg(kernel, 2, sizeof(cl_uint), &(cl_uint){(cl_uint)(key.seed >> 32)}));
    DIGCL_CL_CHECK(clSetKernelArg(kernel, 3, sizeof(cl_uint), &(cl_uint){key.stream}));
    DIGCL_CL_CHECK(clSetKernelArg(kernel, 4, sizeof(cl_uint), &(cl_uint){(cl_uint)step}));
    DIGCL_CL_CHECK(clSetKernelArg(kernel, 5, sizeof(cl_uint), &(cl_uint){(cl_uint)first_sample}));
    digcl_arg_int(kernel, 6, (int)rows);
    digcl_arg_int(kernel, 7, (int)row_length);
    const size_t global[2] = {ops_ceil_div(row_length, 4), rows};
    const size_t local[2] = {global[0] < 64 ? global[0] : 64, 1};
    digcl_launch(ctx, kernel, name, 2, global, local);
}

void digcl_rng_fill_normal(digcl_context *ctx, digcl_rng_key key, uint64_t step,
                           uint64_t first_sample, size_t rows, size_t row_length, cl_mem out) {
    rng_fill(ctx, "rng_fill_normal", key, step, first_sample, rows, row_length, out);
}

void digcl_rng_fill_uniform(digcl_context *ctx, digcl_rng_key key, uint64_t step,
                            uint64_t first_sample, size_t rows, size_t row_length, cl_mem out) {
    rng_fill(ctx, "rng_fill_uniform", key, step, first_sample, rows, row_length, out);
}
