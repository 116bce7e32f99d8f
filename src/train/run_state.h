/* run_state.h: a training run's progress — counters, loss scaling, NaN
 * streak, best result and the per-epoch history — as it is saved in each
 * checkpoint (JSON in the state file's metadata) and restored on resume, and
 * the epoch reports written from it (summary.csv, plot.html). */
#ifndef RN50_RUN_STATE_H
#define RN50_RUN_STATE_H

#include <stdint.h>

#include "../core/json.h"

typedef struct {
  int epoch;
  double train_loss, eval_loss, top1, top5; /* NaN when not evaluated */
  double ema_loss, ema_top1, ema_top5;       /* NaN without EMA */
  double lr, img_s, seconds;
  int crop;
} epoch_record;

typedef struct {
  int64_t epoch;          /* epoch in progress (0-based) */
  int64_t step_in_epoch;  /* optimizer steps done in this epoch */
  int64_t global_step;    /* optimizer steps done in total */
  double loss_scale;      /* fp16 dynamic loss scale (1 otherwise) */
  int64_t good_steps;     /* finite steps since the scale last changed */
  int64_t nan_streak;     /* consecutive non-finite losses */
  int64_t skipped;        /* steps skipped in total (non-finite) */
  double best_top1;       /* -1 before the first evaluation */
  int best_epoch;
  int64_t best_step;      /* global step of the best checkpoint (-1: none) */
  double elapsed;         /* seconds of training so far, all sessions */
  double epoch_loss_sum;  /* finite step losses of this epoch */
  int64_t epoch_loss_count;
  int n_hist, cap_hist;
  epoch_record *hist;
} run_state;

void run_state_init(run_state *s);
void run_state_free(run_state *s);
void run_state_add_epoch(run_state *s, const epoch_record *r);
/* JSON text (malloc'ed) and back; 0 or -1 with err. */
char *run_state_to_json(const run_state *s);
int run_state_from_json(run_state *s, const char *text, char *err, size_t errlen);

/* summary.csv (timm) row for the epoch, plot.html from metrics.jsonl's step
 * lines and the history. Failures are warnings: reports never stop a run. */
void run_state_write_reports(const run_state *s, const char *run_dir, const char *title);

#endif
