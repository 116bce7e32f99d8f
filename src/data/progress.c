/* progress.c: see progress.h. RN50_QUIET=1 silences it (tests). */
#include "progress.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "../core/util.h"

void progress_init(progress *p, const char *what, int64_t total) {
  p->what = what;
  p->total = total > 0 ? total : 1;
  p->t0 = p->last = now_sec();
  p->tty = isatty(2);
  p->last_decile = 0;
  const char *q = getenv("RN50_QUIET");
  p->quiet = q && *q && *q != '0';
}

static void fmt_time(char *buf, size_t n, double s) {
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ld:%02ld:%02ld", t / 3600, t / 60 % 60, t % 60);
  else snprintf(buf, n, "%ld:%02ld", t / 60, t % 60);
}

static void draw(progress *p, int64_t done, int final) {
  double el = now_sec() - p->t0;
  double rate = el > 0 ? done / el : 0;
  double frac = (double)done / p->total;
  if (frac > 1) frac = 1;
  char eta[32], elapsed[32];
  fmt_time(eta, sizeof eta, rate > 0 ? (p->total - done) / rate : 0);
  fmt_time(elapsed, sizeof elapsed, el);
  if (p->tty) {
    char bar[31];
    int fill = (int)(frac * 30);
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '#' : '.';
    bar[30] = 0;
    fprintf(stderr, "\r%s [%s] %3.0f%% %lld/%lld %.0f/s %s %s\033[K", p->what, bar, 100 * frac, (long long)done,
            (long long)p->total, rate, final ? "in" : "ETA", final ? elapsed : eta);
    if (final) fputc('\n', stderr);
  } else {
    fprintf(stderr, "%s: %3.0f%% %lld/%lld %.0f/s %s %s\n", p->what, 100 * frac, (long long)done, (long long)p->total,
            rate, final ? "in" : "ETA", final ? elapsed : eta);
  }
  fflush(stderr);
}

void progress_update(progress *p, int64_t done) {
  if (p->quiet) return;
  double t = now_sec();
  if (p->tty) {
    if (t - p->last < 0.2) return;
  } else {
    int decile = (int)(10.0 * done / p->total);
    if (decile <= p->last_decile && t - p->last < 60) return;
    p->last_decile = decile;
  }
  p->last = t;
  draw(p, done, 0);
}

void progress_end(progress *p, int64_t done) {
  if (p->quiet) return;
  draw(p, done, 1);
}
