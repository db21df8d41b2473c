/* `digcl bench <what>`: kernel timings on the selected device. */
#include <stdio.h>
#include <string.h>

#include "bench.h"
#include "cli.h"

typedef struct bench_entry {
    const char *name;
    const char *summary;
    int (*run)(digcl_context *ctx, int argc, char **argv);
} bench_entry;

static const bench_entry benches[] = {
    {"data", "images/s through the training data loader per worker count (--data SPEC)",
     bench_data_main},
    {"gemm", "CLBlast SGEMM: correctness self-check, then GFLOP/s for about --seconds",
     bench_gemm_main},
    {"gla", "chunkwise GLA forward and fwd+bwd at K=32, V=64 (N*H 6 and 192, T 256..16384)",
     bench_gla_main},
    {"model", "DiG/DiT forward, fwd+bwd and training step (--model --batch --image-size --only)",
     bench_model_main},
    {"sample",
     "sampler throughput: DiG-S/2, DiT-S/2 at 256 px, N=32, 250-step DDPM and 20-step dpm++2m, cfg 4",
     bench_sample_main},
    {"report",
     "a fixed cross-device set (copy, GEMM, GLA, attention, S/2 models) as one JSON (--json --quick)",
     bench_report_main},
    {"sweep",
     "DiG against DiT over resolutions: ms, ln(FPS), peak memory, OOM cells (--models --resolutions)",
     bench_sweep_main},
    {"ops", "every layer kernel at DiG-S/2 training shapes (N=32, T=256) and at N=1, T=12544",
     bench_ops_main},
    {"vae",
     "SD VAE and TAESD encode/decode, 256 px x 8 to 2048 px (--vae --taesd --only --max-size)",
     bench_vae_main},
};
static const int bench_count = (int)(sizeof benches / sizeof benches[0]);

void usage_bench(void) {
    printf("usage: digcl bench <what> [options]\n\nwhat:\n");
    for (int i = 0; i < bench_count; i++)
        printf("  %-6s %s\n", benches[i].name, benches[i].summary);
    printf(
        "\nTimes are medians of repeated runs after a warm-up, measured with clFinish around\n"
        "each run. Rows show ms, GB/s against the minimum bytes moved and GFLOP/s.\n"
        "`digcl bench gemm --size N --seconds S` (defaults 1024, 1), or\n"
        "`digcl bench gemm --shape M,N,K,ta,tb` (plain against split-K GEMM), or\n"
        "`digcl bench gemm --tune` (CLBlast parameter sets on the DiG-S/2 shapes).\n"
        "`digcl bench gla --help`, `digcl bench model --model NAME --batch N --image-size S`.\n"
        "`digcl bench data --data SPEC [--image-size S] [--workers N] [--batch N] [--seconds S]\n"
        "   [--channels 1|3] [--skip-bad-images]`: images/s through the training loader.\n"
        "`digcl bench sample [--model NAME] [--image-size S] [-n N] [--steps S] [--dpm-steps S]\n"
        "  [--cfg-scale G] [--sampler ddpm|ddim|dpm++2m] [--repeats R]`.\n");
}

int cmd_bench(const cli_globals *globals, int argc, char **argv) {
    if (argc < 2) {
        usage_bench();
        return 2;
    }
    for (int i = 0; i < bench_count; i++) {
        if (strcmp(argv[1], benches[i].name) != 0) continue;
        digcl_context *ctx = cli_open_context(globals);
        int status = benches[i].run(ctx, argc - 2, argv + 2);
        digcl_context_release(ctx);
        return status;
    }
    fprintf(stderr, "digcl bench: unknown benchmark '%s'\n", argv[1]);
    usage_bench();
    return 2;
}
