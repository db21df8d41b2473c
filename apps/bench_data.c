/* `digcl bench data`: images per second through the real loader (decoding,
 * cropping, flips and posterior draws included) for a sweep of worker
 * counts. A bad file fails as it would in training (digcl_fatal), unless
 * --skip-bad-images. Needs no device work; the context is unused. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "cli.h"
#include "data_flags.h"
#include "digcl/log.h"
#include "digcl/runtime.h"

typedef struct data_bench {
    data_flags data;
    long image_size, batch;
    double seconds;
} data_bench;

static void usage_data(void) {
    printf("usage: digcl bench data --data SPEC [--image-size S] [--workers N] [--batch N]\n"
           "                        [--seconds S] [--channels 1|3] [--skip-bad-images]\n\n"
           "Reads batches through the training loader (flips on) for about --seconds\n"
           "(default 3) per worker count and prints images/s. Without --workers: 1, 2, 4, ...\n"
           "up to the number of cores. --batch defaults to 256.\n\n");
    data_flags_usage();
}

/* One row: `workers` threads, batches for about `seconds`. */
static void run_workers(digcl_dataset *dataset, const data_bench *bench, int workers) {
    digcl_loader_options options = {(int)bench->batch, 0, 1, 0, workers, 0, 1};
    options.hflip = !digcl_dataset_get_info(dataset)->is_latent; /* as digcl train reads, */
    digcl_dataset_set_device_posterior(dataset, 1); /* posterior z drawn by the trainer */
    char error[1024];
    digcl_loader *loader = digcl_loader_create(dataset, &options, error, sizeof error);
    if (!loader) digcl_fatal("digcl bench data: %s", error);
    digcl_loader_release(loader, digcl_loader_next(loader)); /* warm-up */
    long batches = 0;
    double waited = 0.0, start = digcl_seconds_now(), elapsed = 0.0;
    while (elapsed < bench->seconds || batches < 3) {
        const digcl_batch *batch = digcl_loader_next(loader);
        waited += batch->wait_ms;
        digcl_loader_release(loader, batch);
        batches++;
        elapsed = digcl_seconds_now() - start;
    }
    double images = (double)batches * bench->batch;
    printf("%7d %9ld %10.0f %8.2f %12.0f %14.0f %12.2f\n", workers, batches, images, elapsed,
           images / elapsed, images / elapsed / workers, waited / batches);
    fflush(stdout);
    digcl_loader_destroy(loader);
}

static void print_notice(digcl_log_level level, const char *message, void *user) {
    (void)user;
    if (level >= DIGCL_LOG_NOTICE) fprintf(stderr, "digcl bench data: %s\n", message);
}

static void parse(data_bench *bench, int argc, char **argv) {
    for (int i = 0; i < argc; i++) {
        const char *value = NULL;
        if (data_flags_take(&bench->data, argc, argv, &i)) continue;
        if (cli_option_value(argc, argv, &i, "--image-size", &value))
            bench->image_size = cli_parse_long("--image-size", value, 1, 4096);
        else if (cli_option_value(argc, argv, &i, "--batch", &value))
            bench->batch = cli_parse_long("--batch", value, 1, 65536);
        else if (cli_option_value(argc, argv, &i, "--seconds", &value))
            bench->seconds = cli_parse_double("--seconds", value, 0.0, 3600.0);
        else if (cli_is_help(argv[i])) {
            usage_data();
            exit(0);
        } else cli_unknown_argument("bench data", argv[i]);
    }
}

int bench_data_main(digcl_context *ctx, int argc, char **argv) {
    (void)ctx;
    data_bench bench = {{0}, 0, 256, 3.0};
    parse(&bench, argc, argv);
    int status = 0;
    digcl_dataset *dataset = data_flags_open(&bench.data, bench.image_size, "bench data", &status);
    if (!dataset) return status;
    digcl_set_log_handler(print_notice, NULL);
    const digcl_dataset_info *info = digcl_dataset_get_info(dataset);
    printf("data %s: %lld entries, %d x %d x %d, %d classes; batch %ld\n", bench.data.data,
           (long long)info->count, info->channels, info->height, info->width, info->num_classes,
           bench.batch);
    printf("%7s %9s %10s %8s %12s %14s %12s\n", "workers", "batches", "images", "seconds",
           "images/s", "per worker/s", "wait ms/b");
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (bench.data.workers) {
        run_workers(dataset, &bench, (int)bench.data.workers);
    } else {
        for (long w = 1; w <= cores; w *= 2) run_workers(dataset, &bench, (int)w);
        if ((cores & (cores - 1)) != 0) run_workers(dataset, &bench, (int)cores);
    }
    digcl_set_log_handler(NULL, NULL);
    digcl_dataset_close(dataset);
    return 0;
}
