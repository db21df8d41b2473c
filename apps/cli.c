/* Option parsing helpers and the context opener shared by the subcommands. */
#include "cli.h"

#include "digcl/log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *type_name(cl_device_type type) {
    if (type & CL_DEVICE_TYPE_GPU) return "GPU";
    if (type & CL_DEVICE_TYPE_ACCELERATOR) return "accelerator";
    if (type & CL_DEVICE_TYPE_CPU) return "CPU";
    return "other";
}

void cli_print_devices(const digcl_device_info *devices, int count, int selected, FILE *out) {
    for (int i = 0; i < count; i++) {
        const digcl_device_info *d = &devices[i];
        fprintf(out, "%c %d:%d  %s  [%s]\n", i == selected ? '*' : ' ', d->platform_index,
                d->device_index, d->name, type_name(d->type));
        fprintf(out, "      platform:        %s (%s)\n", d->platform_name, d->platform_version);
        fprintf(out, "      driver:          %s, %s\n", d->driver_version, d->opencl_c_version);
        fprintf(out, "      global memory:   %.0f MiB (max allocation %.0f MiB)\n",
                d->global_mem_bytes / 1048576.0, d->max_alloc_bytes / 1048576.0);
        fprintf(out, "      local memory:    %.0f KiB\n", d->local_mem_bytes / 1024.0);
        fprintf(out, "      compute units:   %u, max work-group size %zu\n", d->compute_units,
                d->max_work_group_size);
        fprintf(out, "      fp16: %s  fp64: %s\n", d->has_fp16 ? "yes" : "no",
                d->has_fp64 ? "yes" : "no");
        if (d->nv_compute_capability)
            fprintf(out, "      compute capability: %d.%d (NVIDIA)\n",
                    d->nv_compute_capability / 10, d->nv_compute_capability % 10);
    }
    if (selected >= 0)
        fprintf(out, "(* = selected device; choose with --device P:D|NAME or DIGCL_DEVICE)\n");
}

/* An unknown --device lists the devices and exits 2; no platform at all is
 * reported by digcl_context_create. */
digcl_context *cli_open_context(const cli_globals *globals) {
    digcl_device_info *devices = NULL;
    int count = digcl_list_devices(&devices);
    char message[512] = "";
    if (count > 0 &&
        digcl_select_device(devices, count, globals->device, message, sizeof message) < 0) {
        fflush(stdout);
        fprintf(stderr, "digcl: error: %s. Available devices:\n", message);
        cli_print_devices(devices, count, -1, stderr);
        exit(2);
    }
    free(devices);
    digcl_context_options options = {globals->device, globals->verbose, globals->precision};
    return digcl_context_create(&options);
}

/* ------------------------------------------------------------ output files */

static int same_file(const char *a, const char *b) {
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int cli_check_output(const char *command, const char *output_flag, const char *output,
                     const char *const *input_flags, const char *const *inputs, int count) {
    if (!output[0]) {
        fprintf(stderr, "digcl %s: %s needs a file name, got an empty string\n", command,
                output_flag);
        return 2;
    }
    struct stat info;
    if (stat(output, &info) == 0 && S_ISDIR(info.st_mode)) {
        fprintf(stderr, "digcl %s: %s %s is a directory, expected a file name\n", command,
                output_flag, output);
        return 2;
    }
    for (int i = 0; i < count; i++) {
        if (!inputs[i] || !same_file(output, inputs[i])) continue;
        fprintf(stderr,
                "digcl %s: %s %s is the same file as %s %s; refusing to overwrite an input\n",
                command, output_flag, output, input_flags[i], inputs[i]);
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------ library messages */

static void print_fatal(const char *message, void *user) {
    (void)user;
    fflush(stdout);
    fprintf(stderr, "digcl: error: %s\n", message);
    exit(1);
}

static void print_log(digcl_log_level level, const char *message, void *user) {
    (void)user;
    switch (level) {
    case DIGCL_LOG_DEBUG: fprintf(stderr, "digcl: %s\n", message); break;
    case DIGCL_LOG_INFO: fprintf(stderr, "%s\n", message); break;
    case DIGCL_LOG_NOTICE: fprintf(stderr, "digcl: notice: %s\n", message); break;
    case DIGCL_LOG_WARNING: fprintf(stderr, "digcl: warning: %s\n", message); break;
    }
}

void cli_install_handlers(void) {
    digcl_set_error_handler(print_fatal, NULL);
    digcl_set_log_handler(print_log, NULL);
}

int cli_option_value(int argc, char **argv, int *i, const char *name, const char **value) {
    size_t length = strlen(name);
    const char *arg = argv[*i];
    if (strncmp(arg, name, length) != 0) return 0;
    if (arg[length] == '=') {
        *value = arg + length + 1;
        return 1;
    }
    if (arg[length] != '\0') return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "digcl: option %s needs a value\n", name);
        exit(2);
    }
    *value = argv[++*i];
    return 1;
}

long cli_parse_long(const char *flag, const char *value, long min, long max) {
    char *end = NULL;
    errno = 0;
    long parsed = strtol(value, &end, 10);
    if (errno || !end || *end || end == value || parsed < min || parsed > max) {
        fprintf(stderr, "digcl: %s expects an integer in [%ld, %ld], got '%s'\n", flag, min, max,
                value);
        exit(2);
    }
    return parsed;
}

double cli_parse_double(const char *flag, const char *value, double min, double max) {
    char *end = NULL;
    errno = 0;
    double parsed = strtod(value, &end);
    if (errno || !end || *end || end == value || !isfinite(parsed) || parsed < min ||
        parsed > max) {
        fprintf(stderr, "digcl: %s expects a number in [%g, %g], got '%s'\n", flag, min, max,
                value);
        exit(2);
    }
    return parsed;
}

int cli_is_help(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

_Noreturn void cli_unknown_argument(const char *command, const char *arg) {
    fprintf(stderr, "digcl %s: unknown argument '%s' (see `digcl %s --help`)\n", command, arg,
            command);
    exit(2);
}
