/* train.c: the training loop — set-up, resume, steps with gradient
 * accumulation, loss scaling and NaN handling, logging, evaluation,
 * checkpoints, signals. Everything that decides the result (weights, data
 * order, augmentation, schedule) is a function of the configuration and the
 * step, so a run resumed from a checkpoint continues exactly. */
#include "train.h"

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../cli/device.h"
#include "../core/util.h"
#include "../cuda/cuda_backend.h"
#include "../data/loader.h"
#include "../io/weights.h"
#include "../model/exec.h"
#include "../model/graph.h"
#include "checkpoint.h"
#include "evaluate.h"
#include "log.h"
#include "report.h"
#include "run_state.h"
#include "tb.h"

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) {
  if (stop_signal && sig == SIGINT) _exit(130); /* second Ctrl-C: now */
  stop_signal = sig;
}

typedef struct {
  train_config cfg;
  device_config dc;
  backend *be;
  loader *tl, *vl;
  net net;
  model m;
  float *ema_p, *ema_r;   /* backend: EMA of params / running stats (NULL: off) */
  float *run_backup;      /* backend: running stats before a step (restored on NaN) */
  run_state st;
  tb_writer *tb;
  uint8_t *img;           /* host (pinned) batch staging */
  int32_t *lab;
  ckpt_tensors host;      /* host copies for checkpoints */
  char *classes_json;
  char *config_json;
  const char *dir;
  char cache_path[PATH_MAX];
  int crop;
  int64_t steps_per_epoch;
  double session_start, last_ckpt;
  char best_ckpt[64];
  const char *nan_at;     /* RN50_TEST_NAN_AT: steps whose loss is treated as NaN (tests) */
  FILE *dump;             /* RN50_DUMP_BATCHES: every micro-batch and lr appended (tests) */
  /* issue 6 (--graph 1): steps as replayed graphs; the next batch is loaded
   * into img2 / lab2 and uploaded while a step runs, then the buffers swap */
  int graph_on;
  int batch_ready;        /* the next step's batch is already in img / lab */
  uint8_t *img2;
  int32_t *lab2;
} trainer;

static void free_trainer(trainer *t) {
  if (t->be) {
    if (t->ema_p) t->be->free(t->be, t->ema_p), t->be->free(t->be, t->ema_r);
    if (t->run_backup) t->be->free(t->be, t->run_backup);
    if (t->img2) t->be->sync(t->be); /* issue 6: a prefetched batch may still be uploading */
    if (t->img) t->be->free_host(t->be, t->img), t->be->free_host(t->be, t->lab);
    if (t->img2) t->be->free_host(t->be, t->img2), t->be->free_host(t->be, t->lab2); /* issue 6 */
    model_destroy(&t->m);
    t->be->destroy(t->be);
  }
  if (t->tl) loader_close(t->tl);
  if (t->dump) fclose(t->dump);
  if (t->vl) loader_close(t->vl);
  tb_close(t->tb);
  free(t->host.params), free(t->host.running), free(t->host.momentum), free(t->host.ema_params);
  free(t->host.ema_running), free(t->host.counts);
  free(t->classes_json), free(t->config_json);
  run_state_free(&t->st);
  log_close();
}

/* ---- set-up ---- */

static int open_loaders(trainer *t, char *err, size_t errlen) {
  const train_config *c = &t->cfg;
  loader_config lc = {0};
  lc.root = c->data;
  lc.train = 1;
  lc.batch = c->batch;
  lc.crop = config_train_res(c, 0);
  lc.workers = c->workers;
  lc.seed = c->seed;
  lc.world = 1;
  lc.drop_last = 1;
  t->tl = loader_open(&lc, err, errlen);
  if (!t->tl) return -1;
  if (loader_batches_per_epoch(t->tl) < c->accum) {
    snprintf(err, errlen, "%s: the train split has %lld images, fewer than one optimizer step (%d x %d)", c->data,
             (long long)loader_size(t->tl), c->batch, c->accum);
    return -1;
  }
  lc.train = 0;
  lc.crop = c->val_crop;
  lc.resize = c->val_resize;
  lc.drop_last = 0;
  char verr[512];
  t->vl = loader_open(&lc, verr, sizeof verr);
  if (!t->vl) log_line("no evaluation: %s", verr);
  else if (loader_classes(t->vl) != loader_classes(t->tl)) {
    snprintf(err, errlen, "%s: the val split has %d classes, the train split %d", c->data, loader_classes(t->vl),
             loader_classes(t->tl));
    return -1;
  }
  return 0;
}

static char *class_names_json(loader *l) {
  strbuf b;
  sb_init(&b);
  sb_putc(&b, '[');
  for (int i = 0; i < loader_classes(l); i++) {
    char item[512];
    const char *w = loader_class_wnid(l, i), *n = loader_class_name(l, i);
    if (strcmp(w, n)) snprintf(item, sizeof item, "%s %s", w, n);
    else snprintf(item, sizeof item, "%s", w);
    if (i) sb_putc(&b, ',');
    sb_json_str(&b, item);
  }
  sb_putc(&b, ']');
  return b.data;
}

/* Compare with RUN/config.json of an earlier session. */
static int check_config(trainer *t, char *err, size_t errlen) {
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/config.json", t->dir);
  if (!path_exists(path)) return 0;
  size_t len;
  char *text = file_read_all(path, &len, err, errlen);
  if (!text) return -1;
  json *j = json_parse(text, len, err, errlen);
  free(text);
  if (!j) return -1;
  train_config saved = t->cfg;
  config_from_json(&saved, j);
  json_free(j);
  if (strcmp(saved.arch, t->cfg.arch) && !t->cfg.force) {
    snprintf(err, errlen,
             "%s holds a %s run; this command asks for %s. Use another --out, or the same --arch to continue it",
             t->dir, saved.arch, t->cfg.arch);
    return -1;
  }
  strbuf d;
  sb_init(&d);
  int n = config_diff(&saved, &t->cfg, &d);
  if (n && !t->cfg.force) {
    snprintf(err, errlen,
             "%s was started with other settings; continuing it with these would change its result:\n%s"
             "Start a new run with another --out, drop these options, or add --force to continue anyway",
             t->dir, d.data);
    sb_free(&d);
    return -1;
  }
  if (n) log_line("--force: continuing with changed settings:\n%s", d.data);
  if (strcmp(saved.device, t->cfg.device) || strcmp(saved.precision, t->cfg.precision))
    log_line("continuing a %s %s run on %s %s", saved.device, saved.precision, t->cfg.device, t->cfg.precision);
  sb_free(&d);
  return 0;
}

static int max_train_res(const train_config *c) {
  int r = 0;
  for (int e = 0; e < c->epochs; e++) r = MAX(r, config_train_res(c, e));
  return r;
}

static void alloc_host(trainer *t) {
  const net *n = &t->net;
  t->host.params = xmalloc(n->n_params * sizeof(float), "checkpoint buffers");
  t->host.running = xmalloc((n->n_running ? n->n_running : 1) * sizeof(float), "checkpoint buffers");
  t->host.momentum = xmalloc(n->n_params * sizeof(float), "checkpoint buffers");
  t->host.counts = xcalloc(NET_MAX_OPS, sizeof(int64_t), "checkpoint buffers");
  if (t->cfg.ema_decay > 0) {
    t->host.ema_params = xmalloc(n->n_params * sizeof(float), "checkpoint buffers");
    t->host.ema_running = xmalloc((n->n_running ? n->n_running : 1) * sizeof(float), "checkpoint buffers");
  }
}

/* fresh start: init or --init-weights; resume: the newest checkpoint */
static int load_start(trainer *t, char *err, size_t errlen) {
  backend *be = t->be;
  const net *n = &t->net;
  char *state_json = NULL, *config_json = NULL, name[64];
  int found = ckpt_load_latest(t->dir, n, &t->host, &state_json, &config_json, name, err, errlen);
  if (found < 0) return -1;
  if (found == 1) {
    if (run_state_from_json(&t->st, state_json, err, errlen) != 0) return -1;
    model_set_state(&t->m, t->host.params, t->host.running, t->host.counts);
    be->to_device(be, t->m.momentum, t->host.momentum, n->n_params * sizeof(float));
    if (t->ema_p) {
      be->to_device(be, t->ema_p, t->host.ema_params, n->n_params * sizeof(float));
      be->to_device(be, t->ema_r, t->host.ema_running, n->n_running * sizeof(float));
    }
    be->sync(be);
    if (t->st.best_step >= 0) snprintf(t->best_ckpt, sizeof t->best_ckpt, "step-%09lld", (long long)t->st.best_step);
    log_line("resuming from %s/checkpoints/%s: epoch %lld, step %lld of %lld (%lld steps done)", t->dir, name,
             (long long)t->st.epoch + 1, (long long)t->st.step_in_epoch, (long long)t->steps_per_epoch,
             (long long)t->st.global_step);
    free(state_json);
    free(config_json);
    return 0;
  }
  if (t->cfg.init_weights[0]) {
    if (weights_load(n, t->cfg.init_weights, t->host.params, t->host.running, t->host.counts, err, errlen) != 0)
      return -1;
    model_set_state(&t->m, t->host.params, t->host.running, t->host.counts);
    log_line("starting from the weights in %s", t->cfg.init_weights);
  } else {
    model_init_params(&t->m, t->cfg.seed, t->cfg.zero_gamma);
  }
  if (t->ema_p) {
    be->copy(be, t->ema_p, t->m.params, n->n_params * sizeof(float));
    be->copy(be, t->ema_r, t->m.running, n->n_running * sizeof(float));
  }
  if (t->cfg.precision[0] && !strcmp(t->cfg.precision, "fp16")) t->st.loss_scale = 65536;
  return 0;
}

/* ---- checkpoints and reports ---- */

static int save_checkpoint(trainer *t, const char *why) {
  backend *be = t->be;
  const net *n = &t->net;
  char err[1024], name[64];
  double t0 = now_sec();
  model_get_state(&t->m, t->host.params, t->host.running, t->host.counts);
  be->to_host(be, t->host.momentum, t->m.momentum, n->n_params * sizeof(float));
  if (t->ema_p) {
    be->to_host(be, t->host.ema_params, t->ema_p, n->n_params * sizeof(float));
    be->to_host(be, t->host.ema_running, t->ema_r, n->n_running * sizeof(float));
  }
  t->st.elapsed += now_sec() - t->session_start;
  t->session_start = now_sec();
  char *state_json = run_state_to_json(&t->st);
  int rc = ckpt_save(t->dir, n, &t->host, t->st.global_step, state_json, t->config_json, t->classes_json,
                     t->cfg.keep, t->best_ckpt[0] ? t->best_ckpt : NULL, name, err, sizeof err);
  free(state_json);
  t->last_ckpt = now_sec();
  if (t->cache_path[0]) cuda_conv_cache_save(t->be, t->cache_path); /* shapes seen so far */
  if (rc != 0) {
    log_line("checkpoint failed: %s", err);
    return -1;
  }
  log_line("checkpoint %s/checkpoints/%s (%s, %.1f s)", t->dir, name, why, now_sec() - t0);
  return 0;
}

static void save_model_file(trainer *t, const char *file, const char *what) {
  char path[PATH_MAX + 64], err[1024], top1[32];
  snprintf(path, sizeof path, "%s/%s", t->dir, file);
  snprintf(top1, sizeof top1, "%.4f", t->st.best_top1);
  const char *meta[] = {"rn50.classes_json", t->classes_json, "rn50.val_top1", top1, NULL};
  model_get_state(&t->m, t->host.params, t->host.running, t->host.counts);
  if (weights_save(&t->net, t->host.params, t->host.running, t->host.counts, path, meta, err, sizeof err) != 0)
    log_line("could not write the %s: %s", what, err);
}

/* a number for JSON: non-finite values become null */
static const char *jnum(char *buf, double v) {
  if (isfinite(v)) snprintf(buf, 32, "%.9g", v);
  else snprintf(buf, 32, "null");
  return buf;
}

static void metrics_line(trainer *t, const char *fmt, ...) {
  char buf[2048], path[PATH_MAX + 32];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  snprintf(path, sizeof path, "%s/metrics.jsonl", t->dir);
  if (report_jsonl_append(path, buf) != 0) warn("%s: could not append", path);
}

/* ---- the loop ---- */

static int set_crop(trainer *t, int crop) {
  if (crop == t->crop) return 0;
  char err[512];
  if (model_set_image_size(&t->m, crop, err, sizeof err) != 0) {
    log_line("%s", err);
    return -1;
  }
  if (t->crop) log_line("progressive resizing: train crop %d -> %d px", t->crop, crop);
  t->crop = crop;
  loader_set_crop(t->tl, crop);
  return 0;
}

static void run_eval(trainer *t, epoch_record *r) {
  r->eval_loss = r->top1 = r->top5 = r->ema_loss = r->ema_top1 = r->ema_top5 = NAN;
  if (!t->vl) return;
  char err[512];
  if (model_set_image_size(&t->m, t->cfg.val_crop, err, sizeof err) != 0) {
    log_line("evaluation skipped: %s", err);
    return;
  }
  eval_result er;
  evaluate(&t->m, t->vl, &er);
  r->eval_loss = er.loss, r->top1 = er.top1, r->top5 = er.top5;
  log_line("epoch %d/%d val: loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (%ld images, %.1f s)", r->epoch + 1,
           t->cfg.epochs, er.loss, er.top1, er.top5, er.images, er.seconds);
  if (t->ema_p) {
    model_swap_weights(&t->m, &t->ema_p, &t->ema_r);
    evaluate(&t->m, t->vl, &er);
    model_swap_weights(&t->m, &t->ema_p, &t->ema_r);
    r->ema_loss = er.loss, r->ema_top1 = er.top1, r->ema_top5 = er.top5;
    log_line("epoch %d/%d val (EMA weights): loss %.4f  top-1 %.2f%%  top-5 %.2f%%", r->epoch + 1, t->cfg.epochs,
             er.loss, er.top1, er.top5);
  }
  model_set_image_size(&t->m, t->crop, err, sizeof err);
}

static int test_nan(trainer *t) {
  if (!t->nan_at) return 0;
  char buf[512];
  snprintf(buf, sizeof buf, ",%s,", t->nan_at);
  char key[32];
  snprintf(key, sizeof key, ",%lld,", (long long)t->st.global_step);
  return strstr(buf, key) != NULL;
}

/* Test hook: appends (step, lr, n, crop, images, labels) for a reference
 * implementation to train on exactly the same batches. */
static void dump_batch(trainer *t, double lr, int n) {
  int64_t step = t->st.global_step;
  int32_t hdr[2] = {n, t->crop};
  fwrite(&step, sizeof step, 1, t->dump);
  fwrite(&lr, sizeof lr, 1, t->dump);
  fwrite(hdr, sizeof hdr, 1, t->dump);
  fwrite(t->img, 1, (size_t)n * t->crop * t->crop * 3, t->dump);
  fwrite(t->lab, sizeof(int32_t), (size_t)n, t->dump);
  fflush(t->dump);
}

/* issue 6 (--graph 1): train_step as one graph launch (src/model/graph.h).
 * The same step as the eager one below with accum 1, skip decisions
 * included (taken on the device; running statistics and BN counters are
 * restored there); while it runs the next batch of the epoch is loaded and
 * uploaded. Returns 0 with *loss set, or -1 when the graph step is not
 * available: then nothing ran, graph steps are off, and the batch waits in
 * t->img for the eager step. */
static int train_step_graph(trainer *t, double lr, double *data_wait, int *overflow, double *loss) {
  const train_config *c = &t->cfg;
  int fp16 = t->dc.cuda && t->dc.precision == DTYPE_F16;
  if (!t->batch_ready) {
    double w0 = loader_wait_seconds(t->tl);
    int got = loader_next(t->tl, t->img, t->lab);
    *data_wait += loader_wait_seconds(t->tl) - w0;
    if (got != c->batch) die("internal: the train loader returned %d images, expected %d", got, c->batch);
    model_graph_set_input(&t->m, t->img, t->lab, got);
    t->batch_ready = 1;
  }
  model_step_config sc;
  memset(&sc, 0, sizeof sc);
  sc.sgd = (sgd_config){(float)lr, (float)c->momentum, (float)c->wd, c->wd_bn, c->nesterov};
  sc.smoothing = (float)c->smoothing;
  sc.loss_scale = t->st.loss_scale;
  sc.check_grads = fp16;
  sc.force_skip = test_nan(t);
  sc.ema_params = t->ema_p;
  sc.ema_running = t->ema_r;
  sc.ema_decay = (float)c->ema_decay;
  if (model_graph_step(&t->m, c->batch, &sc) != 0) {
    log_line("graph step off (%s): eager steps from here", model_graph_status(&t->m));
    t->graph_on = 0;
    return -1;
  }
  t->batch_ready = 0;
  if (t->dump) dump_batch(t, lr, c->batch);
  if (t->st.step_in_epoch + 1 < t->steps_per_epoch) { /* the next batch, while this step runs */
    double w0 = loader_wait_seconds(t->tl);
    int got = loader_next(t->tl, t->img2, t->lab2);
    *data_wait += loader_wait_seconds(t->tl) - w0;
    if (got != c->batch) die("internal: the train loader returned %d images, expected %d", got, c->batch);
    model_graph_set_input(&t->m, t->img2, t->lab2, got);
    uint8_t *ti = t->img;
    int32_t *tl = t->lab;
    t->img = t->img2, t->lab = t->lab2;
    t->img2 = ti, t->lab2 = tl; /* (this step's batch: rewritten only after its result) */
    t->batch_ready = 1;
  }
  int skipped = 0;
  if (model_graph_result(&t->m, loss, &skipped) != 0) die("internal: no graph step to wait for");
  if (sc.force_skip) *loss = NAN;
  *overflow = 0;
  if (!isfinite(*loss)) return 0;
  if (skipped) { /* finite loss, gradients not: fp16 overflow */
    t->st.loss_scale /= 2;
    t->st.good_steps = 0;
    *overflow = 1;
    log_line("fp16 gradient overflow at step %lld: step skipped, loss scale now %g", (long long)t->st.global_step,
             t->st.loss_scale);
    return 0;
  }
  if (fp16 && ++t->st.good_steps >= 2000) {
    t->st.loss_scale *= 2;
    t->st.good_steps = 0;
  }
  return 0;
}

/* One optimizer step (accum micro-batches). Returns the mean loss; the step
 * is not applied when the loss is not finite, or (fp16) when the gradients
 * overflowed, which sets *overflow. */
static double train_step(trainer *t, double lr, double *data_wait, int *overflow) {
  backend *be = t->be;
  const train_config *c = &t->cfg;
  int fp16 = t->dc.cuda && t->dc.precision == DTYPE_F16;
  if (t->graph_on) { /* issue 6 */
    double loss;
    if (train_step_graph(t, lr, data_wait, overflow, &loss) == 0) return loss;
  }
  be->copy(be, t->run_backup, t->m.running, t->net.n_running * sizeof(float));
  int64_t counts[NET_MAX_OPS];
  memcpy(counts, t->m.counts, sizeof counts);
  double loss = 0;
  for (int k = 0; k < c->accum; k++) {
    double w0 = loader_wait_seconds(t->tl);
    int got = c->batch;
    if (k == 0 && t->batch_ready) t->batch_ready = 0; /* issue 6: loaded for a graph step that fell back */
    else got = loader_next(t->tl, t->img, t->lab);
    *data_wait += loader_wait_seconds(t->tl) - w0;
    if (got != c->batch) die("internal: the train loader returned %d images, expected %d", got, c->batch);
    if (t->dump) dump_batch(t, lr, got);
    model_set_input(&t->m, t->img, t->lab, got);
    model_forward(&t->m, got, 1);
    model_loss(&t->m, got, (float)c->smoothing, 1, (float)(t->st.loss_scale / ((double)got * c->accum)));
    model_backward(&t->m, got);
    loss += model_loss_mean(&t->m, got) / c->accum;
  }
  if (test_nan(t)) loss = NAN;
  int bad_grads = 0;
  *overflow = 0;
  if (isfinite(loss) && fp16) bad_grads = be->nonfinite(be, t->m.grads, t->net.n_params);
  if (!isfinite(loss) || bad_grads) {
    /* not applied: gradients dropped, BN running statistics restored */
    model_zero_grads(&t->m);
    be->copy(be, t->m.running, t->run_backup, t->net.n_running * sizeof(float));
    memcpy(t->m.counts, counts, sizeof counts);
    if (bad_grads) {
      t->st.loss_scale /= 2;
      t->st.good_steps = 0;
      *overflow = 1;
      log_line("fp16 gradient overflow at step %lld: step skipped, loss scale now %g", (long long)t->st.global_step,
               t->st.loss_scale);
    }
    return loss;
  }
  sgd_config sc = {(float)lr, (float)c->momentum, (float)c->wd, c->wd_bn, c->nesterov};
  model_sgd_step(&t->m, &sc, (float)(1.0 / t->st.loss_scale));
  if (fp16 && ++t->st.good_steps >= 2000) {
    t->st.loss_scale *= 2;
    t->st.good_steps = 0;
  }
  if (t->ema_p) {
    be->ema_update(be, t->ema_p, t->m.params, t->net.n_params, (float)c->ema_decay);
    be->ema_update(be, t->ema_r, t->m.running, t->net.n_running, (float)c->ema_decay);
  }
  return loss;
}

static void end_epoch(trainer *t, int epoch, double lr, double img_s, double seconds) {
  epoch_record r;
  memset(&r, 0, sizeof r);
  r.epoch = epoch;
  r.crop = t->crop;
  r.lr = lr;
  r.img_s = img_s;
  r.seconds = seconds;
  r.train_loss = t->st.epoch_loss_count ? t->st.epoch_loss_sum / t->st.epoch_loss_count : NAN;
  int last = epoch + 1 == t->cfg.epochs;
  if ((epoch + 1) % t->cfg.eval_every == 0 || last) run_eval(t, &r);
  else r.eval_loss = r.top1 = r.top5 = r.ema_loss = r.ema_top1 = r.ema_top5 = NAN;
  run_state_add_epoch(&t->st, &r);
  int64_t gs = t->st.global_step;
  char tl[32], el[32], t1[32], t5[32], e1[32];
  metrics_line(t,
               "{\"type\": \"epoch\", \"step\": %lld, \"epoch\": %d, \"train_loss\": %s, \"eval_loss\": %s, "
               "\"top1\": %s, \"top5\": %s, \"ema_top1\": %s, \"lr\": %.6g, \"img_s\": %.2f, \"crop\": %d}",
               (long long)gs, epoch, jnum(tl, r.train_loss), jnum(el, r.eval_loss), jnum(t1, r.top1), jnum(t5, r.top5),
               jnum(e1, r.ema_top1), lr, img_s, t->crop);
  tb_scalar(t->tb, "train/epoch_loss", r.train_loss, gs);
  if (isfinite(r.top1)) {
    tb_scalar(t->tb, "val/loss", r.eval_loss, gs);
    tb_scalar(t->tb, "val/top1", r.top1, gs);
    tb_scalar(t->tb, "val/top5", r.top5, gs);
  }
  if (isfinite(r.ema_top1)) {
    tb_scalar(t->tb, "val_ema/top1", r.ema_top1, gs);
    tb_scalar(t->tb, "val_ema/top5", r.ema_top5, gs);
  }
  tb_flush(t->tb);
  /* next epoch starts at step 0 */
  t->st.epoch = epoch + 1;
  t->st.step_in_epoch = 0;
  t->st.epoch_loss_sum = 0;
  t->st.epoch_loss_count = 0;
  double best = fmax(r.top1, isfinite(r.ema_top1) ? r.ema_top1 : -1);
  int new_best = isfinite(best) && best > t->st.best_top1;
  if (new_best) {
    t->st.best_top1 = best;
    t->st.best_epoch = epoch;
    t->st.best_step = gs;
  }
  char title[256];
  snprintf(title, sizeof title, "rn50 %s: %s", t->net.arch_name, t->dir);
  run_state_write_reports(&t->st, t->dir, title);
  if (new_best) snprintf(t->best_ckpt, sizeof t->best_ckpt, "step-%09lld", (long long)gs);
  if (save_checkpoint(t, "end of epoch") == 0 && new_best) save_model_file(t, "model_best.safetensors", "best model");
}

static int loop(trainer *t) {
  const train_config *c = &t->cfg;
  int64_t spe = t->steps_per_epoch;
  double interval_t0 = now_sec(), interval_wait = 0, interval_loss = 0;
  int interval_steps = 0, interval_finite = 0;
  double epoch_t0 = now_sec();
  int64_t epoch_images = 0;
  int first_step = 1;
  while (t->st.epoch < c->epochs) {
    int epoch = (int)t->st.epoch;
    if (set_crop(t, config_train_res(c, epoch)) != 0) return TRAIN_ERROR;
    if (t->st.step_in_epoch == 0) log_line("epoch %d/%d: %lld steps of %d x %d images at %d px", epoch + 1, c->epochs,
                                           (long long)spe, c->batch, c->accum, t->crop);
    loader_start(t->tl, epoch, t->st.step_in_epoch * c->accum);
    double lr = 0;
    while (t->st.step_in_epoch < spe) {
      lr = config_lr_at(c, epoch + (double)t->st.step_in_epoch / spe);
      double wait = 0;
      int overflow;
      double loss = train_step(t, lr, &wait, &overflow);
      interval_wait += wait;
      if (first_step && t->cache_path[0]) cuda_conv_cache_save(t->be, t->cache_path);
      first_step = 0;
      int64_t step = t->st.global_step;
      t->st.global_step++;
      t->st.step_in_epoch++;
      epoch_images += (int64_t)c->batch * c->accum;
      interval_steps++;
      if (overflow) {
        t->st.skipped++;
      } else if (isfinite(loss)) {
        t->st.nan_streak = 0;
        t->st.epoch_loss_sum += loss;
        t->st.epoch_loss_count++;
        interval_loss += loss;
        interval_finite++;
      } else {
        t->st.nan_streak++;
        t->st.skipped++;
        log_line("non-finite loss at step %lld (epoch %d): step not applied (%lld in a row, limit %d)",
                 (long long)step, epoch + 1, (long long)t->st.nan_streak, c->nan_limit);
        if (t->st.nan_streak >= c->nan_limit) {
          log_line("stopping: %lld non-finite losses in a row. The weights diverged (try a lower --lr or more "
                   "--warmup-epochs); the last checkpoint in %s/checkpoints is from before the divergence",
                   (long long)t->st.nan_streak, t->dir);
          return TRAIN_DIVERGED;
        }
      }
      double now = now_sec();
      int log_now = interval_steps >= c->log_every || t->st.step_in_epoch == spe;
      char text[256];
      double dt = now - interval_t0;
      double img_s = dt > 0 ? (double)interval_steps * c->batch * c->accum / dt : 0;
      int64_t left = (int64_t)c->epochs * spe - t->st.global_step;
      char eta[32];
      log_fmt_duration(eta, sizeof eta, interval_steps ? left * dt / interval_steps : 0);
      snprintf(text, sizeof text, "epoch %d/%d step %lld/%lld loss %.4f lr %.4g %.1f img/s eta %s", epoch + 1,
               c->epochs, (long long)t->st.step_in_epoch, (long long)spe, isfinite(loss) ? loss : NAN, lr, img_s,
               eta);
      log_progress(t->st.step_in_epoch, spe, text);
      if (log_now && interval_steps) {
        double mean = interval_finite ? interval_loss / interval_finite : NAN;
        double share = dt > 0 ? 100.0 * interval_wait / dt : 0;
        log_line("epoch %d/%d step %lld/%lld loss %.4f lr %.5g %.1f img/s data %.0f%% eta %s", epoch + 1, c->epochs,
                 (long long)t->st.step_in_epoch, (long long)spe, mean, lr, img_s, share, eta);
        metrics_line(t,
                     "{\"type\": \"step\", \"step\": %lld, \"epoch\": %.6f, \"loss\": %s, \"lr\": %.9g, "
                     "\"img_s\": %.2f, \"data_wait\": %.4f, \"crop\": %d}",
                     (long long)t->st.global_step, epoch + (double)t->st.step_in_epoch / spe, jnum(text, mean), lr,
                     img_s, share / 100, t->crop);
        tb_scalar(t->tb, "train/loss", mean, t->st.global_step);
        tb_scalar(t->tb, "train/lr", lr, t->st.global_step);
        tb_scalar(t->tb, "train/img_per_s", img_s, t->st.global_step);
        tb_scalar(t->tb, "train/data_wait", share / 100, t->st.global_step);
        interval_t0 = now;
        interval_wait = interval_loss = 0;
        interval_steps = interval_finite = 0;
      }
      if (t->st.step_in_epoch == spe) break; /* the epoch's end writes the checkpoint */
      int limit = c->max_steps && t->st.global_step >= c->max_steps;
      if (stop_signal || limit) {
        if (stop_signal) log_line("%s received: writing a checkpoint and stopping", stop_signal == SIGTERM ? "SIGTERM" : "SIGINT");
        save_checkpoint(t, stop_signal ? "signal" : "--max-steps");
        return TRAIN_OK;
      }
      if (c->ckpt_minutes > 0 && now - t->last_ckpt >= c->ckpt_minutes * 60) save_checkpoint(t, "timer");
      else if (c->ckpt_steps > 0 && t->st.global_step % c->ckpt_steps == 0) save_checkpoint(t, "--ckpt-steps");
    }
    double secs = now_sec() - epoch_t0;
    end_epoch(t, epoch, lr, secs > 0 ? epoch_images / secs : 0, secs);
    epoch_t0 = now_sec();
    epoch_images = 0;
    if (stop_signal || (c->max_steps && t->st.global_step >= c->max_steps)) return TRAIN_OK;
  }
  return TRAIN_OK;
}

int train_main(train_config *cfg) {
  static trainer t; /* large; one per process */
  memset(&t, 0, sizeof t);
  t.cfg = *cfg;
  t.dir = t.cfg.out;
  t.nan_at = getenv("RN50_TEST_NAN_AT");
  const char *dump = getenv("RN50_DUMP_BATCHES");
  if (dump && !(t.dump = fopen(dump, "ab"))) die("%s: cannot open for appending", dump);
  run_state_init(&t.st);
  char err[2048];
  int rc = TRAIN_ERROR;
  if (mkdir_p(t.dir, err, sizeof err) != 0 || log_open(t.dir, err, sizeof err) != 0) {
    fprintf(stderr, "rn50 train: %s\n", err);
    return TRAIN_ERROR;
  }
  if (open_loaders(&t, err, sizeof err) != 0) goto fail;
  int data_classes = loader_classes(t.tl);
  if (t.cfg.classes && t.cfg.classes != data_classes) {
    snprintf(err, sizeof err, "--classes %d, but %s has %d classes", t.cfg.classes, t.cfg.data, data_classes);
    goto fail;
  }
  t.cfg.classes = data_classes;
  if (check_config(&t, err, sizeof err) != 0) goto fail;
  strbuf cj;
  sb_init(&cj);
  config_to_json(&t.cfg, &cj);
  t.config_json = cj.data;
  char path[PATH_MAX + 32];
  snprintf(path, sizeof path, "%s/config.json", t.dir);
  if (file_write_atomic(path, cj.data, cj.len, err, sizeof err) != 0) goto fail;
  t.classes_json = class_names_json(t.tl);
  if (device_config_parse(&t.dc, t.cfg.device, t.cfg.precision, t.cfg.tf32, t.cfg.threads, err, sizeof err) != 0)
    goto fail;
  t.be = device_open(&t.dc);
  arch_id arch;
  if (arch_from_name(t.cfg.arch, &arch) != 0) {
    snprintf(err, sizeof err, "unknown --arch '%s'", t.cfg.arch);
    goto fail;
  }
  int max_res = MAX(max_train_res(&t.cfg), t.cfg.val_crop);
  if (net_build(&t.net, arch, t.cfg.classes, max_res, t.be->in_c, err, sizeof err) != 0) goto fail;
  if (t.dc.cuda) {
    snprintf(t.cache_path, sizeof t.cache_path, "%s/conv_cache.txt", t.dir);
    cuda_conv_cache_load(t.be, t.cache_path);
  }
  model_create(&t.m, t.be, &t.net, t.cfg.batch, 1);
  t.crop = 0;
  alloc_host(&t);
  if (t.cfg.ema_decay > 0) {
    t.ema_p = t.be->alloc(t.be, t.net.n_params * sizeof(float), "EMA weights");
    t.ema_r = t.be->alloc(t.be, (t.net.n_running ? t.net.n_running : 1) * sizeof(float), "EMA running stats");
  }
  t.run_backup = t.be->alloc(t.be, (t.net.n_running ? t.net.n_running : 1) * sizeof(float), "BN backup");
  t.steps_per_epoch = loader_batches_per_epoch(t.tl) / t.cfg.accum;
  if (load_start(&t, err, sizeof err) != 0) goto fail;
  size_t img_bytes = (size_t)t.cfg.batch * max_res * max_res * 3;
  t.img = t.be->alloc_host(t.be, img_bytes, "batch staging");
  t.lab = t.be->alloc_host(t.be, (size_t)t.cfg.batch * sizeof(int32_t), "batch staging");
  if (t.cfg.graph) { /* issue 6: --graph 1 */
    char why[320];
    if (t.cfg.accum != 1) log_line("--graph 1: needs --accum-steps 1; eager steps");
    else if (model_graph_available(&t.m, why, sizeof why) != 0) log_line("--graph 1: %s; eager steps", why);
    else {
      t.graph_on = 1;
      t.img2 = t.be->alloc_host(t.be, img_bytes, "batch staging");
      t.lab2 = t.be->alloc_host(t.be, (size_t)t.cfg.batch * sizeof(int32_t), "batch staging");
      log_line("--graph 1: each training step is captured once as a graph and replayed");
    }
  }
  snprintf(path, sizeof path, "%s/metrics.jsonl", t.dir);
  if (report_jsonl_rewind(path, "step", (double)t.st.global_step, err, sizeof err) != 0) log_line("%s", err);
  snprintf(path, sizeof path, "%s/tb", t.dir);
  t.tb = tb_open(path, err, sizeof err);
  if (!t.tb) log_line("no TensorBoard events: %s", err);
  else if (t.st.global_step > 0) tb_session_start(t.tb, t.st.global_step);
  log_line("rn50 %s: %s, %d classes, %lld train images (%s), %s; %s; batch %d x %d, lr %.4g, %d epochs", RN50_VERSION,
           t.net.arch_name, t.cfg.classes, (long long)loader_size(t.tl), loader_layout(t.tl),
           t.vl ? "with val" : "no val", t.dc.label, t.cfg.batch, t.cfg.accum, t.cfg.lr, t.cfg.epochs);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
  t.session_start = t.last_ckpt = now_sec();
  rc = loop(&t);
  if (t.cfg.graph) { /* issue 6 */
    model_graph_stats gs;
    model_graph_get_stats(&t.m, &gs);
    log_line("graph steps: %d uncaptured (first of a shape), %d captured, %d replays; %d fell back to eager",
             gs.warmups, gs.captures, gs.replays, gs.fallbacks);
  }
  if (rc == TRAIN_OK && t.st.epoch >= t.cfg.epochs) {
    save_model_file(&t, "model.safetensors", "final model");
    const epoch_record *last = t.st.n_hist ? &t.st.hist[t.st.n_hist - 1] : NULL;
    log_line("done: %d epochs, val top-1 %.2f%% (best %.2f%% at epoch %d). Model: %s/model.safetensors (best: "
             "model_best.safetensors); log: train.log; curves: plot.html, tb/; checkpoints: checkpoints/",
             t.cfg.epochs, last ? last->top1 : NAN, t.st.best_top1, t.st.best_epoch + 1, t.dir);
  } else if (rc == TRAIN_OK) {
    log_line("stopped at step %lld; run the same command again to continue", (long long)t.st.global_step);
  }
  free_trainer(&t);
  return rc;
fail:
  log_line("error: %s", err);
  fprintf(stderr, "rn50 train: %s\n", err);
  free_trainer(&t);
  return TRAIN_ERROR;
}
