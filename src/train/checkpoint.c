/* Training checkpoints: four stores of one parameter table (the weights under
 * upstream's names, ema., opt.exp_avg., opt.exp_avg_sq.) in one safetensors
 * file with dig.config, train.args and train.state, written and read through
 * the parameter store (digcl_params_save_file, digcl_params_load_entries);
 * strict loading; export of a weights-only file. API: include/digcl/train.h. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digcl/checkpoint.h"
#include "digcl/safetensors.h"
#include "digcl/train.h"
#include "digcl/error.h"

enum { STORE_COUNT = 4 };

/* The EMA holds every tensor (pos_embed too: export is a plain copy); the
 * moments only the trainable ones, as torch.optim does. */
static void store_entries(const digcl_trainer *tr, digcl_params_file_entry entries[STORE_COUNT]) {
    entries[0] = (digcl_params_file_entry){digcl_model_params(digcl_trainer_model(tr)), "", 0};
    entries[1] = (digcl_params_file_entry){digcl_trainer_ema(tr), DIGCL_TRAIN_EMA_PREFIX, 0};
    entries[2] =
        (digcl_params_file_entry){digcl_trainer_exp_avg(tr), DIGCL_TRAIN_EXP_AVG_PREFIX, 1};
    entries[3] =
        (digcl_params_file_entry){digcl_trainer_exp_avg_sq(tr), DIGCL_TRAIN_EXP_AVG_SQ_PREFIX, 1};
}

/* ------------------------------------------------------------ train.state */

/* A double as a JSON number that parses back to the same bits (cJSON's own
 * printer accepts a relative error of DBL_EPSILON). Non-finite: null. */
static void add_exact(cJSON *object, const char *key, double value) {
    char text[40];
    snprintf(text, sizeof text, "%.17g", value);
    if (isfinite(value)) cJSON_AddRawToObject(object, key, text);
    else cJSON_AddNullToObject(object, key);
}

char *digcl_train_state_to_json(const digcl_train_state *s) {
    cJSON *root = cJSON_CreateObject();
    cJSON *rng = cJSON_CreateObject();
    cJSON *log = cJSON_CreateObject();
    char seed[32];
    snprintf(seed, sizeof seed, "%" PRIu64, s->seed);
    cJSON_AddNumberToObject(root, "step", (double)s->step);
    cJSON_AddNumberToObject(root, "epoch", (double)s->epoch);
    cJSON_AddNumberToObject(root, "batch_in_epoch", (double)s->batch_in_epoch);
    /* Counter-based: every stream's state is (seed, stream, step). */
    cJSON_AddStringToObject(rng, "generator", "philox4x32-10");
    cJSON_AddStringToObject(rng, "seed", seed);
    cJSON_AddNumberToObject(rng, "step", (double)s->step);
    cJSON_AddNumberToObject(rng, "data_order_epoch", (double)s->epoch);
    cJSON_AddItemToObject(root, "rng", rng);
    /* Data parallel: every rank takes its shard's batch (epoch, batch_in_epoch)
     * next and draws by global row from the shared counters. */
    int64_t world = s->world_size > 1 ? s->world_size : 1;
    cJSON_AddNumberToObject(root, "world_size", (double)world);
    cJSON *ranks = cJSON_AddArrayToObject(root, "ranks");
    for (int64_t r = 0; ranks && r < world; r++) {
        cJSON *position = cJSON_CreateObject();
        cJSON_AddNumberToObject(position, "rank", (double)r);
        cJSON_AddNumberToObject(position, "epoch", (double)s->epoch);
        cJSON_AddNumberToObject(position, "batch_in_epoch", (double)s->batch_in_epoch);
        cJSON_AddItemToArray(ranks, position);
    }
    cJSON_AddNumberToObject(log, "count", (double)s->log_count);
    add_exact(log, "loss", s->log_loss);
    add_exact(log, "mse", s->log_mse);
    add_exact(log, "vb", s->log_vb);
    add_exact(log, "grad_norm", s->log_grad_norm);
    add_exact(log, "data_wait_ms", s->log_data_wait_ms);
    cJSON_AddItemToObject(root, "log_interval", log);
    add_exact(root, "train_seconds", s->train_seconds);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return text;
}

static int get_number(const cJSON *object, const char *key, double *out) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(object, key);
    if (!cJSON_IsNumber(item)) return -1;
    *out = item->valuedouble;
    return 0;
}

static int get_count(const cJSON *object, const char *key, int64_t *out) {
    double value;
    if (get_number(object, key, &value) != 0 || value < 0 || value != (double)(int64_t)value)
        return -1;
    *out = (int64_t)value;
    return 0;
}

/* The fields that older checkpoints lack: world_size (one process: 1) and
 * train_seconds (0). NULL, or the field that is invalid. */
static const char *read_optional(const cJSON *root, digcl_train_state *s) {
    s->world_size = 1;
    s->train_seconds = 0.0;
    if (cJSON_GetObjectItemCaseSensitive(root, "world_size") &&
        (get_count(root, "world_size", &s->world_size) || s->world_size < 1))
        return "\"world_size\"";
    if (cJSON_GetObjectItemCaseSensitive(root, "train_seconds") &&
        (get_number(root, "train_seconds", &s->train_seconds) || !isfinite(s->train_seconds) ||
         s->train_seconds < 0))
        return "\"train_seconds\" (seconds, >= 0)";
    return NULL;
}

int digcl_train_state_from_json(const char *json, digcl_train_state *s, char *error, size_t size) {
    memset(s, 0, sizeof *s);
    cJSON *root = cJSON_Parse(json);
    const cJSON *rng = cJSON_GetObjectItemCaseSensitive(root, "rng");
    const cJSON *log = cJSON_GetObjectItemCaseSensitive(root, "log_interval");
    const cJSON *seed = cJSON_GetObjectItemCaseSensitive(rng, "seed");
    const char *bad = !cJSON_IsObject(root)                                   ? "not a JSON object"
                      : get_count(root, "step", &s->step)                     ? "\"step\""
                      : get_count(root, "epoch", &s->epoch)                   ? "\"epoch\""
                      : get_count(root, "batch_in_epoch", &s->batch_in_epoch) ? "\"batch_in_epoch\""
                      : !cJSON_IsString(seed)                                 ? "\"rng\".\"seed\""
                      : !cJSON_IsObject(log)                                  ? "\"log_interval\""
                      : get_count(log, "count", &s->log_count) ? "\"log_interval\".\"count\""
                      : get_number(log, "loss", &s->log_loss) ||
                              get_number(log, "mse", &s->log_mse) ||
                              get_number(log, "vb", &s->log_vb) ||
                              get_number(log, "grad_norm", &s->log_grad_norm) ||
                              get_number(log, "data_wait_ms", &s->log_data_wait_ms)
                          ? "\"log_interval\" sums"
                          : NULL;
    if (!bad) bad = read_optional(root, s);
    if (!bad) {
        char *end = NULL;
        s->seed = strtoull(seed->valuestring, &end, 10);
        if (!*seed->valuestring || *end) bad = "\"rng\".\"seed\" (a decimal string)";
    }
    cJSON_Delete(root);
    if (bad) return digcl_format_error(error, size, "train.state: missing or invalid %s", bad);
    return 0;
}

/* ------------------------------------------------------------ saving */

int digcl_train_checkpoint_save(digcl_trainer *tr, const digcl_train_state *state,
                                const char *args_json, const char *path, char *error, size_t size) {
    digcl_params_file_entry entries[STORE_COUNT];
    store_entries(tr, entries);
    char *config = digcl_model_config_to_json(digcl_model_get_config(digcl_trainer_model(tr)));
    char *train_state = digcl_train_state_to_json(state);
    const char *metadata[6] = {DIGCL_CONFIG_METADATA_KEY,      config,
                               DIGCL_TRAIN_STATE_METADATA_KEY, train_state,
                               DIGCL_TRAIN_ARGS_METADATA_KEY,  args_json};
    int status = !config || !train_state
                     ? digcl_format_error(error, size, "%s: out of host memory", path)
                     : digcl_params_save_file(path, entries, STORE_COUNT, metadata,
                                              args_json ? 3 : 2, error, size);
    free(config);
    free(train_state);
    return status;
}

/* ------------------------------------------------------------ loading */

static char *copy_string(const char *text) {
    if (!text) return NULL;
    char *copy = malloc(strlen(text) + 1);
    if (copy) strcpy(copy, text);
    return copy;
}

static int read_state(const digcl_safetensors *st, digcl_train_state *state, char *error,
                      size_t size) {
    const char *json = digcl_st_metadata(st, DIGCL_TRAIN_STATE_METADATA_KEY);
    if (!json)
        return digcl_format_error(error, size,
                                  "%s: no \"%s\" in __metadata__: not a digcl training checkpoint "
                                  "(a weights-only file cannot be resumed)",
                                  st->label, DIGCL_TRAIN_STATE_METADATA_KEY);
    char message[512];
    if (digcl_train_state_from_json(json, state, message, sizeof message) != 0)
        return digcl_format_error(error, size, "%s: %s", st->label, message);
    return 0;
}

/* A missing ema./opt. tensor: say what a training checkpoint holds. */
static void explain_missing_store(char *error, size_t size) {
    if (!error || (!strstr(error, "'" DIGCL_TRAIN_EMA_PREFIX) && !strstr(error, "'opt.")) ||
        strstr(error, "unexpected"))
        return;
    size_t length = strlen(error);
    snprintf(error + length, size - length,
             " (a training checkpoint holds ema., opt.exp_avg. and "
             "opt.exp_avg_sq. tensors; is this a weights-only file?)");
}

int digcl_train_checkpoint_load(digcl_trainer *tr, const char *path, digcl_train_state *state,
                                char **args_json, char *error, size_t size) {
    digcl_params_file_entry entries[STORE_COUNT];
    store_entries(tr, entries);
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (args_json) *args_json = NULL;
    if (digcl_st_open(path, &st, &err) != 0)
        return digcl_format_error(error, size, "%s", err.message);
    int status = read_state(st, state, error, size);
    if (status == 0) {
        status = digcl_params_load_entries(st, entries, STORE_COUNT, 1, error, size);
        if (status != 0) explain_missing_store(error, size);
    }
    if (status == 0 && args_json)
        *args_json = copy_string(digcl_st_metadata(st, DIGCL_TRAIN_ARGS_METADATA_KEY));
    if (status == 0) digcl_trainer_set_step_count(tr, state->step);
    digcl_st_close(st);
    return status;
}

/* ------------------------------------------------------------ export */

/* The output name of tensor `name` when exporting `prefix` ("" for the
 * model's own tensors), NULL when it belongs to another store. */
static const char *exported_name(const char *name, const char *prefix) {
    size_t length = strlen(prefix);
    if (length) return strncmp(name, prefix, length) == 0 ? name + length : NULL;
    return strncmp(name, "ema.", 4) == 0 || strncmp(name, "opt.", 4) == 0 ? NULL : name;
}

/* Converts the chosen store's tensors into host (packed) and adds them. */
static int export_tensors(const digcl_safetensors *st, const char *prefix, digcl_st_writer *w,
                          float **host, char *error, size_t size) {
    size_t total = 0, offset = 0, found = 0;
    for (size_t i = 0; i < st->n_tensors; i++)
        if (exported_name(st->tensors[i].name, prefix)) total += st->tensors[i].numel;
    *host = malloc((total + 1) * sizeof **host);
    if (!*host) return digcl_format_error(error, size, "%s: out of host memory", st->label);
    digcl_st_error err;
    for (size_t i = 0; i < st->n_tensors; i++) {
        const digcl_st_tensor *t = &st->tensors[i];
        const char *name = exported_name(t->name, prefix);
        if (!name) continue;
        if (digcl_st_read_f32(st, t, *host + offset, &err) != 0 ||
            digcl_st_writer_add_f32(w, name, t->rank, t->shape, *host + offset, &err) != 0)
            return digcl_format_error(error, size, "%s", err.message);
        offset += t->numel;
        found++;
    }
    if (found == 0)
        return digcl_format_error(error, size, "%s: no %s tensors: not a digcl training checkpoint",
                                  st->label, *prefix ? prefix : "model");
    return 0;
}

int digcl_train_checkpoint_export(const char *path, const char *which, const char *out_path,
                                  char *error, size_t size) {
    const char *prefix = strcmp(which, "ema") == 0     ? DIGCL_TRAIN_EMA_PREFIX
                         : strcmp(which, "model") == 0 ? ""
                                                       : NULL;
    if (!prefix)
        return digcl_format_error(error, size, "--weights %s: expected ema or model", which);
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (digcl_st_open(path, &st, &err) != 0)
        return digcl_format_error(error, size, "%s", err.message);
    const char *config = digcl_st_metadata(st, DIGCL_CONFIG_METADATA_KEY);
    digcl_st_writer *w = digcl_st_writer_new();
    float *host = NULL;
    int status = w ? 0 : digcl_format_error(error, size, "%s: out of host memory", path);
    if (status == 0 && !digcl_st_metadata(st, DIGCL_TRAIN_STATE_METADATA_KEY))
        status = digcl_format_error(
            error, size, "%s: no \"%s\" in __metadata__: not a digcl training checkpoint", path,
            DIGCL_TRAIN_STATE_METADATA_KEY);
    if (status == 0) status = export_tensors(st, prefix, w, &host, error, size);
    if (status == 0 && config &&
        digcl_st_writer_set_metadata(w, DIGCL_CONFIG_METADATA_KEY, config, &err) != 0)
        status = digcl_format_error(error, size, "%s", err.message);
    if (status == 0 && digcl_st_writer_write(w, out_path, &err) != 0)
        status = digcl_format_error(error, size, "%s", err.message);
    digcl_st_writer_free(w);
    free(host);
    digcl_st_close(st);
    return status;
}
