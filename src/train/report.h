/* report.h: the files a user reads about a training run, besides train.log
 * and TensorBoard: RUN/metrics.jsonl (one JSON object per line), RUN/summary.csv
 * (one row per epoch, byte for byte as timm's update_summary writes it) and a
 * self-contained HTML page of the training curves (inline SVG: no script, no
 * external resource), rewritten after each epoch.
 *
 * A resumed run repeats the steps after its checkpoint, so each file has a
 * way to forget what that checkpoint did not see: report_jsonl_rewind,
 * report_summary_update (replaces the epoch's row and drops later ones), and
 * the plot is simply rewritten from the series the caller holds. */
#ifndef RN50_REPORT_H
#define RN50_REPORT_H

#include <stddef.h>

/* ---- metrics.jsonl ---- */

/* Appends json_object_text (one JSON object; line breaks in it are turned
 * into spaces) as one line, written with a single write() on an O_APPEND
 * descriptor, so it is in the file when the call returns. 0, or -1 with errno
 * set (EINVAL: not a JSON object). */
int report_jsonl_append(const char *path, const char *json_object_text);
/* Keeps the lines whose numeric member `key` is <= max (and those without
 * it); drops the rest and any torn or malformed line. Atomic rewrite; a
 * missing file is fine. 0, or -1 with err. */
int report_jsonl_rewind(const char *path, const char *key, double max, char *err, size_t errlen);

/* ---- summary.csv (timm) ---- */

/* The header timm writes for train loss, eval loss/top1/top5 and lr. */
#define REPORT_SUMMARY_HEADER "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr"

typedef struct {
  int epoch;         /* 0-based, as timm */
  double train_loss; /* mean over the epoch */
  double eval_loss;
  double eval_top1;  /* percent */
  double eval_top5;  /* percent */
  double lr;         /* at the end of the epoch */
} report_epoch;

/* Writes e's row into summary.csv (created with the header if missing),
 * replacing the row of the same epoch and dropping rows of later epochs (they
 * belong to a timeline a resume abandoned). Lines end in "\r\n" and numbers
 * are printed as Python's repr(), as csv.DictWriter in timm does. Atomic
 * rewrite. 0, or -1 with err (also for a file with another header). */
int report_summary_update(const char *path, const report_epoch *e, char *err, size_t errlen);
/* Reads rows back; the number read (at most max), or -1 with err. A missing
 * file has 0 rows. */
int report_summary_read(const char *path, report_epoch *rows, int max, char *err, size_t errlen);
/* repr() of a Python float: shortest round-trip digits, "1e-05", "0.1",
 * "3.0", "nan", "inf". buf: at least 32 bytes. */
void report_fmt_float(char *buf, size_t n, double v);

/* ---- plot.html ---- */

/* A named curve; series with the same panel string share one chart. */
typedef struct {
  const char *panel; /* chart title, e.g. "loss" */
  const char *name;  /* legend, e.g. "train loss (per step)" */
  const double *x;   /* n values, e.g. step or epoch */
  const double *y;   /* n values; non-finite points are skipped */
  int n;
} report_series;

/* Most points drawn per series; longer series are averaged in equal buckets
 * (which also smooths per-step loss). */
#define REPORT_PLOT_MAX_POINTS 1000

/* Writes the page atomically: one chart per panel (in order of first
 * appearance), axes with round ticks, one colored polyline per series,
 * a legend with each series' last value. 0, or -1 with err. */
int report_plot_write(const char *path, const char *title, const report_series *series, int n_series, char *err,
                      size_t errlen);

#endif
