/* digcl/data.h: training data: Fashion-MNIST/MNIST IDX files, image folders
 * (PNG, JPEG) and precomputed VAE latents, behind one interface, read by a
 * pool of worker threads into a ring of host staging buffers.
 *
 * Spec: docs/TRAINING.md ("Data"). Dimension legend: N batch, C channels,
 * H/W image (or latent) height/width.
 *
 * Order: epoch e is a seeded permutation of the data set (DIGCL_RNG_DATA_ORDER,
 * step = e); rank r of W takes every W-th entry starting at r (PyTorch's
 * DistributedSampler with drop_last), and batch b of that rank holds entries
 * [b * N, (b + 1) * N) of its share. A batch is a pure function of
 * (seed, epoch, batch index, rank, world): bit-identical whatever the number
 * of worker threads, and a loader can start at any (epoch, batch) (resume).
 *
 * Errors: opening returns NULL with one line in error[] naming the file and
 * what was expected. A bad file met later (decode error) ends in digcl_fatal
 * on the thread that asks for the batch, naming the file, unless
 * skip_bad_images is set (then it is replaced deterministically by the next
 * good entry of the permutation, counted in digcl_loader_skipped).
 */
#ifndef DIGCL_DATA_H
#define DIGCL_DATA_H

#include <stddef.h>
#include <stdint.h>

typedef enum digcl_dataset_kind {
    DIGCL_DATASET_IDX = 1,    /* idx:DIR (or a folder holding train-*-idx?-ubyte[.gz]) */
    DIGCL_DATASET_IMAGES = 2, /* DIR with one subfolder per class */
    DIGCL_DATASET_LATENTS = 3 /* latents:FILE.safetensors */
} digcl_dataset_kind;

typedef struct digcl_dataset_options {
    int image_size;      /* image folders: output size S (S x S); 0: IDX's 32, latents' own */
    int channels;        /* image folders: 3 (RGB, default) or 1 (grey) */
    int skip_bad_images; /* skip undecodable files with a warning (log callback) */
} digcl_dataset_options;

typedef struct digcl_dataset_info {
    digcl_dataset_kind kind;
    int64_t count;          /* entries (images; latents rows) */
    int channels;           /* C of every batch */
    int height, width;      /* H, W of every batch (IDX: 32 x 32 after padding) */
    int num_classes;        /* labels are in [0, num_classes) */
    int is_latent;          /* 1 for latents (values not in [-1, 1]) */
    int has_posterior;      /* latents given as mean + std: a fresh draw per use */
    float latent_scale;     /* latents' metadata scale (0.18215), 0 if unknown */
    char vae_name[64];      /* latents' metadata VAE name, "" if unknown */
    char class_names[1024]; /* comma-separated class names ("" if none: IDX digits) */
} digcl_dataset_info;

typedef struct digcl_dataset digcl_dataset;

/* Opens "idx:DIR", "latents:FILE", or a DIR (IDX files are auto-detected in
 * it, else it is an image folder). */
digcl_dataset *digcl_dataset_open(const char *spec, const digcl_dataset_options *options,
                                  char *error, size_t error_size);
void digcl_dataset_close(digcl_dataset *dataset);
const digcl_dataset_info *digcl_dataset_get_info(const digcl_dataset *dataset);

/* Batches per epoch for one rank: floor(count / world) / batch (drop_last). */
int64_t digcl_dataset_batches_per_epoch(const digcl_dataset *dataset, int batch, int world);

typedef struct digcl_loader_options {
    int batch;       /* N rows per batch (per rank) */
    int rank, world; /* this process and the number of processes (1 alone) */
    uint64_t seed;   /* global seed: order, flips and posterior draws */
    int workers;     /* decoding threads; 0: cores - 1 (at least 1) */
    int depth;       /* batches decoded ahead; 0: 2 * workers + 2 */
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
} digcl_batch;

typedef struct digcl_loader digcl_loader;

/* Starts the workers at (epoch, index) = (0, 0). */
digcl_loader *digcl_loader_create(digcl_dataset *dataset, const digcl_loader_options *options,
                                  char *error, size_t error_size);
/* Restarts at batch `index` of `epoch` (drops what was decoded ahead). */
void digcl_loader_seek(digcl_loader *loader, int64_t epoch, int64_t index);
/* The next batch in order (epochs roll over); blocks only if the workers are
 * behind. The batch stays valid until digcl_loader_release. */
const digcl_batch *digcl_loader_next(digcl_loader *loader);
/* Hands the batch's staging buffer back to the workers. */
void digcl_loader_release(digcl_loader *loader, const digcl_batch *batch);
int64_t digcl_loader_skipped(const digcl_loader *loader);
void digcl_loader_destroy(digcl_loader *loader);

#endif
