/* ref_ops.h: naive double-precision forward ops, written independently of
 * src/cpu, for finite-difference gradient checks and forward checks.
 * Layouts as in rn50: NHWC activations, OHWI weights. */
#ifndef RN50_REF_OPS_H
#define RN50_REF_OPS_H

#include <math.h>
#include <stddef.h>

static void ref_conv(int n, int h, int w, int c, int k, int ks, int stride, int pad, int oh, int ow, double *y,
                     const double *x, const double *wt) {
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int o = 0; o < k; o++) {
          double s = 0;
          for (int ky = 0; ky < ks; ky++)
            for (int kx = 0; kx < ks; kx++) {
              int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              for (int i = 0; i < c; i++)
                s += x[(((size_t)b * h + iy) * w + ix) * c + i] * wt[(((size_t)o * ks + ky) * ks + kx) * c + i];
            }
          y[(((size_t)b * oh + oy) * ow + ox) * k + o] = s;
        }
}

/* training-mode batch norm with optional residual and ReLU */
static void ref_bn(int m, int c, double *y, const double *x, const double *r, int relu, const double *gamma,
                   const double *beta, double eps) {
  for (int j = 0; j < c; j++) {
    double mean = 0, var = 0;
    for (int i = 0; i < m; i++) mean += x[(size_t)i * c + j];
    mean /= m;
    for (int i = 0; i < m; i++) var += (x[(size_t)i * c + j] - mean) * (x[(size_t)i * c + j] - mean);
    var /= m;
    for (int i = 0; i < m; i++) {
      double v = gamma[j] * (x[(size_t)i * c + j] - mean) / sqrt(var + eps) + beta[j];
      if (r) v += r[(size_t)i * c + j];
      if (relu && v < 0) v = 0;
      y[(size_t)i * c + j] = v;
    }
  }
}

static void ref_maxpool(int n, int h, int w, int c, int k, int stride, int pad, int oh, int ow, double *y,
                        const double *x) {
  for (int b = 0; b < n; b++)
    for (int oy = 0; oy < oh; oy++)
      for (int ox = 0; ox < ow; ox++)
        for (int j = 0; j < c; j++) {
          double best = -INFINITY;
          for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
              int iy = oy * stride - pad + ky, ix = ox * stride - pad + kx;
              if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
              double v = x[(((size_t)b * h + iy) * w + ix) * c + j];
              if (v > best) best = v;
            }
          y[(((size_t)b * oh + oy) * ow + ox) * c + j] = best;
        }
}

static void ref_avgpool(int n, int hw, int c, double *y, const double *x) {
  for (int b = 0; b < n; b++)
    for (int j = 0; j < c; j++) {
      double s = 0;
      for (int p = 0; p < hw; p++) s += x[((size_t)b * hw + p) * c + j];
      y[(size_t)b * c + j] = s / hw;
    }
}

static void ref_fc(int n, int cin, int cout, double *y, const double *x, const double *w, const double *b) {
  for (int i = 0; i < n; i++)
    for (int o = 0; o < cout; o++) {
      double s = b[o];
      for (int j = 0; j < cin; j++) s += x[(size_t)i * cin + j] * w[(size_t)o * cin + j];
      y[(size_t)i * cout + o] = s;
    }
}

/* mean over rows of the label-smoothed cross-entropy */
static double ref_xent(int n, int classes, const double *logits, const int *labels, double eps) {
  double total = 0;
  for (int i = 0; i < n; i++) {
    const double *l = logits + (size_t)i * classes;
    double mx = l[0], s = 0;
    for (int j = 1; j < classes; j++) mx = fmax(mx, l[j]);
    for (int j = 0; j < classes; j++) s += exp(l[j] - mx);
    double lse = mx + log(s);
    double loss = 0;
    for (int j = 0; j < classes; j++) {
      double q = eps / classes + (j == labels[i] ? 1 - eps : 0);
      loss -= q * (l[j] - lse);
    }
    total += loss;
  }
  return total / n;
}

#endif
