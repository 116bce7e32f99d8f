/* loader.c: the threaded, deterministic batch loader.
 * Positions: this rank's position q (0..size) is the epoch's global position
 * g = q*world + rank; the sample there is perm[g] (train) or g (eval). A
 * worker claims the next position under the lock, transforms it outside the
 * lock straight into its slot of the ring, and the consumer copies finished
 * slots out in order. Nothing a worker computes depends on which worker it
 * is or when it runs, which makes the batches independent of the thread
 * count and reproducible after a restart. */
#include "loader.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/rng.h"
#include "../core/util.h"
#include "dataset.h"
#include "image.h"
#include "transform.h"

#define SET_ERR(...) (err && errlen ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)
#define MAX_ATTEMPTS 64

typedef struct {
  uint8_t *img;  /* [batch][crop][crop][3] */
  int32_t *lab;  /* [batch] */
  int64_t batch; /* batch index held (-1: none) */
  int count;     /* samples in that batch */
  int done;      /* samples finished */
} slot;

typedef struct {
  struct loader *l;
  tf_ctx *tf;
  uint8_t *buf; /* encoded file */
  size_t cap;
  pthread_t thread;
} worker;

struct loader {
  loader_config cfg;
  dataset ds;
  int split;
  ds_split *sp;
  int *fds;      /* packed: one descriptor per shard */
  int64_t n_all; /* samples in the split */
  int64_t size;  /* this rank's positions */
  int64_t nbatches;
  int64_t end_pos; /* positions produced per epoch (drop_last trims) */
  int crop, next_crop;
  rrc_opts rrc;
  uint64_t dseed; /* the loader's key for the RNG */
  int64_t *perm;
  int64_t perm_epoch;
  uint8_t *known_bad; /* [n_all] 1: skip without reading (set atomically) */
  uint8_t *warned;    /* [n_all] 1 once a bad sample was logged */
  int64_t nbad;       /* replacements so far (atomic) */
  double wait_s;
  /* production state, under mu */
  pthread_mutex_t mu;
  pthread_cond_t cv_work, cv_done;
  int nworkers;
  worker *workers;
  int nslots;
  slot *slots;
  size_t slot_crop; /* crop the slot buffers were sized for */
  int64_t epoch, next_pos, consume;
  int running, stop, busy, started;
};

/* ---- samples ---- */

static int64_t sample_at(const loader *l, int64_t epoch, int64_t q) {
  int64_t g = q * l->cfg.world + l->cfg.rank;
  (void)epoch;
  return l->cfg.train ? l->perm[g] : g;
}

/* Reads sample idx's bytes into w->buf. */
static int read_sample(loader *l, worker *w, int64_t idx, size_t *len, char *err, size_t errlen) {
  const ds_split *sp = l->sp;
  if (l->fds) {
    int64_t n = sp->bytes[idx];
    int sh = sp->shard[idx];
    if (n <= 0 || sh < 0 || sh >= sp->nshard) {
      SET_ERR("zero bytes");
      return IMG_EMPTY;
    }
    if (w->cap < (size_t)n) {
      uint8_t *p = realloc(w->buf, (size_t)n);
      if (!p) {
        SET_ERR("unreadable (out of memory)");
        return IMG_UNREADABLE;
      }
      w->buf = p;
      w->cap = (size_t)n;
    }
    size_t got = 0;
    while (got < (size_t)n) {
      ssize_t r = pread(l->fds[sh], w->buf + got, (size_t)n - got, sp->offset[idx] + (off_t)got);
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) {
        SET_ERR("unreadable (%s)", r < 0 ? strerror(errno) : "the shard ends early");
        return IMG_UNREADABLE;
      }
      got += (size_t)r;
    }
    *len = (size_t)n;
    return IMG_OK;
  }
  char path[PATH_MAX];
  ds_sample_path(&l->ds, l->split, idx, path, sizeof path);
  return img_read_file(path, &w->buf, &w->cap, len, err, errlen);
}

/* Logs a bad sample once. Failures that do not depend on the crop (the file
 * cannot be read, is no image, has absurd dimensions) also mark it so that it
 * is skipped without reading; a failure met while decoding the crop's region
 * (truncated or corrupt data) is not marked: another crop of the same file
 * may not reach the damage, and the outcome must not depend on which thread
 * met the file first. */
static void report_bad(loader *l, int64_t idx, int status, int in_decode, const char *why) {
  if (!in_decode && status != IMG_UNREADABLE) __atomic_store_n(&l->known_bad[idx], 1, __ATOMIC_RELAXED);
  if (__atomic_exchange_n(&l->warned[idx], 1, __ATOMIC_RELAXED)) return;
  char path[PATH_MAX];
  if (l->fds) snprintf(path, sizeof path, "%s (in %s)", ds_sample_name(l->sp, idx), l->ds.root);
  else ds_sample_path(&l->ds, l->split, idx, path, sizeof path);
  flockfile(stderr); /* one whole line per message, whichever threads report */
  warn("bad image %s: %s; replaced by another sample", path, why);
  funlockfile(stderr);
}

/* Position q of epoch into out [crop][crop][3] and *label. */
static void produce(loader *l, worker *w, int64_t epoch, int64_t q, int crop, uint8_t *out, int32_t *label) {
  int64_t g = q * l->cfg.world + l->cfg.rank;
  int64_t idx = sample_at(l, epoch, q);
  char err[256];
  for (uint64_t attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    uint64_t base = ((uint64_t)epoch << 40) | (attempt << 32);
    if (!__atomic_load_n(&l->known_bad[idx], __ATOMIC_RELAXED)) {
      size_t len = 0;
      int st = read_sample(l, w, idx, &len, err, sizeof err), in_decode = 0;
      if (st == IMG_OK) {
        if (l->cfg.train) {
          rng_stream r = {l->dseed, (uint64_t)g, base};
          st = tf_train(w->tf, w->buf, len, crop, &l->rrc, &r, out, err, sizeof err);
        } else {
          st = tf_eval(w->tf, w->buf, len, l->cfg.resize, crop, out, err, sizeof err);
        }
        in_decode = tf_failed_in_decode(w->tf);
      }
      if (st == IMG_OK) {
        *label = l->sp->label[idx];
        return;
      }
      report_bad(l, idx, st, in_decode, err);
    }
    __atomic_add_fetch(&l->nbad, 1, __ATOMIC_RELAXED);
    idx = (int64_t)(rng_u64(l->dseed, (uint64_t)g, base | 0xFFFFFFFFu) % (uint64_t)l->n_all);
  }
  warn("no readable image after %d tries at position %lld; using a black image", MAX_ATTEMPTS, (long long)q);
  memset(out, 0, (size_t)crop * crop * 3);
  *label = l->sp->label[sample_at(l, epoch, q)];
}

/* ---- threads ---- */

static int can_claim(const loader *l) {
  int B = l->cfg.batch;
  return l->running && l->next_pos < l->end_pos && l->next_pos / B < l->consume + l->nslots;
}

static void *worker_main(void *arg) {
  worker *w = arg;
  loader *l = w->l;
  int B = l->cfg.batch;
  pthread_mutex_lock(&l->mu);
  for (;;) {
    while (!l->stop && !can_claim(l)) pthread_cond_wait(&l->cv_work, &l->mu);
    if (l->stop) break;
    int64_t q = l->next_pos++;
    int64_t b = q / B;
    slot *s = &l->slots[b % l->nslots];
    if (q % B == 0) {
      s->batch = b;
      s->count = (int)MIN((int64_t)B, l->end_pos - b * B);
      s->done = 0;
    }
    int crop = l->crop;
    int64_t epoch = l->epoch;
    int i = (int)(q - b * B);
    l->busy++;
    pthread_mutex_unlock(&l->mu);
    produce(l, w, epoch, q, crop, s->img + (size_t)i * crop * crop * 3, &s->lab[i]);
    pthread_mutex_lock(&l->mu);
    l->busy--;
    if (++s->done == s->count || l->busy == 0) pthread_cond_broadcast(&l->cv_done);
  }
  pthread_mutex_unlock(&l->mu);
  return NULL;
}

static void alloc_slots(loader *l, int crop) {
  size_t per = (size_t)l->cfg.batch * crop * crop * 3;
  for (int i = 0; i < l->nslots; i++) {
    free(l->slots[i].img);
    l->slots[i].img = xmalloc_aligned(per, "loader batch buffers");
    l->slots[i].batch = -1;
  }
  l->slot_crop = (size_t)crop;
}

/* ---- API ---- */

/* Cores this process may run on (its affinity mask: containers, taskset). */
static int cores_available(void) {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0) return CPU_COUNT(&set);
  long n = sysconf(_SC_NPROCESSORS_ONLN);
  return n > 0 ? (int)n : 1;
}

/* The epoch's order: Fisher-Yates over the whole split from (seed, epoch). */
static void perm_draw(int64_t *perm, int64_t n, uint64_t dseed, int64_t epoch) {
  for (int64_t i = 0; i < n; i++) perm[i] = i;
  rng_stream r = {dseed, (1ULL << 63) | (uint64_t)epoch, 0};
  for (int64_t i = n - 1; i > 0; i--) {
    int64_t j = (int64_t)rng_next_below(&r, (uint64_t)(i + 1));
    int64_t t = perm[i];
    perm[i] = perm[j];
    perm[j] = t;
  }
}

static void make_perm(loader *l, int64_t epoch) {
  perm_draw(l->perm, l->n_all, l->dseed, epoch);
  l->perm_epoch = epoch;
}

loader *loader_open(const loader_config *cfg, char *err, size_t errlen) {
  loader_config c = *cfg;
  if (c.world <= 0) c.world = 1;
  if (c.rank < 0 || c.rank >= c.world) {
    SET_ERR("rank %d is outside 0..%d", c.rank, c.world - 1);
    return NULL;
  }
  if (c.batch < 1 || c.crop < 1 || c.crop > 4096) {
    SET_ERR("bad loader sizes: batch %d, crop %d", c.batch, c.crop);
    return NULL;
  }
  if (!c.train && c.resize <= 0) c.resize = (int)((double)c.crop * 256 / 224 + 0.5);
  rrc_opts o = {c.scale_min, c.scale_max, c.ratio_min, c.ratio_max};
  rrc_opts_default(&o);
  if (o.scale_min > o.scale_max || o.scale_max > 1.0 || o.ratio_min > o.ratio_max) {
    SET_ERR("bad RandomResizedCrop range: scale (%g, %g), ratio (%g, %g)", o.scale_min, o.scale_max, o.ratio_min,
            o.ratio_max);
    return NULL;
  }
  loader *l = xcalloc(1, sizeof *l, "loader");
  l->cfg = c;
  l->rrc = o;
  l->split = c.train ? DS_TRAIN : DS_VAL;
  if (ds_open(&l->ds, c.root, 1 << l->split, 1, err, errlen) != 0) {
    free(l);
    return NULL;
  }
  l->sp = &l->ds.split[l->split];
  l->n_all = l->sp->n;
  if (!l->sp->present || l->n_all == 0) {
    SET_ERR("%s: no %s split (%s layout)", c.root, ds_split_name(l->split), ds_layout_name(l->ds.layout));
    ds_free(&l->ds);
    free(l);
    return NULL;
  }
  if (l->ds.layout == DS_LAYOUT_PACKED) {
    l->fds = xcalloc((size_t)l->sp->nshard + 1, sizeof(int), "shard descriptors");
    for (int k = 0; k < l->sp->nshard; k++) {
      char p[PATH_MAX];
      snprintf(p, sizeof p, "%s/%s", l->ds.root, l->sp->shard_file[k]);
      l->fds[k] = open(p, O_RDONLY | O_CLOEXEC);
      if (l->fds[k] < 0) {
        SET_ERR("%s: %s", p, strerror(errno));
        for (int j = 0; j < k; j++) close(l->fds[j]);
        free(l->fds);
        ds_free(&l->ds);
        free(l);
        return NULL;
      }
    }
  }
  int B = c.batch;
  if (c.train) l->size = l->n_all / c.world;
  else l->size = l->n_all > c.rank ? (l->n_all - c.rank + c.world - 1) / c.world : 0;
  l->nbatches = c.drop_last ? l->size / B : (l->size + B - 1) / B;
  l->end_pos = c.drop_last ? l->nbatches * B : l->size;
  if (l->nbatches == 0) {
    SET_ERR("%s: the %s split has %lld images for this rank, fewer than one batch of %d", c.root,
            ds_split_name(l->split), (long long)l->size, B);
    loader_close(l);
    return NULL;
  }
  l->dseed = hash64("rn50-loader", 11, c.seed);
  l->known_bad = xcalloc((size_t)l->n_all, 1, "loader bad-image marks");
  l->warned = xcalloc((size_t)l->n_all, 1, "loader bad-image marks");
  int64_t marked = 0;
  for (int64_t i = 0; i < l->n_all; i++)
    if (l->sp->flags[i] & DS_BAD) {
      l->known_bad[i] = 1;
      marked++;
    }
  if (marked) warn("%lld images that 'rn50 prepare' found bad will be replaced", (long long)marked);
  if (c.train) {
    l->perm = xmalloc((size_t)l->n_all * sizeof(int64_t), "epoch permutation");
    l->perm_epoch = -1;
  }
  l->crop = l->next_crop = c.crop;
  l->nworkers = c.workers > 0 ? c.workers : cores_available();
  if (l->nworkers > 256) l->nworkers = 256;
  l->nslots = (int)MAX(3, (2 * l->nworkers + B - 1) / B + 1);
  l->slots = xcalloc((size_t)l->nslots, sizeof(slot), "loader slots");
  for (int i = 0; i < l->nslots; i++) l->slots[i].lab = xcalloc((size_t)B, sizeof(int32_t), "labels");
  alloc_slots(l, c.crop);
  pthread_mutex_init(&l->mu, NULL);
  pthread_cond_init(&l->cv_work, NULL);
  pthread_cond_init(&l->cv_done, NULL);
  l->workers = xcalloc((size_t)l->nworkers, sizeof(worker), "loader workers");
  for (int i = 0; i < l->nworkers; i++) {
    worker *w = &l->workers[i];
    w->l = l;
    w->tf = tf_new();
    if (!w->tf) die("out of memory creating a decoder");
    if (pthread_create(&w->thread, NULL, worker_main, w) != 0) die("cannot start loader thread: %s", strerror(errno));
  }
  return l;
}

int64_t loader_size(const loader *l) { return l->size; }
int64_t loader_batches_per_epoch(const loader *l) { return l->nbatches; }
int64_t loader_dataset_size(const loader *l) { return l->n_all; }
int loader_classes(const loader *l) { return l->ds.nclass; }
const char *loader_class_wnid(const loader *l, int idx) {
  return idx >= 0 && idx < l->ds.nclass ? l->ds.wnid[idx] : "?";
}
const char *loader_class_name(const loader *l, int idx) {
  return idx >= 0 && idx < l->ds.nclass ? l->ds.name[idx] : "?";
}
int loader_crop(const loader *l) { return l->crop; }
int loader_workers(const loader *l) { return l->nworkers; }
const char *loader_layout(const loader *l) { return ds_layout_name(l->ds.layout); }
int loader_from_index(const loader *l) { return l->ds.from_index; }
int64_t loader_bad_images(const loader *l) { return __atomic_load_n(&l->nbad, __ATOMIC_RELAXED); }
double loader_wait_seconds(const loader *l) { return l->wait_s; }

void loader_set_crop(loader *l, int crop) {
  if (crop >= 1 && crop <= 4096) l->next_crop = crop;
}

void loader_start(loader *l, int64_t epoch, int64_t batch) {
  pthread_mutex_lock(&l->mu);
  l->running = 0;
  while (l->busy > 0) pthread_cond_wait(&l->cv_done, &l->mu);
  if ((size_t)l->next_crop > l->slot_crop) alloc_slots(l, l->next_crop);
  l->crop = l->next_crop;
  if (epoch < 0) epoch = 0;
  if (l->cfg.train && l->perm_epoch != epoch) make_perm(l, epoch);
  if (batch < 0) batch = 0;
  if (batch > l->nbatches) batch = l->nbatches;
  l->epoch = epoch;
  l->consume = batch;
  l->next_pos = MIN(batch * l->cfg.batch, l->end_pos);
  for (int i = 0; i < l->nslots; i++) l->slots[i].batch = -1;
  l->running = 1;
  l->started = 1;
  pthread_cond_broadcast(&l->cv_work);
  pthread_mutex_unlock(&l->mu);
}

int loader_next(loader *l, uint8_t *images, int32_t *labels) {
  if (!l->started) loader_start(l, 0, 0);
  pthread_mutex_lock(&l->mu);
  int64_t b = l->consume;
  if (b >= l->nbatches) {
    pthread_mutex_unlock(&l->mu);
    return 0;
  }
  slot *s = &l->slots[b % l->nslots];
  double t0 = now_sec();
  while (!(s->batch == b && s->done == s->count)) pthread_cond_wait(&l->cv_done, &l->mu);
  l->wait_s += now_sec() - t0;
  int n = s->count, crop = l->crop;
  pthread_mutex_unlock(&l->mu);
  memcpy(images, s->img, (size_t)n * crop * crop * 3);
  memcpy(labels, s->lab, (size_t)n * sizeof(int32_t));
  pthread_mutex_lock(&l->mu);
  l->consume++;
  pthread_cond_broadcast(&l->cv_work);
  pthread_mutex_unlock(&l->mu);
  return n;
}

void loader_close(loader *l) {
  if (!l) return;
  if (l->workers) {
    pthread_mutex_lock(&l->mu);
    l->stop = 1;
    pthread_cond_broadcast(&l->cv_work);
    pthread_mutex_unlock(&l->mu);
    for (int i = 0; i < l->nworkers; i++) {
      pthread_join(l->workers[i].thread, NULL);
      tf_free(l->workers[i].tf);
      free(l->workers[i].buf);
    }
    free(l->workers);
    pthread_mutex_destroy(&l->mu);
    pthread_cond_destroy(&l->cv_work);
    pthread_cond_destroy(&l->cv_done);
  }
  if (l->slots)
    for (int i = 0; i < l->nslots; i++) {
      free(l->slots[i].img);
      free(l->slots[i].lab);
    }
  free(l->slots);
  if (l->fds)
    for (int k = 0; k < l->sp->nshard; k++) close(l->fds[k]);
  free(l->fds);
  free(l->perm);
  free(l->known_bad);
  free(l->warned);
  ds_free(&l->ds);
  free(l);
}

int64_t loader_sample_at(const loader *l, int64_t epoch, int64_t pos) {
  if (pos < 0 || pos >= l->size) return -1;
  if (!l->cfg.train) return sample_at(l, epoch, pos);
  if (l->perm_epoch == epoch) return sample_at(l, epoch, pos);
  /* another epoch's order: draw it without disturbing the running one */
  int64_t *perm = xmalloc((size_t)l->n_all * sizeof(int64_t), "epoch permutation");
  perm_draw(perm, l->n_all, l->dseed, epoch);
  int64_t r = perm[pos * l->cfg.world + l->cfg.rank];
  free(perm);
  return r;
}

int loader_sample_label(const loader *l, int64_t sample) {
  return sample >= 0 && sample < l->n_all ? l->sp->label[sample] : -1;
}

const char *loader_sample_name(const loader *l, int64_t sample) {
  return sample >= 0 && sample < l->n_all ? ds_sample_name(l->sp, sample) : "?";
}

int image_load_eval(const char *path, int resize, int crop, uint8_t *out, char *err, size_t errlen) {
  uint8_t *buf = NULL;
  size_t cap = 0, len = 0;
  char e2[256];
  if (crop < 1 || crop > 4096 || resize < 1) {
    SET_ERR("bad eval sizes: resize %d, crop %d", resize, crop);
    return -1;
  }
  int st = img_read_file(path, &buf, &cap, &len, e2, sizeof e2);
  tf_ctx *t = st == IMG_OK ? tf_new() : NULL;
  if (st == IMG_OK && !t) {
    snprintf(e2, sizeof e2, "out of memory");
    st = IMG_CORRUPT;
  }
  if (st == IMG_OK) st = tf_eval(t, buf, len, resize, crop, out, e2, sizeof e2);
  tf_free(t);
  free(buf);
  if (st != IMG_OK) {
    SET_ERR("%s: %s", path, e2);
    return -1;
  }
  return 0;
}
