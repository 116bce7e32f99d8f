/* test_io_report.c: metrics.jsonl, timm's summary.csv and the plot page.
 *
 * With arguments it is the C side of tests/io_report_py.sh:
 *   test_io_report --summary DIR   writes DIR/summary.csv through a resume and
 *                                  DIR/rows.txt (the final rows as %a floats)
 *   test_io_report --repr N        prints N lines "<%a> <report_fmt_float>"
 *   test_io_report --plot FILE     writes a plot page */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/json.h"
#include "core/util.h"
#include "harness.h"
#include "train/report.h"

static char g_dir[256];
static char g_err[512];

static const char *tmp_path(const char *name) {
  static char p[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
  return p[k];
}

static char *slurp(const char *path) {
  size_t n;
  return file_read_all(path, &n, NULL, 0);
}

static int count_str(const char *hay, const char *needle) {
  int c = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle)) c++;
  return c;
}

static void test_python_repr(void) {
  struct {
    double v;
    const char *want; /* what Python 3 prints for repr(v) */
  } cases[] = {
      {0.1, "0.1"},
      {1.0, "1.0"},
      {100.0, "100.0"},
      {-2.5, "-2.5"},
      {6.907755279541016, "6.907755279541016"},
      {76.13, "76.13"},
      {0.30000000000000004, "0.30000000000000004"},
      {2.0 / 3.0, "0.6666666666666666"},
      {1e-05, "1e-05"},
      {1.5e-07, "1.5e-07"},
      {0.0001, "0.0001"},
      {0.00012, "0.00012"},
      {12345.678, "12345.678"},
      {1e15, "1000000000000000.0"},
      {9999999999999998.0, "9999999999999998.0"},
      {1e16, "1e+16"},
      {1e22, "1e+22"},
      {123456789012345678.0, "1.2345678901234568e+17"},
      {5e-324, "5e-324"},
      {1.7976931348623157e308, "1.7976931348623157e+308"},
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {NAN, "nan"},
      {INFINITY, "inf"},
      {-INFINITY, "-inf"},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    char buf[40];
    report_fmt_float(buf, sizeof buf, cases[i].v);
    CHECK(!strcmp(buf, cases[i].want), "repr(%.17g) = %s, want %s", cases[i].v, buf, cases[i].want);
  }
}

static void test_jsonl(void) {
  const char *p = tmp_path("metrics.jsonl");
  CHECK(report_jsonl_append(p, "{\"step\": 1, \"loss\": 6.9}") == 0, "append 1");
  CHECK(report_jsonl_append(p, "{\n  \"step\": 2,\n  \"loss\": 6.1,\n  \"tag\": \"a\\nb\"\n}") == 0, "append pretty");
  CHECK(report_jsonl_append(p, "{\"step\": 3, \"loss\": 5.0}") == 0, "append 3");
  errno = 0;
  CHECK(report_jsonl_append(p, "[1,2]") == -1 && errno == EINVAL, "array refused");
  CHECK(report_jsonl_append(p, "{\"step\": 4,") == -1 && errno == EINVAL, "broken JSON refused");
  CHECK(report_jsonl_append(p, "{\"epoch\": 0, \"val_top1\": 1.5}") == 0, "append epoch line");
  CHECK(report_jsonl_append("/nonexistent-dir/m.jsonl", "{}") == -1 && errno == ENOENT, "unwritable path");
  char *s = slurp(p);
  CHECK(s && count_str(s, "\n") == 4, "4 lines");
  /* every line is one JSON object */
  int objs = 0;
  for (char *line = s, *nl; s && (nl = strchr(line, '\n')); line = nl + 1) {
    json *j = json_parse(line, (size_t)(nl - line), NULL, 0);
    objs += j && j->type == JSON_OBJECT;
    if (objs == 2) CHECK(j && !strcmp(json_str(j, "tag", ""), "a\nb"), "escaped newline kept in the string");
    json_free(j);
  }
  CHECK(objs == 4, "4 objects (got %d)", objs);
  free(s);
  /* a torn line (crash mid-append) and a resume from step 2 */
  FILE *f = fopen(p, "a");
  fputs("{\"step\": 5, \"lo", f);
  fclose(f);
  CHECK(report_jsonl_rewind(p, "step", 2, g_err, sizeof g_err) == 0, "rewind: %s", g_err);
  s = slurp(p);
  CHECK(s && count_str(s, "\n") == 3 && strstr(s, "\"step\": 1") && strstr(s, "\"step\": 2") && !strstr(s, "\"step\": 3") &&
            strstr(s, "\"epoch\": 0") && !strstr(s, "\"step\": 5"),
        "rewind kept steps <= 2 and the line without a step: %s", s);
  free(s);
  CHECK(report_jsonl_rewind(tmp_path("none.jsonl"), "step", 2, g_err, sizeof g_err) == 0, "missing file ok");
}

static void test_summary_csv(void) {
  const char *p = tmp_path("summary.csv");
  report_epoch e0 = {0, 6.9077552, 6.85, 0.2, 1.0, 0.1}, e1 = {1, 5.5, 5.25, 3.125, 10.5, 0.2},
               e2 = {2, 4.75, 4.5, 12.0, 30.0, 0.05};
  CHECK(report_summary_update(p, &e0, g_err, sizeof g_err) == 0, "%s", g_err);
  CHECK(report_summary_update(p, &e1, g_err, sizeof g_err) == 0, "%s", g_err);
  CHECK(report_summary_update(p, &e2, g_err, sizeof g_err) == 0, "%s", g_err);
  char *s = slurp(p);
  const char *want = "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\r\n"
                     "0,6.9077552,6.85,0.2,1.0,0.1\r\n"
                     "1,5.5,5.25,3.125,10.5,0.2\r\n"
                     "2,4.75,4.5,12.0,30.0,0.05\r\n";
  CHECK(s && !strcmp(s, want), "summary.csv as timm writes it:\n%s", s ? s : "(none)");
  free(s);
  /* resume from the end of epoch 0: epoch 1 is redone, epoch 2's row is stale */
  report_epoch e1b = {1, 5.4, 5.2, 3.5, 11.0, 0.2};
  CHECK(report_summary_update(p, &e1b, g_err, sizeof g_err) == 0, "%s", g_err);
  report_epoch rows[8];
  int n = report_summary_read(p, rows, 8, g_err, sizeof g_err);
  CHECK(n == 2 && rows[0].epoch == 0 && rows[1].epoch == 1 && rows[1].train_loss == 5.4 && rows[1].eval_top1 == 3.5,
        "epoch 1 replaced, 2 dropped (n=%d)", n);
  CHECK(report_summary_update(p, &e2, g_err, sizeof g_err) == 0, "%s", g_err);
  n = report_summary_read(p, rows, 8, g_err, sizeof g_err);
  CHECK(n == 3 && rows[2].epoch == 2 && rows[2].lr == 0.05 && rows[0].train_loss == 6.9077552, "3 rows again (n=%d)", n);
  /* same epoch twice in a row: replaced, not duplicated */
  CHECK(report_summary_update(p, &e2, g_err, sizeof g_err) == 0, "%s", g_err);
  s = slurp(p);
  CHECK(s && count_str(s, "\r\n2,") == 1 && count_str(s, "\r\n") == 4, "no duplicate epoch rows");
  free(s);
  /* NaN metrics print as Python does */
  report_epoch en = {3, NAN, NAN, 0, 0, 1e-05};
  CHECK(report_summary_update(p, &en, g_err, sizeof g_err) == 0, "%s", g_err);
  s = slurp(p);
  CHECK(s && strstr(s, "\r\n3,nan,nan,0.0,0.0,1e-05\r\n"), "nan row: %s", s);
  free(s);
  /* a torn last line (not ours: atomic writes) and LF endings are tolerated */
  const char *q = tmp_path("lf.csv");
  file_write_atomic(q, "epoch,train_loss,eval_loss,eval_top1,eval_top5,lr\n0,1.0,1.0,1.0,1.0,1.0\n1,2.0,2", 77, NULL, 0);
  CHECK(report_summary_read(q, rows, 8, g_err, sizeof g_err) == 1, "LF file, torn line dropped");
  /* a foreign file is not overwritten */
  const char *o = tmp_path("other.csv");
  file_write_atomic(o, "a,b\n1,2\n", 8, NULL, 0);
  CHECK(report_summary_update(o, &e0, g_err, sizeof g_err) == -1 && strstr(g_err, "other.csv") && strstr(g_err, "header"),
        "foreign header refused: %s", g_err);
  s = slurp(o);
  CHECK(s && !strcmp(s, "a,b\n1,2\n"), "foreign file untouched");
  free(s);
  CHECK(report_summary_read(tmp_path("missing.csv"), rows, 8, g_err, sizeof g_err) == 0, "missing file: 0 rows");
}

/* The polyline of series `name` in page s, or NULL. */
static char *polyline_points(const char *s, const char *name) {
  char pat[256];
  snprintf(pat, sizeof pat, "data-name=\"%s\"", name);
  const char *p = strstr(s, pat);
  if (!p) return NULL;
  p = strstr(p, "points=\"");
  if (!p) return NULL;
  p += 8;
  const char *e = strchr(p, '"');
  char *out = xmalloc((size_t)(e - p) + 1, "points");
  memcpy(out, p, (size_t)(e - p));
  out[e - p] = 0;
  return out;
}

static void test_plot(void) {
  double x[5] = {0, 1, 2, 3, 4}, y[5] = {0, 2.5, 5, 7.5, 10};
  double ex[3] = {0, 1, 2}, t1[3] = {10, NAN, 30}, t5[3] = {40, 50, 60};
  enum { N = 5000 };
  double *lx = xmalloc(N * sizeof(double), "x"), *ly = xmalloc(N * sizeof(double), "y");
  for (int i = 0; i < N; i++) {
    lx[i] = i;
    ly[i] = 7.0 - i * 0.001 + (i % 2 ? 0.5 : -0.5); /* noisy: averaged away */
  }
  report_series s[] = {
      {"tiny", "a", x, y, 5},
      {"accuracy (%)", "val top-1", ex, t1, 3},
      {"accuracy (%)", "val top-5", ex, t5, 3},
      {"loss", "train <loss> & co", lx, ly, N},
      {"empty", "nothing", NULL, NULL, 0},
  };
  const char *p = tmp_path("plot.html");
  CHECK(report_plot_write(p, "run \"r1\" <resnet50>", s, 5, g_err, sizeof g_err) == 0, "%s", g_err);
  char *page = slurp(p);
  if (!page) {
    CHECK(0, "no page");
    return;
  }
  CHECK(!strncmp(page, "<!DOCTYPE html>", 15) && strstr(page, "</html>"), "a complete page");
  CHECK(!strstr(page, "<script") && !strstr(page, "src=") && !strstr(page, "href=") && !strstr(page, "url("),
        "no script, no external resource");
  CHECK(count_str(page, "<svg") == 4 && count_str(page, "</svg>") == 4, "4 panels (one per panel name)");
  CHECK(count_str(page, "<polyline") == 4 && count_str(page, "</polyline>") == 4, "4 series");
  CHECK(strstr(page, "run &quot;r1&quot; &lt;resnet50&gt;") && strstr(page, "train &lt;loss&gt; &amp; co"), "escaped");
  CHECK(strstr(page, "no data yet") != NULL, "empty panel says so");
  /* exact scaling: x 0..4 onto 64..584, y 0..10 onto 280..16 */
  char *pts = polyline_points(page, "a");
  CHECK(pts && !strcmp(pts, "64.0,280.0 194.0,214.0 324.0,148.0 454.0,82.0 584.0,16.0"), "tiny points: %s", pts);
  free(pts);
  CHECK(strstr(page, "data-x=\"0 4\" data-y=\"0 10\""), "tiny axes");
  CHECK(strstr(page, ">2</text>") && strstr(page, ">10</text>") && strstr(page, ">4</text>"), "tick labels");
  /* the NaN point is skipped; the shared axis spans both accuracy series: 10..60 */
  pts = polyline_points(page, "val top-1");
  CHECK(pts && count_str(pts, ",") == 2 && !strcmp(pts, "64.0,280.0 584.0,174.4"), "top-1 skips NaN: %s", pts);
  free(pts);
  pts = polyline_points(page, "val top-5");
  CHECK(pts && !strcmp(pts, "64.0,121.6 324.0,68.8 584.0,16.0"), "top-5: %s", pts);
  free(pts);
  /* the long series is averaged in buckets of 5 (noise cancels) */
  pts = polyline_points(page, "train &lt;loss&gt; &amp; co");
  CHECK(pts && count_str(pts, ",") == REPORT_PLOT_MAX_POINTS, "downsampled to %d points", REPORT_PLOT_MAX_POINTS);
  free(pts);
  CHECK(strstr(page, "val top-1: 30<") && strstr(page, "val top-5: 60<"), "legend shows last values");
  free(page);
  free(lx);
  free(ly);
  CHECK(report_plot_write("/nonexistent-dir/p.html", "t", s, 1, g_err, sizeof g_err) == -1 && strstr(g_err, "/nonexistent-dir/"),
        "unwritable: %s", g_err);
}

static int summary_mode(const char *dir) {
  char p[600], r[600];
  snprintf(p, sizeof p, "%s/summary.csv", dir);
  snprintf(r, sizeof r, "%s/rows.txt", dir);
  FILE *rf = fopen(r, "w");
  if (!rf) die("%s: cannot write", r);
  uint64_t s = 42;
  report_epoch final[12];
  for (int ep = 0; ep < 12; ep++) {
    report_epoch e;
    double v[5];
    for (int i = 0; i < 5; i++) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      v[i] = (double)(s >> 11) * 0x1p-53 * pow(10, (int)(s % 9) - 4);
    }
    e = (report_epoch){ep, v[0] * 7, v[1] * 7, v[2] * 100, v[3] * 100, v[4] * 0.1};
    if (ep == 3) e.lr = 1e-05;
    if (report_summary_update(p, &e, g_err, sizeof g_err)) die("%s", g_err);
    final[ep] = e;
    if (ep == 8) /* killed after epoch 8's row, resumed from the end of epoch 5 */
      for (int k = 6; k <= 8; k++) {
        final[k].train_loss += 1;
        if (report_summary_update(p, &final[k], g_err, sizeof g_err)) die("%s", g_err);
      }
  }
  for (int ep = 0; ep < 12; ep++)
    fprintf(rf, "%d %a %a %a %a %a\n", final[ep].epoch, final[ep].train_loss, final[ep].eval_loss, final[ep].eval_top1,
            final[ep].eval_top5, final[ep].lr);
  fclose(rf);
  return 0;
}

static int repr_mode(long n) {
  uint64_t s = 7;
  for (long i = 0; i < n; i++) {
    s = s * 6364136223846793005ULL + 1442695040888963407ULL;
    double v;
    if (i % 3 == 0) { /* any finite double */
      uint64_t bits = s;
      memcpy(&v, &bits, 8);
      if (!isfinite(v)) continue;
    } else if (i % 3 == 1) { /* short decimals across magnitudes */
      v = (double)(s >> 40) / pow(10, (int)((s >> 8) % 30) - 10);
    } else { /* losses, accuracies, learning rates */
      v = (double)(s >> 11) * 0x1p-53 * pow(10, (int)(s % 12) - 8);
    }
    char buf[40];
    report_fmt_float(buf, sizeof buf, v);
    printf("%a %s\n", v, buf);
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && !strcmp(argv[1], "--summary")) return summary_mode(argv[2]);
  if (argc == 3 && !strcmp(argv[1], "--repr")) return repr_mode(atol(argv[2]));
  snprintf(g_dir, sizeof g_dir, "/tmp/rn50_rep_XXXXXX");
  if (!mkdtemp(g_dir)) die("mkdtemp failed");
  if (argc == 3 && !strcmp(argv[1], "--plot")) {
    test_plot();
    report_series s[2];
    double x[4] = {0, 1, 2, 3}, y[4] = {6.9, 5.2, 4.1, 3.3}, l[4] = {0.1, 0.4, 0.2, 0.01};
    s[0] = (report_series){"loss", "train loss", x, y, 4};
    s[1] = (report_series){"lr", "lr", x, l, 4};
    int rc = report_plot_write(argv[2], "rn50 & <check>", s, 2, g_err, sizeof g_err);
    h_remove_dir(g_dir);
    return rc ? 1 : 0;
  }
  RUN(test_python_repr);
  RUN(test_jsonl);
  RUN(test_summary_csv);
  RUN(test_plot);
  h_remove_dir(g_dir);
  return harness_finish();
}
