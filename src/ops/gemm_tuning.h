/* gemm_tuning.h: CLBlast kernel parameters for devices that CLBlast's own
 * database lacks. Private to src/ops. */
#ifndef DIGCL_OPS_GEMM_TUNING_H
#define DIGCL_OPS_GEMM_TUNING_H

#include "digcl/runtime.h"

/* Before the first CLBlast call on ctx's device: overrides CLBlast's SGEMM
 * parameters when the device is in the table (once per device and process;
 * DIGCL_GEMM_TUNING=0 disables; -v says which set was applied). Cheap after. */
void digcl_gemm_tuning_apply(digcl_context *ctx);

#endif
