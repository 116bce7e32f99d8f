/* input.cu: the loader's uint8 HWC images (already on the GPU) become the
 * first activation: x = (img / 255 - mean) * inv_std in the act dtype, with
 * channels 3..c-1 (cuDNN's padding for fast NHWC kernels) set to zero. */
#include "input.h"

struct norm3 {
  float mean[3], inv_std[3];
};

template <typename T>
__global__ void input_kernel(T *__restrict__ x, const uint8_t *__restrict__ img, size_t pixels, int c, norm3 nm) {
  for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < pixels; p += (size_t)gridDim.x * blockDim.x) {
    const uint8_t *src = img + p * 3;
    T *dst = x + p * (size_t)c;
#pragma unroll
    for (int j = 0; j < 3; j++) dst[j] = from_f<T>(((float)src[j] / 255.0f - nm.mean[j]) * nm.inv_std[j]);
    for (int j = 3; j < c; j++) dst[j] = from_f<T>(0.0f);
  }
}

template <typename T> static void input_launch(backend *be, void *x, const uint8_t *img, size_t pixels, int c, norm3 nm) {
  int blocks = cuda_grid_blocks(be, pixels, 256);
  input_kernel<T><<<blocks, 256, 0, cuda_of(be)->stream>>>((T *)x, img, pixels, c, nm);
  LAUNCH_CHECK(be, "input_kernel");
}

void cuda_input_from_u8(backend *be, void *x, const uint8_t *img, int n, int h, int w, int c, const float mean[3],
                        const float inv_std[3]) {
  if (c < 3) die("input_from_u8: %d channels requested, need at least 3", c);
  norm3 nm;
  for (int j = 0; j < 3; j++) {
    nm.mean[j] = mean[j];
    nm.inv_std[j] = inv_std[j];
  }
  size_t pixels = (size_t)n * h * w;
  if (pixels == 0) return;
  DISPATCH_ACT(be->act_dtype, input_launch, be, x, img, pixels, c, nm);
}
