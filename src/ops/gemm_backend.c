/* gemm_backend.c: the GEMM path of a device.
 *
 *   DIGCL_GEMM=clblast   CLBlast everywhere (the portable reference)
 *   DIGCL_GEMM=blas      OpenBLAS; CPU devices only, when built with it
 *   DIGCL_GEMM=tensor    our tensor-core kernels; NVIDIA sm_80+ only
 *   DIGCL_GEMM=tensor-emulate   the same kernels with the PTX emulated, on
 *                        any device (tests of the kernel logic on PoCL)
 *   unset                CPU devices: OpenBLAS when built with it;
 *                        NVIDIA sm_80+: tensor cores; else CLBlast
 *
 * With -v the choice is logged once per device and process. */
#include <stdlib.h>
#include <string.h>

#include "digcl/log.h"
#include "gemm_backend.h"

typedef enum forced_backend {
    FORCED_NONE,
    FORCED_CLBLAST,
    FORCED_BLAS,
    FORCED_TENSOR,
    FORCED_TENSOR_EMULATE
} forced_backend;

static forced_backend forced_choice(void) {
    static int forced = -1;
    if (forced >= 0) return (forced_backend)forced;
    const char *value = getenv("DIGCL_GEMM");
    if (!value || !*value) forced = FORCED_NONE;
    else if (strcmp(value, "clblast") == 0) forced = FORCED_CLBLAST;
    else if (strcmp(value, "blas") == 0) forced = FORCED_BLAS;
    else if (strcmp(value, "tensor") == 0) forced = FORCED_TENSOR;
    else if (strcmp(value, "tensor-emulate") == 0) forced = FORCED_TENSOR_EMULATE;
    else
        digcl_fatal("DIGCL_GEMM='%s' is not a GEMM path (expected clblast, blas, tensor or "
                    "tensor-emulate)",
                    value);
    return (forced_backend)forced;
}

int digcl_gemm_tc_emulated(void) { return forced_choice() == FORCED_TENSOR_EMULATE; }

static int have_blas(void) {
#ifdef DIGCL_HAVE_OPENBLAS
    return 1;
#else
    return 0;
#endif
}

static digcl_gemm_backend_kind choose(const digcl_device_info *device) {
    const int cpu = (device->type & CL_DEVICE_TYPE_CPU) != 0;
    const int tensor = digcl_gemm_tc_supported(device);
    switch (forced_choice()) {
    case FORCED_CLBLAST: return DIGCL_GEMM_BACKEND_CLBLAST;
    case FORCED_BLAS:
        if (!have_blas())
            digcl_fatal("DIGCL_GEMM=blas: this digcl was built without OpenBLAS "
                        "(configure with -DDIGCL_WITH_OPENBLAS=ON, Debian: libopenblas-dev)");
        if (!cpu)
            digcl_fatal("DIGCL_GEMM=blas needs a CPU OpenCL device (its buffers live in host "
                        "memory); device '%s' is not one",
                        device->name);
        return DIGCL_GEMM_BACKEND_BLAS;
    case FORCED_TENSOR:
        if (!tensor)
            digcl_fatal("DIGCL_GEMM=tensor needs an NVIDIA GPU of compute capability 8.0 or newer; "
                        "device '%s' is not one",
                        device->name);
        return DIGCL_GEMM_BACKEND_TENSOR;
    case FORCED_TENSOR_EMULATE: return DIGCL_GEMM_BACKEND_TENSOR;
    case FORCED_NONE: break;
    }
    if (cpu && have_blas()) return DIGCL_GEMM_BACKEND_BLAS;
    if (tensor) return DIGCL_GEMM_BACKEND_TENSOR;
    return DIGCL_GEMM_BACKEND_CLBLAST;
}

static const char *backend_label(const digcl_context *ctx, digcl_gemm_backend_kind kind) {
    switch (kind) {
    case DIGCL_GEMM_BACKEND_BLAS: return "OpenBLAS";
    case DIGCL_GEMM_BACKEND_TENSOR: {
        static const char *labels[2][2][2] = {
            /* [emulated][wgmma][tf32] */
            {{"tensor cores (3xTF32)", "tensor cores (TF32)"},
             {"tensor cores (3xTF32, wgmma)", "tensor cores (TF32, wgmma)"}},
            {{"tensor-core kernels, emulated (3xTF32)", "tensor-core kernels, emulated (TF32)"},
             {"tensor-core kernels, emulated (3xTF32, wgmma)",
              "tensor-core kernels, emulated (TF32, wgmma)"}}};
        return labels[digcl_gemm_tc_emulated() != 0][digcl_gemm_tc_wgmma(ctx) != 0]
                     [digcl_context_precision(ctx) == DIGCL_PRECISION_TF32];
    }
    case DIGCL_GEMM_BACKEND_CLBLAST: break;
    }
    return "CLBlast";
}

/* The first call for each device logs the choice (with -v), and says when
 * TF32 was asked for where it has no effect. */
static void announce(const digcl_context *ctx, digcl_gemm_backend_kind kind) {
    enum { MAX_DEVICES = 16 };
    static cl_device_id seen[MAX_DEVICES];
    static size_t seen_count;
    const digcl_device_info *device = digcl_context_device(ctx);
    for (size_t i = 0; i < seen_count; i++)
        if (seen[i] == device->device) return;
    if (seen_count < MAX_DEVICES) seen[seen_count++] = device->device;
    if (digcl_context_verbose(ctx))
        digcl_log(DIGCL_LOG_DEBUG, "GEMM: %s on %s", backend_label(ctx, kind), device->name);
    if (kind != DIGCL_GEMM_BACKEND_TENSOR && digcl_context_precision(ctx) == DIGCL_PRECISION_TF32)
        digcl_log(DIGCL_LOG_NOTICE,
                  "precision tf32 has no effect on %s (no tensor-core GEMM): products stay fp32",
                  device->name);
}

digcl_gemm_backend_kind digcl_gemm_backend(const digcl_context *ctx) {
    digcl_gemm_backend_kind kind = choose(digcl_context_device(ctx));
    announce(ctx, kind);
    return kind;
}

const char *digcl_gemm_backend_name(const digcl_context *ctx) {
    return backend_label(ctx, digcl_gemm_backend(ctx));
}

int digcl_gemm_uses_tf32(const digcl_context *ctx) {
    return digcl_gemm_backend(ctx) == DIGCL_GEMM_BACKEND_TENSOR &&
           digcl_context_precision(ctx) == DIGCL_PRECISION_TF32;
}
