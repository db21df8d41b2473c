/* optim.c: launchers of AdamW and the EMA update (digcl/optim.h, cl/optim.cl). */
#include "digcl/optim.h"

#include <math.h>

#include "ops_common.h"

#define GROUP 256

digcl_adamw_hparams digcl_adamw_defaults(void) {
    digcl_adamw_hparams hparams = {1e-4f, 0.9, 0.999, 1e-8f, 0.0f};
    return hparams;
}

static int flat_vec_width(int count) {
    size_t values[1] = {(size_t)count};
    return ops_vec_width(values, 1);
}

void digcl_adamw_step(digcl_context *ctx, int count, const digcl_adamw_hparams *hp, long step,
                      cl_mem params, cl_mem grads, cl_mem m, cl_mem v) {
    ops_check_positive(count, "count", "adamw_step");
    ops_check_positive(step, "step", "adamw_step");
    const int vec = flat_vec_width(count);
    const double bias_correction1 = 1.0 - pow(hp->beta1, (double)step);
    const double bias_correction2 = 1.0 - pow(hp->beta2, (double)step);
    cl_kernel kernel = digcl_kernel(ctx, "optim", "adamw_step", vec == 4 ? "-DVEC=4" : "-DVEC=1");
    digcl_arg_mem(kernel, 0, params);
    digcl_arg_mem(kernel, 1, grads);
    digcl_arg_mem(kernel, 2, m);
    digcl_arg_mem(kernel, 3, v);
    digcl_arg_int(kernel, 4, count / vec);
    digcl_arg_float(kernel, 5, (float)(1.0 - (double)hp->lr * hp->weight_decay));
    /* 1 - beta in double, then rounded (as torch's value=1 - beta2): 1.0f - 0.999f in
     * float is off by 1.3e-5 relative. */
    digcl_arg_float(kernel, 6, (float)hp->beta1);
    digcl_arg_float(kernel, 7, (float)(1.0 - hp->beta1));
    digcl_arg_float(kernel, 8, (float)hp->beta2);
    digcl_arg_float(kernel, 9, (float)(1.0 - hp->beta2));
    digcl_arg_float(kernel, 10, hp->eps);
    digcl_arg_float(kernel, 11, (float)(hp->lr / bias_correction1));
    digcl_arg_float(kernel, 12, (float)sqrt(bias_correction2));
    size_t global = (size_t)(count / vec), local = GROUP;
    digcl_launch(ctx, kernel, "adamw_step", 1, &global, &local);
}

void digcl_ema_update(digcl_context *ctx, int count, float decay, cl_mem ema, cl_mem params) {
    ops_check_positive(count, "count", "ema_update");
    const int vec = flat_vec_width(count);
    cl_kernel kernel = digcl_kernel(ctx, "optim", "ema_update", vec == 4 ? "-DVEC=4" : "-DVEC=1");
    digcl_arg_mem(kernel, 0, ema);
    digcl_arg_mem(kernel, 1, params);
    digcl_arg_int(kernel, 2, count / vec);
    digcl_arg_float(kernel, 3, decay);
    size_t global = (size_t)(count / vec), local = GROUP;
    digcl_launch(ctx, kernel, "ema_update", 1, &global, &local);
}
