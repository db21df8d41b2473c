/* Option parsing helpers and the context opener shared by the subcommands. */
#include "cli.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

digcl_context *cli_open_context(const cli_globals *globals) {
    digcl_context_options options = {globals->device, globals->verbose};
    return digcl_context_create(&options);
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
        fprintf(stderr, "digcl: %s expects an integer in [%ld, %ld], got '%s'\n", flag, min, max, value);
        exit(2);
    }
    return parsed;
}

double cli_parse_double(const char *flag, const char *value, double min, double max) {
    char *end = NULL;
    errno = 0;
    double parsed = strtod(value, &end);
    if (errno || !end || *end || end == value || !isfinite(parsed) || parsed < min || parsed > max) {
        fprintf(stderr, "digcl: %s expects a number in [%g, %g], got '%s'\n", flag, min, max, value);
        exit(2);
    }
    return parsed;
}

int cli_is_help(const char *arg) { return strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0; }

_Noreturn void cli_unknown_argument(const char *command, const char *arg) {
    fprintf(stderr, "digcl %s: unknown argument '%s' (see `digcl %s --help`)\n", command, arg, command);
    exit(2);
}
