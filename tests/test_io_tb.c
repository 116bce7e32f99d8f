/* test_io_tb.c: TensorBoard event files. The encoder must reproduce, byte for
 * byte, records written by TensorFlow and by tensorboard_logger (public test
 * vectors); CRC-32C must match the standard check values; a file written by
 * tb_open/tb_scalar must parse back (framing, both CRCs, protobuf fields).
 *
 * With arguments it is the C side of tests/io_tb_py.sh:
 *   test_io_tb --write DIR EXPECTED
 * writes a deterministic run into DIR and the lines tools/tfevents_read.py
 * must print for it into EXPECTED. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/util.h"
#include "harness.h"
#include "train/tb.h"

static char g_dir[256];

static int bytes_eq(const strbuf *b, const char *want, size_t n) { return b->len == n && !memcmp(b->data, want, n); }

static void test_crc32c_vectors(void) {
  unsigned char z[32], o[32];
  memset(z, 0, 32);
  memset(o, 0xff, 32);
  CHECK(crc32c(0, "123456789", 9) == 0xE3069283u, "check value of \"123456789\"");
  CHECK(crc32c(0, z, 32) == 0x8A9136AAu, "32 zero bytes (RFC 3720 B.4)");
  CHECK(crc32c(0, o, 32) == 0x62A8AB43u, "32 0xff bytes (RFC 3720 B.4)");
  /* chaining equals one pass */
  CHECK(crc32c(crc32c(0, "12345", 5), "6789", 4) == 0xE3069283u, "chained");
}

/* Records from public test suites, written by other implementations. */
static void test_known_records(void) {
  strbuf b;
  sb_init(&b);
  /* TensorFlow's event_file_loader test: file_version "brain.Event:2" */
  double wt;
  memcpy(&wt, "\x00\x00\x00\x27\xe6\xb3\xd5\x41", 8);
  tb_encode_file_version(&b, wt);
  static const char tf_rec[] = "\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK\"\t\x00\x00\x00\x27\xe6\xb3\xd5\x41"
                               "\x1a\rbrain.Event:2jM\x0b\x15";
  CHECK(bytes_eq(&b, tf_rec, sizeof tf_rec - 1), "TensorFlow's file_version record");
  /* tensorboard_logger's serialization test: wall time 256.5 */
  b.len = 0;
  tb_encode_file_version(&b, 256.5);
  static const char r0[] = "\x18\x00\x00\x00\x00\x00\x00\x00\xa3\x7fK\"\t\x00\x00\x00\x00\x00\x08p@\x1a\rbrain.Event:2\xbc\x98!+";
  CHECK(bytes_eq(&b, r0, sizeof r0 - 1), "tensorboard_logger's file_version record");
  b.len = 0;
  tb_encode_scalar(&b, 256.5, 1, "v/1", 1.5f);
  static const char r1[] = "\x19\x00\x00\x00\x00\x00\x00\x00\x8b\xf1\x08(\t\x00\x00\x00\x00\x00\x08p@\x10\x01*\x0c\n\n\n\x03v/1"
                           "\x15\x00\x00\xc0?,\xec\xc0\x87";
  CHECK(bytes_eq(&b, r1, sizeof r1 - 1), "tensorboard_logger's scalar v/1");
  b.len = 0;
  tb_encode_scalar(&b, 256.5, 2, "v/22", 16.0f);
  static const char r2[] = "\x1a\x00\x00\x00\x00\x00\x00\x00\x12\x9b\xd8-\t\x00\x00\x00\x00\x00\x08p@\x10\x02*\r\n\x0b\n\x04v/22"
                           "\x15\x00\x00\x80"
                           "A\x8f\xa3\xb6\x88";
  CHECK(bytes_eq(&b, r2, sizeof r2 - 1), "tensorboard_logger's scalar v/22");
  sb_free(&b);
}

/* ---- a small reader ---- */
typedef struct {
  double wall_time;
  int64_t step;
  char file_version[32];
  char tag[128];
  float value;
  int has_value, session_status;
} event;

static int rd_varint(const unsigned char *p, size_t n, size_t *i, uint64_t *v) {
  *v = 0;
  for (int shift = 0; shift < 70; shift += 7) {
    if (*i >= n) return -1;
    unsigned char c = p[(*i)++];
    *v |= (uint64_t)(c & 0x7f) << shift;
    if (!(c & 0x80)) return 0;
  }
  return -1;
}

/* Calls back for each field; returns -1 on malformed input. */
typedef void (*field_fn)(void *ctx, int field, int wire, uint64_t v, const unsigned char *p, size_t len);
static int pb_walk(const unsigned char *p, size_t n, field_fn fn, void *ctx) {
  size_t i = 0;
  while (i < n) {
    uint64_t key, v = 0, len = 0;
    if (rd_varint(p, n, &i, &key)) return -1;
    int wire = (int)(key & 7), field = (int)(key >> 3);
    const unsigned char *d = p + i;
    if (wire == 0) {
      if (rd_varint(p, n, &i, &v)) return -1;
    } else if (wire == 1 || wire == 5) {
      len = wire == 1 ? 8 : 4;
      if (i + len > n) return -1;
      i += len;
    } else if (wire == 2) {
      if (rd_varint(p, n, &i, &len) || i + len > n) return -1;
      d = p + i;
      i += len;
    } else {
      return -1;
    }
    fn(ctx, field, wire, v, d, len);
  }
  return 0;
}

static void on_value(void *ctx, int f, int w, uint64_t v, const unsigned char *p, size_t len) {
  event *e = ctx;
  if (f == 1 && w == 2 && len < sizeof e->tag) {
    memcpy(e->tag, p, len);
    e->tag[len] = 0;
  }
  if (f == 2 && w == 5) {
    memcpy(&e->value, p, 4);
    e->has_value = 1;
  }
}
static void on_summary(void *ctx, int f, int w, uint64_t v, const unsigned char *p, size_t len) {
  if (f == 1 && w == 2) pb_walk(p, len, on_value, ctx);
}
static void on_session(void *ctx, int f, int w, uint64_t v, const unsigned char *p, size_t len) {
  if (f == 1 && w == 0) ((event *)ctx)->session_status = (int)v;
}
static void on_event(void *ctx, int f, int w, uint64_t v, const unsigned char *p, size_t len) {
  event *e = ctx;
  if (f == 1 && w == 1) memcpy(&e->wall_time, p, 8);
  if (f == 2 && w == 0) e->step = (int64_t)v;
  if (f == 3 && w == 2 && len < sizeof e->file_version) {
    memcpy(e->file_version, p, len);
    e->file_version[len] = 0;
  }
  if (f == 5 && w == 2) pb_walk(p, len, on_summary, ctx);
  if (f == 6 && w == 2) pb_walk(p, len, on_session, ctx);
}

/* Parses a whole file; returns the number of events or -1 (bad framing/CRC). */
static int read_events(const char *path, event *ev, int max) {
  size_t n;
  unsigned char *b = (unsigned char *)file_read_all(path, &n, NULL, 0);
  if (!b) return -1;
  size_t pos = 0;
  int k = 0;
  while (pos < n && k < max) {
    if (pos + 12 > n) break;
    uint64_t len = 0;
    for (int i = 7; i >= 0; i--) len = len << 8 | b[pos + i];
    uint32_t c;
    memcpy(&c, b + pos + 8, 4);
    if (c != tb_masked_crc(b + pos, 8) || pos + 16 + len > n) break;
    memcpy(&c, b + pos + 12 + len, 4);
    if (c != tb_masked_crc(b + pos + 12, len)) break;
    memset(&ev[k], 0, sizeof ev[k]);
    if (pb_walk(b + pos + 12, len, on_event, &ev[k]) != 0) break;
    k++;
    pos += 16 + len;
  }
  free(b);
  return pos == n ? k : -1;
}

static void test_write_and_read_back(void) {
  char err[512];
  double t0 = (double)time(NULL);
  tb_writer *w = tb_open(g_dir, err, sizeof err);
  CHECK(w != NULL, "tb_open: %s", err);
  if (!w) return;
  const char *base = strrchr(tb_path(w), '/') + 1;
  char prefix[64];
  snprintf(prefix, sizeof prefix, "events.out.tfevents.");
  CHECK(!strncmp(base, prefix, strlen(prefix)) && strstr(base, ".rn50"), "file name %s", base);
  char pidpart[32];
  snprintf(pidpart, sizeof pidpart, ".%d.rn50", (int)getpid());
  CHECK(strstr(base, pidpart) != NULL, "pid in file name %s", base);
  tb_scalar(w, "train/loss", 6.9077552789821368, 0);
  tb_scalar(w, "train/loss", 2.5, 1);
  tb_scalar(w, "lr", 1e-5, 1234567890123LL);
  tb_scalar(w, "neg/step", -1.0, -5);
  tb_scalar(w, "val/top1 \xc3\xa9", 76.13, 90);
  tb_session_start(w, 77);
  tb_flush(w);
  /* a second writer in the same directory and second gets another file */
  tb_writer *w2 = tb_open(g_dir, err, sizeof err);
  CHECK(w2 && strcmp(tb_path(w2), tb_path(w)), "second file: %s", w2 ? tb_path(w2) : err);
  tb_close(w2);
  char path[4096];
  snprintf(path, sizeof path, "%s", tb_path(w));
  CHECK(tb_error(w) == NULL, "no write error");
  tb_close(w);
  event ev[16];
  int n = read_events(path, ev, 16);
  CHECK(n == 7, "7 events read back (got %d)", n);
  if (n != 7) return;
  CHECK(!strcmp(ev[0].file_version, "brain.Event:2") && ev[0].step == 0, "first event is file_version");
  CHECK(ev[0].wall_time >= t0 - 1 && ev[0].wall_time <= t0 + 60, "wall time is now (%f vs %f)", ev[0].wall_time, t0);
  struct {
    const char *tag;
    float v;
    int64_t step;
  } want[] = {{"train/loss", (float)6.9077552789821368, 0}, {"train/loss", 2.5f, 1}, {"lr", 1e-5f, 1234567890123LL},
              {"neg/step", -1.0f, -5}, {"val/top1 \xc3\xa9", 76.13f, 90}};
  for (int i = 0; i < 5; i++) {
    const event *e = &ev[i + 1];
    CHECK(!strcmp(e->tag, want[i].tag) && e->has_value && e->value == want[i].v && e->step == want[i].step,
          "event %d: %s=%g @%lld", i + 1, e->tag, e->value, (long long)e->step);
    CHECK(e->wall_time >= ev[0].wall_time, "wall time monotone");
  }
  CHECK(ev[6].session_status == 1 && ev[6].step == 77 && !ev[6].has_value, "session start at 77");
  /* a corrupted byte is detected by the reader */
  size_t len;
  char *b = file_read_all(path, &len, NULL, 0);
  b[len / 2] ^= 1;
  char bad[4200];
  snprintf(bad, sizeof bad, "%s.bad", path);
  file_write_atomic(bad, b, len, NULL, 0);
  CHECK(read_events(bad, ev, 16) == -1, "corruption detected by the CRCs");
  unlink(bad);
  free(b);
}

static void test_open_errors(void) {
  char err[512] = "";
  char file[300];
  snprintf(file, sizeof file, "%s/plainfile", g_dir);
  file_write_atomic(file, "x", 1, NULL, 0);
  CHECK(tb_open(file, err, sizeof err) == NULL && strstr(err, "plainfile"), "dir is a file: %s", err);
  char sub[400];
  snprintf(sub, sizeof sub, "%s/plainfile/tb", g_dir);
  CHECK(tb_open(sub, err, sizeof err) == NULL && strstr(err, "plainfile"), "under a file: %s", err);
  unlink(file);
  /* NULL writer is a no-op */
  tb_scalar(NULL, "x", 1, 1);
  tb_flush(NULL);
  tb_close(NULL);
}

static uint32_t fbits(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
}

/* --write DIR EXPECTED */
static int write_mode(const char *dir, const char *expected) {
  char err[512];
  tb_writer *w = tb_open(dir, err, sizeof err);
  if (!w) {
    printf("FAIL %s\nRESULT 0 1\n", err);
    return 1;
  }
  FILE *x = fopen(expected, "w");
  if (!x) die("%s: cannot write", expected);
  fprintf(x, "file_version=brain.Event:2 step=0\n");
  const char *tags[4] = {"train/loss", "train/lr", "train/img_per_sec", "val/top1"};
  for (int i = 0; i < 200; i++) {
    int64_t step = (int64_t)i * 37 - 100;
    for (int t = 0; t < 4; t++) {
      double v = t == 0 ? 6.9 / (1 + 0.01 * i) : t == 1 ? 0.1 * i / 200.0 : t == 2 ? 1000.0 + i : 0.5 * i;
      tb_scalar(w, tags[t], v, step);
      fprintf(x, "scalar step=%lld tag=%s bits=%08x\n", (long long)step, tags[t], fbits((float)v));
    }
    if (i == 150) {
      tb_session_start(w, 4000);
      fprintf(x, "session_start step=4000\n");
    }
  }
  tb_scalar(w, "edge/inf", INFINITY, 1LL << 62);
  fprintf(x, "scalar step=%lld tag=edge/inf bits=%08x\n", 1LL << 62, fbits(INFINITY));
  fclose(x);
  tb_close(w);
  printf("ok   wrote %s\nRESULT 1 0\n", dir);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--write")) return write_mode(argv[2], argv[3]);
  snprintf(g_dir, sizeof g_dir, "/tmp/rn50_tb_XXXXXX");
  if (!mkdtemp(g_dir)) die("mkdtemp failed");
  RUN(test_crc32c_vectors);
  RUN(test_known_records);
  RUN(test_write_and_read_back);
  RUN(test_open_errors);
  h_remove_dir(g_dir);
  return harness_finish();
}
