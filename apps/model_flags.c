/* The model-describing flags of `digcl info` and `digcl forward`: parsing and
 * building the finished config (rules: model_flags.h). */
#include "model_flags.h"

#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "digcl/checkpoint.h"
#include "digcl/model.h"

static const struct {
    const char *flag;
    size_t field; /* offset of the int in digcl_model_config */
    long min, max;
} int_flags[MODEL_FLAG_COUNT] = {
    [MODEL_FLAG_DEPTH] = {"--depth", offsetof(digcl_model_config, depth), 1, 1024},
    [MODEL_FLAG_HIDDEN_SIZE] = {"--hidden-size", offsetof(digcl_model_config, hidden_size), 1,
                                65536},
    [MODEL_FLAG_NUM_HEADS] = {"--num-heads", offsetof(digcl_model_config, num_heads), 1, 65536},
    [MODEL_FLAG_PATCH_SIZE] = {"--patch-size", offsetof(digcl_model_config, patch_size), 1, 16384},
    [MODEL_FLAG_INPUT_SIZE] = {"--input-size", offsetof(digcl_model_config, input_size), 1, 16384},
    [MODEL_FLAG_IN_CHANNELS] = {"--in-channels", offsetof(digcl_model_config, in_channels), 1,
                                4096},
    [MODEL_FLAG_NUM_CLASSES] = {"--num-classes", offsetof(digcl_model_config, num_classes), 1,
                                1L << 24},
    [MODEL_FLAG_LEARN_SIGMA] = {"--learn-sigma", offsetof(digcl_model_config, learn_sigma), 0, 1},
    [MODEL_FLAG_SKIP] = {"--skip", offsetof(digcl_model_config, skip), 0, 1},
};

void model_flags_init(model_flags *flags) {
    memset(flags, 0, sizeof *flags);
    for (int k = 0; k < MODEL_FLAG_COUNT; k++) flags->values[k] = -1;
    flags->image_size = -1;
}

/* `value` of a mode flag when it names a mode (`valid`); else exits 2 naming the flag. */
static const char *checked_mode(const char *flag, const char *value, int valid,
                                const char *expected) {
    if (valid) return value;
    fprintf(stderr, "digcl: %s expects %s, got '%s'\n", flag, expected, value);
    exit(2);
}

int model_flags_take(model_flags *flags, int argc, char **argv, int *i) {
    const char *value = NULL;
    if (cli_option_value(argc, argv, i, "--model", &value)) {
        flags->model = value;
    } else if (cli_option_value(argc, argv, i, "--ckpt", &value)) {
        flags->ckpt = value;
    } else if (cli_option_value(argc, argv, i, "--arch", &value)) {
        if (strcmp(value, "dig") != 0 && strcmp(value, "dit") != 0 && strcmp(value, "udig") != 0) {
            fprintf(stderr, "digcl: --arch expects dig, dit or udig, got '%s'\n", value);
            exit(2);
        }
        flags->arch = value;
    } else if (cli_option_value(argc, argv, i, "--attention", &value)) {
        digcl_attention_mode mode;
        flags->attention = checked_mode(
            "--attention", value, digcl_attention_mode_parse(value, &mode) == 0, "tiled or naive");
    } else if (cli_option_value(argc, argv, i, "--activations", &value)) {
        digcl_activation_mode mode;
        flags->activations =
            checked_mode("--activations", value, digcl_activation_mode_parse(value, &mode) == 0,
                         "recompute or keep");
    } else if (cli_option_value(argc, argv, i, "--image-size", &value)) {
        flags->image_size = cli_parse_long("--image-size", value, 8, 8L * 16384);
    } else {
        for (int k = 0; k < MODEL_FLAG_COUNT; k++) {
            if (!cli_option_value(argc, argv, i, int_flags[k].flag, &value)) continue;
            flags->values[k] =
                cli_parse_long(int_flags[k].flag, value, int_flags[k].min, int_flags[k].max);
            return 1;
        }
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------ the base config */

static void print_presets(void) {
    const char *const *names = digcl_model_config_preset_names();
    fprintf(stderr, "presets:");
    for (int k = 0; names[k]; k++) fprintf(stderr, "%s%s", k % 6 ? " " : "\n  ", names[k]);
    fprintf(stderr,
            "\n  (DiG names also accept -skipzero and upstream's constructor names such as\n"
            "   DiG-S/2-bid-layer-dwconv-qdir)\n");
}

static int base_from_preset(const char *name, const char *command, digcl_model_config *cfg) {
    digcl_config_error err;
    if (digcl_model_config_preset(name, cfg, &err) == 0) return 0;
    fprintf(stderr, "digcl %s: %s\n", command, err.message);
    print_presets();
    return 2;
}

static int describes_custom(const model_flags *flags) {
    return flags->values[MODEL_FLAG_DEPTH] >= 0 && flags->values[MODEL_FLAG_HIDDEN_SIZE] >= 0 &&
           flags->values[MODEL_FLAG_NUM_HEADS] >= 0;
}

/* Preset defaults; --depth, --hidden-size and --num-heads must follow. */
static int base_custom(const model_flags *flags, const char *command, digcl_model_config *cfg) {
    if (!describes_custom(flags)) {
        fprintf(
            stderr,
            "digcl %s: no model given: pass --model NAME (e.g. DiG-S/2), --ckpt FILE, or a custom\n"
            "model with at least --depth, --hidden-size and --num-heads (see `digcl %s --help`)\n",
            command, command);
        return 2;
    }
    memset(cfg, 0, sizeof *cfg);
    cfg->arch = DIGCL_ARCH_DIG;
    cfg->patch_size = 2;
    cfg->input_size = 32;
    cfg->in_channels = 4;
    cfg->num_classes = 1000;
    cfg->learn_sigma = 1;
    return 0;
}

/* The checkpoint's dig.config; falls back to flags when it has none. */
static int base_from_ckpt(const model_flags *flags, const char *command, digcl_model_config *cfg) {
    char message[8192];
    int status = digcl_checkpoint_read_config(flags->ckpt, cfg, message, sizeof message);
    if (status == 0) return 0;
    if (status == DIGCL_CHECKPOINT_NO_CONFIG && describes_custom(flags))
        return base_custom(flags, command, cfg);
    fprintf(stderr, "digcl %s: %s\n", command, message);
    return status == DIGCL_CHECKPOINT_NO_CONFIG ? 2 : 1;
}

/* ------------------------------------------------------------ overrides */

static void apply_overrides(const model_flags *flags, digcl_model_config *cfg) {
    if (flags->arch) {
        digcl_arch arch = strcmp(flags->arch, "dit") == 0    ? DIGCL_ARCH_DIT
                          : strcmp(flags->arch, "udig") == 0 ? DIGCL_ARCH_UDIG
                                                             : DIGCL_ARCH_DIG;
        if (arch == DIGCL_ARCH_UDIG && cfg->arch != DIGCL_ARCH_UDIG)
            cfg->patch_size = 1; /* U-DiG is patch 1 */
        cfg->arch = arch;
    }
    for (int k = 0; k < MODEL_FLAG_COUNT; k++) {
        if (flags->values[k] < 0) continue;
        *(int *)((char *)cfg + int_flags[k].field) = (int)flags->values[k];
    }
}

/* --image-size S: S multiple of 8, latent S/8 a multiple of the patch size. */
static int apply_image_size(const model_flags *flags, const char *command,
                            digcl_model_config *cfg) {
    long s = flags->image_size;
    if (s < 0) return 0;
    if (flags->values[MODEL_FLAG_INPUT_SIZE] >= 0) {
        fprintf(stderr, "digcl %s: give --image-size (pixels) or --input-size (latent), not both\n",
                command);
        return 2;
    }
    if (s % 8 != 0) {
        fprintf(
            stderr,
            "digcl %s: --image-size %ld is not a multiple of 8 (the VAE latent is 1/8 of the image)\n",
            command, s);
        return 2;
    }
    if ((s / 8) % cfg->patch_size != 0) {
        fprintf(
            stderr,
            "digcl %s: --image-size %ld gives a %ldx%ld latent, which is not a multiple of the patch size %d "
            "(use a multiple of %d pixels)\n",
            command, s, s / 8, s / 8, cfg->patch_size, 8 * cfg->patch_size);
        return 2;
    }
    cfg->input_size = (int)(s / 8);
    return 0;
}

/* When flags changed the checkpoint's own config, say so (shapes are still checked on load). */
static void note_ckpt_override(const model_flags *flags, const char *command,
                               const digcl_model_config *cfg) {
    digcl_model_config stored;
    char message[8192];
    if (!flags->ckpt ||
        digcl_checkpoint_read_config(flags->ckpt, &stored, message, sizeof message) != 0)
        return;
    char *a = digcl_model_config_to_json(&stored), *b = digcl_model_config_to_json(cfg);
    if (a && b && strcmp(a, b) != 0)
        fprintf(stderr,
                "digcl %s: note: flags override %s's dig.config\n  file:  %s\n  flags: %s\n",
                command, flags->ckpt, a, b);
    free(a);
    free(b);
}

int model_flags_apply_runtime(const model_flags *flags, const char *command,
                              digcl_model_config *cfg) {
    digcl_activation_mode kept = DIGCL_ACTIVATIONS_RECOMPUTE;
    if (flags->activations && digcl_activation_mode_parse(flags->activations, &kept) == 0)
        cfg->activations = kept;
    digcl_attention_mode mode = DIGCL_ATTENTION_TILED;
    if (!flags->attention || digcl_attention_mode_parse(flags->attention, &mode) != 0) return 0;
    if (mode == DIGCL_ATTENTION_NAIVE && cfg->arch != DIGCL_ARCH_DIT) {
        fprintf(stderr,
                "digcl %s: --attention naive needs a DiT model, but this one is %s (DiG and "
                "U-DiG blocks use gated linear attention: there is no [T, T] softmax to "
                "materialise)\n",
                command, cfg->arch == DIGCL_ARCH_UDIG ? "U-DiG" : "DiG");
        return 2;
    }
    cfg->attention = mode;
    return 0;
}

int model_flags_resolve(const model_flags *flags, const char *command, digcl_model_config *cfg) {
    int status;
    if (flags->model) status = base_from_preset(flags->model, command, cfg);
    else if (flags->ckpt) status = base_from_ckpt(flags, command, cfg);
    else status = base_custom(flags, command, cfg);
    if (status != 0) return status;
    apply_overrides(flags, cfg);
    status = apply_image_size(flags, command, cfg);
    if (status == 0) status = model_flags_apply_runtime(flags, command, cfg);
    if (status != 0) return status;
    digcl_config_error err;
    if (digcl_model_config_finish(cfg, &err) != 0) {
        fprintf(stderr, "digcl %s: %s\n", command, err.message);
        return 2;
    }
    note_ckpt_override(flags, command, cfg);
    return 0;
}

int model_flags_check_batch(const digcl_model_config *cfg, long batch, const char *command) {
    char message[512];
    if (digcl_model_check_batch(cfg, batch, message, sizeof message) == 0) return 0;
    fprintf(stderr, "digcl %s: %s; use a smaller --batch or --image-size\n", command, message);
    return 2;
}

void model_flags_usage(int with_model_and_ckpt) {
    if (with_model_and_ckpt)
        printf(
            "  --model NAME        a preset: DiG-S/2 ... DiG-XL/8, DiG-<size>/<p>-skip|-skipzero,\n"
            "                      DiT-S/2 ... DiT-XL/8, U-DiG-S ... U-DiG-XL (docs/MODEL.md, U-DiG),\n"
            "                      or upstream's constructor names\n"
            "  --ckpt FILE         a safetensors checkpoint; its dig.config describes the model\n");
    printf(
        "  --image-size S      image side in pixels; the latent input_size is S/8 (S a multiple\n"
        "                      of 8, S/8 a multiple of the patch size)\n"
        "  custom model / overrides (alone they describe a model: --depth, --hidden-size and\n"
        "  --num-heads required, the rest default to dig, 2, 32, 4, 1000, 1, 0):\n"
        "  --arch dig|dit|udig (udig: patch 1, depth a multiple of 5)  --depth N\n"
        "  --hidden-size D  --num-heads H  --patch-size P\n"
        "  --input-size E (latent side)  --in-channels C  --num-classes K\n"
        "  --learn-sigma 0|1  --skip 0|1 (DiG long skips)\n"
        "  --attention tiled|naive  DiT softmax attention: tiled (default, O(T) memory) or\n"
        "                      naive, materialising the [N, H, T, T] probabilities per block as\n"
        "                      timm does (the paper's baseline memory); weights are the same\n"
        "  --activations recompute|keep  training: recompute the elementwise activations in\n"
        "                      backward (default, less memory) or keep them per block\n"
        "                      (3-6 %% faster steps for about 1.5x the activation memory)\n");
}

int model_io_args_parse(const char *command, int argc, char **argv, model_io_args *a) {
    model_flags_init(&a->flags);
    a->inputs = a->output = NULL;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (model_flags_take(&a->flags, argc, argv, &i)) continue;
        if (cli_option_value(argc, argv, &i, "--inputs", &value)) a->inputs = value;
        else if (cli_option_value(argc, argv, &i, "--output", &value)) a->output = value;
        else cli_unknown_argument(command, argv[i]);
    }
    const char *missing = !a->flags.ckpt ? "--ckpt W.safetensors"
                          : !a->inputs   ? "--inputs IN.safetensors"
                          : !a->output   ? "--output OUT.safetensors"
                                         : NULL;
    if (missing) {
        fprintf(stderr, "digcl %s: missing %s (see `digcl %s --help`)\n", command, missing,
                command);
        return 2;
    }
    const char *input_flags[] = {"--ckpt", "--inputs"}, *inputs[] = {a->flags.ckpt, a->inputs};
    return cli_check_output(command, "--output", a->output, input_flags, inputs, 2);
}
