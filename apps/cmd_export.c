/* `digcl export`: the model or EMA weights of a training checkpoint as a
 * weights-only safetensors file (what `digcl forward` and `digcl sample` read). */
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "digcl/train.h"

void usage_export(void) {
    printf(
        "usage: digcl export CKPT OUT [--weights ema|model]\n\n"
        "Writes the weights of training checkpoint CKPT (checkpoints/SSSSSSS.safetensors of a\n"
        "`digcl train` run) to OUT under upstream's names, with the checkpoint's dig.config:\n"
        "  --weights ema    the EMA weights (default; what upstream samples with)\n"
        "  --weights model  the raw trained weights\n"
        "OUT is written atomically and may not be CKPT itself.\n\n"
        "example:\n"
        "  digcl export results/000-DiG-S-2/checkpoints/0050000.safetensors dig-s2-ema.safetensors\n");
}

/* 1 when both paths name the same existing file (device and inode). */
static int same_file(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

int cmd_export(const cli_globals *globals, int argc, char **argv) {
    (void)globals;
    const char *paths[2] = {NULL, NULL}, *weights = "ema";
    int count = 0;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (cli_option_value(argc, argv, &i, "--weights", &value)) weights = value;
        else if (argv[i][0] == '-' && argv[i][1]) cli_unknown_argument("export", argv[i]);
        else if (count < 2) paths[count++] = argv[i];
        else cli_unknown_argument("export", argv[i]);
    }
    if (count < 2) {
        fprintf(stderr, "digcl export: expected CKPT and OUT (see `digcl export --help`)\n");
        return 2;
    }
    if (strcmp(weights, "ema") != 0 && strcmp(weights, "model") != 0) {
        fprintf(stderr, "digcl export: --weights expects ema or model, got '%s'\n", weights);
        return 2;
    }
    if (same_file(paths[0], paths[1])) {
        fprintf(stderr, "digcl export: OUT %s is the checkpoint itself; choose another file\n",
                paths[1]);
        return 2;
    }
    char error[1024];
    if (digcl_train_checkpoint_export(paths[0], weights, paths[1], error, sizeof error) != 0) {
        fprintf(stderr, "digcl export: %s\n", error);
        return 1;
    }
    fprintf(stderr, "digcl export: wrote the %s weights of %s to %s\n", weights, paths[0],
            paths[1]);
    return 0;
}
