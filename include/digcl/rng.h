/* digcl/rng.h: the one seeded random number generator of digcl.
 *
 * Counter-based (Philox4x32-10, Salmon et al., "Parallel random numbers: as
 * easy as 1, 2, 3", SC 2011): every draw is a pure function of
 *   (seed, stream, step, sample, index)
 * so a draw does not depend on the batch split, the number of ranks or
 * threads, the device, or a resume. Its whole state in a checkpoint is the
 * seed and the step. The same function runs on the host (here) and in kernels
 * (cl/philox.cl, included by kernel files that draw), bit-identical for the
 * integer outputs; floats derived from them agree to a few ulps across
 * devices (libm and OpenCL transcendental functions may differ in the last bit).
 *
 * Addressing: key = seed (64 bits); counter = (index / 4, sample, step,
 * stream) as four 32-bit words; lane index % 4 of the 4 outputs is the draw.
 * `sample` is a global sample index (data position, image number), `step` a
 * training step, epoch or sampling step, `index` the element within that
 * sample. See docs/DEVELOPING.md ("Randomness") for the streams in use.
 */
#ifndef DIGCL_RNG_H
#define DIGCL_RNG_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/runtime.h"

/* Streams: one per purpose, so that no two purposes ever share a draw. The
 * numbers are part of the checkpoint format (a resumed run must draw the
 * same values): never renumber, only append. */
typedef enum digcl_rng_stream {
    DIGCL_RNG_INIT = 1,       /* parameter initialisation: step 0, sample = tensor index */
    DIGCL_RNG_DATA_ORDER = 2, /* per-epoch shuffle: step = epoch */
    DIGCL_RNG_FLIP = 3,       /* horizontal flip: step = epoch, sample = data index */
    DIGCL_RNG_LABEL_DROP = 4, /* classifier-free label dropout: step, sample = global row */
    DIGCL_RNG_TIMESTEP = 5,   /* diffusion timestep t: step, sample = global row */
    DIGCL_RNG_NOISE = 6,      /* q_sample noise: step, sample = global row */
    DIGCL_RNG_LATENT = 7, /* posterior draw z = mean + std eps: step = epoch, sample = data index */
    DIGCL_RNG_SAMPLER = 8,      /* sampling noise: step = sampler step, sample = image number */
    DIGCL_RNG_SAMPLER_INIT = 9, /* sampling x_T: sample = image number */
    DIGCL_RNG_SAMPLE_LABELS =
        10, /* digcl sample --class-labels random: step 0, sample = image number */
    DIGCL_RNG_VAE_POSTERIOR = 11, /* train --vae: z = mean + std eps: step, sample = global row */
    DIGCL_RNG_TEST = 15           /* tests and benchmarks */
} digcl_rng_stream;

typedef struct digcl_rng_key {
    uint64_t seed;
    uint32_t stream;
} digcl_rng_key;

/* The raw generator: out[0..3] = Philox4x32-10(key, counter). */
void digcl_philox4x32(const uint32_t key[2], const uint32_t counter[4], uint32_t out[4]);

/* One 32-bit draw. */
uint32_t digcl_rng_u32(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index);
/* Uniform float in [0, 1): (u32 >> 8) * 2^-24, exactly representable. */
float digcl_rng_uniform(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index);
/* Uniform double in [0, 1) with 53 random bits (uses draws 2 index, 2 index + 1). */
double digcl_rng_uniform_double(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index);
/* An integer uniform in [0, bound), bound >= 1 (Lemire's multiply-shift on one
 * u32; bias below bound / 2^32). */
uint32_t digcl_rng_below(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index,
                         uint32_t bound);
/* A standard normal draw, Box-Muller on the lane pairs (0, 1) and (2, 3) of a
 * block: u1 = ((a >> 8) + 1) 2^-24 in (0, 1], u2 = (b >> 8) 2^-24,
 * z0 = sqrt(-2 ln u1) cos(2 pi u2), z1 = sqrt(-2 ln u1) sin(2 pi u2), computed
 * in float exactly as cl/philox.cl does. */
float digcl_rng_normal(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index);
/* Double-precision normal of the same draw (initialisation, references). */
double digcl_rng_normal_double(digcl_rng_key key, uint64_t step, uint64_t sample, uint64_t index);

/* ------------------------------------------------------------ device fills */

/* out[n, j] = digcl_rng_normal(key, step, first_sample + n, j) for n < rows,
 * j < row_length; `out` holds rows * row_length floats from element 0.
 * Asynchronous. */
void digcl_rng_fill_normal(digcl_context *ctx, digcl_rng_key key, uint64_t step,
                           uint64_t first_sample, size_t rows, size_t row_length,
                           cl_mem out); /* [rows, row_length] */
/* The same with uniform floats in [0, 1). */
void digcl_rng_fill_uniform(digcl_context *ctx, digcl_rng_key key, uint64_t step,
                            uint64_t first_sample, size_t rows, size_t row_length,
                            cl_mem out); /* [rows, row_length] */

#endif
