/* test_gradcheck.c: every CPU op's forward against a naive double reference
 * (tests/ref_ops.h), and its backward against central finite differences of
 * that reference in double precision. The checked scalar is
 * L = sum(proj * op(inputs)) for a fixed random proj, so dL/dy = proj. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "cpu/cpu.h"
#include "harness.h"
#include "ref_ops.h"

#define FWD_TOL 1e-5  /* float op vs double reference, relative L2 */
#define GRAD_TOL 1e-4 /* float backward vs double finite differences */
#define FD_H 1e-5

static backend *be;
static uint64_t stream_ctr = 100;

static double *rnd(size_t n, double scale) {
  double *p = malloc(n * sizeof(double));
  uint64_t s = stream_ctr++;
  for (size_t i = 0; i < n; i++) p[i] = scale * rng_normal(42, s, i);
  return p;
}
static float *to_f(const double *d, size_t n) {
  float *f = malloc(n * sizeof(float));
  for (size_t i = 0; i < n; i++) f[i] = (float)d[i];
  return f;
}
/* round the double inputs to float so both sides see identical values */
static void round_f(double *d, size_t n) {
  for (size_t i = 0; i < n; i++) d[i] = (float)d[i];
}
static double dot(const double *a, const double *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

/* ---- convolution ---- */
typedef struct {
  int n, h, w, c, k, ks, s, p, oh, ow;
  double *x, *wt, *proj, *y;
} conv_case;

static double conv_L(conv_case *t) {
  ref_conv(t->n, t->h, t->w, t->c, t->k, t->ks, t->s, t->p, t->oh, t->ow, t->y, t->x, t->wt);
  return dot(t->y, t->proj, (size_t)t->n * t->oh * t->ow * t->k);
}

static void fd(double *v, size_t n, double *g, double (*L)(void *), void *ctx) {
  for (size_t i = 0; i < n; i++) {
    double keep = v[i];
    v[i] = keep + FD_H;
    double lp = L(ctx);
    v[i] = keep - FD_H;
    double lm = L(ctx);
    v[i] = keep;
    g[i] = (lp - lm) / (2 * FD_H);
  }
}

static void check_conv(int n, int h, int c, int k, int ks, int s, int p) {
  conv_case t = {n, h, h, c, k, ks, s, p, (h + 2 * p - ks) / s + 1, 0, NULL, NULL, NULL, NULL};
  t.ow = t.oh;
  size_t xn = (size_t)n * h * h * c, wn = (size_t)k * ks * ks * c, yn = (size_t)n * t.oh * t.ow * k;
  t.x = rnd(xn, 1);
  t.wt = rnd(wn, 0.3);
  t.proj = rnd(yn, 1);
  t.y = malloc(yn * sizeof(double));
  round_f(t.x, xn);
  round_f(t.wt, wn);
  round_f(t.proj, yn);
  float *xf = to_f(t.x, xn), *wf = to_f(t.wt, wn), *pf = to_f(t.proj, yn);
  float *yf = malloc(yn * 4), *dxf = malloc(xn * 4), *dwf = calloc(wn, 4);
  conv_desc d = {n, h, h, c, t.oh, t.ow, k, ks, ks, s, p, 0};
  char what[96];
  snprintf(what, sizeof what, "conv n%d h%d c%d k%d %dx%d s%d p%d", n, h, c, k, ks, ks, s, p);
  cpu_conv_fwd(be, &d, yf, xf, wf);
  conv_L(&t);
  double e = rel_l2_d(yf, t.y, yn);
  CHECK(e <= FWD_TOL, "%s forward: rel err %.3g", what, e);
  cpu_conv_bwd_data(be, &d, dxf, pf, wf, 0);
  cpu_conv_bwd_filter(be, &d, dwf, pf, xf);
  double *gx = malloc(xn * sizeof(double)), *gw = malloc(wn * sizeof(double));
  fd(t.x, xn, gx, (double (*)(void *))conv_L, &t);
  fd(t.wt, wn, gw, (double (*)(void *))conv_L, &t);
  e = rel_l2_d(dxf, gx, xn);
  CHECK(e <= GRAD_TOL, "%s dx: rel err %.3g", what, e);
  e = rel_l2_d(dwf, gw, wn);
  CHECK(e <= GRAD_TOL, "%s dw: rel err %.3g", what, e);
  /* accumulate paths: dx += and dw += */
  float *acc = malloc(xn * 4);
  for (size_t i = 0; i < xn; i++) acc[i] = 1.0f;
  cpu_conv_bwd_data(be, &d, acc, pf, wf, 1);
  for (size_t i = 0; i < xn; i++) acc[i] -= 1.0f;
  e = rel_l2_d(acc, gx, xn);
  CHECK(e <= GRAD_TOL, "%s dx accumulate: rel err %.3g", what, e);
  cpu_conv_bwd_filter(be, &d, dwf, pf, xf); /* now 2x */
  for (size_t i = 0; i < wn; i++) dwf[i] *= 0.5f;
  e = rel_l2_d(dwf, gw, wn);
  CHECK(e <= GRAD_TOL, "%s dw accumulates: rel err %.3g", what, e);
  free(t.x), free(t.wt), free(t.proj), free(t.y), free(xf), free(wf), free(pf), free(yf), free(dxf), free(dwf);
  free(gx), free(gw), free(acc);
}

static void test_conv(void) {
  check_conv(2, 7, 5, 4, 3, 1, 1);  /* 3x3 same */
  check_conv(2, 7, 5, 4, 3, 2, 1);  /* 3x3 stride 2 */
  check_conv(2, 6, 6, 3, 1, 1, 0);  /* 1x1: plain GEMM path */
  check_conv(2, 6, 6, 8, 1, 2, 0);  /* 1x1 stride 2 (downsample) */
  check_conv(1, 11, 3, 4, 7, 2, 3); /* the stem: 7x7 stride 2 pad 3 */
}

/* ---- batch norm (+ residual + ReLU) ---- */
typedef struct {
  int m, c, relu, has_r;
  double *x, *r, *g, *b, *proj, *y;
} bn_case;

static double bn_L(bn_case *t) {
  ref_bn(t->m, t->c, t->y, t->x, t->has_r ? t->r : NULL, t->relu, t->g, t->b, 1e-5);
  return dot(t->y, t->proj, (size_t)t->m * t->c);
}

static void check_bn(int m, int c, int relu, int has_r) {
  bn_case t = {m, c, relu, has_r, NULL, NULL, NULL, NULL, NULL, NULL};
  size_t n = (size_t)m * c;
  t.x = rnd(n, 2);
  t.r = rnd(n, 1);
  t.g = rnd(c, 1);
  t.b = rnd(c, 1);
  t.proj = rnd(n, 1);
  t.y = malloc(n * sizeof(double));
  for (size_t i = 0; i < n; i++) t.x[i] += 0.5 * (double)(i % c); /* non-zero means */
  round_f(t.x, n), round_f(t.r, n), round_f(t.g, c), round_f(t.b, c), round_f(t.proj, n);
  float *xf = to_f(t.x, n), *rf = to_f(t.r, n), *gf = to_f(t.g, c), *bf = to_f(t.b, c), *pf = to_f(t.proj, n);
  float *yf = malloc(n * 4), *dxf = malloc(n * 4), *drf = malloc(n * 4);
  float *dg = calloc(c, 4), *db = calloc(c, 4), *rm = calloc(c, 4), *rv = malloc(c * 4);
  float *sm = malloc(c * 4), *si = malloc(c * 4);
  for (int j = 0; j < c; j++) rv[j] = 1;
  char what[64];
  snprintf(what, sizeof what, "bn m%d c%d relu%d res%d", m, c, relu, has_r);
  cpu_bn_fwd_train(be, m, c, yf, xf, has_r ? rf : NULL, relu, gf, bf, rm, rv, sm, si, 0.1f, 1e-5f);
  bn_L(&t);
  double e = rel_l2_d(yf, t.y, n);
  CHECK(e <= FWD_TOL, "%s forward: rel err %.3g", what, e);
  /* running statistics: momentum 0.1 from (0, 1), unbiased variance */
  double err_rs = 0;
  for (int j = 0; j < c; j++) {
    double mean = 0, var = 0;
    for (int i = 0; i < m; i++) mean += t.x[(size_t)i * c + j];
    mean /= m;
    for (int i = 0; i < m; i++) var += (t.x[(size_t)i * c + j] - mean) * (t.x[(size_t)i * c + j] - mean);
    err_rs = fmax(err_rs, fabs(rm[j] - 0.1 * mean) / (fabs(0.1 * mean) + 1e-6));
    err_rs = fmax(err_rs, fabs(rv[j] - (0.9 + 0.1 * var / (m - 1))) / (0.9 + 0.1 * var / (m - 1)));
  }
  CHECK(err_rs <= 1e-5, "%s running stats: rel err %.3g", what, err_rs);
  cpu_bn_bwd(be, m, c, dxf, has_r ? drf : NULL, dg, db, pf, yf, xf, gf, sm, si, relu, 0, 0);
  double *gx = malloc(n * sizeof(double)), *gr = malloc(n * sizeof(double));
  double *gg = malloc(c * sizeof(double)), *gb = malloc(c * sizeof(double));
  fd(t.x, n, gx, (double (*)(void *))bn_L, &t);
  fd(t.g, c, gg, (double (*)(void *))bn_L, &t);
  fd(t.b, c, gb, (double (*)(void *))bn_L, &t);
  e = rel_l2_d(dxf, gx, n);
  CHECK(e <= GRAD_TOL, "%s dx: rel err %.3g", what, e);
  e = rel_l2_d(dg, gg, c);
  CHECK(e <= GRAD_TOL, "%s dgamma: rel err %.3g", what, e);
  e = rel_l2_d(db, gb, c);
  CHECK(e <= GRAD_TOL, "%s dbeta: rel err %.3g", what, e);
  if (has_r) {
    fd(t.r, n, gr, (double (*)(void *))bn_L, &t);
    e = rel_l2_d(drf, gr, n);
    CHECK(e <= GRAD_TOL, "%s dresidual: rel err %.3g", what, e);
  }
  free(t.x), free(t.r), free(t.g), free(t.b), free(t.proj), free(t.y), free(xf), free(rf), free(gf), free(bf);
  free(pf), free(yf), free(dxf), free(drf), free(dg), free(db), free(rm), free(rv), free(sm), free(si);
  free(gx), free(gr), free(gg), free(gb);
}

static void test_bn(void) {
  check_bn(37, 5, 0, 0);
  check_bn(37, 5, 1, 0);
  check_bn(50, 6, 1, 1);
  check_bn(600, 3, 1, 1); /* more rows than one reduction chunk */
}

/* ---- pools ---- */
typedef struct {
  int n, h, c, k, s, p, oh;
  double *x, *proj, *y;
} pool_case;

static double maxpool_L(pool_case *t) {
  ref_maxpool(t->n, t->h, t->h, t->c, t->k, t->s, t->p, t->oh, t->oh, t->y, t->x);
  return dot(t->y, t->proj, (size_t)t->n * t->oh * t->oh * t->c);
}
static double avgpool_L(pool_case *t) {
  ref_avgpool(t->n, t->h * t->h, t->c, t->y, t->x);
  return dot(t->y, t->proj, (size_t)t->n * t->c);
}

static void test_maxpool(void) {
  pool_case t = {2, 9, 3, 3, 2, 1, 5, NULL, NULL, NULL};
  size_t xn = (size_t)t.n * t.h * t.h * t.c, yn = (size_t)t.n * t.oh * t.oh * t.c;
  t.x = rnd(xn, 1), t.proj = rnd(yn, 1), t.y = malloc(yn * sizeof(double));
  round_f(t.x, xn), round_f(t.proj, yn);
  float *xf = to_f(t.x, xn), *pf = to_f(t.proj, yn), *yf = malloc(yn * 4), *dxf = malloc(xn * 4);
  cpu_maxpool_fwd(be, t.n, t.h, t.h, t.c, t.oh, t.oh, t.k, t.s, t.p, yf, xf);
  maxpool_L(&t);
  CHECK(rel_l2_d(yf, t.y, yn) == 0, "maxpool forward differs");
  cpu_maxpool_bwd(be, t.n, t.h, t.h, t.c, t.oh, t.oh, t.k, t.s, t.p, dxf, pf, xf, 0);
  double *gx = malloc(xn * sizeof(double));
  fd(t.x, xn, gx, (double (*)(void *))maxpool_L, &t);
  double e = rel_l2_d(dxf, gx, xn);
  CHECK(e <= GRAD_TOL, "maxpool dx: rel err %.3g", e);
  /* ties: all-zero input sends each output's gradient to its window's
   * first element (row-major), as PyTorch does */
  memset(xf, 0, xn * 4);
  for (size_t i = 0; i < yn; i++) pf[i] = 1.0f;
  cpu_maxpool_bwd(be, t.n, t.h, t.h, t.c, t.oh, t.oh, t.k, t.s, t.p, dxf, pf, xf, 0);
  int bad = 0;
  for (int b = 0; b < t.n; b++)
    for (int iy = 0; iy < t.h; iy++)
      for (int ix = 0; ix < t.h; ix++) {
        /* (iy, ix) is a first element iff it is max(0, o*2-1) for some o */
        float want = ((iy == 0 || iy % 2 == 1) && (ix == 0 || ix % 2 == 1)) ? 1.0f : 0.0f;
        for (int j = 0; j < t.c; j++) bad += dxf[(((size_t)b * t.h + iy) * t.h + ix) * t.c + j] != want;
      }
  CHECK(bad == 0, "maxpool ties: %d elements not routed to the window's first element", bad);
  free(t.x), free(t.proj), free(t.y), free(xf), free(pf), free(yf), free(dxf), free(gx);
}

static void test_avgpool(void) {
  pool_case t = {3, 4, 5, 0, 0, 0, 0, NULL, NULL, NULL};
  size_t xn = (size_t)t.n * 16 * t.c, yn = (size_t)t.n * t.c;
  t.x = rnd(xn, 1), t.proj = rnd(yn, 1), t.y = malloc(yn * sizeof(double));
  round_f(t.x, xn), round_f(t.proj, yn);
  float *xf = to_f(t.x, xn), *pf = to_f(t.proj, yn), *yf = malloc(yn * 4), *dxf = malloc(xn * 4);
  cpu_avgpool_fwd(be, t.n, 16, t.c, yf, xf);
  avgpool_L(&t);
  CHECK(rel_l2_d(yf, t.y, yn) <= FWD_TOL, "avgpool forward");
  cpu_avgpool_bwd(be, t.n, 16, t.c, dxf, pf, 0);
  double *gx = malloc(xn * sizeof(double));
  fd(t.x, xn, gx, (double (*)(void *))avgpool_L, &t);
  double e = rel_l2_d(dxf, gx, xn);
  CHECK(e <= GRAD_TOL, "avgpool dx: rel err %.3g", e);
  free(t.x), free(t.proj), free(t.y), free(xf), free(pf), free(yf), free(dxf), free(gx);
}

/* ---- fully connected + cross-entropy ---- */
typedef struct {
  int n, cin, cout;
  double eps;
  int *labels;
  double *x, *w, *b, *logits;
} fc_case;

/* L = mean label-smoothed cross-entropy of fc(x): checks fc and xent */
static double fc_L(fc_case *t) {
  ref_fc(t->n, t->cin, t->cout, t->logits, t->x, t->w, t->b);
  return ref_xent(t->n, t->cout, t->logits, t->labels, t->eps);
}

static void test_fc_xent(void) {
  fc_case t = {5, 7, 11, 0.1, NULL, NULL, NULL, NULL, NULL};
  int labels[5] = {0, 3, 10, 3, 7};
  t.labels = labels;
  size_t xn = 35, wn = 77, yn = 55;
  t.x = rnd(xn, 1), t.w = rnd(wn, 0.5), t.b = rnd(11, 0.5), t.logits = malloc(yn * sizeof(double));
  round_f(t.x, xn), round_f(t.w, wn), round_f(t.b, 11);
  float *xf = to_f(t.x, xn), *wf = to_f(t.w, wn), *bf = to_f(t.b, 11), *yf = malloc(yn * 4), *dy = malloc(yn * 4);
  float *dxf = malloc(xn * 4), *dwf = calloc(wn, 4), *dbf = calloc(11, 4), loss[5];
  cpu_fc_fwd(be, t.n, t.cin, t.cout, yf, xf, wf, bf);
  double L = fc_L(&t);
  CHECK(rel_l2_d(yf, t.logits, yn) <= FWD_TOL, "fc forward");
  int32_t lab32[5];
  for (int i = 0; i < 5; i++) lab32[i] = labels[i];
  cpu_xent(be, t.n, t.cout, loss, dy, yf, lab32, 0.1f, 1.0f / t.n);
  double mean = 0;
  for (int i = 0; i < 5; i++) mean += loss[i] / 5;
  CHECK(fabs(mean - L) <= 1e-5 * fabs(L), "xent loss %.8f vs reference %.8f", mean, L);
  cpu_fc_bwd(be, t.n, t.cin, t.cout, dxf, dwf, dbf, dy, xf, wf, 0);
  double *gx = malloc(xn * sizeof(double)), *gw = malloc(wn * sizeof(double)), *gb = malloc(11 * sizeof(double));
  fd(t.x, xn, gx, (double (*)(void *))fc_L, &t);
  fd(t.w, wn, gw, (double (*)(void *))fc_L, &t);
  fd(t.b, 11, gb, (double (*)(void *))fc_L, &t);
  double e = rel_l2_d(dxf, gx, xn);
  CHECK(e <= GRAD_TOL, "fc+xent dx: rel err %.3g", e);
  e = rel_l2_d(dwf, gw, wn);
  CHECK(e <= GRAD_TOL, "fc+xent dw: rel err %.3g", e);
  e = rel_l2_d(dbf, gb, 11);
  CHECK(e <= GRAD_TOL, "fc+xent db: rel err %.3g", e);
  free(t.x), free(t.w), free(t.b), free(t.logits), free(xf), free(wf), free(bf), free(yf), free(dy), free(dxf);
  free(dwf), free(dbf), free(gx), free(gw), free(gb);
}

/* ---- SGD against the torch.optim.SGD formulas, step by step ---- */
static void test_sgd(void) {
  enum { N = 10, ND = 6 };
  float w[N], buf[N] = {0}, g[N];
  double wr[N], br[N] = {0};
  for (int i = 0; i < N; i++) w[i] = (float)(wr[i] = (float)rng_normal(3, 1, i));
  for (int nesterov = 0; nesterov < 2; nesterov++)
    for (int step = 0; step < 3; step++) {
      for (int i = 0; i < N; i++) g[i] = (float)rng_normal(3, 2 + step, i);
      cpu_sgd_step(be, w, buf, g, NULL, N, ND, 0.1f, 0.9f, 1e-2f, 0.0f, nesterov, 0.5f);
      double err = 0;
      for (int i = 0; i < N; i++) {
        double d = 0.5 * g[i] + (i < ND ? 1e-2 : 0.0) * wr[i];
        br[i] = 0.9 * br[i] + d;
        d = nesterov ? d + 0.9 * br[i] : br[i];
        wr[i] -= 0.1 * d;
        err = fmax(err, fabs(w[i] - wr[i]));
      }
      CHECK(err < 1e-6, "sgd nesterov=%d step %d: max abs err %.3g", nesterov, step, err);
    }
}

int main(void) {
  be = cpu_backend_create(0);
  RUN(test_conv);
  RUN(test_bn);
  RUN(test_maxpool);
  RUN(test_avgpool);
  RUN(test_fc_xent);
  RUN(test_sgd);
  be->destroy(be);
  return harness_finish();
}
