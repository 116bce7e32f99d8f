/* pack.c: see pack.h. A run: open the source, fix the plan (what goes in
 * which shard; OUT/pack-plan.txt refuses to mix two different packs), write
 * each missing shard chunk by chunk (images prepared in parallel, appended in
 * order), then the index. Each shard has a small side file
 * (OUT/<split>-NNNNNN.idx) written after it, which marks it complete. */
#include "pack.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/rng.h"
#include "../core/util.h"
#include "dataset.h"
#include "image.h"
#include "progress.h"
#include "transform.h"

#define SET_ERR(...) (err && errlen ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)
#define CHUNK 128

/* One prepared image. */
typedef struct {
  uint8_t *data; /* JPEG bytes (malloc'd) */
  size_t len;
  int reencoded;
  int w, h, flags;
  char why[256];
} item;

typedef struct {
  img_decoder *dec;
  uint8_t *src; /* source file */
  size_t cap;
} ctx;

static void tar_header(uint8_t h[512], const char *name, size_t size) {
  memset(h, 0, 512);
  snprintf((char *)h, 100, "%s", name);
  memcpy(h + 100, "0000644", 8);
  memcpy(h + 108, "0000000", 8);
  memcpy(h + 116, "0000000", 8);
  snprintf((char *)h + 124, 12, "%011llo", (unsigned long long)size);
  snprintf((char *)h + 136, 12, "%011o", 0); /* mtime 0: resumed packs stay byte-identical */
  memset(h + 148, ' ', 8);
  h[156] = '0';
  memcpy(h + 257, "ustar", 6);
  memcpy(h + 263, "00", 2);
  unsigned sum = 0;
  for (int i = 0; i < 512; i++) sum += h[i];
  snprintf((char *)h + 148, 8, "%06o", sum);
  h[155] = ' ';
}

/* WebDataset key: the file's stem, dots replaced (they separate key and extension). */
static void sample_key(const char *name, char *key, size_t len) {
  const char *b = strrchr(name, '/');
  b = b ? b + 1 : name;
  snprintf(key, len, "%.90s", b);
  char *dot = strrchr(key, '.');
  if (dot) *dot = 0;
  for (char *p = key; *p; p++)
    if (*p == '.' || *p == ' ') *p = '_';
}

static int write_all(int fd, const void *data, size_t len) {
  const char *p = data;
  while (len) {
    ssize_t n = write(fd, p, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return -1;
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Reads, checks and (if needed) re-encodes sample idx of split sp. */
static void prepare_item(const pack_opts *o, const dataset *ds, int split, int64_t idx, ctx *c, item *it) {
  memset(it, 0, sizeof *it);
  char path[PATH_MAX];
  ds_sample_path(ds, split, idx, path, sizeof path);
  size_t len = 0;
  img_info info;
  int st = img_read_file(path, &c->src, &c->cap, &len, it->why, sizeof it->why);
  if (st == IMG_OK) st = img_open(c->dec, c->src, len, &info, it->why, sizeof it->why);
  if (st == IMG_OK) st = img_verify(c->dec, it->why, sizeof it->why);
  if (st != IMG_OK) {
    it->flags = DS_FLAGS_MAKE_BAD(st);
    return;
  }
  int W = info.width, H = info.height, L = W > H ? W : H;
  it->flags = DS_CHECKED | (info.format == IMG_FMT_PNG ? DS_PNG : 0) |
              (info.colorspace == IMG_CS_CMYK || info.colorspace == IMG_CS_YCCK ? DS_CMYK : 0) |
              (info.colorspace == IMG_CS_GRAY ? DS_GRAY : 0);
  if (info.format == IMG_FMT_JPEG && info.plain && (o->max_side <= 0 || L <= o->max_side)) {
    it->data = xmalloc(len, "pack image"); /* copied as it is */
    memcpy(it->data, c->src, len);
    it->len = len;
    it->w = W;
    it->h = H;
    return;
  }
  int num = 8;
  if (info.format == IMG_FMT_JPEG && o->max_side > 0)
    for (int n = 1; n < 8; n *= 2) {
      int sw, sh;
      img_scaled_size(c->dec, n, &sw, &sh);
      if ((sw > sh ? sw : sh) >= o->max_side) {
        num = n;
        break;
      }
    }
  int sw, sh, px0, pw;
  img_scaled_size(c->dec, num, &sw, &sh);
  uint8_t *rgb = NULL, *fit = NULL;
  size_t rcap = 0;
  st = img_decode(c->dec, num, 0, 3, 0, 0, sw, sh, &rgb, &rcap, &px0, &pw, it->why, sizeof it->why);
  int fw = sw, fh = sh;
  if (st == IMG_OK && tf_fit(rgb, sw, sh, o->max_side, &fit, &fw, &fh) != 0) {
    snprintf(it->why, sizeof it->why, "out of memory");
    st = IMG_CORRUPT;
  }
  if (st == IMG_OK && img_encode_jpeg(fit, fw, fh, o->quality, &it->data, &it->len, it->why, sizeof it->why) != 0)
    st = IMG_CORRUPT;
  free(rgb);
  free(fit);
  if (st != IMG_OK) {
    it->flags = DS_FLAGS_MAKE_BAD(st);
    return;
  }
  it->reencoded = 1;
  it->w = fw;
  it->h = fh;
}

typedef struct {
  int64_t sample, offset, bytes;
  int w, h, flags;
} shard_entry;

static int read_shard_idx(const char *path, int64_t expect, shard_entry *e) {
  FILE *f = fopen(path, "r");
  if (!f) return -1;
  long long n = -1;
  int rc = fscanf(f, "rn50-shard 1 %lld\n", &n) == 1 && n == expect ? 0 : -1;
  for (int64_t i = 0; rc == 0 && i < n; i++) {
    long long s, off, b;
    if (fscanf(f, "%lld %lld %lld %d %d %d\n", &s, &off, &b, &e[i].w, &e[i].h, &e[i].flags) != 6) rc = -1;
    e[i].sample = s;
    e[i].offset = off;
    e[i].bytes = b;
  }
  char end[8] = "";
  if (rc == 0 && (fscanf(f, "%7s", end) != 1 || strcmp(end, "end") != 0)) rc = -1;
  fclose(f);
  return rc;
}

static int fsync_close(int fd) {
  int rc = fsync(fd);
  if (close(fd) != 0) rc = -1;
  return rc;
}

/* A pack killed while writing leaves a shard's .part file or an index's
 * temporary (name.tmp.PID); the resumed pack rewrites those files, so the
 * leftovers of the dead process are removed first. */
static void remove_stale_temps(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  char p[PATH_MAX];
  while ((e = readdir(d))) {
    size_t n = strlen(e->d_name);
    if (strstr(e->d_name, ".tmp.") || (n > 5 && !strcmp(e->d_name + n - 5, ".part"))) {
      snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
      unlink(p);
    }
  }
  closedir(d);
}

/* Writes shard file `name` (+ its .idx) with samples order[0..n). */
static int write_shard(const pack_opts *o, const dataset *ds, int split, const int64_t *order, int64_t n,
                       const char *name, ctx *ctxs, int nthreads, shard_entry *e, progress *prog, int64_t *done,
                       int64_t stats[4], char *err, size_t errlen) {
  char tarp[PATH_MAX], part[PATH_MAX + 8], idxp[PATH_MAX];
  snprintf(tarp, sizeof tarp, "%s/%s.tar", o->out, name);
  snprintf(idxp, sizeof idxp, "%s/%s.idx", o->out, name);
  snprintf(part, sizeof part, "%s.part", tarp);
  int fd = open(part, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    SET_ERR("%s: %s", part, strerror(errno));
    return -1;
  }
  const ds_split *sp = &ds->split[split];
  item *items = xcalloc(CHUNK, sizeof(item), "pack chunk");
  int64_t off = 0;
  int rc = 0;
  static const uint8_t zeros[1024];
  for (int64_t c0 = 0; c0 < n && rc == 0; c0 += CHUNK) {
    int m = (int)MIN((int64_t)CHUNK, n - c0);
#pragma omp parallel for num_threads(nthreads) schedule(dynamic, 1)
    for (int i = 0; i < m; i++) prepare_item(o, ds, split, order[c0 + i], &ctxs[omp_get_thread_num()], &items[i]);
    for (int i = 0; i < m && rc == 0; i++) {
      item *it = &items[i];
      int64_t s = order[c0 + i];
      shard_entry *en = &e[c0 + i];
      en->sample = s;
      en->w = it->w;
      en->h = it->h;
      en->flags = it->flags;
      en->offset = 0;
      en->bytes = 0;
      if (it->flags & DS_BAD) {
        char p[PATH_MAX];
        warn("bad image %s: %s; left out of the pack", ds_sample_path(ds, split, s, p, sizeof p), it->why);
        stats[3]++;
        continue;
      }
      char key[128], nm[160], cls[32];
      uint8_t h[512];
      sample_key(ds_sample_name(sp, s), key, sizeof key);
      snprintf(nm, sizeof nm, "%s.jpg", key);
      tar_header(h, nm, it->len);
      size_t pad = (512 - it->len % 512) % 512;
      en->offset = off + 512;
      en->bytes = (int64_t)it->len;
      int cl = snprintf(cls, sizeof cls, "%d", sp->label[s]);
      uint8_t h2[512];
      snprintf(nm, sizeof nm, "%s.cls", key);
      tar_header(h2, nm, (size_t)cl);
      if (write_all(fd, h, 512) || write_all(fd, it->data, it->len) || write_all(fd, zeros, pad) ||
          write_all(fd, h2, 512) || write_all(fd, cls, (size_t)cl) || write_all(fd, zeros, 512 - (size_t)cl)) {
        SET_ERR("%s: write failed (%s)", part, strerror(errno));
        rc = -1;
      }
      off += 512 + (int64_t)it->len + (int64_t)pad + 1024;
      stats[it->reencoded ? 1 : 0]++;
    }
    for (int i = 0; i < m; i++) free(items[i].data);
    *done += m;
    progress_update(prog, *done);
  }
  free(items);
  if (rc == 0 && write_all(fd, zeros, 1024) != 0) {
    SET_ERR("%s: write failed (%s)", part, strerror(errno));
    rc = -1;
  }
  if (fsync_close(fd) != 0 && rc == 0) {
    SET_ERR("%s: write failed (%s)", part, strerror(errno));
    rc = -1;
  }
  if (rc == 0 && rename(part, tarp) != 0) {
    SET_ERR("%s: %s", tarp, strerror(errno));
    rc = -1;
  }
  if (rc != 0) {
    unlink(part);
    return -1;
  }
  /* the side index, written last, marks the shard complete */
  size_t cap = (size_t)n * 96 + 64, len = 0;
  char *txt = xmalloc(cap, "shard index");
  len += (size_t)snprintf(txt, cap, "rn50-shard 1 %lld\n", (long long)n);
  for (int64_t i = 0; i < n; i++)
    len += (size_t)snprintf(txt + len, cap - len, "%lld %lld %lld %d %d %d\n", (long long)e[i].sample,
                            (long long)e[i].offset, (long long)e[i].bytes, e[i].w, e[i].h, e[i].flags);
  len += (size_t)snprintf(txt + len, cap - len, "end\n");
  rc = file_write_atomic(idxp, txt, len, err, errlen);
  free(txt);
  return rc;
}

static char *plan_text(const pack_opts *o, const dataset *ds) {
  size_t cap = 4096, len = 0;
  char *t = xmalloc(cap, "pack plan");
  len += (size_t)snprintf(t + len, cap - len,
                          "rn50-pack-plan 1\nsource %s\nmax_side %d\nquality %d\nshard_size %d\nseed %llu\n", ds->root,
                          o->max_side, o->quality, o->shard_size, (unsigned long long)o->seed);
  for (int s = DS_TRAIN; s <= DS_VAL; s++) {
    const ds_split *sp = &ds->split[s];
    uint64_t h = 0;
    for (int64_t i = 0; i < sp->n; i++) {
      const char *nm = ds_sample_name(sp, i);
      h = hash64(nm, strlen(nm), h);
      h = hash64(&sp->label[i], sizeof sp->label[i], h);
    }
    len += (size_t)snprintf(t + len, cap - len, "split %s %lld %016llx\n", ds_split_name(s), (long long)sp->n,
                            (unsigned long long)h);
  }
  return t;
}

int pack_run(const pack_opts *o, char *err, size_t errlen) {
  dataset ds;
  if (ds_open(&ds, o->root, (1 << DS_TRAIN) | (1 << DS_VAL), 1, err, errlen) != 0) return -1;
  if (ds.layout == DS_LAYOUT_PACKED) {
    SET_ERR("%s is already a packed dataset", o->root);
    ds_free(&ds);
    return -1;
  }
  if (mkdir_p(o->out, err, errlen) != 0) {
    ds_free(&ds);
    return -1;
  }
  char outabs[PATH_MAX], p[PATH_MAX];
  if (!realpath(o->out, outabs)) snprintf(outabs, sizeof outabs, "%s", o->out);
  char *plan = plan_text(o, &ds);
  snprintf(p, sizeof p, "%s/pack-plan.txt", o->out);
  int rc = 0;
  if (path_exists(p)) {
    size_t n;
    char *old = file_read_all(p, &n, err, errlen);
    if (!old || strcmp(old, plan) != 0) {
      SET_ERR("%s already holds a pack of other data or with other options (see %s); use another --out or delete it",
              o->out, p);
      rc = -1;
    }
    free(old);
  } else {
    rc = file_write_atomic(p, plan, strlen(plan), err, errlen);
  }
  free(plan);
  snprintf(p, sizeof p, "%s/rn50pack.idx", o->out);
  if (rc == 0 && path_exists(p)) {
    fprintf(stderr, "rn50 pack: %s is complete already\n", o->out);
    ds_free(&ds);
    return 0;
  }
  if (rc != 0) {
    ds_free(&ds);
    return -1;
  }
  remove_stale_temps(o->out);
  int nthreads = o->threads > 0 ? o->threads : cpu_thread_count();
  ctx *ctxs = xcalloc((size_t)nthreads, sizeof(ctx), "pack contexts");
  for (int i = 0; i < nthreads; i++) {
    ctxs[i].dec = img_decoder_new();
    if (!ctxs[i].dec) die("out of memory creating a decoder");
  }
  int64_t total = ds.split[DS_TRAIN].n + ds.split[DS_VAL].n;
  progress prog;
  progress_init(&prog, "pack", total);
  int64_t done = 0, stats[4] = {0, 0, 0, 0}; /* copied, re-encoded, (unused), bad */
  int written = 0, reused = 0;
  dataset out;
  memset(&out, 0, sizeof out);
  snprintf(out.root, sizeof out.root, "%s", outabs);
  out.layout = DS_LAYOUT_PACKED;
  out.nclass = ds.nclass;
  out.wnid = xcalloc((size_t)ds.nclass, sizeof(char *), "classes");
  out.name = xcalloc((size_t)ds.nclass, sizeof(char *), "classes");
  for (int c = 0; c < ds.nclass; c++) {
    out.wnid[c] = xstrdup(ds.wnid[c]);
    out.name[c] = xstrdup(ds.name[c]);
  }
  for (int s = DS_TRAIN; s <= DS_VAL && rc == 0; s++) {
    const ds_split *sp = &ds.split[s];
    ds_split *op = &out.split[s];
    snprintf(op->base, sizeof op->base, "%s", outabs);
    op->present = sp->present && sp->n > 0;
    if (!op->present) continue;
    for (int64_t i = 0; i < sp->n; i++) ds_add(op, ds_sample_name(sp, i), sp->label[i]);
    int64_t *order = xmalloc((size_t)sp->n * sizeof(int64_t), "pack order");
    for (int64_t i = 0; i < sp->n; i++) order[i] = i;
    if (s == DS_TRAIN) {
      rng_stream r = rng_stream_make(hash64("rn50-pack", 9, o->seed), 0);
      for (int64_t i = sp->n - 1; i > 0; i--) {
        int64_t j = (int64_t)rng_next_below(&r, (uint64_t)i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
      }
    }
    int nshard = (int)((sp->n + o->shard_size - 1) / o->shard_size);
    op->nshard = nshard;
    op->shard_file = xcalloc((size_t)nshard, sizeof(char *), "shard list");
    shard_entry *e = xmalloc((size_t)o->shard_size * sizeof *e, "shard entries");
    for (int k = 0; k < nshard && rc == 0; k++) {
      char name[64], tarp[PATH_MAX], idxp[PATH_MAX];
      snprintf(name, sizeof name, "%s-%06d", ds_split_name(s), k);
      snprintf(tarp, sizeof tarp, "%s/%s.tar", o->out, name);
      snprintf(idxp, sizeof idxp, "%s/%s.idx", o->out, name);
      op->shard_file[k] = xmalloc(strlen(name) + 5, "shard name");
      sprintf(op->shard_file[k], "%s.tar", name);
      int64_t first = (int64_t)k * o->shard_size, n = MIN((int64_t)o->shard_size, sp->n - first);
      if (path_exists(tarp) && read_shard_idx(idxp, n, e) == 0) {
        reused++;
        done += n;
        progress_update(&prog, done);
      } else {
        if (o->stop_after > 0 && written >= o->stop_after) {
          rc = 3;
          break;
        }
        rc = write_shard(o, &ds, s, order + first, n, name, ctxs, nthreads, e, &prog, &done, stats, err, errlen);
        written++;
      }
      for (int64_t i = 0; i < n && rc == 0; i++) {
        int64_t j = e[i].sample;
        if (j < 0 || j >= sp->n) {
          SET_ERR("%s: bad entry; delete it and run again", idxp);
          rc = -1;
          break;
        }
        op->shard[j] = k;
        op->offset[j] = e[i].offset;
        op->bytes[j] = e[i].bytes;
        op->width[j] = e[i].w;
        op->height[j] = e[i].h;
        op->flags[j] = (uint8_t)e[i].flags;
      }
    }
    free(e);
    free(order);
  }
  if (rc == 0) {
    progress_end(&prog, done);
    rc = ds_index_write(&out, p, err, errlen);
    if (rc == 0) {
      fprintf(stderr, "rn50 pack: %lld images in %s: %d shards written, %d already there", (long long)total, o->out,
              written, reused);
      if (written)
        fprintf(stderr, "; %lld copied as they were, %lld re-encoded, %lld bad ones left out", (long long)stats[0],
                (long long)stats[1], (long long)stats[3]);
      fputc('\n', stderr);
    }
  } else if (rc == 3) {
    fprintf(stderr, "%srn50 pack: stopped after %d shards (RN50_PACK_STOP_AFTER)\n",
            prog.tty && !prog.quiet ? "\n" : "", written);
  }
  for (int i = 0; i < nthreads; i++) {
    img_decoder_free(ctxs[i].dec);
    free(ctxs[i].src);
  }
  free(ctxs);
  ds_free(&out);
  ds_free(&ds);
  return rc;
}
