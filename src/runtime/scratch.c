/* Context-owned scratch buffers, one per key, grown on demand (runtime.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/context_internal.h"

static context_scratch *find_or_add(digcl_context *ctx, const char *key) {
    for (int i = 0; i < ctx->scratch_count; i++)
        if (strcmp(ctx->scratch[i].key, key) == 0) return &ctx->scratch[i];
    context_scratch *grown =
        realloc(ctx->scratch, (size_t)(ctx->scratch_count + 1) * sizeof *grown);
    if (!grown) digcl_fatal("out of host memory for the scratch buffer '%s'", key);
    ctx->scratch = grown;
    context_scratch *entry = &ctx->scratch[ctx->scratch_count++];
    memset(entry, 0, sizeof *entry);
    snprintf(entry->key, sizeof entry->key, "%s", key);
    return entry;
}

cl_mem digcl_context_scratch(digcl_context *ctx, const char *key, size_t bytes, const char *what) {
    context_scratch *entry = find_or_add(ctx, key);
    if (bytes > entry->buffer.bytes) {
        digcl_buffer_release(&entry->buffer); /* queued work keeps the old one alive */
        entry->buffer = digcl_buffer_create(ctx, bytes, what);
    }
    return entry->buffer.mem;
}

void digcl_context_release_scratch(digcl_context *ctx) {
    for (int i = 0; i < ctx->scratch_count; i++) digcl_buffer_release(&ctx->scratch[i].buffer);
    free(ctx->scratch);
    ctx->scratch = NULL;
    ctx->scratch_count = 0;
}
