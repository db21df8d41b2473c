/* apps/train_sample.h: `digcl train --sample-every K`: an EMA sample grid of
 * fixed seed and labels every K steps, written to <run>/samples/SSSSSSS.png
 * (docs/SAMPLING.md, "During training"). */
#ifndef DIGCL_APPS_TRAIN_SAMPLE_H
#define DIGCL_APPS_TRAIN_SAMPLE_H

#include <stdint.h>

#include "digcl/data.h"
#include "digcl/diffusion.h"
#include "digcl/train.h"

typedef struct train_sample_options {
    long every;       /* --sample-every K (0: off) */
    long per_class;   /* --sample-per-class (8): images of each of the first <= 10 classes */
    long steps;       /* --sample-steps (25), dpm++2m */
    double cfg_scale; /* --sample-cfg-scale (3) */
} train_sample_options;

typedef struct train_sampler train_sampler;

/* Plans the grid's sampler once (nothing is allocated per grid). NULL with
 * every = 0, and (with a warning) for latent models, whose samples need a
 * VAE to become images; device errors end in digcl_fatal. */
train_sampler *train_sampler_create(const train_sample_options *options, digcl_diffusion *diffusion,
                                    digcl_trainer *trainer, const digcl_dataset_info *data,
                                    const char *run_dir, uint64_t seed);
void train_sampler_release(train_sampler *sampler);

/* Samples with the EMA weights and writes the grid of `step`; returns its
 * path, or NULL after a warning when it could not be written (training goes
 * on). */
const char *train_sampler_write(train_sampler *sampler, int64_t step);

#endif
