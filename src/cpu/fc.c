/* fc.c: the fully connected layer on the CPU, as the 1x1 convolution of a
 * 1x1 image (src/cpu/conv.c): x [n, cin] is NHWC with h = w = 1 and
 * w [cout, cin] is OHWI. */
#include "cpu.h"
#include "threads.h"

static conv_desc fc_desc(int n, int cin, int cout) {
  conv_desc d = {n, 1, 1, cin, 1, 1, cout, 1, 1, 1, 0, -1};
  return d;
}

typedef struct {
  int n, cout;
  float *y, *db;
  const float *b, *dy;
} bias_args;

static void bias_row(void *ctx, int i, int thread) {
  const bias_args *A = ctx;
  float *y = A->y + (size_t)i * A->cout;
  for (int j = 0; j < A->cout; j++) y[j] += A->b[j];
}

void cpu_fc_fwd(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b) {
  /* y [n, cout] = x [n, cin] * w [cout, cin]^T + b [cout] */
  conv_desc d = fc_desc(n, cin, cout);
  cpu_conv_fwd(be, &d, y, x, w);
  bias_args A = {n, cout, y, NULL, b, NULL};
  cpu_for(n, bias_row, &A);
}

void cpu_fc_bwd(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                const void *x, const void *w, int acc_dx) {
  conv_desc d = fc_desc(n, cin, cout);
  /* dx [n, cin] (+)= dy [n, cout] * w [cout, cin] */
  cpu_conv_bwd_data(be, &d, dx, dy, w, acc_dx);
  /* dw [cout, cin] += dy^T x */
  cpu_conv_bwd_filter(be, &d, dw, dy, x);
  for (int j = 0; j < cout; j++) {
    double s = 0;
    for (int i = 0; i < n; i++) s += dy[(size_t)i * cout + j];
    db[j] += (float)s;
  }
}
