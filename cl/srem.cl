/* srem.cl: SREM scan reorientation (docs/MODEL.md §2.4; upstream models_dig.py
 * L291–302: x.flip(1) after every block, then for odd blocks reshape
 * (N, E, E, D), transpose the two grid axes, flatten).
 *
 * A row gather out[n, s, :] = in[n, source(s), :], T = E*E, with
 *   MODE 0 (flip, and its own inverse):   source(s) = T-1-s
 *   MODE 1 (flip then transpose):         source(s) = T-1-transpose(s)
 *   MODE 2 (inverse of MODE 1):           source(s) = transpose(T-1-s)
 * where transpose(a*E + b) = b*E + a. One work-item per VECTOR-wide chunk of
 * channels; consecutive work-items read and write consecutive addresses.
 */

#if VECTOR == 4
typedef float4 element;
#else
typedef float element;
#endif

static int transpose_position(int side, int position) {
    return position % side * side + position / side;
}

static int source_position(int mode, int side, int position) {
    const int last = side * side - 1;
    if (mode == 0) return last - position;
    if (mode == 1) return last - transpose_position(side, position);
    return transpose_position(side, last - position);
}

/* Global size N*T*chunks, chunks = D / VECTOR. */
__kernel void srem_gather(__global const element *in, /* [N, T, D] */
                          __global element *out,      /* [N, T, D] */
                          int N, int side, int chunks, int mode) {
    const int index = get_global_id(0);
    const int T = side * side;
    if (index >= N * T * chunks) return;
    const int chunk = index % chunks, row = index / chunks;
    const int n = row / T, position = row % T;
    out[index] = in[(n * T + source_position(mode, side, position)) * chunks + chunk];
}
