/* `digcl bench ops`: every layer kernel at DiG-S/2 training shapes and at high
 * resolution, beside the device's measured copy bandwidth. */
#include <stdio.h>

#include "bench.h"
#include "cli.h"

int bench_ops_main(digcl_context *ctx, int argc, char **argv) {
    if (argc > 0) cli_unknown_argument("bench ops", argv[0]);
    const digcl_device_info *device = digcl_context_device(ctx);
    size_t copy_bytes =
        (device->type & CL_DEVICE_TYPE_CPU) ? ((size_t)64 << 20) : ((size_t)512 << 20);
    double copy_gbps = bench_copy_bandwidth(ctx, copy_bytes);
    printf("device: %s (%s, driver %s)\n", device->name, device->platform_name,
           device->driver_version);
    bench_print_header(copy_gbps);
    bench_ops_dense(ctx, copy_gbps);
    bench_ops_spatial(ctx, copy_gbps);
    return 0;
}
