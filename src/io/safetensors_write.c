/* safetensors_write.c: the safetensors writer. Builds the JSON header,
 * lays tensors out aligned, stamps the CRC-32C of the data section into
 * __metadata__ and streams the file to a temporary name before an atomic
 * rename, so a crash leaves either the old file or the complete new one. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/json.h"
#include "../core/util.h"
#include "safetensors.h"

typedef struct {
  char *name;
  safet_dtype dtype;
  int ndim;
  int64_t shape[SAFET_MAX_DIMS];
  size_t nbytes;
  const void *data;
  void *owned; /* the copy, when data was copied */
  size_t offset;
} wtensor;

struct safet_writer {
  wtensor *t;
  int n, cap;
  char **mk, **mv;
  int nm, mcap;
  char err[256]; /* first problem found by add(), reported by save() */
};

safet_writer *safet_writer_new(void) { return xcalloc(1, sizeof(safet_writer), "safetensors writer"); }

void safet_writer_free(safet_writer *w) {
  if (!w) return;
  for (int i = 0; i < w->n; i++) {
    free(w->t[i].name);
    free(w->t[i].owned);
  }
  for (int i = 0; i < w->nm; i++) {
    free(w->mk[i]);
    free(w->mv[i]);
  }
  free(w->t);
  free(w->mk);
  free(w->mv);
  free(w);
}

static void add(safet_writer *w, const char *name, safet_dtype dtype, int ndim, const int64_t *shape, const void *data,
                int copy) {
  if (w->err[0]) return;
  if (!name || !*name || !strcmp(name, "__metadata__")) {
    snprintf(w->err, sizeof w->err, "invalid tensor name '%s'", name ? name : "(null)");
    return;
  }
  if (safet_dtype_size(dtype) == 0) {
    snprintf(w->err, sizeof w->err, "tensor '%s': invalid dtype %d", name, (int)dtype);
    return;
  }
  if (ndim < 0 || ndim > SAFET_MAX_DIMS) {
    snprintf(w->err, sizeof w->err, "tensor '%s': %d dimensions (0 to %d supported)", name, ndim, SAFET_MAX_DIMS);
    return;
  }
  for (int i = 0; i < w->n; i++)
    if (!strcmp(w->t[i].name, name)) {
      snprintf(w->err, sizeof w->err, "duplicate tensor name '%s'", name);
      return;
    }
  size_t nbytes = safet_dtype_size(dtype);
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) {
      snprintf(w->err, sizeof w->err, "tensor '%s': negative dimension %lld", name, (long long)shape[i]);
      return;
    }
    if (shape[i] && nbytes > SIZE_MAX / 2 / (uint64_t)shape[i]) {
      snprintf(w->err, sizeof w->err, "tensor '%s': shape too large", name);
      return;
    }
    nbytes *= (size_t)shape[i];
  }
  if (w->n == w->cap) {
    w->cap = w->cap ? 2 * w->cap : 64;
    w->t = xrealloc(w->t, (size_t)w->cap * sizeof(wtensor), "safetensors writer");
  }
  wtensor *t = &w->t[w->n++];
  memset(t, 0, sizeof *t);
  t->name = xstrdup(name);
  t->dtype = dtype;
  t->ndim = ndim;
  for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
  t->nbytes = nbytes;
  if (copy && nbytes) {
    t->owned = xmalloc(nbytes, name);
    memcpy(t->owned, data, nbytes);
    t->data = t->owned;
  } else {
    t->data = data;
  }
}

void safet_writer_add(safet_writer *w, const char *name, safet_dtype dtype, int ndim, const int64_t *shape, const void *data) {
  add(w, name, dtype, ndim, shape, data, 1);
}

void safet_writer_add_nocopy(safet_writer *w, const char *name, safet_dtype dtype, int ndim, const int64_t *shape,
                             const void *data) {
  add(w, name, dtype, ndim, shape, data, 0);
}

void safet_writer_meta(safet_writer *w, const char *key, const char *value) {
  for (int i = 0; i < w->nm; i++)
    if (!strcmp(w->mk[i], key)) {
      free(w->mv[i]);
      w->mv[i] = xstrdup(value);
      return;
    }
  if (w->nm == w->mcap) {
    w->mcap = w->mcap ? 2 * w->mcap : 8;
    w->mk = xrealloc(w->mk, (size_t)w->mcap * sizeof(char *), "safetensors metadata");
    w->mv = xrealloc(w->mv, (size_t)w->mcap * sizeof(char *), "safetensors metadata");
  }
  w->mk[w->nm] = xstrdup(key);
  w->mv[w->nm] = xstrdup(value);
  w->nm++;
}

static void werr(char *err, size_t errlen, const char *fmt, ...) RN50_PRINTF(3, 4);
static void werr(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || !errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len > 0) {
    ssize_t k = write(fd, p, len);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    p += k;
    len -= (size_t)k;
  }
  return 0;
}

/* Data-section order: element size descending, insertion order within. */
static int cmp_layout(const void *a, const void *b, void *base) {
  const wtensor *t = base;
  int i = *(const int *)a, j = *(const int *)b;
  size_t si = safet_dtype_size(t[i].dtype), sj = safet_dtype_size(t[j].dtype);
  if (si != sj) return si > sj ? -1 : 1;
  return i - j;
}

int safet_writer_save(safet_writer *w, const char *path, char *err, size_t errlen) {
  if (w->err[0]) {
    werr(err, errlen, "%s: %s", path, w->err);
    return -1;
  }
  /* layout and checksum */
  int *order = xmalloc((size_t)(w->n ? w->n : 1) * sizeof(int), "safetensors writer");
  for (int i = 0; i < w->n; i++) order[i] = i;
  qsort_r(order, (size_t)w->n, sizeof(int), cmp_layout, w->t);
  size_t off = 0;
  uint32_t crc = 0;
  for (int k = 0; k < w->n; k++) {
    wtensor *t = &w->t[order[k]];
    t->offset = off;
    off += t->nbytes;
    if (t->nbytes) crc = crc32c(crc, t->data, t->nbytes);
  }
  char crc_hex[16];
  snprintf(crc_hex, sizeof crc_hex, "%08x", crc);
  safet_writer_meta(w, SAFET_CRC_KEY, crc_hex);

  /* header: metadata first, then tensors in insertion order */
  strbuf h;
  sb_init(&h);
  sb_append(&h, "\0\0\0\0\0\0\0\0", 8); /* length, filled below */
  sb_puts(&h, "{\"__metadata__\":{");
  for (int i = 0; i < w->nm; i++) {
    if (i) sb_putc(&h, ',');
    sb_json_str(&h, w->mk[i]);
    sb_putc(&h, ':');
    sb_json_str(&h, w->mv[i]);
  }
  sb_putc(&h, '}');
  for (int i = 0; i < w->n; i++) {
    const wtensor *t = &w->t[i];
    sb_putc(&h, ',');
    sb_json_str(&h, t->name);
    sb_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", safet_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++) sb_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
    sb_printf(&h, "],\"data_offsets\":[%zu,%zu]}", t->offset, t->offset + t->nbytes);
  }
  sb_putc(&h, '}');
  while (h.len % 8) sb_putc(&h, ' ');
  uint64_t n = h.len - 8;
  for (int i = 0; i < 8; i++) h.data[i] = (char)(n >> (8 * i));

  int rc = -1;
  char tmp[PATH_MAX];
  int fd = -1;
  if (n > SAFET_MAX_HEADER) {
    werr(err, errlen, "%s: header of %llu bytes exceeds the safetensors limit", path, (unsigned long long)n);
    goto out;
  }
  if (snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid()) >= (int)sizeof tmp) {
    werr(err, errlen, "%s: path too long", path);
    goto out;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    werr(err, errlen, "%s: %s", tmp, strerror(errno));
    goto out;
  }
  int ok = write_all(fd, h.data, h.len) == 0;
  for (int k = 0; k < w->n && ok; k++) {
    const wtensor *t = &w->t[order[k]];
    if (t->nbytes) ok = write_all(fd, t->data, t->nbytes) == 0;
  }
  if (!ok || fsync(fd) != 0) {
    werr(err, errlen, "%s: %s", tmp, strerror(errno));
    close(fd);
    unlink(tmp);
    goto out;
  }
  if (close(fd) != 0) {
    werr(err, errlen, "%s: %s", tmp, strerror(errno));
    unlink(tmp);
    goto out;
  }
  if (rename(tmp, path) != 0) {
    werr(err, errlen, "%s: %s", path, strerror(errno));
    unlink(tmp);
    goto out;
  }
  if (fsync_parent_dir(path) != 0) {
    werr(err, errlen, "%s: fsync of the directory failed: %s", path, strerror(errno));
    goto out;
  }
  rc = 0;
out:
  sb_free(&h);
  free(order);
  return rc;
}
