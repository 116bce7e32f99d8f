/* sgd.c: the optimizer step, finiteness check and weight EMA on the CPU. */
#include <math.h>
#include <string.h>

#include "cpu.h"

void cpu_sgd_step(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                  float lr, float momentum, float wd, float wd_rest, int nesterov, float grad_scale) {
  /* w, buf, g: [n]; w_work: [n] working copy (fp32 here: may alias w) */
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) {
    float decay = i < n_decay ? wd : wd_rest;
    float d = g[i] * grad_scale + decay * w[i];
    float b = momentum * buf[i] + d;
    buf[i] = b;
    if (nesterov) d = d + momentum * b;
    else d = b;
    w[i] = w[i] - lr * d;
  }
  if (w_work && w_work != (void *)w) memcpy(w_work, w, n * sizeof(float));
}

int cpu_nonfinite(backend *be, const float *g, size_t n) {
  int bad = 0;
#pragma omp parallel for reduction(| : bad) schedule(static)
  for (size_t i = 0; i < n; i++) bad |= !isfinite(g[i]);
  return bad;
}

void cpu_ema_update(backend *be, float *ema, const float *w, size_t n, float decay) {
#pragma omp parallel for schedule(static)
  for (size_t i = 0; i < n; i++) ema[i] = decay * ema[i] + (1.0f - decay) * w[i];
}
