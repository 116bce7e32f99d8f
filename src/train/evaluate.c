/* evaluate.c: the evaluation loop and top-k. */
#include "evaluate.h"

#include <math.h>
#include <stdlib.h>

#include "../core/util.h"

void topk(const float *row, int classes, int k, int *idx, double *prob) {
  for (int i = 0; i < k; i++) idx[i] = -1;
  for (int j = 0; j < classes; j++) {
    int pos = k;
    while (pos > 0 && (idx[pos - 1] < 0 || row[j] > row[idx[pos - 1]])) pos--;
    if (pos >= k) continue;
    for (int t = k - 1; t > pos; t--) idx[t] = idx[t - 1];
    idx[pos] = j;
  }
  if (!prob) return;
  double mx = row[0], s = 0;
  for (int j = 1; j < classes; j++) mx = fmax(mx, row[j]);
  for (int j = 0; j < classes; j++) s += exp(row[j] - mx);
  for (int i = 0; i < k; i++) prob[i] = idx[i] >= 0 ? exp(row[idx[i]] - mx) / s : 0;
}

void evaluate(model *m, loader *val, eval_result *r) {
  int B = m->max_batch, C = m->net.classes, crop = loader_crop(val);
  double t0 = now_sec();
  uint8_t *img = m->be->alloc_host(m->be, (size_t)B * crop * crop * 3, "eval images");
  int32_t *lab = m->be->alloc_host(m->be, (size_t)B * sizeof(int32_t), "eval labels");
  float *logits = xmalloc((size_t)B * C * sizeof(float), "eval logits");
  double loss = 0;
  long n = 0, c1 = 0, c5 = 0;
  loader_start(val, 0, 0);
  int got;
  while ((got = loader_next(val, img, lab)) > 0) {
    model_set_input(m, img, NULL, got);
    model_forward(m, got, 0);
    model_logits_to_host(m, got, logits);
    for (int i = 0; i < got; i++) {
      const float *row = logits + (size_t)i * C;
      int idx[5];
      int k = C < 5 ? C : 5;
      topk(row, C, k, idx, NULL);
      c1 += idx[0] == lab[i];
      for (int t = 0; t < k; t++) c5 += idx[t] == lab[i];
      double mx = row[0], s = 0;
      for (int j = 1; j < C; j++) mx = fmax(mx, row[j]);
      for (int j = 0; j < C; j++) s += exp(row[j] - mx);
      loss += mx + log(s) - row[lab[i]];
    }
    n += got;
  }
  r->images = n;
  r->loss = n ? loss / n : NAN;
  r->top1 = n ? 100.0 * c1 / n : NAN;
  r->top5 = n ? 100.0 * c5 / n : NAN;
  r->seconds = now_sec() - t0;
  free(logits);
  m->be->free_host(m->be, img);
  m->be->free_host(m->be, lab);
}
