/* `digcl plot`: redraws a run folder's loss.png from its log.jsonl (training
 * redraws it only at checkpoints; this draws it between them, after a kill,
 * or to another file). */
#include <stdio.h>

#include "cli.h"
#include "digcl/train.h"

void usage_plot(void) {
    printf(
        "usage: digcl plot RUN_DIR [-o FILE]\n\n"
        "Draws the loss curve of a `digcl train` run from RUN_DIR/log.jsonl: the logged loss (the\n"
        "mean of each log interval) and a Gaussian moving average of its logarithm (sigma 5\n"
        "intervals), against steps, log-scaled: the picture training writes at every checkpoint.\n"
        "  -o FILE   the PNG to write (default RUN_DIR/loss.png), atomically\n\n"
        "example:\n"
        "  digcl plot results/000-DiG-S-2 -o now.png\n");
}

int cmd_plot(const cli_globals *globals, int argc, char **argv) {
    (void)globals;
    const char *run_dir = NULL, *output = NULL;
    for (int i = 1; i < argc; i++) {
        const char *value = NULL;
        if (cli_option_value(argc, argv, &i, "-o", &value)) output = value;
        else if (argv[i][0] == '-' && argv[i][1]) cli_unknown_argument("plot", argv[i]);
        else if (!run_dir) run_dir = argv[i];
        else cli_unknown_argument("plot", argv[i]);
    }
    if (!run_dir) {
        fprintf(stderr, "digcl plot: expected RUN_DIR (see `digcl plot --help`)\n");
        return 2;
    }
    char log_path[4200], default_png[4200];
    snprintf(log_path, sizeof log_path, "%s/log.jsonl", run_dir);
    snprintf(default_png, sizeof default_png, "%s/loss.png", run_dir);
    const char *flags[1] = {"RUN_DIR's"}, *inputs[1] = {log_path};
    int bad = cli_check_output("plot", "-o", output ? output : default_png, flags, inputs, 1);
    if (bad) return bad;
    char error[1024];
    int status = digcl_train_loss_plot(run_dir, output, error, sizeof error);
    if (status != 0) {
        fprintf(stderr, "digcl plot: %s\n", error);
        return 1;
    }
    fprintf(stderr, "digcl plot: wrote %s\n", output ? output : default_png);
    return 0;
}
