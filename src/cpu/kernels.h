/* kernels.h: the CPU backend's inner loops. A 6x16 register tile of fp32
 * multiply-adds over packed operands (AVX2 + FMA when the build enables
 * them, plain C otherwise), and the packing helpers that feed it: rows of
 * 6 values per reduction step for the broadcast side (A), 16 per step for
 * the vector side (B). Packing reads through row pointers, so a
 * convolution packs its shifted input pixels (or a zero row for padding)
 * straight from the activation, without an im2col copy (src/cpu/conv.c).
 *
 * A tile's sum runs over the reduction steps in order; results do not
 * depend on which thread computes which tile. */
#ifndef RN50_CPU_KERNELS_H
#define RN50_CPU_KERNELS_H

#include <stddef.h>
#include <string.h>
#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define KER_AVX2 1
#endif

#define KER_MR 6  /* rows of a register tile */
#define KER_PF_ROWS 8 /* packing prefetches the row this far ahead */
#define KER_NR 16 /* columns of a register tile (two 8-float vectors) */

/* ker_tile: for i < 6, j < nr:
 *   c[i][coff + j] (+)= sum over p < kc of a[p*6 + i] * b[p*16 + j]
 * a: packed [kc][6]; b: packed [kc][16] (columns past nr are ignored);
 * c: 6 row pointers (missing rows point to scratch); acc: add to c. */
static inline void ker_tile(int kc, const float *a, const float *b, float *const *c, size_t coff, int nr, int acc);

/* pack_a_rows: a[(t*kc + j)*6 + r] = rows[t*6 + r][off + j], t < nt, j < kc
 * (6 rows per tap, each read along kc channels; 8 floats of slack at the end) */
static inline void pack_a_rows(float *a, const float *const *rows, int nt, size_t off, int kc);

/* pack_a_cols: a[p*6 + i] = src[p*ld + i] for i < mr, 0 for mr <= i < 6 */
static inline void pack_a_cols(float *a, const float *src, size_t ld, int np, int mr) {
  if (mr == KER_MR) {
    for (int p = 0; p < np; p++, a += KER_MR, src += ld) {
      if (p + KER_PF_ROWS < np) __builtin_prefetch(src + KER_PF_ROWS * ld);
      memcpy(a, src, KER_MR * sizeof(float));
    }
    return;
  }
  for (int p = 0; p < np; p++, a += KER_MR, src += ld) {
    int i = 0;
    for (; i < mr; i++) a[i] = src[i];
    for (; i < KER_MR; i++) a[i] = 0.0f;
  }
}

/* pack_b_rows: b[p*16 + j] = rows[p][off + j] for j < nr, 0 past nr */
static inline void pack_b_rows(float *b, const float *const *rows, size_t off, int np, int nr) {
  if (nr == KER_NR) {
    for (int p = 0; p < np; p++, b += KER_NR) {
      if (p + KER_PF_ROWS < np) __builtin_prefetch(rows[p + KER_PF_ROWS] + off);
      memcpy(b, rows[p] + off, KER_NR * sizeof(float));
    }
    return;
  }
  for (int p = 0; p < np; p++, b += KER_NR) {
    memcpy(b, rows[p] + off, (size_t)nr * sizeof(float));
    memset(b + nr, 0, (size_t)(KER_NR - nr) * sizeof(float));
  }
}

/* transpose8x8: dst[j*ldd + i] = src[i*lds + j] for i, j < 8 */
static inline void transpose8x8(float *dst, size_t ldd, const float *src, size_t lds);

#ifdef KER_AVX2

/* lanes [0, n) of an 8-float vector */
static inline __m256i ker_mask(int n) {
  static const int idx[8] = {0, 1, 2, 3, 4, 5, 6, 7};
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_loadu_si256((const __m256i *)idx));
}

/* c[0..nr) (+)= lo:hi, the two 8-float halves of a tile row */
static inline void ker_store_row(float *c, __m256 lo, __m256 hi, int nr, int acc) {
  if (nr == KER_NR) {
    if (acc) {
      lo = _mm256_add_ps(lo, _mm256_loadu_ps(c));
      hi = _mm256_add_ps(hi, _mm256_loadu_ps(c + 8));
    }
    _mm256_storeu_ps(c, lo);
    _mm256_storeu_ps(c + 8, hi);
    return;
  }
  __m256i m0 = ker_mask(nr), m1 = ker_mask(nr - 8);
  if (acc) {
    lo = _mm256_add_ps(lo, _mm256_maskload_ps(c, m0));
    hi = _mm256_add_ps(hi, _mm256_maskload_ps(c + 8, m1));
  }
  _mm256_maskstore_ps(c, m0, lo);
  _mm256_maskstore_ps(c + 8, m1, hi);
}

#ifndef KER_PF_B
#define KER_PF_B 128
#endif
#define KER_ROW(r)                                      \
  do {                                                  \
    __m256 v = _mm256_broadcast_ss(a + r);              \
    c##r##0 = _mm256_fmadd_ps(v, b0, c##r##0);          \
    c##r##1 = _mm256_fmadd_ps(v, b1, c##r##1);          \
  } while (0)

static inline void ker_tile(int kc, const float *a, const float *b, float *const *c, size_t coff, int nr, int acc) {
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00,
         c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int p = 0; p < kc; p++, a += KER_MR, b += KER_NR) {
    __m256 b0 = _mm256_load_ps(b), b1 = _mm256_load_ps(b + 8);
    _mm_prefetch((const char *)(b + KER_PF_B), _MM_HINT_T0);
    KER_ROW(0);
    KER_ROW(1);
    KER_ROW(2);
    KER_ROW(3);
    KER_ROW(4);
    KER_ROW(5);
  }
  ker_store_row(c[0] + coff, c00, c01, nr, acc);
  ker_store_row(c[1] + coff, c10, c11, nr, acc);
  ker_store_row(c[2] + coff, c20, c21, nr, acc);
  ker_store_row(c[3] + coff, c30, c31, nr, acc);
  ker_store_row(c[4] + coff, c40, c41, nr, acc);
  ker_store_row(c[5] + coff, c50, c51, nr, acc);
}

/* 8 channels of 6 rows, transposed into 8 steps of 6 (each stored as 8
 * floats, the next step overwriting the 2 extra) */
static inline void pack6x8(float *a, const float *r0, const float *r1, const float *r2, const float *r3,
                           const float *r4, const float *r5) {
  const __m256 z = _mm256_setzero_ps();
  __m256 x0 = _mm256_loadu_ps(r0), x1 = _mm256_loadu_ps(r1), x2 = _mm256_loadu_ps(r2);
  __m256 x3 = _mm256_loadu_ps(r3), x4 = _mm256_loadu_ps(r4), x5 = _mm256_loadu_ps(r5);
  __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
  __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
  __m256 t4 = _mm256_unpacklo_ps(x4, x5), t5 = _mm256_unpackhi_ps(x4, x5);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, z, 0x44), s5 = _mm256_shuffle_ps(t4, z, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, z, 0x44), s7 = _mm256_shuffle_ps(t5, z, 0xEE);
  _mm256_storeu_ps(a + 0, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(a + 6, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(a + 12, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(a + 18, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(a + 24, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(a + 30, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(a + 36, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(a + 42, _mm256_permute2f128_ps(s3, s7, 0x31));
}

static inline void transpose8x8(float *dst, size_t ldd, const float *src, size_t lds) {
  __m256 x0 = _mm256_loadu_ps(src), x1 = _mm256_loadu_ps(src + lds), x2 = _mm256_loadu_ps(src + 2 * lds);
  __m256 x3 = _mm256_loadu_ps(src + 3 * lds), x4 = _mm256_loadu_ps(src + 4 * lds);
  __m256 x5 = _mm256_loadu_ps(src + 5 * lds), x6 = _mm256_loadu_ps(src + 6 * lds);
  __m256 x7 = _mm256_loadu_ps(src + 7 * lds);
  __m256 t0 = _mm256_unpacklo_ps(x0, x1), t1 = _mm256_unpackhi_ps(x0, x1);
  __m256 t2 = _mm256_unpacklo_ps(x2, x3), t3 = _mm256_unpackhi_ps(x2, x3);
  __m256 t4 = _mm256_unpacklo_ps(x4, x5), t5 = _mm256_unpackhi_ps(x4, x5);
  __m256 t6 = _mm256_unpacklo_ps(x6, x7), t7 = _mm256_unpackhi_ps(x6, x7);
  __m256 s0 = _mm256_shuffle_ps(t0, t2, 0x44), s1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  __m256 s2 = _mm256_shuffle_ps(t1, t3, 0x44), s3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  __m256 s4 = _mm256_shuffle_ps(t4, t6, 0x44), s5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  __m256 s6 = _mm256_shuffle_ps(t5, t7, 0x44), s7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(dst, _mm256_permute2f128_ps(s0, s4, 0x20));
  _mm256_storeu_ps(dst + ldd, _mm256_permute2f128_ps(s1, s5, 0x20));
  _mm256_storeu_ps(dst + 2 * ldd, _mm256_permute2f128_ps(s2, s6, 0x20));
  _mm256_storeu_ps(dst + 3 * ldd, _mm256_permute2f128_ps(s3, s7, 0x20));
  _mm256_storeu_ps(dst + 4 * ldd, _mm256_permute2f128_ps(s0, s4, 0x31));
  _mm256_storeu_ps(dst + 5 * ldd, _mm256_permute2f128_ps(s1, s5, 0x31));
  _mm256_storeu_ps(dst + 6 * ldd, _mm256_permute2f128_ps(s2, s6, 0x31));
  _mm256_storeu_ps(dst + 7 * ldd, _mm256_permute2f128_ps(s3, s7, 0x31));
}

static inline void pack_a_rows(float *a, const float *const *rows, int nt, size_t off, int kc) {
  for (int t = 0; t < nt; t++, rows += KER_MR) {
    const float *r0 = rows[0] + off, *r1 = rows[1] + off, *r2 = rows[2] + off, *r3 = rows[3] + off,
                *r4 = rows[4] + off, *r5 = rows[5] + off;
    int j = 0;
    for (; j + 8 <= kc; j += 8, a += 8 * KER_MR) pack6x8(a, r0 + j, r1 + j, r2 + j, r3 + j, r4 + j, r5 + j);
    for (; j < kc; j++, a += KER_MR) {
      a[0] = r0[j], a[1] = r1[j], a[2] = r2[j];
      a[3] = r3[j], a[4] = r4[j], a[5] = r5[j];
    }
  }
}

#else /* plain C */

static inline void ker_tile(int kc, const float *a, const float *b, float *const *c, size_t coff, int nr, int acc) {
  float t[KER_MR][KER_NR] = {{0}};
  for (int p = 0; p < kc; p++, a += KER_MR, b += KER_NR)
    for (int i = 0; i < KER_MR; i++)
      for (int j = 0; j < KER_NR; j++) t[i][j] += a[i] * b[j];
  for (int i = 0; i < KER_MR; i++)
    for (int j = 0; j < nr; j++) c[i][coff + j] = acc ? c[i][coff + j] + t[i][j] : t[i][j];
}

static inline void transpose8x8(float *dst, size_t ldd, const float *src, size_t lds) {
  for (int i = 0; i < 8; i++)
    for (int j = 0; j < 8; j++) dst[j * ldd + i] = src[i * lds + j];
}

static inline void pack_a_rows(float *a, const float *const *rows, int nt, size_t off, int kc) {
  for (int t = 0; t < nt; t++, rows += KER_MR)
    for (int j = 0; j < kc; j++, a += KER_MR)
      for (int r = 0; r < KER_MR; r++) a[r] = rows[r][off + j];
}

#endif
#endif
