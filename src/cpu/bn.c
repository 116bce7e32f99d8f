/* bn.c: batch norm over NHWC rows on the CPU, fused with the residual add
 * and ReLU that follow it in a ResNet block.
 *
 * Statistics are summed in double over fixed chunks of CPU_REDUCE_CHUNK rows
 * and the chunks combined in chunk order, so results do not depend on the
 * thread count. Forward reads x once for them: each chunk is processed in
 * blocks of 8 channels small enough to stay in L1, summed (chunk mean) and
 * then re-read from L1 for the centred squares; chunks are merged with
 * Chan's parallel-variance formula. The per-element loops use 8-float
 * vectors (src/cpu/vec.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"
#include "vec.h"

/* channels per parallel work item of a reduction */
#define BN_GROUP 64

static int n_chunks(int m) { return (m + CPU_REDUCE_CHUNK - 1) / CPU_REDUCE_CHUNK; }

/* mean[c] and biased var[c] of x [m, c] */
static void bn_stats(int m, int c, const float *x, double *mean, double *var) {
  const int nc = n_chunks(m), ng = (c + BN_GROUP - 1) / BN_GROUP;
  double *part = xmalloc((size_t)nc * c * 2 * sizeof(double), "BN partial sums"); /* [chunk][mean c, m2 c] */
#pragma omp parallel for collapse(2) schedule(static)
  for (int k = 0; k < nc; k++)
    for (int g = 0; g < ng; g++) {
      int r0 = k * CPU_REDUCE_CHUNK, rows = MIN(m, r0 + CPU_REDUCE_CHUNK) - r0;
      int j0 = g * BN_GROUP, j1 = MIN(c, j0 + BN_GROUP);
      double *pm = part + (size_t)k * c * 2, *p2 = pm + c;
      vec_col_mean_m2(rows, c, x + (size_t)r0 * c, j0, j1, pm, p2);
    }
  for (int j = 0; j < c; j++) {
    double s = 0;
    for (int k = 0; k < nc; k++) {
      int rows = MIN(m, (k + 1) * CPU_REDUCE_CHUNK) - k * CPU_REDUCE_CHUNK;
      s += rows * part[(size_t)k * c * 2 + j];
    }
    double mu = s / m, m2 = 0;
    for (int k = 0; k < nc; k++) {
      int rows = MIN(m, (k + 1) * CPU_REDUCE_CHUNK) - k * CPU_REDUCE_CHUNK;
      double d = part[(size_t)k * c * 2 + j] - mu;
      m2 += part[(size_t)k * c * 2 + c + j] + rows * d * d;
    }
    mean[j] = mu;
    var[j] = m2 / m;
  }
  free(part);
}

/* y = [relu](x*scale + shift [+ r]) */
static void bn_apply(int m, int c, float *y, const float *x, const float *r, int relu, const float *scale,
                     const float *shift) {
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; i++)
    vec_scale_shift(c, y + (size_t)i * c, x + (size_t)i * c, r ? r + (size_t)i * c : NULL, relu, scale, shift);
}

void cpu_bn_fwd_train(backend *be, int m, int c, void *y, const void *x_, const void *r, int relu,
                      const float *gamma, const float *beta, float *run_mean, float *run_var, float *save_mean,
                      float *save_invstd, float momentum, float eps) {
  const float *x = x_;  /* [m, c] */
  double *mean = xmalloc((size_t)c * 2 * sizeof(double), "BN statistics"), *var = mean + c;
  float *scale = xmalloc((size_t)c * 2 * sizeof(float), "BN scale"), *shift = scale + c;
  bn_stats(m, c, x, mean, var);
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
  float *dx = dx_, *dr = dr_;              /* [m, c] */
  const float *dy = dy_, *y = y_, *x = x_; /* [m, c] */
  const int nc = n_chunks(m), ng = (c + BN_GROUP - 1) / BN_GROUP;
  /* pass 1: per chunk, sum dz and sum dz*xhat per channel (dz: dy through the ReLU) */
  double *part = xmalloc((size_t)nc * c * 2 * sizeof(double), "BN backward sums"); /* [chunk][sdz c, sdx c] */
#pragma omp parallel for collapse(2) schedule(static)
  for (int k = 0; k < nc; k++)
    for (int g = 0; g < ng; g++) {
      int r0 = k * CPU_REDUCE_CHUNK, rows = MIN(m, r0 + CPU_REDUCE_CHUNK) - r0;
      int j0 = g * BN_GROUP, j1 = MIN(c, j0 + BN_GROUP);
      size_t o = (size_t)r0 * c;
      double *ps = part + (size_t)k * c * 2;
      vec_col_dz_sums(rows, c, dy + o, relu ? y + o : NULL, x + o, save_mean, save_invstd, j0, j1, ps, ps + c);
    }
  float *a = xmalloc((size_t)c * 3 * sizeof(float), "BN backward coefficients"), *b = a + c, *mu = b + c;
  for (int j = 0; j < c; j++) {
    double sdz = 0, sdx = 0;
    for (int k = 0; k < nc; k++) {
      sdz += part[(size_t)k * c * 2 + j];
      sdx += part[(size_t)k * c * 2 + c + j];
    }
    dgamma[j] += (float)sdx;
    dbeta[j] += (float)sdz;
    /* dx = g*is*(dz - sdz/m - xhat*sdx/m) = a*dz + b*xhat + mu */
    a[j] = gamma[j] * save_invstd[j];
    b[j] = (float)(-(double)a[j] * sdx / m);
    mu[j] = (float)(-(double)a[j] * sdz / m);
  }
  free(part);
  /* pass 2: dx and dr */
#pragma omp parallel for schedule(static)
  for (int i = 0; i < m; i++) {
    size_t o = (size_t)i * c;
    vec_bn_dx(c, dx + o, dr ? dr + o : NULL, dy + o, relu ? y + o : NULL, x + o, save_mean, save_invstd, a, b, mu,
              acc_dx, acc_dr);
  }
  free(a);
}
