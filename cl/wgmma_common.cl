/* wgmma_common.cl: what the wgmma GEMM kernels (cl/gemm_wgmma.cl, TF32; cl/gemm_wgmma_split.cl,
 * 3xTF32) share (docs/PERFORMANCE.md, "wgmma GEMM"; PTX ISA, "Asynchronous Warpgroup Level
 * Matrix Multiply-Accumulate"):
 *   ACC_OPERANDS, ACC_REGS  the BN / 2 accumulators d[] of an m64nBNk8 .f32 wgmma as asm
 *                           operands %0 .. %(BN / 2 - 1) and their register list
 *   WGMMA_SHAPE             "m64n64k8" or "m64n128k8"
 *   AFTER_ACC0 .. 5         the operand names %(BN / 2) .. %(BN / 2 + 5): the first six
 *                           after the accumulators
 *   smem_descriptor         a shared-memory matrix descriptor (PTX ISA, "Matrix Descriptor
 *                           Format"): start address >> 4 in bits 0-13, leading-dimension byte
 *                           offset 1 (unused with a swizzle) in 16-29, stride byte offset >> 4
 *                           in 32-45, swizzle mode in 62-63 (1: 128 bytes, 2: 64 bytes)
 *   wgmma_wait              waits for this warpgroup's wgmma groups: d[] is final
 * Included after tensor_core.cl with BN defined, not when TC_EMULATE. */

/* "+f" of d[i .. i + 7] */
#define D8(i)                                                                                \
    "+f"(d[i]), "+f"(d[i + 1]), "+f"(d[i + 2]), "+f"(d[i + 3]), "+f"(d[i + 4]), "+f"(d[i + 5]), \
        "+f"(d[i + 6]), "+f"(d[i + 7])
#if BN == 64
#define ACC_OPERANDS D8(0), D8(8), D8(16), D8(24)
#define ACC_REGS     "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31}"
#define WGMMA_SHAPE  "m64n64k8"
#define AFTER_ACC0   "%32"
#define AFTER_ACC1   "%33"
#define AFTER_ACC2   "%34"
#define AFTER_ACC3   "%35"
#define AFTER_ACC4   "%36"
#define AFTER_ACC5   "%37"
#elif BN == 128
#define ACC_OPERANDS D8(0), D8(8), D8(16), D8(24), D8(32), D8(40), D8(48), D8(56)
#define ACC_REGS     "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define WGMMA_SHAPE  "m64n128k8"
#define AFTER_ACC0   "%64"
#define AFTER_ACC1   "%65"
#define AFTER_ACC2   "%66"
#define AFTER_ACC3   "%67"
#define AFTER_ACC4   "%68"
#define AFTER_ACC5   "%69"
#else
#error "BN must be 64 or 128"
#endif

static inline ulong smem_descriptor(__local const float *at, uint stride_bytes, uint swizzle) {
    const uint address = (uint)(size_t)at; /* the .shared window offset */
    return (ulong)((address >> 4) & 0x3fffu) | ((ulong)1 << 16) |
           ((ulong)(stride_bytes >> 4) << 32) | ((ulong)swizzle << 62);
}

static inline void wgmma_wait(float *d) {
    asm volatile(ARCH_PTX "wgmma.wait_group.sync.aligned 0;" : ACC_OPERANDS : : "memory");
}
