/* What callers of the model must know before running it: the batch limit of
 * the kernels' 32-bit indices, the device memory a model takes (from the real
 * stores and plans), and host checks of the inputs t, y and x. */
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "model/model_internal.h"

int digcl_model_check_batch(const digcl_model_config *config, long batch, char *error,
                            size_t size) {
    if (batch < 1)
        return digcl_format_error(error, size, "batch %ld: expected at least 1 sample", batch);
    size_t tokens = (size_t)config->tokens, row = digcl_model_plan_row_floats(config);
    if ((unsigned long)batch > INT_MAX / tokens || (size_t)batch * tokens > INT_MAX / row)
        return digcl_format_error(
            error, size,
            "batch %ld at %zu tokens makes [%zu x %zu] activations, more than the %d elements the "
            "kernels index with 32-bit ints (at most batch %ld)",
            batch, tokens, (size_t)batch * tokens, row, INT_MAX, digcl_model_max_batch(config));
    size_t largest = digcl_model_plan_largest_tensor(config, (int)batch);
    if (largest > INT_MAX)
        return digcl_format_error(
            error, size,
            "batch %ld needs a %zu-element scratch tensor, more than the %d elements the kernels index "
            "with 32-bit ints",
            batch, largest, INT_MAX);
    return 0;
}

long digcl_model_max_batch(const digcl_model_config *config) {
    size_t tokens = (size_t)config->tokens, row = digcl_model_plan_row_floats(config);
    long high = (long)(INT_MAX / tokens / row), low = 0; /* the row bound; the plan may lower it */
    if (high < 1) return 0;
    if (digcl_model_plan_largest_tensor(config, (int)high) <= INT_MAX) return high;
    while (high - low > 1) { /* invariant: low passes (or is 0), high fails */
        long middle = low + (high - low) / 2;
        if (digcl_model_plan_largest_tensor(config, (int)middle) <= INT_MAX) low = middle;
        else high = middle;
    }
    return low;
}

int digcl_model_memory_estimate(const digcl_model_config *config, long batch,
                                digcl_model_memory *memory, char *error, size_t size) {
    if (digcl_model_check_batch(config, batch, error, size) != 0) return -1;
    digcl_param_table table;
    if (digcl_param_table_build(config, &table) != 0)
        return digcl_format_error(error, size, "out of host memory");
    size_t store = digcl_param_table_flat_bytes(&table);
    digcl_param_table_free(&table);
    memory->parameters = store;
    memory->gradients = store;
    memory->optimizer = 2 * store;
    memory->ema = store;
    memory->activations_inference = digcl_model_activation_bytes(
        config, (int)batch, DIGCL_MODE_INFERENCE, DIGCL_PARAMS_ALIGNMENT_BYTES);
    memory->activations_training = digcl_model_activation_bytes(
        config, (int)batch, DIGCL_MODE_TRAINING, DIGCL_PARAMS_ALIGNMENT_BYTES);
    memory->sampling_total = memory->parameters + memory->activations_inference;
    memory->training_total = memory->parameters + memory->gradients + memory->optimizer +
                             memory->ema + memory->activations_training;
    return 0;
}

int digcl_check_finite(const char *name, const float *values, size_t n, char *error, size_t size) {
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        if (isfinite(values[i])) continue;
        if (bad++ == 0) first = i;
    }
    if (!bad) return 0;
    return digcl_format_error(
        error, size,
        "tensor '%s' holds %zu non-finite value%s (NaN or Inf) of %zu, the first at [%zu]", name,
        bad, bad == 1 ? "" : "s", n, first);
}

int digcl_model_check_timesteps(const char *name, const float *t, size_t n, int num_timesteps,
                                char *error, size_t size) {
    for (size_t i = 0; i < n; i++) {
        if (isfinite(t[i]) && t[i] >= 0.0f && t[i] < (float)num_timesteps) continue;
        return digcl_format_error(
            error, size, "tensor '%s'[%zu] = %g, expected a finite timestep index in [0, %d)", name,
            i, (double)t[i], num_timesteps);
    }
    return 0;
}

int digcl_model_check_labels(const digcl_model_config *config, const char *name, const int64_t *y,
                             size_t n, char *error, size_t size) {
    for (size_t i = 0; i < n; i++) {
        if (y[i] >= 0 && y[i] <= config->num_classes) continue;
        return digcl_format_error(
            error, size,
            "tensor '%s'[%zu] = %lld, expected a class in [0, %d] (%d = the null class)", name, i,
            (long long)y[i], config->num_classes, config->num_classes);
    }
    return 0;
}
