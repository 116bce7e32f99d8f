/* test_data_fixtures.h: small helpers shared by the data tests — temporary
 * directories, writing files, test images of each kind (RGB, grayscale,
 * CMYK, YCCK JPEG; PNG; broken ones). */
#ifndef RN50_TEST_DATA_FIXTURES_H
#define RN50_TEST_DATA_FIXTURES_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"
#include "data/image.h"
#include "data/synth.h"

/* A fresh directory under /tmp (removed by fx_rmdir). */
static inline char *fx_tmpdir(const char *tag) {
  char *p = malloc(256);
  snprintf(p, 256, "/tmp/rn50-%s-XXXXXX", tag);
  if (!mkdtemp(p)) {
    perror("mkdtemp");
    exit(1);
  }
  return p;
}

static inline void fx_rmdir(char *p) {
  char cmd[512];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", p);
  free(p);
}

static inline void fx_write(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  if (!f || (len && fwrite(data, 1, len, f) != len)) {
    perror(path);
    exit(1);
  }
  fclose(f);
}

/* A textured RGB test image [h][w][3]. */
static inline uint8_t *fx_rgb(int w, int h, int seed) {
  uint8_t *p = malloc((size_t)w * h * 3);
  synth_render(p, w, h, seed % 8, 7, (uint64_t)seed);
  return p;
}

/* JPEG bytes of a w x h image in colorspace cs (IMG_CS_RGB/GRAY/CMYK/YCCK). */
static inline uint8_t *fx_jpeg(int w, int h, int cs, int seed, int quality, size_t *len) {
  int comps = cs == IMG_CS_GRAY ? 1 : cs == IMG_CS_RGB ? 3 : 4;
  uint8_t *rgb = fx_rgb(w, h, seed);
  uint8_t *px = malloc((size_t)w * h * comps);
  for (size_t i = 0; i < (size_t)w * h; i++) {
    const uint8_t *s = rgb + 3 * i;
    if (comps == 1) px[i] = (uint8_t)((s[0] * 3 + s[1] * 5 + s[2] * 2) / 10);
    else if (comps == 3) memcpy(px + 3 * i, s, 3);
    else {
      px[4 * i] = s[0];
      px[4 * i + 1] = s[1];
      px[4 * i + 2] = s[2];
      px[4 * i + 3] = (uint8_t)(128 + (s[0] >> 1));
    }
  }
  uint8_t *out = NULL;
  char err[256];
  if (img_encode_jpeg_cs(px, w, h, cs, quality, &out, len, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  free(rgb);
  free(px);
  return out;
}

static inline void fx_write_jpeg(const char *path, int w, int h, int cs, int seed) {
  size_t len;
  uint8_t *j = fx_jpeg(w, h, cs, seed, 90, &len);
  fx_write(path, j, len);
  free(j);
}

static inline void fx_write_png(const char *path, int w, int h, int gray, int seed) {
  uint8_t *rgb = fx_rgb(w, h, seed), *out = NULL;
  if (gray)
    for (size_t i = 0; i < (size_t)w * h; i++) rgb[i] = rgb[3 * i + 1];
  size_t len;
  char err[256];
  if (img_encode_png(rgb, w, h, gray, &out, &len, err, sizeof err) != 0) {
    fprintf(stderr, "%s\n", err);
    exit(1);
  }
  fx_write(path, out, len);
  free(out);
  free(rgb);
}

/* The first `keep` bytes of a JPEG (a truncated file). */
static inline void fx_write_truncated(const char *path, int w, int h, int seed, double keep) {
  size_t len;
  uint8_t *j = fx_jpeg(w, h, IMG_CS_RGB, seed, 90, &len);
  fx_write(path, j, (size_t)(len * keep));
  free(j);
}

/* A JPEG whose frame header claims width x height (the data stays small). */
static inline void fx_write_huge_dims(const char *path, int width, int height) {
  size_t len;
  uint8_t *j = fx_jpeg(32, 32, IMG_CS_RGB, 1, 90, &len);
  for (size_t i = 2; i + 9 < len; i++)
    if (j[i] == 0xFF && (j[i + 1] == 0xC0 || j[i + 1] == 0xC2)) {
      j[i + 5] = (uint8_t)(height >> 8);
      j[i + 6] = (uint8_t)height;
      j[i + 7] = (uint8_t)(width >> 8);
      j[i + 8] = (uint8_t)width;
      break;
    }
  fx_write(path, j, len);
  free(j);
}

static inline void fx_write_garbage(const char *path, size_t n) {
  uint8_t *g = malloc(n);
  for (size_t i = 0; i < n; i++) g[i] = (uint8_t)(i * 131 + 7);
  fx_write(path, g, n);
  free(g);
}

#endif
