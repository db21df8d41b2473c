/* digcl: the command-line tool. `digcl <command> [options]`; `digcl --help`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <unistd.h>
#endif

#include "cli.h"
#include "digcl/gemm.h"

static const cli_command commands[] = {
    {"devices", "list every OpenCL platform and device and mark the default", cmd_devices,
     usage_devices},
    {"bench", "time kernels and whole models on the device (gemm, ops, gla, model)", cmd_bench,
     usage_bench},
    {"info", "a model's config, parameter counts and memory estimate (no device)", cmd_info,
     usage_info},
    {"forward", "run a checkpoint on inputs from a safetensors file (and its backward)",
     cmd_forward, usage_forward},
    {"loss", "upstream's training loss and its parameter gradients on a batch from a file",
     cmd_loss, usage_loss},
    {"decode", "latents -> images through the SD VAE (--vae) or TAESD (--taesd), tiled", cmd_decode,
     usage_decode},
    {"encode", "an image folder -> VAE posterior latents (and flips) for training; resumable",
     cmd_encode, usage_encode},
    {"train", "train a DiG/DiT with upstream's diffusion loss, AdamW and EMA; resumable", cmd_train,
     usage_train},
    {"export", "the EMA or model weights of a training checkpoint as a weights-only file",
     cmd_export, usage_export},
    {"plot", "redraw a training run's loss.png from its log.jsonl", cmd_plot, usage_plot},
    {"sample", "draw class-conditional images from a checkpoint (PNG grid, files, .npz)",
     cmd_sample, usage_sample},
};
static const int command_count = (int)(sizeof commands / sizeof commands[0]);

static void usage(FILE *out) {
    fprintf(out,
            "usage: digcl [--device P:D|NAME] [--precision fp32|tf32] [-v] <command> [options]\n"
            "\n"
            "DiG (Diffusion Gated Linear Attention Transformers) on any OpenCL device.\n"
            "\n"
            "commands:\n");
    for (int i = 0; i < command_count; i++)
        fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(out,
            "\n"
            "global options:\n"
            "  --device P:D|NAME  platform:device index or a case-insensitive name substring\n"
            "                     (default: $DIGCL_DEVICE, else the first GPU, accelerator, CPU)\n"
            "  --precision P      fp32 (default): fp32-accurate matrix products everywhere\n"
            "                     (3xTF32 on NVIDIA tensor cores); tf32: one TF32 product\n"
            "                     per term on tensor cores, like PyTorch's allow_tf32\n"
            "                     (default: $DIGCL_PRECISION, else fp32)\n"
            "  -v, --verbose      say which kernels were compiled or loaded from the cache,\n"
            "                     and which GEMM path runs\n"
            "  -h, --help         this help; `digcl <command> --help` for a command\n"
            "  --version          print the version\n"
            "\n"
            "environment: DIGCL_DEVICE, DIGCL_PROFILE=1 (per-kernel times at exit),\n"
            "             DIGCL_KERNEL_CACHE=0, DIGCL_CACHE_DIR (kernel binary cache),\n"
            "             DIGCL_PRECISION, DIGCL_GEMM=clblast|blas|tensor (GEMM path)\n");
}

/* Removes the global options from argv wherever they stand; returns the new argc. */
static int take_global_options(int argc, char **argv, cli_globals *globals) {
    int kept = 1;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (cli_option_value(argc, argv, &i, "--device", &value)) {
            globals->device = value;
        } else if (cli_option_value(argc, argv, &i, "--precision", &value)) {
            int precision = digcl_precision_parse(value);
            if (precision < 0) {
                fprintf(stderr, "digcl: --precision expects fp32 or tf32, got '%s'\n", value);
                exit(2);
            }
            globals->precision = (digcl_precision)precision;
        } else if (strcmp(argv[i], "-v") == 0 || strcmp(argv[i], "--verbose") == 0) {
            globals->verbose = 1;
        } else {
            argv[kept++] = argv[i];
        }
    }
    argv[kept] = NULL;
    return kept;
}

/* OpenBLAS chose its kernels when this process loaded it; when it fell back to
 * narrower ones than the CPU runs (digcl_openblas_core_hint), start again with
 * OPENBLAS_CORETYPE set. The variable stops a second round; if exec fails the
 * process goes on with the slower kernels. */
static void reexec_for_openblas(char **argv) {
#ifdef __linux__
    const char *hint = digcl_openblas_core_hint();
    if (!hint || setenv("OPENBLAS_CORETYPE", hint, 1) != 0) return;
    execv("/proc/self/exe", argv);
    fprintf(stderr,
            "digcl: notice: could not restart with OPENBLAS_CORETYPE=%s; GEMMs run on "
            "OpenBLAS's slower kernels\n",
            hint);
#else
    (void)argv;
#endif
}

int main(int argc, char **argv) {
    reexec_for_openblas(argv);
    cli_globals globals = {0};
    cli_install_handlers();
    argc = take_global_options(argc, argv, &globals);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    if (cli_is_help(argv[1])) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("digcl 0.1.0\n");
        return 0;
    }
    for (int i = 0; i < command_count; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        for (int a = 2; a < argc; a++) {
            if (cli_is_help(argv[a])) {
                commands[i].usage();
                return 0;
            }
        }
        return commands[i].run(&globals, argc - 1, argv + 1);
    }
    fprintf(stderr, "digcl: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
