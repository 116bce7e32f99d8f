/* test_cuda_ops.c: every op of the CUDA backend, forward and backward,
 * against the CPU backend on identical fresh random inputs (the CPU gets
 * the inputs rounded to the GPU's act dtype), by relative L2 error:
 * fp32 without TF32 at most 1e-5, TF32 3e-3, bf16 / fp16 1e-2. Outputs are
 * NaN-poisoned before each GPU call (unwritten elements fail), accumulate
 * paths start from random data, shapes cover 1x1 / 3x3 / 7x7 convs with
 * stride 1 and 2, odd sizes, channels that are not multiples of 8, max pool
 * on data full of ties, multi-block BN reductions.
 * Without a GPU it prints "skipped: no GPU" and RESULT 0 0.
 * RN50_TEST_VERBOSE=1 prints every comparison's error; an argument (fp32,
 * bf16, fp16, tf32) runs one mode; --bench [mode] [batch] times the ops
 * at ResNet-50's shapes instead (cuda_ops_bench.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "cuda_test_util.h"

typedef struct {
  const char *name;
  dtype dt;
  int tf32;
  double tol;       /* act-dtype results */
  double tol_stats; /* fp32 statistics computed from identical inputs */
  int gemm_only;    /* tf32: only convs and fc use TF32 */
} test_mode;

static const test_mode modes[] = {
    {"fp32", DTYPE_F32, 0, 1e-5, 1e-5, 0},
    {"bf16", DTYPE_BF16, 0, 1e-2, 1e-4, 0},
    {"fp16", DTYPE_F16, 0, 1e-2, 1e-4, 0},
    {"tf32", DTYPE_F32, 1, 3e-3, 1e-5, 1},
};

static const test_mode *M; /* mode under test */
static backend *G;         /* device backend */
static backend *C;         /* CPU reference */

#define ADT (M->dt) /* device act dtype */
#define F32 DTYPE_F32

static void label(char *buf, size_t len, const char *fmt, ...) RN50_PRINTF(3, 4);
static void label(char *buf, size_t len, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, len, fmt, ap);
  va_end(ap);
}

/* ---------------------------------------------------------------- conv */
static void conv_case(int n, int h, int w, int c, int k, int ks, int stride, int pad, int id) {
  conv_desc d = {n, h, w, c, (h + 2 * pad - ks) / stride + 1, (w + 2 * pad - ks) / stride + 1, k, ks, ks, stride,
                 pad, id};
  size_t nx = (size_t)n * h * w * c, ny = (size_t)n * d.oh * d.ow * k, nw = (size_t)k * ks * ks * c;
  float s = 1.0f / sqrtf((float)(ks * ks * c));
  float *x = tu_rand(nx, -1, 1), *wt = tu_rand(nw, -s, s), *dy = tu_rand(ny, -1, 1), *dx0 = tu_rand(nx, -1, 1),
        *dw0 = tu_rand(nw, -0.1f, 0.1f);
  tu_round_all(ADT, x, nx);
  tu_round_all(ADT, wt, nw);
  tu_round_all(ADT, dy, ny);
  tu_round_all(ADT, dx0, nx);
  char what[160], shape[96];
  label(shape, sizeof shape, "%dx%d s%d p%d n%d %dx%dx%d->%d", ks, ks, stride, pad, n, h, w, c, k);

  void *cx = tu_up(C, F32, x, nx), *cw = tu_up(C, F32, wt, nw), *cdy = tu_up(C, F32, dy, ny);
  void *cy = tu_alloc(C, ny * 4), *cdx = tu_alloc(C, nx * 4), *cdxa = tu_up(C, F32, dx0, nx);
  void *cdw = tu_up(C, F32, dw0, nw);
  if (C->conv_prepare) C->conv_prepare(C, &d);
  C->conv_fwd(C, &d, cy, cx, cw);
  C->conv_bwd_data(C, &d, cdx, cdy, cw, 0);
  C->conv_bwd_data(C, &d, cdxa, cdy, cw, 1);
  C->conv_bwd_filter(C, &d, cdw, cdy, cx);
  C->sync(C);

  void *gx = tu_up(G, ADT, x, nx), *gw = tu_up(G, ADT, wt, nw), *gdy = tu_up(G, ADT, dy, ny);
  void *gy = tu_poison(G, ADT, ny), *gdx = tu_poison(G, ADT, nx), *gdxa = tu_up(G, ADT, dx0, nx);
  void *gdw = tu_up(G, F32, dw0, nw);
  if (G->conv_prepare) G->conv_prepare(G, &d);
  G->conv_fwd(G, &d, gy, gx, gw);
  G->conv_bwd_data(G, &d, gdx, gdy, gw, 0);
  G->conv_bwd_data(G, &d, gdxa, gdy, gw, 1);
  G->conv_bwd_filter(G, &d, gdw, gdy, gx);
  G->sync(G);

  label(what, sizeof what, "conv fwd %s", shape);
  tu_cmp(what, G, ADT, gy, C, cy, ny, M->tol);
  label(what, sizeof what, "conv bwd data %s", shape);
  tu_cmp(what, G, ADT, gdx, C, cdx, nx, M->tol);
  label(what, sizeof what, "conv bwd data acc %s", shape);
  tu_cmp(what, G, ADT, gdxa, C, cdxa, nx, M->tol);
  label(what, sizeof what, "conv bwd filter %s", shape);
  tu_cmp(what, G, F32, gdw, C, cdw, nw, M->tol);

  /* a second forward on the same plan must give the same answer */
  void *gy2 = tu_poison(G, ADT, ny);
  G->conv_fwd(G, &d, gy2, gx, gw);
  G->sync(G);
  label(what, sizeof what, "conv fwd again %s", shape);
  tu_cmp(what, G, ADT, gy2, C, cy, ny, M->tol);
  tu_release();
  free(x), free(wt), free(dy), free(dx0), free(dw0);
}

static void test_conv(void) {
  conv_case(2, 20, 20, 4, 16, 7, 2, 3, 1);   /* the stem, input padded to 4 channels */
  conv_case(3, 15, 15, 32, 40, 3, 2, 1, 3);  /* 3x3 stride 2, odd size */
  conv_case(2, 7, 7, 64, 32, 1, 1, 0, 4);    /* 1x1 */
  conv_case(2, 14, 14, 32, 64, 1, 2, 0, 5);  /* 1x1 stride 2 (downsample) */
  conv_case(4, 14, 14, 64, 64, 3, 1, 1, 6);  /* 3x3, larger */
  conv_case(1, 11, 11, 8, 12, 7, 2, 3, 7);   /* 7x7 with 8 input channels */
  conv_case(2, 9, 9, 12, 20, 3, 1, 1, 8);    /* channels multiples of 4, not 8 */
}

/* channels no fast path likes (rn50's nets never have them): last, since a
 * cuDNN without an algorithm for them ends the mode */
static void test_conv_odd(void) {
  conv_case(2, 9, 9, 13, 24, 3, 1, 1, 2);    /* odd size, odd channels */
  conv_case(2, 8, 8, 3, 8, 7, 2, 3, 9);      /* unpadded 3-channel stem */
}

/* ------------------------------------------------------------------ bn */
static void bn_case(int m, int c, int relu, int resid, int acc) {
  size_t n = (size_t)m * c;
  float *x = tu_rand(n, -1, 1), *r = tu_rand(n, -1, 1), *gamma = tu_rand(c, 0.5f, 1.5f), *beta = tu_rand(c, -.5f, .5f);
  float *rm = tu_rand(c, -0.2f, 0.2f), *rv = tu_rand(c, 0.5f, 1.5f), *off = tu_rand(c, -3, 3);
  for (size_t i = 0; i < n; i++) x[i] = 2.0f * x[i] + off[i % c]; /* means far from 0 */
  tu_round_all(ADT, x, n);
  tu_round_all(ADT, r, n);
  char what[160], shape[96];
  label(shape, sizeof shape, "m%d c%d%s%s%s", m, c, relu ? " relu" : "", resid ? " +r" : "", acc ? " acc" : "");
  const float mom = 0.1f, eps = 1e-5f;

  /* training forward */
  void *cx = tu_up(C, F32, x, n), *cr = resid ? tu_up(C, F32, r, n) : NULL, *cy = tu_alloc(C, n * 4);
  float *cg = tu_up(C, F32, gamma, c), *cb = tu_up(C, F32, beta, c);
  float *crm = tu_up(C, F32, rm, c), *crv = tu_up(C, F32, rv, c), *csm = tu_alloc(C, c * 4), *csi = tu_alloc(C, c * 4);
  C->bn_fwd_train(C, m, c, cy, cx, cr, relu, cg, cb, crm, crv, csm, csi, mom, eps);
  void *gx = tu_up(G, ADT, x, n), *gr = resid ? tu_up(G, ADT, r, n) : NULL, *gy = tu_poison(G, ADT, n);
  float *gg = tu_up(G, F32, gamma, c), *gb = tu_up(G, F32, beta, c);
  float *grm = tu_up(G, F32, rm, c), *grv = tu_up(G, F32, rv, c);
  float *gsm = tu_poison(G, F32, c), *gsi = tu_poison(G, F32, c);
  G->bn_fwd_train(G, m, c, gy, gx, gr, relu, gg, gb, grm, grv, gsm, gsi, mom, eps);
  C->sync(C);
  G->sync(G);
  label(what, sizeof what, "bn fwd train y %s", shape);
  tu_cmp(what, G, ADT, gy, C, cy, n, M->tol);
  label(what, sizeof what, "bn save_mean %s", shape);
  tu_cmp(what, G, F32, gsm, C, csm, c, M->tol_stats);
  label(what, sizeof what, "bn save_invstd %s", shape);
  tu_cmp(what, G, F32, gsi, C, csi, c, M->tol_stats);
  label(what, sizeof what, "bn running_mean %s", shape);
  tu_cmp(what, G, F32, grm, C, crm, c, M->tol_stats);
  label(what, sizeof what, "bn running_var %s", shape);
  tu_cmp(what, G, F32, grv, C, crv, c, M->tol_stats);

  /* eval forward with the original running statistics */
  float *crm0 = tu_up(C, F32, rm, c), *crv0 = tu_up(C, F32, rv, c), *grm0 = tu_up(G, F32, rm, c),
        *grv0 = tu_up(G, F32, rv, c);
  void *cye = tu_alloc(C, n * 4), *gye = tu_poison(G, ADT, n);
  C->bn_fwd_eval(C, m, c, cye, cx, cr, relu, cg, cb, crm0, crv0, eps);
  G->bn_fwd_eval(G, m, c, gye, gx, gr, relu, gg, gb, grm0, grv0, eps);
  label(what, sizeof what, "bn fwd eval %s", shape);
  tu_cmp(what, G, ADT, gye, C, cye, n, M->tol);

  /* backward on shared inputs: the GPU's y (ReLU mask) and the CPU's
   * saved statistics go to both, so only the backward is compared */
  float *yb = xmalloc(n * sizeof(float), "bn y"), *sm = xmalloc(c * sizeof(float), "sm"),
        *si = xmalloc(c * sizeof(float), "si");
  tu_down(G, ADT, yb, gy, n);
  tu_down(C, F32, sm, csm, c);
  tu_down(C, F32, si, csi, c);
  float *dy = tu_rand(n, -1, 1), *dx0 = tu_rand(n, -1, 1), *dr0 = tu_rand(n, -1, 1), *dg0 = tu_rand(c, -1, 1),
        *db0 = tu_rand(c, -1, 1);
  tu_round_all(ADT, dy, n);
  tu_round_all(ADT, dx0, n);
  tu_round_all(ADT, dr0, n);
  void *cyb = tu_up(C, F32, yb, n), *cdy = tu_up(C, F32, dy, n);
  float *csm2 = tu_up(C, F32, sm, c), *csi2 = tu_up(C, F32, si, c);
  void *cdx = acc ? tu_up(C, F32, dx0, n) : tu_alloc(C, n * 4);
  void *cdr = resid ? (acc ? tu_up(C, F32, dr0, n) : tu_alloc(C, n * 4)) : NULL;
  float *cdg = tu_up(C, F32, dg0, c), *cdb = tu_up(C, F32, db0, c);
  C->bn_bwd(C, m, c, cdx, cdr, cdg, cdb, cdy, cyb, cx, cg, csm2, csi2, relu, acc, acc);
  void *gyb = tu_up(G, ADT, yb, n), *gdy = tu_up(G, ADT, dy, n);
  float *gsm2 = tu_up(G, F32, sm, c), *gsi2 = tu_up(G, F32, si, c);
  void *gdx = acc ? tu_up(G, ADT, dx0, n) : tu_poison(G, ADT, n);
  void *gdr = resid ? (acc ? tu_up(G, ADT, dr0, n) : tu_poison(G, ADT, n)) : NULL;
  float *gdg = tu_up(G, F32, dg0, c), *gdb = tu_up(G, F32, db0, c);
  G->bn_bwd(G, m, c, gdx, gdr, gdg, gdb, gdy, gyb, gx, gg, gsm2, gsi2, relu, acc, acc);
  C->sync(C);
  G->sync(G);
  label(what, sizeof what, "bn bwd dx %s", shape);
  tu_cmp(what, G, ADT, gdx, C, cdx, n, M->tol);
  if (resid) {
    label(what, sizeof what, "bn bwd dr %s", shape);
    tu_cmp(what, G, ADT, gdr, C, cdr, n, M->tol);
  }
  label(what, sizeof what, "bn bwd dgamma %s", shape);
  tu_cmp(what, G, F32, gdg, C, cdg, c, M->tol_stats * 10);
  label(what, sizeof what, "bn bwd dbeta %s", shape);
  tu_cmp(what, G, F32, gdb, C, cdb, c, M->tol_stats * 10);
  tu_release();
  free(x), free(r), free(gamma), free(beta), free(rm), free(rv), free(off), free(yb), free(sm), free(si);
  free(dy), free(dx0), free(dr0), free(dg0), free(db0);
}

static void test_bn(void) {
  bn_case(4096, 64, 1, 1, 0);   /* bottleneck end: residual + ReLU */
  bn_case(1000, 13, 0, 0, 0);   /* odd channels: scalar path */
  bn_case(98, 2048, 1, 0, 1);   /* wide, few rows, accumulate */
  bn_case(20000, 24, 1, 1, 1);  /* many row chunks */
  bn_case(3000, 12, 0, 1, 0);   /* fp32 vectorised, half types scalar */
  bn_case(37, 256, 1, 0, 0);
}

/* ------------------------------------------------------------- pooling */
static void maxpool_case(int n, int h, int w, int c, int k, int s, int p) {
  int oh = (h + 2 * p - k) / s + 1, ow = (w + 2 * p - k) / s + 1;
  size_t nx = (size_t)n * h * w * c, ny = (size_t)n * oh * ow * c;
  float *x = tu_rand(nx, -1, 1), *dy = tu_rand(ny, -1, 1), *dx0 = tu_rand(nx, -1, 1);
  for (size_t i = 0; i < nx; i++) x[i] = x[i] < 0 ? 0 : x[i]; /* ReLU output: many tied zeros */
  for (size_t i = 0; i < nx; i += 7) x[i] = 0.5f;             /* and tied positive values */
  tu_round_all(ADT, x, nx);
  tu_round_all(ADT, dy, ny);
  tu_round_all(ADT, dx0, nx);
  char what[160], shape[96];
  label(shape, sizeof shape, "n%d %dx%dx%d k%d s%d p%d", n, h, w, c, k, s, p);
  void *cx = tu_up(C, F32, x, nx), *cy = tu_alloc(C, ny * 4), *cdy = tu_up(C, F32, dy, ny);
  void *cdx = tu_alloc(C, nx * 4), *cdxa = tu_up(C, F32, dx0, nx);
  C->maxpool_fwd(C, n, h, w, c, oh, ow, k, s, p, cy, cx);
  C->maxpool_bwd(C, n, h, w, c, oh, ow, k, s, p, cdx, cdy, cx, 0);
  C->maxpool_bwd(C, n, h, w, c, oh, ow, k, s, p, cdxa, cdy, cx, 1);
  void *gx = tu_up(G, ADT, x, nx), *gy = tu_poison(G, ADT, ny), *gdy = tu_up(G, ADT, dy, ny);
  void *gdx = tu_poison(G, ADT, nx), *gdxa = tu_up(G, ADT, dx0, nx);
  G->maxpool_fwd(G, n, h, w, c, oh, ow, k, s, p, gy, gx);
  G->maxpool_bwd(G, n, h, w, c, oh, ow, k, s, p, gdx, gdy, gx, 0);
  G->maxpool_bwd(G, n, h, w, c, oh, ow, k, s, p, gdxa, gdy, gx, 1);
  C->sync(C);
  G->sync(G);
  label(what, sizeof what, "maxpool fwd %s", shape);
  tu_cmp(what, G, ADT, gy, C, cy, ny, M->tol);
  label(what, sizeof what, "maxpool bwd %s", shape);
  tu_cmp(what, G, ADT, gdx, C, cdx, nx, M->tol);
  label(what, sizeof what, "maxpool bwd acc %s", shape);
  tu_cmp(what, G, ADT, gdxa, C, cdxa, nx, M->tol);
  tu_release();
  free(x), free(dy), free(dx0);
}

static void avgpool_case(int n, int hw, int c) {
  size_t nx = (size_t)n * hw * c, ny = (size_t)n * c;
  float *x = tu_rand(nx, -1, 1), *dy = tu_rand(ny, -1, 1), *dx0 = tu_rand(nx, -1, 1);
  tu_round_all(ADT, x, nx);
  tu_round_all(ADT, dy, ny);
  tu_round_all(ADT, dx0, nx);
  char what[160], shape[96];
  label(shape, sizeof shape, "n%d hw%d c%d", n, hw, c);
  void *cx = tu_up(C, F32, x, nx), *cy = tu_alloc(C, ny * 4), *cdy = tu_up(C, F32, dy, ny);
  void *cdx = tu_alloc(C, nx * 4), *cdxa = tu_up(C, F32, dx0, nx);
  C->avgpool_fwd(C, n, hw, c, cy, cx);
  C->avgpool_bwd(C, n, hw, c, cdx, cdy, 0);
  C->avgpool_bwd(C, n, hw, c, cdxa, cdy, 1);
  void *gx = tu_up(G, ADT, x, nx), *gy = tu_poison(G, ADT, ny), *gdy = tu_up(G, ADT, dy, ny);
  void *gdx = tu_poison(G, ADT, nx), *gdxa = tu_up(G, ADT, dx0, nx);
  G->avgpool_fwd(G, n, hw, c, gy, gx);
  G->avgpool_bwd(G, n, hw, c, gdx, gdy, 0);
  G->avgpool_bwd(G, n, hw, c, gdxa, gdy, 1);
  C->sync(C);
  G->sync(G);
  label(what, sizeof what, "avgpool fwd %s", shape);
  tu_cmp(what, G, ADT, gy, C, cy, ny, M->tol);
  label(what, sizeof what, "avgpool bwd %s", shape);
  tu_cmp(what, G, ADT, gdx, C, cdx, nx, M->tol);
  label(what, sizeof what, "avgpool bwd acc %s", shape);
  tu_cmp(what, G, ADT, gdxa, C, cdxa, nx, M->tol);
  tu_release();
  free(x), free(dy), free(dx0);
}

static void test_pool(void) {
  maxpool_case(2, 16, 16, 16, 3, 2, 1);
  maxpool_case(2, 15, 13, 13, 3, 2, 1); /* odd sizes and channels */
  maxpool_case(3, 12, 12, 64, 3, 2, 1);
  avgpool_case(3, 49, 40);
  avgpool_case(2, 9, 13);
}

/* ------------------------------------------------------------------ fc */
static void fc_case(int n, int cin, int cout) {
  size_t nx = (size_t)n * cin, ny = (size_t)n * cout, nw = (size_t)cout * cin;
  float s = 1.0f / sqrtf((float)cin);
  float *x = tu_rand(nx, -1, 1), *wt = tu_rand(nw, -s, s), *b = tu_rand(cout, -s, s), *dy = tu_rand(ny, -1, 1);
  float *dx0 = tu_rand(nx, -1, 1), *dw0 = tu_rand(nw, -.1f, .1f), *db0 = tu_rand(cout, -.1f, .1f);
  tu_round_all(ADT, x, nx);
  tu_round_all(ADT, wt, nw);
  tu_round_all(ADT, b, cout);
  tu_round_all(ADT, dx0, nx);
  char what[160], shape[96];
  label(shape, sizeof shape, "n%d %d->%d", n, cin, cout);
  void *cx = tu_up(C, F32, x, nx), *cw = tu_up(C, F32, wt, nw), *cb = tu_up(C, F32, b, cout);
  float *cy = tu_alloc(C, ny * 4), *cdy = tu_up(C, F32, dy, ny), *cdw = tu_up(C, F32, dw0, nw),
        *cdb = tu_up(C, F32, db0, cout);
  void *cdx = tu_alloc(C, nx * 4), *cdxa = tu_up(C, F32, dx0, nx);
  C->fc_fwd(C, n, cin, cout, cy, cx, cw, cb);
  C->fc_bwd(C, n, cin, cout, cdx, cdw, cdb, cdy, cx, cw, 0);
  float *cdw2 = tu_up(C, F32, dw0, nw), *cdb2 = tu_up(C, F32, db0, cout); /* the contract has no NULL dw / db */
  C->fc_bwd(C, n, cin, cout, cdxa, cdw2, cdb2, cdy, cx, cw, 1);
  void *gx = tu_up(G, ADT, x, nx), *gw = tu_up(G, ADT, wt, nw), *gb = tu_up(G, ADT, b, cout);
  float *gy = tu_poison(G, F32, ny), *gdy = tu_up(G, F32, dy, ny), *gdw = tu_up(G, F32, dw0, nw),
        *gdb = tu_up(G, F32, db0, cout);
  void *gdx = tu_poison(G, ADT, nx), *gdxa = tu_up(G, ADT, dx0, nx);
  G->fc_fwd(G, n, cin, cout, gy, gx, gw, gb);
  G->fc_bwd(G, n, cin, cout, gdx, gdw, gdb, gdy, gx, gw, 0);
  float *gdw2 = tu_up(G, F32, dw0, nw), *gdb2 = tu_up(G, F32, db0, cout);
  G->fc_bwd(G, n, cin, cout, gdxa, gdw2, gdb2, gdy, gx, gw, 1);
  C->sync(C);
  G->sync(G);
  label(what, sizeof what, "fc fwd %s", shape);
  tu_cmp(what, G, F32, gy, C, cy, ny, M->tol);
  label(what, sizeof what, "fc bwd dx %s", shape);
  tu_cmp(what, G, ADT, gdx, C, cdx, nx, M->tol);
  label(what, sizeof what, "fc bwd dx acc %s", shape);
  tu_cmp(what, G, ADT, gdxa, C, cdxa, nx, M->tol);
  label(what, sizeof what, "fc bwd dw %s", shape);
  tu_cmp(what, G, F32, gdw, C, cdw, nw, M->tol);
  label(what, sizeof what, "fc bwd db %s", shape);
  tu_cmp(what, G, F32, gdb, C, cdb, cout, 1e-5);
  label(what, sizeof what, "fc bwd dw (second call) %s", shape);
  tu_cmp(what, G, F32, gdw2, C, cdw2, nw, M->tol);
  tu_release();
  free(x), free(wt), free(b), free(dy), free(dx0), free(dw0), free(db0);
}

static void test_fc(void) {
  fc_case(5, 70, 13);
  fc_case(8, 256, 1000);
  fc_case(33, 2048, 100);
}

/* -------------------------------------------------------------- xent */
static void xent_case(int n, int classes, float smoothing, float gs, int with_grad) {
  size_t nl = (size_t)n * classes;
  float *logits = tu_rand(nl, -4, 4), *u = tu_rand(n, 0, 1);
  int32_t *labels = xmalloc((size_t)n * sizeof(int32_t), "labels");
  for (int i = 0; i < n; i++) labels[i] = (int32_t)(u[i] * classes) % classes;
  char what[160], shape[96];
  label(shape, sizeof shape, "n%d classes%d eps%g%s", n, classes, smoothing, with_grad ? "" : " no grad");
  float *cl = tu_up(C, F32, logits, nl), *closs = tu_alloc(C, (size_t)n * 4);
  float *cdl = with_grad ? tu_alloc(C, nl * 4) : NULL;
  int32_t *clab = tu_up_bytes(C, labels, (size_t)n * 4);
  C->xent(C, n, classes, closs, cdl, cl, clab, smoothing, gs);
  float *gl = tu_up(G, F32, logits, nl), *gloss = tu_poison(G, F32, n);
  float *gdl = with_grad ? tu_poison(G, F32, nl) : NULL;
  int32_t *glab = tu_up_bytes(G, labels, (size_t)n * 4);
  G->xent(G, n, classes, gloss, gdl, gl, glab, smoothing, gs);
  C->sync(C);
  G->sync(G);
  label(what, sizeof what, "xent loss %s", shape);
  tu_cmp(what, G, F32, gloss, C, closs, n, 1e-5);
  if (with_grad) {
    label(what, sizeof what, "xent dlogits %s", shape);
    tu_cmp(what, G, F32, gdl, C, cdl, nl, 1e-5);
  }
  tu_release();
  free(logits), free(u), free(labels);
}

static void test_xent(void) {
  xent_case(6, 1000, 0.1f, 1.0f / 6, 1);
  xent_case(3, 10, 0.0f, 2.0f, 1);
  xent_case(300, 37, 0.2f, 1.0f, 1);
  xent_case(4, 1000, 0.1f, 1.0f, 0);
}

/* ---------------------------------------------- optimizer and friends */
static void sgd_case(size_t n, size_t nd, int nesterov) {
  float *w = tu_rand(n, -1, 1), *buf = tu_rand(n, -.1f, .1f), *g = tu_rand(n, -1, 1);
  char what[160], shape[96];
  label(shape, sizeof shape, "n%zu decay %zu%s", n, nd, nesterov ? " nesterov" : "");
  const float lr = 0.1f, mom = 0.9f, wd = 1e-2f, wd_rest = 1e-3f, gs = 0.5f;
  float *cw = tu_up(C, F32, w, n), *cbuf = tu_up(C, F32, buf, n), *cg = tu_up(C, F32, g, n);
  void *cww = tu_alloc(C, n * 4);
  C->sgd_step(C, cw, cbuf, cg, cww, n, nd, lr, mom, wd, wd_rest, nesterov, gs);
  float *gw = tu_up(G, F32, w, n), *gbuf = tu_up(G, F32, buf, n), *gg = tu_up(G, F32, g, n);
  void *gww = tu_poison(G, ADT, n);
  G->sgd_step(G, gw, gbuf, gg, gww, n, nd, lr, mom, wd, wd_rest, nesterov, gs);
  C->sync(C);
  G->sync(G);
  label(what, sizeof what, "sgd w %s", shape);
  tu_cmp(what, G, F32, gw, C, cw, n, 1e-6);
  label(what, sizeof what, "sgd momentum %s", shape);
  tu_cmp(what, G, F32, gbuf, C, cbuf, n, 1e-6);
  label(what, sizeof what, "sgd working copy %s", shape);
  tu_cmp(what, G, ADT, gww, C, cww, n, M->tol);
  tu_release();
  free(w), free(buf), free(g);
}

static void test_optim(void) {
  sgd_case(10007, 7001, 0);
  sgd_case(10007, 7001, 1);
  sgd_case(300000, 300000, 1);

  /* nonfinite: clean, one inf, one NaN (at random places) */
  size_t n = 100003;
  float *g = tu_rand(n, -1e3f, 1e3f), *u = tu_rand(2, 0, 1);
  float *gg = tu_up(G, F32, g, n);
  CHECK(G->nonfinite(G, gg, n) == 0, "nonfinite reports a finite array as non-finite");
  size_t at = (size_t)(u[0] * (n - 1));
  g[at] = INFINITY;
  gg = tu_up(G, F32, g, n);
  CHECK(G->nonfinite(G, gg, n) == 1, "nonfinite misses an inf at %zu", at);
  g[at] = 1.0f;
  at = (size_t)(u[1] * (n - 1));
  g[at] = NAN;
  gg = tu_up(G, F32, g, n);
  CHECK(G->nonfinite(G, gg, n) == 1, "nonfinite misses a NaN at %zu", at);
  CHECK(G->nonfinite(G, gg, at) == 0, "nonfinite looks past n");
  tu_release();
  free(g), free(u);

  /* ema */
  n = 1001;
  float *e = tu_rand(n, -1, 1), *w = tu_rand(n, -1, 1);
  float *ce = tu_up(C, F32, e, n), *cw = tu_up(C, F32, w, n), *ge = tu_up(G, F32, e, n), *gw = tu_up(G, F32, w, n);
  C->ema_update(C, ce, cw, n, 0.999f);
  G->ema_update(G, ge, gw, n, 0.999f);
  C->sync(C);
  G->sync(G);
  tu_cmp("ema_update", G, F32, ge, C, ce, n, 1e-6);
  tu_release();

  /* cast_params: exactly the host's round-to-nearest-even */
  float *r = tu_copy(w, n);
  tu_round_all(ADT, r, n);
  float *cr = tu_up(C, F32, r, n);
  gw = tu_up(G, F32, w, n);
  void *gc = tu_poison(G, ADT, n);
  G->cast_params(G, gc, gw, n);
  G->sync(G);
  tu_cmp("cast_params (exact)", G, ADT, gc, C, cr, n, 0.0);
  tu_release();
  free(e), free(w), free(r);
}

/* -------------------------------------------------------------- input */
static void input_case(int n, int h, int w, int c) {
  size_t np = (size_t)n * h * w, nx = np * c;
  float *u = tu_rand(np * 3, 0, 256);
  uint8_t *img = xmalloc(np * 3, "img");
  for (size_t i = 0; i < np * 3; i++) img[i] = (uint8_t)(u[i] >= 255.5f ? 255 : (int)u[i]);
  const float mean[3] = {0.485f, 0.456f, 0.406f}, inv_std[3] = {1 / 0.229f, 1 / 0.224f, 1 / 0.225f};
  char what[96];
  label(what, sizeof what, "input_from_u8 n%d %dx%d c%d", n, h, w, c);
  uint8_t *ci = tu_up_bytes(C, img, np * 3), *gi = tu_up_bytes(G, img, np * 3);
  void *cx = tu_alloc(C, nx * 4), *gx = tu_poison(G, ADT, nx);
  C->input_from_u8(C, cx, ci, n, h, w, c, mean, inv_std);
  G->input_from_u8(G, gx, gi, n, h, w, c, mean, inv_std);
  C->sync(C);
  G->sync(G);
  /* the CPU result rounded to the act dtype is what the GPU must write */
  float *ref = xmalloc(nx * sizeof(float), "ref");
  tu_down(C, F32, ref, cx, nx);
  tu_round_all(ADT, ref, nx);
  void *cref = tu_up(C, F32, ref, nx);
  tu_cmp(what, G, ADT, gx, C, cref, nx, M->dt == DTYPE_F32 ? 1e-6 : 1e-3);
  tu_release();
  free(u), free(img), free(ref);
}

static void test_input(void) {
  input_case(2, 5, 7, 4);
  input_case(1, 3, 3, 8);
  input_case(3, 4, 5, 3);
}

/* --------------------------------------------------------------- main */
typedef struct {
  const char *name;
  void (*fn)(void);
  int gemm;
} test_entry;

/* riskiest last: a fatal backend error ends only the rest of its mode */
static const test_entry tests[] = {
    {"input", test_input, 0}, {"optim", test_optim, 0}, {"xent", test_xent, 0}, {"pool", test_pool, 0},
    {"bn", test_bn, 0},       {"fc", test_fc, 1},       {"conv", test_conv, 1}, {"conv odd channels", test_conv_odd, 1},
};

#include "cuda_ops_bench.h"

/* One mode in a child process (so that a die() inside the backend ends only
 * this mode). Sends {status, passed, failed} on fd: status 1 = no GPU. */
static void run_mode(const void *arg, int fd) {
  const test_mode *mode = arg;
  char err[512];
  int msg[3] = {0, 0, 0};
  M = mode;
  G = cuda_backend_create(M->dt, M->tf32, 0, err, sizeof err);
  if (!G) {
    printf("cuda_backend_create(%s): %s\n", M->name, err);
    msg[0] = 1;
  } else {
    C = cpu_backend_create(0);
    for (size_t ti = 0; ti < ARRAY_LEN(tests); ti++) {
      if (M->gemm_only && !tests[ti].gemm) continue;
      char name[64];
      snprintf(name, sizeof name, "%s [%s]", tests[ti].name, M->name);
      tu_worst = 0;
      double t0 = now_sec();
      h_run(name, tests[ti].fn);
      printf("     %s: worst error/tolerance %.3f, %.2f s\n", name, tu_worst, now_sec() - t0);
      fflush(stdout);
    }
    G->destroy(G);
    C->destroy(C);
    msg[1] = h_passed;
    msg[2] = h_failed;
  }
  fflush(stdout);
  if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) _exit(3);
}

int main(int argc, char **argv) {
  const char *v = getenv("RN50_TEST_VERBOSE");
  tu_verbose = v && *v && *v != '0';
  const char *seed = getenv("RN50_TEST_SEED");
  if (seed && *seed) tu_seed = strtoull(seed, NULL, 10);
  if (argc > 1 && !strcmp(argv[1], "--bench")) {
    if (!cuda_backend_available()) {
      printf("bench: built without CUDA\n");
      return 0;
    }
    return cuda_ops_bench(argc > 2 ? argv[2] : "bf16", argc > 3 ? atoi(argv[3]) : 256);
  }
  const char *only = argc > 1 ? argv[1] : NULL; /* optional: one mode by name */
  const char *self = getenv("RN50_TEST_CUDA_SELF");
  if (self && *self && *self != '0') {
    /* check the test itself where there is no GPU: a second CPU backend
     * stands in for the device (fp32 only) */
    C = cpu_backend_create(0);
    G = cpu_backend_create(0);
    M = &modes[0];
    for (size_t ti = 0; ti < ARRAY_LEN(tests); ti++) {
      char name[64];
      snprintf(name, sizeof name, "%s [cpu as device]", tests[ti].name);
      h_run(name, tests[ti].fn);
    }
    G->destroy(G);
    C->destroy(C);
    return harness_finish();
  }
  if (!cuda_backend_available()) {
    printf("skipped: no GPU (built without CUDA)\n");
    return harness_finish();
  }
  /* the parent never touches CUDA (or OpenMP): each mode runs in a child */
  printf("seed %llu\n", (unsigned long long)tu_seed);
  int passed = 0, failed = 0, ran = 0;
  for (size_t mi = 0; mi < ARRAY_LEN(modes); mi++) {
    if (only && strcmp(only, modes[mi].name) != 0) continue;
    int msg[3];
    char what[64];
    snprintf(what, sizeof what, "%s mode", modes[mi].name);
    if (h_in_child(run_mode, &modes[mi], 0, msg, what) != 0) {
      failed++;
      continue;
    }
    if (msg[0] == 1) {
      if (!ran && mi == 0) {
        printf("skipped: no GPU\n");
        return harness_finish();
      }
      printf("FAIL %s mode: no CUDA backend\n", modes[mi].name);
      failed++;
      continue;
    }
    ran = 1;
    passed += msg[1];
    failed += msg[2];
  }
  h_passed = passed;
  h_failed = failed;
  return harness_finish();
}
