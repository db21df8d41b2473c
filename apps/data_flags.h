/* apps/data_flags.h: the flags that choose and read a data set, shared by
 * `digcl bench data` and `digcl train`:
 *   --data SPEC          fashion-mnist | idx:DIR | latents:FILE.safetensors | DIR
 *   --channels 1|3       image folders: grey or RGB (default 3)
 *   --class-names A,B,.. override the data set's class names
 *   --skip-bad-images    skip undecodable files (a warning each, a count at the end)
 *   --workers N          loader threads (default: cores - 1)
 * --image-size is the caller's (it also sizes the model). */
#ifndef DIGCL_APPS_DATA_FLAGS_H
#define DIGCL_APPS_DATA_FLAGS_H

#include "digcl/data.h"

typedef struct data_flags {
    const char *data;
    const char *class_names;
    long channels; /* 0: unset */
    long workers;  /* 0: default */
    int skip_bad_images;
} data_flags;

/* 1 when argv[*i] is one of the data flags (its value taken, *i advanced);
 * exits 2 naming the flag for a bad value. */
int data_flags_take(data_flags *flags, int argc, char **argv, int *i);

/* Opens the data set, or prints "digcl <command>: <why>" and returns NULL
 * with *status 2 (no --data) or 1 (the data set cannot be read). */
digcl_dataset *data_flags_open(const data_flags *flags, long image_size, const char *command,
                               int *status);

/* The --help lines for these flags. */
void data_flags_usage(void);

#endif
