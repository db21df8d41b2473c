/* gemm_blas.c: GEMMs on CPU devices through OpenBLAS (cblas) on mapped
 * buffers. A CPU OpenCL device (PoCL) keeps its buffers in host memory, so a
 * blocking map hands out the host pointer without a copy; OpenBLAS then runs
 * the product with as many threads as the device has compute units, several
 * times faster than CLBlast's OpenCL kernels compiled for the CPU.
 *
 * OpenBLAS picks its kernels once, when it is loaded (DYNAMIC_ARCH builds such
 * as Debian's). A CPU model newer than the OpenBLAS build, such as family 6
 * model 207 under OpenBLAS 0.3.21, falls back to the SSE3 "Prescott" kernels,
 * about 3x slower than "SkylakeX" on an AVX-512 CPU: digcl_openblas_core_hint
 * names the better choice, for the next process (OPENBLAS_CORETYPE).
 *
 * Chosen by digcl_gemm_backend (gemm_backend.c). */
#include "gemm_backend.h"

#include <stdlib.h>
#include <string.h>

#include "digcl/log.h"

#ifdef DIGCL_HAVE_OPENBLAS
#include <cblas.h>
#endif

#ifdef DIGCL_HAVE_OPENBLAS

/* Elements of a row-major [rows, columns] operand with leading dimension ld,
 * `batch` copies `stride` apart, starting at offset: the extent to map. */
static size_t operand_extent(size_t offset, size_t rows, size_t columns, size_t ld, size_t stride,
                             size_t batch) {
    return offset + (batch - 1) * stride + (rows - 1) * ld + columns;
}

static float *map_floats(digcl_context *ctx, cl_mem mem, size_t count, cl_map_flags flags) {
    cl_int status = CL_SUCCESS;
    void *pointer = clEnqueueMapBuffer(digcl_context_queue(ctx), mem, CL_TRUE, flags, 0,
                                       count * sizeof(float), 0, NULL, NULL, &status);
    if (status != CL_SUCCESS)
        digcl_cl_failed("clEnqueueMapBuffer (GEMM through OpenBLAS)", status, __FILE__, __LINE__);
    return pointer;
}

static void unmap_floats(digcl_context *ctx, cl_mem mem, float *pointer) {
    DIGCL_CL_CHECK(clEnqueueUnmapMemObject(digcl_context_queue(ctx), mem, pointer, 0, NULL, NULL));
}

/* OpenBLAS core names below the vector width of AVX2 + FMA (x86-64 only). */
static int is_pre_avx2_core(const char *core) {
    static const char *const names[] = {"Prescott", "Core2",  "Penryn",      "Dunnington",
                                        "Nehalem",  "Atom",   "Sandybridge", "Nano",
                                        "Banias",   "Katmai", "Coppermine",  "Northwood"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(core, names[i]) == 0) return 1;
    return 0;
}

static int cpu_has_skylakex_set(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512cd");
#else
    return 0;
#endif
}

static int cpu_has_haswell_set(void) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 0;
#endif
}

const char *digcl_openblas_core(void) { return openblas_get_corename(); }

const char *digcl_openblas_core_hint(void) {
    const char *set = getenv("OPENBLAS_CORETYPE");
    if (set && *set) return NULL;
    const char *core = openblas_get_corename();
    if (!core) return NULL;
    const int narrow = is_pre_avx2_core(core);
    if (cpu_has_skylakex_set() && (narrow || strcmp(core, "Haswell") == 0)) return "SkylakeX";
    if (cpu_has_haswell_set() && narrow) return "Haswell";
    return NULL;
}

static void set_threads_once(const digcl_context *ctx) {
    static int done = 0;
    if (done) return;
    done = 1;
    const uint32_t units = digcl_context_device(ctx)->compute_units;
    const int threads = units > 0 ? (int)units : 1;
    openblas_set_num_threads(threads);
    digcl_log(DIGCL_LOG_DEBUG, "GEMM: OpenBLAS (%s kernels) on the CPU device, %d threads",
              openblas_get_corename(), threads);
    const char *hint = digcl_openblas_core_hint();
    if (hint)
        digcl_log(DIGCL_LOG_NOTICE,
                  "OpenBLAS runs its %s kernels on a CPU that can run its %s ones (about 3x "
                  "faster GEMMs): start the program with OPENBLAS_CORETYPE=%s",
                  openblas_get_corename(), hint, hint);
}

void digcl_gemm_blas(digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a, size_t stride_b,
                     size_t stride_c, size_t batch) {
    if (a->M == 0 || a->N == 0 || batch == 0) return;
    set_threads_once(ctx);
    const size_t a_rows = a->transpose_a ? a->K : a->M, a_cols = a->transpose_a ? a->M : a->K;
    const size_t b_rows = a->transpose_b ? a->N : a->K, b_cols = a->transpose_b ? a->K : a->N;
    const int has_k = a->K > 0;
    double begin = digcl_profile_begin(ctx);
    float *A =
        has_k ? map_floats(ctx, a->A,
                           operand_extent(a->a_offset, a_rows, a_cols, a->lda, stride_a, batch),
                           CL_MAP_READ)
              : NULL;
    float *B =
        has_k ? map_floats(ctx, a->B,
                           operand_extent(a->b_offset, b_rows, b_cols, a->ldb, stride_b, batch),
                           CL_MAP_READ)
              : NULL;
    float *C =
        map_floats(ctx, a->C, operand_extent(a->c_offset, a->M, a->N, a->ldc, stride_c, batch),
                   CL_MAP_READ | CL_MAP_WRITE);
    const enum CBLAS_TRANSPOSE ta = a->transpose_a ? CblasTrans : CblasNoTrans;
    const enum CBLAS_TRANSPOSE tb = a->transpose_b ? CblasTrans : CblasNoTrans;
    for (size_t i = 0; i < batch; ++i) {
        float *c = C + a->c_offset + i * stride_c;
        if (!has_k) { /* C = beta C: cblas would not touch C when K = 0 with beta 0 */
            for (size_t m = 0; m < a->M; ++m)
                for (size_t n = 0; n < a->N; ++n)
                    c[m * a->ldc + n] = a->beta == 0.0f ? 0.0f : a->beta * c[m * a->ldc + n];
            continue;
        }
        if (a->beta == 0.0f) /* never read C (it may hold NaN) */
            for (size_t m = 0; m < a->M; ++m) memset(c + m * a->ldc, 0, a->N * sizeof(float));
        cblas_sgemm(CblasRowMajor, ta, tb, (int)a->M, (int)a->N, (int)a->K, a->alpha,
                    A + a->a_offset + i * stride_a, (int)a->lda, B + a->b_offset + i * stride_b,
                    (int)a->ldb, a->beta, c, (int)a->ldc);
    }
    if (A) unmap_floats(ctx, a->A, A);
    if (B) unmap_floats(ctx, a->B, B);
    unmap_floats(ctx, a->C, C);
    digcl_profile_end(ctx, "gemm (OpenBLAS, host-timed)", begin);
}

#else

const char *digcl_openblas_core(void) { return NULL; }

const char *digcl_openblas_core_hint(void) { return NULL; }

void digcl_gemm_blas(digcl_context *ctx, const digcl_gemm_args *a, size_t stride_a, size_t stride_b,
                     size_t stride_c, size_t batch) {
    (void)ctx, (void)a, (void)stride_a, (void)stride_b, (void)stride_c, (void)batch;
    digcl_fatal("digcl_gemm_blas: built without OpenBLAS");
}

#endif
