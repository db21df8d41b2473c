/* apps/sample.h: what the parts of `digcl sample` share (cmd_sample.c: flags
 * and the run; sample_inputs.c: labels, class names, noise file and weights;
 * sample_output.c: PNG metadata, grid, individual files, npz, latents).
 * Spec: docs/SAMPLING.md. */
#ifndef DIGCL_APPS_SAMPLE_H
#define DIGCL_APPS_SAMPLE_H

#include <stddef.h>
#include <stdint.h>

#include "digcl/diffusion.h"
#include "digcl/image.h"
#include "digcl/model.h"
#include "model_flags.h"

#define SAMPLE_MAX_IMAGES      (1 << 20)
#define SAMPLE_MAX_CLASSES     100000
#define SAMPLE_LATENT_CHANNELS 4 /* SD VAE latents (--vae, --taesd) */

typedef struct sample_args {
    model_flags model;
    const char *weights;      /* --weights ema|model (training checkpoints) */
    long n;                   /* -n; -1: from --class-labels list or the noise file, else 64 */
    const char *class_labels; /* --class-labels 0,1,2|random|all (NULL: random) */
    const char *class_names;  /* --class-names a,b,c (NULL: train.args, else numbers) */
    const char *sampler;      /* --sampler ddpm|ddim|dpm++2m */
    long steps;               /* --steps */
    double eta;               /* --eta (ddim) */
    double cfg_scale;         /* --cfg-scale */
    const char *cfg_channels; /* --cfg-channels auto|first3|all */
    uint64_t seed;            /* --seed: the key of every draw */
    uint64_t first_image;     /* --first-image: the number of image 0 (draws are addressed by it) */
    long batch;               /* --batch: images per sampler run */
    const char
        *grid_path; /* -o (NULL: samples.png unless --output-dir/--npz/--output-latents only) */
    int grid_given; /* -o was given */
    const char *output_dir;   /* --output-dir */
    const char *npz_path;     /* --npz */
    const char *latents_path; /* --output-latents */
    const char *noise_path;   /* --noise-file */
    long grid_rows;           /* --grid-rows; -1: auto */
    long grid_scale;          /* --grid-scale; -1: auto */
    const char *crop;         /* --crop auto|none|N */
    const char *vae_path;     /* --vae FILE: AutoencoderKL decoder for latent models */
    const char *taesd_path;   /* --taesd FILE: TAESD decoder for latent models */
    double vae_scale;         /* --vae-scale: x = scale z (0.18215) */
    int quiet;                /* -q */
} sample_args;

/* Everything decided before the device opens. */
typedef struct sample_plan {
    digcl_model_config config;
    digcl_sampler_options options;
    int n;                   /* images */
    int32_t *labels;         /* [n] in [0, num_classes) */
    int labels_all;          /* --class-labels all: n / K images per class, in class order */
    int labels_from_noise;   /* the labels are the noise file's y */
    char **class_names;      /* [num_classes] */
    int pixel_model;         /* in_channels 1 or 3: images are written */
    int decodes;             /* a latent model with --vae/--taesd: images through the decoder */
    int writes_images;       /* pixel_model or decodes */
    int crop;                /* output side (0: none) */
    int out_h, out_w, out_c; /* image size after the crop, channels */
    char ckpt_hash[17];      /* XXH3-64 of the checkpoint file, hex */
    char *args_json;         /* the flags as resolved (cJSON text) */
    char *train_args;        /* the checkpoint's train.args, or NULL */
    float *noise_x_T;        /* [n, C, H, W] from --noise-file, or NULL */
    float *noise_z;          /* [S, n, C, H, W] from --noise-file, or NULL */
} sample_plan;

void sample_plan_free(sample_plan *plan);

/* ---- sample_inputs.c (each returns 0, or an exit code after a message) */

int sample_parse_labels(const sample_args *a, sample_plan *plan);
int sample_read_train_args(const char *ckpt, sample_plan *plan);
int sample_class_names(const sample_args *a, sample_plan *plan);
int sample_decide_crop(const sample_args *a, sample_plan *plan);
int sample_read_noise_file(const sample_args *a, sample_plan *plan);
/* The weights of --ckpt into the model: a plain checkpoint strictly, a
 * training checkpoint's "ema." (default) or own tensors by --weights. */
int sample_load_weights(digcl_model *model, const sample_args *a);

/* ---- sample_output.c */

typedef struct sample_outputs {
    digcl_image *images; /* [n] (pixel models) */
    float *latents;      /* [n, C, H, W] when --output-latents */
} sample_outputs;

/* Checks before any work: folders exist and are writable (--output-dir is
 * created), no output names an input. Exit code or 0. */
int sample_check_outputs(const sample_args *a);
/* Image i as a PNG in --output-dir (000000.png ...). */
int sample_write_image(const sample_args *a, const sample_plan *plan, const digcl_image *image,
                       int i);
/* The grid, labels.csv, the npz and the latents, as asked. */
int sample_write_collections(const sample_args *a, const sample_plan *plan,
                             const sample_outputs *out);

#endif
