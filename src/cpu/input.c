/* input.c: uint8 images to normalised activations, and the weights' working
 * copy (a plain copy on the CPU, where everything is fp32). */
#include <string.h>

#include "cpu.h"

void cpu_input_from_u8(backend *be, void *x_, const uint8_t *img, int n, int h, int w, int c, const float mean[3],
                       const float inv_std[3]) {
  float *x = x_; /* [n, h, w, c]; img [n, h, w, 3] */
  size_t pixels = (size_t)n * h * w;
#pragma omp parallel for schedule(static)
  for (size_t p = 0; p < pixels; p++) {
    const uint8_t *s = img + p * 3;
    float *d = x + p * c;
    for (int j = 0; j < 3; j++) d[j] = ((float)s[j] / 255.0f - mean[j]) * inv_std[j];
    for (int j = 3; j < c; j++) d[j] = 0.0f;
  }
}

void cpu_cast_params(backend *be, void *dst, const float *src, size_t n) {
  if (dst != (const void *)src) memcpy(dst, src, n * sizeof(float));
}
