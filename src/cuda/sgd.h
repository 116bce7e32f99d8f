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
/* graph steps: per-step values and the skip flag read on the device (backend.h, backend_graph) */
void cuda_sgd_step_s(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                     float momentum, float wd, float wd_rest, int nesterov, const step_scalars *s);
void cuda_ema_update_s(backend *be, float *ema, const float *w, size_t n, float decay, const step_scalars *s);
void cuda_step_check(backend *be, step_scalars *s, const float *x, size_t n);
void cuda_step_restore(backend *be, float *dst, const float *src, size_t n, const step_scalars *s);

#endif
