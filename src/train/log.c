/* log.c: train.log, plain stdout lines and the terminal progress bar. */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static FILE *log_file;
static int tty = -1;
static int bar_shown;

int log_open(const char *run_dir, char *err, size_t errlen) {
  char path[4096];
  snprintf(path, sizeof path, "%s/train.log", run_dir);
  log_file = fopen(path, "a");
  if (!log_file) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  tty = isatty(fileno(stdout));
  return 0;
}

void log_close(void) {
  if (log_file) fclose(log_file);
  log_file = NULL;
}

static void clear_bar(void) {
  if (bar_shown) {
    fputs("\r\033[K", stdout);
    bar_shown = 0;
  }
}

void log_line(const char *fmt, ...) {
  char msg[2048], stamp[32];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  time_t now = time(NULL);
  struct tm tm;
  localtime_r(&now, &tm);
  strftime(stamp, sizeof stamp, "%Y-%m-%d %H:%M:%S", &tm);
  if (log_file) {
    fprintf(log_file, "%s %s\n", stamp, msg);
    fflush(log_file);
  }
  clear_bar();
  printf("%s %s\n", stamp, msg);
  fflush(stdout);
}

void log_progress(long done, long total, const char *text) {
  if (tty < 0) tty = isatty(fileno(stdout));
  if (!tty) return;
  const int width = 24;
  int fill = total > 0 ? (int)(width * done / total) : 0;
  char bar[64];
  for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
  bar[width] = 0;
  printf("\r\033[K[%s] %s", bar, text);
  fflush(stdout);
  bar_shown = 1;
}

void log_fmt_duration(char *buf, size_t n, double s) {
  if (s < 0 || s != s) s = 0;
  long t = (long)(s + 0.5);
  if (t >= 3600) snprintf(buf, n, "%ldh%02ldm", t / 3600, (t % 3600) / 60);
  else if (t >= 60) snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
  else snprintf(buf, n, "%lds", t);
}
