/* bn.c: batch norm over NHWC rows on the CPU, fused with the residual add
 * and ReLU that follow it in a ResNet block.
 *
 * Statistics are summed in double over fixed chunks of CPU_REDUCE_CHUNK rows
 * and the chunks combined in chunk order, so results do not depend on the
 * thread count. Forward reads x once for them: each chunk is processed in
 * blocks of 8 channels small enough to stay in L1, summed (chunk mean) and
 * then re-read from L1 for the centred squares; chunks are merged with
 * Chan's parallel-variance formula. The per-element loops use 8-float
 * vectors (src/cpu/vec.h); work is spread with cpu_for (src/cpu/threads.h). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"
#include "threads.h"
#include "vec.h"

/* channels per parallel work item of a reduction */
#define BN_GROUP 64

static int n_chunks(int m) { return (m + CPU_REDUCE_CHUNK - 1) / CPU_REDUCE_CHUNK; }

/* rows of chunk k */
static int chunk_rows(int m, int k) { return MIN(m, (k + 1) * CPU_REDUCE_CHUNK) - k * CPU_REDUCE_CHUNK; }

/* the per-chunk column sums of forward and backward: item = (chunk, group
 * of BN_GROUP channels), writing part[chunk][2c] */
typedef struct {
  int m, c, ng;
  const float *x, *dy, *y;
  const float *mean, *invstd;
  double *part;
} bn_sums;

static void stats_item(void *ctx, int item, int thread) {
  const bn_sums *S = ctx;
  int k = item / S->ng, j0 = item % S->ng * BN_GROUP, j1 = MIN(S->c, j0 + BN_GROUP);
  double *p = S->part + (size_t)k * S->c * 2;
  vec_col_mean_m2(chunk_rows(S->m, k), S->c, S->x + (size_t)k * CPU_REDUCE_CHUNK * S->c, j0, j1, p, p + S->c);
}

static void dz_sums_item(void *ctx, int item, int thread) {
  const bn_sums *S = ctx;
  int k = item / S->ng, j0 = item % S->ng * BN_GROUP, j1 = MIN(S->c, j0 + BN_GROUP);
  size_t o = (size_t)k * CPU_REDUCE_CHUNK * S->c;
  double *p = S->part + (size_t)k * S->c * 2;
  vec_col_dz_sums(chunk_rows(S->m, k), S->c, S->dy + o, S->y ? S->y + o : NULL, S->x + o, S->mean, S->invstd, j0,
                  j1, p, p + S->c);
}

/* mean[c] and biased var[c] of x [m, c] */
static void bn_stats(int m, int c, const float *x, double *mean, double *var) {
  const int nc = n_chunks(m);
  bn_sums S = {m, c, (c + BN_GROUP - 1) / BN_GROUP, x, NULL, NULL, NULL, NULL, NULL};
  S.part = xmalloc((size_t)nc * c * 2 * sizeof(double), "BN partial sums"); /* [chunk][mean c, m2 c] */
  cpu_for(nc * S.ng, stats_item, &S);
  for (int j = 0; j < c; j++) {
    double s = 0;
    for (int k = 0; k < nc; k++) s += chunk_rows(m, k) * S.part[(size_t)k * c * 2 + j];
    double mu = s / m, m2 = 0;
    for (int k = 0; k < nc; k++) {
      double d = S.part[(size_t)k * c * 2 + j] - mu;
      m2 += S.part[(size_t)k * c * 2 + c + j] + chunk_rows(m, k) * d * d;
    }
    mean[j] = mu;
    var[j] = m2 / m;
  }
  free(S.part);
}

/* row loops (apply, dx) in pieces of about ROW_GRAIN floats */
#define ROW_GRAIN 16384

typedef struct {
  int m, c, pieces, relu, acc_dx, acc_dr;
  float *y, *dr;
  const float *x, *r, *scale, *shift;                 /* apply */
  const float *dy, *yr, *mean, *invstd, *a, *b, *mu; /* dx */
} bn_rows;

static void apply_item(void *ctx, int item, int thread) {
  const bn_rows *R = ctx;
  size_t i0 = cpu_piece_start((size_t)R->m, R->pieces, item), i1 = cpu_piece_start((size_t)R->m, R->pieces, item + 1);
  for (size_t i = i0; i < i1; i++) {
    size_t o = i * R->c;
    vec_scale_shift(R->c, R->y + o, R->x + o, R->r ? R->r + o : NULL, R->relu, R->scale, R->shift);
  }
}

static void dx_item(void *ctx, int item, int thread) {
  const bn_rows *R = ctx;
  size_t i0 = cpu_piece_start((size_t)R->m, R->pieces, item), i1 = cpu_piece_start((size_t)R->m, R->pieces, item + 1);
  for (size_t i = i0; i < i1; i++) {
    size_t o = i * R->c;
    vec_bn_dx(R->c, R->y + o, R->dr ? R->dr + o : NULL, R->dy + o, R->yr ? R->yr + o : NULL, R->x + o, R->mean,
              R->invstd, R->a, R->b, R->mu, R->acc_dx, R->acc_dr);
  }
}

/* y = [relu](x*scale + shift [+ r]) */
static void bn_apply(int m, int c, float *y, const float *x, const float *r, int relu, const float *scale,
                     const float *shift) {
  bn_rows R = {m,     c,    cpu_pieces((size_t)m * c, ROW_GRAIN), relu, 0, 0, y, NULL, x, r, scale, shift,
               NULL, NULL, NULL, NULL, NULL, NULL, NULL};
  cpu_for(R.pieces, apply_item, &R);
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
  const int nc = n_chunks(m);
  /* pass 1: per chunk, sum dz and sum dz*xhat per channel (dz: dy through the ReLU) */
  bn_sums S = {m, c, (c + BN_GROUP - 1) / BN_GROUP, x, dy, relu ? y : NULL, save_mean, save_invstd, NULL};
  S.part = xmalloc((size_t)nc * c * 2 * sizeof(double), "BN backward sums"); /* [chunk][sdz c, sdx c] */
  cpu_for(nc * S.ng, dz_sums_item, &S);
  float *a = xmalloc((size_t)c * 3 * sizeof(float), "BN backward coefficients"), *b = a + c, *mu = b + c;
  for (int j = 0; j < c; j++) {
    double sdz = 0, sdx = 0;
    for (int k = 0; k < nc; k++) {
      sdz += S.part[(size_t)k * c * 2 + j];
      sdx += S.part[(size_t)k * c * 2 + c + j];
    }
    dgamma[j] += (float)sdx;
    dbeta[j] += (float)sdz;
    /* dx = g*is*(dz - sdz/m - xhat*sdx/m) = a*dz + b*xhat + mu */
    a[j] = gamma[j] * save_invstd[j];
    b[j] = (float)(-(double)a[j] * sdx / m);
    mu[j] = (float)(-(double)a[j] * sdz / m);
  }
  free(S.part);
  /* pass 2: dx and dr */
  bn_rows R = {m, c, cpu_pieces((size_t)m * c, ROW_GRAIN), relu, acc_dx, acc_dr, dx, dr, x, NULL, NULL, NULL,
               dy, relu ? y : NULL, save_mean, save_invstd, a, b, mu};
  cpu_for(R.pieces, dx_item, &R);
  free(a);
}
