/* `digcl devices`: every platform and device, with the selected one marked. */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

void usage_devices(void) {
    printf(
        "usage: digcl devices [--device P:D|NAME]\n\n"
        "Lists every OpenCL platform and device with global and local memory, compute units,\n"
        "OpenCL C version, fp16/fp64 support and the maximum work-group size. The device that\n"
        "--device, DIGCL_DEVICE or the default rule (first GPU, accelerator, then CPU) picks is\n"
        "marked with '*'.\n");
}

int cmd_devices(const cli_globals *globals, int argc, char **argv) {
    if (argc > 1) cli_unknown_argument("devices", argv[1]);
    digcl_device_info *devices = NULL;
    int count = digcl_list_devices(&devices);
    if (count == 0) {
        fprintf(stderr, "digcl: error: %s\n", digcl_no_platform_message());
        return 1;
    }
    char message[256] = "";
    int selected = digcl_select_device(devices, count, globals->device, message, sizeof message);
    cli_print_devices(devices, count, selected, stdout);
    free(devices);
    if (selected < 0) {
        fprintf(stderr, "digcl: error: %s\n", message);
        return 2;
    }
    return 0;
}
