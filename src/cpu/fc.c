/* fc.c: the fully connected layer on the CPU (OpenBLAS). */
#include <cblas.h>

#include "cpu.h"

void cpu_fc_fwd(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b_) {
  /* y [n, cout] = x [n, cin] * w [cout, cin]^T + b [cout] */
  const float *b = b_;
  for (int i = 0; i < n; i++)
    for (int j = 0; j < cout; j++) y[(size_t)i * cout + j] = b[j];
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, cout, cin, 1.0f, x, cin, w, cin, 1.0f, y, cout);
}

void cpu_fc_bwd(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                const void *x, const void *w, int acc_dx) {
  /* dx [n, cin] (+)= dy [n, cout] * w [cout, cin] */
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, cin, cout, 1.0f, dy, cout, w, cin, acc_dx ? 1.0f : 0.0f,
              dx, cin);
  /* dw [cout, cin] += dy^T x */
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cout, cin, n, 1.0f, dy, cout, x, cin, 1.0f, dw, cin);
  for (int j = 0; j < cout; j++) {
    double s = 0;
    for (int i = 0; i < n; i++) s += dy[(size_t)i * cout + j];
    db[j] += (float)s;
  }
}
