/* train_sample.c: EMA sample grids during training (apps/train_sample.h).
 * The EMA weights are used in place (digcl_model_use_params): nothing is
 * copied, and the model's training plan is selected again by the next step. */
#include "train_sample.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "digcl/image.h"
#include "digcl/log.h"

#define MAX_GRID_CLASSES 10
#define NAME_SIZE        64

struct train_sampler {
    digcl_sampler *sampler;
    digcl_model *model;
    const digcl_params *ema;
    int images, rows, channels, size, crop;
    uint64_t seed;
    int32_t *labels;    /* [images] */
    float *x0;          /* [images, C, H, W] */
    digcl_image *cells; /* [images] */
    char names[MAX_GRID_CLASSES][NAME_SIZE];
    const char *captions[MAX_GRID_CLASSES * 64];
    char folder[4096];
    char path[4200];
    char parameters[256];
};

/* Class k's name from the data set's comma list, else its number. */
static void class_name(const digcl_dataset_info *data, int k, char *out, size_t size) {
    const char *p = data->class_names;
    for (int i = 0; p && *p && i < k; ++i) {
        p = strchr(p, ',');
        if (p) p++;
    }
    if (!p || !*p) {
        snprintf(out, size, "%d", k);
        return;
    }
    size_t n = strcspn(p, ",");
    snprintf(out, size, "%.*s", (int)(n < size ? n : size - 1), p);
}

static void plan_labels(train_sampler *s, const train_sample_options *o,
                        const digcl_dataset_info *data, int num_classes) {
    s->rows = num_classes < MAX_GRID_CLASSES ? num_classes : MAX_GRID_CLASSES;
    s->images = s->rows * (int)o->per_class;
    for (int r = 0; r < s->rows; ++r) class_name(data, r, s->names[r], NAME_SIZE);
    for (int i = 0; i < s->images; ++i) {
        s->labels[i] = i / (int)o->per_class;
        s->captions[i] = s->names[s->labels[i]];
    }
}

train_sampler *train_sampler_create(const train_sample_options *o, digcl_diffusion *diffusion,
                                    digcl_trainer *trainer, const digcl_dataset_info *data,
                                    const char *run_dir, uint64_t seed) {
    if (o->every <= 0) return NULL;
    train_sampler *s = calloc(1, sizeof *s);
    if (!s) digcl_fatal("--sample-every: out of host memory");
    s->model = digcl_trainer_model(trainer);
    s->ema = digcl_trainer_ema(trainer);
    const digcl_model_config *c = digcl_model_get_config(s->model);
    if (c->in_channels != 1 && c->in_channels != 3) {
        digcl_log(DIGCL_LOG_WARNING,
                  "--sample-every: a model of %d channels (latents) needs a VAE to "
                  "turn samples into images; no grids are written (use digcl sample --vae)",
                  c->in_channels);
        free(s);
        return NULL;
    }
    s->labels = malloc(sizeof *s->labels * MAX_GRID_CLASSES * (size_t)o->per_class);
    if (!s->labels) digcl_fatal("--sample-every: out of host memory");
    plan_labels(s, o, data, c->num_classes > 0 ? c->num_classes : 1);
    s->channels = c->in_channels, s->size = c->input_size, s->seed = seed;
    /* 32x32 grey IDX images are 28x28 padded by 2 (docs/TRAINING.md "Data"). */
    s->crop = data->kind == DIGCL_DATASET_IDX && s->size == 32 && s->channels == 1 ? 28 : 0;
    const size_t chw = (size_t)s->channels * (size_t)s->size * (size_t)s->size;
    s->x0 = malloc(sizeof *s->x0 * chw * (size_t)s->images);
    s->cells = calloc((size_t)s->images, sizeof *s->cells);
    if (!s->x0 || !s->cells) digcl_fatal("--sample-every: out of host memory");
    const int side = s->crop ? s->crop : s->size, out_channels = s->channels == 1 ? 1 : 3;
    for (int i = 0; i < s->images; ++i)
        if (digcl_image_alloc(&s->cells[i], side, side, out_channels) != 0)
            digcl_fatal("--sample-every: out of host memory");
    const float guidance = c->num_classes > 0 ? (float)o->cfg_scale : 1.0f;
    const digcl_sampler_options so = {DIGCL_SAMPLER_DPMPP_2M, (int)o->steps, 0.0f, guidance,
                                      DIGCL_CFG_AUTO};
    s->sampler = digcl_sampler_create(diffusion, s->model, &so, s->images);
    snprintf(s->folder, sizeof s->folder, "%s/samples", run_dir);
    snprintf(s->parameters, sizeof s->parameters,
             "Steps: %ld, Sampler: dpm++2m, CFG scale: %g, Seed: %llu, Size: %dx%d, Weights: ema",
             o->steps, (double)guidance, (unsigned long long)seed, side, side);
    return s;
}

void train_sampler_release(train_sampler *s) {
    if (!s) return;
    digcl_sampler_release(s->sampler);
    for (int i = 0; i < s->images; ++i) digcl_image_free(&s->cells[i]);
    free(s->cells), free(s->x0), free(s->labels), free(s);
}

static const char *write_grid(train_sampler *s, int64_t step) {
    char error[1024];
    if (mkdir(s->folder, 0777) != 0 && errno != EEXIST) {
        digcl_log(DIGCL_LOG_WARNING, "--sample-every: cannot create %s: %s", s->folder,
                  strerror(errno));
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s/%07lld.png", s->folder, (long long)step);
    const digcl_grid_options g = {
        s->rows, s->cells[0].width >= 64 ? 1 : 2, 2,
        digcl_grid_has_captions() ? DIGCL_CAPTION_ROWS : DIGCL_CAPTION_NONE, s->captions};
    digcl_image grid = {0};
    const digcl_png_text text[] = {{"parameters", s->parameters}};
    const int failed =
        digcl_grid_compose(s->cells, s->images, &g, &grid, error, sizeof error) != 0 ||
        digcl_png_write(s->path, &grid, text, 1, error, sizeof error) != 0;
    if (failed) digcl_log(DIGCL_LOG_WARNING, "--sample-every: %s", error); /* training goes on */
    digcl_image_free(&grid);
    return failed ? NULL : s->path;
}

const char *train_sampler_write(train_sampler *s, int64_t step) {
    const digcl_sampler_noise noise = {s->seed, 0, NULL, NULL};
    digcl_model_use_params(s->model, s->ema);
    digcl_sampler_run(s->sampler, s->labels, &noise, s->x0, NULL, NULL);
    digcl_model_use_params(s->model, NULL);
    const size_t chw = (size_t)s->channels * (size_t)s->size * (size_t)s->size;
    for (int i = 0; i < s->images; ++i)
        digcl_image_from_model(s->x0 + chw * (size_t)i, s->channels, s->size, s->size, s->crop,
                               s->cells[i].pixels);
    return write_grid(s, step);
}
