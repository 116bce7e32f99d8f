/* pool.c: max pooling and global average pooling, NHWC, on the CPU. Work
 * is split by output rows (forward) or images (backward) with cpu_for. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"
#include "threads.h"

typedef struct {
  int n, h, w, c, oh, ow, k, stride, pad;
  float *y, *dx;
  const float *x, *dy;
} pool_args;

/* item: output row (b, oy) */
static void maxpool_row(void *ctx, int item, int thread) {
  const pool_args *P = ctx;
  const int b = item / P->oh, oy = item % P->oh, c = P->c;
  for (int ox = 0; ox < P->ow; ox++) {
    float *out = P->y + (((size_t)b * P->oh + oy) * P->ow + ox) * c;
    for (int j = 0; j < c; j++) out[j] = -INFINITY;
    for (int ky = 0; ky < P->k; ky++) {
      int iy = oy * P->stride - P->pad + ky;
      if (iy < 0 || iy >= P->h) continue;
      for (int kx = 0; kx < P->k; kx++) {
        int ix = ox * P->stride - P->pad + kx;
        if (ix < 0 || ix >= P->w) continue;
        const float *in = P->x + (((size_t)b * P->h + iy) * P->w + ix) * c;
        for (int j = 0; j < c; j++)
          if (in[j] > out[j] || isnan(in[j])) out[j] = in[j];
      }
    }
  }
}

void cpu_maxpool_fwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *y,
                     const void *x) {
  /* y [n, oh, ow, c]; x [n, h, w, c] */
  pool_args P = {n, h, w, c, oh, ow, k, stride, pad, y, NULL, x, NULL};
  cpu_for(n * oh, maxpool_row, &P);
}

/* item: image b. Each output's gradient goes to the first maximum of its
 * window (row-major scan, '>' or NaN), as PyTorch's CPU kernel picks it;
 * windows overlap, so an image is one item and no two items touch the same
 * dx element. */
static void maxpool_bwd_image(void *ctx, int b, int thread) {
  const pool_args *P = ctx;
  const int c = P->c;
  float *best = cpu_scratch(thread, 0, (size_t)c * sizeof(float));
  size_t *arg = cpu_scratch(thread, 1, (size_t)c * sizeof(size_t));
  for (int oy = 0; oy < P->oh; oy++)
    for (int ox = 0; ox < P->ow; ox++) {
      int first = 1;
      for (int ky = 0; ky < P->k; ky++) {
        int iy = oy * P->stride - P->pad + ky;
        if (iy < 0 || iy >= P->h) continue;
        for (int kx = 0; kx < P->k; kx++) {
          int ix = ox * P->stride - P->pad + kx;
          if (ix < 0 || ix >= P->w) continue;
          size_t at = (((size_t)b * P->h + iy) * P->w + ix) * c;
          if (first) {
            for (int j = 0; j < c; j++) {
              best[j] = -INFINITY;
              arg[j] = at + (size_t)j;
            }
            first = 0;
          }
          for (int j = 0; j < c; j++) {
            float v = P->x[at + (size_t)j];
            if (v > best[j] || isnan(v)) {
              best[j] = v;
              arg[j] = at + (size_t)j;
            }
          }
        }
      }
      if (first) continue;
      const float *g = P->dy + (((size_t)b * P->oh + oy) * P->ow + ox) * c;
      for (int j = 0; j < c; j++) P->dx[arg[j]] += g[j];
    }
}

void cpu_maxpool_bwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *dx,
                     const void *dy, const void *x, int acc_dx) {
  /* dx [n, h, w, c]; dy [n, oh, ow, c]; x [n, h, w, c] */
  if (!acc_dx) memset(dx, 0, (size_t)n * h * w * c * sizeof(float));
  pool_args P = {n, h, w, c, oh, ow, k, stride, pad, NULL, dx, x, dy};
  cpu_for(n, maxpool_bwd_image, &P);
}

typedef struct {
  int hw, c, acc;
  float *y;
  const float *x;
} avg_args;

static void avgpool_image(void *ctx, int b, int thread) {
  const avg_args *A = ctx;
  float *out = A->y + (size_t)b * A->c;
  for (int j = 0; j < A->c; j++) {
    double s = 0;
    for (int p = 0; p < A->hw; p++) s += A->x[((size_t)b * A->hw + p) * A->c + j];
    out[j] = (float)(s / A->hw);
  }
}

void cpu_avgpool_fwd(backend *be, int n, int hw, int c, void *y, const void *x) {
  /* y [n, c]; x [n, hw, c] */
  avg_args A = {hw, c, 0, y, x};
  cpu_for(n, avgpool_image, &A);
}

static void avgpool_bwd_image(void *ctx, int b, int thread) {
  const avg_args *A = ctx; /* y: dx [n, hw, c]; x: dy [n, c] */
  float inv = 1.0f / (float)A->hw;
  const float *g = A->x + (size_t)b * A->c;
  for (int p = 0; p < A->hw; p++) {
    float *out = A->y + ((size_t)b * A->hw + p) * A->c;
    for (int j = 0; j < A->c; j++) out[j] = A->acc ? out[j] + g[j] * inv : g[j] * inv;
  }
}

void cpu_avgpool_bwd(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc_dx) {
  /* dx [n, hw, c]; dy [n, c] */
  avg_args A = {hw, c, acc_dx, dx, dy};
  cpu_for(n, avgpool_bwd_image, &A);
}
