/* loss.c: softmax cross-entropy with label smoothing on the CPU, in double
 * per row. */
#include <math.h>

#include "cpu.h"

void cpu_xent(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
              const int32_t *labels, float smoothing, float grad_scale) {
  /* loss [n]; dlogits, logits [n, classes]; labels [n] in [0, classes) */
#pragma omp parallel for schedule(static)
  for (int i = 0; i < n; i++) {
    const float *l = logits + (size_t)i * classes;
    double mx = l[0], sum = 0, sum_l = 0;
    for (int j = 1; j < classes; j++) mx = l[j] > mx ? l[j] : mx;
    for (int j = 0; j < classes; j++) {
      sum += exp(l[j] - mx);
      sum_l += l[j];
    }
    double lse = mx + log(sum);
    double eps = smoothing;
    int y = labels[i];
    loss[i] = (float)(lse - (1.0 - eps) * l[y] - eps / classes * sum_l);
    if (dlogits) {
      float *d = dlogits + (size_t)i * classes;
      for (int j = 0; j < classes; j++) {
        double p = exp(l[j] - lse);
        double q = eps / classes + (j == y ? 1.0 - eps : 0.0);
        d[j] = (float)(grad_scale * (p - q));
      }
    }
  }
}
