/* CLBlast SGEMM parameters for NVIDIA Hopper (H100, H200), which CLBlast
 * 1.5.3's database does not list (it falls back to NVIDIA defaults).
 *
 * Found with `digcl bench gemm --tune` on the DiG-S/2 training shapes
 * (docs/PERFORMANCE.md, "CLBlast parameters for the H200"): 128x64 output
 * tiles with 16x8 threads of 8x8 results, K steps of 32; and the indirect
 * (tiled) kernel from m*n*k >= 512^3 instead of CLBlast's larger threshold,
 * so that 8192x384x384 no longer runs the direct kernel, while the split-K
 * slices (384x384x512) still do. CLBlast keeps overrides per device for the
 * process, so they are applied once per device. */
#include <clblast_c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gemm_tuning.h"
#include "digcl/log.h"

enum { XGEMM_PARAMS = 16, MAX_TUNED_DEVICES = 16 };

static const char *xgemm_names[XGEMM_PARAMS] = {"MWG",   "NWG", "KWG",  "MDIMC", "NDIMC", "MDIMA",
                                                "NDIMB", "KWI", "VWM",  "VWN",   "STRM",  "STRN",
                                                "SA",    "SB",  "KREG", "GEMMK"};

typedef struct gemm_tuning {
    const char *name_contains; /* NVIDIA device name substring */
    const char *label;
    size_t xgemm[XGEMM_PARAMS]; /* in xgemm_names order */
    size_t min_indirect;        /* GemmRoutine XGEMM_MIN_INDIRECT_SIZE */
} gemm_tuning;

static const gemm_tuning tunings[] = {
    {"H200", "hopper-128x64k32", {128, 64, 32, 16, 8, 16, 8, 2, 4, 2, 1, 1, 1, 1, 1, 0}, 512},
    {"H100", "hopper-128x64k32", {128, 64, 32, 16, 8, 16, 8, 2, 4, 2, 1, 1, 1, 1, 1, 0}, 512},
};

static const gemm_tuning *find_tuning(const digcl_device_info *device) {
    if (!(device->type & CL_DEVICE_TYPE_GPU) || !strstr(device->vendor, "NVIDIA")) return NULL;
    for (size_t i = 0; i < sizeof tunings / sizeof *tunings; i++)
        if (strstr(device->name, tunings[i].name_contains)) return &tunings[i];
    return NULL;
}

static int tuning_enabled(void) {
    const char *value = getenv("DIGCL_GEMM_TUNING");
    return !(value && strcmp(value, "0") == 0);
}

static void override_parameters(const digcl_device_info *device, const gemm_tuning *t) {
    const char *routine_name = "XGEMM_MIN_INDIRECT_SIZE";
    CLBlastStatusCode status = CLBlastOverrideParameters(
        device->device, "Xgemm", CLBlastPrecisionSingle, XGEMM_PARAMS, xgemm_names, t->xgemm);
    if (status == CLBlastSuccess)
        status = CLBlastOverrideParameters(device->device, "GemmRoutine", CLBlastPrecisionSingle, 1,
                                           &routine_name, &t->min_indirect);
    if (status != CLBlastSuccess)
        digcl_fatal("CLBlast rejected the GEMM parameters '%s' for %s (status %d)\n"
                    "---> HINT: DIGCL_GEMM_TUNING=0 runs with CLBlast's own parameters",
                    t->label, device->name, (int)status);
}

/* Devices already seen in this process (tuned or not). */
static cl_device_id seen[MAX_TUNED_DEVICES];
static size_t seen_count;

static int first_time(cl_device_id device) {
    for (size_t i = 0; i < seen_count; i++)
        if (seen[i] == device) return 0;
    if (seen_count == MAX_TUNED_DEVICES) return 0; /* more devices than any host has: leave them */
    seen[seen_count++] = device;
    return 1;
}

void digcl_gemm_tuning_apply(digcl_context *ctx) {
    const digcl_device_info *device = digcl_context_device(ctx);
    if (!first_time(device->device)) return;
    const gemm_tuning *t = tuning_enabled() ? find_tuning(device) : NULL;
    if (t) override_parameters(device, t);
    if (digcl_context_verbose(ctx))
        digcl_log(DIGCL_LOG_DEBUG, "GEMM: %s%s for %s",
                  t ? "CLBlast parameters " : "CLBlast's own parameters", t ? t->label : "",
                  device->name);
}
