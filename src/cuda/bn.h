/* bn.h: batch norm for NHWC activations, fused with residual add and ReLU. */
#ifndef RN50_CUDA_BN_H
#define RN50_CUDA_BN_H

#include "common.h"

void cuda_bn_fwd_train(backend *be, int m, int c, void *y, const void *x, const void *r, int relu, const float *gamma,
                       const float *beta, float *run_mean, float *run_var, float *save_mean, float *save_invstd,
                       float momentum, float eps);
void cuda_bn_fwd_eval(backend *be, int m, int c, void *y, const void *x, const void *r, int relu, const float *gamma,
                      const float *beta, const float *run_mean, const float *run_var, float eps);
void cuda_bn_bwd(backend *be, int m, int c, void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                 const void *y, const void *x, const float *gamma, const float *save_mean, const float *save_invstd,
                 int relu, int acc_dx, int acc_dr);

#endif
