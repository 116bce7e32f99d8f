/* test_cpu_determinism.c: every CPU op gives bit-identical results with 1,
 * 2 and 3 worker threads (cpu_threads_set, src/cpu/threads.h). The ops
 * split work differently for each count (job shapes, row pieces, tile and
 * panel groups), so this fails if any sum's order depended on the split. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "cpu/cpu.h"
#include "cpu/threads.h"
#include "harness.h"

static backend *be;
static const int thread_counts[] = {1, 2, 3};
#define N_COUNTS 3

static float *rnd(size_t n, double scale, uint64_t stream) {
  float *f = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) f[i] = (float)(scale * rng_normal(11, stream, i));
  return f;
}

/* out[t] = copy of buf after running op with thread_counts[t] threads */
typedef void (*op_fn)(void *ctx);

static void check_same(const char *what, op_fn op, void *ctx, float *const *outs, const size_t *lens, int n_outs) {
  float *first[16]; /* n_outs <= 16 */
  for (int t = 0; t < N_COUNTS; t++) {
    cpu_threads_set(thread_counts[t]);
    op(ctx);
    for (int o = 0; o < n_outs; o++) {
      if (t == 0) {
        first[o] = malloc(lens[o] * sizeof(float));
        memcpy(first[o], outs[o], lens[o] * sizeof(float));
      } else {
        CHECK(memcmp(first[o], outs[o], lens[o] * sizeof(float)) == 0, "%s: output %d differs with %d threads", what,
              o, thread_counts[t]);
      }
    }
  }
  for (int o = 0; o < n_outs; o++) free(first[o]);
}

/* ---- convolution ---- */
typedef struct {
  conv_desc d;
  float *x, *w, *dy, *y, *dx, *dw, *dw0;
  size_t wn;
} conv_ctx;

static void conv_run(void *p) {
  conv_ctx *c = p;
  cpu_conv_fwd(be, &c->d, c->y, c->x, c->w);
  cpu_conv_bwd_data(be, &c->d, c->dx, c->dy, c->w, 0);
  memcpy(c->dw, c->dw0, c->wn * sizeof(float)); /* dw accumulates */
  cpu_conv_bwd_filter(be, &c->d, c->dw, c->dy, c->x);
}

static void check_conv(int n, int h, int c, int k, int ks, int s, int p) {
  int oh = (h + 2 * p - ks) / s + 1;
  conv_ctx t = {{n, h, h, c, oh, oh, k, ks, ks, s, p, 0}, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0};
  size_t xn = (size_t)n * h * h * c, yn = (size_t)n * oh * oh * k;
  t.wn = (size_t)k * ks * ks * c;
  t.x = rnd(xn, 1, 1), t.w = rnd(t.wn, 0.1, 2), t.dy = rnd(yn, 1, 3), t.dw0 = rnd(t.wn, 1, 4);
  t.y = malloc(yn * 4), t.dx = malloc(xn * 4), t.dw = malloc(t.wn * 4);
  float *outs[3] = {t.y, t.dx, t.dw};
  size_t lens[3] = {yn, xn, t.wn};
  char what[80];
  snprintf(what, sizeof what, "conv n%d h%d c%d k%d %dx%d s%d", n, h, c, k, ks, ks, s);
  check_same(what, conv_run, &t, outs, lens, 3);
  free(t.x), free(t.w), free(t.dy), free(t.dw0), free(t.y), free(t.dx), free(t.dw);
}

static void test_conv(void) {
  check_conv(4, 14, 64, 64, 3, 1, 1);
  check_conv(4, 14, 256, 64, 1, 1, 0);
  check_conv(4, 14, 64, 256, 1, 1, 0);
  check_conv(2, 14, 128, 128, 3, 2, 1);
  check_conv(2, 14, 256, 512, 1, 2, 0);
  check_conv(2, 7, 512, 512, 3, 1, 1);
  check_conv(2, 33, 3, 64, 7, 2, 3);
}

/* ---- batch norm ---- */
typedef struct {
  int m, c;
  float *x, *r, *g, *b, *dy, *y, *dx, *dr, *dg, *db, *rm, *rv, *sm, *si;
} bn_ctx;

static void bn_run(void *p) {
  bn_ctx *t = p;
  for (int j = 0; j < t->c; j++) t->rm[j] = 0, t->rv[j] = 1, t->dg[j] = 0, t->db[j] = 0;
  cpu_bn_fwd_train(be, t->m, t->c, t->y, t->x, t->r, 1, t->g, t->b, t->rm, t->rv, t->sm, t->si, 0.1f, 1e-5f);
  cpu_bn_bwd(be, t->m, t->c, t->dx, t->dr, t->dg, t->db, t->dy, t->y, t->x, t->g, t->sm, t->si, 1, 0, 0);
}

static void test_bn(void) {
  int m = 2000, c = 200;
  size_t n = (size_t)m * c;
  bn_ctx t = {m,             c,             rnd(n, 2, 5),  rnd(n, 1, 6),  rnd(c, 1, 7),  rnd(c, 1, 8),
              rnd(n, 1, 9),  malloc(n * 4), malloc(n * 4), malloc(n * 4), malloc(c * 4), malloc(c * 4),
              malloc(c * 4), malloc(c * 4), malloc(c * 4), malloc(c * 4)};
  float *outs[8] = {t.y, t.dx, t.dr, t.dg, t.db, t.rm, t.rv, t.si};
  size_t lens[8] = {n, n, n, (size_t)c, (size_t)c, (size_t)c, (size_t)c, (size_t)c};
  check_same("bn train forward + backward", bn_run, &t, outs, lens, 8);
  free(t.x), free(t.r), free(t.g), free(t.b), free(t.dy), free(t.y), free(t.dx), free(t.dr), free(t.dg), free(t.db);
  free(t.rm), free(t.rv), free(t.sm), free(t.si);
}

/* ---- pools, fc, loss, sgd ---- */
typedef struct {
  float *x, *y, *dy, *dx, *py, *pdx, *w, *b, *fy, *fdx, *fdw, *fdb, *loss, *dl, *buf, *sw;
  int32_t *labels;
} misc_ctx;

#define MN 6
#define MH 15
#define MC 40
#define MO 8 /* (15 + 2 - 3) / 2 + 1 */
#define FCO 37

static void misc_run(void *p) {
  misc_ctx *t = p;
  cpu_maxpool_fwd(be, MN, MH, MH, MC, MO, MO, 3, 2, 1, t->y, t->x);
  cpu_maxpool_bwd(be, MN, MH, MH, MC, MO, MO, 3, 2, 1, t->dx, t->dy, t->x, 0);
  cpu_avgpool_fwd(be, MN, MH * MH, MC, t->py, t->x);
  cpu_avgpool_bwd(be, MN, MH * MH, MC, t->pdx, t->py, 0);
  cpu_fc_fwd(be, MN, MC, FCO, t->fy, t->py, t->w, t->b);
  memset(t->fdw, 0, sizeof(float) * FCO * MC);
  memset(t->fdb, 0, sizeof(float) * FCO);
  cpu_xent(be, MN, FCO, t->loss, t->dl, t->fy, t->labels, 0.1f, 1.0f / MN);
  cpu_fc_bwd(be, MN, MC, FCO, t->fdx, t->fdw, t->fdb, t->dl, t->py, t->w, 0);
  for (int i = 0; i < FCO * MC; i++) t->sw[i] = t->w[i], t->buf[i] = 0.5f;
  cpu_sgd_step(be, t->sw, t->buf, t->fdw, NULL, FCO * MC, FCO * MC / 2, 0.1f, 0.9f, 1e-4f, 0, 1, 1.0f);
}

static void test_misc(void) {
  size_t xn = (size_t)MN * MH * MH * MC, yn = (size_t)MN * MO * MO * MC;
  misc_ctx t = {rnd(xn, 1, 10), malloc(yn * 4), rnd(yn, 1, 11), malloc(xn * 4), malloc(MN * MC * 4),
                malloc(xn * 4), rnd(FCO * MC, 0.3, 12), rnd(FCO, 1, 13), malloc(MN * FCO * 4),
                malloc(MN * MC * 4), malloc(FCO * MC * 4), malloc(FCO * 4), malloc(MN * 4),
                malloc(MN * FCO * 4), malloc(FCO * MC * 4), malloc(FCO * MC * 4), malloc(MN * sizeof(int32_t))};
  for (int i = 0; i < MN; i++) t.labels[i] = (i * 7) % FCO;
  float *outs[10] = {t.y, t.dx, t.py, t.pdx, t.fy, t.fdx, t.fdw, t.fdb, t.loss, t.sw};
  size_t lens[10] = {yn, xn, MN * MC, xn, MN * FCO, MN * MC, FCO * MC, FCO, MN, FCO * MC};
  check_same("pools, fc, loss, sgd", misc_run, &t, outs, lens, 10);
  free(t.x), free(t.y), free(t.dy), free(t.dx), free(t.py), free(t.pdx), free(t.w), free(t.b), free(t.fy);
  free(t.fdx), free(t.fdw), free(t.fdb), free(t.loss), free(t.dl), free(t.buf), free(t.sw), free(t.labels);
}

int main(void) {
  be = cpu_backend_create(1);
  RUN(test_conv);
  RUN(test_bn);
  RUN(test_misc);
  be->destroy(be);
  return harness_finish();
}
