/* tensor_core.cl: the PTX instructions of the tensor-core kernels
 * (cl/gemm_tc.cl, cl/attention_tc*.cl; docs/PERFORMANCE.md "Tensor-core GEMM"):
 *   to_tf32(x)          cvt.rna.tf32.f32, round to nearest (ties away) to TF32
 *   truncated(x)        the TF32 part of x (its low 13 mantissa bits cleared): what the
 *                       tensor cores read of an fp32 register or tile (measured on the H200)
 *   split3(x, hi, lo)   x = hi + lo for the 3xTF32 products: hi = truncated(x), and
 *                       lo = x - hi (exact), of which the tensor cores read the TF32 part
 *   tf32_part(u)        the value an operand register u holds for the tensor cores
 *   mma_tf32(d, a, b)   d[0..3] += a[0..3] (16x8, row) * b[0..1] (8x8, col),
 *                       mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32
 *   shuffle_xor(x, m)   the value of lane (lane ^ m) of the warp, shfl.sync.bfly
 *   warp_sync()         the lanes of this warp wait for each other, and the local-memory
 *                       writes of each before it are visible to all after it
 *                       (bar.warp.sync, CUDA's __syncwarp); emulated: a work-group barrier,
 *                       so it must be reached by the whole work-group, like one
 *   ARCH_PTX            written before an sm_90a instruction in an asm string: a PTX
 *                       comment marker the runtime removes (cl/gemm_wgmma.cl)
 * With TC_EMULATE = 1 (tests on devices without tensor cores) only to_tf32,
 * truncated, split3, tf32_part and warp_sync exist, in plain C; the including kernel computes
 * products and exchanges between lanes itself.
 *
 * Why split3 truncates: a 3xTF32 product a_lo b_hi + a_hi b_lo + a_hi b_hi needs hi to be
 * exactly what the tensor cores use, and clearing bits is one integer AND against
 * cvt.rna's conversion, keeps NaN a NaN (no carry into the exponent) and lets lo go to the
 * tensor cores unconverted. The price is accuracy that is still far inside fp32 tolerances:
 * |x - hi - tf32(lo)| < 2^-20 |x| (rounding both: 2^-22). */

#define ARCH_PTX "// @@" /* src/runtime/program.c, ARCH_PTX_MARKER */

/* what the tensor cores read of an fp32 operand: its TF32 part (the low 13 mantissa bits
 * unused) */
static inline float truncated(float x) { return as_float(as_uint(x) & 0xffffe000u); }

static inline float tf32_part(uint x) { return truncated(as_float(x)); }

static inline void split3(float x, uint *hi, uint *lo) {
    *hi = as_uint(truncated(x));
    *lo = as_uint(x - as_float(*hi));
}

#if TC_EMULATE
static inline uint to_tf32(float x) { return (as_uint(x) + 0x1000u) & 0xffffe000u; }

static inline void warp_sync(void) { barrier(CLK_LOCAL_MEM_FENCE); }
#else
static inline void warp_sync(void) { asm volatile("bar.warp.sync 0xffffffff;" ::: "memory"); }

/* (Rounding by two integer operations as in the emulation wraps NVIDIA's NaN 0x7fffffff to
 * -0: docs/PERFORMANCE.md, "3xTF32 on wgmma".) */
static inline uint to_tf32(float x) {
    uint r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

static inline void mma_tf32(float *d, const uint *a, const uint *b) {
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, "
        "{%8,%9}, {%0,%1,%2,%3};"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

static inline float shuffle_xor(float x, int mask) {
    uint r;
    asm volatile("shfl.sync.bfly.b32 %0, %1, %2, 0x1f, 0xffffffff;"
                 : "=r"(r)
                 : "r"(as_uint(x)), "r"(mask));
    return as_float(r);
}
#endif
