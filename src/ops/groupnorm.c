/* groupnorm.c: launchers of GroupNorm (+ SiLU) (digcl/groupnorm.h, cl/groupnorm.cl):
 * per-chunk (mean, M2) partials, an ordered merge per group, the elementwise apply. */
#include "digcl/groupnorm.h"

#include <math.h>

#define LOCAL            256
#define MAX_CHUNKS       64
#define MIN_CHUNK_LENGTH 4096

typedef struct chunking {
    int groups, group_length, chunks, chunk_length;
} chunking;

static chunking make_chunking(const digcl_groupnorm_shape *s) {
    if (s->N < 1 || s->C < 1 || s->pixels < 1 || s->groups < 1 || s->C % s->groups != 0)
        digcl_fatal("groupnorm: invalid shape N=%d C=%d pixels=%d groups=%d (C must be a "
                    "multiple of groups)",
                    s->N, s->C, s->pixels, s->groups);
    if ((size_t)s->N * s->C * s->pixels > 2147483647u)
        digcl_fatal("groupnorm: %d x %d x %d floats exceed the int range", s->N, s->C, s->pixels);
    chunking c;
    c.groups = s->N * s->groups;
    c.group_length = s->C / s->groups * s->pixels;
    c.chunks = (c.group_length + MIN_CHUNK_LENGTH - 1) / MIN_CHUNK_LENGTH;
    if (c.chunks > MAX_CHUNKS) c.chunks = MAX_CHUNKS;
    c.chunk_length = (c.group_length + c.chunks - 1) / c.chunks;
    c.chunks = (c.group_length + c.chunk_length - 1) / c.chunk_length;
    return c;
}

size_t digcl_groupnorm_workspace_floats(const digcl_groupnorm_shape *s) {
    const chunking c = make_chunking(s);
    return (size_t)c.groups * 2 * ((size_t)c.chunks + 1);
}

/* Partials and their merge into workspace[stats_offset ...]: (mean, rstd), or (mean, M2). */
static void statistics(digcl_context *ctx, const digcl_groupnorm_shape *s, const chunking *c,
                       cl_mem x, cl_mem workspace, int stats_offset, int raw) {
    cl_kernel partial = digcl_kernel(ctx, "groupnorm", "groupnorm_partial", "");
    digcl_arg_mem(partial, 0, x);
    digcl_arg_int(partial, 1, c->group_length);
    digcl_arg_int(partial, 2, c->chunk_length);
    digcl_arg_int(partial, 3, c->chunks);
    digcl_arg_mem(partial, 4, workspace);
    const size_t global[2] = {(size_t)LOCAL * c->chunks, (size_t)c->groups}, local[2] = {LOCAL, 1};
    digcl_launch(ctx, partial, "groupnorm_partial", 2, global, local);

    cl_kernel finalize = digcl_kernel(ctx, "groupnorm", "groupnorm_finalize", "");
    digcl_arg_mem(finalize, 0, workspace);
    digcl_arg_int(finalize, 1, c->groups);
    digcl_arg_int(finalize, 2, c->group_length);
    digcl_arg_int(finalize, 3, c->chunk_length);
    digcl_arg_int(finalize, 4, c->chunks);
    digcl_arg_float(finalize, 5, s->eps);
    digcl_arg_mem(finalize, 6, workspace);
    digcl_arg_int(finalize, 7, stats_offset);
    digcl_arg_int(finalize, 8, raw);
    const size_t groups = (size_t)c->groups, group_local = 64;
    digcl_launch(ctx, finalize, "groupnorm_finalize", 1, &groups, &group_local);
}

/* y = the normalisation of x with the (mean, rstd) at workspace[stats_offset ...]. */
static void apply(digcl_context *ctx, const digcl_groupnorm_shape *s, cl_mem x, cl_mem params,
                  size_t gamma_offset, size_t beta_offset, int silu, cl_mem y, cl_mem workspace,
                  int stats_offset) {
    cl_kernel apply = digcl_kernel(ctx, "groupnorm", "groupnorm_apply", silu ? "-DSILU" : "");
    const int count = s->N * s->C * s->pixels;
    digcl_arg_mem(apply, 0, x);
    digcl_arg_mem(apply, 1, y);
    digcl_arg_mem(apply, 2, workspace);
    digcl_arg_int(apply, 3, stats_offset);
    digcl_arg_mem(apply, 4, params);
    digcl_arg_int(apply, 5, (int)gamma_offset);
    digcl_arg_int(apply, 6, (int)beta_offset);
    digcl_arg_int(apply, 7, s->C);
    digcl_arg_int(apply, 8, s->C / s->groups);
    digcl_arg_int(apply, 9, s->pixels);
    digcl_arg_int(apply, 10, count);
    const size_t total = (size_t)count, apply_local = 256;
    digcl_launch(ctx, apply, silu ? "groupnorm_silu_apply" : "groupnorm_apply", 1, &total,
                 &apply_local);
}

void digcl_groupnorm_forward(digcl_context *ctx, const digcl_groupnorm_shape *s, cl_mem x,
                             cl_mem params, size_t gamma_offset, size_t beta_offset, int silu,
                             cl_mem y, cl_mem workspace) {
    const chunking c = make_chunking(s);
    const int stats_offset = c.groups * 2 * c.chunks; /* stats follow the partials */
    statistics(ctx, s, &c, x, workspace, stats_offset, 0);
    apply(ctx, s, x, params, gamma_offset, beta_offset, silu, y, workspace, stats_offset);
}

void digcl_groupnorm_moments(digcl_context *ctx, const digcl_groupnorm_shape *s, cl_mem x,
                             cl_mem workspace, float *moments) {
    const chunking c = make_chunking(s);
    const int stats_offset = c.groups * 2 * c.chunks;
    statistics(ctx, s, &c, x, workspace, stats_offset, 1);
    digcl_read(ctx, workspace, (size_t)stats_offset * sizeof(float),
               (size_t)c.groups * 2 * sizeof(float), moments);
}

void digcl_groupnorm_apply_stats(digcl_context *ctx, const digcl_groupnorm_shape *s, cl_mem x,
                                 cl_mem params, size_t gamma_offset, size_t beta_offset, int silu,
                                 cl_mem y, cl_mem workspace, const float *stats) {
    const chunking c = make_chunking(s);
    const int stats_offset = c.groups * 2 * c.chunks;
    digcl_write(ctx, workspace, (size_t)stats_offset * sizeof(float),
                (size_t)c.groups * 2 * sizeof(float), stats);
    apply(ctx, s, x, params, gamma_offset, beta_offset, silu, y, workspace, stats_offset);
}

digcl_groupnorm_total digcl_groupnorm_total_empty(int groups) {
    if (groups < 1 || groups > DIGCL_GROUPNORM_MAX_GROUPS)
        digcl_fatal("groupnorm: %d groups (at most %d in a merged total)", groups,
                    DIGCL_GROUPNORM_MAX_GROUPS);
    digcl_groupnorm_total t = {0};
    t.groups = groups;
    return t;
}

void digcl_groupnorm_total_add(digcl_groupnorm_total *t, double part_count, const float *moments) {
    const double n = t->count + part_count;
    for (int g = 0; g < t->groups; ++g) {
        const double delta = (double)moments[2 * g] - t->mean[g];
        t->mean[g] += delta * (part_count / n);
        t->m2[g] += (double)moments[2 * g + 1] + delta * delta * (t->count * part_count / n);
    }
    t->count = n;
}

void digcl_groupnorm_total_stats(const digcl_groupnorm_total *t, float eps, float *stats) {
    for (int g = 0; g < t->groups; ++g) {
        stats[2 * g] = (float)t->mean[g];
        stats[2 * g + 1] = (float)(1.0 / sqrt(t->m2[g] / t->count + (double)eps));
    }
}
