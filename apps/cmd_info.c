/* `digcl info`: a model's config, exact parameter counts and the estimated
 * device memory for sampling and training. Opens no OpenCL device. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "digcl/checkpoint.h"
#include "digcl/model.h"
#include "digcl/train.h"
#include "model_flags.h"

void usage_info(void) {
    printf(
        "usage: digcl info --model NAME|--ckpt FILE|<custom flags> [--batch N] [--image-size S]\n\n"
        "Prints the model config, the exact parameter count (total, and trainable = without the\n"
        "frozen pos_embed), the number of tensors, and the device memory for sampling\n"
        "and for training at batch N: parameters, gradients, AdamW moments (2x parameters), EMA\n"
        "(1x parameters), activations, the training step's own buffers (inputs, noise, outputs,\n"
        "losses), and totals. Needs no OpenCL device.\n\n"
        "options:\n");
    model_flags_usage(1);
    printf("  --batch N           samples per step for both estimates (default 32)\n\n"
           "examples:\n"
           "  digcl info --model DiG-XL/2 --image-size 512\n"
           "  digcl info --ckpt dig-s2.safetensors --batch 64\n"
           "  digcl info --model DiT-S/2 --attention naive --image-size 512\n"
           "  digcl info --depth 4 --hidden-size 128 --num-heads 2 --patch-size 4\n");
}

/* ------------------------------------------------------------ printing */

static void print_config(const digcl_model_config *c, const char *source) {
    printf("model         %s\n", source);
    printf("arch          %s\n", digcl_arch_name(c->arch));
    printf("depth         %d\n", c->depth);
    printf("hidden_size   %d (mlp_hidden %d)\n", c->hidden_size, c->mlp_hidden);
    printf("num_heads     %d (head dims: qk %d, v %d)\n", c->num_heads, c->head_qk_dim,
           c->head_v_dim);
    printf("patch_size    %d\n", c->patch_size);
    printf("input_size    %d (latent %dx%dx%d, %d px images, %dx%d = %d tokens)\n", c->input_size,
           c->in_channels, c->input_size, c->input_size, 8 * c->input_size, c->grid, c->grid,
           c->tokens);
    printf("in_channels   %d, out_channels %d (learn_sigma %d)\n", c->in_channels, c->out_channels,
           c->learn_sigma);
    printf("num_classes   %d (+1 null class)\n", c->num_classes);
    printf("skip          %d (%d skip linears%s)\n", c->skip, c->n_skip,
           c->skip_zero_init ? ", zero-init" : "");
    if (c->arch == DIGCL_ARCH_DIT) /* docs/MODEL.md "DiT attention modes" */
        printf("attention     %s (%s)\n", digcl_attention_mode_name(c->attention),
               c->attention == DIGCL_ATTENTION_NAIVE
                   ? "[N, H, T, T] probabilities materialised, kept per block for backward"
                   : "O(T)-memory online softmax, no [T, T] buffer");
    printf("activations   %s (%s)\n", digcl_activation_mode_name(c->activations), /* MODEL.md */
           c->activations == DIGCL_ACTIVATIONS_KEEP
               ? "training keeps every block's norms, streams and MLP activation"
               : "training recomputes the elementwise ones in backward");
    if (c->arch == DIGCL_ARCH_UDIG) /* docs/MODEL.md "U-DiG" */
        printf("stages        5 x %d blocks on grids %d, %d, %d, %d, %d (encoder 1, encoder 2, "
               "bottleneck, decoder 2, decoder 1)\n",
               digcl_udig_stage_depth(c), c->grid, c->grid / 2, c->grid / 4, c->grid / 2, c->grid);
    char *json = digcl_model_config_to_json(c);
    if (json) printf("dig.config    %s\n", json);
    free(json);
}

static void print_params(const digcl_param_table *table) {
    printf(
        "\nparameters    total %zu (%.2f M), trainable %zu (%.2f M, without the frozen pos_embed)\n",
        table->total, (double)table->total / 1e6, table->trainable, (double)table->trainable / 1e6);
    printf("tensors       %zu\n", table->count);
}

static void print_bytes(size_t bytes) {
    double mib = (double)bytes / (1024.0 * 1024.0);
    if (mib >= 1024.0) printf(" %11.2f GiB", mib / 1024.0);
    else printf(" %11.1f MiB", mib);
}

static void print_row(const char *label, size_t sampling, size_t training) {
    printf("  %-14s", label);
    if (sampling) print_bytes(sampling);
    else printf(" %15s", "-");
    print_bytes(training);
    printf("\n");
}

static void print_memory(const digcl_model_config *c, const digcl_train_memory *t, int batch) {
    const digcl_model_memory *m = &t->model;
    printf("\ndevice memory estimate: batch %d, %dx%d px, fp32, %d-byte alignment\n", batch,
           8 * c->input_size, 8 * c->input_size, DIGCL_PARAMS_ALIGNMENT_BYTES);
    printf("  %-14s %15s %15s\n", "", "sampling", "training");
    print_row("parameters", m->parameters, m->parameters);
    print_row("gradients", 0, m->gradients);
    print_row("AdamW moments", 0, m->optimizer);
    print_row("EMA", 0, m->ema);
    print_row("activations", m->activations_inference, m->activations_training);
    print_row("training step", 0, t->step);
    print_row("total", m->sampling_total, t->total);
    if (c->attention == DIGCL_ATTENTION_NAIVE) {
        const double block = (double)batch * c->num_heads * c->tokens * c->tokens * sizeof(float);
        printf("  (naive attention: %.1f MiB of [N, H, T, T] per block, one shared when sampling,\n"
               "   %d kept + 1 for dP when training, included above)\n",
               block / 1048576.0, c->depth);
    }
    printf("  (sampling with classifier-free guidance runs 2x the batch; data, VAE and\n"
           "   CLBlast scratch are not included)\n");
}

/* --ckpt: every tensor entry checked against the config, as loading does. */
static int check_ckpt(const model_flags *flags, const digcl_model_config *config) {
    char message[8192];
    if (!flags->ckpt || digcl_checkpoint_check(flags->ckpt, config, message, sizeof message) == 0)
        return 0;
    fprintf(stderr, "digcl info: %s\n", message);
    return 1;
}

/* ------------------------------------------------------------ command */

int cmd_info(const cli_globals *globals, int argc, char **argv) {
    (void)globals; /* no device */
    model_flags flags;
    model_flags_init(&flags);
    long batch = 32;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (model_flags_take(&flags, argc, argv, &i)) continue;
        if (cli_option_value(argc, argv, &i, "--batch", &value))
            batch = cli_parse_long("--batch", value, 1, 1L << 20);
        else cli_unknown_argument("info", argv[i]);
    }
    digcl_model_config config;
    int status = model_flags_resolve(&flags, "info", &config);
    if (status == 0) status = model_flags_check_batch(&config, batch, "info");
    if (status == 0) status = check_ckpt(&flags, &config);
    if (status != 0) return status;
    digcl_train_memory memory;
    char message[512];
    if (digcl_train_memory_estimate(&config, batch, &memory, message, sizeof message) != 0) {
        fprintf(stderr, "digcl info: %s\n", message);
        return 2;
    }
    digcl_param_table table;
    if (digcl_param_table_build(&config, &table) != 0) {
        fprintf(stderr, "digcl info: out of host memory\n");
        return 1;
    }
    print_config(&config, flags.model ? flags.model : flags.ckpt ? flags.ckpt : "custom");
    print_params(&table);
    print_memory(&config, &memory, (int)batch);
    digcl_param_table_free(&table);
    return 0;
}
