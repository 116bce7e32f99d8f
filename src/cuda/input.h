/* input.h: turning the loader's uint8 images into normalised activations on the GPU. */
#ifndef RN50_CUDA_INPUT_H
#define RN50_CUDA_INPUT_H

#include "common.h"

void cuda_input_from_u8(backend *be, void *x, const uint8_t *img, int n, int h, int w, int c, const float mean[3],
                        const float inv_std[3]);

#endif
