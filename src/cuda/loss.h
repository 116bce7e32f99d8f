/* loss.h: softmax cross-entropy with label smoothing, one block per row. */
#ifndef RN50_CUDA_LOSS_H
#define RN50_CUDA_LOSS_H

#include "common.h"

void cuda_xent(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
               const int32_t *labels, float smoothing, float grad_scale);
/* the same with grad_scale = s->loss_grad read on the device (graph steps) */
void cuda_xent_s(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
                 const int32_t *labels, float smoothing, const step_scalars *s);

#endif
