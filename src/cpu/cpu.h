/* cpu.h: the CPU backend's ops (fp32, NHWC). Each function has the
 * arguments of its slot in src/backend.h, and a CUDA twin in src/cuda/ with
 * the same arguments. This is rn50's reference path: convolutions (and the
 * fully connected layer) as packed GEMMs on its own AVX2 register tiles
 * (conv.c, kernels.h), vectorised loops elsewhere (vec.h), all run on the
 * backend's worker threads (threads.h). Every output is summed in an order
 * fixed by the data shape alone, with reductions split into fixed chunks, so
 * results are bit-identical for any thread count. */
#ifndef RN50_CPU_H
#define RN50_CPU_H

#include "../backend.h"

/* rows per chunk of every per-channel reduction (fixed: results do not
 * depend on the number of threads) */
#define CPU_REDUCE_CHUNK 256

void cpu_input_from_u8(backend *be, void *x, const uint8_t *img, int n, int h, int w, int c, const float mean[3],
                       const float inv_std[3]);
void cpu_cast_params(backend *be, void *dst, const float *src, size_t n);

void cpu_conv_fwd(backend *be, const conv_desc *d, void *y, const void *x, const void *w);
void cpu_conv_bwd_data(backend *be, const conv_desc *d, void *dx, const void *dy, const void *w, int acc_dx);
void cpu_conv_bwd_filter(backend *be, const conv_desc *d, float *dw, const void *dy, const void *x);

void cpu_bn_fwd_train(backend *be, int m, int c, void *y, const void *x, const void *r, int relu, const float *gamma,
                      const float *beta, float *run_mean, float *run_var, float *save_mean, float *save_invstd,
                      float momentum, float eps);
void cpu_bn_fwd_eval(backend *be, int m, int c, void *y, const void *x, const void *r, int relu, const float *gamma,
                     const float *beta, const float *run_mean, const float *run_var, float eps);
void cpu_bn_bwd(backend *be, int m, int c, void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                const void *y, const void *x, const float *gamma, const float *save_mean, const float *save_invstd,
                int relu, int acc_dx, int acc_dr);

void cpu_maxpool_fwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *y,
                     const void *x);
void cpu_maxpool_bwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *dx,
                     const void *dy, const void *x, int acc_dx);
void cpu_avgpool_fwd(backend *be, int n, int hw, int c, void *y, const void *x);
void cpu_avgpool_bwd(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc_dx);

void cpu_fc_fwd(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b);
void cpu_fc_bwd(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                const void *x, const void *w, int acc_dx);

void cpu_xent(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
              const int32_t *labels, float smoothing, float grad_scale);

void cpu_sgd_step(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                  float lr, float momentum, float wd, float wd_rest, int nesterov, float grad_scale);
int cpu_nonfinite(backend *be, const float *g, size_t n);
void cpu_ema_update(backend *be, float *ema, const float *w, size_t n, float decay);

#endif
