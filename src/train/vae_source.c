/* Training on images through the VAE (upstream's train.py: x = vae.encode(x).latent_dist
 * .sample().mul_(0.18215) per batch): a batch source that encodes each batch of another
 * source. API: include/digcl/train.h; the draw: digcl_vae_encode_sample (docs/VAE.md). */
#include <stdlib.h>
#include <string.h>

#include "digcl/error.h"
#include "digcl/train.h"
#include "digcl/vae.h"

typedef struct vae_source {
    digcl_train_source images;
    digcl_vae *vae;
    const digcl_trainer *trainer;
    int batch, height, width;
    float scale;
    float *latents;  /* [batch, 4, H/8, W/8] */
    int32_t *labels; /* [batch] */
    digcl_batch current;
} vae_source;

/* The images' batch, encoded; released to the image source at once (its labels copied). The
 * step that will take it is the trainer's step count: eps is drawn at (step, global row). */
static const digcl_batch *vae_next(void *user) {
    vae_source *s = user;
    const digcl_batch *b = s->images.next(s->images.user);
    if (b->rows > s->batch)
        digcl_fatal("train --vae: a batch of %d rows, more than the %d planned", b->rows, s->batch);
    const digcl_rng_key key = {digcl_trainer_hparams(s->trainer)->seed, DIGCL_RNG_VAE_POSTERIOR};
    const uint64_t step = (uint64_t)digcl_trainer_step_count(s->trainer);
    digcl_vae_encode_sample(s->vae, NULL, b->rows, s->height, s->width, b->x, key, step,
                            (uint64_t)b->first_sample, s->scale, s->latents);
    memcpy(s->labels, b->y, (size_t)b->rows * sizeof *s->labels);
    s->current = *b;
    s->current.x = s->latents;
    s->current.y = s->labels;
    s->images.release(s->images.user, b);
    return &s->current;
}

static void vae_release(void *user, const digcl_batch *batch) { (void)user, (void)batch; }

static void vae_seek(void *user, int64_t epoch, int64_t index) {
    vae_source *s = user;
    s->images.seek(s->images.user, epoch, index);
}

digcl_train_source digcl_train_vae_source(const digcl_train_source *images, digcl_vae *vae,
                                          const digcl_trainer *trainer, int height, int width,
                                          float scale) {
    vae_source *s = calloc(1, sizeof *s);
    const int batch = digcl_trainer_batch(trainer);
    const size_t row =
        (size_t)digcl_vae_get_config(vae)->latent_channels * (height / 8) * (width / 8);
    if (s) s->latents = malloc((size_t)batch * row * sizeof *s->latents);
    if (s) s->labels = malloc((size_t)batch * sizeof *s->labels);
    if (!s || !s->latents || !s->labels) digcl_fatal("train --vae: out of host memory");
    s->images = *images, s->vae = vae, s->trainer = trainer;
    s->batch = batch, s->height = height, s->width = width, s->scale = scale;
    digcl_train_source source = {vae_next, vae_release, vae_seek, images->batches_per_epoch, s};
    return source;
}

void digcl_train_vae_source_release(digcl_train_source *source) {
    vae_source *s = source->user;
    if (!s) return;
    free(s->latents), free(s->labels), free(s);
    source->user = NULL;
}
