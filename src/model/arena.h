/* A tiny planner for activation memory: tensors are declared with their size,
 * then one device buffer is allocated and carved into aligned sub-buffers.
 * Planning without allocating gives the exact byte count for `digcl info`. */
#ifndef DIGCL_MODEL_ARENA_H
#define DIGCL_MODEL_ARENA_H

#include <stddef.h>

#include "digcl/runtime.h"

typedef struct arena_slot {
    cl_mem *target; /* where the view goes once allocated */
    size_t offset;  /* bytes, aligned */
    size_t bytes;
} arena_slot;

typedef struct model_arena {
    size_t alignment; /* bytes */
    size_t total;     /* bytes planned so far */
    arena_slot *slots;
    int count, capacity;
    digcl_buffer buffer;
} model_arena;

void digcl_arena_begin(model_arena *arena, size_t alignment);
/* Declares a tensor of `floats` floats whose view will be stored in *target. */
void digcl_arena_add(model_arena *arena, cl_mem *target, size_t floats);
/* Allocates the buffer and creates every view. */
void digcl_arena_allocate(model_arena *arena, digcl_context *ctx, const char *what);
void digcl_arena_release(model_arena *arena);

#endif
