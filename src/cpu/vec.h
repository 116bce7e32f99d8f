/* vec.h: the per-element loops of batch norm (src/cpu/bn.c), 8 floats at a
 * time with AVX2 when the build enables it, with a scalar tail (and a plain
 * C version otherwise). Column sums accumulate in double. */
#ifndef RN50_CPU_VEC_H
#define RN50_CPU_VEC_H

#include <stddef.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define VEC_AVX2 1
#endif

/* x holds rows of c floats. For channels j in [j0, j1):
 * mean[j] = sum_r x[r][j] / rows;  m2[j] = sum_r (x[r][j] - mean[j])^2.
 * Second pass over 8 channels at a time while they are still in L1. */
static inline void vec_col_mean_m2(int rows, int c, const float *x, int j0, int j1, double *mean, double *m2) {
  int j = j0;
#ifdef VEC_AVX2
  for (; j + 8 <= j1; j += 8) {
    const float *p = x + j;
    __m256d s0 = _mm256_setzero_pd(), s1 = s0;
    for (int r = 0; r < rows; r++, p += c) {
      __m256 v = _mm256_loadu_ps(p);
      s0 = _mm256_add_pd(s0, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
      s1 = _mm256_add_pd(s1, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
    }
    __m256d n = _mm256_set1_pd((double)rows);
    __m256d m0 = _mm256_div_pd(s0, n), m1 = _mm256_div_pd(s1, n);
    __m256d q0 = _mm256_setzero_pd(), q1 = q0;
    p = x + j;
    for (int r = 0; r < rows; r++, p += c) {
      __m256 v = _mm256_loadu_ps(p);
      __m256d d0 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)), m0);
      __m256d d1 = _mm256_sub_pd(_mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)), m1);
      q0 = _mm256_fmadd_pd(d0, d0, q0);
      q1 = _mm256_fmadd_pd(d1, d1, q1);
    }
    _mm256_storeu_pd(mean + j, m0);
    _mm256_storeu_pd(mean + j + 4, m1);
    _mm256_storeu_pd(m2 + j, q0);
    _mm256_storeu_pd(m2 + j + 4, q1);
  }
#endif
  for (; j < j1; j++) {
    double s = 0, q = 0;
    for (int r = 0; r < rows; r++) s += x[(size_t)r * c + j];
    double mu = s / rows;
    for (int r = 0; r < rows; r++) {
      double d = x[(size_t)r * c + j] - mu;
      q += d * d;
    }
    mean[j] = mu;
    m2[j] = q;
  }
}

/* one row: y = [relu](x*scale + shift [+ r]); relu keeps NaN */
static inline void vec_scale_shift(int c, float *y, const float *x, const float *r, int relu, const float *scale,
                                   const float *shift) {
  int j = 0;
#ifdef VEC_AVX2
  const __m256 z = _mm256_setzero_ps();
  for (; j + 8 <= c; j += 8) {
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(scale + j), _mm256_loadu_ps(shift + j));
    if (r) v = _mm256_add_ps(v, _mm256_loadu_ps(r + j));
    if (relu) v = _mm256_andnot_ps(_mm256_cmp_ps(v, z, _CMP_LE_OQ), v);
    _mm256_storeu_ps(y + j, v);
  }
#endif
  for (; j < c; j++) {
    float v = x[j] * scale[j] + shift[j];
    if (r) v += r[j];
    if (relu) v = v <= 0.0f ? 0.0f : v;
    y[j] = v;
  }
}

/* rows of dy, y (NULL: no ReLU) and x; for channels j in [j0, j1), with
 * dz = y > 0 ? dy : 0 (or dy) and xhat = (x - mean)*invstd:
 * sdz[j] = sum_r dz;  sdx[j] = sum_r dz*xhat */
static inline void vec_col_dz_sums(int rows, int c, const float *dy, const float *y, const float *x,
                                   const float *mean, const float *invstd, int j0, int j1, double *sdz,
                                   double *sdx) {
  int j = j0;
#ifdef VEC_AVX2
  const __m256 z = _mm256_setzero_ps();
  for (; j + 8 <= j1; j += 8) {
    __m256 mu = _mm256_loadu_ps(mean + j), is = _mm256_loadu_ps(invstd + j);
    __m256d a0 = _mm256_setzero_pd(), a1 = a0, b0 = a0, b1 = a0;
    for (int r = 0; r < rows; r++) {
      size_t o = (size_t)r * c + j;
      __m256 dz = _mm256_loadu_ps(dy + o);
      if (y) dz = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(y + o), z, _CMP_GT_OQ), dz);
      __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + o), mu), is);
      __m256d d0 = _mm256_cvtps_pd(_mm256_castps256_ps128(dz)), d1 = _mm256_cvtps_pd(_mm256_extractf128_ps(dz, 1));
      __m256d h0 = _mm256_cvtps_pd(_mm256_castps256_ps128(xh)), h1 = _mm256_cvtps_pd(_mm256_extractf128_ps(xh, 1));
      a0 = _mm256_add_pd(a0, d0);
      a1 = _mm256_add_pd(a1, d1);
      b0 = _mm256_fmadd_pd(d0, h0, b0);
      b1 = _mm256_fmadd_pd(d1, h1, b1);
    }
    _mm256_storeu_pd(sdz + j, a0);
    _mm256_storeu_pd(sdz + j + 4, a1);
    _mm256_storeu_pd(sdx + j, b0);
    _mm256_storeu_pd(sdx + j + 4, b1);
  }
#endif
  for (; j < j1; j++) {
    double s = 0, t = 0;
    for (int r = 0; r < rows; r++) {
      size_t o = (size_t)r * c + j;
      float dz = (y && !(y[o] > 0.0f)) ? 0.0f : dy[o];
      s += dz;
      t += (double)dz * ((x[o] - mean[j]) * invstd[j]);
    }
    sdz[j] = s;
    sdx[j] = t;
  }
}

/* one row: dz as above; dx (+)= a*dz + b*xhat + mu;  dr (+)= dz (if dr) */
static inline void vec_bn_dx(int c, float *dx, float *dr, const float *dy, const float *y, const float *x,
                             const float *mean, const float *invstd, const float *a, const float *b,
                             const float *mu, int acc_dx, int acc_dr) {
  int j = 0;
#ifdef VEC_AVX2
  const __m256 z = _mm256_setzero_ps();
  for (; j + 8 <= c; j += 8) {
    __m256 dz = _mm256_loadu_ps(dy + j);
    if (y) dz = _mm256_and_ps(_mm256_cmp_ps(_mm256_loadu_ps(y + j), z, _CMP_GT_OQ), dz);
    __m256 xh = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), _mm256_loadu_ps(mean + j)),
                              _mm256_loadu_ps(invstd + j));
    __m256 v = _mm256_fmadd_ps(_mm256_loadu_ps(a + j), dz,
                               _mm256_fmadd_ps(_mm256_loadu_ps(b + j), xh, _mm256_loadu_ps(mu + j)));
    if (acc_dx) v = _mm256_add_ps(v, _mm256_loadu_ps(dx + j));
    _mm256_storeu_ps(dx + j, v);
    if (dr) _mm256_storeu_ps(dr + j, acc_dr ? _mm256_add_ps(_mm256_loadu_ps(dr + j), dz) : dz);
  }
#endif
  for (; j < c; j++) {
    float dz = (y && !(y[j] > 0.0f)) ? 0.0f : dy[j];
    float xhat = (x[j] - mean[j]) * invstd[j];
    float v = a[j] * dz + b[j] * xhat + mu[j];
    dx[j] = acc_dx ? dx[j] + v : v;
    if (dr) dr[j] = acc_dr ? dr[j] + dz : dz;
  }
}

#endif
