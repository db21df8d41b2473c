/* tests/fuzz/fuzz_config.c: libFuzzer harness for the dig.config reader.
 *
 * For every input (taken as JSON text): digcl_model_config_from_json must not
 * crash, overflow or read out of bounds. An accepted config must round-trip
 * (to_json, from_json give the same config), build its parameter table, and
 * give a batch limit and a memory estimate without overflowing (the sizes are
 * computed in 64 bits with checks).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/model.h"
#include "digcl/model_config.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond)) abort(); \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    CHECK(text);
    memcpy(text, data, size);
    text[size] = '\0';
    digcl_model_config config, again;
    digcl_config_error err;
    if (digcl_model_config_from_json(text, &config, &err) == 0) {
        char *json = digcl_model_config_to_json(&config);
        CHECK(json);
        CHECK(digcl_model_config_from_json(json, &again, &err) == 0);
        CHECK(memcmp(&config, &again, sizeof config) == 0);
        free(json);
        digcl_param_table table;
        CHECK(digcl_param_table_build(&config, &table) == 0);
        CHECK(table.total >= table.trainable);
        digcl_param_table_free(&table);
        long max = digcl_model_max_batch(&config);
        char message[512];
        digcl_model_memory memory;
        if (max >= 1 && max <= 64)
            CHECK(digcl_model_memory_estimate(&config, max, &memory, message, sizeof message) == 0);
        CHECK(digcl_model_check_batch(&config, max + 1, message, sizeof message) != 0);
    }
    free(text);
    return 0;
}
