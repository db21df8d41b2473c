/* Whole-model safetensors checkpoints: dig.config from the header, strict
 * loading (names, shapes, dtypes checked before any upload), F32 saving.
 * API and rules: include/digcl/checkpoint.h. */
#include "digcl/checkpoint.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/error.h"
#include "digcl/params.h"
#include "digcl/safetensors.h"

/* ------------------------------------------------------------ dig.config */

int digcl_checkpoint_read_config(const char *path, digcl_model_config *cfg, char *error,
                                 size_t size) {
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open_header(path, &st, &err) != 0)
        return digcl_format_error(error, size, "%s", err.message);
    const char *text = digcl_st_metadata(st, DIGCL_CONFIG_METADATA_KEY);
    int status = 0;
    if (!text) {
        digcl_format_error(
            error, size,
            "%s: no \"%s\" in the file's __metadata__, so the model is unknown; describe it "
            "with flags: --model NAME (e.g. DiG-S/2) or --arch/--depth/--hidden-size/--num-heads/"
            "--patch-size/--input-size/--in-channels/--num-classes/--learn-sigma/--skip",
            path, DIGCL_CONFIG_METADATA_KEY);
        status = DIGCL_CHECKPOINT_NO_CONFIG;
    } else {
        digcl_config_error config_err;
        if (digcl_model_config_from_json(text, cfg, &config_err) != 0)
            status = digcl_format_error(error, size, "%s: %s", path, config_err.message);
    }
    digcl_st_close(st);
    return status;
}

int digcl_checkpoint_check(const char *path, const digcl_model_config *cfg, char *error,
                           size_t size) {
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    digcl_param_table table;
    if (digcl_param_table_build(cfg, &table) != 0)
        return digcl_format_error(error, size, "out of host memory");
    int status = 0;
    if (digcl_st_open_header(path, &st, &err) != 0)
        status = digcl_format_error(error, size, "%s", err.message);
    for (size_t i = 0; status == 0 && i < table.count; i++) {
        const digcl_param_info *p = &table.params[i];
        const digcl_st_tensor *t = NULL;
        if (digcl_st_expect(st, p->name, p->rank, p->shape, &t, &err) != 0)
            status = digcl_format_error(error, size, "%s", err.message);
        else if (t->dtype != DIGCL_ST_F32 && t->dtype != DIGCL_ST_F16 &&
                 t->dtype != DIGCL_ST_BF16 && t->dtype != DIGCL_ST_F64)
            status = digcl_format_error(
                error, size, "%s: tensor '%s' has dtype %s, expected F32, F16, BF16 or F64", path,
                p->name, digcl_st_dtype_name(t->dtype));
    }
    for (size_t i = 0; status == 0 && i < st->n_tensors; i++) {
        const digcl_st_tensor *t = &st->tensors[i];
        if (digcl_param_table_find(&table, t->name)) continue;
        char shape[128];
        status = digcl_format_error(error, size, "%s: unexpected tensor '%s' %s %s", path, t->name,
                                    digcl_st_format_shape(shape, sizeof shape, t->rank, t->shape),
                                    digcl_st_dtype_name(t->dtype));
    }
    digcl_st_close(st);
    digcl_param_table_free(&table);
    return status;
}

/* ------------------------------------------------------------ loading and saving */

int digcl_checkpoint_load(digcl_model *model, const char *path, char *error, size_t size) {
    digcl_params_file_entry entry = {digcl_model_params(model), NULL, 0};
    return digcl_params_load_file(path, &entry, 1, 1, error, size);
}

int digcl_checkpoint_save(const digcl_model *model, const char *path, char *error, size_t size) {
    char *json = digcl_model_config_to_json(digcl_model_get_config(model));
    if (!json) return digcl_format_error(error, size, "%s: out of host memory", path);
    const char *metadata[2] = {DIGCL_CONFIG_METADATA_KEY, json};
    digcl_params_file_entry entry = {digcl_model_params((digcl_model *)model), NULL, 0};
    int status = digcl_params_save_file(path, &entry, 1, metadata, 1, error, size);
    free(json);
    return status;
}
