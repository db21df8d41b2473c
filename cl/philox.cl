/* philox.cl: Philox4x32-10 and the draws built on it, included by kernel
 * files that need random numbers (`#include "philox.cl"`). Bit-identical to
 * the host generator of src/ops/rng.c; see include/digcl/rng.h for the
 * addressing (key = seed, counter = (index / 4, sample, step, stream)) and
 * docs/DEVELOPING.md ("Randomness"). */
#ifndef DIGCL_PHILOX_CL
#define DIGCL_PHILOX_CL

/* out = Philox4x32-10(key, counter), as uint4 (x, y, z, w) = lanes 0..3. */
inline uint4 philox4x32_10(uint2 key, uint4 counter) {
    for (int round = 0; round < 10; ++round) {
        const uint hi0 = mul_hi(0xD2511F53u, counter.x), lo0 = 0xD2511F53u * counter.x;
        const uint hi1 = mul_hi(0xCD9E8D57u, counter.z), lo1 = 0xCD9E8D57u * counter.z;
        counter = (uint4)(hi1 ^ counter.y ^ key.x, lo1, hi0 ^ counter.w ^ key.y, lo0);
        key += (uint2)(0x9E3779B9u, 0xBB67AE85u);
    }
    return counter;
}

/* The 4 draws of block `block` for (seed, stream, step, sample). */
inline uint4 philox_block(uint2 seed, uint stream, uint step, uint sample, uint block) {
    return philox4x32_10(seed, (uint4)(block, sample, step, stream));
}

inline float philox_uniform(uint u) { return (float)(u >> 8) * 0x1.0p-24f; }

/* Box-Muller on one lane pair: (z0, z1). */
inline float2 philox_box_muller(uint a, uint b) {
    const float u1 = (float)((a >> 8) + 1u) * 0x1.0p-24f;
    const float u2 = (float)(b >> 8) * 0x1.0p-24f;
    const float r = sqrt(-2.0f * log(u1));
    const float angle = 6.2831853071795864769f * u2;
    return (float2)(r * cos(angle), r * sin(angle));
}

/* The 4 normal draws of one block: lanes (0, 1) and (2, 3) as two pairs. */
inline float4 philox_normal4(uint4 draws) {
    const float2 first = philox_box_muller(draws.x, draws.y);
    const float2 second = philox_box_muller(draws.z, draws.w);
    return (float4)(first.x, first.y, second.x, second.y);
}

#endif
