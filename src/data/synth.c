/* synth.c: see synth.h. All randomness comes from the counter-based RNG
 * keyed by (seed, image id), so the dataset is the same for any thread
 * count. */
#include "synth.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../core/rng.h"
#include "../core/util.h"
#include "image.h"
#include "progress.h"

#define SET_ERR(...) (err && errlen ? (void)snprintf(err, errlen, __VA_ARGS__) : (void)0)
#define NPATTERN 8

static const char *pattern_names[NPATTERN] = {
    "horizontal stripes", "vertical stripes", "diagonal stripes", "checkerboard", "dots", "rings", "waves", "grid"};
static const char *hue_names[12] = {"red",  "orange", "yellow", "lime",   "green",   "spring",
                                    "cyan", "azure",  "blue",   "violet", "magenta", "rose"};

void synth_wnid(int c, char *buf, size_t len) { snprintf(buf, len, "n%08d", c); }

static double class_hue(int c) {
  int p = c % NPATTERN, q = c / NPATTERN;
  double h = q * 0.381966 + p * 0.125;
  return h - floor(h);
}

static void hsv_to_rgb(double h, double s, double v, double rgb[3]) {
  h = (h - floor(h)) * 6.0;
  int i = (int)h;
  double f = h - i, p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  double r[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  for (int k = 0; k < 3; k++) rgb[k] = 255.0 * r[i % 6][k];
}

/* Triangle wave in [0, 1] with period 1, softened to a smooth profile (t >= 0). */
static inline float wave(float t) {
  float f = t - (float)(int)t;
  float tri = f < 0.5f ? 2 * f : 2 - 2 * f;
  return tri * tri * (3 - 2 * tri);
}

void synth_render(uint8_t *rgb, int w, int h, int cls, uint64_t seed, uint64_t id) {
  rng_stream r = rng_stream_make(seed, id);
  int pat = cls % NPATTERN;
  double hue = class_hue(cls) + (rng_next_uniform(&r) - 0.5) * 0.05;
  double fg[3], bg[3], blob[3];
  hsv_to_rgb(hue, 0.75 + 0.2 * rng_next_uniform(&r), 0.85 + 0.15 * rng_next_uniform(&r), fg);
  int dark = (cls / NPATTERN) % 2;
  hsv_to_rgb(hue + 0.5, 0.3 + 0.3 * rng_next_uniform(&r), dark ? 0.15 + 0.1 * rng_next_uniform(&r) : 0.45, bg);
  hsv_to_rgb(rng_next_uniform(&r), 0.2 + 0.6 * rng_next_uniform(&r), 0.3 + 0.7 * rng_next_uniform(&r), blob);
  float shortside = (float)(w < h ? w : h);
  float period = shortside * (float)(0.09 + 0.06 * rng_next_uniform(&r));
  double angle = (rng_next_uniform(&r) - 0.5) * 0.35;
  if (pat == 1) angle += M_PI / 2;
  if (pat == 2) angle += M_PI / 4;
  float ca = (float)cos(angle) / period, sa = (float)sin(angle) / period;
  /* offsets keep the wave arguments positive */
  float phase = (float)rng_next_uniform(&r) + 1000.0f, phase2 = (float)rng_next_uniform(&r) + 1000.0f;
  float cx = w * (float)(0.2 + 0.6 * rng_next_uniform(&r)), cy = h * (float)(0.2 + 0.6 * rng_next_uniform(&r));
  float bright = (float)(0.85 + 0.3 * rng_next_uniform(&r));
  float bx = w * (float)rng_next_uniform(&r), by = h * (float)rng_next_uniform(&r);
  float brx = shortside * (float)(0.08 + 0.15 * rng_next_uniform(&r));
  float bry = shortside * (float)(0.08 + 0.15 * rng_next_uniform(&r));
  float base[3], span[3], blobc[3];
  for (int k = 0; k < 3; k++) {
    base[k] = bright * (float)bg[k];
    span[k] = bright * (float)(fg[k] - bg[k]);
    blobc[k] = (float)blob[k];
  }
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  uint8_t *noise = xmalloc((size_t)w + 16, "synth row");
  float *vals = xmalloc((size_t)w * sizeof(float), "synth row");
  for (int y = 0; y < h; y++) {
    /* one noise byte per pixel, 16 per Philox call */
    for (int x = 0; x < w; x += 16) {
      uint32_t cc[4] = {(uint32_t)y, (uint32_t)x, (uint32_t)id, (uint32_t)(id >> 32) ^ 0x5e17u}, o4[4];
      philox4x32(cc, key, o4);
      memcpy(noise + x, o4, 16);
    }
    uint8_t *o = rgb + (size_t)y * w * 3;
    float ey = (y - by) / bry, ey2 = ey * ey, rbrx = 1.0f / brx, u0 = y * sa + phase, v0 = y * ca + phase2;
    switch (pat) { /* the pattern's value per pixel of the row, in [0, 1] */
      case 0:
      case 1:
      case 2:
        for (int x = 0; x < w; x++) vals[x] = wave(x * ca + u0);
        break;
      case 3:
        for (int x = 0; x < w; x++) vals[x] = (wave(x * ca + u0) > 0.5f) != (wave(v0 - x * sa) > 0.5f) ? 1.0f : 0.0f;
        break;
      case 4:
        for (int x = 0; x < w; x++) {
          float u = x * ca + u0, v = v0 - x * sa;
          float du = u - (float)(int)u - 0.5f, dv = v - (float)(int)v - 0.5f;
          vals[x] = du * du + dv * dv < 0.09f ? 1.0f : 0.0f;
        }
        break;
      case 5:
        for (int x = 0; x < w; x++) vals[x] = wave(sqrtf((x - cx) * (x - cx) + (y - cy) * (y - cy)) / period + phase);
        break;
      case 6:
        for (int x = 0; x < w; x++) vals[x] = wave(x * ca + u0) * wave(v0 - x * sa);
        break;
      default:
        for (int x = 0; x < w; x++) vals[x] = (wave(x * ca + u0) > 0.8f || wave(v0 - x * sa) > 0.8f) ? 1.0f : 0.0f;
        break;
    }
    for (int x = 0; x < w; x++, o += 3) {
      float ex = (x - bx) * rbrx, n = (float)((noise[x] * 33) >> 8) - 15.5f;
      float m = ex * ex + ey2 < 1.0f ? 1.0f : 0.0f; /* inside the distractor blob */
      for (int k = 0; k < 3; k++) {
        int q = (int)(m * blobc[k] + (1.0f - m) * (base[k] + span[k] * vals[x]) + n);
        q = q < 0 ? 0 : q;
        o[k] = (uint8_t)(q > 255 ? 255 : q);
      }
    }
  }
  free(noise);
  free(vals);
}

static int write_file(const char *path, const void *data, size_t len, char *err, size_t errlen) {
  char tmp[PATH_MAX + 8];
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    SET_ERR("%s: %s", tmp, strerror(errno));
    return -1;
  }
  const char *p = data;
  size_t left = len;
  while (left) {
    ssize_t n = write(fd, p, left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      SET_ERR("%s: %s", tmp, strerror(errno));
      close(fd);
      unlink(tmp);
      return -1;
    }
    p += n;
    left -= (size_t)n;
  }
  close(fd);
  if (rename(tmp, path) != 0) {
    SET_ERR("%s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  return 0;
}

int synth_write(const synth_opts *o, char *err, size_t errlen) {
  if (o->classes < 1 || o->per_class < 0 || o->val_per_class < 0) {
    SET_ERR("bad synth sizes");
    return -1;
  }
  char base[PATH_MAX], trdir[PATH_MAX], vadir[PATH_MAX], p[PATH_MAX], wn[32];
  if (o->kaggle) snprintf(base, sizeof base, "%s/ILSVRC/Data/CLS-LOC", o->out);
  else snprintf(base, sizeof base, "%s", o->out);
  snprintf(trdir, sizeof trdir, "%s/train", base);
  snprintf(vadir, sizeof vadir, "%s/val", base);
  if (mkdir_p(o->out, err, errlen) != 0) return -1;
  /* class names and directories */
  size_t maplen = 0, mapcap = 4096;
  char *map = xmalloc(mapcap, "synset mapping");
  for (int c = 0; c < o->classes; c++) {
    synth_wnid(c, wn, sizeof wn);
    if (o->per_class > 0) {
      snprintf(p, sizeof p, "%s/%s", trdir, wn);
      if (mkdir_p(p, err, errlen) != 0) goto fail;
    }
    if (o->val_per_class > 0) {
      if (o->kaggle) snprintf(p, sizeof p, "%s", vadir);
      else snprintf(p, sizeof p, "%s/%s", vadir, wn);
      if (mkdir_p(p, err, errlen) != 0) goto fail;
    }
    int hue = (int)(class_hue(c) * 12 + 0.5) % 12;
    char line[256];
    int n = snprintf(line, sizeof line, "%s %s, %s%s\n", wn, pattern_names[c % NPATTERN],
                     (c / NPATTERN) % 2 ? "dark " : "", hue_names[hue]);
    if (maplen + (size_t)n + 1 > mapcap) map = xrealloc(map, mapcap *= 2, "synset mapping");
    memcpy(map + maplen, line, (size_t)n);
    maplen += (size_t)n;
  }
  snprintf(p, sizeof p, "%s/LOC_synset_mapping.txt", o->out);
  if (write_file(p, map, maplen, err, errlen) != 0) goto fail;
  int64_t ntrain = (int64_t)o->classes * o->per_class, nval = (int64_t)o->classes * o->val_per_class;
  int64_t total = ntrain + nval;
  if (o->kaggle && nval > 0) {
    size_t cap = (size_t)nval * 64 + 64, len = 0;
    char *csv = xmalloc(cap, "val solution");
    len += (size_t)snprintf(csv + len, cap - len, "ImageId,PredictionString\n");
    for (int64_t k = 0; k < nval; k++) {
      synth_wnid((int)(k % o->classes), wn, sizeof wn);
      len += (size_t)snprintf(csv + len, cap - len, "ILSVRC2012_val_%08lld,%s 1 1 50 50\n", (long long)k + 1, wn);
    }
    snprintf(p, sizeof p, "%s/LOC_val_solution.csv", o->out);
    int rc = write_file(p, csv, len, err, errlen);
    free(csv);
    if (rc != 0) goto fail;
  }
  progress prog;
  progress_init(&prog, "synth", total);
  int64_t done = 0;
  int failed = 0;
  char first_err[512] = "";
  int nthreads = o->threads > 0 ? o->threads : cpu_thread_count();
#pragma omp parallel num_threads(nthreads)
  {
    uint8_t *rgb = NULL;
    size_t rgb_cap = 0;
    char e2[512], path[PATH_MAX], w2[32];
#pragma omp for schedule(dynamic, 4)
    for (int64_t k = 0; k < total; k++) {
      if (__atomic_load_n(&failed, __ATOMIC_RELAXED)) continue;
      int cls;
      uint64_t id = (uint64_t)k;
      if (k < ntrain) {
        cls = (int)(k / o->per_class);
        synth_wnid(cls, w2, sizeof w2);
        snprintf(path, sizeof path, "%s/%s/%s_%lld.JPEG", trdir, w2, w2, (long long)(k % o->per_class));
      } else {
        int64_t v = k - ntrain;
        cls = (int)(v % o->classes);
        synth_wnid(cls, w2, sizeof w2);
        if (o->kaggle) snprintf(path, sizeof path, "%s/ILSVRC2012_val_%08lld.JPEG", vadir, (long long)v + 1);
        else snprintf(path, sizeof path, "%s/%s/ILSVRC2012_val_%08lld.JPEG", vadir, w2, (long long)v + 1);
      }
      int w = o->width, h = o->height;
      if (w <= 0 || h <= 0) {
        rng_stream r = rng_stream_make(o->seed ^ 0x512e, id);
        w = (int)(500 * (0.8 + 0.4 * rng_next_uniform(&r)));
        h = (int)(375 * (0.8 + 0.4 * rng_next_uniform(&r)));
        if (rng_next_uniform(&r) < 0.25) {
          int t = w;
          w = h;
          h = t;
        }
      }
      size_t need = (size_t)w * h * 3;
      if (need > rgb_cap) {
        free(rgb);
        rgb = xmalloc(need, "synth image");
        rgb_cap = need;
      }
      synth_render(rgb, w, h, cls, o->seed, id);
      uint8_t *jpg = NULL;
      size_t jlen = 0;
      int rc = img_encode_jpeg(rgb, w, h, o->quality > 0 ? o->quality : 90, &jpg, &jlen, e2, sizeof e2);
      if (rc == 0) rc = write_file(path, jpg, jlen, e2, sizeof e2);
      free(jpg);
      if (rc != 0) {
#pragma omp critical(synth_err)
        {
          if (!failed) snprintf(first_err, sizeof first_err, "%s", e2);
          failed = 1;
        }
      }
      int64_t d = __atomic_add_fetch(&done, 1, __ATOMIC_RELAXED);
#pragma omp critical(synth_progress)
      progress_update(&prog, d);
    }
    free(rgb);
  }
  if (failed) {
    SET_ERR("%s", first_err);
    goto fail;
  }
  progress_end(&prog, done);
  free(map);
  return 0;
fail:
  free(map);
  return -1;
}
