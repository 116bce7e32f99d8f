/* report_plot.c: the training-curves page: plain HTML with one inline SVG
 * chart per panel, readable in any browser from a file:// URL and refreshed
 * every minute by a meta tag (no script). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../core/json.h"
#include "../core/util.h"
#include "report.h"

/* Chart geometry (SVG user units). */
#define PW 600.0
#define PH 320.0
#define PL 64.0  /* plot area left */
#define PR 584.0 /* right */
#define PT 16.0  /* top */
#define PB 280.0 /* bottom */

static const char *palette[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf"};

static void esc(strbuf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '&') sb_puts(b, "&amp;");
    else if (*s == '<') sb_puts(b, "&lt;");
    else if (*s == '>') sb_puts(b, "&gt;");
    else if (*s == '"') sb_puts(b, "&quot;");
    else sb_putc(b, *s);
  }
}

/* A round tick step for range split in about `target` parts. */
static double nice_step(double range, int target) {
  double raw = range / target, mag = pow(10, floor(log10(raw))), f = raw / mag;
  double nf = f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10;
  return nf * mag;
}

typedef struct {
  double lo, hi, step;
} axis;

static axis make_axis(double mn, double mx, int target) {
  axis a;
  if (!(mx > mn)) { /* one value (or none): a unit-wide window around it */
    double d = mn == 0 ? 1 : fabs(mn) * 0.1;
    mn -= d;
    mx += d;
  }
  a.step = nice_step(mx - mn, target);
  a.lo = floor(mn / a.step + 1e-9) * a.step;
  a.hi = ceil(mx / a.step - 1e-9) * a.step;
  return a;
}

/* Downsampled finite points of s: bucket means. Returns the count. */
static int points(const report_series *s, double *px, double *py) {
  int bucket = (s->n + REPORT_PLOT_MAX_POINTS - 1) / REPORT_PLOT_MAX_POINTS;
  if (bucket < 1) bucket = 1;
  int k = 0;
  for (int i = 0; i < s->n; i += bucket) {
    double sx = 0, sy = 0;
    int c = 0;
    for (int j = i; j < i + bucket && j < s->n; j++)
      if (isfinite(s->x[j]) && isfinite(s->y[j])) {
        sx += s->x[j];
        sy += s->y[j];
        c++;
      }
    if (c) {
      px[k] = sx / c;
      py[k] = sy / c;
      k++;
    }
  }
  return k;
}

static void tick_label(char *buf, size_t n, double v, double step) {
  if (fabs(v) < step * 1e-6) v = 0;
  snprintf(buf, n, "%g", v);
}

static void panel_svg(strbuf *b, const char *panel, const report_series *ss, int n_series) {
  /* the points of this panel's series */
  int ns = 0;
  int idx[64];
  double *px[64], *py[64];
  int np[64];
  double xmn = INFINITY, xmx = -INFINITY, ymn = INFINITY, ymx = -INFINITY;
  for (int i = 0; i < n_series && ns < 64; i++) {
    if (strcmp(ss[i].panel, panel)) continue;
    idx[ns] = i;
    px[ns] = xmalloc((size_t)(ss[i].n + 1) * sizeof(double), "plot");
    py[ns] = xmalloc((size_t)(ss[i].n + 1) * sizeof(double), "plot");
    np[ns] = points(&ss[i], px[ns], py[ns]);
    for (int k = 0; k < np[ns]; k++) {
      xmn = fmin(xmn, px[ns][k]);
      xmx = fmax(xmx, px[ns][k]);
      ymn = fmin(ymn, py[ns][k]);
      ymx = fmax(ymx, py[ns][k]);
    }
    ns++;
  }
  sb_puts(b, "<div class=\"panel\"><h3>");
  esc(b, panel);
  sb_printf(b, "</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" viewBox=\"0 0 %g %g\">\n", PW, PH, PW,
            PH);
  sb_printf(b, "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"#fafafa\" stroke=\"#999\"/>\n", PL, PT, PR - PL, PB - PT);
  if (!(xmx >= xmn)) {
    sb_printf(b, "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">no data yet</text>\n", (PL + PR) / 2, (PT + PB) / 2);
  } else {
    axis ax = make_axis(xmn, xmx, 6), ay = make_axis(ymn, ymx, 5);
    double sx = (PR - PL) / (ax.hi - ax.lo), sy = (PB - PT) / (ay.hi - ay.lo);
    sb_printf(b, "<g class=\"axes\" data-x=\"%.17g %.17g\" data-y=\"%.17g %.17g\">\n", ax.lo, ax.hi, ay.lo, ay.hi);
    char lab[40];
    for (int k = 0; k <= 200; k++) {
      double v = ay.lo + k * ay.step;
      if (v > ay.hi + ay.step * 1e-6) break;
      double y = PB - (v - ay.lo) * sy;
      tick_label(lab, sizeof lab, v, ay.step);
      sb_printf(b, "<line x1=\"%g\" x2=\"%g\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#e4e4e4\"/>", PL, PR, y, y);
      sb_printf(b, "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n", PL - 4, y + 4, lab);
    }
    for (int k = 0; k <= 200; k++) {
      double v = ax.lo + k * ax.step;
      if (v > ax.hi + ax.step * 1e-6) break;
      double x = PL + (v - ax.lo) * sx;
      tick_label(lab, sizeof lab, v, ax.step);
      sb_printf(b, "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%g\" y2=\"%g\" stroke=\"#e4e4e4\"/>", x, x, PT, PB);
      sb_printf(b, "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%s</text>\n", x, PB + 16, lab);
    }
    sb_puts(b, "</g>\n");
    for (int s = 0; s < ns; s++) {
      const char *col = palette[idx[s] % ARRAY_LEN(palette)];
      sb_printf(b, "<polyline class=\"series\" data-name=\"");
      esc(b, ss[idx[s]].name);
      sb_printf(b, "\" fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
      for (int k = 0; k < np[s]; k++)
        sb_printf(b, "%s%.1f,%.1f", k ? " " : "", PL + (px[s][k] - ax.lo) * sx, PB - (py[s][k] - ay.lo) * sy);
      sb_puts(b, "\"><title>");
      esc(b, ss[idx[s]].name);
      sb_puts(b, "</title></polyline>\n");
      if (np[s] <= 60) /* per-epoch series: mark the points */
        for (int k = 0; k < np[s]; k++)
          sb_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>", PL + (px[s][k] - ax.lo) * sx,
                    PB - (py[s][k] - ay.lo) * sy, col);
      sb_putc(b, '\n');
    }
  }
  sb_puts(b, "</svg>\n<div class=\"legend\">");
  for (int s = 0; s < ns; s++) {
    const report_series *r = &ss[idx[s]];
    double last = NAN;
    for (int k = r->n - 1; k >= 0; k--)
      if (isfinite(r->y[k])) {
        last = r->y[k];
        break;
      }
    sb_printf(b, "<span><b style=\"color:%s\">&#9632;</b> ", palette[idx[s] % ARRAY_LEN(palette)]);
    esc(b, r->name);
    if (isfinite(last)) sb_printf(b, ": %.5g", last);
    sb_puts(b, "</span> ");
    free(px[s]);
    free(py[s]);
  }
  sb_puts(b, "</div></div>\n");
}

int report_plot_write(const char *path, const char *title, const report_series *series, int n_series, char *err,
                      size_t errlen) {
  strbuf b;
  sb_init(&b);
  sb_puts(&b, "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"/>\n<meta http-equiv=\"refresh\" content=\"60\"/>\n<title>");
  esc(&b, title);
  sb_puts(&b, "</title>\n<style>body{font-family:sans-serif;margin:16px;color:#222}"
              ".grid{display:flex;flex-wrap:wrap;gap:16px}.panel{border:1px solid #ddd;padding:8px}"
              "h3{margin:0 0 4px 0;font-size:15px}.legend{font-size:13px;max-width:600px}.legend span{margin-right:12px}"
              "svg text{font-size:11px;fill:#444}</style></head><body>\n<h2>");
  esc(&b, title);
  time_t t = time(NULL);
  char when[64];
  strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", localtime(&t));
  sb_printf(&b, "</h2>\n<p>updated %s</p>\n<div class=\"grid\">\n", when);
  for (int i = 0; i < n_series; i++) {
    int seen = 0;
    for (int j = 0; j < i; j++) seen |= !strcmp(series[j].panel, series[i].panel);
    if (!seen) panel_svg(&b, series[i].panel, series, n_series);
  }
  sb_puts(&b, "</div>\n</body></html>\n");
  int rc = file_write_atomic(path, b.data, b.len, err, errlen);
  sb_free(&b);
  return rc;
}
