/* `digcl bench vae`: the KL VAE and TAESD, encode and decode at 256 px batch 8 and 1024 px
 * batch 1, and a 2048 px decode under an 8 GiB budget (tiled): ms (median of --repeats after a
 * warm-up, host transfers included) and the peak device memory of each case. Random weights
 * unless --vae / --taesd name files. tools/bench_vae_torch.py times the same networks in
 * PyTorch (docs/PERFORMANCE.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "digcl/vae.h"

typedef struct vae_case {
    digcl_vae *vae;
    int encode, N, size;
    digcl_vae_tiling tiling;
    float *in, *out, *logvar;
} vae_case;

static void run_case(digcl_context *ctx, void *arg) {
    vae_case *c = arg;
    (void)ctx;
    if (c->encode)
        digcl_vae_encode(c->vae, &c->tiling, c->N, c->size, c->size, c->in, c->out, c->logvar);
    else
        digcl_vae_decode(c->vae, &c->tiling, c->N, c->size / 8, c->size / 8, c->in,
                         DIGCL_VAE_SD_SCALE, c->out);
}

static void time_case(digcl_context *ctx, const char *label, digcl_vae *vae, int encode, int N,
                      int size, size_t max_memory, int repeats) {
    vae_case c = {vae, encode, N, size, {0, -1, max_memory}, NULL, NULL, NULL};
    const size_t image = (size_t)N * 3 * size * size,
                 latent = (size_t)N * 4 * (size / 8) * (size / 8);
    c.in = malloc((encode ? image : latent) * sizeof(float));
    c.out = malloc((encode ? latent : image) * sizeof(float));
    c.logvar = malloc(latent * sizeof(float));
    if (!c.in || !c.out || !c.logvar) digcl_fatal("bench vae: out of host memory");
    bench_fill_uniform(c.in, encode ? image : latent, 7, 2.0f);
    const digcl_vae_tile_plan plan = digcl_vae_plan_tiles(
        vae, encode ? DIGCL_VAE_ENCODER : DIGCL_VAE_DECODER, size, size, &c.tiling);
    run_case(ctx, &c); /* allocates the plan */
    digcl_memory_reset_peak(ctx);
    const double ms = bench_time_ms(ctx, run_case, &c, 0, repeats);
    const digcl_memory_stats m = digcl_memory_stats_get(ctx);
    char shape[96];
    snprintf(shape, sizeof shape, "N=%d %dpx%s", N, size, plan.tiled ? " tiled" : "");
    printf("%-22s %-10s %-20s %10.2f ms  peak %8.1f MiB", label, encode ? "encode" : "decode",
           shape, ms, m.peak_bytes / 1048576.0);
    if (plan.streamed)
        printf("  (row strips in the budget of %dx%d tiles, %.0f MiB host)", plan.tile_height,
               plan.tile_width, plan.host_bytes / 1048576.0);
    else if (plan.tiled)
        printf("  (tiles %dx%d, overlap %d)", plan.tile_height, plan.tile_width, plan.overlap);
    printf("\n");
    fflush(stdout);
    free(c.in), free(c.out), free(c.logvar);
}

static digcl_vae *open_vae(digcl_context *ctx, const char *path, digcl_vae_config config) {
    if (!path)
        return digcl_vae_create_random(ctx, &config, DIGCL_VAE_ENCODER | DIGCL_VAE_DECODER, 1);
    char error[1024];
    digcl_vae_load_options options = {DIGCL_VAE_ENCODER | DIGCL_VAE_DECODER, &config, config.kind};
    digcl_vae *vae = digcl_vae_load(ctx, path, &options, error, sizeof error);
    if (!vae) {
        fprintf(stderr, "digcl bench vae: %s\n", error);
        exit(1);
    }
    return vae;
}

int bench_vae_main(digcl_context *ctx, int argc, char **argv) {
    const char *kl_path = NULL, *taesd_path = NULL, *value = NULL, *only = NULL;
    int repeats = 3, quick = 0, max_size = 2048;
    for (int i = 0; i < argc; i++) {
        if (cli_option_value(argc, argv, &i, "--vae", &value)) kl_path = value;
        else if (cli_option_value(argc, argv, &i, "--taesd", &value)) taesd_path = value;
        else if (cli_option_value(argc, argv, &i, "--only", &value)) only = value;
        else if (cli_option_value(argc, argv, &i, "--repeats", &value))
            repeats = (int)cli_parse_long("--repeats", value, 1, 1000);
        else if (cli_option_value(argc, argv, &i, "--max-size", &value))
            max_size = (int)cli_parse_long("--max-size", value, 256, 2048);
        else if (strcmp(argv[i], "--quick") == 0) quick = 1; /* sizes / 8, batch 2: a smoke run */
        else cli_unknown_argument("bench vae", argv[i]);
    }
    const size_t budget_8g = (size_t)8 << 30;
    printf("%-22s %-10s %-20s %13s  %s\n", "network", "pass", "shape", "time",
           "peak device memory");
    for (int net = 0; net < 2; ++net) {
        const char *label = net ? "taesd" : "kl-f8";
        if (only && strcmp(only, label) != 0) continue;
        digcl_vae *vae = open_vae(ctx, net ? taesd_path : kl_path,
                                  net ? digcl_vae_config_taesd() : digcl_vae_config_sd());
        const int d = quick ? 8 : 1, batch = quick ? 2 : 8;
        time_case(ctx, label, vae, 1, batch, 256 / d, 0, repeats);
        time_case(ctx, label, vae, 0, batch, 256 / d, 0, repeats);
        if (max_size >= 1024) {
            time_case(ctx, label, vae, 1, 1, 1024 / d, 0, repeats);
            time_case(ctx, label, vae, 0, 1, 1024 / d, 0, repeats);
        }
        digcl_vae_free(vae);
        if (max_size < 2048) continue; /* --max-size: the 2048 px case left out */
        /* a fresh network, so that the peak is the weights and this pass's plan alone, not the
         * 1024 px plan kept from the case before */
        vae = open_vae(ctx, net ? taesd_path : kl_path,
                       net ? digcl_vae_config_taesd() : digcl_vae_config_sd());
        time_case(ctx, label, vae, 0, 1, 2048 / d, quick ? ((size_t)8 << 20) : budget_8g, 1);
        digcl_vae_free(vae);
    }
    return 0;
}
