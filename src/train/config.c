/* config.c: recipes, option parsing, config.json and the resume check. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

const char config_recipes_help[] =
    "  fast     FFCV-like: 16 epochs, progressive resizing 160->192 px (epochs 11-13 of 16, scaled),\n"
    "           one-cycle (triangular) LR peaking at epoch 2, lr 0.425 per 256 images, label\n"
    "           smoothing 0.1, weight decay 5e-5 not on BN/biases, val 256->224 (the default)\n"
    "  classic  torchvision's reference: 90 epochs, batch 256, lr 0.1 per 256 divided by 10 at\n"
    "           epochs 30 and 60, weight decay 1e-4 on everything, 224 px, val 256->224\n";

static double recipe_defaults(train_config *c, const char *recipe) {
  memset(c, 0, sizeof *c);
  snprintf(c->recipe, sizeof c->recipe, "%s", recipe);
  snprintf(c->arch, sizeof c->arch, "resnet50");
  snprintf(c->device, sizeof c->device, "cpu");
  c->batch = 256;
  c->accum = 1;
  c->momentum = 0.9;
  c->nesterov = 0;
  c->warmup_start = 0.0;
  c->gamma = 0.1;
  c->val_resize = 256;
  c->val_crop = 224;
  c->seed = 0;
  c->tf32 = 1;
  c->log_every = 50;
  c->ckpt_minutes = 10;
  c->keep = 3;
  c->nan_limit = 5;
  c->eval_every = 1;
  if (!strcmp(recipe, "classic")) {
    c->epochs = 90;
    c->wd = 1e-4;
    c->wd_bn = 1;
    c->smoothing = 0;
    c->sched = SCHED_STEP;
    c->milestones[0] = 30;
    c->milestones[1] = 60;
    c->n_milestones = 2;
    c->image_size = 224;
    return 0.1;
  }
  /* fast */
  c->epochs = 16;
  c->wd = 5e-5;
  c->wd_bn = 0;
  c->smoothing = 0.1;
  c->sched = SCHED_ONECYCLE;
  c->peak_epoch = 2;
  c->image_size = 192;
  c->min_res = 160;
  c->max_res = 192;
  return 0.425;
}

static void parse_milestones(args *a, train_config *c, const char *s) {
  c->n_milestones = 0;
  char buf[256];
  snprintf(buf, sizeof buf, "%s", s);
  for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
    long v;
    if (parse_int(tok, 1, 100000, &v) != 0 || c->n_milestones >= CFG_MAX_MILESTONES)
      args_fail(a, "--milestones takes up to %d comma-separated epochs (got '%s')", CFG_MAX_MILESTONES, s);
    c->milestones[c->n_milestones++] = (int)v;
  }
}

void config_from_args(train_config *c, args *a) {
  const char *recipe = args_str(a, "recipe", "fast");
  if (strcmp(recipe, "fast") && strcmp(recipe, "classic"))
    args_fail(a, "unknown --recipe '%s' (choose fast or classic)", recipe);
  double lr_per_256 = recipe_defaults(c, recipe);
  const char *s;
  if ((s = args_str(a, "data", NULL))) snprintf(c->data, sizeof c->data, "%s", s);
  if ((s = args_str(a, "out", NULL))) snprintf(c->out, sizeof c->out, "%s", s);
  if ((s = args_str(a, "arch", NULL))) snprintf(c->arch, sizeof c->arch, "%s", s);
  if ((s = args_str(a, "init-weights", NULL))) snprintf(c->init_weights, sizeof c->init_weights, "%s", s);
  if ((s = args_str(a, "device", NULL))) snprintf(c->device, sizeof c->device, "%s", s);
  c->classes = (int)args_int(a, "classes", 0, 1, 1000000);
  c->zero_gamma = args_flag(a, "zero-gamma");
  c->epochs = (int)args_int(a, "epochs", c->epochs, 1, 100000);
  c->batch = (int)args_int(a, "batch-size", c->batch, 1, 65536);
  c->accum = (int)args_int(a, "accum-steps", c->accum, 1, 4096);
  c->lr = args_double(a, "lr", lr_per_256 * c->batch * c->accum / 256.0, 0, 1000);
  c->momentum = args_double(a, "momentum", c->momentum, 0, 0.9999);
  c->wd = args_double(a, "wd", c->wd, 0, 1);
  c->wd_bn = (int)args_int(a, "wd-bn", c->wd_bn, 0, 1);
  if (args_flag(a, "no-bn-wd")) c->wd_bn = 0;
  c->nesterov = (int)args_int(a, "nesterov", c->nesterov, 0, 1);
  c->smoothing = args_double(a, "label-smoothing", c->smoothing, 0, 0.99);
  if ((s = args_str(a, "schedule", NULL))) {
    if (!strcmp(s, "cosine")) c->sched = SCHED_COSINE;
    else if (!strcmp(s, "step")) c->sched = SCHED_STEP;
    else if (!strcmp(s, "onecycle") || !strcmp(s, "triangular")) c->sched = SCHED_ONECYCLE;
    else args_fail(a, "unknown --schedule '%s' (cosine, step or onecycle)", s);
  }
  c->warmup_epochs = args_double(a, "warmup-epochs", c->warmup_epochs, 0, c->epochs);
  c->warmup_start = args_double(a, "warmup-start", c->warmup_start, 0, 1);
  if ((s = args_str(a, "milestones", NULL))) parse_milestones(a, c, s);
  c->gamma = args_double(a, "gamma", c->gamma, 0, 1);
  c->peak_epoch = args_double(a, "peak-epoch", c->peak_epoch, 0, c->epochs);
  c->ema_decay = args_double(a, "ema-decay", c->ema_decay, 0, 0.999999999);
  long size = args_int(a, "image-size", 0, 32, 4096);
  if (size) { /* a fixed size turns progressive resizing off */
    c->image_size = (int)size;
    c->min_res = c->max_res = 0;
  }
  c->min_res = (int)args_int(a, "min-res", c->min_res, 32, 4096);
  c->max_res = (int)args_int(a, "max-res", c->max_res, 32, 4096);
  if (c->min_res || c->max_res) {
    if (!c->min_res || !c->max_res || c->min_res > c->max_res)
      args_fail(a, "progressive resizing needs --min-res <= --max-res (got %d and %d)", c->min_res, c->max_res);
    if (!strcmp(recipe, "fast")) { /* FFCV's ramp: epochs 11..13 of 16, scaled */
      c->start_ramp = c->epochs * 11.0 / 16.0;
      c->end_ramp = c->epochs * 13.0 / 16.0;
    }
    c->start_ramp = args_double(a, "start-ramp", c->start_ramp, 0, c->epochs);
    c->end_ramp = args_double(a, "end-ramp", c->end_ramp, 0, c->epochs);
    if (c->end_ramp < c->start_ramp) args_fail(a, "--end-ramp must not be before --start-ramp");
    c->image_size = c->max_res;
  }
  c->val_resize = (int)args_int(a, "val-resize", c->val_resize, 32, 8192);
  c->val_crop = (int)args_int(a, "val-crop", c->val_crop, 32, 4096);
  if (c->val_crop > c->val_resize) args_fail(a, "--val-crop (%d) cannot exceed --val-resize (%d)", c->val_crop, c->val_resize);
  c->seed = (uint64_t)args_int(a, "seed", 0, 0, 0x7fffffffffffffffL);
  if ((s = args_str(a, "precision", NULL))) snprintf(c->precision, sizeof c->precision, "%s", s);
  c->tf32 = (int)args_int(a, "tf32", c->tf32, 0, 1);
  c->workers = (int)args_int(a, "workers", 0, 0, 1024);
  c->threads = (int)args_int(a, "threads", 0, 0, 4096);
  c->log_every = (int)args_int(a, "log-every", c->log_every, 1, 1000000);
  c->ckpt_minutes = args_double(a, "ckpt-minutes", c->ckpt_minutes, 0, 1e6);
  c->ckpt_steps = (int)args_int(a, "ckpt-steps", 0, 0, 2000000000);
  c->keep = (int)args_int(a, "keep", c->keep, 1, 1000);
  c->max_steps = (int)args_int(a, "max-steps", 0, 0, 2000000000);
  c->nan_limit = (int)args_int(a, "nan-limit", c->nan_limit, 1, 1000000);
  c->eval_every = (int)args_int(a, "eval-every", c->eval_every, 1, 100000);
  c->force = args_flag(a, "force");
  c->graph = (int)args_int(a, "graph", 0, 0, 1); /* issue 6 */
  if (!c->precision[0]) snprintf(c->precision, sizeof c->precision, "%s", strncmp(c->device, "cuda", 4) ? "fp32" : "bf16");
}

int config_train_res(const train_config *c, int epoch) {
  if (!c->min_res || !c->max_res || c->end_ramp <= 0) return c->image_size;
  if (epoch <= c->start_ramp) return c->min_res;
  if (epoch >= c->end_ramp) return c->max_res;
  double interp = c->min_res + (c->max_res - c->min_res) * (epoch - c->start_ramp) / (c->end_ramp - c->start_ramp);
  return (int)lround(interp / 32.0) * 32;
}

double config_lr_at(const train_config *c, double t) {
  double lr = c->lr;
  if (c->sched == SCHED_ONECYCLE) {
    double peak = c->peak_epoch;
    if (t <= peak) return peak > 0 ? lr * t / peak : lr;
    return c->epochs > peak ? lr * fmax(0.0, (c->epochs - t) / (c->epochs - peak)) : 0;
  }
  if (c->warmup_epochs > 0 && t < c->warmup_epochs)
    return lr * (c->warmup_start + (1 - c->warmup_start) * t / c->warmup_epochs);
  if (c->sched == SCHED_STEP) {
    int e = (int)floor(t + 1e-9);
    for (int i = 0; i < c->n_milestones; i++)
      if (e >= c->milestones[i]) lr *= c->gamma;
    return lr;
  }
  double span = c->epochs - c->warmup_epochs;
  double p = span > 0 ? (t - c->warmup_epochs) / span : 1;
  return lr * 0.5 * (1 + cos(M_PI * fmin(1.0, fmax(0.0, p))));
}

static const char *sched_name(sched_kind k) {
  return k == SCHED_STEP ? "step" : k == SCHED_ONECYCLE ? "onecycle" : "cosine";
}

void config_to_json(const train_config *c, strbuf *b) {
  sb_puts(b, "{\n  \"data\": ");
  sb_json_str(b, c->data);
  sb_puts(b, ",\n  \"out\": ");
  sb_json_str(b, c->out);
  sb_printf(b, ",\n  \"recipe\": \"%s\",\n  \"arch\": \"%s\",\n  \"classes\": %d,\n  \"zero_gamma\": %d,\n", c->recipe,
            c->arch, c->classes, c->zero_gamma);
  sb_puts(b, "  \"init_weights\": ");
  sb_json_str(b, c->init_weights);
  sb_printf(b, ",\n  \"epochs\": %d,\n  \"batch_size\": %d,\n  \"accum_steps\": %d,\n  \"lr\": %.17g,\n", c->epochs,
            c->batch, c->accum, c->lr);
  sb_printf(b, "  \"momentum\": %.17g,\n  \"wd\": %.17g,\n  \"wd_bn\": %d,\n  \"nesterov\": %d,\n", c->momentum, c->wd,
            c->wd_bn, c->nesterov);
  sb_printf(b, "  \"label_smoothing\": %.17g,\n  \"schedule\": \"%s\",\n  \"warmup_epochs\": %.17g,\n", c->smoothing,
            sched_name(c->sched), c->warmup_epochs);
  sb_printf(b, "  \"warmup_start\": %.17g,\n  \"milestones\": [", c->warmup_start);
  for (int i = 0; i < c->n_milestones; i++) sb_printf(b, "%s%d", i ? ", " : "", c->milestones[i]);
  sb_printf(b, "],\n  \"gamma\": %.17g,\n  \"peak_epoch\": %.17g,\n  \"ema_decay\": %.17g,\n", c->gamma, c->peak_epoch,
            c->ema_decay);
  sb_printf(b, "  \"image_size\": %d,\n  \"min_res\": %d,\n  \"max_res\": %d,\n  \"start_ramp\": %.17g,\n", c->image_size,
            c->min_res, c->max_res, c->start_ramp);
  sb_printf(b, "  \"end_ramp\": %.17g,\n  \"val_resize\": %d,\n  \"val_crop\": %d,\n  \"seed\": %llu,\n", c->end_ramp,
            c->val_resize, c->val_crop, (unsigned long long)c->seed);
  sb_printf(b, "  \"device\": \"%s\",\n  \"precision\": \"%s\",\n  \"tf32\": %d,\n  \"workers\": %d,\n", c->device,
            c->precision, c->tf32, c->workers);
  sb_printf(b, "  \"threads\": %d,\n  \"log_every\": %d,\n  \"ckpt_minutes\": %.17g,\n  \"ckpt_steps\": %d,\n",
            c->threads, c->log_every, c->ckpt_minutes, c->ckpt_steps);
  sb_printf(b, "  \"keep\": %d,\n  \"graph\": %d,\n", c->keep, c->graph);
  sb_printf(b, "  \"max_steps\": %d,\n  \"nan_limit\": %d,\n  \"eval_every\": %d\n}\n", c->max_steps, c->nan_limit,
            c->eval_every);
}

static void get_str(const json *j, const char *k, char *dst, size_t n) {
  const char *v = json_str(j, k, NULL);
  if (v) snprintf(dst, n, "%s", v);
}

void config_from_json(train_config *c, const json *j) {
  get_str(j, "data", c->data, sizeof c->data);
  get_str(j, "out", c->out, sizeof c->out);
  get_str(j, "recipe", c->recipe, sizeof c->recipe);
  get_str(j, "arch", c->arch, sizeof c->arch);
  get_str(j, "init_weights", c->init_weights, sizeof c->init_weights);
  get_str(j, "device", c->device, sizeof c->device);
  get_str(j, "precision", c->precision, sizeof c->precision);
  c->classes = (int)json_num(j, "classes", c->classes);
  c->zero_gamma = (int)json_num(j, "zero_gamma", c->zero_gamma);
  c->epochs = (int)json_num(j, "epochs", c->epochs);
  c->batch = (int)json_num(j, "batch_size", c->batch);
  c->accum = (int)json_num(j, "accum_steps", c->accum);
  c->lr = json_num(j, "lr", c->lr);
  c->momentum = json_num(j, "momentum", c->momentum);
  c->wd = json_num(j, "wd", c->wd);
  c->wd_bn = (int)json_num(j, "wd_bn", c->wd_bn);
  c->nesterov = (int)json_num(j, "nesterov", c->nesterov);
  c->smoothing = json_num(j, "label_smoothing", c->smoothing);
  const char *s = json_str(j, "schedule", NULL);
  if (s) c->sched = !strcmp(s, "step") ? SCHED_STEP : !strcmp(s, "onecycle") ? SCHED_ONECYCLE : SCHED_COSINE;
  c->warmup_epochs = json_num(j, "warmup_epochs", c->warmup_epochs);
  c->warmup_start = json_num(j, "warmup_start", c->warmup_start);
  const json *ms = json_get(j, "milestones");
  if (ms && ms->type == JSON_ARRAY) {
    c->n_milestones = 0;
    for (const json *e = ms->child; e && c->n_milestones < CFG_MAX_MILESTONES; e = e->next)
      c->milestones[c->n_milestones++] = (int)e->num;
  }
  c->gamma = json_num(j, "gamma", c->gamma);
  c->peak_epoch = json_num(j, "peak_epoch", c->peak_epoch);
  c->ema_decay = json_num(j, "ema_decay", c->ema_decay);
  c->image_size = (int)json_num(j, "image_size", c->image_size);
  c->min_res = (int)json_num(j, "min_res", c->min_res);
  c->max_res = (int)json_num(j, "max_res", c->max_res);
  c->start_ramp = json_num(j, "start_ramp", c->start_ramp);
  c->end_ramp = json_num(j, "end_ramp", c->end_ramp);
  c->val_resize = (int)json_num(j, "val_resize", c->val_resize);
  c->val_crop = (int)json_num(j, "val_crop", c->val_crop);
  const json *seed = json_get(j, "seed");
  if (seed && seed->type == JSON_NUMBER) c->seed = strtoull(seed->str, NULL, 10);
  c->tf32 = (int)json_num(j, "tf32", c->tf32);
  c->workers = (int)json_num(j, "workers", c->workers);
  c->threads = (int)json_num(j, "threads", c->threads);
  c->log_every = (int)json_num(j, "log_every", c->log_every);
  c->ckpt_minutes = json_num(j, "ckpt_minutes", c->ckpt_minutes);
  c->keep = (int)json_num(j, "keep", c->keep);
  c->ckpt_steps = (int)json_num(j, "ckpt_steps", c->ckpt_steps);
  c->max_steps = (int)json_num(j, "max_steps", c->max_steps);
  c->nan_limit = (int)json_num(j, "nan_limit", c->nan_limit);
  c->eval_every = (int)json_num(j, "eval_every", c->eval_every);
  c->graph = (int)json_num(j, "graph", c->graph);
}

#define DIFF_INT(field, opt)                                                                     \
  if (a->field != b->field) {                                                                    \
    sb_printf(out, "  --%s: %lld in the run, %lld now\n", opt, (long long)a->field, (long long)b->field); \
    n++;                                                                                         \
  }
#define DIFF_DBL(field, opt)                                                                   \
  if (fabs(a->field - b->field) > 1e-12 * fmax(1.0, fabs(a->field))) {                         \
    sb_printf(out, "  --%s: %.10g in the run, %.10g now\n", opt, a->field, b->field);          \
    n++;                                                                                       \
  }
#define DIFF_STR(field, opt)                                                              \
  if (strcmp(a->field, b->field)) {                                                       \
    sb_printf(out, "  --%s: '%s' in the run, '%s' now\n", opt, a->field, b->field);       \
    n++;                                                                                  \
  }

int config_diff(const train_config *a, const train_config *b, strbuf *out) {
  int n = 0;
  DIFF_STR(arch, "arch");
  DIFF_INT(classes, "classes");
  DIFF_INT(zero_gamma, "zero-gamma");
  DIFF_STR(init_weights, "init-weights");
  DIFF_INT(epochs, "epochs");
  DIFF_INT(batch, "batch-size");
  DIFF_INT(accum, "accum-steps");
  DIFF_DBL(lr, "lr");
  DIFF_DBL(momentum, "momentum");
  DIFF_DBL(wd, "wd");
  DIFF_INT(wd_bn, "wd-bn");
  DIFF_INT(nesterov, "nesterov");
  DIFF_DBL(smoothing, "label-smoothing");
  DIFF_INT(sched, "schedule");
  DIFF_DBL(warmup_epochs, "warmup-epochs");
  DIFF_DBL(warmup_start, "warmup-start");
  DIFF_INT(n_milestones, "milestones (count)");
  for (int i = 0; i < a->n_milestones && i < b->n_milestones; i++) DIFF_INT(milestones[i], "milestones");
  DIFF_DBL(gamma, "gamma");
  DIFF_DBL(peak_epoch, "peak-epoch");
  DIFF_DBL(ema_decay, "ema-decay");
  DIFF_INT(image_size, "image-size");
  DIFF_INT(min_res, "min-res");
  DIFF_INT(max_res, "max-res");
  DIFF_DBL(start_ramp, "start-ramp");
  DIFF_DBL(end_ramp, "end-ramp");
  DIFF_INT(val_resize, "val-resize");
  DIFF_INT(val_crop, "val-crop");
  DIFF_INT(seed, "seed");
  return n;
}
