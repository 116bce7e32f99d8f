/* conv.h: convolutions through cuDNN (NHWC), with one algorithm search per
 * shape and a cache of the choices (cuda_conv_cache_save/load in cuda_backend.h). */
#ifndef RN50_CUDA_CONV_H
#define RN50_CUDA_CONV_H

#include "common.h"

void cuda_conv_fwd(backend *be, const conv_desc *d, void *y, const void *x, const void *w);
void cuda_conv_bwd_data(backend *be, const conv_desc *d, void *dx, const void *dy, const void *w, int acc_dx);
void cuda_conv_bwd_filter(backend *be, const conv_desc *d, float *dw, const void *dy, const void *x);
void cuda_conv_prepare(backend *be, const conv_desc *d);
void cuda_conv_destroy(backend *be);
/* frees the algorithm search's scratch if it is still held (before a capture) */
void cuda_conv_release_search(backend *be);

#endif
