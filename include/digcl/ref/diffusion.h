/* digcl/ref/diffusion.h: the plain-C double-precision oracles of digcl/diffusion.h, the
 * references its kernels are tested against (src/ops and src/diffusion *_ref.c,
 * tests/). Same argument meaning as the launchers; host arrays. */
#ifndef DIGCL_REF_DIFFUSION_H
#define DIGCL_REF_DIFFUSION_H

#include "digcl/diffusion.h"

void digcl_ref_diffusion_q_sample(const digcl_diffusion_tables *tables, int N, size_t chw,
                                  const double *x_start, const int32_t *t, const double *noise,
                                  double *x_t);

/* training_losses of one batch: loss, mse, vb [N] and dout = d mean(loss) /
 * d model_out (vb = 0 and no variance channels without learn_sigma). */
void digcl_ref_diffusion_training_loss(const digcl_diffusion_tables *tables, int learn_sigma, int N,
                                       int channels, size_t hw, const double *x_start,
                                       const double *x_t, const int32_t *t, const double *noise,
                                       const double *model_out, double *loss, double *mse,
                                       double *vb, double *dout);

/* -log of upstream's discretized_gaussian_log_likelihood of one value in the
 * naive form, in double (tests). */
double digcl_ref_discretized_gaussian_nll(double x, double mean, double log_scale);

void digcl_ref_cfg_combine(int rows, int out_channels, size_t hw, int guided_channels, double scale,
                           const double *out, double *guided);

/* p_sample at respaced index i (t = i): x_next = mean + (i > 0) exp(0.5 log_var) z. */
void digcl_ref_p_sample(const digcl_diffusion_schedule *schedule, int learn_sigma, int i, int rows,
                        int channels, size_t hw, const double *x, const double *model_out,
                        const double *z, double *x_next);

/* ddim_sample at respaced index i (eps re-derived from pred_xstart, as upstream). */
void digcl_ref_ddim_sample(const digcl_diffusion_schedule *schedule, double eta, int i, int rows,
                           int channels, size_t hw, int out_channels, const double *x,
                           const double *model_out, const double *z, double *x_next);

/* DPM-Solver++ 2M executed step s: x_next from x, eps and the previous data
 * prediction d_prev (unused at s = 0); d receives this step's data prediction. */
void digcl_ref_dpmpp_2m_step(const digcl_diffusion_schedule *schedule, int s, int rows,
                             int channels, size_t hw, int out_channels, const double *x,
                             const double *model_out, const double *d_prev, double *x_next,
                             double *d);

#endif
