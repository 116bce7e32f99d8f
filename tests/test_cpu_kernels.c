/* test_cpu_kernels.c: the CPU convolutions, fully connected layer and batch
 * norm against double-precision references, at shapes that reach every
 * path of src/cpu/conv.c and src/cpu/vec.h (test_gradcheck.c checks the
 * ops on tiny shapes; these are large enough for full 6x16 register
 * tiles, 8-wide vectors, channel chunks past 256, several tap blocks,
 * stride-2 pixel classes, the im2col path and ragged edges). The backward
 * references are the analytic gradients, summed in double. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "cpu/cpu.h"
#include "harness.h"
#pragma GCC diagnostic ignored "-Wunused-function" /* ref_ops.h: we use some of its references */
#include "ref_ops.h"

#define FWD_TOL 1e-5
#define BWD_TOL 1e-5

static backend *be;
static uint64_t stream_ctr = 1000;

/* n floats from N(0, scale^2), and the same values in double */
static float *rnd(size_t n, double scale, double **d) {
  float *f = malloc(n * sizeof(float));
  *d = malloc(n * sizeof(double));
  uint64_t s = stream_ctr++;
  for (size_t i = 0; i < n; i++) {
    f[i] = (float)(scale * rng_normal(7, s, i));
    (*d)[i] = f[i];
  }
  return f;
}

/* dx and dw of a convolution for output gradient dy, in double */
static void ref_conv_bwd(int n, int h, int w, int c, int k, int ks, int s, int p, int oh, int ow, double *dx,
                         double *dw, const double *dy, const double *x, const double *wt) {
  memset(dx, 0, (size_t)n * h * w * c * sizeof(double));
  memset(dw, 0, (size_t)k * ks * ks * c * sizeof(double));
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int o = 0; o < k; o++) {
          double g = dy[(((size_t)b * oh + oy) * ow + ox) * k + o];
          for (int ky = 0; ky < ks; ky++)
            for (int kx = 0; kx < ks; kx++) {
              int iy = oy * s - p + ky, ix = ox * s - p + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              size_t xo = (((size_t)b * h + iy) * w + ix) * c, wo = (((size_t)o * ks + ky) * ks + kx) * c;
              for (int i = 0; i < c; i++) {
                dx[xo + i] += g * wt[wo + i];
                dw[wo + i] += g * x[xo + i];
              }
            }
        }
}

static void check_conv(int n, int h, int c, int k, int ks, int s, int p) {
  int oh = (h + 2 * p - ks) / s + 1;
  size_t xn = (size_t)n * h * h * c, wn = (size_t)k * ks * ks * c, yn = (size_t)n * oh * oh * k;
  double *xd, *wd, *gd;
  float *x = rnd(xn, 1, &xd), *wt = rnd(wn, 0.1, &wd), *dy = rnd(yn, 1, &gd);
  double *yr = malloc(yn * sizeof(double)), *dxr = malloc(xn * sizeof(double)), *dwr = malloc(wn * sizeof(double));
  float *y = malloc(yn * 4), *dx = malloc(xn * 4), *dw = malloc(wn * 4);
  ref_conv(n, h, h, c, k, ks, s, p, oh, oh, yr, xd, wd);
  ref_conv_bwd(n, h, h, c, k, ks, s, p, oh, oh, dxr, dwr, gd, xd, wd);
  conv_desc d = {n, h, h, c, oh, oh, k, ks, ks, s, p, 0};
  char what[80];
  snprintf(what, sizeof what, "conv n%d h%d c%d k%d %dx%d s%d p%d", n, h, c, k, ks, ks, s, p);
  cpu_conv_fwd(be, &d, y, x, wt);
  double e = rel_l2_d(y, yr, yn);
  CHECK(e <= FWD_TOL, "%s forward: rel err %.3g", what, e);
  for (size_t i = 0; i < xn; i++) dx[i] = NAN; /* overwritten, never read */
  cpu_conv_bwd_data(be, &d, dx, dy, wt, 0);
  e = rel_l2_d(dx, dxr, xn);
  CHECK(e <= BWD_TOL, "%s dx: rel err %.3g", what, e);
  for (size_t i = 0; i < xn; i++) dx[i] = 2.0f;
  cpu_conv_bwd_data(be, &d, dx, dy, wt, 1);
  for (size_t i = 0; i < xn; i++) dx[i] -= 2.0f;
  e = rel_l2_d(dx, dxr, xn);
  CHECK(e <= BWD_TOL, "%s dx accumulated: rel err %.3g", what, e);
  for (size_t i = 0; i < wn; i++) dw[i] = 1.0f;
  cpu_conv_bwd_filter(be, &d, dw, dy, x);
  for (size_t i = 0; i < wn; i++) dw[i] -= 1.0f;
  e = rel_l2_d(dw, dwr, wn);
  CHECK(e <= BWD_TOL, "%s dw (accumulated): rel err %.3g", what, e);
  free(x), free(wt), free(dy), free(xd), free(wd), free(gd), free(yr), free(dxr), free(dwr), free(y), free(dx);
  free(dw);
}

static void test_conv(void) {
  check_conv(2, 9, 40, 36, 3, 1, 1);  /* full tiles, 4-column edge panel, two tap blocks */
  check_conv(3, 8, 300, 20, 3, 2, 1); /* channel chunks of 256 + 44, stride-2 classes */
  check_conv(2, 7, 64, 64, 1, 1, 0);  /* pointwise: the whole reduction in one block */
  check_conv(2, 10, 32, 48, 1, 2, 0); /* downsample: odd pixels get no gradient */
  check_conv(2, 15, 3, 16, 7, 2, 3);  /* the stem: im2col path */
  check_conv(1, 5, 20, 10, 5, 1, 2);  /* 5x5 */
  check_conv(2, 6, 17, 23, 3, 1, 0);  /* no padding, ragged channels */
}

static void test_fc(void) {
  int n = 5, cin = 40, cout = 33;
  double *xd, *wd, *bd, *gd;
  float *x = rnd((size_t)n * cin, 1, &xd), *w = rnd((size_t)cout * cin, 0.2, &wd), *b = rnd(cout, 1, &bd);
  float *dy = rnd((size_t)n * cout, 1, &gd);
  double *yr = malloc((size_t)n * cout * sizeof(double)), *dxr = calloc((size_t)n * cin, sizeof(double));
  double *dwr = calloc((size_t)cout * cin, sizeof(double)), *dbr = calloc(cout, sizeof(double));
  ref_fc(n, cin, cout, yr, xd, wd, bd);
  for (int i = 0; i < n; i++)
    for (int o = 0; o < cout; o++) {
      double g = gd[(size_t)i * cout + o];
      dbr[o] += g;
      for (int j = 0; j < cin; j++) {
        dxr[(size_t)i * cin + j] += g * wd[(size_t)o * cin + j];
        dwr[(size_t)o * cin + j] += g * xd[(size_t)i * cin + j];
      }
    }
  float *y = malloc((size_t)n * cout * 4), *dx = malloc((size_t)n * cin * 4);
  float *dw = calloc((size_t)cout * cin, 4), *db = calloc(cout, 4);
  cpu_fc_fwd(be, n, cin, cout, y, x, w, b);
  double e = rel_l2_d(y, yr, (size_t)n * cout);
  CHECK(e <= FWD_TOL, "fc forward: rel err %.3g", e);
  cpu_fc_bwd(be, n, cin, cout, dx, dw, db, dy, x, w, 0);
  e = rel_l2_d(dx, dxr, (size_t)n * cin);
  CHECK(e <= BWD_TOL, "fc dx: rel err %.3g", e);
  e = rel_l2_d(dw, dwr, (size_t)cout * cin);
  CHECK(e <= BWD_TOL, "fc dw: rel err %.3g", e);
  e = rel_l2_d(db, dbr, cout);
  CHECK(e <= BWD_TOL, "fc db: rel err %.3g", e);
  free(x), free(w), free(b), free(dy), free(xd), free(wd), free(bd), free(gd), free(yr), free(dxr), free(dwr);
  free(dbr), free(y), free(dx), free(dw), free(db);
}

/* training batch norm forward and backward against double, with the
 * analytic backward (ReLU mask taken from rn50's own output) */
static void check_bn(int m, int c, int relu, int has_r, double mean_offset) {
  size_t n = (size_t)m * c;
  double *xd, *rd, *gd, *bd, *dyd;
  float *x = rnd(n, 2, &xd), *r = rnd(n, 1, &rd), *g = rnd(c, 1, &gd), *b = rnd(c, 1, &bd), *dy = rnd(n, 1, &dyd);
  for (size_t i = 0; i < n; i++) { /* means far from zero stress the statistics */
    x[i] += (float)(mean_offset * (double)(i % c));
    xd[i] = x[i];
  }
  double *yr = malloc(n * sizeof(double));
  ref_bn(m, c, yr, xd, has_r ? rd : NULL, relu, gd, bd, 1e-5);
  float *y = malloc(n * 4), *dx = malloc(n * 4), *dr = malloc(n * 4), *dg = calloc(c, 4), *db = calloc(c, 4);
  float *rm = calloc(c, 4), *rv = malloc(c * 4), *sm = malloc(c * 4), *si = malloc(c * 4);
  for (int j = 0; j < c; j++) rv[j] = 1;
  char what[80];
  snprintf(what, sizeof what, "bn m%d c%d relu%d res%d offset %g", m, c, relu, has_r, mean_offset);
  cpu_bn_fwd_train(be, m, c, y, x, has_r ? r : NULL, relu, g, b, rm, rv, sm, si, 0.1f, 1e-5f);
  double e = rel_l2_d(y, yr, n);
  CHECK(e <= FWD_TOL, "%s forward: rel err %.3g", what, e);
  double *dxr = malloc(n * sizeof(double)), *dzr = malloc(n * sizeof(double));
  double *dgr = calloc(c, sizeof(double)), *dbr = calloc(c, sizeof(double));
  for (int j = 0; j < c; j++) {
    double mean = 0, var = 0;
    for (int i = 0; i < m; i++) mean += xd[(size_t)i * c + j];
    mean /= m;
    for (int i = 0; i < m; i++) var += (xd[(size_t)i * c + j] - mean) * (xd[(size_t)i * c + j] - mean);
    double is = 1 / sqrt(var / m + 1e-5);
    for (int i = 0; i < m; i++) {
      size_t o = (size_t)i * c + j;
      dzr[o] = (relu && !(y[o] > 0)) ? 0 : dyd[o];
      dbr[j] += dzr[o];
      dgr[j] += dzr[o] * (xd[o] - mean) * is;
    }
    for (int i = 0; i < m; i++) {
      size_t o = (size_t)i * c + j;
      dxr[o] = gd[j] * is / m * (m * dzr[o] - dbr[j] - (xd[o] - mean) * is * dgr[j]);
    }
  }
  cpu_bn_bwd(be, m, c, dx, has_r ? dr : NULL, dg, db, dy, y, x, g, sm, si, relu, 0, 0);
  e = rel_l2_d(dx, dxr, n);
  CHECK(e <= BWD_TOL, "%s dx: rel err %.3g", what, e);
  e = rel_l2_d(dg, dgr, c);
  CHECK(e <= BWD_TOL, "%s dgamma: rel err %.3g", what, e);
  e = rel_l2_d(db, dbr, c);
  CHECK(e <= BWD_TOL, "%s dbeta: rel err %.3g", what, e);
  if (has_r) {
    e = rel_l2_d(dr, dzr, n);
    CHECK(e == 0, "%s dresidual: rel err %.3g", what, e);
  }
  free(x), free(r), free(g), free(b), free(dy), free(xd), free(rd), free(gd), free(bd), free(dyd), free(yr);
  free(y), free(dx), free(dr), free(dg), free(db), free(rm), free(rv), free(sm), free(si), free(dxr), free(dzr);
  free(dgr), free(dbr);
}

static void test_bn(void) {
  check_bn(700, 19, 1, 1, 0.5); /* three row chunks; two 8-channel vectors and a 3-channel tail */
  check_bn(300, 72, 0, 0, 0);   /* two channel groups */
  check_bn(513, 64, 1, 0, 8.0); /* means 8 sigma and more from zero */
}

/* max pool 3x3 s2 p1 with many ties (values on a coarse grid): forward
 * against ref_maxpool, backward against routing each gradient to the
 * first maximum of its window in row-major order */
static void test_maxpool(void) {
  const int n = 3, h = 13, c = 21, k = 3, s = 2, p = 1, oh = (h + 2 * p - k) / s + 1;
  size_t xn = (size_t)n * h * h * c, yn = (size_t)n * oh * oh * c;
  double *xd, *gd;
  float *x = rnd(xn, 1, &xd), *g = rnd(yn, 1, &gd);
  for (size_t i = 0; i < xn; i++) xd[i] = x[i] = roundf(x[i] * 2) / 2; /* ties */
  double *yr = malloc(yn * sizeof(double)), *dxr = calloc(xn, sizeof(double));
  ref_maxpool(n, h, h, c, k, s, p, oh, oh, yr, xd);
  /* scan the window, keep the first strict maximum */
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < oh; ox++)
        for (int j = 0; j < c; j++) {
          size_t arg = (size_t)-1;
          double best = -INFINITY;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int iy = oy * s - p + ky, ix = ox * s - p + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= h) continue;
              size_t o = (((size_t)b * h + iy) * h + ix) * c + j;
              if (arg == (size_t)-1 || xd[o] > best) arg = o, best = xd[o];
            }
          dxr[arg] += gd[(((size_t)b * oh + oy) * oh + ox) * c + j];
        }
  float *y = malloc(yn * 4), *dx = malloc(xn * 4);
  cpu_maxpool_fwd(be, n, h, h, c, oh, oh, k, s, p, y, x);
  double e = rel_l2_d(y, yr, yn);
  CHECK(e == 0, "maxpool forward: rel err %.3g", e);
  cpu_maxpool_bwd(be, n, h, h, c, oh, oh, k, s, p, dx, g, x, 0);
  e = rel_l2_d(dx, dxr, xn);
  CHECK(e <= 1e-7, "maxpool backward: rel err %.3g", e);
  free(x), free(g), free(xd), free(gd), free(yr), free(dxr), free(y), free(dx);
}

int main(void) {
  be = cpu_backend_create(0);
  RUN(test_conv);
  RUN(test_fc);
  RUN(test_bn);
  RUN(test_maxpool);
  be->destroy(be);
  return harness_finish();
}
