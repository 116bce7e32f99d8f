/* pool.c: max pooling and global average pooling, NHWC, on the CPU. Work
 * is split by output rows (forward) or images (backward) with cpu_for; max
 * pooling runs 8 channels at a time with AVX2, with the same comparisons
 * ('>' or NaN, window in row-major order) as the scalar tail. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"
#include "threads.h"
#if defined(__AVX2__)
#include <immintrin.h>
#endif

typedef struct {
  int n, h, w, c, oh, ow, k, stride, pad;
  float *y, *dx;
  const float *x, *dy;
} pool_args;

/* the window of output (oy, ox): valid input offsets, in row-major order */
static int window(const pool_args *P, int b, int oy, int ox, size_t *at) {
  int n = 0;
  for (int ky = 0; ky < P->k; ky++) {
    int iy = oy * P->stride - P->pad + ky;
    if (iy < 0 || iy >= P->h) continue;
    for (int kx = 0; kx < P->k; kx++) {
      int ix = ox * P->stride - P->pad + kx;
      if (ix < 0 || ix >= P->w) continue;
      at[n++] = (((size_t)b * P->h + iy) * P->w + ix) * P->c;
    }
  }
  return n;
}

#define MAX_WINDOW 64 /* taps handled per window (k*k); larger k goes scalar */

/* item: output row (b, oy) */
static void maxpool_row(void *ctx, int item, int thread) {
  const pool_args *P = ctx;
  const int b = item / P->oh, oy = item % P->oh, c = P->c;
  size_t at[MAX_WINDOW];
  for (int ox = 0; ox < P->ow; ox++) {
    float *out = P->y + (((size_t)b * P->oh + oy) * P->ow + ox) * c;
    int n = P->k * P->k <= MAX_WINDOW ? window(P, b, oy, ox, at) : -1, j = 0;
#if defined(__AVX2__)
    for (; n >= 0 && j + 8 <= c; j += 8) {
      __m256 m = _mm256_set1_ps(-INFINITY);
      for (int t = 0; t < n; t++) {
        __m256 v = _mm256_loadu_ps(P->x + at[t] + j);
        __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        m = _mm256_blendv_ps(m, v, take);
      }
      _mm256_storeu_ps(out + j, m);
    }
#endif
    for (; j < c; j++) {
      float m = -INFINITY;
      for (int ky = 0; ky < P->k; ky++) {
        int iy = oy * P->stride - P->pad + ky;
        if (iy < 0 || iy >= P->h) continue;
        for (int kx = 0; kx < P->k; kx++) {
          int ix = ox * P->stride - P->pad + kx;
          if (ix < 0 || ix >= P->w) continue;
          float v = P->x[(((size_t)b * P->h + iy) * P->w + ix) * c + j];
          if (v > m || isnan(v)) m = v;
        }
      }
      out[j] = m;
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
  size_t at[MAX_WINDOW];
  for (int oy = 0; oy < P->oh; oy++)
    for (int ox = 0; ox < P->ow; ox++) {
      const float *g = P->dy + (((size_t)b * P->oh + oy) * P->ow + ox) * c;
      int n = P->k * P->k <= MAX_WINDOW ? window(P, b, oy, ox, at) : -1, j = 0;
      if (n == 0) continue;
#if defined(__AVX2__)
      for (; n > 0 && j + 8 <= c; j += 8) { /* arg: window index of the maximum */
        __m256 m = _mm256_set1_ps(-INFINITY), arg = _mm256_setzero_ps();
        for (int t = 0; t < n; t++) {
          __m256 v = _mm256_loadu_ps(P->x + at[t] + j);
          __m256 take = _mm256_or_ps(_mm256_cmp_ps(v, m, _CMP_GT_OQ), _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
          m = _mm256_blendv_ps(m, v, take);
          arg = _mm256_blendv_ps(arg, _mm256_set1_ps((float)t), take);
        }
        __m256 gv = _mm256_loadu_ps(g + j);
        for (int t = 0; t < n; t++) {
          __m256 hit = _mm256_cmp_ps(arg, _mm256_set1_ps((float)t), _CMP_EQ_OQ);
          float *d = P->dx + at[t] + j;
          _mm256_storeu_ps(d, _mm256_add_ps(_mm256_loadu_ps(d), _mm256_and_ps(hit, gv)));
        }
      }
#endif
      for (; j < c; j++) {
        float m = -INFINITY;
        size_t arg = (size_t)-1;
        for (int ky = 0; ky < P->k; ky++) {
          int iy = oy * P->stride - P->pad + ky;
          if (iy < 0 || iy >= P->h) continue;
          for (int kx = 0; kx < P->k; kx++) {
            int ix = ox * P->stride - P->pad + kx;
            if (ix < 0 || ix >= P->w) continue;
            size_t o = (((size_t)b * P->h + iy) * P->w + ix) * c + j;
            if (arg == (size_t)-1) arg = o; /* all -inf: the first */
            if (P->x[o] > m || isnan(P->x[o])) m = P->x[o], arg = o;
          }
        }
        if (arg != (size_t)-1) P->dx[arg] += g[j];
      }
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
