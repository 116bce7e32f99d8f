/* dataset.c: layout detection and the directory walk (ImageFolder order:
 * classes sorted, files sorted within each directory, subdirectories after
 * the files), Kaggle's flat val with its CSV of labels, class names. The
 * index file format lives in dataset_index.c. */
#include "dataset.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "../core/util.h"

static const char *split_names[DS_NSPLIT] = {"train", "val", "test"};
static const char *layout_names[] = {"none", "folder", "kaggle", "packed"};

const char *ds_split_name(int split) { return split >= 0 && split < DS_NSPLIT ? split_names[split] : "?"; }
const char *ds_layout_name(int layout) {
  return layout >= 0 && layout <= DS_LAYOUT_PACKED ? layout_names[layout] : "?";
}

#define SET_ERR(...) (err && errlen ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)

int64_t ds_add(ds_split *s, const char *path, int32_t label) {
  if (s->n == s->cap) {
    int64_t c = s->cap ? s->cap * 2 : 1024;
    s->name = xrealloc(s->name, (size_t)c * sizeof *s->name, "sample list");
    s->label = xrealloc(s->label, (size_t)c * sizeof *s->label, "sample list");
    s->shard = xrealloc(s->shard, (size_t)c * sizeof *s->shard, "sample list");
    s->offset = xrealloc(s->offset, (size_t)c * sizeof *s->offset, "sample list");
    s->bytes = xrealloc(s->bytes, (size_t)c * sizeof *s->bytes, "sample list");
    s->width = xrealloc(s->width, (size_t)c * sizeof *s->width, "sample list");
    s->height = xrealloc(s->height, (size_t)c * sizeof *s->height, "sample list");
    s->flags = xrealloc(s->flags, (size_t)c * sizeof *s->flags, "sample list");
    s->cap = c;
  }
  size_t len = strlen(path) + 1;
  if (s->pool_len + len > s->pool_cap) {
    size_t c = s->pool_cap ? s->pool_cap * 2 : 65536;
    while (c < s->pool_len + len) c *= 2;
    s->pool = xrealloc(s->pool, c, "sample names");
    s->pool_cap = c;
  }
  memcpy(s->pool + s->pool_len, path, len);
  int64_t i = s->n++;
  s->name[i] = (int64_t)s->pool_len;
  s->pool_len += len;
  s->label[i] = label;
  s->shard[i] = -1;
  s->offset[i] = 0;
  s->bytes[i] = -1;
  s->width[i] = 0;
  s->height[i] = 0;
  s->flags[i] = 0;
  return i;
}

static void split_free(ds_split *s) {
  free(s->pool);
  free(s->name);
  free(s->label);
  free(s->shard);
  free(s->offset);
  free(s->bytes);
  free(s->width);
  free(s->height);
  free(s->flags);
  for (int i = 0; i < s->nshard; i++) free(s->shard_file[i]);
  free(s->shard_file);
  memset(s, 0, sizeof *s);
}

void ds_free(dataset *ds) {
  for (int i = 0; i < ds->nclass; i++) {
    free(ds->wnid[i]);
    free(ds->name[i]);
  }
  free(ds->wnid);
  free(ds->name);
  for (int s = 0; s < DS_NSPLIT; s++) split_free(&ds->split[s]);
  for (int i = 0; i < ds->nstamp; i++) free(ds->stamps[i].path);
  free(ds->stamps);
  memset(ds, 0, sizeof *ds);
}

const char *ds_sample_path(const dataset *ds, int split, int64_t i, char *buf, size_t buflen) {
  const ds_split *s = &ds->split[split];
  snprintf(buf, buflen, "%s/%s", s->base, s->pool + s->name[i]);
  return buf;
}

int ds_class_index(const dataset *ds, const char *wnid) {
  int lo = 0, hi = ds->nclass - 1;
  while (lo <= hi) {
    int mid = (lo + hi) / 2;
    int c = strcmp(ds->wnid[mid], wnid);
    if (c == 0) return mid;
    if (c < 0) lo = mid + 1;
    else hi = mid - 1;
  }
  return -1;
}

static int64_t mtime_ns(const struct stat *st) {
  return (int64_t)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec;
}

static void stamp(dataset *ds, const char *abs) {
  struct stat st;
  if (stat(abs, &st) != 0) return;
  size_t rl = strlen(ds->root);
  const char *rel = !strncmp(abs, ds->root, rl) ? abs + rl + (abs[rl] == '/') : abs;
  ds->stamps = xrealloc(ds->stamps, (size_t)(ds->nstamp + 1) * sizeof *ds->stamps, "index stamps");
  ds->stamps[ds->nstamp].mtime_ns = mtime_ns(&st);
  ds->stamps[ds->nstamp].path = xstrdup(*rel ? rel : ".");
  ds->nstamp++;
}

static int is_image_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpg") || !strcasecmp(dot, ".png"));
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

typedef struct {
  char **files, **dirs;
  int nfiles, ndirs;
} listing;

static void listing_free(listing *l) {
  for (int i = 0; i < l->nfiles; i++) free(l->files[i]);
  for (int i = 0; i < l->ndirs; i++) free(l->dirs[i]);
  free(l->files);
  free(l->dirs);
  memset(l, 0, sizeof *l);
}

/* Sorted files and subdirectories of dir (symlinks followed, as ImageFolder does). */
static int list_dir(const char *dir, listing *l, char *err, size_t errlen) {
  memset(l, 0, sizeof *l);
  DIR *d = opendir(dir);
  if (!d) {
    SET_ERR("%s: cannot read the directory (%s)", dir, strerror(errno));
    return -1;
  }
  int capf = 0, capd = 0;
  struct dirent *e;
  char path[PATH_MAX];
  while ((e = readdir(d))) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    int type = e->d_type;
    if (type == DT_UNKNOWN || type == DT_LNK) {
      struct stat st;
      snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
      if (stat(path, &st) != 0) type = DT_REG; /* a dangling link: reported when read */
      else type = S_ISDIR(st.st_mode) ? DT_DIR : DT_REG;
    }
    if (type == DT_DIR) {
      if (l->ndirs == capd)
        l->dirs = xrealloc(l->dirs, sizeof(char *) * (size_t)(capd = capd ? capd * 2 : 64), "listing");
      l->dirs[l->ndirs++] = xstrdup(e->d_name);
    } else {
      if (l->nfiles == capf)
        l->files = xrealloc(l->files, sizeof(char *) * (size_t)(capf = capf ? capf * 2 : 1024), "listing");
      l->files[l->nfiles++] = xstrdup(e->d_name);
    }
  }
  closedir(d);
  if (l->nfiles) qsort(l->files, (size_t)l->nfiles, sizeof(char *), cmp_str);
  if (l->ndirs) qsort(l->dirs, (size_t)l->ndirs, sizeof(char *), cmp_str);
  return 0;
}

/* Adds the images under base/rel (recursively) with the given label. */
static int walk(dataset *ds, ds_split *s, const char *rel, int32_t label, int depth, char *err, size_t errlen) {
  char dir[PATH_MAX], sub[PATH_MAX];
  snprintf(dir, sizeof dir, "%s/%s", s->base, rel);
  listing l;
  if (list_dir(dir, &l, err, errlen) != 0) return -1;
  stamp(ds, dir);
  for (int i = 0; i < l.nfiles; i++) {
    if (!is_image_name(l.files[i])) {
      ds->ignored++;
      continue;
    }
    snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", l.files[i]);
    ds_add(s, sub, label);
  }
  int rc = 0;
  for (int i = 0; i < l.ndirs && rc == 0; i++) {
    if (depth >= 8) break; /* guards against symlink loops */
    snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", l.dirs[i]);
    rc = walk(ds, s, sub, label, depth + 1, err, errlen);
  }
  listing_free(&l);
  return rc;
}

/* Walks an ImageFolder split: one directory per class. */
static int walk_classes(dataset *ds, int split, char *err, size_t errlen) {
  ds_split *s = &ds->split[split];
  listing l;
  if (list_dir(s->base, &l, err, errlen) != 0) return -1;
  stamp(ds, s->base);
  int rc = 0;
  if (l.ndirs == 0) {
    SET_ERR("%s: no class directories (expected %s/<wnid>/*.JPEG)", s->base, s->base);
    rc = -1;
  }
  for (int i = 0; i < l.ndirs && rc == 0; i++) {
    int c = ds_class_index(ds, l.dirs[i]);
    if (c < 0) {
      SET_ERR("%s/%s: class '%s' is not among the %d classes of the train split", s->base, l.dirs[i], l.dirs[i],
              ds->nclass);
      rc = -1;
      break;
    }
    int64_t before = s->n;
    rc = walk(ds, s, l.dirs[i], c, 1, err, errlen);
    if (rc == 0 && s->n == before) {
      SET_ERR("%s/%s: empty class (no .JPEG, .jpg or .png files)", s->base, l.dirs[i]);
      rc = -1;
    }
  }
  if (l.nfiles && rc == 0)
    warn("%s: %d files outside class directories ignored (e.g. %s)", s->base, l.nfiles, l.files[0]);
  listing_free(&l);
  return rc;
}

/* Flat directory (Kaggle val/test, folder test): every image, unlabelled. */
static int walk_flat(dataset *ds, int split, char *err, size_t errlen) {
  return walk(ds, &ds->split[split], "", -1, 0, err, errlen);
}

static void add_class(dataset *ds, const char *wnid) {
  ds->wnid = xrealloc(ds->wnid, sizeof(char *) * (size_t)(ds->nclass + 1), "classes");
  ds->name = xrealloc(ds->name, sizeof(char *) * (size_t)(ds->nclass + 1), "classes");
  ds->wnid[ds->nclass] = xstrdup(wnid);
  ds->name[ds->nclass] = xstrdup(wnid);
  ds->nclass++;
}

/* Classes from the train split's directories (or, lacking them, val's or the synset mapping). */
static int find_classes(dataset *ds, const char *dir, char *err, size_t errlen) {
  listing l;
  if (list_dir(dir, &l, err, errlen) != 0) return -1;
  for (int i = 0; i < l.ndirs; i++) add_class(ds, l.dirs[i]);
  listing_free(&l);
  if (ds->nclass == 0) {
    SET_ERR("%s: no class directories (expected %s/<wnid>/*.JPEG)", dir, dir);
    return -1;
  }
  return 0;
}

/* LOC_synset_mapping.txt: "n01440764 tench, Tinca tinca" per line. With
 * add_missing (no train directories to list), its wnids become the classes. */
static int read_synsets(dataset *ds, const char *path, int add_missing, char *err, size_t errlen) {
  size_t len;
  char *text = file_read_all(path, &len, err, errlen);
  if (!text) return -1;
  stamp(ds, path);
  for (int pass = add_missing ? 0 : 1; pass < 2; pass++) {
    char *line = text;
    while (line && *line) {
      char *next = strchr(line, '\n');
      size_t n = next ? (size_t)(next - line) : strlen(line);
      if (n && line[n - 1] == '\r') n--;
      char wnid[256], *name = NULL;
      size_t w = 0;
      while (w < n && line[w] != ' ' && line[w] != '\t' && w < sizeof wnid - 1) {
        wnid[w] = line[w];
        w++;
      }
      wnid[w] = 0;
      if (w) {
        if (pass == 0) {
          add_class(ds, wnid);
        } else {
          int c = ds_class_index(ds, wnid);
          if (c >= 0 && w + 1 < n) {
            name = xmalloc(n - w, "class name");
            memcpy(name, line + w + 1, n - w - 1);
            name[n - w - 1] = 0;
            free(ds->name[c]);
            ds->name[c] = name;
          }
        }
      }
      line = next ? next + 1 : NULL;
    }
    if (pass == 0) {
      /* sort the new class list (names are still copies of the wnids) */
      qsort(ds->wnid, (size_t)ds->nclass, sizeof(char *), cmp_str);
      int k = 0;
      for (int i = 0; i < ds->nclass; i++) {
        if (k > 0 && !strcmp(ds->wnid[k - 1], ds->wnid[i])) {
          free(ds->wnid[i]);
          continue;
        }
        ds->wnid[k++] = ds->wnid[i];
      }
      for (int i = 0; i < ds->nclass; i++) free(ds->name[i]);
      ds->nclass = k;
      for (int i = 0; i < k; i++) ds->name[i] = xstrdup(ds->wnid[i]);
    }
  }
  free(text);
  return 0;
}

typedef struct {
  char *id;
  int label;
} val_label;

static int cmp_val_label(const void *a, const void *b) {
  return strcmp(((const val_label *)a)->id, ((const val_label *)b)->id);
}

/* LOC_val_solution.csv: "ImageId,PredictionString"; the first token is the wnid. */
static int label_kaggle_val(dataset *ds, const char *csv, char *err, size_t errlen) {
  size_t len;
  char *text = file_read_all(csv, &len, err, errlen);
  if (!text) {
    char e2[512];
    snprintf(e2, sizeof e2, "%s (the labels of the flat Kaggle val split)", err);
    SET_ERR("%s", e2);
    return -1;
  }
  stamp(ds, csv);
  val_label *v = NULL;
  int64_t nv = 0, cap = 0, lineno = 0;
  int rc = 0;
  for (char *line = text, *next; line && *line && rc == 0; line = next) {
    next = strchr(line, '\n');
    if (next) *next++ = 0;
    lineno++;
    size_t n = strlen(line);
    if (n && line[n - 1] == '\r') line[--n] = 0;
    if (lineno == 1 && !strncmp(line, "ImageId", 7)) continue;
    if (!n) continue;
    char *comma = strchr(line, ',');
    if (!comma) {
      SET_ERR("%s:%lld: expected 'ImageId,PredictionString'", csv, (long long)lineno);
      rc = -1;
      break;
    }
    *comma = 0;
    char *w = comma + 1;
    while (*w == ' ') w++;
    char *end = w;
    while (*end && *end != ' ') end++;
    *end = 0;
    int c = ds_class_index(ds, w);
    if (c < 0) {
      SET_ERR("%s:%lld: unknown class '%s'", csv, (long long)lineno, w);
      rc = -1;
      break;
    }
    if (nv == cap) v = xrealloc(v, sizeof *v * (size_t)(cap = cap ? cap * 2 : 65536), "val labels");
    v[nv].id = line;
    v[nv].label = c;
    nv++;
  }
  if (rc == 0) {
    if (nv) qsort(v, (size_t)nv, sizeof *v, cmp_val_label);
    ds_split *s = &ds->split[DS_VAL];
    for (int64_t i = 0; i < s->n; i++) {
      char id[PATH_MAX];
      snprintf(id, sizeof id, "%s", s->pool + s->name[i]);
      char *dot = strrchr(id, '.');
      if (dot) *dot = 0;
      char *slash = strrchr(id, '/');
      val_label key = {slash ? slash + 1 : id, 0};
      val_label *hit = nv ? bsearch(&key, v, (size_t)nv, sizeof *v, cmp_val_label) : NULL;
      if (!hit) {
        SET_ERR("%s/%s: no label in %s", s->base, s->pool + s->name[i], csv);
        rc = -1;
        break;
      }
      s->label[i] = hit->label;
    }
  }
  free(v);
  free(text);
  return rc;
}

static int load_index_if_fresh(dataset *ds, char *err, size_t errlen) {
  char path[PATH_MAX], e2[512];
  if (ds_index_path(ds->root, path, sizeof path) != 0 || !path_exists(path)) return 0;
  dataset tmp;
  memset(&tmp, 0, sizeof tmp);
  if (ds_index_read(&tmp, path, e2, sizeof e2) != 0) {
    warn("ignoring the index %s: %s", path, e2);
    return 0;
  }
  if (strcmp(tmp.root, ds->root) != 0 || !ds_index_fresh(&tmp)) {
    warn("the index %s is out of date (the tree changed after 'rn50 prepare'); walking %s instead", path, ds->root);
    ds_free(&tmp);
    return 0;
  }
  *ds = tmp;
  ds->from_index = 1;
  return 1;
}

int ds_open(dataset *ds, const char *root, int want, int use_index, char *err, size_t errlen) {
  memset(ds, 0, sizeof *ds);
  struct stat st;
  if (!root || !*root) {
    SET_ERR("no dataset directory given (--data ROOT)");
    return -1;
  }
  if (stat(root, &st) != 0) {
    SET_ERR("%s: %s", root, errno == ENOENT ? "no such directory" : strerror(errno));
    return -1;
  }
  if (!S_ISDIR(st.st_mode)) {
    SET_ERR("%s: not a directory (expected the dataset's root directory)", root);
    return -1;
  }
  DIR *probe = opendir(root);
  if (!probe) {
    SET_ERR("%s: cannot read the directory (%s)", root, strerror(errno));
    return -1;
  }
  closedir(probe);
  if (!realpath(root, ds->root)) snprintf(ds->root, sizeof ds->root, "%s", root);
  char p[PATH_MAX];
  snprintf(p, sizeof p, "%s/rn50pack.idx", ds->root);
  if (path_exists(p)) {
    char absroot[PATH_MAX];
    snprintf(absroot, sizeof absroot, "%s", ds->root);
    if (ds_index_read(ds, p, err, errlen) != 0) return -1;
    snprintf(ds->root, sizeof ds->root, "%s", absroot);
    ds->layout = DS_LAYOUT_PACKED;
    for (int s = 0; s < DS_NSPLIT; s++) memcpy(ds->split[s].base, ds->root, sizeof ds->root);
    ds->from_index = 1;
    return 0;
  }
  char kag[PATH_MAX], tr[PATH_MAX], va[PATH_MAX], te[PATH_MAX];
  snprintf(kag, sizeof kag, "%s/ILSVRC/Data/CLS-LOC", ds->root);
  int layout = DS_LAYOUT_NONE;
  if (path_is_dir(kag)) {
    layout = DS_LAYOUT_KAGGLE;
    snprintf(tr, sizeof tr, "%s/train", kag);
    snprintf(va, sizeof va, "%s/val", kag);
    snprintf(te, sizeof te, "%s/test", kag);
  } else {
    snprintf(tr, sizeof tr, "%s/train", ds->root);
    snprintf(va, sizeof va, "%s/val", ds->root);
    snprintf(te, sizeof te, "%s/test", ds->root);
    if (path_is_dir(tr) || path_is_dir(va)) layout = DS_LAYOUT_FOLDER;
  }
  if (layout == DS_LAYOUT_NONE) {
    listing l;
    int split_like = 0;
    if (list_dir(ds->root, &l, NULL, 0) == 0) {
      for (int i = 0; i < l.ndirs && !split_like; i++)
        split_like = l.dirs[i][0] == 'n' && strlen(l.dirs[i]) == 9 && strspn(l.dirs[i] + 1, "0123456789") == 8;
      listing_free(&l);
    }
    SET_ERR(
        "%s: unknown dataset layout: expected ROOT/train/<wnid>/*.JPEG and ROOT/val/<wnid>/*.JPEG "
        "(ImageFolder), ROOT/ILSVRC/Data/CLS-LOC/{train,val} (Kaggle), or a directory written by 'rn50 pack'%s",
        root, split_like ? " (this looks like one split's class directories: give its parent as ROOT)" : "");
    return -1;
  }
  if (use_index && load_index_if_fresh(ds, err, errlen)) {
    /* the index holds every split; drop nothing */
    return 0;
  }
  ds->layout = layout;
  snprintf(ds->split[DS_TRAIN].base, PATH_MAX, "%s", tr);
  snprintf(ds->split[DS_VAL].base, PATH_MAX, "%s", va);
  snprintf(ds->split[DS_TEST].base, PATH_MAX, "%s", te);
  for (int s = 0; s < DS_NSPLIT; s++) ds->split[s].present = path_is_dir(ds->split[s].base);
  char synsets[PATH_MAX];
  snprintf(synsets, sizeof synsets, "%s/LOC_synset_mapping.txt", ds->root);
  int rc = 0;
  if (ds->split[DS_TRAIN].present) rc = find_classes(ds, tr, err, errlen);
  else if (layout == DS_LAYOUT_FOLDER) rc = find_classes(ds, va, err, errlen);
  if (rc == 0 && path_exists(synsets)) rc = read_synsets(ds, synsets, ds->nclass == 0, err, errlen);
  if (rc == 0 && ds->nclass == 0) {
    SET_ERR("%s: no classes: neither %s nor %s exists", root, tr, synsets);
    rc = -1;
  }
  if (rc == 0 && (want & (1 << DS_TRAIN)) && ds->split[DS_TRAIN].present) rc = walk_classes(ds, DS_TRAIN, err, errlen);
  if (rc == 0 && (want & (1 << DS_VAL)) && ds->split[DS_VAL].present) {
    if (layout == DS_LAYOUT_FOLDER) {
      rc = walk_classes(ds, DS_VAL, err, errlen);
    } else {
      char csv[PATH_MAX];
      snprintf(csv, sizeof csv, "%s/LOC_val_solution.csv", ds->root);
      rc = walk_flat(ds, DS_VAL, err, errlen);
      if (rc == 0) rc = label_kaggle_val(ds, csv, err, errlen);
    }
  }
  if (rc == 0 && (want & (1 << DS_TEST)) && ds->split[DS_TEST].present) rc = walk_flat(ds, DS_TEST, err, errlen);
  if (rc != 0) {
    ds_free(ds);
    return -1;
  }
  return 0;
}
