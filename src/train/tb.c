/* tb.c: TensorBoard event-file writer (hand-encoded protobuf in TFRecord
 * framing; see tb.h for the wire format). */
#include "tb.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../core/util.h"

struct tb_writer {
  FILE *f;
  char path[PATH_MAX];
  char err[PATH_MAX + 128];
  strbuf rec; /* scratch for one event */
};

/* ---- protobuf pieces ---- */

static void pb_varint(strbuf *b, uint64_t v) {
  while (v >= 0x80) {
    sb_putc(b, (char)(v | 0x80));
    v >>= 7;
  }
  sb_putc(b, (char)v);
}

static void pb_key(strbuf *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }

static void pb_fixed(strbuf *b, const void *v, int n) { /* little-endian host */
  sb_append(b, v, (size_t)n);
}

static void pb_bytes(strbuf *b, int field, const void *data, size_t len) {
  pb_key(b, field, 2);
  pb_varint(b, len);
  sb_append(b, data, len);
}

static void pb_event_head(strbuf *b, double wall_time, int64_t step) {
  pb_key(b, 1, 1);
  pb_fixed(b, &wall_time, 8);
  if (step != 0) {
    pb_key(b, 2, 0);
    pb_varint(b, (uint64_t)step); /* negative: 10-byte two's complement */
  }
}

uint32_t tb_masked_crc(const void *data, size_t len) {
  uint32_t c = crc32c(0, data, len);
  return ((c >> 15) | (c << 17)) + 0xa282ead8u;
}

void tb_frame_record(strbuf *out, const void *data, size_t len) {
  unsigned char hdr[12];
  uint64_t n = len;
  for (int i = 0; i < 8; i++) hdr[i] = (unsigned char)(n >> (8 * i));
  uint32_t c = tb_masked_crc(hdr, 8);
  memcpy(hdr + 8, &c, 4);
  sb_append(out, hdr, 12);
  sb_append(out, data, len);
  c = tb_masked_crc(data, len);
  sb_append(out, &c, 4);
}

static void encode_framed(strbuf *out, const strbuf *event) { tb_frame_record(out, event->data, event->len); }

void tb_encode_file_version(strbuf *out, double wall_time) {
  strbuf e;
  sb_init(&e);
  pb_event_head(&e, wall_time, 0);
  pb_bytes(&e, 3, "brain.Event:2", 13);
  encode_framed(out, &e);
  sb_free(&e);
}

void tb_encode_scalar(strbuf *out, double wall_time, int64_t step, const char *tag, float value) {
  strbuf v, s, e;
  sb_init(&v);
  sb_init(&s);
  sb_init(&e);
  pb_bytes(&v, 1, tag, strlen(tag)); /* Value.tag */
  pb_key(&v, 2, 5);                  /* Value.simple_value */
  pb_fixed(&v, &value, 4);
  pb_bytes(&s, 1, v.data, v.len); /* Summary.value */
  pb_event_head(&e, wall_time, step);
  pb_bytes(&e, 5, s.data, s.len); /* Event.summary */
  encode_framed(out, &e);
  sb_free(&v);
  sb_free(&s);
  sb_free(&e);
}

void tb_encode_session_start(strbuf *out, double wall_time, int64_t step) {
  strbuf e;
  sb_init(&e);
  pb_event_head(&e, wall_time, step);
  static const char start[2] = {0x08, 0x01}; /* SessionLog.status = START */
  pb_bytes(&e, 6, start, 2);
  encode_framed(out, &e);
  sb_free(&e);
}

/* ---- the writer ---- */

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void put(tb_writer *w) {
  if (!w->err[0] && w->rec.len && fwrite(w->rec.data, 1, w->rec.len, w->f) != w->rec.len)
    snprintf(w->err, sizeof w->err, "%s: %s", w->path, strerror(errno));
  w->rec.len = 0;
}

tb_writer *tb_open(const char *dir, char *err, size_t errlen) {
  if (mkdir_p(dir, err, errlen) != 0) return NULL;
  char host[256] = "localhost";
  if (gethostname(host, sizeof host - 1) != 0) snprintf(host, sizeof host, "localhost");
  for (char *p = host; *p; p++)
    if (*p == '/') *p = '_';
  tb_writer *w = xcalloc(1, sizeof *w, "TensorBoard writer");
  long t = (long)time(NULL);
  int fd = -1;
  for (int k = 0; k < 100 && fd < 0; k++) {
    if (k == 0)
      snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010ld.%s.%d.rn50", dir, t, host, (int)getpid());
    else
      snprintf(w->path, sizeof w->path, "%s/events.out.tfevents.%010ld.%s.%d.%d.rn50", dir, t, host, (int)getpid(), k);
    fd = open(w->path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 && errno != EEXIST) break;
  }
  if (fd < 0 || !(w->f = fdopen(fd, "wb"))) {
    if (err && errlen) snprintf(err, errlen, "%s: %s", w->path, strerror(errno));
    if (fd >= 0) close(fd);
    free(w);
    return NULL;
  }
  sb_init(&w->rec);
  tb_encode_file_version(&w->rec, wall_now());
  put(w);
  tb_flush(w);
  if (w->err[0]) {
    if (err && errlen) snprintf(err, errlen, "%s", w->err);
    tb_close(w);
    return NULL;
  }
  return w;
}

void tb_scalar(tb_writer *w, const char *tag, double value, int64_t step) {
  if (!w) return;
  tb_encode_scalar(&w->rec, wall_now(), step, tag, (float)value);
  put(w);
}

void tb_session_start(tb_writer *w, int64_t step) {
  if (!w) return;
  tb_encode_session_start(&w->rec, wall_now(), step);
  put(w);
}

void tb_flush(tb_writer *w) {
  if (!w) return;
  if (fflush(w->f) != 0 && !w->err[0]) snprintf(w->err, sizeof w->err, "%s: %s", w->path, strerror(errno));
}

void tb_close(tb_writer *w) {
  if (!w) return;
  tb_flush(w);
  fclose(w->f);
  sb_free(&w->rec);
  free(w);
}

const char *tb_path(const tb_writer *w) { return w->path; }
const char *tb_error(const tb_writer *w) { return w->err[0] ? w->err : NULL; }
