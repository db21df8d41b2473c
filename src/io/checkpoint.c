/* Whole-model safetensors checkpoints: dig.config from the header, strict
 * loading (names, shapes, dtypes checked before any upload), F32 saving.
 * API and rules: include/digcl/checkpoint.h. */
#include "digcl/checkpoint.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/error.h"
#include "digcl/safetensors.h"

static int fail(char *error, size_t size, const char *format, ...) DIGCL_PRINTF(3, 4);

static int fail(char *error, size_t size, const char *format, ...)
{
    if (error && size) {
        va_list args;
        va_start(args, format);
        vsnprintf(error, size, format, args);
        va_end(args);
    }
    return -1;
}

/* ------------------------------------------------------------ dig.config */

/* The JSON header of a safetensors file, NUL-terminated and malloc'ed; only
 * the first 8 + N bytes are read (info on a multi-GiB file stays cheap). */
static char *read_header(const char *path, char *error, size_t size)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fail(error, size, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    unsigned char prefix[8];
    uint64_t n = 0;
    char *json = NULL;
    if (fread(prefix, 1, 8, f) != 8) {
        fail(error, size, "%s: not a safetensors file (shorter than the 8-byte header length)", path);
    } else {
        for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
        if (n > DIGCL_ST_MAX_HEADER_SIZE)
            fail(error, size, "%s: header length %llu exceeds the safetensors limit %llu", path,
                 (unsigned long long)n, DIGCL_ST_MAX_HEADER_SIZE);
        else if (!(json = malloc((size_t)n + 1)))
            fail(error, size, "%s: out of host memory for a %llu-byte header", path,
                 (unsigned long long)n);
        else if (fread(json, 1, (size_t)n, f) != (size_t)n) {
            fail(error, size, "%s: header length %llu runs past the end of the file", path,
                 (unsigned long long)n);
            free(json);
            json = NULL;
        } else {
            json[n] = '\0';
        }
    }
    fclose(f);
    return json;
}

/* Copies __metadata__["dig.config"] of the header into a malloc'ed string;
 * NULL with a message when absent (*absent = 1) or mistyped. */
static char *config_text(const char *path, const char *header, int *absent, char *error,
                         size_t size)
{
    cJSON *root = cJSON_Parse(header);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        fail(error, size, "%s: the safetensors header is not a JSON object", path);
        return NULL;
    }
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    const cJSON *item = cJSON_IsObject(meta)
                            ? cJSON_GetObjectItemCaseSensitive(meta, DIGCL_CONFIG_METADATA_KEY)
                            : NULL;
    char *text = NULL;
    *absent = !item;
    if (!item)
        fail(error, size,
             "%s: no \"%s\" in the file's __metadata__, so the model is unknown; describe it "
             "with flags: --model NAME (e.g. DiG-S/2) or --arch/--depth/--hidden-size/--num-heads/"
             "--patch-size/--input-size/--in-channels/--num-classes/--learn-sigma/--skip",
             path, DIGCL_CONFIG_METADATA_KEY);
    else if (!cJSON_IsString(item))
        fail(error, size, "%s: __metadata__ \"%s\" is not a string", path, DIGCL_CONFIG_METADATA_KEY);
    else if (!(text = malloc(strlen(item->valuestring) + 1)))
        fail(error, size, "%s: out of host memory", path);
    else
        strcpy(text, item->valuestring);
    cJSON_Delete(root);
    return text;
}

int digcl_checkpoint_read_config(const char *path, digcl_model_config *cfg, char *error,
                                 size_t size)
{
    char *header = read_header(path, error, size);
    if (!header) return -1;
    int absent = 0;
    char *text = config_text(path, header, &absent, error, size);
    free(header);
    if (!text) return absent ? DIGCL_CHECKPOINT_NO_CONFIG : -1;
    digcl_config_error err;
    int status = digcl_model_config_from_json(text, cfg, &err);
    free(text);
    if (status != 0) return fail(error, size, "%s: %s", path, err.message);
    return 0;
}

/* ------------------------------------------------------------ loading */

static int copy_st_error(const digcl_st_error *err, char *error, size_t size)
{
    return fail(error, size, "%s", err->message);
}

static int loadable_dtype(digcl_st_dtype d)
{
    return d == DIGCL_ST_F32 || d == DIGCL_ST_F16 || d == DIGCL_ST_BF16 || d == DIGCL_ST_F64;
}

/* Every table tensor present with its exact shape and a float dtype, and no
 * tensor outside the table. */
static int check_tensors(const digcl_safetensors *st, const digcl_param_table *table,
                         char *error, size_t size)
{
    digcl_st_error err;
    const char **names = malloc((table->count ? table->count : 1) * sizeof *names);
    if (!names) return fail(error, size, "%s: out of host memory", st->label);
    int status = 0;
    for (size_t i = 0; i < table->count && status == 0; i++) {
        const digcl_param_info *p = &table->params[i];
        const digcl_st_tensor *t = NULL;
        names[i] = p->name;
        if (digcl_st_expect(st, p->name, p->rank, p->shape, &t, &err) != 0)
            status = copy_st_error(&err, error, size);
        else if (!loadable_dtype(t->dtype))
            status = fail(error, size, "%s: tensor '%s' has dtype %s, expected F32, F16, BF16 or F64",
                          st->label, p->name, digcl_st_dtype_name(t->dtype));
    }
    if (status == 0 && digcl_st_check_no_unexpected(st, names, table->count, &err) != 0)
        status = copy_st_error(&err, error, size);
    free(names);
    return status;
}

static size_t largest_numel(const digcl_param_table *table)
{
    size_t largest = 1;
    for (size_t i = 0; i < table->count; i++)
        if (table->params[i].numel > largest) largest = table->params[i].numel;
    return largest;
}

/* Converts each tensor to float32 on the host and uploads it. */
static int upload_tensors(digcl_model *model, const digcl_safetensors *st, char *error, size_t size)
{
    const digcl_param_table *table = digcl_model_param_table(model);
    float *host = malloc(largest_numel(table) * sizeof *host);
    if (!host) return fail(error, size, "%s: out of host memory", st->label);
    digcl_st_error err;
    int status = 0;
    for (size_t i = 0; i < table->count && status == 0; i++) {
        const digcl_st_tensor *t = digcl_st_find(st, table->params[i].name);
        if (digcl_st_read_f32(st, t, host, &err) != 0) status = copy_st_error(&err, error, size);
        else digcl_model_write_param(model, i, host);
    }
    free(host);
    return status;
}

int digcl_checkpoint_load(digcl_model *model, const char *path, char *error, size_t size)
{
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open(path, &st, &err) != 0) return copy_st_error(&err, error, size);
    int status = check_tensors(st, digcl_model_param_table(model), error, size);
    if (status == 0) status = upload_tensors(model, st, error, size);
    digcl_st_close(st);
    return status;
}

/* ------------------------------------------------------------ saving */

/* Downloads every parameter into host[] (packed, table order) and adds it. */
static int add_params(const digcl_model *model, digcl_st_writer *w, float *host, const char *path,
                      char *error, size_t size)
{
    const digcl_param_table *table = digcl_model_param_table(model);
    digcl_st_error err;
    size_t offset = 0;
    for (size_t i = 0; i < table->count; i++) {
        const digcl_param_info *p = &table->params[i];
        digcl_model_read_param(model, i, host + offset);
        if (digcl_st_writer_add_f32(w, p->name, p->rank, p->shape, host + offset, &err) != 0)
            return fail(error, size, "%s: %s", path, err.message);
        offset += p->numel;
    }
    return 0;
}

static int add_config(const digcl_model *model, digcl_st_writer *w, const char *path, char *error,
                      size_t size)
{
    char *json = digcl_model_config_to_json(digcl_model_get_config(model));
    if (!json) return fail(error, size, "%s: out of host memory", path);
    digcl_st_error err;
    int status = digcl_st_writer_set_metadata(w, DIGCL_CONFIG_METADATA_KEY, json, &err);
    free(json);
    return status == 0 ? 0 : fail(error, size, "%s: %s", path, err.message);
}

int digcl_checkpoint_save(const digcl_model *model, const char *path, char *error, size_t size)
{
    const digcl_param_table *table = digcl_model_param_table(model);
    size_t total = 0;
    for (size_t i = 0; i < table->count; i++) total += table->params[i].numel;
    float *host = malloc((total ? total : 1) * sizeof *host);
    digcl_st_writer *w = digcl_st_writer_new();
    int status = 0;
    if (!host || !w)
        status = fail(error, size, "%s: out of host memory (%.1f MiB of parameters)", path,
                      (double)total * sizeof(float) / (1024.0 * 1024.0));
    if (status == 0) status = add_params(model, w, host, path, error, size);
    if (status == 0) status = add_config(model, w, path, error, size);
    digcl_st_error err;
    if (status == 0 && digcl_st_writer_write(w, path, &err) != 0)
        status = copy_st_error(&err, error, size);
    digcl_st_writer_free(w);
    free(host);
    return status;
}
