/* pool.h: max pool (first maximum wins) and global average pool. */
#ifndef RN50_CUDA_POOL_H
#define RN50_CUDA_POOL_H

#include "common.h"

void cuda_maxpool_fwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *y,
                      const void *x);
void cuda_maxpool_bwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *dx,
                      const void *dy, const void *x, int acc_dx);
void cuda_avgpool_fwd(backend *be, int n, int hw, int c, void *y, const void *x);
void cuda_avgpool_bwd(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc_dx);

#endif
