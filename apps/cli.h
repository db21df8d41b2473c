/* apps/cli.h: what the `digcl` subcommands share: global options, option
 * parsing helpers and the context opener. */
#ifndef DIGCL_APPS_CLI_H
#define DIGCL_APPS_CLI_H

#include <stdio.h>

#include "digcl/runtime.h"

typedef struct cli_globals {
    const char *device;        /* --device P:D|NAME */
    int verbose;               /* -v */
    digcl_precision precision; /* --precision fp32|tf32 */
} cli_globals;

typedef struct cli_command {
    const char *name;
    const char *summary;
    int (*run)(const cli_globals *globals, int argc, char **argv); /* argv[0] is the command */
    void (*usage)(void);
} cli_command;

/* Opens the context for the global --device/-v options; an unknown --device
 * lists the devices and exits 2. */
digcl_context *cli_open_context(const cli_globals *globals);
/* The device table of `digcl devices`, the selected one marked with '*'. */
void cli_print_devices(const digcl_device_info *devices, int count, int selected, FILE *out);
/* The library's fatal errors print "digcl: error: ..." and exit 1; its notices
 * print as "digcl: notice: ..." and so on (apps/digcl.c installs both). */
void cli_install_handlers(void);

/* Option parsing: returns 1 if argv[*i] is `--name VALUE` or `--name=VALUE`,
 * storing VALUE and advancing *i; exits 2 with a message when VALUE is missing. */
int cli_option_value(int argc, char **argv, int *i, const char *name, const char **value);
/* Parses an integer/float option value or exits 2 naming the flag. */
long cli_parse_long(const char *flag, const char *value, long min, long max);
double cli_parse_double(const char *flag, const char *value, double min, double max);
int cli_is_help(const char *arg);
/* The guard of every command that writes a file: 0, or 2 after a message when
 * `output` is empty, a directory, or the same file (device and inode, so also
 * through another spelling or a link) as one of inputs[count] (NULL entries
 * are skipped), naming both flags. */
int cli_check_output(const char *command, const char *output_flag, const char *output,
                     const char *const *input_flags, const char *const *inputs, int count);
/* Reports an unknown argument for `command` and exits 2. */
_Noreturn void cli_unknown_argument(const char *command, const char *arg);

int cmd_devices(const cli_globals *globals, int argc, char **argv);
void usage_devices(void);
int cmd_bench(const cli_globals *globals, int argc, char **argv);
void usage_bench(void);
int cmd_info(const cli_globals *globals, int argc, char **argv);
void usage_info(void);
int cmd_forward(const cli_globals *globals, int argc, char **argv);
void usage_forward(void);
int cmd_train(const cli_globals *globals, int argc, char **argv);
void usage_train(void);
int cmd_export(const cli_globals *globals, int argc, char **argv);
void usage_export(void);
int cmd_plot(const cli_globals *globals, int argc, char **argv);
void usage_plot(void);
int cmd_decode(const cli_globals *globals, int argc, char **argv);
void usage_decode(void);
int cmd_encode(const cli_globals *globals, int argc, char **argv);
void usage_encode(void);
int cmd_loss(const cli_globals *globals, int argc, char **argv);
void usage_loss(void);
int cmd_sample(const cli_globals *globals, int argc, char **argv);
void usage_sample(void);

#endif
