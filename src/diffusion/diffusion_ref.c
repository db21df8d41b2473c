/* diffusion_ref.c: plain-C double oracles of the diffusion maths
 * (digcl/diffusion.h), written term by term from upstream's
 * gaussian_diffusion.py / diffusion_utils.py (naive forms, in double), not
 * from the kernels' stable or folded forms. */
#include <math.h>

#include "diffusion_internal.h"
#include "digcl/ref/diffusion.h"

static const double ln2 = 0.69314718055994530942;
static const double pi = 3.14159265358979323846;

void digcl_ref_diffusion_q_sample(const digcl_diffusion_tables *tb, int N, size_t chw,
                                  const double *x_start, const int32_t *t, const double *noise,
                                  double *x_t) {
    for (int n = 0; n < N; ++n) {
        const double acp = tb->alphas_cumprod[t[n]];
        for (size_t j = 0; j < chw; ++j) {
            const size_t i = (size_t)n * chw + j;
            x_t[i] = sqrt(acp) * x_start[i] + sqrt(1.0 - acp) * noise[i];
        }
    }
}

/* ------------------------------------------------------------ likelihood */

static double cdf_arg(double x) { return sqrt(2.0 / pi) * (x + 0.044715 * x * x * x); }
static double cdf_slope(double x) { return sqrt(2.0 / pi) * (1.0 + 3.0 * 0.044715 * x * x); }
static double approx_cdf(double x) { return 0.5 * (1.0 + tanh(cdf_arg(x))); }
static double cdf_density(double x) { /* d approx_cdf / dx */
    const double sech = 1.0 / cosh(cdf_arg(x));
    return 0.5 * sech * sech * cdf_slope(x);
}

/* upstream's log p and d log p / d log_scale */
static double log_likelihood(double x, double mean, double log_scale, double *dlog_scale) {
    const double inv_stdv = exp(-log_scale);
    const double plus_in = inv_stdv * (x - mean + 1.0 / 255.0);
    const double min_in = inv_stdv * (x - mean - 1.0 / 255.0);
    const double cdf_plus = approx_cdf(plus_in), cdf_min = approx_cdf(min_in);
    double value, dplus = 0.0, dmin = 0.0, clamped;
    if (x < -0.999) {
        clamped = fmax(cdf_plus, 1e-12);
        value = log(clamped);
        dplus = cdf_density(plus_in) / clamped;
    } else if (x > 0.999) {
        clamped = fmax(1.0 - cdf_min, 1e-12);
        value = log(clamped);
        dmin = -cdf_density(min_in) / clamped;
    } else {
        clamped = fmax(cdf_plus - cdf_min, 1e-12);
        value = log(clamped);
        dplus = cdf_density(plus_in) / clamped;
        dmin = -cdf_density(min_in) / clamped;
    }
    if (clamped == 1e-12) dplus = dmin = 0.0;
    /* d plus_in / d log_scale = -plus_in, likewise min_in */
    *dlog_scale = -(dplus * plus_in + dmin * min_in);
    return value;
}

double digcl_ref_discretized_gaussian_nll(double x, double mean, double log_scale) {
    double unused;
    return -log_likelihood(x, mean, log_scale, &unused);
}

/* ------------------------------------------------------------ training loss */

/* vb term of one element and its derivative with respect to v (detached eps). */
static double vb_element(const digcl_diffusion_tables *tb, int t, double x0, double xt, double eps,
                         double v, double *dv) {
    const double min_log = tb->posterior_log_variance_clipped[t];
    const double max_log = log(tb->betas[t]);
    const double frac = (v + 1.0) / 2.0;
    const double model_log_variance = frac * max_log + (1.0 - frac) * min_log;
    const double dlog_variance_dv = 0.5 * (max_log - min_log);
    const double acp = tb->alphas_cumprod[t];
    const double pred_xstart = sqrt(1.0 / acp) * xt - sqrt(1.0 / acp - 1.0) * eps;
    const double model_mean =
        tb->posterior_mean_coef1[t] * pred_xstart + tb->posterior_mean_coef2[t] * xt;
    if (t == 0) {
        double dlog_scale;
        const double nll = -log_likelihood(x0, model_mean, 0.5 * model_log_variance, &dlog_scale);
        *dv = -dlog_scale * 0.5 * dlog_variance_dv;
        return nll;
    }
    const double true_mean = tb->posterior_mean_coef1[t] * x0 + tb->posterior_mean_coef2[t] * xt;
    const double true_log_variance = min_log;
    const double mean_term = (true_mean - model_mean) * (true_mean - model_mean);
    const double kl =
        0.5 * (-1.0 + model_log_variance - true_log_variance +
               exp(true_log_variance - model_log_variance) + mean_term * exp(-model_log_variance));
    const double dkl = 0.5 * (1.0 - exp(true_log_variance - model_log_variance) -
                              mean_term * exp(-model_log_variance));
    *dv = dkl * dlog_variance_dv;
    return kl;
}

void digcl_ref_diffusion_training_loss(const digcl_diffusion_tables *tb, int learn_sigma, int N,
                                       int channels, size_t hw, const double *x_start,
                                       const double *x_t, const int32_t *t, const double *noise,
                                       const double *model_out, double *loss, double *mse,
                                       double *vb, double *dout) {
    const size_t chw = (size_t)channels * hw, out_stride = (learn_sigma ? 2 : 1) * chw;
    for (int n = 0; n < N; ++n) {
        double mse_sum = 0.0, vb_sum = 0.0;
        for (size_t j = 0; j < chw; ++j) {
            const size_t i = (size_t)n * chw + j, o = (size_t)n * out_stride + j;
            const double eps = model_out[o];
            mse_sum += (noise[i] - eps) * (noise[i] - eps);
            dout[o] = 2.0 * (eps - noise[i]) / (double)chw / N;
            if (!learn_sigma) continue;
            double dv;
            vb_sum += vb_element(tb, t[n], x_start[i], x_t[i], eps, model_out[o + chw], &dv);
            dout[o + chw] = dv / ((double)chw * ln2) / N;
        }
        mse[n] = mse_sum / (double)chw;
        vb[n] = learn_sigma ? vb_sum / (double)chw / ln2 : 0.0;
        loss[n] = mse[n] + vb[n];
    }
}

/* ------------------------------------------------------------ sampling */

void digcl_ref_cfg_combine(int rows, int out_channels, size_t hw, int guided_channels, double scale,
                           const double *out, double *guided) {
    const size_t row_size = (size_t)out_channels * hw;
    for (int n = 0; n < rows; ++n)
        for (size_t j = 0; j < row_size; ++j) {
            const double cond = out[n * row_size + j], uncond = out[(rows + n) * row_size + j];
            guided[n * row_size + j] =
                (int)(j / hw) < guided_channels ? uncond + scale * (cond - uncond) : cond;
        }
}

void digcl_ref_p_sample(const digcl_diffusion_schedule *schedule, int learn_sigma, int i, int rows,
                        int channels, size_t hw, const double *x, const double *model_out,
                        const double *z, double *x_next) {
    const digcl_diffusion_tables *tb = &schedule->tables;
    const size_t chw = (size_t)channels * hw, out_stride = (learn_sigma ? 2 : 1) * chw;
    const double acp = tb->alphas_cumprod[i];
    /* FIXED_LARGE: append(posterior_variance[1], betas[1:]) */
    const double fixed_variance =
        i == 0 ? (schedule->count > 1 ? tb->posterior_variance[1] : tb->betas[0]) : tb->betas[i];
    for (int n = 0; n < rows; ++n)
        for (size_t j = 0; j < chw; ++j) {
            const size_t k = n * chw + j, o = n * out_stride + j;
            double log_variance = log(fixed_variance);
            if (learn_sigma) {
                const double frac = (model_out[o + chw] + 1.0) / 2.0;
                log_variance =
                    frac * log(tb->betas[i]) + (1.0 - frac) * tb->posterior_log_variance_clipped[i];
            }
            const double pred_xstart =
                sqrt(1.0 / acp) * x[k] - sqrt(1.0 / acp - 1.0) * model_out[o];
            const double mean =
                tb->posterior_mean_coef1[i] * pred_xstart + tb->posterior_mean_coef2[i] * x[k];
            x_next[k] = mean + (i != 0 ? exp(0.5 * log_variance) * z[k] : 0.0);
        }
}

void digcl_ref_ddim_sample(const digcl_diffusion_schedule *schedule, double eta, int i, int rows,
                           int channels, size_t hw, int out_channels, const double *x,
                           const double *model_out, const double *z, double *x_next) {
    const digcl_diffusion_tables *tb = &schedule->tables;
    const size_t chw = (size_t)channels * hw, out_stride = (size_t)out_channels * hw;
    const double acp = tb->alphas_cumprod[i], acp_prev = tb->alphas_cumprod_prev[i];
    const double sigma = eta * sqrt((1.0 - acp_prev) / (1.0 - acp)) * sqrt(1.0 - acp / acp_prev);
    for (int n = 0; n < rows; ++n)
        for (size_t j = 0; j < chw; ++j) {
            const size_t k = n * chw + j;
            const double pred_xstart =
                sqrt(1.0 / acp) * x[k] - sqrt(1.0 / acp - 1.0) * model_out[n * out_stride + j];
            const double eps = (sqrt(1.0 / acp) * x[k] - pred_xstart) / sqrt(1.0 / acp - 1.0);
            const double mean =
                pred_xstart * sqrt(acp_prev) + sqrt(1.0 - acp_prev - sigma * sigma) * eps;
            x_next[k] = mean + (i != 0 ? sigma * z[k] : 0.0);
        }
}

/* alpha, sigma and lambda = log(alpha / sigma) at respaced index i. */
static void dpm_point(const digcl_diffusion_tables *tb, int i, double *alpha, double *sigma,
                      double *lambda) {
    *alpha = sqrt(tb->alphas_cumprod[i]);
    *sigma = sqrt(1.0 - tb->alphas_cumprod[i]);
    *lambda = log(*alpha) - log(*sigma);
}

void digcl_ref_dpmpp_2m_step(const digcl_diffusion_schedule *schedule, int s, int rows,
                             int channels, size_t hw, int out_channels, const double *x,
                             const double *model_out, const double *d_prev, double *x_next,
                             double *d) {
    const digcl_diffusion_tables *tb = &schedule->tables;
    const int S = schedule->count, i = S - 1 - s; /* evaluated at respaced index i */
    const size_t chw = (size_t)channels * hw, out_stride = (size_t)out_channels * hw;
    double alpha, sigma, lambda, alpha_next = 1.0, sigma_next = 0.0, lambda_next = INFINITY;
    double alpha_prev, sigma_prev, lambda_prev = 0.0;
    dpm_point(tb, i, &alpha, &sigma, &lambda);
    if (s + 1 < S) dpm_point(tb, i - 1, &alpha_next, &sigma_next, &lambda_next);
    if (s > 0) dpm_point(tb, i + 1, &alpha_prev, &sigma_prev, &lambda_prev);
    const double h = lambda_next - lambda;
    const int second_order = s > 0 && s + 1 < S;
    const double r = second_order ? (lambda - lambda_prev) / h : 1.0;
    for (int n = 0; n < rows; ++n)
        for (size_t j = 0; j < chw; ++j) {
            const size_t k = n * chw + j;
            d[k] = (x[k] - sigma * model_out[n * out_stride + j]) / alpha;
            if (s + 1 == S) { /* to sigma = 0: the data prediction, first order */
                x_next[k] = d[k];
                continue;
            }
            const double D =
                second_order ? (1.0 + 1.0 / (2.0 * r)) * d[k] - 1.0 / (2.0 * r) * d_prev[k] : d[k];
            x_next[k] = sigma_next / sigma * x[k] - alpha_next * (exp(-h) - 1.0) * D;
        }
}
