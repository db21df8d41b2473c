/* The two links of the loop to the rest of the library: upstream's diffusion
 * objective (digcl/diffusion.h) and the data loader as a batch source
 * (digcl/data.h). API: include/digcl/train.h. */
#include "digcl/train.h"

static void diffusion_q_sample(void *user, int N, size_t chw, cl_mem x_start, cl_mem t,
                               cl_mem noise, cl_mem x_t) {
    digcl_diffusion_q_sample(user, N, chw, x_start, t, noise, x_t);
}

static void diffusion_loss(void *user, const digcl_diffusion_loss_args *args) {
    digcl_diffusion_training_loss(user, args);
}

digcl_train_objective digcl_train_diffusion_objective(digcl_diffusion *diffusion) {
    digcl_train_objective objective = {diffusion_q_sample, diffusion_loss, diffusion};
    return objective;
}

static const digcl_batch *loader_next(void *user) { return digcl_loader_next(user); }
static void loader_release(void *user, const digcl_batch *batch) {
    digcl_loader_release(user, batch);
}
static void loader_seek(void *user, int64_t epoch, int64_t index) {
    digcl_loader_seek(user, epoch, index);
}

digcl_train_source digcl_train_loader_source(digcl_loader *loader, int64_t batches_per_epoch) {
    digcl_train_source source = {loader_next, loader_release, loader_seek, batches_per_epoch,
                                 loader};
    return source;
}
