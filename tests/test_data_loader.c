/* test_data_loader.c: the loader on small generated datasets in both on-disk
 * layouts (and packed): labels in ImageFolder order, Kaggle's flat val with
 * its CSV, identical batches for 1 and several threads, a restart mid-epoch
 * that reproduces the uninterrupted run, rank shares, progressive resizing,
 * eval order, bad files replaced, prepare's index, pack (read back, resumed
 * after an interruption) and the errors users meet. */
#include "core/util.h"
#include "data/dataset.h"
#include "data/loader.h"
#include "data/pack.h"
#include "data/prepare.h"
#include "harness.h"
#include "test_data_fixtures.h"

#define C 5  /* classes */
#define N 12 /* train images per class */
#define NV 3 /* val images per class */

static char *tmp;
static char folder[512], kaggle[512], badset[512];

static loader *open_l(const char *root, int train, int batch, int crop, int workers, int rank, int world, char *err) {
  loader_config c = {0};
  c.root = root;
  c.train = train;
  c.batch = batch;
  c.crop = crop;
  c.resize = crop + crop / 7;
  c.workers = workers;
  c.seed = 42;
  c.rank = rank;
  c.world = world;
  c.drop_last = train;
  return loader_open(&c, err, 512);
}

/* All batches of one epoch, concatenated: images then labels. */
typedef struct {
  uint8_t *img;
  int32_t *lab;
  int64_t n;
} epoch_data;

static epoch_data run_epoch(loader *l, int64_t epoch, int64_t from_batch) {
  epoch_data e = {0};
  int crop = loader_crop(l);
  int B = (int)((loader_size(l) + loader_batches_per_epoch(l) - 1) / loader_batches_per_epoch(l)) + 8;
  size_t per = (size_t)crop * crop * 3;
  e.img = malloc(per * (size_t)(loader_size(l) + 1));
  e.lab = malloc(sizeof(int32_t) * (size_t)(loader_size(l) + 1));
  uint8_t *bi = malloc(per * (size_t)B * 4);
  int32_t *bl = malloc(sizeof(int32_t) * (size_t)B * 4);
  loader_start(l, epoch, from_batch);
  int n;
  while ((n = loader_next(l, bi, bl)) > 0) {
    memcpy(e.img + per * (size_t)e.n, bi, per * (size_t)n);
    memcpy(e.lab + e.n, bl, sizeof(int32_t) * (size_t)n);
    e.n += n;
  }
  free(bi);
  free(bl);
  return e;
}

static int same_epoch(epoch_data a, epoch_data b, int crop) {
  return a.n == b.n && !memcmp(a.lab, b.lab, sizeof(int32_t) * (size_t)a.n) &&
         !memcmp(a.img, b.img, (size_t)a.n * crop * crop * 3);
}

static void free_epoch(epoch_data e) {
  free(e.img);
  free(e.lab);
}

static void make_sets(void) {
  char err[512];
  snprintf(folder, sizeof folder, "%s/folder", tmp);
  snprintf(kaggle, sizeof kaggle, "%s/kaggle", tmp);
  synth_opts o = {folder, C, N, NV, 64, 48, 90, 3, 0, 0};
  if (synth_write(&o, err, sizeof err) != 0) die("synth: %s", err);
  o.out = kaggle;
  o.kaggle = 1;
  if (synth_write(&o, err, sizeof err) != 0) die("synth: %s", err);
}

static void test_layouts_and_labels(void) {
  char err[512];
  dataset a, b;
  CHECK(ds_open(&a, folder, 3, 0, err, sizeof err) == 0, "folder: %s", err);
  CHECK(ds_open(&b, kaggle, 3, 0, err, sizeof err) == 0, "kaggle: %s", err);
  CHECK(a.layout == DS_LAYOUT_FOLDER && b.layout == DS_LAYOUT_KAGGLE, "layouts %d %d", a.layout, b.layout);
  CHECK(a.nclass == C && b.nclass == C, "classes %d %d", a.nclass, b.nclass);
  CHECK(a.split[DS_TRAIN].n == C * N && a.split[DS_VAL].n == C * NV, "folder counts");
  CHECK(b.split[DS_TRAIN].n == C * N && b.split[DS_VAL].n == C * NV, "kaggle counts");
  int bad = 0;
  for (int c = 1; c < C; c++) bad += strcmp(a.wnid[c - 1], a.wnid[c]) >= 0;
  CHECK(bad == 0, "classes sorted");
  CHECK(strstr(a.name[2], "diagonal stripes") != NULL, "name from LOC_synset_mapping.txt: %s", a.name[2]);
  /* train label = position of the class directory's wnid */
  for (int64_t i = 0; i < a.split[DS_TRAIN].n; i++) {
    const char *nm = ds_sample_name(&a.split[DS_TRAIN], i);
    bad += strncmp(nm, a.wnid[a.split[DS_TRAIN].label[i]], 9) != 0;
  }
  CHECK(bad == 0, "%d train labels differ from their directory", bad);
  /* synth puts val image k in class k % C: the CSV labels of the flat val must say so */
  for (int64_t i = 0; i < b.split[DS_VAL].n; i++) {
    int k = atoi(strrchr(ds_sample_name(&b.split[DS_VAL], i), '_') + 1) - 1;
    bad += b.split[DS_VAL].label[i] != k % C;
  }
  CHECK(bad == 0, "%d Kaggle val labels wrong", bad);
  ds_free(&a);
  ds_free(&b);
}

/* Same images in both layouts: the loader's batches must be equal. */
static void test_layouts_same_batches(void) {
  char err[512];
  loader *a = open_l(folder, 1, 8, 32, 2, 0, 1, err), *b = open_l(kaggle, 1, 8, 32, 2, 0, 1, err);
  CHECK(a && b, "open: %s", err);
  if (!a || !b) return;
  CHECK(!strcmp(loader_class_wnid(a, 3), "n00000003") && strstr(loader_class_name(a, 3), "checkerboard"), "class 3");
  epoch_data ea = run_epoch(a, 0, 0), eb = run_epoch(b, 0, 0);
  CHECK(ea.n == (C * N / 8) * 8, "drop_last: %lld images", (long long)ea.n);
  CHECK(same_epoch(ea, eb, 32), "folder and kaggle layouts give different train batches");
  free_epoch(ea);
  free_epoch(eb);
  loader_close(a);
  loader_close(b);
  a = open_l(folder, 0, 4, 32, 2, 0, 1, err);
  b = open_l(kaggle, 0, 4, 32, 2, 0, 1, err);
  CHECK(a && b, "open val: %s", err);
  if (!a || !b) return;
  ea = run_epoch(a, 0, 0);
  eb = run_epoch(b, 0, 0);
  CHECK(ea.n == C * NV && eb.n == C * NV, "eval keeps the short last batch: %lld", (long long)ea.n);
  /* the folder val is ordered by class, the flat Kaggle val by file name: compare as sets of (label) counts */
  int ca[C] = {0}, cb[C] = {0};
  for (int64_t i = 0; i < ea.n; i++) {
    ca[ea.lab[i]]++;
    cb[eb.lab[i]]++;
  }
  CHECK(!memcmp(ca, cb, sizeof ca) && ca[0] == NV, "val label counts");
  for (int64_t i = 1; i < ea.n; i++) CHECK(ea.lab[i - 1] <= ea.lab[i], "folder val in ImageFolder order");
  free_epoch(ea);
  free_epoch(eb);
  loader_close(a);
  loader_close(b);
}

static void test_threads_identical(void) {
  char err[512];
  for (int train = 1; train >= 0; train--) {
    loader *a = open_l(folder, train, 7, 40, 1, 0, 1, err), *b = open_l(folder, train, 7, 40, 3, 0, 1, err);
    CHECK(a && b, "open: %s", err);
    if (!a || !b) return;
    for (int e = 0; e < 2; e++) {
      epoch_data ea = run_epoch(a, e, 0), eb = run_epoch(b, e, 0);
      CHECK(ea.n > 0 && same_epoch(ea, eb, 40), "train %d epoch %d: 1 and 3 threads differ", train, e);
      free_epoch(ea);
      free_epoch(eb);
    }
    loader_close(a);
    loader_close(b);
  }
}

static void test_restart_and_epochs(void) {
  char err[512];
  loader *a = open_l(folder, 1, 8, 32, 2, 0, 1, err);
  CHECK(a != NULL, "open: %s", err);
  if (!a) return;
  epoch_data e0 = run_epoch(a, 0, 0), e1 = run_epoch(a, 1, 0);
  CHECK(!same_epoch(e0, e1, 32), "epochs 0 and 1 are the same");
  /* each epoch is a permutation: every class appears as often as drop_last allows */
  int cnt[C] = {0};
  for (int64_t i = 0; i < e1.n; i++) cnt[e1.lab[i]]++;
  int tot = 0;
  for (int c = 0; c < C; c++) tot += cnt[c] <= N ? cnt[c] : 1000;
  CHECK(tot == e1.n, "label counts exceed the class sizes");
  /* a fresh loader started at (epoch 1, batch 3) reproduces the rest of epoch 1 */
  loader *b = open_l(folder, 1, 8, 32, 3, 0, 1, err);
  epoch_data r = run_epoch(b, 1, 3);
  size_t per = 32 * 32 * 3;
  CHECK(r.n == e1.n - 24 && !memcmp(r.img, e1.img + 24 * per, (size_t)r.n * per) &&
            !memcmp(r.lab, e1.lab + 24, sizeof(int32_t) * (size_t)r.n),
        "batches after a restart at batch 3 differ from the uninterrupted run");
  /* and the same loader can go back to epoch 0 */
  epoch_data again = run_epoch(b, 0, 0);
  CHECK(same_epoch(again, e0, 32), "epoch 0 not reproduced");
  CHECK(loader_sample_at(b, 1, 5) == loader_sample_at(a, 1, 5), "sample order query");
  CHECK(loader_sample_label(a, loader_sample_at(a, 1, 5)) == e1.lab[5], "label of position 5");
  free_epoch(e0);
  free_epoch(e1);
  free_epoch(r);
  free_epoch(again);
  loader_close(a);
  loader_close(b);
}

static void test_ranks_and_crop(void) {
  char err[512];
  loader *r0 = open_l(folder, 1, 4, 24, 2, 0, 2, err), *r1 = open_l(folder, 1, 4, 24, 2, 1, 2, err);
  CHECK(r0 && r1, "open: %s", err);
  if (!r0 || !r1) return;
  CHECK(loader_size(r0) == C * N / 2 && loader_size(r1) == C * N / 2, "rank sizes");
  int seen[C * N] = {0}, dup = 0;
  for (int64_t q = 0; q < loader_size(r0); q++) {
    dup += seen[loader_sample_at(r0, 2, q)]++;
    dup += seen[loader_sample_at(r1, 2, q)]++;
  }
  CHECK(dup == 0, "ranks share %d samples", dup);
  loader_set_crop(r0, 48);
  CHECK(loader_crop(r0) == 24, "set_crop waits for the next start");
  epoch_data e = run_epoch(r0, 0, 0);
  CHECK(loader_crop(r0) == 48 && e.n == loader_batches_per_epoch(r0) * 4, "progressive resize to 48");
  free_epoch(e);
  loader_set_crop(r0, 16);
  e = run_epoch(r0, 1, 0);
  CHECK(loader_crop(r0) == 16 && e.n > 0, "and down to 16");
  free_epoch(e);
  loader_close(r0);
  loader_close(r1);
}

static void test_eval_matches_image_load(void) {
  char err[512], path[1024];
  loader *l = open_l(folder, 0, 5, 40, 2, 0, 1, err);
  CHECK(l != NULL, "open: %s", err);
  if (!l) return;
  epoch_data e = run_epoch(l, 0, 0);
  uint8_t out[40 * 40 * 3];
  int bad = 0;
  for (int64_t i = 0; i < e.n; i++) {
    snprintf(path, sizeof path, "%s/val/%s", folder, loader_sample_name(l, i));
    CHECK(image_load_eval(path, 40 + 40 / 7, 40, out, err, sizeof err) == 0, "image_load_eval: %s", err);
    bad += memcmp(out, e.img + (size_t)i * sizeof out, sizeof out) != 0;
  }
  CHECK(bad == 0, "%d eval batches differ from image_load_eval", bad);
  CHECK(image_load_eval("/nonexistent.JPEG", 256, 224, out, err, sizeof err) == -1 && strstr(err, "nonexistent"),
        "missing file: %s", err);
  free_epoch(e);
  loader_close(l);
}

/* A copy of the folder set with one bad file of each kind in class 1. */
static void make_badset(void) {
  char cmd[2048], p[1024];
  snprintf(badset, sizeof badset, "%s/bad", tmp);
  snprintf(cmd, sizeof cmd, "cp -r '%s' '%s'", folder, badset);
  if (system(cmd) != 0) die("cp failed");
  const char *d = "train/n00000001";
#define P(name) (snprintf(p, sizeof p, "%s/%s/%s", badset, d, name), p)
  fx_write(P("bad_zero.JPEG"), "", 0);
  fx_write_truncated(P("bad_trunc.JPEG"), 64, 48, 5, 0.3);
  fx_write_png(P("odd_png.JPEG"), 64, 48, 0, 6);
  fx_write_jpeg(P("odd_cmyk.JPEG"), 64, 48, IMG_CS_CMYK, 7);
  fx_write_jpeg(P("odd_gray.JPEG"), 64, 48, IMG_CS_GRAY, 8);
  fx_write_huge_dims(P("bad_huge.JPEG"), 40000, 30000);
  fx_write_garbage(P("bad_garbage.JPEG"), 5000);
#undef P
}

static void test_bad_files_replaced(void) {
  char err[512];
  loader *a = open_l(badset, 1, 6, 32, 1, 0, 1, err), *b = open_l(badset, 1, 6, 32, 3, 0, 1, err);
  CHECK(a && b, "open: %s", err);
  if (!a || !b) return;
  CHECK(loader_size(a) == C * N + 7, "all files listed: %lld", (long long)loader_size(a));
  int64_t total = 0;
  for (int e = 0; e < 3; e++) {
    epoch_data ea = run_epoch(a, e, 0), eb = run_epoch(b, e, 0);
    CHECK(ea.n == loader_batches_per_epoch(a) * 6, "batches stay full");
    CHECK(same_epoch(ea, eb, 32), "with bad files, 1 and 3 threads differ (epoch %d)", e);
    total += ea.n;
    free_epoch(ea);
    free_epoch(eb);
  }
  /* 4 or 5 bad files (the truncated one may crop above the cut) out of C*N+7, seen each epoch */
  int64_t nbad = loader_bad_images(a);
  CHECK(nbad >= 3 * 3 && nbad <= 3 * 5 + 3, "replacements counted: %lld", (long long)nbad);
  CHECK(loader_bad_images(b) == nbad, "the count does not depend on threads (%lld vs %lld)",
        (long long)loader_bad_images(b), (long long)nbad);
  loader_close(a);
  loader_close(b);
  /* eval of the same tree (train split has the bad files; val is clean) works */
  a = open_l(badset, 0, 4, 32, 2, 0, 1, err);
  CHECK(a && loader_bad_images(a) == 0, "val open");
  loader_close(a);
}

static void test_prepare_index(void) {
  char err[512], cache[600];
  snprintf(cache, sizeof cache, "%s/cache", tmp);
  setenv("RN50_CACHE", cache, 1);
  setenv("RN50_QUIET", "1", 1);
  prepare_opts o = {badset, 2, 0, 0};
  FILE *saved = stdout;
  stdout = fopen("/dev/null", "w");
  int rc = prepare_run(&o, err, sizeof err);
  fclose(stdout);
  stdout = saved;
  CHECK(rc == 0, "prepare: %s", err);
  dataset ds;
  CHECK(ds_open(&ds, badset, 3, 1, err, sizeof err) == 0 && ds.from_index, "index used");
  int kinds[IMG_NSTATUS] = {0}, png = 0, cmyk = 0, gray = 0;
  for (int64_t i = 0; i < ds.split[DS_TRAIN].n; i++) {
    int f = ds.split[DS_TRAIN].flags[i];
    if (f & DS_BAD) kinds[DS_FLAGS_STATUS(f)]++;
    png += (f & DS_PNG) != 0;
    cmyk += (f & DS_CMYK) != 0;
    gray += (f & DS_GRAY) != 0;
  }
  CHECK(kinds[IMG_EMPTY] == 1 && kinds[IMG_TRUNCATED] == 1 && kinds[IMG_DIMS] == 1 && kinds[IMG_UNSUPPORTED] == 1,
        "bad kinds %d %d %d %d", kinds[IMG_EMPTY], kinds[IMG_TRUNCATED], kinds[IMG_DIMS], kinds[IMG_UNSUPPORTED]);
  CHECK(png == 1 && cmyk == 1 && gray == 1, "unusual kinds %d %d %d", png, cmyk, gray);
  CHECK(ds.split[DS_TRAIN].width[0] == 64 && ds.split[DS_TRAIN].bytes[0] > 0, "sizes in the index");
  ds_free(&ds);
  /* batches from the index equal those from a walk (bad files are then known up front) */
  loader *a = open_l(badset, 1, 6, 32, 2, 0, 1, err);
  CHECK(a && loader_from_index(a), "loader uses the index");
  epoch_data ea = run_epoch(a, 1, 0);
  CHECK(loader_bad_images(a) >= 5 - 1, "pre-marked bad files replaced: %lld", (long long)loader_bad_images(a));
  loader_close(a);
  setenv("RN50_CACHE", "/nonexistent-rn50-cache", 1);
  loader *b = open_l(badset, 1, 6, 32, 2, 0, 1, err);
  CHECK(b && !loader_from_index(b), "walk without the index");
  epoch_data eb = run_epoch(b, 1, 0);
  /* the truncated file may be used by the walk (its crop can end above the cut) but not with the index */
  int64_t diff = 0;
  for (int64_t i = 0; i < ea.n; i++)
    diff += memcmp(ea.img + i * 32 * 32 * 3, eb.img + i * 32 * 32 * 3, 32 * 32 * 3) != 0;
  CHECK(ea.n == eb.n && diff <= 1, "index and walk differ in %lld images", (long long)diff);
  free_epoch(ea);
  free_epoch(eb);
  loader_close(b);
  /* a changed tree makes the index stale */
  setenv("RN50_CACHE", cache, 1);
  char p[1024];
  snprintf(p, sizeof p, "%s/train/n00000002/new.JPEG", badset);
  fx_write_jpeg(p, 64, 48, IMG_CS_RGB, 99);
  a = open_l(badset, 1, 6, 32, 2, 0, 1, err);
  CHECK(a && !loader_from_index(a) && loader_size(a) == C * N + 8, "stale index ignored");
  loader_close(a);
  unlink(p);
  unsetenv("RN50_CACHE");
}

static void cmp_files(const char *a, const char *b, const char *what) {
  size_t la, lb;
  char *x = file_read_all(a, &la, NULL, 0), *y = file_read_all(b, &lb, NULL, 0);
  CHECK(x && y && la == lb && !memcmp(x, y, la), "%s: %s and %s differ", what, a, b);
  free(x);
  free(y);
}

static void test_pack(void) {
  char err[512], out[600], out2[600];
  setenv("RN50_QUIET", "1", 1);
  snprintf(out, sizeof out, "%s/pack", tmp);
  pack_opts o = {folder, out, 0, 90, 16, 2, 1, 0};
  CHECK(pack_run(&o, err, sizeof err) == 0, "pack: %s", err);
  /* images copied as they are: the pack gives exactly the raw tree's batches */
  for (int train = 1; train >= 0; train--) {
    loader *a = open_l(folder, train, 8, 32, 2, 0, 1, err), *b = open_l(out, train, 8, 32, 2, 0, 1, err);
    CHECK(a && b, "open: %s", err);
    if (!a || !b) return;
    CHECK(!strcmp(loader_layout(b), "packed"), "packed layout");
    epoch_data ea = run_epoch(a, 2, 0), eb = run_epoch(b, 2, 0);
    CHECK(same_epoch(ea, eb, 32), "pack and raw tree differ (train %d)", train);
    CHECK(!strcmp(loader_class_name(a, 4), loader_class_name(b, 4)), "class names kept");
    free_epoch(ea);
    free_epoch(eb);
    loader_close(a);
    loader_close(b);
  }
  /* interrupted after one shard, then resumed: byte-identical to the uninterrupted pack */
  snprintf(out2, sizeof out2, "%s/pack2", tmp);
  pack_opts o2 = o;
  o2.out = out2;
  o2.stop_after = 1;
  CHECK(pack_run(&o2, err, sizeof err) == 3, "stopped after one shard");
  char p[700];
  snprintf(p, sizeof p, "%s/rn50pack.idx", out2);
  CHECK(!path_exists(p), "no index before the pack is complete");
  loader *none = open_l(out2, 1, 4, 32, 1, 0, 1, err);
  CHECK(none == NULL, "an incomplete pack does not open as a pack");
  loader_close(none);
  o2.stop_after = 2;
  CHECK(pack_run(&o2, err, sizeof err) == 3, "two more shards");
  o2.stop_after = 0;
  o2.threads = 1;
  CHECK(pack_run(&o2, err, sizeof err) == 0, "resumed: %s", err);
  const char *files[] = {"train-000000.tar", "train-000001.tar", "train-000003.tar",
                         "val-000000.tar",   "train-000002.idx", "pack-plan.txt"};
  for (size_t i = 0; i < ARRAY_LEN(files); i++) {
    char a[700], b[700];
    snprintf(a, sizeof a, "%s/%s", out, files[i]);
    snprintf(b, sizeof b, "%s/%s", out2, files[i]);
    cmp_files(a, b, "resumed pack");
  }
  /* another source or other options into the same directory is refused */
  o2.quality = 80;
  CHECK(pack_run(&o2, err, sizeof err) == -1 && strstr(err, "other options"), "mixed packs refused: %s", err);
  /* bounded sizes: re-encoded images at most 40 px; bad files left out but replaced */
  char out3[600];
  snprintf(out3, sizeof out3, "%s/pack3", tmp);
  pack_opts o3 = {badset, out3, 40, 85, 25, 2, 0, 0};
  CHECK(pack_run(&o3, err, sizeof err) == 0, "pack of the bad set: %s", err);
  dataset ds;
  CHECK(ds_open(&ds, out3, 3, 0, err, sizeof err) == 0 && ds.layout == DS_LAYOUT_PACKED, "open pack");
  int big = 0, bad = 0;
  for (int64_t i = 0; i < ds.split[DS_TRAIN].n; i++) {
    big += ds.split[DS_TRAIN].width[i] > 40 || ds.split[DS_TRAIN].height[i] > 40;
    bad += (ds.split[DS_TRAIN].flags[i] & DS_BAD) != 0;
  }
  CHECK(big == 0 && bad == 4, "max side 40: %d larger, %d bad", big, bad);
  ds_free(&ds);
  loader *l = open_l(out3, 1, 6, 32, 2, 0, 1, err);
  CHECK(l != NULL, "open: %s", err);
  if (l) {
    epoch_data e = run_epoch(l, 0, 0);
    CHECK(e.n == loader_batches_per_epoch(l) * 6 && loader_bad_images(l) >= 1, "pack with bad files: %lld replaced",
          (long long)loader_bad_images(l));
    free_epoch(e);
    loader_close(l);
  }
}

/* Mean colour and mean absolute differences along four directions of a crop. */
#define NFEAT 7
static void crop_features(const uint8_t *im, int s, double *f) {
  for (int k = 0; k < NFEAT; k++) f[k] = 0;
  for (int y = 0; y + 1 < s; y++)
    for (int x = 0; x + 1 < s; x++) {
      const uint8_t *p = im + ((size_t)y * s + x) * 3;
      for (int c = 0; c < 3; c++) f[c] += p[c];
      f[3] += abs(p[1] - p[4]);
      f[4] += abs(p[1] - p[s * 3 + 1]);
      f[5] += abs(p[1] - p[s * 3 + 4]);
      f[6] += abs(p[4] - p[s * 3 + 1]);
    }
}

/* synth's classes can be told apart from 64-pixel random crops: even a
 * nearest-centroid rule on 7 crude features of the train crops classifies
 * the val centre crops far above chance (10%). */
static void test_synth_learnable(void) {
  char err[512], root[600];
  snprintf(root, sizeof root, "%s/learn", tmp);
  synth_opts o = {root, 10, 24, 6, 200, 150, 90, 5, 0, 0};
  CHECK(synth_write(&o, err, sizeof err) == 0, "synth: %s", err);
  loader *l = open_l(root, 1, 40, 64, 2, 0, 1, err);
  CHECK(l != NULL, "open: %s", err);
  if (!l) return;
  double cen[10][NFEAT] = {{0}}, f[NFEAT];
  int cnt[10] = {0};
  for (int e = 0; e < 3; e++) {
    epoch_data d = run_epoch(l, e, 0);
    for (int64_t i = 0; i < d.n; i++) {
      crop_features(d.img + (size_t)i * 64 * 64 * 3, 64, f);
      for (int k = 0; k < NFEAT; k++) cen[d.lab[i]][k] += f[k];
      cnt[d.lab[i]]++;
    }
    free_epoch(d);
  }
  loader_close(l);
  for (int c = 0; c < 10; c++)
    for (int k = 0; k < NFEAT; k++) cen[c][k] /= cnt[c] ? cnt[c] : 1;
  l = open_l(root, 0, 20, 64, 2, 0, 1, err);
  epoch_data d = run_epoch(l, 0, 0);
  int right = 0;
  for (int64_t i = 0; i < d.n; i++) {
    crop_features(d.img + (size_t)i * 64 * 64 * 3, 64, f);
    int best = 0;
    double bd = 1e300;
    for (int c = 0; c < 10; c++) {
      double dist = 0;
      for (int k = 0; k < NFEAT; k++) dist += (f[k] - cen[c][k]) * (f[k] - cen[c][k]);
      if (dist < bd) bd = dist, best = c;
    }
    right += best == d.lab[i];
  }
  printf("  nearest-centroid accuracy on synth val: %d/%lld\n", right, (long long)d.n);
  CHECK(d.n == 60 && right >= 42, "synth classes hard to tell apart: %d/%lld right", right, (long long)d.n);
  free_epoch(d);
  loader_close(l);
}

static void test_errors(void) {
  char err[512], p[600];
  CHECK(open_l("/nonexistent-rn50", 1, 4, 32, 1, 0, 1, err) == NULL && strstr(err, "no such directory"), "%s", err);
  snprintf(p, sizeof p, "%s/folder/LOC_synset_mapping.txt", tmp);
  CHECK(open_l(p, 1, 4, 32, 1, 0, 1, err) == NULL && strstr(err, "not a directory"), "%s", err);
  CHECK(open_l(tmp, 1, 4, 32, 1, 0, 1, err) == NULL && strstr(err, "unknown dataset layout"), "%s", err);
  snprintf(p, sizeof p, "%s/folder/train/n00000009", tmp);
  mkdir(p, 0755);
  CHECK(open_l(folder, 1, 4, 32, 1, 0, 1, err) == NULL && strstr(err, "empty class") && strstr(err, "n00000009"), "%s",
        err);
  rmdir(p);
  CHECK(open_l(folder, 1, 1000, 32, 1, 0, 1, err) == NULL && strstr(err, "fewer than one batch"), "%s", err);
  CHECK(open_l(folder, 1, 4, 32, 1, 2, 2, err) == NULL && strstr(err, "rank"), "%s", err);
  /* Kaggle val without its CSV */
  snprintf(p, sizeof p, "%s/kaggle/LOC_val_solution.csv", tmp);
  char q[600];
  snprintf(q, sizeof q, "%s.away", p);
  rename(p, q);
  CHECK(open_l(kaggle, 0, 4, 32, 1, 0, 1, err) == NULL && strstr(err, "LOC_val_solution.csv"), "%s", err);
  rename(q, p);
}

int main(void) {
  tmp = fx_tmpdir("loader");
  setenv("RN50_CACHE", "/nonexistent-rn50-cache", 1);
  make_sets();
  make_badset();
  RUN(test_layouts_and_labels);
  RUN(test_layouts_same_batches);
  RUN(test_threads_identical);
  RUN(test_restart_and_epochs);
  RUN(test_ranks_and_crop);
  RUN(test_eval_matches_image_load);
  RUN(test_bad_files_replaced);
  RUN(test_prepare_index);
  RUN(test_pack);
  RUN(test_synth_learnable);
  RUN(test_errors);
  fx_rmdir(tmp);
  return harness_finish();
}
