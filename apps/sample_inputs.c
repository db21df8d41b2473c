/* apps/sample_inputs.c: the inputs of `digcl sample` (apps/sample.h): class
 * labels, class names and the data kind from the checkpoint's train.args,
 * the crop, the --noise-file and the weights. Messages name the flag or the
 * tensor; usage errors return 2, unreadable files 1. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "digcl/checkpoint.h"
#include "digcl/params.h"
#include "digcl/rng.h"
#include "digcl/safetensors.h"
#include "sample.h"

#define TRAIN_ARGS_KEY  "train.args"  /* written by digcl train (include/digcl/train.h) */
#define TRAIN_STATE_KEY "train.state" /* present in training checkpoints only */
#define EMA_PREFIX      "ema."        /* the EMA copy of each tensor in a training checkpoint */

static const char *const fashion_mnist_names[10] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

void sample_plan_free(sample_plan *plan) {
    free(plan->labels);
    if (plan->class_names)
        for (int k = 0; k < plan->config.num_classes; k++) free(plan->class_names[k]);
    free(plan->class_names);
    free(plan->args_json);
    free(plan->train_args);
    free(plan->noise_x_T);
    free(plan->noise_z);
    memset(plan, 0, sizeof *plan);
}

/* ------------------------------------------------------------ labels */

/* "3,1,4" -> values (malloc'ed), count; 2 with a message on a bad entry. */
static int parse_label_list(const char *list, int classes, int32_t **values, int *count) {
    int capacity = 1;
    for (const char *p = list; *p; p++) capacity += *p == ',';
    *values = malloc((size_t)capacity * sizeof **values);
    *count = 0;
    const char *p = list;
    while (*values) {
        char *end = NULL;
        long v = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || v < 0 || v >= classes) {
            int length = (int)strcspn(p, ",");
            fprintf(stderr,
                    "digcl sample: --class-labels entry '%.*s' is not a class in [0, %d) "
                    "(expected a comma-separated list, random or all)\n",
                    length, p, classes);
            free(*values);
            *values = NULL;
            return 2;
        }
        (*values)[(*count)++] = (int32_t)v;
        if (*end == '\0') return 0;
        p = end + 1;
    }
    fprintf(stderr, "digcl sample: out of memory for --class-labels\n");
    return 1;
}

int sample_parse_labels(const sample_args *a, sample_plan *plan) {
    int classes = plan->config.num_classes;
    const char *spec = a->class_labels ? a->class_labels : "random";
    if (plan->labels_from_noise) {
        if (!a->class_labels) return 0;
        fprintf(stderr, "digcl sample: --noise-file holds y; drop --class-labels\n");
        return 2;
    }
    int32_t *list = NULL;
    int list_count = 0;
    if (strcmp(spec, "random") != 0 && strcmp(spec, "all") != 0) {
        int status = parse_label_list(spec, classes, &list, &list_count);
        if (status != 0) return status;
        if (a->n < 0 && plan->n == 0) plan->n = list_count;
    }
    if (plan->n == 0) plan->n = 64;
    plan->labels = malloc((size_t)plan->n * sizeof *plan->labels);
    if (!plan->labels) {
        free(list);
        fprintf(stderr, "digcl sample: out of memory for %d labels\n", plan->n);
        return 1;
    }
    digcl_rng_key key = {a->seed, DIGCL_RNG_SAMPLE_LABELS};
    for (int i = 0; i < plan->n; i++) {
        if (list) plan->labels[i] = list[i % list_count];
        else if (strcmp(spec, "all") == 0)
            plan->labels[i] = (int32_t)((int64_t)i * classes / plan->n);
        else
            plan->labels[i] = (int32_t)digcl_rng_below(key, 0, a->first_image + (uint64_t)i, 0,
                                                       (uint32_t)classes);
    }
    plan->labels_all = strcmp(spec, "all") == 0 && plan->n % classes == 0;
    free(list);
    return 0;
}

/* ------------------------------------------------------------ train.args */

int sample_read_train_args(const char *ckpt, sample_plan *plan) {
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (!ckpt) return 0;
    if (digcl_st_open(ckpt, &st, &err) != 0) {
        fprintf(stderr, "digcl sample: %s\n", err.message);
        return 1;
    }
    const char *text = digcl_st_metadata(st, TRAIN_ARGS_KEY);
    if (text) plan->train_args = strdup(text);
    digcl_st_close(st);
    return 0;
}

/* The string train.args[key], or NULL. */
static const cJSON *train_arg(const cJSON *args, const char *key) {
    return args ? cJSON_GetObjectItemCaseSensitive(args, key) : NULL;
}

static int set_names_from_list(sample_plan *plan, const char *const *names, int count) {
    int classes = plan->config.num_classes;
    plan->class_names = calloc((size_t)classes, sizeof *plan->class_names);
    for (int k = 0; plan->class_names && k < classes; k++) {
        char number[16];
        snprintf(number, sizeof number, "%d", k);
        plan->class_names[k] = strdup(k < count && names[k] && names[k][0] ? names[k] : number);
        if (!plan->class_names[k]) return -1;
    }
    return plan->class_names ? 0 : -1;
}

/* "a,b,c" split in place into names[] (at most max); returns the count. */
static int split_names(char *text, const char **names, int max) {
    int count = 0;
    for (char *p = text; p && count < max;) {
        char *comma = strchr(p, ',');
        if (comma) *comma = '\0';
        names[count++] = p;
        p = comma ? comma + 1 : NULL;
    }
    return count;
}

static int names_from_json(const cJSON *item, sample_plan *plan) {
    int classes = plan->config.num_classes;
    const char **names = calloc((size_t)classes, sizeof *names);
    int count = 0, status;
    char *copy = NULL;
    if (!names) return -1;
    if (cJSON_IsArray(item)) {
        const cJSON *entry;
        cJSON_ArrayForEach(entry, item) if (count < classes) names[count++] =
            cJSON_IsString(entry) ? entry->valuestring : NULL;
    } else if (cJSON_IsString(item) && (copy = strdup(item->valuestring))) {
        count = split_names(copy, names, classes);
    }
    status = set_names_from_list(plan, names, count);
    free(copy);
    free(names);
    return status;
}

/* Fashion-MNIST when train.args names it (data "fashion-mnist" or a path
 * with "fashion" in it). */
static int trained_on_fashion_mnist(const cJSON *args) {
    const cJSON *data = train_arg(args, "data");
    return cJSON_IsString(data) && strstr(data->valuestring, "fashion") != NULL;
}

int sample_class_names(const sample_args *a, sample_plan *plan) {
    int classes = plan->config.num_classes, status;
    cJSON *args = plan->train_args ? cJSON_Parse(plan->train_args) : NULL;
    const cJSON *stored = train_arg(args, "class_names");
    if (a->class_names) {
        char *copy = strdup(a->class_names);
        const char **names = calloc((size_t)classes + 1, sizeof *names);
        int count = copy && names ? split_names(copy, names, classes + 1) : -1;
        status = count == classes ? set_names_from_list(plan, names, count) : 2;
        if (status == 2)
            fprintf(stderr, "digcl sample: --class-names has %d names, the model has %d classes\n",
                    count, classes);
        free(copy);
        free(names);
    } else if (stored && (cJSON_IsArray(stored) || cJSON_IsString(stored))) {
        status = names_from_json(stored, plan);
    } else if (classes == 10 && trained_on_fashion_mnist(args)) {
        status = set_names_from_list(plan, fashion_mnist_names, 10);
    } else {
        status = set_names_from_list(plan, NULL, 0);
    }
    cJSON_Delete(args);
    if (status < 0) fprintf(stderr, "digcl sample: out of memory for class names\n");
    return status < 0 ? 1 : status;
}

/* ------------------------------------------------------------ crop */

/* IDX data (Fashion-MNIST, MNIST) is padded from 28 to 32 by the loader. */
static int trained_on_idx(const char *train_args) {
    cJSON *args = train_args ? cJSON_Parse(train_args) : NULL;
    const cJSON *data = train_arg(args, "data");
    int idx = !args || !cJSON_IsString(data) || strstr(data->valuestring, "mnist") ||
              strncmp(data->valuestring, "idx:", 4) == 0;
    cJSON_Delete(args);
    return idx;
}

int sample_decide_crop(const sample_args *a, sample_plan *plan) {
    const digcl_model_config *c = &plan->config;
    const char *crop = a->crop ? a->crop : "auto";
    int side = c->input_size;
    if (strcmp(crop, "auto") == 0)
        plan->crop = c->in_channels == 1 && side == 32 && trained_on_idx(plan->train_args) ? 28 : 0;
    else if (strcmp(crop, "none") == 0) plan->crop = 0;
    else plan->crop = (int)cli_parse_long("--crop", crop, 1, plan->decodes ? 8 * side : side);
    int pixels = plan->decodes ? 8 * side : side; /* the VAE decodes 8x */
    plan->out_h = plan->out_w = plan->crop ? plan->crop : pixels;
    plan->out_c = plan->decodes ? 3 : c->in_channels;
    return 0;
}

/* ------------------------------------------------------------ noise file */

static int noise_error(const char *path, const char *name, const char *detail) {
    fprintf(stderr, "digcl sample: --noise-file %s: tensor '%s' %s\n", path, name, detail);
    return 2;
}

/* Shape check naming the tensor, both shapes and what the dims mean. */
static int expect_noise(const digcl_safetensors *st, const char *path, const char *name, int rank,
                        const int64_t *shape, const char *meaning, const digcl_st_tensor **out) {
    char got[128], want[128], detail[512];
    *out = digcl_st_find(st, name);
    digcl_st_format_shape(want, sizeof want, rank, shape);
    if (!*out) {
        snprintf(detail, sizeof detail, "is missing, expected %s (%s)", want, meaning);
        return noise_error(path, name, detail);
    }
    int same = (*out)->rank == rank;
    for (int d = 0; same && d < rank; d++) same = (*out)->shape[d] == shape[d];
    if (same) return 0;
    snprintf(detail, sizeof detail, "has shape %s, expected %s (%s)",
             digcl_st_format_shape(got, sizeof got, (*out)->rank, (*out)->shape), want, meaning);
    return noise_error(path, name, detail);
}

static int read_noise_labels(const digcl_safetensors *st, const char *path, sample_plan *plan) {
    const digcl_st_tensor *t;
    int64_t shape[1] = {plan->n};
    digcl_st_error err;
    if (!digcl_st_find(st, "y")) return 0;
    int status = expect_noise(st, path, "y", 1, shape, "N labels, like x_T", &t);
    int64_t *y = status == 0 ? malloc((size_t)plan->n * sizeof *y) : NULL;
    plan->labels = status == 0 ? malloc((size_t)plan->n * sizeof *plan->labels) : NULL;
    if (status == 0 && (!y || !plan->labels))
        status = noise_error(path, "y", "does not fit in memory");
    if (status == 0 && digcl_st_read_i64(st, t, y, &err) != 0)
        status = noise_error(path, "y", err.message);
    for (int i = 0; status == 0 && i < plan->n; i++) {
        plan->labels[i] = (int32_t)y[i];
        if (y[i] >= 0 && y[i] < plan->config.num_classes) continue;
        char detail[128];
        snprintf(detail, sizeof detail, "[%d] = %lld is not a class in [0, %d)", i, (long long)y[i],
                 plan->config.num_classes);
        status = noise_error(path, "y", detail);
    }
    free(y);
    plan->labels_from_noise = status == 0;
    return status;
}

static int read_noise_tensors(const digcl_safetensors *st, const sample_args *a,
                              sample_plan *plan) {
    const digcl_model_config *c = &plan->config;
    const char *path = a->noise_path;
    const digcl_st_tensor *t = digcl_st_find(st, "x_T");
    int64_t n = t && t->rank == 4 ? t->shape[0] : (a->n > 0 ? a->n : 1);
    if (a->n > 0) n = a->n;
    int64_t x_shape[4] = {n, c->in_channels, c->input_size, c->input_size};
    char meaning[160];
    snprintf(meaning, sizeof meaning, "N images%s, in_channels %d, input_size %d",
             a->n > 0 ? " = -n" : "", c->in_channels, c->input_size);
    int status = expect_noise(st, path, "x_T", 4, x_shape, meaning, &t);
    if (status == 0 && (n < 1 || n > SAMPLE_MAX_IMAGES))
        status = noise_error(path, "x_T", "has no images");
    if (status != 0) return status;
    plan->n = (int)n;
    int64_t z_shape[5] = {plan->options.steps, n, c->in_channels, c->input_size, c->input_size};
    const digcl_st_tensor *z;
    status = expect_noise(st, path, "z", 5, z_shape, "--steps, then the shape of x_T", &z);
    digcl_st_error err;
    if (status == 0) {
        plan->noise_x_T = malloc((size_t)t->numel * sizeof(float));
        plan->noise_z = malloc((size_t)z->numel * sizeof(float));
        if (!plan->noise_x_T || !plan->noise_z)
            status = noise_error(path, "z", "does not fit in memory");
    }
    if (status == 0 && (digcl_st_read_f32(st, t, plan->noise_x_T, &err) != 0 ||
                        digcl_st_read_f32(st, z, plan->noise_z, &err) != 0))
        status = noise_error(path, "x_T/z", err.message);
    if (status == 0) status = read_noise_labels(st, path, plan);
    return status;
}

int sample_read_noise_file(const sample_args *a, sample_plan *plan) {
    static const char *const names[] = {"x_T", "z", "y"};
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    if (!a->noise_path) return 0;
    if (digcl_st_open(a->noise_path, &st, &err) != 0) {
        fprintf(stderr, "digcl sample: --noise-file %s\n", err.message);
        return 1;
    }
    int status = 0;
    if (digcl_st_check_no_unexpected(st, names, 3, &err) != 0) {
        fprintf(stderr, "digcl sample: --noise-file %s (expected only x_T, z and optionally y)\n",
                err.message);
        status = 2;
    }
    if (status == 0) status = read_noise_tensors(st, a, plan);
    digcl_st_close(st);
    return status;
}

/* ------------------------------------------------------------ weights */

/* Every tensor of the model's table from `prefix`<name> (shapes and values checked before
 * anything is uploaded; the rest of a training checkpoint is ignored). */
static int load_prefixed(digcl_model *model, const digcl_safetensors *st, const char *prefix) {
    char error[1024];
    if (digcl_params_load_from(digcl_model_params(model), st, prefix, error, sizeof error) == 0)
        return 0;
    fprintf(stderr, "digcl sample: %s\n", error);
    return -1;
}

int sample_load_weights(digcl_model *model, const sample_args *a) {
    digcl_safetensors *st = NULL;
    digcl_st_error err;
    char message[1024];
    if (digcl_st_open(a->model.ckpt, &st, &err) != 0) {
        fprintf(stderr, "digcl sample: %s\n", err.message);
        return 1;
    }
    int training = digcl_st_metadata(st, TRAIN_STATE_KEY) != NULL;
    int status = 0;
    if (training) {
        int ema = !a->weights || strcmp(a->weights, "ema") == 0;
        status = load_prefixed(model, st, ema ? EMA_PREFIX : "") != 0;
    } else if (a->weights && strcmp(a->weights, "ema") == 0) {
        fprintf(stderr,
                "digcl sample: --weights ema: %s is not a training checkpoint (no %s); "
                "its weights are the model's\n",
                a->model.ckpt, TRAIN_STATE_KEY);
        status = 2;
    }
    digcl_st_close(st);
    if (status != 0 || training) return status;
    if (digcl_checkpoint_load(model, a->model.ckpt, message, sizeof message) == 0) return 0;
    fprintf(stderr, "digcl sample: %s\n", message);
    return 1;
}
