/* sgd.h: the optimizer and other flat-array kernels over the fp32 parameters
 * (SGD step, working-copy cast, non-finite check, EMA). */
#ifndef RN50_CUDA_SGD_H
#define RN50_CUDA_SGD_H

#include "common.h"

void cuda_cast_params(backend *be, void *dst, const float *src, size_t n);
void cuda_sgd_step(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                   float lr, float momentum, float wd, float wd_rest, int nesterov, float grad_scale);
int cuda_nonfinite(backend *be, const float *g, size_t n);
void cuda_ema_update(backend *be, float *ema, const float *w, size_t n, float decay);

#endif
