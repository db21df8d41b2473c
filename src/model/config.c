/* src/model/config.c: model configurations, presets, dig.config JSON and the
 * parameter table. See include/digcl/model_config.h and docs/MODEL.md §1-§3.
 */
#include "digcl/model_config.h"

#include "digcl/attention.h"
#include "digcl/embed.h"
#include "digcl/norm.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <stdint.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(digcl_config_error *err, const char *format, ...) DIGCL_PRINTF(2, 3);

static int fail(digcl_config_error *err, const char *format, ...) {
    if (err) {
        va_list args;
        va_start(args, format);
        vsnprintf(err->message, sizeof err->message, format, args);
        va_end(args);
    }
    return -1;
}

const char *digcl_arch_name(digcl_arch arch) {
    return arch == DIGCL_ARCH_DIT ? "dit" : arch == DIGCL_ARCH_UDIG ? "udig" : "dig";
}

const char *digcl_attention_mode_name(digcl_attention_mode mode) {
    return mode == DIGCL_ATTENTION_TILED ? "tiled" : mode == DIGCL_ATTENTION_NAIVE ? "naive" : "?";
}

int digcl_attention_mode_parse(const char *name, digcl_attention_mode *mode) {
    if (name && strcmp(name, "tiled") == 0) *mode = DIGCL_ATTENTION_TILED;
    else if (name && strcmp(name, "naive") == 0) *mode = DIGCL_ATTENTION_NAIVE;
    else return -1;
    return 0;
}

const char *digcl_activation_mode_name(digcl_activation_mode mode) {
    return mode == DIGCL_ACTIVATIONS_RECOMPUTE ? "recompute"
           : mode == DIGCL_ACTIVATIONS_KEEP    ? "keep"
                                               : "?";
}

int digcl_activation_mode_parse(const char *name, digcl_activation_mode *mode) {
    if (name && strcmp(name, "recompute") == 0) *mode = DIGCL_ACTIVATIONS_RECOMPUTE;
    else if (name && strcmp(name, "keep") == 0) *mode = DIGCL_ACTIVATIONS_KEEP;
    else return -1;
    return 0;
}

/* ------------------------------------------------------------ derivation */

/* fla GLAMLP (hidden_ratio 4): int(D*4*2/3) rounded up to a multiple of 256. */
static int swiglu_hidden(int hidden_size) {
    int raw = (int)((long long)hidden_size * 8 / 3);
    return 256 * ((raw + 255) / 256);
}

static int check_positive(const char *what, int value, digcl_config_error *err) {
    if (value < 1) return fail(err, "model config: %s must be positive, got %d", what, value);
    return 0;
}

/* U-DiG (docs/MODEL.md "U-DiG"): five stages of depth/5 blocks, patch 1, two grid halvings. */
static int check_udig(const digcl_model_config *c, digcl_config_error *err) {
    if (c->depth % DIGCL_UDIG_STAGES != 0)
        return fail(err,
                    "model config: U-DiG depth %d is not a multiple of 5 (five stages of "
                    "depth/5 blocks)",
                    c->depth);
    if (c->patch_size != 1)
        return fail(err, "model config: U-DiG uses patch_size 1, got %d", c->patch_size);
    if (c->input_size % 4 != 0)
        return fail(err,
                    "model config: U-DiG input_size %d is not a multiple of 4 (the grid is "
                    "halved twice)",
                    c->input_size);
    if (c->skip || c->skip_zero_init)
        return fail(err, "model config: U-DiG has its own skips; the DiG long skips (skip) must "
                         "be false");
    return 0;
}

static int check_fields(const digcl_model_config *c, digcl_config_error *err) {
    if (c->arch != DIGCL_ARCH_DIG && c->arch != DIGCL_ARCH_DIT && c->arch != DIGCL_ARCH_UDIG)
        return fail(err, "model config: arch must be dig, dit or udig");
    if (check_positive("depth", c->depth, err) ||
        check_positive("hidden_size", c->hidden_size, err) ||
        check_positive("num_heads", c->num_heads, err) ||
        check_positive("patch_size", c->patch_size, err) ||
        check_positive("input_size", c->input_size, err) ||
        check_positive("in_channels", c->in_channels, err) ||
        check_positive("num_classes", c->num_classes, err))
        return -1;
    if (c->hidden_size > (1 << 16) || c->depth > 1024 || c->input_size > (1 << 14) ||
        c->in_channels > 4096 || c->num_classes > (1 << 24))
        return fail(err, "model config: sizes out of range (hidden_size <= 65536, depth <= 1024, "
                         "input_size <= 16384, in_channels <= 4096, num_classes <= 16777216)");
    if (c->input_size % c->patch_size != 0)
        return fail(err, "model config: input_size %d is not a multiple of patch_size %d",
                    c->input_size, c->patch_size);
    int gla = digcl_arch_has_dig_blocks(c->arch);
    int qk = gla ? c->hidden_size / 2 : c->hidden_size;
    if (c->hidden_size % c->num_heads != 0 || (gla && c->hidden_size % 2) || qk % c->num_heads != 0)
        return fail(err, "model config: hidden_size %d does not split into %d heads%s",
                    c->hidden_size, c->num_heads,
                    gla ? " (DiG needs D/2 and D divisible by heads)" : "");
    if (c->arch == DIGCL_ARCH_DIT && (c->skip || c->skip_zero_init))
        return fail(err, "model config: long skips exist only for DiG, not DiT");
    if (c->attention != DIGCL_ATTENTION_TILED && c->attention != DIGCL_ATTENTION_NAIVE)
        return fail(err, "model config: attention must be tiled or naive");
    if (c->activations != DIGCL_ACTIVATIONS_RECOMPUTE && c->activations != DIGCL_ACTIVATIONS_KEEP)
        return fail(err, "model config: activations must be recompute or keep");
    if (c->attention == DIGCL_ATTENTION_NAIVE && c->arch != DIGCL_ARCH_DIT)
        return fail(err,
                    "model config: attention \"naive\" exists only for DiT (DiG and U-DiG blocks "
                    "use gated linear attention, which has no [T, T] softmax)");
    if (c->arch == DIGCL_ARCH_UDIG) return check_udig(c, err);
    return 0;
}

/* Sizes the kernels cannot run are refused here, naming the limit, rather than
 * when a kernel is built. Products are formed in 64 bits. */
static int check_kernel_limits(const digcl_model_config *c, digcl_config_error *err) {
    const int64_t int_max = INT_MAX;
    int64_t tokens = (int64_t)c->grid * c->grid;
    int64_t features = (int64_t)c->patch_size * c->patch_size * c->out_channels;
    int64_t patch_in = (int64_t)c->patch_size * c->patch_size * c->in_channels;
    int64_t widest = 2 * (int64_t)c->mlp_hidden;
    int64_t wider[] = {(c->arch == DIGCL_ARCH_UDIG ? 4 : 3) * (int64_t)c->hidden_size,
                       2 * (int64_t)c->qk_dim + 2 * c->hidden_size + 16, features, patch_in};
    for (size_t i = 0; i < sizeof wider / sizeof wider[0]; i++)
        if (wider[i] > widest) widest = wider[i];
    if (features > int_max || patch_in > int_max || features * c->hidden_size > int_max ||
        patch_in * c->hidden_size > int_max)
        return fail(
            err,
            "model config: patch_size %d gives %lld patch features per token, too many for the "
            "kernels' 32-bit indices (at most %d elements per weight)",
            c->patch_size, (long long)(features > patch_in ? features : patch_in), INT_MAX);
    if (tokens * widest > int_max)
        return fail(
            err,
            "model config: %lld tokens x %lld features per token exceed the %d elements the kernels "
            "index with 32-bit ints even at batch 1; use a smaller input_size or a larger patch_size",
            (long long)tokens, (long long)widest, INT_MAX);
    if (!digcl_norm_width_supported(c->hidden_size))
        return fail(
            err,
            "model config: hidden_size %d is wider than the norm kernels' rows (at most %d, or %d "
            "when not a multiple of 4)",
            c->hidden_size, 4 * DIGCL_NORM_MAX_ROW_VECTORS, DIGCL_NORM_MAX_ROW_VECTORS);
    if (digcl_arch_has_dig_blocks(c->arch) && !digcl_norm_width_supported(c->head_v_dim))
        return fail(
            err,
            "model config: head value dim %d (hidden_size / num_heads) is wider than the norm "
            "kernels' rows",
            c->head_v_dim);
    if (c->arch == DIGCL_ARCH_DIT &&
        (c->head_v_dim % 4 != 0 || c->head_v_dim > DIGCL_ATTENTION_MAX_HEAD_DIM))
        return fail(
            err,
            "model config: DiT head dim %d (hidden_size / num_heads) must be a multiple of 4 and at "
            "most %d (attention kernel)",
            c->head_v_dim, DIGCL_ATTENTION_MAX_HEAD_DIM);
    return 0;
}

static void derive(digcl_model_config *c) {
    c->learn_sigma = c->learn_sigma != 0;
    c->skip = c->skip != 0;
    c->skip_zero_init = c->skip && c->skip_zero_init;
    c->qk_dim = digcl_arch_has_dig_blocks(c->arch) ? c->hidden_size / 2 : c->hidden_size;
    c->v_dim = c->hidden_size;
    c->head_qk_dim = c->qk_dim / c->num_heads;
    c->head_v_dim = c->v_dim / c->num_heads;
    c->mlp_hidden =
        digcl_arch_has_dig_blocks(c->arch) ? swiglu_hidden(c->hidden_size) : 4 * c->hidden_size;
    c->out_channels = c->learn_sigma ? 2 * c->in_channels : c->in_channels;
    c->grid = c->input_size / c->patch_size;
    c->tokens = c->grid * c->grid;
    c->n_skip = 0;
    for (int i = 0; c->skip && i < c->depth; i++) c->n_skip += i > c->depth / 2;
}

int digcl_model_config_finish(digcl_model_config *c, digcl_config_error *err) {
    if (check_fields(c, err) != 0) return -1;
    derive(c);
    return check_kernel_limits(c, err);
}

/* ------------------------------------------------------------ presets */

static const struct {
    const char *size;
    int depth, hidden, heads_dig, heads_dit;
} sizes[] = {
    {"S", 12, 384, 6, 6},
    {"B", 12, 768, 12, 12},
    {"L", 24, 1024, 16, 16},
    {"XL", 28, 1152, 18, 16},
};

static const char *const preset_names[] = {
    "DiG-S/2",      "DiG-S/4",       "DiG-S/8",       "DiG-B/2",       "DiG-B/4",
    "DiG-B/8",      "DiG-L/2",       "DiG-L/4",       "DiG-L/8",       "DiG-XL/2",
    "DiG-XL/4",     "DiG-XL/8",      "DiG-S/2-skip",  "DiG-S/4-skip",  "DiG-S/8-skip",
    "DiG-B/2-skip", "DiG-B/4-skip",  "DiG-B/8-skip",  "DiG-L/2-skip",  "DiG-L/4-skip",
    "DiG-L/8-skip", "DiG-XL/2-skip", "DiG-XL/4-skip", "DiG-XL/8-skip", "DiT-S/2",
    "DiT-S/4",      "DiT-S/8",       "DiT-B/2",       "DiT-B/4",       "DiT-B/8",
    "DiT-L/2",      "DiT-L/4",       "DiT-L/8",       "DiT-XL/2",      "DiT-XL/4",
    "DiT-XL/8",     "U-DiG-S",       "U-DiG-B",       "U-DiG-L",       "U-DiG-XL",
    NULL,
};

const char *const *digcl_model_config_preset_names(void) { return preset_names; }

/* Suffix after "DiG-<size>/<p>": "", "-skip", "-skipzero", upstream's
 * "-bid-layer-dwconv-qdir[-head18][-skip|-skipzero]". Sets skip flags. */
static int parse_dig_suffix(const char *s, int is_xl, digcl_model_config *c) {
    static const char upstream[] = "-bid-layer-dwconv-qdir";
    if (strncmp(s, upstream, sizeof upstream - 1) == 0) {
        s += sizeof upstream - 1;
        if (is_xl && strncmp(s, "-head18", 7) == 0) s += 7;
        else if (is_xl) return -1; /* upstream only registers XL with 18 heads */
    }
    if (strcmp(s, "") == 0) return 0;
    if (strcmp(s, "-skip") == 0) c->skip = 1;
    else if (strcmp(s, "-skipzero") == 0) c->skip = c->skip_zero_init = 1;
    else return -1;
    return 0;
}

/* Every preset: 32x32x4 latents (256 px), 1000 classes, learned variance. */
static void set_preset_data(digcl_model_config *c) {
    c->input_size = 32;
    c->in_channels = 4;
    c->num_classes = 1000;
    c->learn_sigma = 1;
}

/* U-DiG-<size>: the plain model's width and heads, depth the multiple of five at
 * or above the plain depth (15 15 25 30), patch 1 (docs/MODEL.md "U-DiG"). */
static int parse_udig_preset(const char *size, digcl_model_config *c) {
    int k = 0, n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    while (k < n_sizes && strcmp(sizes[k].size, size) != 0) k++;
    if (k == n_sizes) return -1;
    c->arch = DIGCL_ARCH_UDIG;
    c->depth = (sizes[k].depth + DIGCL_UDIG_STAGES - 1) / DIGCL_UDIG_STAGES * DIGCL_UDIG_STAGES;
    c->hidden_size = sizes[k].hidden;
    c->num_heads = sizes[k].heads_dig;
    c->patch_size = 1;
    set_preset_data(c);
    return 0;
}

static int parse_preset(const char *name, digcl_model_config *c) {
    memset(c, 0, sizeof *c);
    if (strncmp(name, "U-DiG-", 6) == 0) return parse_udig_preset(name + 6, c);
    if (strncmp(name, "DiG-", 4) == 0) c->arch = DIGCL_ARCH_DIG;
    else if (strncmp(name, "DiT-", 4) == 0) c->arch = DIGCL_ARCH_DIT;
    else return -1;
    const char *slash = strchr(name + 4, '/');
    if (!slash) return -1;
    size_t size_len = (size_t)(slash - (name + 4));
    int k = 0, n_sizes = (int)(sizeof sizes / sizeof sizes[0]);
    while (k < n_sizes &&
           (strlen(sizes[k].size) != size_len || strncmp(sizes[k].size, name + 4, size_len) != 0))
        k++;
    if (k == n_sizes || (slash[1] != '2' && slash[1] != '4' && slash[1] != '8')) return -1;
    c->depth = sizes[k].depth;
    c->hidden_size = sizes[k].hidden;
    c->num_heads = c->arch == DIGCL_ARCH_DIG ? sizes[k].heads_dig : sizes[k].heads_dit;
    c->patch_size = slash[1] - '0';
    set_preset_data(c);
    if (c->arch == DIGCL_ARCH_DIT) return slash[2] == '\0' ? 0 : -1;
    return parse_dig_suffix(slash + 2, strcmp(sizes[k].size, "XL") == 0, c);
}

int digcl_model_config_preset(const char *name, digcl_model_config *cfg, digcl_config_error *err) {
    if (!name || parse_preset(name, cfg) != 0)
        return fail(err,
                    "unknown model preset '%s' (expected DiG-S/2, DiG-B/4, DiG-L/2-skip, "
                    "DiT-XL/2, U-DiG-S, ...: DiG|DiT, size S|B|L|XL, patch 2|4|8, DiG may add "
                    "-skip; U-DiG-S|B|L|XL)",
                    name ? name : "(null)");
    return digcl_model_config_finish(cfg, err);
}

/* ------------------------------------------------------------ JSON */

char *digcl_model_config_to_json(const digcl_model_config *c) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "arch", digcl_arch_name(c->arch));
    cJSON_AddNumberToObject(root, "depth", c->depth);
    cJSON_AddNumberToObject(root, "hidden_size", c->hidden_size);
    cJSON_AddNumberToObject(root, "num_heads", c->num_heads);
    cJSON_AddNumberToObject(root, "patch_size", c->patch_size);
    cJSON_AddNumberToObject(root, "input_size", c->input_size);
    cJSON_AddNumberToObject(root, "in_channels", c->in_channels);
    cJSON_AddNumberToObject(root, "num_classes", c->num_classes);
    cJSON_AddBoolToObject(root, "learn_sigma", c->learn_sigma != 0);
    cJSON_AddBoolToObject(root, "skip", c->skip != 0);
    if (c->skip_zero_init) cJSON_AddBoolToObject(root, "skip_zero_init", 1);
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text) return NULL;
    char *copy = malloc(strlen(text) + 1); /* plain malloc'ed, freed with free() */
    if (copy) strcpy(copy, text);
    cJSON_free(text);
    return copy;
}

typedef struct json_int_field {
    const char *key;
    int *target;
} json_int_field;

static int read_int(const cJSON *root, const char *key, int *out, digcl_config_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item) return fail(err, "dig.config: missing \"%s\"", key);
    double d = item->valuedouble;
    if (!cJSON_IsNumber(item) || !(d >= -2147483647.0 && d <= 2147483647.0) || d != (double)(int)d)
        return fail(err, "dig.config: \"%s\" must be an integer", key);
    *out = (int)d;
    return 0;
}

static int read_bool(const cJSON *root, const char *key, int required, int *out,
                     digcl_config_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!item && !required) return 0;
    if (!item) return fail(err, "dig.config: missing \"%s\"", key);
    if (!cJSON_IsBool(item)) return fail(err, "dig.config: \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(item);
    return 0;
}

static int read_arch(const cJSON *root, digcl_arch *arch, digcl_config_error *err) {
    const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, "arch");
    if (!item) return fail(err, "dig.config: missing \"arch\"");
    if (cJSON_IsString(item) && strcmp(item->valuestring, "dig") == 0) *arch = DIGCL_ARCH_DIG;
    else if (cJSON_IsString(item) && strcmp(item->valuestring, "dit") == 0) *arch = DIGCL_ARCH_DIT;
    else if (cJSON_IsString(item) && strcmp(item->valuestring, "udig") == 0)
        *arch = DIGCL_ARCH_UDIG;
    else return fail(err, "dig.config: \"arch\" must be \"dig\", \"dit\" or \"udig\"");
    return 0;
}

static int check_known_keys(const cJSON *root, digcl_config_error *err) {
    static const char *const known[] = {"arch",        "depth",      "hidden_size",   "num_heads",
                                        "patch_size",  "input_size", "in_channels",   "num_classes",
                                        "learn_sigma", "skip",       "skip_zero_init"};
    for (const cJSON *e = root->child; e; e = e->next) {
        size_t k = 0, n = sizeof known / sizeof known[0];
        while (k < n && strcmp(known[k], e->string) != 0) k++;
        if (k == n) return fail(err, "dig.config: unknown key \"%.64s\"", e->string);
        for (const cJSON *prior = root->child; prior != e; prior = prior->next)
            if (strcmp(prior->string, e->string) == 0)
                return fail(err, "dig.config: key \"%s\" appears twice", e->string);
    }
    return 0;
}

static int read_fields(const cJSON *root, digcl_model_config *c, digcl_config_error *err) {
    const json_int_field ints[] = {
        {"depth", &c->depth},
        {"hidden_size", &c->hidden_size},
        {"num_heads", &c->num_heads},
        {"patch_size", &c->patch_size},
        {"input_size", &c->input_size},
        {"in_channels", &c->in_channels},
        {"num_classes", &c->num_classes},
    };
    if (check_known_keys(root, err) || read_arch(root, &c->arch, err)) return -1;
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (read_int(root, ints[i].key, ints[i].target, err) != 0) return -1;
    if (read_bool(root, "learn_sigma", 1, &c->learn_sigma, err) ||
        read_bool(root, "skip", 1, &c->skip, err) ||
        read_bool(root, "skip_zero_init", 0, &c->skip_zero_init, err))
        return -1;
    return 0;
}

int digcl_model_config_from_json(const char *json, digcl_model_config *cfg,
                                 digcl_config_error *err) {
    memset(cfg, 0, sizeof *cfg);
    cJSON *root = json ? cJSON_Parse(json) : NULL;
    int status = 0;
    if (!cJSON_IsObject(root))
        status = fail(err, "dig.config: not a JSON object: %.80s", json ? json : "(null)");
    if (status == 0) status = read_fields(root, cfg, err);
    cJSON_Delete(root);
    if (status == 0) status = digcl_model_config_finish(cfg, err);
    return status;
}

/* ------------------------------------------------------------ parameter table */

const char *digcl_param_init_name(digcl_param_init init) {
    static const char *const names[] = {"xavier",      "xavier_gla",   "zero",
                                        "one",         "normal_0.02",  "sincos_2d",
                                        "dw_identity", "skip_identity"};
    return (int)init >= 0 && init <= DIGCL_INIT_SKIP_IDENTITY ? names[init] : "?";
}

typedef struct table_builder {
    digcl_param_table *table;
    int failed;
} table_builder;

/* Appends name (printf-style) with `rank` dims. */
static void add_param(table_builder *b, digcl_param_init init, int trainable, int rank,
                      const int64_t *shape, const char *format, ...) DIGCL_PRINTF(6, 7);

static void add_param(table_builder *b, digcl_param_init init, int trainable, int rank,
                      const int64_t *shape, const char *format, ...) {
    if (b->failed) return;
    char name[DIGCL_PARAM_NAME_SIZE];
    va_list args;
    va_start(args, format);
    vsnprintf(name, sizeof name, format, args);
    va_end(args);
    if (digcl_param_table_add(b->table, name, rank, shape, trainable, (int)init) < 0) b->failed = 1;
}

#define SHAPE(...)        ((const int64_t[]){__VA_ARGS__})
#define LINEAR_W(out, in) 2, SHAPE((int64_t)(out), (int64_t)(in))
#define VECTOR(n)         1, SHAPE((int64_t)(n))

/* pos_embed [1, T, D], x_embedder [D, C, p, p], t_embedder, y_embedder [K+1, D]. */
static void add_embedders(table_builder *b, const digcl_model_config *c) {
    int64_t d = c->hidden_size, p = c->patch_size;
    add_param(b, DIGCL_INIT_SINCOS_2D, 0, 3, SHAPE(1, c->tokens, d), "pos_embed");
    add_param(b, DIGCL_INIT_XAVIER, 1, 4, SHAPE(d, c->in_channels, p, p), "x_embedder.proj.weight");
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "x_embedder.proj.bias");
    add_param(b, DIGCL_INIT_NORMAL_002, 1, LINEAR_W(d, DIGCL_TIMESTEP_FREQUENCY_DIM),
              "t_embedder.mlp.0.weight");
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "t_embedder.mlp.0.bias");
    add_param(b, DIGCL_INIT_NORMAL_002, 1, LINEAR_W(d, d), "t_embedder.mlp.2.weight");
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "t_embedder.mlp.2.bias");
    add_param(b, DIGCL_INIT_NORMAL_002, 1, LINEAR_W(c->num_classes + 1, d),
              "y_embedder.embedding_table.weight");
}

/* GLA token mixer: q,k [Dk, D]; v,g,o [D, D]; gk_proj D->16->Dk; RMSNorm weight [dv]. */
static void add_gla(table_builder *b, const digcl_model_config *c, int i) {
    int64_t d = c->hidden_size, dk = c->qk_dim, r = DIGCL_GLA_GATE_LOW_RANK;
    add_param(b, DIGCL_INIT_XAVIER_GLA, 1, LINEAR_W(dk, d), "blocks.%d.attn.q_proj.weight", i);
    add_param(b, DIGCL_INIT_XAVIER_GLA, 1, LINEAR_W(dk, d), "blocks.%d.attn.k_proj.weight", i);
    add_param(b, DIGCL_INIT_XAVIER_GLA, 1, LINEAR_W(c->v_dim, d), "blocks.%d.attn.v_proj.weight",
              i);
    add_param(b, DIGCL_INIT_XAVIER_GLA, 1, LINEAR_W(c->v_dim, d), "blocks.%d.attn.g_proj.weight",
              i);
    add_param(b, DIGCL_INIT_XAVIER_GLA, 1, LINEAR_W(r, d), "blocks.%d.attn.gk_proj.0.weight", i);
    add_param(b, DIGCL_INIT_XAVIER_GLA, 1, LINEAR_W(dk, r), "blocks.%d.attn.gk_proj.1.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(dk), "blocks.%d.attn.gk_proj.1.bias", i);
    add_param(b, DIGCL_INIT_XAVIER_GLA, 1, LINEAR_W(d, c->v_dim), "blocks.%d.attn.o_proj.weight",
              i);
    add_param(b, DIGCL_INIT_ONE, 1, VECTOR(c->head_v_dim),
              "blocks.%d.attn.g_norm_swish_gate.weight", i);
}

static void add_dig_block(table_builder *b, const digcl_model_config *c, int i) {
    int64_t d = c->hidden_size, f = c->mlp_hidden;
    add_gla(b, c, i);
    add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(2 * f, d), "blocks.%d.mlp.gate_proj.weight", i);
    add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(d, f), "blocks.%d.mlp.down_proj.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, LINEAR_W(6 * d, d), "blocks.%d.adaLN_modulation.1.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(6 * d), "blocks.%d.adaLN_modulation.1.bias", i);
    add_param(b, DIGCL_INIT_DW_IDENTITY, 1, 4, SHAPE(d, 1, 3, 3), "blocks.%d.dw_conv.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "blocks.%d.dw_conv.bias", i);
    if (c->skip && i > c->depth / 2) {
        add_param(b, c->skip_zero_init ? DIGCL_INIT_SKIP_IDENTITY : DIGCL_INIT_XAVIER, 1,
                  LINEAR_W(d, 2 * d), "blocks.%d.skip_linear.weight", i);
        add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "blocks.%d.skip_linear.bias", i);
    }
}

/* DiT block: fused qkv [3D, D], proj, GELU MLP fc1 [4D, D], fc2, adaLN [6D, D]. */
static void add_dit_block(table_builder *b, const digcl_model_config *c, int i) {
    int64_t d = c->hidden_size, f = c->mlp_hidden;
    add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(3 * d, d), "blocks.%d.attn.qkv.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(3 * d), "blocks.%d.attn.qkv.bias", i);
    add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(d, d), "blocks.%d.attn.proj.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "blocks.%d.attn.proj.bias", i);
    add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(f, d), "blocks.%d.mlp.fc1.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(f), "blocks.%d.mlp.fc1.bias", i);
    add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(d, f), "blocks.%d.mlp.fc2.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "blocks.%d.mlp.fc2.bias", i);
    add_param(b, DIGCL_INIT_ZERO, 1, LINEAR_W(6 * d, d), "blocks.%d.adaLN_modulation.1.weight", i);
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(6 * d), "blocks.%d.adaLN_modulation.1.bias", i);
}

/* Final layer: linear [p*p*out, D], adaLN [2D, D]; all zero-initialised. */
static void add_final_layer(table_builder *b, const digcl_model_config *c) {
    int64_t d = c->hidden_size;
    int64_t out = (int64_t)c->patch_size * c->patch_size * c->out_channels;
    add_param(b, DIGCL_INIT_ZERO, 1, LINEAR_W(out, d), "final_layer.linear.weight");
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(out), "final_layer.linear.bias");
    add_param(b, DIGCL_INIT_ZERO, 1, LINEAR_W(2 * d, d), "final_layer.adaLN_modulation.1.weight");
    add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(2 * d), "final_layer.adaLN_modulation.1.bias");
}

/* U-DiG stage transitions (docs/MODEL.md "U-DiG"), before the first block of stage
 * `stage`: downsample.k [D, 4D] after encoder stage k+1; upsample.k [4D, D]
 * then skip_fuse.k [D, 2D] before decoder stages 2 and 1. */
static void add_udig_transition(table_builder *b, const digcl_model_config *c, int stage) {
    int64_t d = c->hidden_size;
    if (stage == 1 || stage == 2) {
        add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(d, 4 * d), "downsample.%d.weight", stage - 1);
        add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "downsample.%d.bias", stage - 1);
    } else if (stage == 3 || stage == 4) {
        add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(4 * d, d), "upsample.%d.weight", stage - 3);
        add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(4 * d), "upsample.%d.bias", stage - 3);
        add_param(b, DIGCL_INIT_XAVIER, 1, LINEAR_W(d, 2 * d), "skip_fuse.%d.weight", stage - 3);
        add_param(b, DIGCL_INIT_ZERO, 1, VECTOR(d), "skip_fuse.%d.bias", stage - 3);
    }
}

int digcl_param_table_build(const digcl_model_config *cfg, digcl_param_table *table) {
    table_builder b = {table, 0};
    memset(table, 0, sizeof *table);
    add_embedders(&b, cfg);
    int stage_depth = digcl_udig_stage_depth(cfg);
    for (int i = 0; i < cfg->depth; i++) {
        if (stage_depth && i % stage_depth == 0) add_udig_transition(&b, cfg, i / stage_depth);
        if (digcl_arch_has_dig_blocks(cfg->arch)) add_dig_block(&b, cfg, i);
        else add_dit_block(&b, cfg, i);
    }
    add_final_layer(&b, cfg);
    if (b.failed) {
        digcl_param_table_free(table);
        return -1;
    }
    return 0;
}
