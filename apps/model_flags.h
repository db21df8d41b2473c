/* apps/model_flags.h: the flags that name or describe a model, shared by
 * `digcl info` and `digcl forward`.
 *
 * The config is built in three steps:
 *   1. a base: --model NAME (a preset), else the dig.config of --ckpt FILE,
 *      else the preset defaults (dig, patch 2, input 32, 4 channels, 1000
 *      classes, learn_sigma 1, no skip) with --depth, --hidden-size and
 *      --num-heads required;
 *   2. every explicit --arch/--depth/... flag overrides the base;
 *   3. --image-size S (pixels) sets input_size = S/8.
 * --attention tiled|naive (DiT, digcl_attention_mode) and --activations
 * recompute|keep (training, digcl_activation_mode) are runtime options, not part of
 * the architecture: they are applied last and never change dig.config.
 */
#ifndef DIGCL_APPS_MODEL_FLAGS_H
#define DIGCL_APPS_MODEL_FLAGS_H

#include "digcl/model_config.h"

enum {
    MODEL_FLAG_DEPTH,
    MODEL_FLAG_HIDDEN_SIZE,
    MODEL_FLAG_NUM_HEADS,
    MODEL_FLAG_PATCH_SIZE,
    MODEL_FLAG_INPUT_SIZE,
    MODEL_FLAG_IN_CHANNELS,
    MODEL_FLAG_NUM_CLASSES,
    MODEL_FLAG_LEARN_SIGMA,
    MODEL_FLAG_SKIP,
    MODEL_FLAG_COUNT
};

typedef struct model_flags {
    const char *model;             /* --model NAME */
    const char *ckpt;              /* --ckpt FILE */
    const char *arch;              /* --arch dig|dit; NULL: unset */
    long values[MODEL_FLAG_COUNT]; /* -1: unset */
    long image_size;               /* --image-size pixels; -1: unset */
    const char *attention;         /* --attention tiled|naive; NULL: unset (tiled) */
    const char *activations;       /* --activations recompute|keep; NULL: unset (recompute) */
} model_flags;

void model_flags_init(model_flags *flags);

/* 1 when argv[*i] is one of the model flags (its value taken, *i advanced);
 * exits 2 naming the flag for a bad value. */
int model_flags_take(model_flags *flags, int argc, char **argv, int *i);

/* The finished config. Returns 0, or the exit code after printing a message
 * prefixed "digcl <command>: ": 2 for usage errors (unknown preset, bad sizes,
 * nothing describing the model, a --ckpt without dig.config), 1 when --ckpt
 * cannot be read. */
int model_flags_resolve(const model_flags *flags, const char *command, digcl_model_config *cfg);

/* Sets cfg->attention from --attention and cfg->activations from --activations (unset:
 * left as they are). Returns 0, or 2 after a message naming the command and the flag
 * when naive is asked of a model that is not DiT. model_flags_resolve calls it;
 * `digcl train` also calls it on a resumed checkpoint's config. */
int model_flags_apply_runtime(const model_flags *flags, const char *command,
                              digcl_model_config *cfg);

/* 0 when digcl_model_check_batch accepts `batch`; else prints why, naming
 * --batch and --image-size, and returns 2. */
int model_flags_check_batch(const digcl_model_config *cfg, long batch, const char *command);

/* The --help lines for these flags (with_ckpt: include --ckpt). */
void model_flags_usage(int with_model_and_ckpt);

/* `digcl forward` and `digcl loss`: model flags with --ckpt, --inputs IN and
 * --output OUT, all three required; OUT may name neither input (cli_check_output).
 * Returns 0, or 2 after a message naming the command and the flag. */
typedef struct model_io_args {
    model_flags flags;
    const char *inputs, *output;
} model_io_args;
int model_io_args_parse(const char *command, int argc, char **argv, model_io_args *args);

#endif
