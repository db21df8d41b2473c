/* tests/fuzz/fuzz_safetensors.c: libFuzzer harness for the safetensors reader.
 *
 * Build (standalone):
 *   clang -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude \
 *     tests/fuzz/fuzz_safetensors.c src/io/safetensors.c src/runtime/error.c \
 *     -lcjson -lOpenCL -lm -o fuzz_safetensors
 *   ./fuzz_safetensors -max_total_time=300 tests/fuzz/corpus_safetensors
 *
 * For every input: parse from memory (must not crash, leak or read out of
 * bounds); if accepted, look every tensor up, convert it, and round-trip the
 * convertible ones (and the metadata) through the writer and the reader again.
 * Any disagreement aborts.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/safetensors.h"

#define CHECK(cond)           \
    do {                      \
        if (!(cond)) abort(); \
    } while (0)

/* Converts every tensor; returns a writer holding the F32-convertible ones. */
static digcl_st_writer *convert_all(const digcl_safetensors *st, float **values) {
    digcl_st_writer *w = digcl_st_writer_new();
    digcl_st_error err;
    CHECK(w);
    for (size_t i = 0; i < st->n_tensors; i++) {
        const digcl_st_tensor *t = &st->tensors[i];
        CHECK(digcl_st_find(st, t->name) == t);
        CHECK(digcl_st_expect(st, t->name, t->rank, t->shape, NULL, &err) == 0);
        values[i] = malloc(t->numel ? t->numel * sizeof(float) : 1);
        CHECK(values[i]);
        if (digcl_st_read_f32(st, t, values[i], &err) != 0) continue;
        int64_t *ints = malloc(t->numel ? t->numel * sizeof(int64_t) : 1);
        CHECK(ints);
        (void)digcl_st_read_i64(st, t, ints, &err);
        free(ints);
        CHECK(digcl_st_writer_add_f32(w, t->name, t->rank, t->shape, values[i], &err) == 0);
    }
    for (size_t i = 0; i < st->n_metadata; i++)
        CHECK(digcl_st_writer_set_metadata(w, st->metadata[i].key, st->metadata[i].value, &err) ==
              0);
    return w;
}

/* The re-read file must hold the same tensors with bit-identical F32 values. */
static void check_round_trip(const digcl_safetensors *st, float **values,
                             const digcl_safetensors *again) {
    digcl_st_error err;
    for (size_t i = 0; i < again->n_tensors; i++) {
        const digcl_st_tensor *t = &again->tensors[i];
        const digcl_st_tensor *orig = digcl_st_find(st, t->name);
        CHECK(orig && t->dtype == DIGCL_ST_F32 && t->numel == orig->numel);
        CHECK(t->rank == orig->rank);
        float *copy = malloc(t->numel ? t->numel * sizeof(float) : 1);
        CHECK(copy);
        CHECK(digcl_st_read_f32(again, t, copy, &err) == 0);
        CHECK(memcmp(copy, values[orig - st->tensors], t->numel * sizeof(float)) == 0);
        free(copy);
    }
    CHECK(again->n_metadata == st->n_metadata);
    for (size_t i = 0; i < st->n_metadata; i++) {
        const char *value = digcl_st_metadata(again, st->metadata[i].key);
        CHECK(value && strcmp(value, st->metadata[i].value) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_parse(data, size, "fuzz", &st, &err) != 0) {
        CHECK(st == NULL && err.message[0] != '\0');
        return 0;
    }
    float **values = calloc(st->n_tensors + 1, sizeof *values);
    CHECK(values);
    digcl_st_writer *w = convert_all(st, values);
    uint8_t *bytes = NULL;
    size_t n = 0;
    CHECK(digcl_st_writer_serialize(w, &bytes, &n, &err) == 0);
    CHECK(n >= 8 && bytes[0] % 8 == 0); /* header length padded to a multiple of 8 */
    digcl_safetensors *again = NULL;
    CHECK(digcl_st_parse(bytes, n, "round trip", &again, &err) == 0);
    check_round_trip(st, values, again);
    digcl_st_close(again);
    free(bytes);
    digcl_st_writer_free(w);
    for (size_t i = 0; i < st->n_tensors; i++) free(values[i]);
    free(values);
    digcl_st_close(st);
    return 0;
}
