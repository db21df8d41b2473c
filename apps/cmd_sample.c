/* `digcl sample`: a checkpoint to images. Flags and checks here (everything
 * that can be wrong with the inputs is found before the device opens), the
 * inputs in sample_inputs.c, the outputs in sample_output.c, the samplers in
 * src/diffusion/ (include/digcl/diffusion.h). Spec: docs/SAMPLING.md. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "digcl/file.h"
#include "digcl/log.h"
#include "digcl/vae.h"
#include "digcl/runtime.h"
#include "sample.h"

void usage_sample(void) {
    printf(
        "usage: digcl sample --ckpt W.safetensors [model flags] [-n 64] [--class-labels 0,1,2|random|all]\n"
        "                    [--first-image 0] [--sampler ddpm|ddim|dpm++2m] [--steps 250] [--eta 0] [--cfg-scale 4.0]\n"
        "                    [--cfg-channels auto|first3|all] [--seed 0] [--batch 32] [-o samples.png]\n"
        "                    [--output-dir DIR] [--npz samples.npz] [--output-latents X0.safetensors]\n"
        "                    [--grid-rows R] [--grid-scale K] [--crop auto|none|N] [--class-names a,b,..]\n"
        "                    [--noise-file NOISE.safetensors] [--weights ema|model]\n"
        "                    [--vae FILE | --taesd FILE] [--vae-scale 0.18215] [-q]\n\n"
        "Draws n class-conditional samples from the checkpoint's model. Every draw of image i is\n"
        "addressed by (--seed, i): an image does not depend on --batch or on the other images, and\n"
        "--seed S --first-image I -n 1 draws image I of a run with --seed S again.\n"
        "  --first-image I    number the images from I (000I.png ...; split a large run)\n"
        "  -n N               images (default 64; or the length of a --class-labels list, or the\n"
        "                     noise file's N)\n"
        "  --class-labels L   a comma list (repeated to fill n), random (seeded), or all (n / K per\n"
        "                     class in class order: with n = 10 K the grid has one row per class)\n"
        "  --sampler S        ddpm (upstream's p_sample_loop), ddim (--eta), dpm++2m (DPM-Solver++ 2M)\n"
        "  --steps S          respaced steps in [1, 1000] (default 250; 20-25 suit dpm++2m)\n"
        "  --cfg-scale s      classifier-free guidance, uncond + s (cond - uncond); 1 = off\n"
        "  --cfg-channels C   guided eps channels: auto (upstream: the first 3 of 4-channel latents,\n"
        "                     else all), first3, all\n"
        "  --batch B          images per sampler run (guidance runs 2B rows)\n"
        "  -o FILE            the grid PNG with class captions (default samples.png when neither\n"
        "                     --output-dir, --npz nor --output-latents is given)\n"
        "  --output-dir DIR   000000.png ... and labels.csv (created if missing)\n"
        "  --npz FILE         the ADM evaluator's archive: arr_0 uint8 [N, H, W, 3], arr_1 labels\n"
        "  --output-latents F the final samples x0 F32 [N, C, H, W] (latent models: the only output)\n"
        "  --grid-rows R      grid rows (default: one per class with --class-labels all, else square)\n"
        "  --grid-scale K     integer upscale of the grid cells (default: cells of 64 px or more)\n"
        "  --crop C           auto (32x32 grey IDX models such as Fashion-MNIST: the centre 28x28),\n"
        "                     none, or a side N (centred)\n"
        "  --class-names L    caption names, one per class (default: the checkpoint's train.args,\n"
        "                     Fashion-MNIST's names for a model trained on it, else the numbers)\n"
        "  --noise-file F     x_T F32 [N, C, H, W], z F32 [S, N, C, H, W] (S = --steps) and optionally\n"
        "                     y I64 [N] replace the RNG (checking a port against PyTorch)\n"
        "  --weights W        for a training checkpoint: ema (default) or model\n"
        "  --vae F, --taesd F latent models (4 channels): decode x0 / scale through the SD VAE\n"
        "                     (AutoencoderKL) or TAESD decoder in F into 8x larger RGB images\n"
        "  --vae-scale S      the latent scale the model was trained with (default 0.18215)\n"
        "  -q                 no progress bar\n"
        "Every PNG carries text chunks: \"parameters\" (Steps, Sampler, CFG scale, Seed, Size, Model\n"
        "hash, Model, Class) and \"digcl\" (JSON: version, checkpoint XXH3, model, every flag).\n"
        "Model flags (for a checkpoint without dig.config):\n");
    model_flags_usage(1);
    printf(
        "\nexample:\n"
        "  digcl sample --ckpt fmnist.safetensors -n 100 --class-labels all --cfg-scale 2 -o grid.png\n");
}

/* ------------------------------------------------------------ flags */

static void args_init(sample_args *a) {
    memset(a, 0, sizeof *a);
    model_flags_init(&a->model);
    a->n = -1;
    a->sampler = "ddpm";
    a->steps = 250;
    a->cfg_scale = 4.0;
    a->cfg_channels = "auto";
    a->batch = 32;
    a->grid_rows = -1;
    a->grid_scale = -1;
    a->vae_scale = DIGCL_VAE_SD_SCALE;
}

/* Flags that take a value; 1 when argv[*i] was one. */
static int take_value_flag(sample_args *a, int argc, char **argv, int *i) {
    const char *v = NULL;
    if (cli_option_value(argc, argv, i, "-n", &v))
        a->n = cli_parse_long("-n", v, 1, SAMPLE_MAX_IMAGES);
    else if (cli_option_value(argc, argv, i, "--class-labels", &v)) a->class_labels = v;
    else if (cli_option_value(argc, argv, i, "--class-names", &v)) a->class_names = v;
    else if (cli_option_value(argc, argv, i, "--sampler", &v)) a->sampler = v;
    else if (cli_option_value(argc, argv, i, "--steps", &v))
        a->steps = cli_parse_long("--steps", v, 1, DIGCL_DIFFUSION_STEPS);
    else if (cli_option_value(argc, argv, i, "--eta", &v))
        a->eta = cli_parse_double("--eta", v, 0.0, 1e3);
    else if (cli_option_value(argc, argv, i, "--cfg-scale", &v))
        a->cfg_scale = cli_parse_double("--cfg-scale", v, -1e6, 1e6);
    else if (cli_option_value(argc, argv, i, "--cfg-channels", &v)) a->cfg_channels = v;
    else if (cli_option_value(argc, argv, i, "--seed", &v))
        a->seed = (uint64_t)cli_parse_long("--seed", v, 0, 0x7fffffffffffffffL);
    else if (cli_option_value(argc, argv, i, "--first-image", &v))
        a->first_image = (uint64_t)cli_parse_long("--first-image", v, 0, 0xffffffffL);
    else if (cli_option_value(argc, argv, i, "--batch", &v))
        a->batch = cli_parse_long("--batch", v, 1, 65536);
    else if (cli_option_value(argc, argv, i, "-o", &v)) a->grid_path = v, a->grid_given = 1;
    else if (cli_option_value(argc, argv, i, "--output-dir", &v)) a->output_dir = v;
    else if (cli_option_value(argc, argv, i, "--npz", &v)) a->npz_path = v;
    else if (cli_option_value(argc, argv, i, "--output-latents", &v)) a->latents_path = v;
    else if (cli_option_value(argc, argv, i, "--noise-file", &v)) a->noise_path = v;
    else if (cli_option_value(argc, argv, i, "--grid-rows", &v))
        a->grid_rows = cli_parse_long("--grid-rows", v, 1, SAMPLE_MAX_IMAGES);
    else if (cli_option_value(argc, argv, i, "--grid-scale", &v))
        a->grid_scale = cli_parse_long("--grid-scale", v, 1, 64);
    else if (cli_option_value(argc, argv, i, "--crop", &v)) a->crop = v;
    else if (cli_option_value(argc, argv, i, "--weights", &v)) a->weights = v;
    else if (cli_option_value(argc, argv, i, "--vae", &v)) a->vae_path = v;
    else if (cli_option_value(argc, argv, i, "--taesd", &v)) a->taesd_path = v;
    else if (cli_option_value(argc, argv, i, "--vae-scale", &v))
        a->vae_scale = cli_parse_double("--vae-scale", v, 1e-6, 1e6);
    else return 0;
    return 1;
}

static int check_choice(const char *flag, const char *value, const char *const *choices) {
    for (int k = 0; choices[k]; k++)
        if (strcmp(value, choices[k]) == 0) return k;
    fprintf(stderr, "digcl sample: %s expects", flag);
    for (int k = 0; choices[k]; k++) fprintf(stderr, "%s %s", k ? "," : "", choices[k]);
    fprintf(stderr, "; got '%s'\n", value);
    return -1;
}

static int parse_args(int argc, char **argv, sample_args *a, sample_plan *plan) {
    static const char *const samplers[] = {"ddpm", "ddim", "dpm++2m", NULL};
    static const char *const channels[] = {"auto", "first3", "all", NULL};
    static const char *const weights[] = {"ema", "model", NULL};
    args_init(a);
    for (int i = 1; i < argc; i++) {
        if (model_flags_take(&a->model, argc, argv, &i) || take_value_flag(a, argc, argv, &i))
            continue;
        if (strcmp(argv[i], "-q") == 0 || strcmp(argv[i], "--quiet") == 0) a->quiet = 1;
        else cli_unknown_argument("sample", argv[i]);
    }
    int kind = check_choice("--sampler", a->sampler, samplers);
    int cfg = check_choice("--cfg-channels", a->cfg_channels, channels);
    if (kind < 0 || cfg < 0 || (a->weights && check_choice("--weights", a->weights, weights) < 0))
        return 2;
    if (a->vae_path && a->taesd_path) {
        fprintf(stderr, "digcl sample: give --vae or --taesd, not both\n");
        return 2;
    }
    if (!a->model.ckpt) {
        fprintf(stderr, "digcl sample: missing --ckpt W.safetensors (see `digcl sample --help`)\n");
        return 2;
    }
    if (!a->grid_path && !a->output_dir && !a->npz_path && !a->latents_path)
        a->grid_path = "samples.png";
    static const digcl_sampler_kind kinds[] = {DIGCL_SAMPLER_DDPM, DIGCL_SAMPLER_DDIM,
                                               DIGCL_SAMPLER_DPMPP_2M};
    static const digcl_cfg_channels modes[] = {DIGCL_CFG_AUTO, DIGCL_CFG_FIRST3, DIGCL_CFG_ALL};
    plan->options.kind = kinds[kind];
    plan->options.steps = (int)a->steps;
    plan->options.eta = (float)a->eta;
    plan->options.cfg_scale = (float)a->cfg_scale;
    plan->options.cfg_channels = modes[cfg];
    return 0;
}

/* The flags as resolved, for the "digcl" metadata. */
static char *flags_json(const sample_args *a, const sample_plan *plan) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ckpt", a->model.ckpt);
    if (a->model.model) cJSON_AddStringToObject(o, "model", a->model.model);
    cJSON_AddStringToObject(o, "weights", a->weights ? a->weights : "ema");
    cJSON_AddNumberToObject(o, "n", plan->n);
    cJSON_AddStringToObject(o, "class_labels",
                            plan->labels_from_noise ? "noise-file y"
                            : a->class_labels       ? a->class_labels
                                                    : "random");
    cJSON_AddStringToObject(o, "sampler", a->sampler);
    cJSON_AddNumberToObject(o, "steps", (double)a->steps);
    cJSON_AddNumberToObject(o, "eta", a->eta);
    cJSON_AddNumberToObject(o, "cfg_scale", a->cfg_scale);
    cJSON_AddStringToObject(o, "cfg_channels", a->cfg_channels);
    cJSON_AddNumberToObject(o, "seed", (double)a->seed);
    cJSON_AddNumberToObject(o, "first_image", (double)a->first_image);
    cJSON_AddNumberToObject(o, "batch", (double)a->batch);
    cJSON_AddNumberToObject(o, "crop", plan->crop);
    if (plan->decodes) cJSON_AddNumberToObject(o, "vae_scale", a->vae_scale);
    const char *paths[][2] = {{"vae", a->vae_path},         {"taesd", a->taesd_path},
                              {"o", a->grid_path},          {"output_dir", a->output_dir},
                              {"npz", a->npz_path},         {"output_latents", a->latents_path},
                              {"noise_file", a->noise_path}};
    for (size_t k = 0; k < sizeof paths / sizeof paths[0]; k++)
        if (paths[k][1]) cJSON_AddStringToObject(o, paths[k][0], paths[k][1]);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

/* Pixel models write images; latent models through --vae/--taesd, else only --output-latents. */
static int check_model_kind(const sample_args *a, sample_plan *plan) {
    int c = plan->config.in_channels;
    const char *decoder = a->vae_path ? a->vae_path : a->taesd_path;
    const char *flag = a->vae_path ? "--vae" : "--taesd";
    plan->pixel_model = c == 1 || c == 3;
    plan->decodes = c == SAMPLE_LATENT_CHANNELS && decoder;
    if (decoder && !plan->decodes) {
        fprintf(stderr,
                "digcl sample: %s: the model has %d input channels, not the %d of VAE latents\n",
                flag, c, SAMPLE_LATENT_CHANNELS);
        return 2;
    }
    if (decoder && access(decoder, R_OK) != 0) {
        fprintf(stderr, "digcl sample: %s %s: cannot be read\n", flag, decoder);
        return 2;
    }
    plan->writes_images = plan->pixel_model || plan->decodes;
    if (plan->writes_images) return 0;
    if (a->latents_path && !a->grid_given && !a->output_dir && !a->npz_path) return 0;
    fprintf(
        stderr,
        "digcl sample: the model has %d input channels, so its samples are latents: images need "
        "a decoder (--vae FILE or --taesd FILE for 4-channel SD latents). Without one, write "
        "them with --output-latents X0.safetensors (and no -o, --output-dir or --npz)\n",
        c);
    return 2;
}

static int hash_checkpoint(const char *path, sample_plan *plan) {
    uint64_t hash;
    char error[1024];
    if (digcl_file_xxh3(path, &hash, error, sizeof error) != 0) {
        fprintf(stderr, "digcl sample: %s\n", error);
        return 1;
    }
    snprintf(plan->ckpt_hash, sizeof plan->ckpt_hash, "%016" PRIx64, hash);
    return 0;
}

/* Everything that does not need the device, in the order that fails fastest. */
static int make_plan(int argc, char **argv, sample_args *a, sample_plan *plan) {
    int status = parse_args(argc, argv, a, plan);
    if (status == 0) status = model_flags_resolve(&a->model, "sample", &plan->config);
    if (status == 0) status = check_model_kind(a, plan);
    if (status == 0) status = sample_check_outputs(a);
    if (status == 0) status = sample_read_train_args(a->model.ckpt, plan);
    if (status == 0) status = sample_read_noise_file(a, plan);
    if (status == 0 && a->n > 0 && plan->n == 0) plan->n = (int)a->n;
    if (status == 0) status = sample_parse_labels(a, plan);
    if (status == 0) status = sample_class_names(a, plan);
    if (status == 0) status = sample_decide_crop(a, plan);
    if (status == 0 && model_flags_check_batch(
                           &plan->config, a->batch * (a->cfg_scale != 1.0 ? 2 : 1), "sample") != 0)
        status = 2;
    if (status == 0 && !(plan->args_json = flags_json(a, plan))) status = 1;
    if (status == 0) status = hash_checkpoint(a->model.ckpt, plan);
    return status;
}

/* ------------------------------------------------------------ progress */

typedef struct progress {
    int enabled; /* a terminal and not -q */
    int lines;   /* not a terminal and not -q: one line per batch */
    int images_done, images;
    int batch_index, batches;
    int steps_done_before; /* network steps of the finished batches */
    int steps_total;
    double start;
} progress;

static void format_duration(double s, char *out, size_t size) {
    long t = (long)(s + 0.5);
    if (t >= 3600) snprintf(out, size, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
    else snprintf(out, size, "%ld:%02ld", t / 60, t % 60);
}

/* After each finished step: `step` steps of this batch are done (1-based, diffusion.h). */
static void on_step(int step, int steps, void *user) {
    progress *p = user;
    int done = p->steps_done_before + step;
    double elapsed = digcl_seconds_now() - p->start, rate = elapsed > 0 ? done / elapsed : 0;
    char eta[32], speed[32], bar[31];
    int filled = (int)(30.0 * done / p->steps_total);
    for (int k = 0; k < 30; k++) bar[k] = k < filled ? '#' : '.';
    bar[30] = '\0';
    format_duration(rate > 0 ? (p->steps_total - done) / rate : 0, eta, sizeof eta);
    if (rate >= 1) snprintf(speed, sizeof speed, "%.1f it/s", rate);
    else snprintf(speed, sizeof speed, "%.2f s/it", rate > 0 ? 1 / rate : 0);
    fprintf(stderr, "\rsampling [%s] images %d/%d  step %d/%d  %s  ETA %s ", bar, p->images_done,
            p->images, step, steps, speed, eta);
    fflush(stderr);
}

/* ------------------------------------------------------------ the run */

typedef struct sample_run {
    digcl_context *ctx;
    digcl_model *model;
    digcl_diffusion *diffusion;
    digcl_sampler *sampler;
    float *x0;      /* [batch, C, H, W] */
    float *z_batch; /* [S, batch, C, H, W] (noise file) */
    digcl_vae *vae; /* --vae/--taesd decoder, or NULL */
    float *decoded; /* [batch, 3, 8H, 8W] (vae) */
} sample_run;

static void release_run(sample_run *r) {
    if (r->sampler) digcl_sampler_release(r->sampler);
    if (r->diffusion) digcl_diffusion_release(r->diffusion);
    if (r->model) digcl_model_release(r->model);
    if (r->vae) digcl_vae_free(r->vae);
    if (r->ctx) digcl_context_release(r->ctx);
    free(r->x0);
    free(r->z_batch);
    free(r->decoded);
}

/* The noise file's rows [first, first + rows) of every step into z_batch. */
static void gather_noise(const sample_plan *plan, const sample_run *r, int first, int rows,
                         size_t chw, digcl_sampler_noise *noise) {
    int steps = plan->options.steps;
    for (int s = 0; s < steps; s++)
        memcpy(r->z_batch + (size_t)s * (size_t)rows * chw,
               plan->noise_z + ((size_t)s * (size_t)plan->n + (size_t)first) * chw,
               (size_t)rows * chw * sizeof(float));
    noise->x_T = plan->noise_x_T + (size_t)first * chw;
    noise->z = r->z_batch;
}

/* x0 of one batch (decoded first for a latent model) into images (written to --output-dir at
 * once) and latents. */
static int keep_batch(const sample_args *a, const sample_plan *plan, const sample_run *r, int first,
                      int rows, sample_outputs *out) {
    const digcl_model_config *c = &plan->config;
    size_t chw = (size_t)c->in_channels * (size_t)c->input_size * (size_t)c->input_size;
    if (out->latents)
        memcpy(out->latents + (size_t)first * chw, r->x0, (size_t)rows * chw * sizeof(float));
    const float *pixels = r->x0; /* [rows, C, side, side] in [-1, 1] */
    int channels = c->in_channels, side = c->input_size;
    if (plan->decodes) {
        digcl_vae_decode(r->vae, NULL, rows, side, side, r->x0, (float)a->vae_scale, r->decoded);
        pixels = r->decoded, channels = 3, side *= 8;
    }
    size_t plane = (size_t)channels * (size_t)side * (size_t)side;
    for (int b = 0; plan->writes_images && b < rows; b++) {
        digcl_image *image = &out->images[first + b];
        if (digcl_image_alloc(image, plan->out_w, plan->out_h, plan->out_c) != 0) {
            fprintf(stderr, "digcl sample: out of host memory for image %d\n", first + b);
            return 1;
        }
        digcl_image_from_model(pixels + (size_t)b * plane, channels, side, side, plan->crop,
                               image->pixels);
        if (a->output_dir && sample_write_image(a, plan, image, first + b) != 0) return 1;
    }
    return 0;
}

/* The --vae/--taesd decoder and its output buffer for a batch. */
static int open_decoder(const sample_args *a, const sample_plan *plan, int batch, sample_run *r) {
    char error[1024];
    size_t side = 8 * (size_t)plan->config.input_size;
    digcl_vae_load_options options = {DIGCL_VAE_DECODER, NULL,
                                      a->vae_path ? DIGCL_VAE_KL : DIGCL_VAE_TAESD};
    r->vae = digcl_vae_load(r->ctx, a->vae_path ? a->vae_path : a->taesd_path, &options, error,
                            sizeof error);
    if (!r->vae) {
        fprintf(stderr, "digcl sample: %s %s\n", a->vae_path ? "--vae" : "--taesd", error);
        return 1;
    }
    r->decoded = malloc((size_t)batch * 3 * side * side * sizeof(float));
    if (r->decoded) return 0;
    fprintf(stderr, "digcl sample: out of host memory for %d decoded images\n", batch);
    return 1;
}

static int open_run(const cli_globals *globals, const sample_args *a, const sample_plan *plan,
                    int batch, sample_run *r) {
    const digcl_model_config *c = &plan->config;
    size_t chw = (size_t)c->in_channels * (size_t)c->input_size * (size_t)c->input_size;
    r->ctx = cli_open_context(globals);
    r->model = digcl_model_create(r->ctx, c);
    int status = sample_load_weights(r->model, a);
    if (status != 0) return status;
    r->diffusion = digcl_diffusion_create(r->ctx, c->learn_sigma);
    r->sampler = digcl_sampler_create(r->diffusion, r->model, &plan->options, batch);
    r->x0 = malloc((size_t)batch * chw * sizeof *r->x0);
    if (plan->noise_z)
        r->z_batch = malloc((size_t)plan->options.steps * (size_t)batch * chw * sizeof(float));
    if (plan->decodes && open_decoder(a, plan, batch, r) != 0) return 1;
    if (r->x0 && (!plan->noise_z || r->z_batch)) return 0;
    fprintf(stderr, "digcl sample: out of host memory for a batch of %d\n", batch);
    return 1;
}

/* Batches of at most --batch images; the last one runs on a planned sampler of its own size
 * only when it is smaller (images depend on their index alone, not on the batch). */
static int run_batches(const cli_globals *globals, const sample_args *a, const sample_plan *plan,
                       sample_outputs *out) {
    int batch = (int)(a->batch < plan->n ? a->batch : plan->n);
    sample_run r = {0};
    progress p = {!a->quiet && isatty(STDERR_FILENO),
                  !a->quiet && !isatty(STDERR_FILENO),
                  0,
                  plan->n,
                  0,
                  (plan->n + batch - 1) / batch,
                  0,
                  0,
                  0};
    int status = open_run(globals, a, plan, batch, &r);
    size_t chw = (size_t)plan->config.in_channels * (size_t)plan->config.input_size *
                 (size_t)plan->config.input_size;
    int steps = status == 0 ? digcl_sampler_step_count(r.sampler) : 0;
    p.steps_total = steps * p.batches;
    p.start = digcl_seconds_now();
    for (int first = 0; status == 0 && first < plan->n; first += batch, p.batch_index++) {
        int rows = plan->n - first < batch ? plan->n - first : batch;
        if (rows < batch) { /* the short last batch: a sampler planned for it */
            digcl_sampler_release(r.sampler);
            r.sampler = digcl_sampler_create(r.diffusion, r.model, &plan->options, rows);
        }
        digcl_sampler_noise noise = {a->seed, a->first_image + (uint64_t)first, NULL, NULL};
        if (plan->noise_x_T) gather_noise(plan, &r, first, rows, chw, &noise);
        digcl_sampler_run(r.sampler, plan->labels + first, &noise, r.x0, p.enabled ? on_step : NULL,
                          &p);
        p.images_done += rows;
        if (p.enabled) on_step(steps, steps, &p); /* the bar with this batch's images counted */
        p.steps_done_before += steps;
        status = keep_batch(a, plan, &r, first, rows, out);
        if (p.lines)
            fprintf(stderr, "digcl sample: %d/%d images, %.1f s\n", p.images_done, plan->n,
                    digcl_seconds_now() - p.start);
    }
    if (p.enabled) fprintf(stderr, "\n");
    release_run(&r);
    return status;
}

static void print_log(digcl_log_level level, const char *message, void *user) {
    const int *verbose = user;
    if (level >= DIGCL_LOG_NOTICE || *verbose) fprintf(stderr, "digcl sample: %s\n", message);
}

int cmd_sample(const cli_globals *globals, int argc, char **argv) {
    sample_args a;
    sample_plan plan = {0};
    int status = make_plan(argc, argv, &a, &plan);
    sample_outputs out = {0};
    if (status == 0) {
        out.images = plan.writes_images ? calloc((size_t)plan.n, sizeof *out.images) : NULL;
        size_t chw = (size_t)plan.config.in_channels * (size_t)plan.config.input_size *
                     (size_t)plan.config.input_size;
        out.latents = a.latents_path ? malloc((size_t)plan.n * chw * sizeof(float)) : NULL;
        if ((plan.writes_images && !out.images) || (a.latents_path && !out.latents)) {
            fprintf(stderr, "digcl sample: out of host memory for %d samples\n", plan.n);
            status = 1;
        }
    }
    int verbose = globals->verbose;
    digcl_log_handler previous = digcl_set_log_handler(print_log, &verbose);
    if (status == 0) status = run_batches(globals, &a, &plan, &out);
    if (status == 0) status = sample_write_collections(&a, &plan, &out);
    if (status == 0 && !a.quiet) {
        if (a.grid_path && plan.writes_images) printf("wrote %s\n", a.grid_path);
        if (a.output_dir && plan.writes_images)
            printf("wrote %s/000000.png ... and labels.csv\n", a.output_dir);
        if (a.npz_path) printf("wrote %s\n", a.npz_path);
        if (a.latents_path) printf("wrote %s\n", a.latents_path);
    }
    digcl_set_log_handler(previous, NULL);
    for (int i = 0; out.images && i < plan.n; i++) digcl_image_free(&out.images[i]);
    free(out.images);
    free(out.latents);
    sample_plan_free(&plan);
    return status;
}
