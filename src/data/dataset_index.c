/* dataset_index.c: the index file that `rn50 prepare` writes (and `rn50
 * pack` writes as rn50pack.idx): a plain text file, one sample per line, so
 * that a 1.3M-image dataset opens in about a second and can be inspected
 * with grep. Format:
 *   rn50-index 1
 *   layout folder|kaggle|packed
 *   root /abs/path
 *   classes N            then N lines  wnid TAB name
 *   stamps M             then M lines  mtime_ns TAB path (relative to root)
 *   split NAME PRESENT N NSHARD BASE   then NSHARD lines (shard files), then
 *       N lines  label TAB flags TAB bytes TAB width TAB height TAB shard TAB offset TAB name
 *   end
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../core/util.h"
#include "dataset.h"

#define SET_ERR(...) (err && errlen ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)

int ds_index_path(const char *root_abs, char *out, size_t outlen) {
  const char *dir = getenv("RN50_CACHE");
  char buf[PATH_MAX];
  if (!dir || !*dir) {
    const char *x = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
    if (x && *x) snprintf(buf, sizeof buf, "%s/rn50", x);
    else if (home && *home) snprintf(buf, sizeof buf, "%s/.cache/rn50", home);
    else snprintf(buf, sizeof buf, "/tmp/rn50-cache");
    dir = buf;
  }
  uint64_t h = hash64(root_abs, strlen(root_abs), 0);
  int n = snprintf(out, outlen, "%s/index-%016llx.txt", dir, (unsigned long long)h);
  return n > 0 && (size_t)n < outlen ? 0 : -1;
}

static const char *base_rel(const dataset *ds, const char *base) {
  size_t rl = strlen(ds->root);
  if (!strncmp(base, ds->root, rl) && (base[rl] == '/' || base[rl] == 0)) return base[rl] ? base + rl + 1 : ".";
  return base;
}

int ds_index_write(const dataset *ds, const char *path, char *err, size_t errlen) {
  char dir[PATH_MAX], tmp[PATH_MAX];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  if (slash && slash != dir) {
    *slash = 0;
    if (mkdir_p(dir, err, errlen) != 0) return -1;
  }
  snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
  FILE *f = fopen(tmp, "w");
  if (!f) {
    SET_ERR("%s: %s", tmp, strerror(errno));
    return -1;
  }
  static char big[1 << 20];
  setvbuf(f, big, _IOFBF, sizeof big);
  fprintf(f, "rn50-index 1\nlayout %s\nroot %s\nclasses %d\n", ds_layout_name(ds->layout), ds->root, ds->nclass);
  for (int c = 0; c < ds->nclass; c++) fprintf(f, "%s\t%s\n", ds->wnid[c], ds->name[c]);
  fprintf(f, "stamps %d\n", ds->nstamp);
  for (int i = 0; i < ds->nstamp; i++) fprintf(f, "%lld\t%s\n", (long long)ds->stamps[i].mtime_ns, ds->stamps[i].path);
  for (int s = 0; s < DS_NSPLIT; s++) {
    const ds_split *sp = &ds->split[s];
    fprintf(f, "split %s %d %lld %d %s\n", ds_split_name(s), sp->present, (long long)sp->n, sp->nshard,
            sp->base[0] ? base_rel(ds, sp->base) : ".");
    for (int k = 0; k < sp->nshard; k++) fprintf(f, "%s\n", sp->shard_file[k]);
    for (int64_t i = 0; i < sp->n; i++)
      fprintf(f, "%d\t%d\t%lld\t%d\t%d\t%d\t%lld\t%s\n", sp->label[i], sp->flags[i], (long long)sp->bytes[i],
              sp->width[i], sp->height[i], sp->shard[i], (long long)sp->offset[i], sp->pool + sp->name[i]);
  }
  fprintf(f, "end\n");
  int bad = ferror(f) != 0;
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) bad = 1;
  int e = errno;
  if (fclose(f) != 0) bad = 1;
  if (bad) {
    SET_ERR("%s: write failed (%s)", tmp, strerror(e));
    unlink(tmp);
    return -1;
  }
  if (rename(tmp, path) != 0) {
    SET_ERR("%s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  fsync_parent_dir(path);
  return 0;
}

/* A cursor over the file's lines. */
typedef struct {
  char *p, *end;
  int64_t lineno;
} cursor;

static char *next_line(cursor *c) {
  if (c->p >= c->end) return NULL;
  char *line = c->p;
  char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
  if (nl) {
    *nl = 0;
    c->p = nl + 1;
  } else {
    c->p = c->end;
  }
  c->lineno++;
  return line;
}

static int parse_fail(const char *path, cursor *c, const char *what, char *err, size_t errlen) {
  SET_ERR("%s:%lld: bad index file (%s); delete it and run 'rn50 prepare' again", path, (long long)c->lineno, what);
  return -1;
}

int ds_index_read(dataset *ds, const char *path, char *err, size_t errlen) {
  size_t len;
  char *text = file_read_all(path, &len, err, errlen);
  if (!text) return -1;
  cursor c = {text, text + len, 0};
  char *line = next_line(&c);
  int rc = -1;
  char word[64], word2[64];
  if (!line || strcmp(line, "rn50-index 1") != 0) {
    parse_fail(path, &c, "not an rn50 index", err, errlen);
    goto done;
  }
  line = next_line(&c);
  if (!line || sscanf(line, "layout %63s", word) != 1) {
    parse_fail(path, &c, "layout", err, errlen);
    goto done;
  }
  for (int l = DS_LAYOUT_FOLDER; l <= DS_LAYOUT_PACKED; l++)
    if (!strcmp(word, ds_layout_name(l))) ds->layout = l;
  line = next_line(&c);
  if (!line || strncmp(line, "root ", 5) != 0) {
    parse_fail(path, &c, "root", err, errlen);
    goto done;
  }
  snprintf(ds->root, sizeof ds->root, "%s", line + 5);
  int nclass;
  line = next_line(&c);
  if (!line || sscanf(line, "classes %d", &nclass) != 1 || nclass < 0) {
    parse_fail(path, &c, "classes", err, errlen);
    goto done;
  }
  ds->wnid = xcalloc((size_t)nclass + 1, sizeof(char *), "classes");
  ds->name = xcalloc((size_t)nclass + 1, sizeof(char *), "classes");
  for (int i = 0; i < nclass; i++) {
    line = next_line(&c);
    char *tab = line ? strchr(line, '\t') : NULL;
    if (!tab) {
      parse_fail(path, &c, "class line", err, errlen);
      goto done;
    }
    *tab = 0;
    ds->wnid[i] = xstrdup(line);
    ds->name[i] = xstrdup(tab + 1);
    ds->nclass = i + 1;
  }
  int nstamp;
  line = next_line(&c);
  if (!line || sscanf(line, "stamps %d", &nstamp) != 1 || nstamp < 0) {
    parse_fail(path, &c, "stamps", err, errlen);
    goto done;
  }
  ds->stamps = xcalloc((size_t)nstamp + 1, sizeof *ds->stamps, "index stamps");
  for (int i = 0; i < nstamp; i++) {
    line = next_line(&c);
    char *tab = line ? strchr(line, '\t') : NULL;
    if (!tab) {
      parse_fail(path, &c, "stamp line", err, errlen);
      goto done;
    }
    ds->stamps[i].mtime_ns = strtoll(line, NULL, 10);
    ds->stamps[i].path = xstrdup(tab + 1);
    ds->nstamp = i + 1;
  }
  for (int s = 0; s < DS_NSPLIT; s++) {
    ds_split *sp = &ds->split[s];
    long long n;
    int present, nshard, off = 0;
    line = next_line(&c);
    if (!line || sscanf(line, "split %63s %d %lld %d %n", word2, &present, &n, &nshard, &off) != 4 || off == 0 ||
        strcmp(word2, ds_split_name(s)) != 0 || n < 0 || nshard < 0) {
      parse_fail(path, &c, "split header", err, errlen);
      goto done;
    }
    const char *base = line + off;
    sp->present = present;
    char joined[PATH_MAX];
    if (base[0] == '/') snprintf(joined, sizeof joined, "%s", base);
    else if (!strcmp(base, ".")) snprintf(joined, sizeof joined, "%s", ds->root);
    else snprintf(joined, sizeof joined, "%s/%s", ds->root, base);
    memcpy(sp->base, joined, sizeof joined);
    sp->shard_file = xcalloc((size_t)nshard + 1, sizeof(char *), "shard list");
    for (int k = 0; k < nshard; k++) {
      line = next_line(&c);
      if (!line) {
        parse_fail(path, &c, "shard line", err, errlen);
        goto done;
      }
      sp->shard_file[k] = xstrdup(line);
      sp->nshard = k + 1;
    }
    for (long long i = 0; i < n; i++) {
      line = next_line(&c);
      if (!line) {
        parse_fail(path, &c, "missing sample lines", err, errlen);
        goto done;
      }
      char *q = line, *e;
      long long v[7];
      for (int k = 0; k < 7; k++) {
        v[k] = strtoll(q, &e, 10);
        if (e == q || *e != '\t') {
          parse_fail(path, &c, "sample line", err, errlen);
          goto done;
        }
        q = e + 1;
      }
      if (v[0] < -1 || v[0] >= nclass || v[5] < -1 || v[5] >= nshard) {
        parse_fail(path, &c, "label or shard out of range", err, errlen);
        goto done;
      }
      int64_t j = ds_add(sp, q, (int32_t)v[0]);
      sp->flags[j] = (uint8_t)v[1];
      sp->bytes[j] = v[2];
      sp->width[j] = (int32_t)v[3];
      sp->height[j] = (int32_t)v[4];
      sp->shard[j] = (int32_t)v[5];
      sp->offset[j] = v[6];
    }
  }
  line = next_line(&c);
  if (!line || strcmp(line, "end") != 0) {
    parse_fail(path, &c, "no end line: the file is truncated", err, errlen);
    goto done;
  }
  rc = 0;
done:
  free(text);
  if (rc != 0) ds_free(ds);
  return rc;
}

int ds_index_fresh(const dataset *ds) {
  for (int i = 0; i < ds->nstamp; i++) {
    char p[PATH_MAX];
    const char *rel = ds->stamps[i].path;
    if (rel[0] == '/') snprintf(p, sizeof p, "%s", rel);
    else snprintf(p, sizeof p, "%s/%s", ds->root, rel);
    struct stat st;
    if (stat(p, &st) != 0) return 0;
    if ((int64_t)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec != ds->stamps[i].mtime_ns) return 0;
  }
  return 1;
}
