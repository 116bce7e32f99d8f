/* resample.c: PIL's Resample.c (ImagingResampleInner with the bilinear
 * filter, 8 bits per channel) re-expressed over RGB buffers with an output
 * window. Kept bit-exact: the eval transform is compared with torchvision. */
#include "resample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#if defined(__AVX2__)
#include <immintrin.h>
#endif

#define PRECISION_BITS (32 - 8 - 2)

static double bilinear_filter(double x) {
  if (x < 0.0) x = -x;
  if (x < 1.0) return 1.0 - x;
  return 0.0;
}

static int grow(void **p, size_t *cap, size_t need) {
  if (*cap >= need) return 0;
  size_t n = need + need / 2 + 64;
  void *q = realloc(*p, n);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

int rs_axis_init(rs_axis *a, int in_size, double in0d, double in1d, int out_size) {
  float in0 = (float)in0d, in1 = (float)in1d; /* PIL keeps the box in floats */
  double scale = (double)(in1 - in0) / out_size;
  double filterscale = scale < 1.0 ? 1.0 : scale;
  double support = 1.0 * filterscale;
  int ksize = (int)ceil(support) * 2 + 1;
  size_t nb = (size_t)out_size * sizeof(int);
  size_t nw = (size_t)out_size * ksize;
  if (a->cap_n < nb) {
    int *st = realloc(a->start, nb), *ct = st ? realloc(a->count, nb) : NULL;
    if (st) a->start = st;
    if (!st || !ct) return -1;
    a->count = ct;
    a->cap_n = nb;
  }
  if (grow((void **)&a->w, &a->cap_w, nw * sizeof(int32_t)) != 0) return -1;
  a->n = out_size;
  a->in_size = in_size;
  a->ksize = ksize;
  a->identity = out_size == in_size && in0 == 0.0f && in1 == (float)in_size;
  double k[64 + 8];
  double *kk = ksize <= 64 ? k : malloc(sizeof(double) * (size_t)ksize);
  if (!kk) return -1;
  for (int xx = 0; xx < out_size; xx++) {
    double center = in0 + (xx + 0.5) * scale;
    double ww = 0.0, ss = 1.0 / filterscale;
    int xmin = (int)(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    int xmax = (int)(center + support + 0.5);
    if (xmax > in_size) xmax = in_size;
    xmax -= xmin;
    if (xmax < 0) xmax = 0;
    int x;
    for (x = 0; x < xmax; x++) {
      double w = bilinear_filter((x + xmin - center + 0.5) * ss);
      kk[x] = w;
      ww += w;
    }
    for (x = 0; x < xmax; x++)
      if (ww != 0.0) kk[x] /= ww;
    for (; x < ksize; x++) kk[x] = 0;
    int32_t *o = a->w + (size_t)xx * ksize;
    for (x = 0; x < ksize; x++)
      o[x] =
          kk[x] < 0 ? (int32_t)(-0.5 + kk[x] * (1 << PRECISION_BITS)) : (int32_t)(0.5 + kk[x] * (1 << PRECISION_BITS));
    a->start[xx] = xmin;
    a->count[xx] = xmax;
  }
  if (kk != k) free(kk);
  return 0;
}

void rs_axis_free(rs_axis *a) {
  free(a->start);
  free(a->count);
  free(a->w);
  memset(a, 0, sizeof *a);
}

void rs_axis_span(const rs_axis *a, int o0, int n, int *lo, int *hi) {
  int l = a->in_size, h = 0;
  for (int i = o0; i < o0 + n; i++) {
    if (a->count[i] <= 0) continue;
    if (a->start[i] < l) l = a->start[i];
    if (a->start[i] + a->count[i] > h) h = a->start[i] + a->count[i];
  }
  if (h <= l) l = h = 0;
  *lo = l;
  *hi = h;
}

void rs_scratch_free(rs_scratch *s) {
  free(s->tmp);
  free(s->wv);
  memset(s, 0, sizeof *s);
}

static inline uint8_t clip8(int32_t v) {
  if (v >= (1 << PRECISION_BITS << 8)) return 255;
  if (v <= 0) return 0;
  return (uint8_t)(v >> PRECISION_BITS);
}

static inline void store3(uint8_t *o, int32_t v) {
  o[0] = (uint8_t)v;
  o[1] = (uint8_t)(v >> 8);
  o[2] = (uint8_t)(v >> 16);
}

/* One source row (RGB or RGBX) through the horizontal pass into dst (ow RGB pixels). */
static void pass_h(uint8_t *restrict dst, const uint8_t *restrict in, int bpp, int sx0, const rs_axis *ax, int ox0,
                   int ow, int flip) {
  const int ks = ax->ksize;
  const int *restrict start = ax->start;
  const int *restrict count = ax->count;
  const int32_t *restrict wts = ax->w;
  const int step = flip ? -1 : 1;
  int ox = flip ? ox0 + ow - 1 : ox0;
  if (ax->identity) {
    for (int j = 0; j < ow; j++, ox += step) {
      const uint8_t *p = in + bpp * (ox - sx0);
      dst[3 * j] = p[0];
      dst[3 * j + 1] = p[1];
      dst[3 * j + 2] = p[2];
    }
    return;
  }
#if defined(__AVX2__)
  if (bpp == 4) {
    const __m256i round = _mm256_setr_epi32(1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1),
                                            1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1), 0, 0, 0, 0);
    for (int j = 0; j < ow; j++, ox += step) {
      const int32_t *k = wts + (size_t)ox * ks;
      const uint8_t *p = in + 4 * (start[ox] - sx0);
      const int n = count[ox];
      __m256i acc = round;
      int t = 0;
      for (; t + 2 <= n; t += 2) {
        __m256i v = _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)(p + 4 * t)));
        __m256i w = _mm256_setr_m128i(_mm_set1_epi32(k[t]), _mm_set1_epi32(k[t + 1]));
        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(v, w));
      }
      __m128i a = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
      if (t < n) {
        int32_t one;
        memcpy(&one, p + 4 * t, 4);
        a = _mm_add_epi32(a, _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(one)), _mm_set1_epi32(k[t])));
      }
      /* >> 22 then saturation to 0..255 is PIL's clip8 */
      a = _mm_srai_epi32(a, PRECISION_BITS);
      a = _mm_packus_epi16(_mm_packs_epi32(a, a), a);
      int32_t v = _mm_cvtsi128_si32(a);
      if (j + 1 < ow) memcpy(dst + 3 * j, &v, 4); /* the 4th byte is overwritten next */
      else store3(dst + 3 * j, v);
    }
    return;
  }
#endif
  for (int j = 0; j < ow; j++, ox += step) {
    const int32_t *k = wts + (size_t)ox * ks;
    const uint8_t *p = in + bpp * (start[ox] - sx0);
    int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
    for (int t = 0, n = count[ox]; t < n; t++, p += bpp) {
      s0 += p[0] * k[t];
      s1 += p[1] * k[t];
      s2 += p[2] * k[t];
    }
    dst[3 * j] = clip8(s0);
    dst[3 * j + 1] = clip8(s1);
    dst[3 * j + 2] = clip8(s2);
  }
}

/* One output row of the vertical pass: out[i] = clip8(sum_t k[t] * row[st + t][i])
 * for i < rowlen, rows stride bytes apart. */
static void pass_v(uint8_t *out, const uint8_t *tmp, size_t stride, size_t rowlen, int st, int n, const int32_t *k) {
  size_t i = 0;
#if defined(__AVX2__)
  const __m256i round = _mm256_set1_epi32(1 << (PRECISION_BITS - 1));
  for (; i + 16 <= rowlen; i += 16) {
    __m256i a0 = round, a1 = round;
    const uint8_t *p = tmp + (size_t)st * stride + i;
    for (int t = 0; t < n; t++, p += stride) {
      __m128i b = _mm_loadu_si128((const __m128i *)p);
      __m256i w = _mm256_set1_epi32(k[t]);
      a0 = _mm256_add_epi32(a0, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(b), w));
      a1 = _mm256_add_epi32(a1, _mm256_mullo_epi32(_mm256_cvtepu8_epi32(_mm_srli_si128(b, 8)), w));
    }
    a0 = _mm256_srai_epi32(a0, PRECISION_BITS);
    a1 = _mm256_srai_epi32(a1, PRECISION_BITS);
    __m128i lo = _mm_packs_epi32(_mm256_castsi256_si128(a0), _mm256_extracti128_si256(a0, 1));
    __m128i hi = _mm_packs_epi32(_mm256_castsi256_si128(a1), _mm256_extracti128_si256(a1, 1));
    _mm_storeu_si128((__m128i *)(out + i), _mm_packus_epi16(lo, hi));
  }
#endif
  for (; i < rowlen; i++) {
    int32_t acc = 1 << (PRECISION_BITS - 1);
    const uint8_t *p = tmp + (size_t)st * stride + i;
    for (int t = 0; t < n; t++, p += stride) acc += *p * k[t];
    out[i] = clip8(acc);
  }
}

int rs_resample(rs_scratch *s, uint8_t *out, size_t out_stride, const uint8_t *src, size_t src_stride, int bpp, int sx0,
                int sy0, const rs_axis *ax, int ox0, int ow, const rs_axis *ay, int oy0, int oh, int flip) {
  if (ow <= 0 || oh <= 0) return 0;
  int ylo, yhi;
  rs_axis_span(ay, oy0, oh, &ylo, &yhi);
  if (ay->identity) {
    ylo = oy0;
    yhi = oy0 + oh;
  }
  size_t rowlen = (size_t)ow * 3;
  size_t rows = (size_t)(yhi - ylo);
  if (grow((void **)&s->tmp, &s->tmp_cap, rows * rowlen + 16) != 0) return -1;
  for (int y = ylo; y < yhi; y++)
    pass_h(s->tmp + (size_t)(y - ylo) * rowlen, src + (size_t)(y - sy0) * src_stride, bpp, sx0, ax, ox0, ow, flip);
  int ks = ay->ksize;
  for (int j = 0; j < oh; j++) {
    int oy = oy0 + j;
    uint8_t *o = out + (size_t)j * out_stride;
    if (ay->identity) memcpy(o, s->tmp + (size_t)(oy - ylo) * rowlen, rowlen);
    else pass_v(o, s->tmp, rowlen, rowlen, ay->start[oy] - ylo, ay->count[oy], ay->w + (size_t)oy * ks);
  }
  return 0;
}
