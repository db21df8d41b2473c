/* digcl/data.h: training data: Fashion-MNIST/MNIST IDX files, image folders
 * (PNG, JPEG) and precomputed VAE latents, behind one interface, read by a
 * pool of worker threads into a ring of host staging buffers.
 *
 * Spec: docs/TRAINING.md ("Data"). Dimension legend: N batch, C channels,
 * H/W image (or latent) height/width.
 *
 * Order: epoch e is a seeded permutation of the data set (DIGCL_RNG_DATA_ORDER,
 * step = e); global batch b holds permutation positions [b W N, (b + 1) W N)
 * (the entries PyTorch's DistributedSampler with drop_last gives that step),
 * and rank r of W takes the slice [(b W + r) N, (b W + r + 1) N) of it, so a
 * row's global index (first_sample + n) is its permutation position and W
 * ranks of N rows see exactly the rows of one process with W N. A batch is a pure function of
 * (seed, epoch, batch index, rank, world): bit-identical whatever the number
 * of worker threads, and a loader can start at any (epoch, batch) (resume).
 *
 * Errors: opening returns NULL with one line in error[] naming the file and
 * what was expected. A bad file met later (decode error) ends in digcl_fatal
 * on the thread that asks for the batch, naming the file, unless
 * skip_bad_images is set: then it is replaced deterministically by the next
 * good entry in data set order (index + 1, + 2, ..., wrapping), logged once
 * as a warning and counted in digcl_loader_skipped.
 *
 * Randomness (digcl/rng.h, all keyed by the loader's seed):
 *   order    DIGCL_RNG_DATA_ORDER  step = epoch, sample 0, index = i of Fisher-Yates
 *   flip     DIGCL_RNG_FLIP        step = epoch, sample = data index, index 0: u < 0.5
 *   latent   DIGCL_RNG_LATENT      step = epoch, sample = data index, index = element
 *
 * Buffers: batches live in plain 64-byte aligned host memory; the trainer
 * uploads them (clEnqueueWriteBuffer). A later change may hand out mapped
 * CL_MEM_ALLOC_HOST_PTR buffers instead.
 */
#ifndef DIGCL_DATA_H
#define DIGCL_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum digcl_dataset_kind {
    DIGCL_DATASET_IDX = 1,    /* idx:DIR (or a folder holding train-*-idx?-ubyte[.gz]) */
    DIGCL_DATASET_IMAGES = 2, /* DIR with one subfolder per class */
    DIGCL_DATASET_LATENTS = 3 /* latents:FILE.safetensors (one file, or the index of a
                                  `digcl encode` shard set: docs/VAE.md) */
} digcl_dataset_kind;

typedef struct digcl_dataset_options {
    int image_size;          /* image folders: output size S (S x S), required; IDX and
                            latents: 0 or their own size (else an error) */
    int channels;            /* image folders: 3 (RGB, default when 0) or 1 (grey) */
    int skip_bad_images;     /* skip undecodable files with a warning (log callback) */
    const char *class_names; /* comma-separated names overriding the data set's; NULL: its own */
} digcl_dataset_options;

typedef struct digcl_dataset_info {
    digcl_dataset_kind kind;
    int64_t count;                  /* entries (images; latents rows) */
    int channels;                   /* C of every batch */
    int height, width;              /* H, W of every batch (IDX: 32 x 32 after padding) */
    int num_classes;                /* labels are in [0, num_classes) */
    int is_latent;                  /* 1 for latents (values not in [-1, 1]) */
    int has_posterior;              /* latents given as mean + std: a fresh draw per use */
    float latent_scale;             /* latents' metadata scale (0.18215), 0 if unknown */
    char digcl_vae_format_name[64]; /* latents' metadata VAE name, "" if unknown */
    const char *class_names;        /* comma-separated, never NULL: Fashion-MNIST's names, "0".."9"
                                for other IDX sets, image folders' folder names,
                                "" for latents without a "class_names" metadata entry */
} digcl_dataset_info;

typedef struct digcl_dataset digcl_dataset;

/* Opens "idx:DIR", "latents:FILE", "fashion-mnist" (Debian's
 * dataset-fashion-mnist folder, or $DIGCL_DATA_DIR/fashion-mnist), or a DIR
 * (IDX files are auto-detected in it, else it is an image folder). */
digcl_dataset *digcl_dataset_open(const char *spec, const digcl_dataset_options *options,
                                  char *error, size_t error_size);
void digcl_dataset_close(digcl_dataset *dataset);
const digcl_dataset_info *digcl_dataset_get_info(const digcl_dataset *dataset);

/* Batches per epoch for one rank: floor(count / world) / batch (drop_last). */
int64_t digcl_dataset_batches_per_epoch(const digcl_dataset *dataset, int batch, int world);

/* Checks the data set against a model's in_channels, input_size (the grid
 * the model sees: pixels for IDX and image folders, latent cells for
 * latents) and num_classes; labels must lie below num_classes (fewer data
 * classes than the model's is allowed). Returns 0, or -1 with a line naming
 * both values. */
int digcl_dataset_check_model(const digcl_dataset *dataset, int in_channels, int input_size,
                              int num_classes, char *error, size_t error_size);

/* Entry `index` as the loader would put it in a batch of `epoch`: x [C, H, W]
 * and its label (no skipping). For tests and tools; returns 0 or -1 with
 * error[] naming the file. Thread-safe only with distinct scratch, so this
 * one is not: call it from one thread at a time. */
int digcl_dataset_read(digcl_dataset *dataset, int64_t index, uint64_t seed, int64_t epoch,
                       int hflip, float *x, int32_t *y, char *error, size_t error_size);

/* Posterior latents (info.has_posterior): on 1, loaders created afterwards hand over batches
 * of mean and spread planes (digcl_batch.spread) for the trainer to draw z on the device
 * (digcl_trainer_step_batch); on 0 (the default) they draw z on the host. digcl_dataset_read
 * always draws on the host, and so do loaders with hflip (the flip follows the draw). No
 * effect on other data sets. */
void digcl_dataset_set_device_posterior(digcl_dataset *dataset, int on);

typedef struct digcl_loader_options {
    int batch;       /* N rows per batch (per rank) */
    int rank, world; /* this process and the number of processes (1 alone) */
    uint64_t seed;   /* global seed: order, flips and posterior draws */
    int workers;     /* decoding threads; 0: cores - 1 (at least 1) */
    int depth;       /* batches decoded ahead; 0: 4 */
    int hflip;       /* random horizontal flip, p = 0.5 (DIGCL_RNG_FLIP, step = epoch) */
} digcl_loader_options;

typedef struct digcl_batch {
    float *x;      /* [N, C, H, W]; pixels in [-1, 1] */
    int32_t *y;    /* [N] labels */
    int rows;      /* N */
    int64_t epoch; /* which (epoch, index) this is */
    int64_t index; /* batch index inside the epoch */
    int64_t
        first_sample; /* global row index of row 0: (epoch * batches + index) * N * world + rank * N */
    double wait_ms; /* how long digcl_loader_next waited for it */
    /* With digcl_loader_options.device_posterior on a posterior data set: x holds the
     * unscaled mean, spread [N, C, H, W] the std (or logvar when spread_is_logvar), and
     * z = scale (mean + std eps) is still to draw, eps at (DIGCL_RNG_LATENT, step = epoch,
     * sample = draw_index[n], index = element). spread is NULL when x is final. */
    float *spread;
    int32_t *draw_index; /* [N] data index of each row */
    int spread_is_logvar;
    float scale;
} digcl_batch;

typedef struct digcl_loader digcl_loader;

/* Starts the workers at (epoch, index) = (0, 0). Fails (NULL, error[]) when
 * one rank's share holds less than one batch. */
digcl_loader *digcl_loader_create(digcl_dataset *dataset, const digcl_loader_options *options,
                                  char *error, size_t error_size);
/* Restarts at batch `index` of `epoch` (drops what was decoded ahead; a
 * batch still held is released). */
void digcl_loader_seek(digcl_loader *loader, int64_t epoch, int64_t index);
/* The next batch in order (epochs roll over); blocks only if the workers are
 * behind. The batch stays valid until digcl_loader_release. */
const digcl_batch *digcl_loader_next(digcl_loader *loader);
/* Hands the batch's staging buffer back to the workers. */
void digcl_loader_release(digcl_loader *loader, const digcl_batch *batch);
/* Bad files skipped so far (each counted once). */
int64_t digcl_loader_skipped(const digcl_loader *loader);
/* Batches per epoch of this loader (digcl_dataset_batches_per_epoch). */
int64_t digcl_loader_batches_per_epoch(const digcl_loader *loader);
/* Stops the workers; logs the skipped-file count as a warning when nonzero. */
void digcl_loader_destroy(digcl_loader *loader);

#endif
