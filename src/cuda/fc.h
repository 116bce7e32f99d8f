/* fc.h: the fully connected layer through cuBLAS (fp32 logits). */
#ifndef RN50_CUDA_FC_H
#define RN50_CUDA_FC_H

#include "common.h"

void cuda_fc_fwd(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b);
void cuda_fc_bwd(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                 const void *x, const void *w, int acc_dx);

#endif
