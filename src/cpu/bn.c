/* bn.c: batch norm over NHWC rows on the CPU, fused with the residual add
 * and ReLU that follow it in a ResNet block. Statistics are two-pass (mean,
 * then centred variance) with fixed row chunks summed in double, so results
 * do not depend on the thread count. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"

/* sums[ch] = sum over rows of f(row, ch) computed chunk by chunk:
 * part[chunk][c] in double, then added in chunk order. */
static int n_chunks(int m) { return (m + CPU_REDUCE_CHUNK - 1) / CPU_REDUCE_CHUNK; }

static void column_mean(int m, int c, const float *x, double *mean) {
  int nc = n_chunks(m);
  double *part = xcalloc((size_t)nc * c, sizeof(double), "BN partial sums");
#pragma omp parallel for schedule(static)
  for (int k = 0; k < nc; k++) {
    double *p = part + (size_t)k * c;
    int r1 = MIN(m, (k + 1) * CPU_REDUCE_CHUNK);
    for (int r = k * CPU_REDUCE_CHUNK; r < r1; r++) {
      const float *row = x + (size_t)r * c;
      for (int j = 0; j < c; j++) p[j] += row[j];
    }
  }
  for (int j = 0; j < c; j++) mean[j] = 0;
  for (int k = 0; k < nc; k++)
    for (int j = 0; j < c; j++) mean[j] += part[(size_t)k * c + j];
  for (int j = 0; j < c; j++) mean[j] /= m;
  free(part);
}

static void column_var(int m, int c, const float *x, const double *mean, double *var) {
  int nc = n_chunks(m);
  double *part = xcalloc((size_t)nc * c, sizeof(double), "BN partial sums");
#pragma omp parallel for schedule(static)
  for (int k = 0; k < nc; k++) {
    double *p = part + (size_t)k * c;
    int r1 = MIN(m, (k + 1) * CPU_REDUCE_CHUNK);
    for (int r = k * CPU_REDUCE_CHUNK; r < r1; r++) {
      const float *row = x + (size_t)r * c;
      for (int j = 0; j < c; j++) {
        double t = row[j] - mean[j];
        p[j] += t * t;
      }
    }
  }
  for (int j = 0; j < c; j++) var[j] = 0;
  for (int k = 0; k < nc; k++)
    for (int j = 0; j < c; j++) var[j] += part[(size_t)k * c + j];
  for (int j = 0; j < c; j++) var[j] /= m;
  free(part);
}

/* y = [relu](x*scale + shift [+ r]) */
static void bn_apply(int m, int c, float *y, const float *x, const float *r, int relu, const float *scale,
                     const float *shift) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; i++) {
    const float *xr = x + (size_t)i * c;
    float *yr = y + (size_t)i * c;
    const float *rr = r ? r + (size_t)i * c : NULL;
    for (int j = 0; j < c; j++) {
      float v = xr[j] * scale[j] + shift[j];
      if (rr) v += rr[j];
      if (relu) v = v > 0.0f ? v : 0.0f;
      yr[j] = v;
    }
  }
}

void cpu_bn_fwd_train(backend *be, int m, int c, void *y, const void *x_, const void *r, int relu,
                      const float *gamma, const float *beta, float *run_mean, float *run_var, float *save_mean,
                      float *save_invstd, float momentum, float eps) {
  const float *x = x_;  /* [m, c] */
  double *mean = xmalloc((size_t)c * 2 * sizeof(double), "BN statistics"), *var = mean + c;
  float *scale = xmalloc((size_t)c * 2 * sizeof(float), "BN scale"), *shift = scale + c;
  column_mean(m, c, x, mean);
  column_var(m, c, x, mean, var);
  for (int j = 0; j < c; j++) {
    double invstd = 1.0 / sqrt(var[j] + eps);
    save_mean[j] = (float)mean[j];
    save_invstd[j] = (float)invstd;
    scale[j] = (float)(gamma[j] * invstd);
    shift[j] = (float)(beta[j] - mean[j] * gamma[j] * invstd);
    double unbiased = m > 1 ? var[j] * m / (m - 1) : var[j];
    run_mean[j] = (float)((1.0 - momentum) * run_mean[j] + momentum * mean[j]);
    run_var[j] = (float)((1.0 - momentum) * run_var[j] + momentum * unbiased);
  }
  bn_apply(m, c, y, x, r, relu, scale, shift);
  free(mean);
  free(scale);
}

void cpu_bn_fwd_eval(backend *be, int m, int c, void *y, const void *x, const void *r, int relu, const float *gamma,
                     const float *beta, const float *run_mean, const float *run_var, float eps) {
  float *scale = xmalloc((size_t)c * 2 * sizeof(float), "BN scale"), *shift = scale + c;
  for (int j = 0; j < c; j++) {
    double invstd = 1.0 / sqrt((double)run_var[j] + eps);
    scale[j] = (float)(gamma[j] * invstd);
    shift[j] = (float)(beta[j] - run_mean[j] * gamma[j] * invstd);
  }
  bn_apply(m, c, y, x, r, relu, scale, shift);
  free(scale);
}

void cpu_bn_bwd(backend *be, int m, int c, void *dx_, void *dr_, float *dgamma, float *dbeta, const void *dy_,
                const void *y_, const void *x_, const float *gamma, const float *save_mean,
                const float *save_invstd, int relu, int acc_dx, int acc_dr) {
  float *dx = dx_, *dr = dr_;            /* [m, c] */
  const float *dy = dy_, *y = y_, *x = x_; /* [m, c] */
  int nc = n_chunks(m);
  double *part = xcalloc((size_t)nc * c * 2, sizeof(double), "BN backward sums");
  /* pass 1: sum dz and sum dz*xhat per channel */
#pragma omp parallel for schedule(static)
  for (int k = 0; k < nc; k++) {
    double *ps = part + (size_t)k * c * 2, *px = ps + c;
    int r1 = MIN(m, (k + 1) * CPU_REDUCE_CHUNK);
    for (int i = k * CPU_REDUCE_CHUNK; i < r1; i++) {
      const float *dyr = dy + (size_t)i * c, *xr = x + (size_t)i * c;
      const float *yr = relu ? y + (size_t)i * c : NULL;
      for (int j = 0; j < c; j++) {
        float dz = (relu && !(yr[j] > 0.0f)) ? 0.0f : dyr[j];
        ps[j] += dz;
        px[j] += (double)dz * ((xr[j] - save_mean[j]) * save_invstd[j]);
      }
    }
  }
  double *sdz = xcalloc((size_t)c * 2, sizeof(double), "BN backward sums"), *sdx = sdz + c;
  for (int k = 0; k < nc; k++)
    for (int j = 0; j < c; j++) {
      sdz[j] += part[(size_t)k * c * 2 + j];
      sdx[j] += part[(size_t)k * c * 2 + c + j];
    }
  free(part);
  float *a = xmalloc((size_t)c * 3 * sizeof(float), "BN backward coefficients"), *b = a + c, *mu = b + c;
  for (int j = 0; j < c; j++) {
    dgamma[j] += (float)sdx[j];
    dbeta[j] += (float)sdz[j];
    /* dx = g*is*(dz - sdz/m - xhat*sdx/m) = a*dz + b*xhat + mu */
    a[j] = gamma[j] * save_invstd[j];
    b[j] = (float)(-(double)a[j] * sdx[j] / m);
    mu[j] = (float)(-(double)a[j] * sdz[j] / m);
  }
  free(sdz);
  /* pass 2: dx and dr */
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; i++) {
    const float *dyr = dy + (size_t)i * c, *xr = x + (size_t)i * c;
      const float *yr = relu ? y + (size_t)i * c : NULL;
    float *dxr = dx + (size_t)i * c;
    float *drr = dr ? dr + (size_t)i * c : NULL;
    for (int j = 0; j < c; j++) {
      float dz = (relu && !(yr[j] > 0.0f)) ? 0.0f : dyr[j];
      float xhat = (xr[j] - save_mean[j]) * save_invstd[j];
      float v = a[j] * dz + b[j] * xhat + mu[j];
      dxr[j] = acc_dx ? dxr[j] + v : v;
      if (drr) drr[j] = acc_dr ? drr[j] + dz : dz;
    }
  }
  free(a);
}
