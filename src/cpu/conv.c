/* conv.c: NHWC convolution on the CPU as GEMMs (OpenBLAS). A 1x1 stride-1
 * convolution is one GEMM over the activation itself; any other kernel,
 * stride or padding goes through im2col over a chunk of whole images.
 * Backward data gathers the column gradients back per input pixel, so
 * threads never write the same element. Weights are OHWI: [k][kh*kw*c]. */
#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"

/* floats of im2col scratch per chunk (32 MB) */
#define COL_BUDGET ((size_t)8 << 20)

static float *scratch;
static size_t scratch_len;

static float *get_scratch(size_t floats) {
  if (floats > scratch_len) {
    free(scratch);
    scratch = xmalloc_aligned(floats * sizeof(float), "convolution scratch");
    scratch_len = floats;
  }
  return scratch;
}

static int is_pointwise(const conv_desc *d) { return d->kh == 1 && d->kw == 1 && d->stride == 1 && d->pad == 0; }

static size_t kdim_of(const conv_desc *d) { return (size_t)d->kh * d->kw * d->c; }

/* images per chunk so that the column matrix fits the budget */
static int chunk_images(const conv_desc *d) {
  size_t per = (size_t)d->oh * d->ow * kdim_of(d);
  int k = (int)(COL_BUDGET / (per ? per : 1));
  return k < 1 ? 1 : (k > d->n ? d->n : k);
}

/* col[(n-n0)*oh*ow + oy*ow + ox][(ky*kw+kx)*c + ci] = x[n][oy*s-p+ky][ox*s-p+kx][ci] */
static void im2col(const conv_desc *d, int n0, int n1, float *col, const float *x) {
  const int C = d->c, H = d->h, W = d->w, OH = d->oh, OW = d->ow;
  const size_t kdim = kdim_of(d);
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = n0; n < n1; n++)
    for (int oy = 0; oy < OH; oy++)
      for (int ox = 0; ox < OW; ox++) {
        float *row = col + (((size_t)(n - n0) * OH + oy) * OW + ox) * kdim;
        for (int ky = 0; ky < d->kh; ky++) {
          int iy = oy * d->stride - d->pad + ky;
          for (int kx = 0; kx < d->kw; kx++) {
            int ix = ox * d->stride - d->pad + kx;
            float *dst = row + ((size_t)ky * d->kw + kx) * C;
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) memset(dst, 0, (size_t)C * sizeof(float));
            else memcpy(dst, x + (((size_t)n * H + iy) * W + ix) * C, (size_t)C * sizeof(float));
          }
        }
      }
}

/* dx[n][iy][ix][ci] (+)= sum of the column gradients that read it */
static void col2im(const conv_desc *d, int n0, int n1, float *dx, const float *dcol, int acc) {
  const int C = d->c, H = d->h, W = d->w, OH = d->oh, OW = d->ow, S = d->stride;
  const size_t kdim = kdim_of(d);
#pragma omp parallel for collapse(2) schedule(static)
  for (int n = n0; n < n1; n++)
    for (int iy = 0; iy < H; iy++)
      for (int ix = 0; ix < W; ix++) {
        float *out = dx + (((size_t)n * H + iy) * W + ix) * C;
        if (!acc) memset(out, 0, (size_t)C * sizeof(float));
        for (int ky = 0; ky < d->kh; ky++) {
          int ty = iy + d->pad - ky;
          if (ty < 0 || ty % S) continue;
          int oy = ty / S;
          if (oy >= OH) continue;
          for (int kx = 0; kx < d->kw; kx++) {
            int tx = ix + d->pad - kx;
            if (tx < 0 || tx % S) continue;
            int ox = tx / S;
            if (ox >= OW) continue;
            const float *src = dcol + (((size_t)(n - n0) * OH + oy) * OW + ox) * kdim + ((size_t)ky * d->kw + kx) * C;
            for (int ci = 0; ci < C; ci++) out[ci] += src[ci];
          }
        }
      }
}

void cpu_conv_fwd(backend *be, const conv_desc *d, void *y_, const void *x_, const void *w_) {
  float *y = y_;             /* [n, oh, ow, k] */
  const float *x = x_;       /* [n, h, w, c] */
  const float *w = w_;       /* [k, kh, kw, c] */
  const int K = d->k;
  const size_t kdim = kdim_of(d), rows_img = (size_t)d->oh * d->ow;
  if (is_pointwise(d)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)(d->n * rows_img), K, (int)kdim, 1.0f, x, (int)kdim,
                w, (int)kdim, 0.0f, y, K);
    return;
  }
  int step = chunk_images(d);
  float *col = get_scratch((size_t)step * rows_img * kdim);
  for (int n0 = 0; n0 < d->n; n0 += step) {
    int n1 = MIN(d->n, n0 + step);
    im2col(d, n0, n1, col, x);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)((n1 - n0) * rows_img), K, (int)kdim, 1.0f, col,
                (int)kdim, w, (int)kdim, 0.0f, y + (size_t)n0 * rows_img * K, K);
  }
}

void cpu_conv_bwd_data(backend *be, const conv_desc *d, void *dx_, const void *dy_, const void *w_, int acc_dx) {
  float *dx = dx_;           /* [n, h, w, c] */
  const float *dy = dy_;     /* [n, oh, ow, k] */
  const float *w = w_;       /* [k, kh, kw, c] */
  const int K = d->k;
  const size_t kdim = kdim_of(d), rows_img = (size_t)d->oh * d->ow;
  if (is_pointwise(d)) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(d->n * rows_img), (int)kdim, K, 1.0f, dy, K, w,
                (int)kdim, acc_dx ? 1.0f : 0.0f, dx, (int)kdim);
    return;
  }
  int step = chunk_images(d);
  float *dcol = get_scratch((size_t)step * rows_img * kdim);
  for (int n0 = 0; n0 < d->n; n0 += step) {
    int n1 = MIN(d->n, n0 + step);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)((n1 - n0) * rows_img), (int)kdim, K, 1.0f,
                dy + (size_t)n0 * rows_img * K, K, w, (int)kdim, 0.0f, dcol, (int)kdim);
    col2im(d, n0, n1, dx, dcol, acc_dx);
  }
}

void cpu_conv_bwd_filter(backend *be, const conv_desc *d, float *dw, const void *dy_, const void *x_) {
  const float *dy = dy_;     /* [n, oh, ow, k] */
  const float *x = x_;       /* [n, h, w, c] */
  /* dw: [k, kh, kw, c], accumulated */
  const int K = d->k;
  const size_t kdim = kdim_of(d), rows_img = (size_t)d->oh * d->ow;
  if (is_pointwise(d)) {
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)kdim, (int)(d->n * rows_img), 1.0f, dy, K, x,
                (int)kdim, 1.0f, dw, (int)kdim);
    return;
  }
  int step = chunk_images(d);
  float *col = get_scratch((size_t)step * rows_img * kdim);
  for (int n0 = 0; n0 < d->n; n0 += step) {
    int n1 = MIN(d->n, n0 + step);
    im2col(d, n0, n1, col, x);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, K, (int)kdim, (int)((n1 - n0) * rows_img), 1.0f,
                dy + (size_t)n0 * rows_img * K, K, col, (int)kdim, 1.0f, dw, (int)kdim);
  }
}
