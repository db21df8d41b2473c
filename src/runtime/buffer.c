/* Device buffers with memory accounting (current and peak bytes per context).
 * New buffers are never assumed to be zeroed: PoCL does not zero them. */
#include <stdio.h>
#include <string.h>

#include "runtime/context_internal.h"

static double mib(uint64_t bytes) { return (double)bytes / 1048576.0; }

static _Noreturn void out_of_memory(digcl_context *ctx, size_t bytes, const char *what,
                                    const char *why) {
    digcl_fatal(
        "out of device memory: needed %.1f MiB for %s; device %s has %.0f MiB, %.1f MiB in use%s%s\n"
        "---> HINT: lower the batch size or resolution, or pick another device with --device",
        mib(bytes), what, ctx->device.name, mib(ctx->device.global_mem_bytes),
        mib(ctx->in_use_bytes), why[0] ? " " : "", why);
}

digcl_buffer digcl_buffer_create(digcl_context *ctx, size_t bytes, const char *what) {
    digcl_buffer buffer;
    memset(&buffer, 0, sizeof buffer);
    snprintf(buffer.what, sizeof buffer.what, "%s", what);
    buffer.ctx = ctx;
    if (bytes == 0) bytes = 4; /* OpenCL rejects empty buffers; keep a valid handle */
    if (bytes > ctx->device.max_alloc_bytes) {
        char why[128];
        snprintf(why, sizeof why, "(one allocation may be at most %.0f MiB)",
                 mib(ctx->device.max_alloc_bytes));
        out_of_memory(ctx, bytes, what, why);
    }
    if (ctx->in_use_bytes + bytes > ctx->device.global_mem_bytes)
        out_of_memory(ctx, bytes, what, "");
    cl_int status;
    buffer.mem = clCreateBuffer(ctx->context, CL_MEM_READ_WRITE, bytes, NULL, &status);
    if (status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_RESOURCES ||
        status == CL_INVALID_BUFFER_SIZE || status == CL_OUT_OF_HOST_MEMORY)
        out_of_memory(ctx, bytes, what, "(the driver refused the allocation)");
    DIGCL_CL_CHECK(status);
    buffer.bytes = bytes;
    ctx->in_use_bytes += bytes;
    if (ctx->in_use_bytes > ctx->peak_bytes) ctx->peak_bytes = ctx->in_use_bytes;
    return buffer;
}

void digcl_buffer_release(digcl_buffer *buffer) {
    if (!buffer || !buffer->mem) return;
    clReleaseMemObject(buffer->mem);
    buffer->ctx->in_use_bytes -= buffer->bytes;
    buffer->mem = NULL;
    buffer->bytes = 0;
}

void digcl_write(digcl_context *ctx, cl_mem mem, size_t offset, size_t bytes, const void *host) {
    if (bytes == 0) return;
    DIGCL_CL_CHECK(
        clEnqueueWriteBuffer(ctx->queue, mem, CL_TRUE, offset, bytes, host, 0, NULL, NULL));
}

void digcl_read(digcl_context *ctx, cl_mem mem, size_t offset, size_t bytes, void *host) {
    if (bytes == 0) return;
    DIGCL_CL_CHECK(
        clEnqueueReadBuffer(ctx->queue, mem, CL_TRUE, offset, bytes, host, 0, NULL, NULL));
}

void digcl_fill_f32(digcl_context *ctx, cl_mem mem, size_t offset, size_t count, float value) {
    if (count == 0) return;
    DIGCL_CL_CHECK(clEnqueueFillBuffer(ctx->queue, mem, &value, sizeof value,
                                       offset * sizeof(float), count * sizeof(float), 0, NULL,
                                       digcl_profile_launch_event(ctx)));
    digcl_profile_after_launch(ctx, "fill");
}

void digcl_copy(digcl_context *ctx, cl_mem src, size_t src_offset, cl_mem dst, size_t dst_offset,
                size_t bytes) {
    if (bytes == 0) return;
    DIGCL_CL_CHECK(clEnqueueCopyBuffer(ctx->queue, src, dst, src_offset, dst_offset, bytes, 0, NULL,
                                       digcl_profile_launch_event(ctx)));
    digcl_profile_after_launch(ctx, "copy");
}

void digcl_copy_columns(digcl_context *ctx, cl_mem src, size_t src_row_stride, size_t src_column,
                        cl_mem dst, size_t dst_row_stride, size_t dst_column, size_t rows,
                        size_t columns) {
    if (rows == 0 || columns == 0) return;
    if (rows * (src_row_stride > dst_row_stride ? src_row_stride : dst_row_stride) > 2147483647u)
        digcl_fatal("copy_columns over %zu rows exceeds the int range", rows);
    const size_t v = (src_row_stride | src_column | dst_row_stride | dst_column | columns) % 4
                         ? 1
                         : 4; /* floats per work-item */
    cl_kernel kernel = digcl_kernel(ctx, "util", v == 4 ? "copy_columns4" : "copy_columns", "");
    const size_t chunks = columns / v; /* work-items per row */
    const int args[] = {(int)(src_row_stride / v),
                        (int)(src_column / v),
                        (int)(dst_row_stride / v),
                        (int)(dst_column / v),
                        (int)rows,
                        (int)chunks};
    digcl_arg_mem(kernel, 0, src);
    digcl_arg_int(kernel, 1, args[0]);
    digcl_arg_int(kernel, 2, args[1]);
    digcl_arg_mem(kernel, 3, dst);
    for (unsigned i = 2; i < 6; i++) digcl_arg_int(kernel, i + 2, args[i]);
    size_t global[2] = {chunks, rows}, local[2] = {chunks >= 64 ? 64 : 16, chunks >= 64 ? 4 : 16};
    digcl_launch(ctx, kernel, "copy_columns", 2, global, local);
}

size_t digcl_align_offset(const digcl_context *ctx, size_t bytes) {
    size_t alignment = ctx->device.mem_base_addr_align_bytes;
    return (bytes + alignment - 1) / alignment * alignment;
}

cl_mem digcl_sub_buffer(digcl_context *ctx, cl_mem mem, size_t offset, size_t bytes) {
    if (offset % ctx->device.mem_base_addr_align_bytes != 0)
        digcl_fatal("sub-buffer offset %zu is not a multiple of the device alignment %u bytes",
                    offset, ctx->device.mem_base_addr_align_bytes);
    cl_buffer_region region = {offset, bytes ? bytes : 4};
    cl_int status;
    cl_mem sub =
        clCreateSubBuffer(mem, CL_MEM_READ_WRITE, CL_BUFFER_CREATE_TYPE_REGION, &region, &status);
    DIGCL_CL_CHECK(status);
    return sub;
}

digcl_memory_stats digcl_memory_stats_get(const digcl_context *ctx) {
    digcl_memory_stats stats = {ctx->in_use_bytes, ctx->peak_bytes, ctx->device.global_mem_bytes};
    return stats;
}

void digcl_memory_reset_peak(digcl_context *ctx) { ctx->peak_bytes = ctx->in_use_bytes; }
