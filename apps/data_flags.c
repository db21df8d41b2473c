/* The data-set flags (apps/data_flags.h). */
#include "data_flags.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int data_flags_take(data_flags *flags, int argc, char **argv, int *i) {
    const char *value = NULL;
    if (cli_option_value(argc, argv, i, "--data", &value)) {
        flags->data = value;
    } else if (cli_option_value(argc, argv, i, "--class-names", &value)) {
        flags->class_names = value;
    } else if (cli_option_value(argc, argv, i, "--channels", &value)) {
        flags->channels = cli_parse_long("--channels", value, 1, 3);
        if (flags->channels == 2) {
            fprintf(stderr, "digcl: --channels expects 1 (grey) or 3 (RGB), got 2\n");
            exit(2);
        }
    } else if (cli_option_value(argc, argv, i, "--workers", &value)) {
        flags->workers = cli_parse_long("--workers", value, 1, 1024);
    } else if (strcmp(argv[*i], "--skip-bad-images") == 0) {
        flags->skip_bad_images = 1;
    } else {
        return 0;
    }
    return 1;
}

digcl_dataset *data_flags_open(const data_flags *flags, long image_size, const char *command,
                               int *status) {
    if (!flags->data) {
        fprintf(stderr,
                "digcl %s: missing --data SPEC (fashion-mnist, idx:DIR, "
                "latents:FILE.safetensors or an image folder)\n",
                command);
        *status = 2;
        return NULL;
    }
    digcl_dataset_options options = {(int)(image_size > 0 ? image_size : 0), (int)flags->channels,
                                     flags->skip_bad_images, flags->class_names};
    char error[1024];
    digcl_dataset *dataset = digcl_dataset_open(flags->data, &options, error, sizeof error);
    if (!dataset) {
        fprintf(stderr, "digcl %s: %s\n", command, error);
        *status = 1;
    }
    return dataset;
}

void data_flags_usage(void) {
    printf("  --data SPEC          fashion-mnist (Debian's dataset-fashion-mnist), idx:DIR,\n"
           "                       latents:FILE.safetensors, or DIR (one subfolder per class)\n"
           "  --image-size S       image folders: centre-crop to S x S (ADM's center_crop_arr)\n"
           "  --channels 1|3       image folders: grey or RGB (default 3)\n"
           "  --class-names A,B    override the data set's class names\n"
           "  --skip-bad-images    skip undecodable files (a warning each, a count at the end)\n"
           "  --workers N          loader threads (default: cores - 1)\n");
}
