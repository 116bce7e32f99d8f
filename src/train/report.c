/* report.c: metrics.jsonl and timm's summary.csv (the plot is in
 * report_plot.c). */
#include "report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/json.h"
#include "../core/util.h"

/* ---- metrics.jsonl ---- */

int report_jsonl_append(const char *path, const char *json_object_text) {
  size_t n = strlen(json_object_text);
  json *j = json_parse(json_object_text, n, NULL, 0);
  int is_obj = j && j->type == JSON_OBJECT;
  json_free(j);
  if (!is_obj) {
    errno = EINVAL;
    return -1;
  }
  char *line = xmalloc(n + 2, "metrics line");
  for (size_t i = 0; i < n; i++) {
    char c = json_object_text[i];
    line[i] = c == '\n' || c == '\r' ? ' ' : c; /* JSON strings hold no raw line breaks */
  }
  line[n] = '\n';
  int fd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  int rc = -1;
  if (fd >= 0) {
    size_t off = 0;
    rc = 0;
    while (off < n + 1) {
      ssize_t k = write(fd, line + off, n + 1 - off);
      if (k < 0 && errno == EINTR) continue;
      if (k <= 0) {
        rc = -1;
        break;
      }
      off += (size_t)k;
    }
    int e = errno;
    close(fd);
    errno = e;
  }
  free(line);
  return rc;
}

int report_jsonl_rewind(const char *path, const char *key, double max, char *err, size_t errlen) {
  if (!path_exists(path)) return 0;
  size_t len;
  char *buf = file_read_all(path, &len, err, errlen);
  if (!buf) return -1;
  strbuf out;
  sb_init(&out);
  sb_append(&out, "", 0);
  char *p = buf, *end = buf + len;
  while (p < end) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    if (!nl) break; /* a torn last line */
    json *j = json_parse(p, (size_t)(nl - p), NULL, 0);
    if (j && j->type == JSON_OBJECT) {
      const json *v = json_get(j, key);
      if (!v || v->type != JSON_NUMBER || v->num <= max) sb_append(&out, p, (size_t)(nl - p) + 1);
    }
    json_free(j);
    p = nl + 1;
  }
  int rc = file_write_atomic(path, out.data, out.len, err, errlen);
  sb_free(&out);
  free(buf);
  return rc;
}

/* ---- Python float repr ---- */

void report_fmt_float(char *buf, size_t n, double v) {
  if (isnan(v)) {
    snprintf(buf, n, "nan");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, n, v > 0 ? "inf" : "-inf");
    return;
  }
  if (v == 0) {
    snprintf(buf, n, signbit(v) ? "-0.0" : "0.0");
    return;
  }
  char e[40];
  for (int p = 1; p <= 17; p++) {
    snprintf(e, sizeof e, "%.*e", p - 1, v);
    if (strtod(e, NULL) == v) break;
  }
  /* e = [-]d[.ddd]e(+|-)xx */
  char digits[24];
  int nd = 0, neg = e[0] == '-';
  const char *q = e + neg;
  for (; *q && *q != 'e'; q++)
    if (*q != '.') digits[nd++] = *q;
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  digits[nd] = 0;
  int x = atoi(q + 1); /* value = d.ddd * 10^x */
  strbuf b;
  sb_init(&b);
  if (neg) sb_putc(&b, '-');
  if (x < -4 || x >= 16) {
    sb_putc(&b, digits[0]);
    if (nd > 1) sb_printf(&b, ".%s", digits + 1);
    sb_printf(&b, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
  } else if (x < 0) {
    sb_puts(&b, "0.");
    for (int i = 0; i < -x - 1; i++) sb_putc(&b, '0');
    sb_puts(&b, digits);
  } else if (x + 1 >= nd) {
    sb_puts(&b, digits);
    for (int i = nd; i < x + 1; i++) sb_putc(&b, '0');
    sb_puts(&b, ".0");
  } else {
    sb_append(&b, digits, (size_t)x + 1);
    sb_putc(&b, '.');
    sb_puts(&b, digits + x + 1);
  }
  snprintf(buf, n, "%s", b.data);
  sb_free(&b);
}

/* ---- summary.csv ---- */

static int row_epoch(const char *line, size_t len, long *epoch) {
  char tmp[32];
  size_t k = 0;
  while (k < len && k < sizeof tmp - 1 && line[k] != ',') {
    tmp[k] = line[k];
    k++;
  }
  tmp[k] = 0;
  if (k == len || line[k] != ',') return -1;
  return parse_int(tmp, 0, 1000000000L, epoch);
}

/* Splits buf into lines (without "\r\n" / "\n"); checks the header. Calls
 * fn for each data row with its epoch. */
typedef void (*row_fn)(void *ctx, long epoch, const char *line, size_t len);
static int each_row(const char *path, const char *buf, size_t len, row_fn fn, void *ctx, char *err, size_t errlen) {
  const char *p = buf, *end = buf + len;
  int first = 1;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    const char *le = nl ? nl : end;
    size_t l = (size_t)(le - p);
    if (l && p[l - 1] == '\r') l--;
    if (first) {
      if (l != strlen(REPORT_SUMMARY_HEADER) || memcmp(p, REPORT_SUMMARY_HEADER, l)) {
        if (err && errlen)
          snprintf(err, errlen, "%s: not a summary.csv with the header \"%s\"", path, REPORT_SUMMARY_HEADER);
        return -1;
      }
      first = 0;
    } else {
      long ep;
      if (nl && row_epoch(p, l, &ep) == 0) fn(ctx, ep, p, l); /* a torn last line is dropped */
    }
    p = nl ? nl + 1 : end;
  }
  return 0;
}

typedef struct {
  strbuf *out;
  long epoch;
} keep_ctx;

static void keep_earlier(void *ctx, long epoch, const char *line, size_t len) {
  keep_ctx *k = ctx;
  if (epoch < k->epoch) {
    sb_append(k->out, line, len);
    sb_puts(k->out, "\r\n");
  }
}

int report_summary_update(const char *path, const report_epoch *e, char *err, size_t errlen) {
  strbuf out;
  sb_init(&out);
  sb_puts(&out, REPORT_SUMMARY_HEADER "\r\n");
  if (path_exists(path)) {
    size_t len;
    char *buf = file_read_all(path, &len, err, errlen);
    if (!buf) {
      sb_free(&out);
      return -1;
    }
    keep_ctx k = {&out, e->epoch};
    int rc = each_row(path, buf, len, keep_earlier, &k, err, errlen);
    free(buf);
    if (rc) {
      sb_free(&out);
      return -1;
    }
  }
  /* rows stay in epoch order: earlier rows kept, then this one */
  double v[5] = {e->train_loss, e->eval_loss, e->eval_top1, e->eval_top5, e->lr};
  sb_printf(&out, "%d", e->epoch);
  for (int i = 0; i < 5; i++) {
    char f[40];
    report_fmt_float(f, sizeof f, v[i]);
    sb_printf(&out, ",%s", f);
  }
  sb_puts(&out, "\r\n");
  int rc = file_write_atomic(path, out.data, out.len, err, errlen);
  sb_free(&out);
  return rc;
}

typedef struct {
  report_epoch *rows;
  int n, max;
} read_ctx;

static void read_row(void *ctx, long epoch, const char *line, size_t len) {
  read_ctx *r = ctx;
  if (r->n >= r->max) return;
  char tmp[512];
  if (len >= sizeof tmp) return;
  memcpy(tmp, line, len);
  tmp[len] = 0;
  report_epoch *e = &r->rows[r->n];
  memset(e, 0, sizeof *e);
  e->epoch = (int)epoch;
  double *v[5] = {&e->train_loss, &e->eval_loss, &e->eval_top1, &e->eval_top5, &e->lr};
  char *s = strchr(tmp, ',');
  for (int i = 0; i < 5; i++) {
    *v[i] = NAN;
    if (!s) continue;
    *v[i] = strtod(s + 1, NULL);
    s = strchr(s + 1, ',');
  }
  r->n++;
}

int report_summary_read(const char *path, report_epoch *rows, int max, char *err, size_t errlen) {
  if (!path_exists(path)) return 0;
  size_t len;
  char *buf = file_read_all(path, &len, err, errlen);
  if (!buf) return -1;
  read_ctx r = {rows, 0, max};
  int rc = each_row(path, buf, len, read_row, &r, err, errlen);
  free(buf);
  return rc ? -1 : r.n;
}
