/* pool.c: max pooling and global average pooling, NHWC, on the CPU. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"

void cpu_maxpool_fwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *y_,
                     const void *x_) {
  float *y = y_;       /* [n, oh, ow, c] */
  const float *x = x_; /* [n, h, w, c] */
#pragma omp parallel for collapse(2) schedule(static)
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++) {
        float *out = y + (((size_t)b * oh + oy) * ow + ox) * c;
        for (int j = 0; j < c; j++) out[j] = -INFINITY;
        for (int ky = 0; ky < k; ky++) {
          int iy = oy * stride - pad + ky;
          if (iy < 0 || iy >= h) continue;
          for (int kx = 0; kx < k; kx++) {
            int ix = ox * stride - pad + kx;
            if (ix < 0 || ix >= w) continue;
            const float *in = x + (((size_t)b * h + iy) * w + ix) * c;
            for (int j = 0; j < c; j++)
              if (in[j] > out[j] || isnan(in[j])) out[j] = in[j];
          }
        }
      }
}

/* Each output's gradient goes to the first maximum of its window (row-major
 * scan, '>' or NaN), as PyTorch's CPU kernel picks it. Images are split
 * among threads, so no two threads touch the same dx element. */
void cpu_maxpool_bwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *dx_,
                     const void *dy_, const void *x_, int acc_dx) {
  float *dx = dx_;       /* [n, h, w, c] */
  const float *dy = dy_; /* [n, oh, ow, c] */
  const float *x = x_;   /* [n, h, w, c] */
  if (!acc_dx) memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
#pragma omp parallel
  {
    float *best = xmalloc((size_t)c * sizeof(float), "maxpool scratch");
    size_t *arg = xmalloc((size_t)c * sizeof(size_t), "maxpool scratch");
#pragma omp for schedule(static)
    for (int b = 0; b < n; b++)
      for (int oy = 0; oy < oh; oy++)
        for (int ox = 0; ox < ow; ox++) {
          int first = 1;
          for (int ky = 0; ky < k; ky++) {
            int iy = oy * stride - pad + ky;
            if (iy < 0 || iy >= h) continue;
            for (int kx = 0; kx < k; kx++) {
              int ix = ox * stride - pad + kx;
              if (ix < 0 || ix >= w) continue;
              size_t at = (((size_t)b * h + iy) * w + ix) * c;
              if (first) {
                for (int j = 0; j < c; j++) {
                  best[j] = -INFINITY;
                  arg[j] = at + (size_t)j;
                }
                first = 0;
              }
              for (int j = 0; j < c; j++) {
                float v = x[at + (size_t)j];
                if (v > best[j] || isnan(v)) {
                  best[j] = v;
                  arg[j] = at + (size_t)j;
                }
              }
            }
          }
          if (first) continue;
          const float *g = dy + (((size_t)b * oh + oy) * ow + ox) * c;
          for (int j = 0; j < c; j++) dx[arg[j]] += g[j];
        }
    free(best);
    free(arg);
  }
}

void cpu_avgpool_fwd(backend *be, int n, int hw, int c, void *y_, const void *x_) {
  float *y = y_;       /* [n, c] */
  const float *x = x_; /* [n, hw, c] */
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++) {
    float *out = y + (size_t)b * c;
    for (int j = 0; j < c; j++) {
      double s = 0;
      for (int p = 0; p < hw; p++) s += x[((size_t)b * hw + p) * c + j];
      out[j] = (float)(s / hw);
    }
  }
}

void cpu_avgpool_bwd(backend *be, int n, int hw, int c, void *dx_, const void *dy_, int acc_dx) {
  float *dx = dx_;       /* [n, hw, c] */
  const float *dy = dy_; /* [n, c] */
  float inv = 1.0f / (float)hw;
#pragma omp parallel for schedule(static)
  for (int b = 0; b < n; b++)
    for (int p = 0; p < hw; p++) {
      float *out = dx + ((size_t)b * hw + p) * c;
      const float *g = dy + (size_t)b * c;
      for (int j = 0; j < c; j++) out[j] = acc_dx ? out[j] + g[j] * inv : g[j] * inv;
    }
}
