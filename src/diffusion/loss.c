/* loss.c: launchers of q_sample and the training loss (digcl/diffusion.h,
 * cl/diffusion.cl). */
#include <limits.h>

#include "diffusion_internal.h"

void digcl_diffusion_check_size(size_t value, const char *what, const char *op) {
    if (value == 0) digcl_fatal("%s: %s must be positive", op, what);
    if (value > (size_t)INT_MAX)
        digcl_fatal("%s: %s = %zu does not fit the kernels' 32-bit indices", op, what, value);
}

static size_t round_up(size_t value, size_t multiple) {
    return (value + multiple - 1) / multiple * multiple;
}

void digcl_diffusion_q_sample(digcl_diffusion *d, int N, size_t chw, cl_mem x_start, cl_mem t,
                              cl_mem noise, cl_mem x_t) {
    digcl_diffusion_check_size((size_t)(N > 0 ? N : 0), "N", "q_sample");
    digcl_diffusion_check_size((size_t)N * chw, "N * C * H * W", "q_sample");
    cl_kernel kernel = digcl_kernel(d->ctx, "diffusion", "q_sample", "");
    digcl_arg_mem(kernel, 0, x_start);
    digcl_arg_mem(kernel, 1, t);
    digcl_arg_mem(kernel, 2, noise);
    digcl_arg_mem(kernel, 3, x_t);
    digcl_arg_mem(kernel, 4, d->device_tables.mem);
    digcl_arg_int(kernel, 5, N);
    digcl_arg_int(kernel, 6, (int)chw);
    size_t global = round_up((size_t)N * chw, DIFFUSION_GROUP), local = DIFFUSION_GROUP;
    digcl_launch(d->ctx, kernel, "q_sample", 1, &global, &local);
}

void digcl_diffusion_training_loss(digcl_diffusion *d, const digcl_diffusion_loss_args *a) {
    digcl_diffusion_check_size((size_t)(a->N > 0 ? a->N : 0), "N", "training_loss");
    digcl_diffusion_check_size((size_t)(a->channels > 0 ? a->channels : 0), "channels",
                               "training_loss");
    digcl_diffusion_check_size((size_t)a->N * (size_t)a->channels * a->hw * 2, "N * 2C * H * W",
                               "training_loss");
    cl_kernel kernel = digcl_kernel(d->ctx, "diffusion", "training_loss",
                                    d->learn_sigma ? "-DGROUP=256 -DLEARN_SIGMA=1"
                                                   : "-DGROUP=256 -DLEARN_SIGMA=0");
    const cl_mem mems[] = {a->x_start,           a->x_t,  a->t,   a->noise, a->model_out,
                           d->device_tables.mem, a->loss, a->mse, a->vb,    a->dout};
    for (unsigned i = 0; i < sizeof mems / sizeof mems[0]; ++i) digcl_arg_mem(kernel, i, mems[i]);
    digcl_arg_int(kernel, 10, a->channels);
    digcl_arg_int(kernel, 11, (int)a->hw);
    digcl_arg_float(kernel, 12, (float)(1.0 / a->N));
    size_t global = (size_t)a->N * DIFFUSION_GROUP, local = DIFFUSION_GROUP;
    digcl_launch(d->ctx, kernel, "training_loss", 1, &global, &local);
}
