/* diffusion.cl: upstream's Gaussian diffusion on the device (digcl/diffusion.h;
 * the maths in docs/DIFFUSION.md, from ADM/DiT gaussian_diffusion.py).
 *
 * Coefficient table [8, 1000] (float, rounded once from double on the host),
 * row k at table + k * 1000, indexed by t:
 *   0 sqrt(acp)  1 sqrt(1 - acp)  2 sqrt(1 / acp)  3 sqrt(1 / acp - 1)
 *   4 posterior_mean_coef1  5 posterior_mean_coef2
 *   6 posterior_log_variance_clipped (= min_log)  7 log(beta) - min_log (log_range)
 *   8, 9 the rounding remainders of rows 2 and 3  10 exp(-min_log)  11 exp(-min_log / 2)
 * Float32 care (the double reference is the contract): x_0 - pred_x0 with the
 * coefficients as float pairs and fma, and e^-lv2 = e^-min_log e^-frac log_range,
 * so that no table rounding biases every element the same way.
 *
 * q_sample:  x_t = sqrt(acp) x_0 + sqrt(1 - acp) noise
 * training_loss, one work-group per row, per element of the C x H x W eps:
 *   mse term (eps - noise)^2;  d/d eps = 2 (eps - noise)
 *   LEARNED_RANGE: log variance lv2 = min_log + frac log_range, frac = (v + 1) / 2;
 *   pred_x0 = sqrt(1/acp) x_t - sqrt(1/acp - 1) eps (eps detached)
 *   t > 0: KL(N(m1, e^lv1) || N(m2, e^lv2)) with lv1 = min_log,
 *          m1 - m2 = coef1 (x_0 - pred_x0):
 *          kl = 0.5 (expm1(dl) - dl + (m1 - m2)^2 e^-lv2), dl = lv1 - lv2 = -frac log_range
 *   t = 0: -log of the discretised Gaussian likelihood of x_0 under N(m2, e^lv2) with
 *          upstream's tanh CDF 0.5 (1 + tanh a(x)), a(x) = sqrt(2/pi) (x + 0.044715 x^3),
 *          in a stable form (the naive difference of two CDFs near 1 loses ~1e-2 in float):
 *            log cdf(p)        = log sigmoid(2 a(p))
 *            log (1 - cdf(m))  = log sigmoid(-2 a(m))
 *            log (cdf(p) - cdf(m)) = log (0.5 sinh(a - b) / (cosh a cosh b)), in logs
 *          with upstream's 1e-12 clamps and its x < -0.999 / x > 0.999 branches.
 *   vb = mean / ln 2; loss = mse + vb; dout = d mean_rows(loss) / d model_out.
 * Sampler steps (coefficients folded on the host in double):
 *   ancestral_step  x = coef_x x + coef_eps eps + std z  (p_sample, ddim_sample)
 *   dpmpp_step      d = x / alpha - sigma / alpha eps;  x = cx x + cd d + cp d_prev;  d_prev = d
 *   cfg_combine     uncond + s (cond - uncond) on the guided channels, cond elsewhere
 *
 * Options: -DGROUP=256 (training_loss), -DLEARN_SIGMA=0|1, -DLEARNED_RANGE=0|1.
 */
#define STEPS 1000
#define T_SQRT_ACP 0
#define T_SQRT_ONE_MINUS_ACP 1
#define T_SQRT_RECIP 2
#define T_SQRT_RECIPM1 3
#define T_COEF1 4
#define T_COEF2 5
#define T_MIN_LOG 6
#define T_LOG_RANGE 7
#define T_SQRT_RECIP_LO 8
#define T_SQRT_RECIPM1_LO 9
#define T_INV_VARIANCE 10
#define T_INV_STD 11

#define LN2 0.693147180559945309f
#define SQRT_2_OVER_PI 0.797884560802865356f
#define CDF_CUBIC 0.044715f
#define LOG_CLAMP (-27.6310211159285482f) /* log(1e-12) */
#define BIN_HALF_WIDTH (1.0f / 255.0f)

#ifndef GROUP
#define GROUP 256
#endif
#ifndef LEARN_SIGMA
#define LEARN_SIGMA 0
#endif
#ifndef LEARNED_RANGE
#define LEARNED_RANGE 0
#endif

static inline float table_at(__global const float *table, int row, int t) {
    return table[row * STEPS + t];
}

__kernel void q_sample(__global const float *x_start, __global const int *t,
                       __global const float *noise, __global float *x_t,
                       __global const float *table, const int rows, const int chw) {
    const int i = get_global_id(0);
    if (i >= rows * chw) return;
    const int ts = t[i / chw];
    x_t[i] = table_at(table, T_SQRT_ACP, ts) * x_start[i] +
             table_at(table, T_SQRT_ONE_MINUS_ACP, ts) * noise[i];
}

/* ------------------------------------------------------------ stable pieces */

/* log sigmoid(u) = -softplus(-u) and sigmoid(u), without overflow. */
static inline float log_sigmoid(float u) {
    return u >= 0.0f ? -log1p(exp(-u)) : u - log1p(exp(u));
}
static inline float sigmoid(float u) {
    if (u >= 0.0f) return 1.0f / (1.0f + exp(-u));
    const float e = exp(u);
    return e / (1.0f + e);
}
static inline float cdf_arg(float x) { return SQRT_2_OVER_PI * (x + CDF_CUBIC * x * x * x); }
static inline float cdf_slope(float x) { return SQRT_2_OVER_PI * (1.0f + 3.0f * CDF_CUBIC * x * x); }
/* log(1 + e^{-2|a|}) */
static inline float cosh_tail(float a) { return log1p(exp(-2.0f * fabs(a))); }

/* log(tanh a - tanh b) - log 2 = log(0.5 sinh(d) / (cosh a cosh b)), d = a - b > 0,
 * and the log-ratios r_a = log(sech^2 a / (tanh a - tanh b)),
 * r_b = log(sech^2 b / (tanh a - tanh b)) for the derivatives. The exponent parts
 * d - |a| - |b|, |b| - |a| - d, |a| - |b| - d are written without cancellation. */
static inline float log_cdf_delta(float a, float b, float d, float *r_a, float *r_b) {
    const float tail_a = cosh_tail(a), tail_b = cosh_tail(b);
    const float log_sinh_part = log(-expm1(-2.0f * d)); /* log(1 - e^{-2d}) */
    float base, ra, rb;
    if (b >= 0.0f) {
        base = -2.0f * b, ra = -2.0f * d, rb = 0.0f;
    } else if (a <= 0.0f) {
        base = 2.0f * a, ra = 0.0f, rb = -2.0f * d;
    } else {
        base = 0.0f, ra = -2.0f * a, rb = 2.0f * b;
    }
    *r_a = ra + tail_b - tail_a - log_sinh_part + LN2;
    *r_b = rb + tail_a - tail_b - log_sinh_part + LN2;
    return base + log_sinh_part - tail_a - tail_b;
}

/* log p(x | mean, log_scale) of upstream's discretized_gaussian_log_likelihood, given
 * centered = x - mean and inv_stdv = exp(-log_scale), and its derivative with respect
 * to log_scale (the mean is detached). */
static inline float discretized_log_likelihood(float x, float centered, float inv_stdv,
                                               float *dlog_scale) {
    const float p = inv_stdv * (centered + BIN_HALF_WIDTH);
    const float m = inv_stdv * (centered - BIN_HALF_WIDTH);
    const float a = cdf_arg(p), b = cdf_arg(m);
    float value, dp = 0.0f, dm = 0.0f;
    if (x < -0.999f) {
        value = log_sigmoid(2.0f * a);
        dp = 2.0f * cdf_slope(p) * sigmoid(-2.0f * a);
    } else if (x > 0.999f) {
        value = log_sigmoid(-2.0f * b);
        dm = -2.0f * cdf_slope(m) * sigmoid(2.0f * b);
    } else {
        /* a - b = sqrt(2/pi) (p - m) (1 + 0.044715 (p^2 + p m + m^2)), p - m = 2 inv_stdv / 255 */
        const float d = SQRT_2_OVER_PI * (2.0f * BIN_HALF_WIDTH * inv_stdv) *
                        (1.0f + CDF_CUBIC * (p * p + p * m + m * m));
        float r_a, r_b;
        value = log_cdf_delta(a, b, d, &r_a, &r_b);
        dp = exp(r_a) * cdf_slope(p);
        dm = -exp(r_b) * cdf_slope(m);
    }
    if (value < LOG_CLAMP) {
        *dlog_scale = 0.0f;
        return LOG_CLAMP;
    }
    *dlog_scale = -(dp * p + dm * m); /* dp/dlog_scale = -p, dm/dlog_scale = -m */
    return value;
}

/* expm1(d) - d without the cancellation at small |d| (series below 0.5). */
static inline float expm1_minus_linear(float d) {
    if (fabs(d) >= 0.5f) return expm1(d) - d;
    float sum = 1.0f / 479001600.0f; /* 1/12! */
    const float inverse_factorials[10] = {1.0f / 39916800.0f, 1.0f / 3628800.0f, 1.0f / 362880.0f,
                                          1.0f / 40320.0f,    1.0f / 5040.0f,    1.0f / 720.0f,
                                          1.0f / 120.0f,      1.0f / 24.0f,      1.0f / 6.0f,
                                          0.5f};
    for (int k = 0; k < 10; ++k) sum = sum * d + inverse_factorials[k];
    return sum * d * d;
}

/* ------------------------------------------------------------ training loss */

__kernel void training_loss(__global const float *x_start, __global const float *x_t,
                            __global const int *t, __global const float *noise,
                            __global const float *model_out, __global const float *table,
                            __global float *loss, __global float *mse, __global float *vb,
                            __global float *dout, const int channels, const int hw,
                            const float inv_rows) {
    __local float mse_sums[GROUP];
    __local float vb_sums[GROUP];
    const int n = get_group_id(0), lid = get_local_id(0);
    const int chw = channels * hw;
    const int out_stride = (LEARN_SIGMA ? 2 : 1) * chw;
    const size_t row = (size_t)n * chw, out_row = (size_t)n * out_stride;
    const int ts = t[n];
    const float eps_scale = 2.0f * inv_rows / (float)chw;
    float mse_acc = 0.0f, vb_acc = 0.0f;
#if LEARN_SIGMA
    const float recip = table_at(table, T_SQRT_RECIP, ts);
    const float recipm1 = table_at(table, T_SQRT_RECIPM1, ts);
    const float recip_lo = table_at(table, T_SQRT_RECIP_LO, ts);
    const float recipm1_lo = table_at(table, T_SQRT_RECIPM1_LO, ts);
    const float coef1 = table_at(table, T_COEF1, ts);
    const float coef2 = table_at(table, T_COEF2, ts);
    const float log_range = table_at(table, T_LOG_RANGE, ts);
    const float inv_variance = table_at(table, T_INV_VARIANCE, ts);
    const float inv_std = table_at(table, T_INV_STD, ts);
    const float v_scale = inv_rows / ((float)chw * LN2);
#endif
    for (int j = lid; j < chw; j += GROUP) {
        const float eps = model_out[out_row + j];
        const float diff = eps - noise[row + j];
        mse_acc += diff * diff;
        dout[out_row + j] = eps_scale * diff;
#if LEARN_SIGMA
        const float frac = 0.5f * (model_out[out_row + chw + j] + 1.0f);
        const float xt = x_t[row + j], x0 = x_start[row + j];
        /* x0 - pred_x0 = x0 - sqrt(1/acp) x_t + sqrt(1/acp - 1) eps */
        float residual = fma(-recip, xt, x0);
        residual = fma(recipm1, eps, residual) + (recipm1_lo * eps - recip_lo * xt);
        float term, dlog_variance;
        if (ts == 0) {
            /* x0 - mean, mean = coef1 pred_x0 + coef2 x_t */
            const float centered = coef1 * residual + ((1.0f - coef1) * x0 - coef2 * xt);
            float dlog_scale;
            term = -discretized_log_likelihood(x0, centered, inv_std * exp(-0.5f * frac * log_range),
                                               &dlog_scale);
            dlog_variance = -0.5f * dlog_scale;
        } else {
            const float mean_diff = coef1 * residual;
            const float dl = -frac * log_range;
            const float mean_part = mean_diff * mean_diff * (inv_variance * exp(dl));
            term = 0.5f * (expm1_minus_linear(dl) + mean_part);
            dlog_variance = 0.5f * (-expm1(dl) - mean_part);
        }
        vb_acc += term;
        dout[out_row + chw + j] = v_scale * dlog_variance * 0.5f * log_range;
#endif
    }
    mse_sums[lid] = mse_acc;
    vb_sums[lid] = vb_acc;
    barrier(CLK_LOCAL_MEM_FENCE);
    for (int width = GROUP / 2; width > 0; width /= 2) {
        if (lid < width) {
            mse_sums[lid] += mse_sums[lid + width];
            vb_sums[lid] += vb_sums[lid + width];
        }
        barrier(CLK_LOCAL_MEM_FENCE);
    }
    if (lid == 0) {
        const float row_mse = mse_sums[0] / (float)chw;
        const float row_vb = LEARN_SIGMA ? vb_sums[0] / ((float)chw * LN2) : 0.0f;
        mse[n] = row_mse;
        vb[n] = row_vb;
        loss[n] = row_mse + row_vb;
    }
}

/* ------------------------------------------------------------ sampling */

__kernel void cfg_combine(__global const float *out, __global float *guided, const int rows,
                          const int out_channels, const int hw, const int guided_channels,
                          const float scale) {
    const int i = get_global_id(0);
    const int row_size = out_channels * hw;
    if (i >= rows * row_size) return;
    const float cond = out[i];
    const int channel = (i % row_size) / hw;
    if (channel < guided_channels) {
        const float uncond = out[(size_t)rows * row_size + i];
        guided[i] = uncond + scale * (cond - uncond);
    } else {
        guided[i] = cond;
    }
}

__kernel void ancestral_step(__global float *x, __global const float *model_out,
                             __global const float *z, const int rows, const int channels,
                             const int hw, const int out_channels, const float coef_x,
                             const float coef_eps, const float min_log, const float log_range,
                             const float fixed_std, const int add_noise) {
    const int i = get_global_id(0);
    const int chw = channels * hw;
    if (i >= rows * chw) return;
    const int n = i / chw, j = i % chw;
    const size_t out_row = (size_t)n * out_channels * hw;
    const float eps = model_out[out_row + j];
    float next = coef_x * x[i] + coef_eps * eps;
    if (add_noise) {
#if LEARNED_RANGE
        const float frac = 0.5f * (model_out[out_row + chw + j] + 1.0f);
        const float std = exp(0.5f * (min_log + frac * log_range));
#else
        const float std = fixed_std;
#endif
        next += std * z[i];
    }
    x[i] = next;
}

__kernel void dpmpp_step(__global float *x, __global const float *model_out,
                         __global float *d_prev, const int rows, const int channels,
                         const int hw, const int out_channels, const float inv_alpha,
                         const float sigma_over_alpha, const float coef_x, const float coef_d,
                         const float coef_d_prev) {
    const int i = get_global_id(0);
    const int chw = channels * hw;
    if (i >= rows * chw) return;
    const int n = i / chw, j = i % chw;
    const float eps = model_out[(size_t)n * out_channels * hw + j];
    const float xi = x[i];
    const float d = inv_alpha * xi - sigma_over_alpha * eps;
    float next = coef_x * xi + coef_d * d;
    if (coef_d_prev != 0.0f) next += coef_d_prev * d_prev[i];
    x[i] = next;
    d_prev[i] = d;
}
