/* prepare.c: see prepare.h. Every train/val file is read once and decoded
 * at 1/8 scale (which still walks every entropy-coded coefficient, so
 * truncation and corruption anywhere are found) on all cores. */
#include "prepare.h"

#include <limits.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../core/util.h"
#include "dataset.h"
#include "image.h"
#include "progress.h"

#define SET_ERR(...) (err && errlen ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)

/* ImageNet-1K (ILSVRC2012 CLS-LOC) */
static const long long IN1K_TRAIN = 1281167, IN1K_VAL = 50000, IN1K_TEST = 100000;
static const int IN1K_CLASSES = 1000, IN1K_MIN_PER_CLASS = 732, IN1K_MAX_PER_CLASS = 1300;

static void check_split(dataset *ds, int split, int threads, int quick, progress *prog, int64_t *done) {
  ds_split *sp = &ds->split[split];
  int n = threads;
#pragma omp parallel num_threads(n)
  {
    img_decoder *dec = img_decoder_new();
    uint8_t *buf = NULL;
    size_t cap = 0;
    char path[PATH_MAX], why[256];
#pragma omp for schedule(dynamic, 16)
    for (int64_t i = 0; i < sp->n; i++) {
      size_t len = 0;
      img_info info;
      ds_sample_path(ds, split, i, path, sizeof path);
      int st = img_read_file(path, &buf, &cap, &len, why, sizeof why);
      sp->bytes[i] = st == IMG_OK || st == IMG_EMPTY ? (int64_t)len : -1;
      if (st == IMG_OK) st = dec ? img_open(dec, buf, len, &info, why, sizeof why) : IMG_CORRUPT;
      if (st == IMG_OK || st == IMG_DIMS) {
        sp->width[i] = info.width;
        sp->height[i] = info.height;
      }
      if (st == IMG_OK && !quick) st = img_verify(dec, why, sizeof why);
      if (st != IMG_OK) {
        sp->flags[i] = (uint8_t)DS_FLAGS_MAKE_BAD(st);
      } else {
        sp->flags[i] = (uint8_t)((quick ? 0 : DS_CHECKED) | (info.format == IMG_FMT_PNG ? DS_PNG : 0) |
                                 (info.colorspace == IMG_CS_CMYK || info.colorspace == IMG_CS_YCCK ? DS_CMYK : 0) |
                                 (info.colorspace == IMG_CS_GRAY ? DS_GRAY : 0));
      }
      int64_t d = __atomic_add_fetch(done, 1, __ATOMIC_RELAXED);
      if (omp_get_thread_num() == 0) progress_update(prog, d);
    }
    img_decoder_free(dec);
    free(buf);
  }
}

static void fmt_count(char *buf, size_t n, long long v) {
  char tmp[32];
  int len = snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v), o = 0;
  if (v < 0 && (size_t)o + 1 < n) buf[o++] = '-';
  for (int i = 0; i < len && (size_t)o + 1 < n; i++) {
    buf[o++] = tmp[i];
    if ((len - i - 1) % 3 == 0 && i + 1 < len && (size_t)o + 1 < n) buf[o++] = ',';
  }
  buf[o] = 0;
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

static void report_split(const dataset *ds, int split) {
  const ds_split *sp = &ds->split[split];
  char a[32], b[32];
  fmt_count(a, sizeof a, sp->n);
  if (!sp->present) {
    printf("  %-5s  (none)\n", ds_split_name(split));
    return;
  }
  if (split == DS_TEST) {
    fmt_count(b, sizeof b, IN1K_TEST);
    printf("  %-5s  %s images, unlabelled (ImageNet-1K: %s; not used by rn50)\n", "test", a, b);
    return;
  }
  int64_t *per = xcalloc((size_t)ds->nclass + 1, sizeof(int64_t), "class counts");
  for (int64_t i = 0; i < sp->n; i++)
    if (sp->label[i] >= 0) per[sp->label[i]]++;
  int used = 0;
  for (int c = 0; c < ds->nclass; c++) used += per[c] > 0;
  long long expect = split == DS_TRAIN ? IN1K_TRAIN : IN1K_VAL;
  fmt_count(b, sizeof b, expect);
  int full = sp->n == expect && used == IN1K_CLASSES;
  printf("  %-5s  %s images in %d classes (ImageNet-1K: %s in %d) %s\n", ds_split_name(split), a, used, b, IN1K_CLASSES,
         full ? "ok" : "- a different or partial dataset");
  qsort(per, (size_t)ds->nclass, sizeof(int64_t), cmp_i64);
  int first = 0;
  while (first < ds->nclass && per[first] == 0) first++;
  if (first < ds->nclass) {
    printf("         per class: min %lld, median %lld, max %lld", (long long)per[first],
           (long long)per[first + (ds->nclass - first) / 2], (long long)per[ds->nclass - 1]);
    if (split == DS_TRAIN) printf(" (ImageNet-1K: %d to %d)\n", IN1K_MIN_PER_CLASS, IN1K_MAX_PER_CLASS);
    else printf(" (ImageNet-1K: 50)\n");
  }
  if (first > 0 && split == DS_VAL) printf("         %d classes have no val images\n", first);
  free(per);
}

static int is_jpeg_name(const char *name) {
  const char *dot = strrchr(name, '.');
  return dot && (!strcasecmp(dot, ".jpeg") || !strcasecmp(dot, ".jpg"));
}

int prepare_run(const prepare_opts *o, char *err, size_t errlen) {
  dataset ds;
  double tw = now_sec();
  if (!getenv("RN50_QUIET")) fprintf(stderr, "rn50 prepare: listing the files under %s ...\n", o->root);
  if (ds_open(&ds, o->root, (1 << DS_TRAIN) | (1 << DS_VAL) | (1 << DS_TEST), 0, err, errlen) != 0) return -1;
  if (!getenv("RN50_QUIET"))
    fprintf(stderr, "rn50 prepare: %lld files listed in %.1f s\n",
            (long long)(ds.split[0].n + ds.split[1].n + ds.split[2].n), now_sec() - tw);
  if (ds.layout == DS_LAYOUT_PACKED) {
    SET_ERR("%s is a packed dataset (written by rn50 pack): it has its own index already", o->root);
    ds_free(&ds);
    return -1;
  }
  printf("rn50 prepare: %s (%s layout)\n", ds.root,
         ds.layout == DS_LAYOUT_KAGGLE ? "Kaggle ILSVRC/Data/CLS-LOC" : "ImageFolder");
  int threads = o->threads > 0 ? o->threads : cpu_thread_count();
  int64_t total = ds.split[DS_TRAIN].n + ds.split[DS_VAL].n, done = 0;
  progress prog;
  progress_init(&prog, o->quick ? "reading headers" : "checking images", total);
  double t0 = now_sec();
  check_split(&ds, DS_TRAIN, threads, o->quick, &prog, &done);
  check_split(&ds, DS_VAL, threads, o->quick, &prog, &done);
  progress_end(&prog, done);
  double dt = now_sec() - t0;
  printf("  classes %d%s\n", ds.nclass,
         ds.name[0] && strcmp(ds.name[0], ds.wnid[0]) ? " (names from LOC_synset_mapping.txt)" : "");
  for (int s = 0; s < DS_NSPLIT; s++) report_split(&ds, s);
  if (ds.ignored) printf("  %lld files without an image extension ignored\n", (long long)ds.ignored);
  /* bad and unusual files */
  int64_t nbad[IMG_NSTATUS] = {0}, npng = 0, ncmyk = 0, ngray = 0, nbad_all = 0;
  int64_t maxpix = 0, maxw = 0, maxh = 0;
  for (int s = DS_TRAIN; s <= DS_VAL; s++) {
    const ds_split *sp = &ds.split[s];
    for (int64_t i = 0; i < sp->n; i++) {
      int f = sp->flags[i];
      if (f & DS_BAD) {
        nbad[DS_FLAGS_STATUS(f)]++;
        nbad_all++;
        continue;
      }
      npng += (f & DS_PNG) != 0;
      ncmyk += (f & DS_CMYK) != 0;
      ngray += (f & DS_GRAY) != 0;
      if ((int64_t)sp->width[i] * sp->height[i] > maxpix) {
        maxpix = (int64_t)sp->width[i] * sp->height[i];
        maxw = sp->width[i];
        maxh = sp->height[i];
      }
    }
  }
  if (maxpix) printf("  largest image %lldx%lld\n", (long long)maxw, (long long)maxh);
  int limit = o->list_all ? INT32_MAX : 20;
  if (nbad_all == 0) {
    printf("  bad files: none\n");
  } else {
    printf("  bad files: %lld (a training run replaces each by another sample)\n", (long long)nbad_all);
    for (int st = 1; st < IMG_NSTATUS; st++) {
      if (!nbad[st]) continue;
      printf("    %s: %lld\n", img_status_name(st), (long long)nbad[st]);
      int shown = 0;
      for (int s = DS_TRAIN; s <= DS_VAL; s++)
        for (int64_t i = 0; i < ds.split[s].n && shown < limit; i++)
          if ((ds.split[s].flags[i] & DS_BAD) && DS_FLAGS_STATUS(ds.split[s].flags[i]) == st) {
            char p[PATH_MAX];
            printf("      %s\n", ds_sample_path(&ds, s, i, p, sizeof p));
            shown++;
          }
      if (nbad[st] > shown) printf("      ... (--list-all shows all)\n");
    }
  }
  if (npng || ncmyk || ngray) {
    printf("  unusual but usable (decoded to RGB as PIL does):\n");
    const char *what[3] = {"PNG", "CMYK/YCCK JPEG", "grayscale"};
    int bit[3] = {DS_PNG, DS_CMYK, DS_GRAY};
    int64_t cnt[3] = {npng, ncmyk, ngray};
    for (int k = 0; k < 3; k++) {
      if (!cnt[k]) continue;
      printf("    %s: %lld\n", what[k], (long long)cnt[k]);
      int shown = 0;
      for (int s = DS_TRAIN; s <= DS_VAL; s++)
        for (int64_t i = 0; i < ds.split[s].n && shown < limit; i++)
          if (!(ds.split[s].flags[i] & DS_BAD) && (ds.split[s].flags[i] & bit[k])) {
            char p[PATH_MAX];
            printf("      %s%s\n", ds_sample_path(&ds, s, i, p, sizeof p),
                   bit[k] == DS_PNG && is_jpeg_name(ds_sample_name(&ds.split[s], i)) ? " (named as a JPEG)" : "");
            shown++;
          }
      if (cnt[k] > shown) printf("      ... (--list-all shows all)\n");
    }
  }
  char idx[PATH_MAX];
  if (ds_index_path(ds.root, idx, sizeof idx) != 0) {
    SET_ERR("index path too long");
    ds_free(&ds);
    return -1;
  }
  if (ds_index_write(&ds, idx, err, errlen) != 0) {
    ds_free(&ds);
    return -1;
  }
  printf("  checked %lld images in %.1f s%s\n", (long long)total, dt, o->quick ? " (headers only)" : "");
  printf("index: %s\n", idx);
  printf("(training and pack read it instead of walking %s while the tree is unchanged)\n", ds.root);
  ds_free(&ds);
  return 0;
}
