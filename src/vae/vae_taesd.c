/* vae_taesd.c: TAESD (madebyollin/taesd; diffusers AutoencoderTiny) over the tiles (or images)
 * of one pass (docs/VAE.md "TAESD"), width w = config->channels[0]:
 *   Block(x) = relu(conv(relu(conv(relu(conv(x))))) + x)          (3x3 convs with bias)
 *   encoder: x = (img + 1) / 2; conv(3, w); Block; 3 x [conv stride 2 (no bias); 3 Blocks];
 *            conv(w, 4)
 *   decoder: 3 tanh(z / 3); conv(4, w); relu; 3 x [3 Blocks; upsample x2; conv (no bias)];
 *            Block; conv(w, 3); img = 2 x - 1
 * on three rotating activation buffers ([N, w, H, W], the plan's N images at once); the residual
 * add is fused into the third conv. */
#include <stdio.h>

#include "digcl/upsample.h"
#include "digcl/vae_ops.h"
#include "vae_internal.h"

static const int SAME[4] = {1, 1, 1, 1};

typedef struct taesd_run {
    digcl_context *ctx;
    const vae_weights *w;
    vae_plan *plan;
    int width;
} taesd_run;

static cl_mem slot(const taesd_run *r, int s) { return r->plan->act[s].mem; }

static void conv(const taesd_run *r, const char *side, int index, const char *leaf, cl_mem x, int C,
                 int H, int W, int O, int stride, int has_bias, cl_mem y, int accumulate) {
    char name[VAE_NAME_MAX];
    digcl_vae_format_name(name, "%s.layers.%d%s", side, index, leaf);
    digcl_vae_conv(r->ctx, r->w, r->plan, name, x, 0, C, H, W, O, 3, stride, SAME, has_bias, y, 0,
                   accumulate);
}

/* x (slot s, [w, H, W]) -> Block(x) in place. */
static void block(const taesd_run *r, const char *side, int index, int s, int H, int W) {
    const int t1 = (s + 1) % 3, t2 = (s + 2) % 3, w = r->width;
    const size_t count = (size_t)r->plan->N * w * H * W;
    conv(r, side, index, ".conv.0", slot(r, s), w, H, W, w, 1, 1, slot(r, t1), 0);
    digcl_relu_inplace(r->ctx, count, slot(r, t1));
    conv(r, side, index, ".conv.2", slot(r, t1), w, H, W, w, 1, 1, slot(r, t2), 0);
    digcl_relu_inplace(r->ctx, count, slot(r, t2));
    conv(r, side, index, ".conv.4", slot(r, t2), w, H, W, w, 1, 1, slot(r, s), 1);
    digcl_relu_inplace(r->ctx, count, slot(r, s));
}

void digcl_vae_taesd_encode(digcl_context *ctx, const digcl_vae_config *c, const vae_weights *w,
                            vae_plan *plan) {
    const taesd_run r = {ctx, w, plan, c->channels[0]};
    int H = plan->H, W = plan->W, s = 0, index = 0;
    digcl_affine_inplace(ctx, (size_t)plan->N * 3 * H * W, 0.5f, 0.5f,
                         plan->input.mem); /* [0, 1] */
    conv(&r, "encoder", index++, "", plan->input.mem, 3, H, W, r.width, 1, 1, slot(&r, s), 0);
    block(&r, "encoder", index++, s, H, W);
    for (int level = 1; level < DIGCL_VAE_LEVELS; ++level) {
        const int y = (s + 1) % 3;
        conv(&r, "encoder", index++, "", slot(&r, s), r.width, H, W, r.width, 2, 0, slot(&r, y), 0);
        s = y, H = (H - 1) / 2 + 1, W = (W - 1) / 2 + 1;
        for (int b = 0; b < 3; ++b) block(&r, "encoder", index++, s, H, W);
    }
    conv(&r, "encoder", index, "", slot(&r, s), r.width, H, W, c->latent_channels, 1, 1,
         plan->output.mem, 0);
}

void digcl_vae_taesd_decode(digcl_context *ctx, const digcl_vae_config *c, const vae_weights *w,
                            vae_plan *plan) {
    const taesd_run r = {ctx, w, plan, c->channels[0]};
    const int L = c->latent_channels;
    int H = plan->H / 8, W = plan->W / 8, s = 0, index = 2;
    const size_t images = (size_t)plan->N;
    digcl_tanh_clamp_forward(ctx, images * L * H * W, plan->input.mem, slot(&r, 1));
    conv(&r, "decoder", 0, "", slot(&r, 1), L, H, W, r.width, 1, 1, slot(&r, s), 0);
    digcl_relu_inplace(ctx, images * r.width * H * W, slot(&r, s));
    for (int level = 0; level < DIGCL_VAE_LEVELS; ++level) {
        const int last = level == DIGCL_VAE_LEVELS - 1;
        for (int b = 0; b < (last ? 1 : 3); ++b) block(&r, "decoder", index++, s, H, W);
        if (last) break;
        const int up = (s + 1) % 3, y = (s + 2) % 3;
        digcl_upsample_nearest_forward(ctx, plan->N * r.width, H, W, 2, slot(&r, s), slot(&r, up));
        index++; /* the Upsample module */
        H *= 2, W *= 2;
        conv(&r, "decoder", index++, "", slot(&r, up), r.width, H, W, r.width, 1, 0, slot(&r, y),
             0);
        s = y;
    }
    conv(&r, "decoder", index, "", slot(&r, s), r.width, H, W, 3, 1, 1, plan->output.mem, 0);
    digcl_affine_inplace(ctx, images * 3 * H * W, 2.0f, -1.0f, plan->output.mem); /* [-1, 1] */
}
