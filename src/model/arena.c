/* Activation arena: one allocation, aligned sub-buffer views. */
#include "model/arena.h"

#include <stdlib.h>
#include <string.h>

void digcl_arena_begin(model_arena *arena, size_t alignment) {
    memset(arena, 0, sizeof *arena);
    arena->alignment = alignment ? alignment : 4;
}

void digcl_arena_add(model_arena *arena, cl_mem *target, size_t floats) {
    if (arena->count == arena->capacity) {
        int capacity = arena->capacity ? 2 * arena->capacity : 64;
        arena_slot *grown = realloc(arena->slots, (size_t)capacity * sizeof *grown);
        if (!grown) digcl_fatal("out of host memory planning activations");
        arena->slots = grown;
        arena->capacity = capacity;
    }
    size_t bytes = (floats ? floats : 1) * sizeof(float);
    arena_slot *slot = &arena->slots[arena->count++];
    slot->target = target;
    slot->offset = arena->total;
    slot->bytes = bytes;
    arena->total += (bytes + arena->alignment - 1) / arena->alignment * arena->alignment;
}

void digcl_arena_allocate(model_arena *arena, digcl_context *ctx, const char *what) {
    arena->buffer = digcl_buffer_create(ctx, arena->total, what);
    for (int i = 0; i < arena->count; i++) {
        arena_slot *slot = &arena->slots[i];
        *slot->target = digcl_sub_buffer(ctx, arena->buffer.mem, slot->offset, slot->bytes);
    }
}

void digcl_arena_release(model_arena *arena) {
    for (int i = 0; i < arena->count; i++) {
        if (arena->buffer.mem && *arena->slots[i].target) {
            clReleaseMemObject(*arena->slots[i].target);
            *arena->slots[i].target = NULL;
        }
    }
    digcl_buffer_release(&arena->buffer);
    free(arena->slots);
    memset(arena, 0, sizeof *arena);
}
