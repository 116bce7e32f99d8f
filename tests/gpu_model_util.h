/* gpu_model_util.h: helpers for tests/test_gpu_model.c — the shared starting
 * state (tools/torch_ref.py's recipe), moving state between nets whose
 * first conv stores a different number of input channels (the CPU's 3, the
 * GPU's padded 4), synthetic batches, per-tensor comparisons in torchvision
 * layout, and a small record file through which one process hands the CPU's
 * reference results to the others. Include after harness.h. */
#ifndef RN50_GPU_MODEL_UTIL_H
#define RN50_GPU_MODEL_UTIL_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"
#include "model/exec.h"
#include "model/net.h"

/* ---- the starting state ---- */

static int gm_is_last_bn(const net *n, const char *name) {
  const char *dot = strrchr(name, '.');
  if (!dot || strncmp(name, "layer", 5) != 0 || strstr(name, "downsample")) return 0;
  return !strcmp(dot + 1, n->bottleneck ? "bn3" : "bn2");
}

/* torchvision's init from seed, then as tools/torch_ref.py: every BN's
 * gamma ~ 1 + 0.2 N(0,1) (x0.1 for the last BN of each block: a
 * small-residual start, as zero_init_residual gives real runs), beta ~
 * 0.1 N, running mean ~ 0.1 N, running var ~ 1 + 0.5 U, 3 batches tracked.
 * With bn_random 0 it is torchvision's init alone. Arrays in n's layout. */
static void gm_init_state(const net *n, uint64_t seed, int bn_random, float *params, float *running,
                          int64_t *counts) {
  net_init_params(n, seed, 0, params, running, counts);
  if (!bn_random) return;
  rng_stream g = rng_stream_make(seed, 0x626e);
  for (int i = 0; i < n->n_ops; i++) {
    const net_op *op = &n->ops[i];
    if (op->kind != OP_BN) continue;
    const state_entry *gs = &n->state[op->w], *bs = &n->state[op->b], *ms = &n->state[op->rmean],
                      *vs = &n->state[op->rvar];
    float scale = gm_is_last_bn(n, op->name) ? 0.1f : 1.0f;
    for (size_t k = 0; k < gs->numel; k++) {
      params[gs->offset + k] = scale * (float)(1 + 0.2 * rng_next_normal(&g));
      params[bs->offset + k] = (float)(0.1 * rng_next_normal(&g));
      running[ms->offset + k] = (float)(0.1 * rng_next_normal(&g));
      running[vs->offset + k] = (float)(1 + 0.5 * rng_next_uniform(&g));
    }
    counts[n->state[op->count].offset] = 3;
  }
}

/* parameters from one net's layout into another's (same arch and classes;
 * the first conv may store a different number of input channels: extra
 * channels become zero, missing ones are dropped). Running statistics have
 * the same layout in both. */
static void gm_convert_params(const net *from, const float *src, const net *to, float *dst) {
  if (from->n_state != to->n_state) die("gm_convert_params: nets differ");
  for (int i = 0; i < from->n_state; i++) {
    const state_entry *a = &from->state[i], *b = &to->state[i];
    if (a->cls != ST_PARAM) continue;
    if (strcmp(a->name, b->name) != 0) die("gm_convert_params: %s vs %s", a->name, b->name);
    float *tmp = (float *)xmalloc(state_torch_numel(a) * sizeof(float) + 4, "layout conversion");
    state_to_torch(a, src + a->offset, tmp);
    state_from_torch(b, tmp, dst + b->offset);
    free(tmp);
  }
}

/* stored elements of conv weights in padded input channels that are not 0 */
static size_t gm_nonzero_padding(const net *n, const float *params) {
  size_t bad = 0;
  for (int i = 0; i < n->n_state; i++) {
    const state_entry *e = &n->state[i];
    if (e->cls != ST_PARAM || !e->conv || e->in_pad == e->shape[1]) continue;
    size_t groups = e->numel / (size_t)e->in_pad;
    for (size_t g = 0; g < groups; g++)
      for (int c = (int)e->shape[1]; c < e->in_pad; c++) bad += params[e->offset + g * e->in_pad + c] != 0.0f;
  }
  return bad;
}

/* ---- batches ---- */

/* uniform random pixels (as tools/torch_ref.py) and labels */
static void gm_random_batch(uint64_t seed, int nb, int size, int classes, uint8_t *img, int32_t *labels) {
  size_t np = (size_t)nb * size * size * 3;
  for (size_t i = 0; i < np; i++) img[i] = (uint8_t)(rng_u64(seed, 1, i) >> 56);
  for (int i = 0; i < nb; i++) labels[i] = (int32_t)(rng_u64(seed, 2, (uint64_t)i) % (uint64_t)classes);
}

/* a learnable batch: each class has its own colour and stripe direction /
 * frequency, plus per-pixel noise */
static void gm_class_batch(uint64_t seed, int batch_index, int nb, int size, int classes, uint8_t *img,
                           int32_t *labels) {
  for (int i = 0; i < nb; i++) {
    uint64_t sample = (uint64_t)batch_index * 100003u + (uint64_t)i;
    int k = (int)(rng_u64(seed, 3, sample) % (uint64_t)classes);
    labels[i] = k;
    double fx = (1 + k % 3) * (k % 2 ? 1 : 0.5), fy = (1 + (k / 3) % 3) * (k % 2 ? 0.5 : 1);
    for (int y = 0; y < size; y++)
      for (int x = 0; x < size; x++)
        for (int ch = 0; ch < 3; ch++) {
          double base = 60 + 140 * rng_uniform(seed, 4, (uint64_t)(k * 3 + ch));
          double wave = 50 * sin(6.2831853 * (fx * x + fy * y) / size + ch);
          size_t at = (((size_t)i * size + y) * size + x) * 3 + ch;
          double noise = 60 * (rng_uniform(seed, 5, sample * 1000003u + at) - 0.5);
          double v = base + wave + noise;
          img[at] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
        }
  }
}

/* ---- comparisons in torchvision layout ---- */

typedef struct {
  double worst;      /* largest error / tolerance */
  double worst_err;  /* error of that tensor */
  const char *worst_name;
  double global;     /* relative L2 over all compared tensors together */
  int n, failed;
} gm_cmp;

/* each tensor of class cls in a (net na) against b (net nb), relative L2
 * at most tol; failures are CHECKed, labelled with what */
static gm_cmp gm_compare_state(const char *what, state_class cls, const net *na, const float *a, const net *nb,
                               const float *b, double tol) {
  gm_cmp r;
  memset(&r, 0, sizeof r);
  r.worst_name = "";
  double num = 0, den = 0;
  for (int i = 0; i < na->n_state; i++) {
    const state_entry *ea = &na->state[i], *eb = &nb->state[i];
    if (ea->cls != cls) continue;
    size_t n = state_torch_numel(ea);
    float *ta = (float *)xmalloc(n * sizeof(float) + 4, "compare"), *tb = (float *)xmalloc(n * sizeof(float) + 4, "compare");
    state_to_torch(ea, a + ea->offset, ta);
    state_to_torch(eb, b + eb->offset, tb);
    double e = rel_l2(ta, tb, n);
    for (size_t k = 0; k < n; k++) {
      double d = (double)ta[k] - tb[k];
      num += d * d;
      den += (double)tb[k] * tb[k];
    }
    double t = tol;
    r.n++;
    if (!(e <= t)) {
      r.failed++;
      CHECK(0, "%s: %s: relative L2 error %.3g > tolerance %.2g", what, ea->name, e, t);
    }
    if (!(e / t <= r.worst)) {
      r.worst = e / t;
      r.worst_err = e;
      r.worst_name = ea->name;
    }
    free(ta), free(tb);
  }
  r.global = den > 0 ? sqrt(num / den) : (num > 0 ? INFINITY : 0);
  return r;
}

/* per-tensor relative L2 of a against b (same net), into out[state id] */
static void gm_state_errors(const net *n, state_class cls, const float *a, const float *b, float *out) {
  for (int i = 0; i < n->n_state; i++) {
    const state_entry *e = &n->state[i];
    out[i] = 0;
    if (e->cls != cls) continue;
    out[i] = (float)rel_l2(a + e->offset, b + e->offset, e->numel);
  }
}

/* ---- the record file: tagged arrays written by one process, read in the
 * same order by another ---- */

static void gm_put(FILE *f, const char *tag, const void *p, size_t bytes) {
  char t[32] = {0};
  snprintf(t, sizeof t, "%s", tag);
  uint64_t b = bytes;
  if (fwrite(t, sizeof t, 1, f) != 1 || fwrite(&b, sizeof b, 1, f) != 1 || (bytes && fwrite(p, bytes, 1, f) != 1))
    die("test record: write of %s failed", tag);
}

/* 0, or -1 (with a CHECK) if the next record is not tag with that size */
static int gm_get(FILE *f, const char *tag, void *p, size_t bytes) {
  char t[32];
  uint64_t b = 0;
  if (fread(t, sizeof t, 1, f) != 1 || fread(&b, sizeof b, 1, f) != 1) {
    CHECK(0, "reference record: %s missing", tag);
    return -1;
  }
  t[31] = 0;
  if (strcmp(t, tag) != 0 || b != bytes) {
    CHECK(0, "reference record: expected %s (%zu bytes), found %s (%llu bytes)", tag, bytes, t, (unsigned long long)b);
    return -1;
  }
  if (bytes && fread(p, bytes, 1, f) != 1) {
    CHECK(0, "reference record: %s truncated", tag);
    return -1;
  }
  return 0;
}

#endif
