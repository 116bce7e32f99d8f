/* resample_fast.c: the train transform's resize. Same filter as resample.c
 * (PIL's antialiased bilinear) but with 14-bit weights, the vertical pass
 * first (it shrinks the rows the horizontal pass must touch) and AVX2
 * multiply-adds of 16-bit pairs: two taps per instruction. Output differs
 * from PIL's by rounding only (at most 1-2). */
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#include "resample.h"

#define FAST_BITS 14

static int grow(void **p, size_t *cap, size_t need) {
  if (*cap >= need) return 0;
  size_t n = need + need / 2 + 64;
  void *q = realloc(*p, n);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

static inline int16_t w14(int32_t w22) { return (int16_t)((w22 + (1 << 7)) >> 8); }

static inline uint8_t clip(int32_t v) {
  v >>= FAST_BITS;
  return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* Vertical pass: out row (rowlen bytes) = sum_t k[t] * rows[st + t]. */
static void vpass(uint8_t *out, const uint8_t *src, size_t stride, size_t rowlen, int st, int n, const int32_t *k) {
  const uint8_t *base = src + (size_t)st * stride;
  size_t i = 0;
#if defined(__AVX2__)
  const __m256i round = _mm256_set1_epi32(1 << (FAST_BITS - 1));
  for (; i + 16 <= rowlen; i += 16) {
    __m256i lo = round, hi = round;
    const uint8_t *p = base + i;
    int t = 0;
    for (; t + 2 <= n; t += 2, p += 2 * stride) {
      __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
      __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(p + stride)));
      __m256i w = _mm256_set1_epi32((int32_t)(uint16_t)w14(k[t]) | ((int32_t)w14(k[t + 1]) << 16));
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), w));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), w));
    }
    if (t < n) {
      __m256i a = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)p));
      __m256i w = _mm256_set1_epi32((int32_t)(uint16_t)w14(k[t]));
      __m256i z = _mm256_setzero_si256();
      lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, z), w));
      hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, z), w));
    }
    /* lo holds bytes 0-3 and 8-11, hi 4-7 and 12-15: packs restores the order per lane */
    __m256i v = _mm256_packs_epi32(_mm256_srai_epi32(lo, FAST_BITS), _mm256_srai_epi32(hi, FAST_BITS));
    __m128i r = _mm_packus_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    _mm_storeu_si128((__m128i *)(out + i), r);
  }
#endif
  for (; i < rowlen; i++) {
    int32_t acc = 1 << (FAST_BITS - 1);
    for (int t = 0; t < n; t++) acc += base[(size_t)t * stride + i] * w14(k[t]);
    out[i] = clip(acc);
  }
}

#if defined(__AVX2__)
/* One output pixel's sums over its taps: [taps 0,1 | taps 2,3] as (r g b 0) int32. */
static inline __m256i hsum(const uint8_t *p, const int16_t *w, int groups) {
  const __m128i shuf = _mm_setr_epi8(0, 3, 1, 4, 2, 5, -1, -1, 6, 9, 7, 10, 8, 11, -1, -1);
  __m256i acc = _mm256_setzero_si256();
  for (int g = 0; g < groups; g++, p += 12, w += 16) {
    __m256i v = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), shuf));
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *)w)));
  }
  return acc;
}
#endif

/* Horizontal pass over one RGB row (which must be readable 16 bytes past its end). */
static void hpass(uint8_t *dst, const uint8_t *in, int sx0, const rs_axis *ax, const int16_t *wv, int groups, int ow,
                  int flip) {
  int j = 0;
#if defined(__AVX2__)
  /* four output pixels at a time: their sums are folded and packed together */
  const __m256i round = _mm256_set1_epi32(1 << (FAST_BITS - 1));
  const __m128i drop = _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
  const size_t gs = (size_t)groups * 16;
  for (; j + 6 <= ow; j += 4) { /* the 16-byte store stays inside the row */
    int o0 = flip ? ow - 1 - j : j, d = flip ? -1 : 1;
    int o1 = o0 + d, o2 = o1 + d, o3 = o2 + d;
    __m256i a = hsum(in + 3 * (ax->start[o0] - sx0), wv + (size_t)o0 * gs, groups);
    __m256i b = hsum(in + 3 * (ax->start[o1] - sx0), wv + (size_t)o1 * gs, groups);
    __m256i c = hsum(in + 3 * (ax->start[o2] - sx0), wv + (size_t)o2 * gs, groups);
    __m256i e = hsum(in + 3 * (ax->start[o3] - sx0), wv + (size_t)o3 * gs, groups);
    __m256i ab = _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
    __m256i ce = _mm256_add_epi32(_mm256_permute2x128_si256(c, e, 0x20), _mm256_permute2x128_si256(c, e, 0x31));
    ab = _mm256_srai_epi32(_mm256_add_epi32(ab, round), FAST_BITS);
    ce = _mm256_srai_epi32(_mm256_add_epi32(ce, round), FAST_BITS);
    __m256i pk = _mm256_packus_epi16(_mm256_packs_epi32(ab, ce), _mm256_setzero_si256()); /* [a c | b e] */
    __m128i lo = _mm256_castsi256_si128(pk), hi = _mm256_extracti128_si256(pk, 1);
    __m128i px = _mm_unpacklo_epi32(lo, hi);                                /* a b c e, 4 bytes each */
    _mm_storeu_si128((__m128i *)(dst + 3 * j), _mm_shuffle_epi8(px, drop)); /* 12 bytes + 4 overwritten next */
  }
#endif
  for (; j < ow; j++) {
    int ox = flip ? ow - 1 - j : j;
    const uint8_t *p = in + 3 * (ax->start[ox] - sx0);
#if defined(__AVX2__)
    /* bytes r0 g0 b0 r1 g1 b1 r2 g2 b2 r3 g3 b3 -> pairs (r0 r1)(g0 g1)(b0 b1)(0 0) | (r2 r3)... */
    const __m128i shuf = _mm_setr_epi8(0, 3, 1, 4, 2, 5, -1, -1, 6, 9, 7, 10, 8, 11, -1, -1);
    const int16_t *w = wv + (size_t)ox * groups * 16;
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < groups; g++, p += 12, w += 16) {
      __m256i v = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p), shuf));
      acc = _mm256_add_epi32(acc, _mm256_madd_epi16(v, _mm256_loadu_si256((const __m256i *)w)));
    }
    __m128i a = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    a = _mm_srai_epi32(_mm_add_epi32(a, _mm_set1_epi32(1 << (FAST_BITS - 1))), FAST_BITS);
    a = _mm_packus_epi16(_mm_packs_epi32(a, a), a);
    int32_t v = _mm_cvtsi128_si32(a);
    if (j + 1 < ow) {
      memcpy(dst + 3 * j, &v, 4); /* the 4th byte is overwritten next */
    } else {
      dst[3 * j] = (uint8_t)v;
      dst[3 * j + 1] = (uint8_t)(v >> 8);
      dst[3 * j + 2] = (uint8_t)(v >> 16);
    }
#else
    (void)wv;
    (void)groups;
    const int32_t *k = ax->w + (size_t)ox * ax->ksize;
    int32_t s0 = 1 << (FAST_BITS - 1), s1 = s0, s2 = s0;
    for (int t = 0; t < ax->count[ox]; t++, p += 3) {
      s0 += p[0] * w14(k[t]);
      s1 += p[1] * w14(k[t]);
      s2 += p[2] * w14(k[t]);
    }
    dst[3 * j] = clip(s0);
    dst[3 * j + 1] = clip(s1);
    dst[3 * j + 2] = clip(s2);
#endif
  }
}

int rs_resample_fast(rs_scratch *s, uint8_t *out, size_t out_stride, const uint8_t *src, size_t src_stride, int sx0,
                     int sy0, const rs_axis *ax, const rs_axis *ay, int flip) {
  int ow = ax->n, oh = ay->n, xlo, xhi;
  rs_axis_span(ax, 0, ow, &xlo, &xhi);
  size_t rowlen = (size_t)(xhi - xlo) * 3;
  /* horizontal weights in groups of four taps: (w0 w1 w0 w1 w0 w1 0 0 | w2 w3 ...) */
  int maxn = 1;
  for (int i = 0; i < ow; i++) maxn = ax->count[i] > maxn ? ax->count[i] : maxn;
  int groups = (maxn + 3) / 4;
  size_t wbytes = (size_t)ow * groups * 16 * sizeof(int16_t);
  if (grow((void **)&s->tmp, &s->tmp_cap, (size_t)oh * rowlen + 64) != 0 ||
      grow((void **)&s->wv, &s->wv_cap, wbytes) != 0)
    return -1;
  int16_t *wv = s->wv;
  memset(wv, 0, wbytes);
  for (int i = 0; i < ow; i++)
    for (int t = 0; t < ax->count[i]; t++) {
      int16_t *g = wv + ((size_t)i * groups + t / 4) * 16 + (t % 4 / 2) * 8 + (t % 2);
      g[0] = g[2] = g[4] = w14(ax->w[(size_t)i * ax->ksize + t]);
    }
  const uint8_t *base = src + (size_t)(xlo - sx0) * 3;
  for (int j = 0; j < oh; j++)
    vpass(s->tmp + (size_t)j * rowlen, base, src_stride, rowlen, ay->start[j] - sy0, ay->count[j],
          ay->w + (size_t)j * ay->ksize);
  for (int j = 0; j < oh; j++)
    hpass(out + (size_t)j * out_stride, s->tmp + (size_t)j * rowlen, xlo, ax, wv, groups, ow, flip);
  return 0;
}
