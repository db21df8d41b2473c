/* vector.cl: the element type of the elementwise kernels, included by other
 * kernel files with `#include "vector.cl"` (the runtime expands it).
 *
 * vec = float4 when built with -DVEC=4 (the launcher checked that every
 * offset and width is a multiple of 4), float16 with -DVEC=16 (the same for 16),
 * else float; HSUM sums its lanes. */
#ifndef VEC
#define VEC 1
#endif
#if VEC == 4
typedef float4 vec;
#define HSUM(v) ((v).x + (v).y + (v).z + (v).w) /* horizontal sum of a vec */
#elif VEC == 16
typedef float16 vec;
#define HSUM4(v) ((v).x + (v).y + (v).z + (v).w)
#define HSUM(v) (HSUM4((v).lo.lo) + HSUM4((v).lo.hi) + HSUM4((v).hi.lo) + HSUM4((v).hi.hi))
#else
typedef float vec;
#define HSUM(v) (v)
#endif
