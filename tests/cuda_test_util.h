/* cuda_test_util.h: host-side helpers for tests that compare a device
 * backend with the CPU backend through backend.h alone — dtype rounding and
 * conversion (bf16 / fp16 / fp32 on the host), upload / download with
 * conversion, NaN-poisoned outputs, fresh random data, and a comparison that
 * records the worst error-to-tolerance ratio. Include after harness.h. */
#ifndef RN50_CUDA_TEST_UTIL_H
#define RN50_CUDA_TEST_UTIL_H

#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "core/rng.h"
#include "core/util.h"

/* ---- host dtype conversion (round to nearest even, NaN kept) ---- */
static inline uint16_t tu_f2bf(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return 0x7fc0;
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
static inline float tu_bf2f(uint16_t b) {
  uint32_t u = (uint32_t)b << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline uint16_t tu_f2h(float f) { return _cvtss_sh(f, _MM_FROUND_TO_NEAREST_INT); }
static inline float tu_h2f(uint16_t h) { return _cvtsh_ss(h); }

static inline size_t tu_size(dtype dt) { return dt == DTYPE_F32 ? 4 : 2; }

static inline float tu_round(dtype dt, float v) {
  if (dt == DTYPE_BF16) return tu_bf2f(tu_f2bf(v));
  if (dt == DTYPE_F16) return tu_h2f(tu_f2h(v));
  return v;
}
static inline void tu_round_all(dtype dt, float *a, size_t n) {
  for (size_t i = 0; i < n; i++) a[i] = tu_round(dt, a[i]);
}

/* ---- backend buffers, freed together by tu_release() ---- */
#define TU_MAX_BUFS 512
static struct {
  backend *be;
  void *p;
} tu_bufs[TU_MAX_BUFS];
static int tu_nbufs;

static inline void *tu_alloc(backend *be, size_t bytes) {
  if (tu_nbufs == TU_MAX_BUFS) die("cuda_test_util: too many buffers");
  void *p = be->alloc(be, bytes ? bytes : 16, "test buffer");
  tu_bufs[tu_nbufs].be = be;
  tu_bufs[tu_nbufs].p = p;
  tu_nbufs++;
  return p;
}
static inline void tu_release(void) {
  for (int i = tu_nbufs - 1; i >= 0; i--) {
    tu_bufs[i].be->sync(tu_bufs[i].be);
    tu_bufs[i].be->free(tu_bufs[i].be, tu_bufs[i].p);
  }
  tu_nbufs = 0;
}

/* n floats as dt in backend memory */
static inline void *tu_up(backend *be, dtype dt, const float *h, size_t n) {
  size_t es = tu_size(dt);
  void *d = tu_alloc(be, n * es);
  void *tmp = xmalloc(n * es + 1, "test upload");
  for (size_t i = 0; i < n; i++) {
    if (dt == DTYPE_F32) ((float *)tmp)[i] = h[i];
    else if (dt == DTYPE_BF16) ((uint16_t *)tmp)[i] = tu_f2bf(h[i]);
    else ((uint16_t *)tmp)[i] = tu_f2h(h[i]);
  }
  be->to_device(be, d, tmp, n * es);
  be->sync(be);
  free(tmp);
  return d;
}
static inline void *tu_up_bytes(backend *be, const void *h, size_t bytes) {
  void *d = tu_alloc(be, bytes);
  be->to_device(be, d, h, bytes);
  be->sync(be);
  return d;
}
/* n elements of dt filled with 0xFF bytes: NaN in every dtype */
static inline void *tu_poison(backend *be, dtype dt, size_t n) {
  size_t bytes = n * tu_size(dt);
  void *d = tu_alloc(be, bytes);
  void *tmp = xmalloc(bytes + 1, "test poison");
  memset(tmp, 0xff, bytes);
  be->to_device(be, d, tmp, bytes);
  be->sync(be);
  free(tmp);
  return d;
}
static inline void tu_down(backend *be, dtype dt, float *h, const void *d, size_t n) {
  size_t es = tu_size(dt);
  void *tmp = xmalloc(n * es + 1, "test download");
  be->to_host(be, tmp, d, n * es);
  for (size_t i = 0; i < n; i++) {
    if (dt == DTYPE_F32) h[i] = ((float *)tmp)[i];
    else if (dt == DTYPE_BF16) h[i] = tu_bf2f(((uint16_t *)tmp)[i]);
    else h[i] = tu_h2f(((uint16_t *)tmp)[i]);
  }
  free(tmp);
}

/* ---- fresh random data: every call draws new numbers ---- */
static uint64_t tu_seed = 20261126, tu_counter;
static inline float *tu_rand(size_t n, float lo, float hi) {
  float *a = xmalloc(n * sizeof(float) + 4, "test data");
  uint64_t stream = ++tu_counter;
  for (size_t i = 0; i < n; i++) a[i] = lo + (hi - lo) * (float)rng_uniform(tu_seed, stream, i);
  return a;
}
static inline float *tu_copy(const float *a, size_t n) {
  float *b = xmalloc(n * sizeof(float) + 4, "test data");
  memcpy(b, a, n * sizeof(float));
  return b;
}

/* ---- comparison ---- */
static double tu_worst; /* largest error / tolerance in the current test */
static int tu_verbose;

/* Compare a device result (downloaded as dt) with the CPU's; both are
 * backend buffers. Records failures with the label. */
static inline void tu_cmp(const char *what, backend *g, dtype gdt, const void *gd, backend *c, const void *cd, size_t n,
                   double tol) {
  float *a = xmalloc(n * sizeof(float) + 4, "test compare");
  float *b = xmalloc(n * sizeof(float) + 4, "test compare");
  tu_down(g, gdt, a, gd, n);
  tu_down(c, DTYPE_F32, b, cd, n);
  double e = rel_l2(a, b, n);
  size_t nan_at = n;
  for (size_t i = 0; i < n && nan_at == n; i++)
    if (isnan(a[i])) nan_at = i;
  if (tu_verbose) printf("    %-48s rel err %.3g (tol %.1g)\n", what, e, tol);
  if (nan_at < n)
    CHECK(0, "%s: NaN at element %zu of %zu (unwritten or wrong)", what, nan_at, n);
  else
    CHECK(e <= tol, "%s: relative L2 error %.3g > tolerance %.1g", what, e, tol);
  if (tol > 0 && e / tol > tu_worst) tu_worst = e / tol;
  free(a);
  free(b);
}

#endif
