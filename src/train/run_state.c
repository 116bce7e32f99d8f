/* run_state.c: progress counters and history, their JSON, epoch reports. */
#include "run_state.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "report.h"

void run_state_init(run_state *s) {
  memset(s, 0, sizeof *s);
  s->loss_scale = 1;
  s->best_top1 = -1;
  s->best_epoch = -1;
  s->best_step = -1;
}

void run_state_free(run_state *s) { free(s->hist); }

void run_state_add_epoch(run_state *s, const epoch_record *r) {
  /* a resumed epoch replaces its old record and drops later ones */
  int n = 0;
  while (n < s->n_hist && s->hist[n].epoch < r->epoch) n++;
  s->n_hist = n;
  if (s->n_hist == s->cap_hist) {
    s->cap_hist = s->cap_hist ? 2 * s->cap_hist : 32;
    s->hist = xrealloc(s->hist, (size_t)s->cap_hist * sizeof *s->hist, "epoch history");
  }
  s->hist[s->n_hist++] = *r;
}

static void put_num(strbuf *b, const char *key, double v, int last) {
  if (isfinite(v)) sb_printf(b, "\"%s\": %.17g%s", key, v, last ? "" : ", ");
  else sb_printf(b, "\"%s\": null%s", key, last ? "" : ", ");
}

char *run_state_to_json(const run_state *s) {
  strbuf b;
  sb_init(&b);
  sb_printf(&b, "{\"version\": 1, \"epoch\": %lld, \"step_in_epoch\": %lld, \"global_step\": %lld, ",
            (long long)s->epoch, (long long)s->step_in_epoch, (long long)s->global_step);
  put_num(&b, "loss_scale", s->loss_scale, 0);
  sb_printf(&b, "\"good_steps\": %lld, \"nan_streak\": %lld, \"skipped\": %lld, ", (long long)s->good_steps,
            (long long)s->nan_streak, (long long)s->skipped);
  put_num(&b, "best_top1", s->best_top1, 0);
  sb_printf(&b, "\"best_epoch\": %d, \"best_step\": %lld, ", s->best_epoch, (long long)s->best_step);
  put_num(&b, "elapsed", s->elapsed, 0);
  put_num(&b, "epoch_loss_sum", s->epoch_loss_sum, 0);
  sb_printf(&b, "\"epoch_loss_count\": %lld, \"history\": [", (long long)s->epoch_loss_count);
  for (int i = 0; i < s->n_hist; i++) {
    const epoch_record *r = &s->hist[i];
    sb_printf(&b, "%s{\"epoch\": %d, \"crop\": %d, ", i ? ", " : "", r->epoch, r->crop);
    put_num(&b, "train_loss", r->train_loss, 0);
    put_num(&b, "eval_loss", r->eval_loss, 0);
    put_num(&b, "top1", r->top1, 0);
    put_num(&b, "top5", r->top5, 0);
    put_num(&b, "ema_loss", r->ema_loss, 0);
    put_num(&b, "ema_top1", r->ema_top1, 0);
    put_num(&b, "ema_top5", r->ema_top5, 0);
    put_num(&b, "lr", r->lr, 0);
    put_num(&b, "img_s", r->img_s, 0);
    put_num(&b, "seconds", r->seconds, 1);
    sb_puts(&b, "}");
  }
  sb_puts(&b, "]}");
  return b.data;
}

static double num_or_nan(const json *j, const char *k) {
  const json *v = json_get(j, k);
  return v && v->type == JSON_NUMBER ? v->num : NAN;
}

int run_state_from_json(run_state *s, const char *text, char *err, size_t errlen) {
  json *j = json_parse(text, strlen(text), err, errlen);
  if (!j) return -1;
  run_state_free(s);
  run_state_init(s);
  s->epoch = (int64_t)json_num(j, "epoch", 0);
  s->step_in_epoch = (int64_t)json_num(j, "step_in_epoch", 0);
  s->global_step = (int64_t)json_num(j, "global_step", 0);
  s->loss_scale = json_num(j, "loss_scale", 1);
  s->good_steps = (int64_t)json_num(j, "good_steps", 0);
  s->nan_streak = (int64_t)json_num(j, "nan_streak", 0);
  s->skipped = (int64_t)json_num(j, "skipped", 0);
  s->best_top1 = json_num(j, "best_top1", -1);
  s->best_epoch = (int)json_num(j, "best_epoch", -1);
  s->best_step = (int64_t)json_num(j, "best_step", -1);
  s->elapsed = json_num(j, "elapsed", 0);
  s->epoch_loss_sum = json_num(j, "epoch_loss_sum", 0);
  s->epoch_loss_count = (int64_t)json_num(j, "epoch_loss_count", 0);
  const json *h = json_get(j, "history");
  for (const json *e = h && h->type == JSON_ARRAY ? h->child : NULL; e; e = e->next) {
    epoch_record r = {(int)json_num(e, "epoch", 0), num_or_nan(e, "train_loss"), num_or_nan(e, "eval_loss"),
                      num_or_nan(e, "top1"), num_or_nan(e, "top5"), num_or_nan(e, "ema_loss"),
                      num_or_nan(e, "ema_top1"), num_or_nan(e, "ema_top5"), num_or_nan(e, "lr"),
                      num_or_nan(e, "img_s"), num_or_nan(e, "seconds"), (int)json_num(e, "crop", 0)};
    run_state_add_epoch(s, &r);
  }
  json_free(j);
  return 0;
}

/* step-level series from metrics.jsonl ("type":"step" lines) */
typedef struct {
  double *step, *loss, *lr, *img_s;
  int n, cap;
} step_series;

static void read_steps(const char *path, step_series *ss) {
  memset(ss, 0, sizeof *ss);
  size_t len;
  char *text = file_read_all(path, &len, NULL, 0);
  if (!text) return;
  for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
    json *j = json_parse(line, strlen(line), NULL, 0);
    if (!j) continue;
    const char *type = json_str(j, "type", "");
    if (!strcmp(type, "step")) {
      if (ss->n == ss->cap) {
        ss->cap = ss->cap ? 2 * ss->cap : 256;
        ss->step = xrealloc(ss->step, (size_t)ss->cap * sizeof(double), "plot data");
        ss->loss = xrealloc(ss->loss, (size_t)ss->cap * sizeof(double), "plot data");
        ss->lr = xrealloc(ss->lr, (size_t)ss->cap * sizeof(double), "plot data");
        ss->img_s = xrealloc(ss->img_s, (size_t)ss->cap * sizeof(double), "plot data");
      }
      ss->step[ss->n] = json_num(j, "step", 0);
      ss->loss[ss->n] = num_or_nan(j, "loss");
      ss->lr[ss->n] = num_or_nan(j, "lr");
      ss->img_s[ss->n] = num_or_nan(j, "img_s");
      ss->n++;
    }
    json_free(j);
  }
  free(text);
}

void run_state_write_reports(const run_state *s, const char *run_dir, const char *title) {
  char path[4096], err[512];
  if (s->n_hist > 0) {
    const epoch_record *r = &s->hist[s->n_hist - 1];
    report_epoch e = {r->epoch, r->train_loss, r->eval_loss, r->top1, r->top5, r->lr};
    snprintf(path, sizeof path, "%s/summary.csv", run_dir);
    if (report_summary_update(path, &e, err, sizeof err) != 0) warn("%s", err);
  }
  step_series ss;
  snprintf(path, sizeof path, "%s/metrics.jsonl", run_dir);
  read_steps(path, &ss);
  int ne = s->n_hist;
  double *ex = xmalloc((size_t)(ne + 1) * sizeof(double) * 6, "plot data");
  double *top1 = ex + ne + 1, *top5 = top1 + ne + 1, *etop1 = top5 + ne + 1, *eloss = etop1 + ne + 1,
         *tloss = eloss + ne + 1;
  for (int i = 0; i < ne; i++) {
    ex[i] = s->hist[i].epoch + 1;
    top1[i] = s->hist[i].top1;
    top5[i] = s->hist[i].top5;
    etop1[i] = s->hist[i].ema_top1;
    eloss[i] = s->hist[i].eval_loss;
    tloss[i] = s->hist[i].train_loss;
  }
  report_series series[] = {
      {"loss per step", "train loss", ss.step, ss.loss, ss.n},
      {"loss per epoch", "train loss (epoch mean)", ex, tloss, ne},
      {"loss per epoch", "val loss", ex, eloss, ne},
      {"val accuracy (%) per epoch", "top-1", ex, top1, ne},
      {"val accuracy (%) per epoch", "top-5", ex, top5, ne},
      {"val accuracy (%) per epoch", "EMA top-1", ex, etop1, ne},
      {"learning rate per step", "lr", ss.step, ss.lr, ss.n},
      {"throughput (img/s) per step", "img/s", ss.step, ss.img_s, ss.n},
  };
  snprintf(path, sizeof path, "%s/plot.html", run_dir);
  if (report_plot_write(path, title, series, (int)ARRAY_LEN(series), err, sizeof err) != 0) warn("%s", err);
  free(ex);
  free(ss.step), free(ss.loss), free(ss.lr), free(ss.img_s);
}
