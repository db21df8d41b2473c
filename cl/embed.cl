/* embed.cl: timestep frequency embedding and the class-label table
 * (docs/MODEL.md §3.3–3.4; DiT TimestepEmbedder / LabelEmbedder).
 *
 * Timestep: half_dim = dim/2, f_k = exp(-ln(10000) k / half_dim),
 *   emb[n, k] = cos(t_n f_k), emb[n, half_dim + k] = sin(t_n f_k) (zero last column
 *   for odd dim). t f reaches ~1000 rad, where one float ulp is 6e-5, so the
 *   argument is formed in extended precision: f = hi + lo from the host table,
 *   t*hi split exactly with fma, and the multiple of 2 pi removed Cody-Waite
 *   style before cos/sin (absolute error ~3e-7 instead of ~1e-4).
 *
 * Labels: out[n, :] (+)= table[labels[n], :]; the backward is a deterministic
 * segmented sum: one work-item per (table row, channel) loops over the batch:
 *   dtable[r, d] += sum_{n: labels[n] = r} dout[n, d]   (no atomics).
 */

#define TWO_PI_HI 6.28318548202514648438f       /* (float)(2 pi) */
#define TWO_PI_LO (-1.74845553146951715e-7f)    /* 2 pi - TWO_PI_HI */
#define INV_TWO_PI 0.15915494309189533577f

/* One work-item per (n, k < half_dim); writes the cos and the sin column. */
__kernel void timestep_embed_forward(__global const float *timesteps,       /* [N] */
                                     __global const float *frequency_table, /* [2, half_dim] */
                                     __global float *embedding,             /* [N, dim] */
                                     int N, int dim) {
    const int half_dim = dim / 2;
    const int k = get_global_id(0), n = get_global_id(1);
    if (n >= N) return;
    if (dim % 2 && k == half_dim) embedding[n * dim + dim - 1] = 0.0f;
    if (k >= half_dim) return;
    const float t = timesteps[n];
    const float hi = frequency_table[k], lo = frequency_table[half_dim + k];
    const float product = t * hi;
    const float error = fma(t, hi, -product) + t * lo; /* t f = product + error */
    const float turns = rint(product * INV_TWO_PI);
    float reduced = fma(-turns, TWO_PI_HI, product); /* exact for |t f| < ~2^10 */
    reduced = fma(-turns, TWO_PI_LO, reduced) + error;
    embedding[n * dim + k] = cos(reduced);
    embedding[n * dim + half_dim + k] = sin(reduced);
}

/* One work-item per (n, d). */
__kernel void label_embed_forward(__global const int *labels, /* [N] */
                                  __global const float *table, /* [rows, D] */
                                  __global float *out,         /* [N, D] */
                                  int N, int D, int rows) {
    const int d = get_global_id(0), n = get_global_id(1);
    if (d >= D || n >= N) return;
    const int label = labels[n];
    const float value = (label >= 0 && label < rows) ? table[label * D + d] : NAN;
#ifdef ACCUMULATE
    out[n * D + d] += value;
#else
    out[n * D + d] = value;
#endif
}

/* One work-item per (table row r, channel d). Rows no label points at are
 * not touched. */
__kernel void label_embed_backward(__global const int *labels, /* [N] */
                                   __global const float *dout, /* [N, D] */
                                   __global float *dtable,     /* [rows, D] accumulate */
                                   int N, int D, int rows) {
    const int d = get_global_id(0), r = get_global_id(1);
    if (d >= D || r >= rows) return;
    float sum = 0.0f;
    int hits = 0;
    for (int n = 0; n < N; n++)
        if (labels[n] == r) {
            sum += dout[n * D + d];
            hits++;
        }
    if (hits) dtable[r * D + d] += sum;
}
