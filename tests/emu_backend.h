/* emu_backend.h: a test-only backend that is the CPU backend with a GPU's
 * rounding. It stands in for the CUDA backend where there is no GPU, so that
 * tests/test_gpu_model.c can run its whole logic here
 * (RN50_TEST_CUDA_SELF=1), and it estimates how far a bf16 / fp16 / TF32 GPU
 * run may honestly be from the CPU's fp32 — the figures behind that test's
 * tolerances. It mirrors src/cuda's precision rules (docs/CUDA.md):
 *   store F32/BF16/F16: every activation and activation gradient the backend
 *     writes, and the working copies of conv / fc weights, are rounded to
 *     that dtype (values kept in fp32 arrays, so act_size stays 4); the BN
 *     statistics, the logits, the loss and every parameter gradient stay
 *     fp32; conv weight gradients pass through the act dtype (cuDNN writes
 *     them so) before they are added; fc's incoming fp32 gradient is
 *     rounded for its two GEMMs, its bias gradient is summed in fp32.
 *   tf32: the operands of convs and fc GEMMs are rounded to TF32.
 *   noise: every computed activation / activation gradient is multiplied by
 *     (1 + noise * u), u uniform in [-1, 1] — a stand-in for the different
 *     summation order of another machine's fp32 (cuDNN, cuBLAS).
 * The arithmetic itself is the CPU backend's. Include after harness.h and
 * cuda_test_util.h (for the host rounding functions). */
#ifndef RN50_EMU_BACKEND_H
#define RN50_EMU_BACKEND_H

#include <stdint.h>
#include <string.h>

#include "backend.h"
#include "core/util.h"

typedef struct {
  backend *cpu;   /* does the arithmetic; owned by the caller */
  dtype store;    /* rounding of stored activations and working weights */
  int tf32;       /* round conv / fc operands to TF32 */
  double noise;   /* relative noise on computed activations */
  uint64_t calls; /* noise stream */
} emu_impl;

static inline emu_impl *emu_of(backend *be) { return (emu_impl *)be->impl; }

static inline float emu_tf32(float v) {
  uint32_t u;
  memcpy(&u, &v, 4);
  if ((u & 0x7f800000u) == 0x7f800000u) return v;
  u += 0xfffu + ((u >> 13) & 1u);
  u &= ~0x1fffu;
  memcpy(&v, &u, 4);
  return v;
}

/* a fresh copy of n floats rounded to dt and/or TF32 (caller frees) */
static inline float *emu_rounded_copy(const void *src, size_t n, dtype dt, int tf32) {
  float *d = (float *)xmalloc(n * sizeof(float) + 4, "emu operand");
  memcpy(d, src, n * sizeof(float));
  if (dt != DTYPE_F32) tu_round_all(dt, d, n);
  if (tf32)
    for (size_t i = 0; i < n; i++) d[i] = emu_tf32(d[i]);
  return d;
}

/* GEMM operands as the GPU sees them: stored values (already in the act
 * dtype) for bf16/fp16, TF32-rounded copies for tf32, plain for fp32 */
static inline const float *emu_operand(backend *be, const void *p, size_t n, float **owned) {
  emu_impl *e = emu_of(be);
  *owned = NULL;
  if (!e->tf32) return (const float *)p;
  *owned = emu_rounded_copy(p, n, DTYPE_F32, 1);
  return *owned;
}

/* weights: the act-dtype working copy (exec keeps one fp32 array when
 * act_size is 4, so the rounding happens here) */
static inline const float *emu_weights(backend *be, const void *w, size_t n, float **owned) {
  emu_impl *e = emu_of(be);
  *owned = NULL;
  if (e->store == DTYPE_F32 && !e->tf32) return (const float *)w;
  *owned = emu_rounded_copy(w, n, e->store, e->tf32);
  return *owned;
}

/* out = round(acc ? old + v : v) with noise on v; v and out may alias */
static inline void emu_finish(backend *be, float *out, const float *v, size_t n, const float *old) {
  emu_impl *e = emu_of(be);
  uint64_t call = ++e->calls;
#pragma omp parallel for schedule(static) if (n > 65536)
  for (size_t i = 0; i < n; i++) {
    float x = v[i];
    if (e->noise > 0) {
      uint64_t h = (call * 0x9E3779B97F4A7C15ull) ^ (i * 0xC2B2AE3D27D4EB4Full);
      h ^= h >> 31;
      h *= 0xD6E8FEB86659FD93ull;
      h ^= h >> 32;
      double u = (double)(h >> 11) * (2.0 / 9007199254740992.0) - 1.0;
      x = (float)(x * (1.0 + e->noise * u));
    }
    if (old) x += old[i];
    out[i] = tu_round(e->store, x);
  }
}

static inline float *emu_tmp(size_t n) { return (float *)xmalloc(n * sizeof(float) + 4, "emu scratch"); }
static inline float *emu_dup(const void *p, size_t n) {
  float *d = emu_tmp(n);
  memcpy(d, p, n * sizeof(float));
  return d;
}

static void emu_input_from_u8(backend *be, void *x, const uint8_t *img, int n, int h, int w, int c,
                              const float mean[3], const float inv_std[3]) {
  backend *C = emu_of(be)->cpu;
  C->input_from_u8(C, x, img, n, h, w, c, mean, inv_std);
  tu_round_all(emu_of(be)->store, (float *)x, (size_t)n * h * w * c);
}

static void emu_cast_params(backend *be, void *dst, const float *src, size_t n) {
  if (dst != (const void *)src) memcpy(dst, src, n * sizeof(float));
}

static void emu_conv_fwd(backend *be, const conv_desc *d, void *y, const void *x, const void *w) {
  backend *C = emu_of(be)->cpu;
  size_t nx = (size_t)d->n * d->h * d->w * d->c, ny = (size_t)d->n * d->oh * d->ow * d->k,
         nw = (size_t)d->k * d->kh * d->kw * d->c;
  float *ox, *ow;
  const float *xr = emu_operand(be, x, nx, &ox), *wr = emu_weights(be, w, nw, &ow);
  C->conv_fwd(C, d, y, xr, wr);
  emu_finish(be, (float *)y, (float *)y, ny, NULL);
  free(ox), free(ow);
}

static void emu_conv_bwd_data(backend *be, const conv_desc *d, void *dx, const void *dy, const void *w, int acc) {
  backend *C = emu_of(be)->cpu;
  size_t nx = (size_t)d->n * d->h * d->w * d->c, ny = (size_t)d->n * d->oh * d->ow * d->k,
         nw = (size_t)d->k * d->kh * d->kw * d->c;
  float *ody, *ow, *t = emu_tmp(nx);
  const float *dyr = emu_operand(be, dy, ny, &ody), *wr = emu_weights(be, w, nw, &ow);
  C->conv_bwd_data(C, d, t, dyr, wr, 0);
  emu_finish(be, (float *)dx, t, nx, acc ? (const float *)dx : NULL);
  free(t), free(ody), free(ow);
}

static void emu_conv_bwd_filter(backend *be, const conv_desc *d, float *dw, const void *dy, const void *x) {
  backend *C = emu_of(be)->cpu;
  size_t nx = (size_t)d->n * d->h * d->w * d->c, ny = (size_t)d->n * d->oh * d->ow * d->k,
         nw = (size_t)d->k * d->kh * d->kw * d->c;
  float *ody, *ox, *t = emu_tmp(nw);
  memset(t, 0, nw * sizeof(float));
  const float *dyr = emu_operand(be, dy, ny, &ody), *xr = emu_operand(be, x, nx, &ox);
  C->conv_bwd_filter(C, d, t, dyr, xr);
  tu_round_all(emu_of(be)->store, t, nw); /* cuDNN writes dw in the act dtype */
  for (size_t i = 0; i < nw; i++) dw[i] += t[i];
  free(t), free(ody), free(ox);
}

static void emu_bn_fwd_train(backend *be, int m, int c, void *y, const void *x, const void *r, int relu,
                             const float *gamma, const float *beta, float *rm, float *rv, float *sm, float *si,
                             float momentum, float eps) {
  backend *C = emu_of(be)->cpu;
  C->bn_fwd_train(C, m, c, y, x, r, relu, gamma, beta, rm, rv, sm, si, momentum, eps);
  emu_finish(be, (float *)y, (float *)y, (size_t)m * c, NULL);
}

static void emu_bn_fwd_eval(backend *be, int m, int c, void *y, const void *x, const void *r, int relu,
                            const float *gamma, const float *beta, const float *rm, const float *rv, float eps) {
  backend *C = emu_of(be)->cpu;
  C->bn_fwd_eval(C, m, c, y, x, r, relu, gamma, beta, rm, rv, eps);
  emu_finish(be, (float *)y, (float *)y, (size_t)m * c, NULL);
}

static void emu_bn_bwd(backend *be, int m, int c, void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                       const void *y, const void *x, const float *gamma, const float *sm, const float *si, int relu,
                       int acc_dx, int acc_dr) {
  backend *C = emu_of(be)->cpu;
  size_t n = (size_t)m * c;
  float *tx = dx ? emu_tmp(n) : NULL, *tr = dr ? emu_tmp(n) : NULL;
  C->bn_bwd(C, m, c, tx, tr, dgamma, dbeta, dy, y, x, gamma, sm, si, relu, 0, 0);
  if (dx) emu_finish(be, (float *)dx, tx, n, acc_dx ? (const float *)dx : NULL);
  if (dr) emu_finish(be, (float *)dr, tr, n, acc_dr ? (const float *)dr : NULL);
  free(tx), free(tr);
}

static void emu_maxpool_fwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int s, int p, void *y,
                            const void *x) {
  backend *C = emu_of(be)->cpu;
  C->maxpool_fwd(C, n, h, w, c, oh, ow, k, s, p, y, x); /* a maximum of stored values is exact */
}

static void emu_maxpool_bwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int s, int p, void *dx,
                            const void *dy, const void *x, int acc) {
  backend *C = emu_of(be)->cpu;
  size_t nx = (size_t)n * h * w * c;
  float *t = emu_tmp(nx);
  C->maxpool_bwd(C, n, h, w, c, oh, ow, k, s, p, t, dy, x, 0);
  emu_finish(be, (float *)dx, t, nx, acc ? (const float *)dx : NULL);
  free(t);
}

static void emu_avgpool_fwd(backend *be, int n, int hw, int c, void *y, const void *x) {
  backend *C = emu_of(be)->cpu;
  C->avgpool_fwd(C, n, hw, c, y, x);
  emu_finish(be, (float *)y, (float *)y, (size_t)n * c, NULL);
}

static void emu_avgpool_bwd(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc) {
  backend *C = emu_of(be)->cpu;
  size_t nx = (size_t)n * hw * c;
  float *t = emu_tmp(nx);
  C->avgpool_bwd(C, n, hw, c, t, dy, 0);
  emu_finish(be, (float *)dx, t, nx, acc ? (const float *)dx : NULL);
  free(t);
}

static void emu_fc_fwd(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b) {
  backend *C = emu_of(be)->cpu;
  emu_impl *e = emu_of(be);
  float *ox, *ow, *ob = emu_rounded_copy(b, (size_t)cout, e->store, 0); /* bias: working copy, no GEMM */
  const float *xr = emu_operand(be, x, (size_t)n * cin, &ox), *wr = emu_weights(be, w, (size_t)cout * cin, &ow);
  C->fc_fwd(C, n, cin, cout, y, xr, wr, ob);
  if (e->noise > 0) {
    dtype keep = e->store;
    e->store = DTYPE_F32; /* logits are fp32 */
    emu_finish(be, y, y, (size_t)n * cout, NULL);
    e->store = keep;
  }
  free(ox), free(ow), free(ob);
}

static void emu_fc_bwd(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                       const void *x, const void *w, int acc) {
  backend *C = emu_of(be)->cpu;
  emu_impl *e = emu_of(be);
  size_t nx = (size_t)n * cin, ny = (size_t)n * cout;
  /* the GEMMs see dy in the act dtype (and TF32); db sums the fp32 dy */
  float *dyr = emu_rounded_copy(dy, ny, e->store, e->tf32), *ox, *ow, *t = emu_tmp(nx);
  float *dbt = emu_tmp((size_t)cout);
  memset(dbt, 0, (size_t)cout * sizeof(float));
  const float *xr = emu_operand(be, x, nx, &ox), *wr = emu_weights(be, w, (size_t)cout * cin, &ow);
  C->fc_bwd(C, n, cin, cout, t, dw, dbt, dyr, xr, wr, 0);
  for (int j = 0; j < cout; j++) {
    double s = 0;
    for (int i = 0; i < n; i++) s += dy[(size_t)i * cout + j];
    db[j] += (float)s;
  }
  if (dx) emu_finish(be, (float *)dx, t, nx, acc ? (const float *)dx : NULL);
  free(dyr), free(ox), free(ow), free(t), free(dbt);
}

static void emu_xent(backend *be, int n, int classes, float *loss, float *dl, const float *logits,
                     const int32_t *labels, float smoothing, float gs) {
  backend *C = emu_of(be)->cpu;
  C->xent(C, n, classes, loss, dl, logits, labels, smoothing, gs);
}

static void emu_sgd_step(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t nd,
                         float lr, float mom, float wd, float wd_rest, int nesterov, float gs) {
  backend *C = emu_of(be)->cpu;
  C->sgd_step(C, w, buf, g, w_work, n, nd, lr, mom, wd, wd_rest, nesterov, gs);
}

static int emu_nonfinite(backend *be, const float *g, size_t n) {
  backend *C = emu_of(be)->cpu;
  return C->nonfinite(C, g, n);
}

static void emu_ema_update(backend *be, float *ema, const float *w, size_t n, float decay) {
  backend *C = emu_of(be)->cpu;
  C->ema_update(C, ema, w, n, decay);
}

static void emu_destroy(backend *be) {
  free(be->impl);
  free(be);
}

/* A backend over cpu (which the caller keeps and destroys after this one)
 * that rounds like a GPU in dtype store (tf32: TF32 GEMM operands), adds
 * relative noise, and asks nets for in_c input channels. */
static inline backend *emu_backend_create(backend *cpu, dtype store, int tf32, double noise, int in_c) {
  backend *be = (backend *)xcalloc(1, sizeof *be, "emu backend");
  emu_impl *e = (emu_impl *)xcalloc(1, sizeof *e, "emu backend");
  e->cpu = cpu;
  e->store = store;
  e->tf32 = tf32;
  e->noise = noise;
  *be = *cpu; /* memory functions, sync */
  be->name = "emu";
  be->impl = e;
  be->act_dtype = DTYPE_F32;
  be->act_size = sizeof(float);
  be->in_c = in_c;
  be->destroy = emu_destroy;
  be->input_from_u8 = emu_input_from_u8;
  be->cast_params = emu_cast_params;
  be->conv_fwd = emu_conv_fwd;
  be->conv_bwd_data = emu_conv_bwd_data;
  be->conv_bwd_filter = emu_conv_bwd_filter;
  be->conv_prepare = NULL;
  be->bn_fwd_train = emu_bn_fwd_train;
  be->bn_fwd_eval = emu_bn_fwd_eval;
  be->bn_bwd = emu_bn_bwd;
  be->maxpool_fwd = emu_maxpool_fwd;
  be->maxpool_bwd = emu_maxpool_bwd;
  be->avgpool_fwd = emu_avgpool_fwd;
  be->avgpool_bwd = emu_avgpool_bwd;
  be->fc_fwd = emu_fc_fwd;
  be->fc_bwd = emu_fc_bwd;
  be->xent = emu_xent;
  be->sgd_step = emu_sgd_step;
  be->nonfinite = emu_nonfinite;
  be->ema_update = emu_ema_update;
  return be;
}

#endif
