/* Learning, not just running: a tiny DiG (depth 4, so SREM's token order is
 * back to the input's at the head) on one fixed Fashion-MNIST batch of 8,
 * 40 steps of upstream's loss with fresh t and noise per step: the mean loss
 * of the last 5 steps is below half of the first 5. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"
#include "digcl/data.h"
#include "digcl/train.h"

#define ROWS  8
#define STEPS 40

typedef struct loss_trace {
    int count;
    float loss[STEPS];
} loss_trace;

static void keep(const digcl_train_values *v, void *user) {
    loss_trace *trace = user;
    if (trace->count < STEPS) trace->loss[trace->count++] = v->loss;
}

static void test_loss_falls_on_fashion_mnist(void **unused) {
    (void)unused;
    char error[1024];
    digcl_dataset_options options;
    memset(&options, 0, sizeof options);
    digcl_dataset *data = digcl_dataset_open("fashion-mnist", &options, error, sizeof error);
    if (!data) fail_msg("%s", error);
    digcl_loader_options lo;
    memset(&lo, 0, sizeof lo);
    lo.batch = ROWS, lo.world = 1, lo.workers = 1;
    digcl_loader *loader = digcl_loader_create(data, &lo, error, sizeof error);
    assert_non_null(loader);
    const digcl_batch *batch = digcl_loader_next(loader);

    digcl_context *ctx = test_context();
    digcl_model_config c;
    memset(&c, 0, sizeof c);
    c.arch = DIGCL_ARCH_DIG, c.depth = 4, c.hidden_size = 32, c.num_heads = 2, c.patch_size = 4;
    c.input_size = 32, c.in_channels = 1, c.num_classes = 10, c.learn_sigma = 1;
    digcl_config_error cerr;
    assert_int_equal(digcl_model_config_finish(&c, &cerr), 0);
    digcl_model *model = digcl_model_create(ctx, &c);
    digcl_model_init(model, 0);
    digcl_diffusion *diffusion = digcl_diffusion_create(ctx, 1);
    digcl_train_objective objective = digcl_train_diffusion_objective(diffusion);
    digcl_train_hparams hp = digcl_train_hparams_defaults();
    hp.adamw.lr = 3e-3f;
    digcl_trainer *trainer = digcl_trainer_create(ctx, model, ROWS, &hp, &objective);
    for (int s = 0; s < STEPS; s++) digcl_trainer_step(trainer, batch->x, batch->y, 0);
    loss_trace trace = {0};
    assert_int_equal(digcl_trainer_drain(trainer, keep, &trace), STEPS);
    double first = 0, last = 0;
    for (int s = 0; s < 5; s++)
        first += trace.loss[s] / 5.0, last += trace.loss[STEPS - 5 + s] / 5.0;
    printf("  mean loss: steps 1-5 %.4f, steps %d-%d %.4f\n", first, STEPS - 4, STEPS, last);
    if (!(last < 0.5 * first)) fail_msg("the loss did not fall: %.4f -> %.4f", first, last);
    digcl_loader_release(loader, batch);
    digcl_trainer_release(trainer);
    digcl_diffusion_release(diffusion);
    digcl_model_release(model);
    digcl_loader_destroy(loader);
    digcl_dataset_close(data);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loss_falls_on_fashion_mnist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
