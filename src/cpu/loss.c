/* loss.c: softmax cross-entropy with label smoothing on the CPU, in double
 * per row, one row per work item. */
#include <math.h>

#include "cpu.h"
#include "threads.h"

typedef struct {
  int classes;
  float *loss, *dlogits;
  const float *logits;
  const int32_t *labels;
  float smoothing, grad_scale;
} xent_args;

static void xent_row(void *ctx, int i, int thread) {
  const xent_args *A = ctx;
  const int classes = A->classes;
  const float *l = A->logits + (size_t)i * classes;
  double mx = l[0], sum = 0, sum_l = 0;
  for (int j = 1; j < classes; j++) mx = l[j] > mx ? l[j] : mx;
  for (int j = 0; j < classes; j++) {
    sum += exp(l[j] - mx);
    sum_l += l[j];
  }
  double lse = mx + log(sum);
  double eps = A->smoothing;
  int y = A->labels[i];
  A->loss[i] = (float)(lse - (1.0 - eps) * l[y] - eps / classes * sum_l);
  if (A->dlogits) {
    float *d = A->dlogits + (size_t)i * classes;
    for (int j = 0; j < classes; j++) {
      double p = exp(l[j] - lse);
      double q = eps / classes + (j == y ? 1.0 - eps : 0.0);
      d[j] = (float)(A->grad_scale * (p - q));
    }
  }
}

void cpu_xent(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
              const int32_t *labels, float smoothing, float grad_scale) {
  /* loss [n]; dlogits, logits [n, classes]; labels [n] in [0, classes) */
  xent_args A = {classes, loss, dlogits, logits, labels, smoothing, grad_scale};
  cpu_for(n, xent_row, &A);
}
