/* test_data_torchvision.c: rn50's transforms against torchvision's on the
 * same files. tools/torch_transform_ref.py (run with /usr/bin/python3,
 * torchvision 0.14 on PIL images) writes the reference pixels to a temporary
 * directory. Largest pixel difference allowed:
 *   eval (Resize + CenterCrop, image_load_eval):             0 (bit-exact)
 *   crop box + resize + flip, exact mode (no DCT scaling):   0 (bit-exact)
 *   the train path, vertical-first resize (rounding):        2
 *   the train path with DCT-domain scaling (1/2, 1/4, 1/8 before a
 *   shrinking resize; a different low-pass filter than bilinear on these
 *   sharp synthetic textures): mean |diff| per image <= 6.
 *   (The train path is the same transform computed faster, not the same pixels.)
 * Files: RGB JPEGs of several sizes and qualities, progressive, grayscale,
 * CMYK, YCCK, PNG (RGB, gray, named .JPEG). */
#include <math.h>

#include "core/rng.h"
#include "data/loader.h"
#include "data/transform.h"
#include "harness.h"
#include "test_data_fixtures.h"

static char *dir;

typedef struct {
  char name[64];
  int w, h;
} file_spec;

static file_spec files[32];
static int nfiles;

static void add_file(const char *name, int w, int h) {
  snprintf(files[nfiles].name, sizeof files[nfiles].name, "%s", name);
  files[nfiles].w = w;
  files[nfiles].h = h;
  nfiles++;
}

static void make_files(void) {
  char p[512];
  struct {
    const char *name;
    int w, h, cs, q;
  } jpegs[] = {
      {"rgb500x375.JPEG", 500, 375, IMG_CS_RGB, 90},   {"rgb375x500.JPEG", 375, 500, IMG_CS_RGB, 90},
      {"rgb333x500.JPEG", 333, 500, IMG_CS_RGB, 75},   {"rgb257x256.JPEG", 257, 256, IMG_CS_RGB, 95},
      {"rgb1024x683.JPEG", 1024, 683, IMG_CS_RGB, 85}, {"rgb100x80.JPEG", 100, 80, IMG_CS_RGB, 90},
      {"gray300x200.JPEG", 300, 200, IMG_CS_GRAY, 90}, {"cmyk200x150.JPEG", 200, 150, IMG_CS_CMYK, 90},
      {"ycck180x240.JPEG", 180, 240, IMG_CS_YCCK, 90},
  };
  for (size_t i = 0; i < ARRAY_LEN(jpegs); i++) {
    snprintf(p, sizeof p, "%s/%s", dir, jpegs[i].name);
    size_t len;
    uint8_t *j = fx_jpeg(jpegs[i].w, jpegs[i].h, jpegs[i].cs, (int)i + 20, jpegs[i].q, &len);
    fx_write(p, j, len);
    free(j);
    add_file(jpegs[i].name, jpegs[i].w, jpegs[i].h);
  }
  snprintf(p, sizeof p, "%s/png220x170.png", dir);
  fx_write_png(p, 220, 170, 0, 31);
  add_file("png220x170.png", 220, 170);
  snprintf(p, sizeof p, "%s/pnggray150x151.JPEG", dir); /* a grayscale PNG named .JPEG */
  fx_write_png(p, 150, 151, 1, 32);
  add_file("pnggray150x151.JPEG", 150, 151);
  add_file("progressive500x375.JPEG", 500, 375); /* made by the reference script from rgb500x375 */
}

static uint8_t *read_ref(const char *path, size_t n) {
  size_t len;
  uint8_t *p = (uint8_t *)file_read_all(path, &len, NULL, 0);
  if (p && len != n) {
    free(p);
    return NULL;
  }
  return p;
}

static void test_against_torchvision(void) {
  make_files();
  char jobs[512], p[512], out[600];
  snprintf(jobs, sizeof jobs, "%s/jobs.txt", dir);
  FILE *f = fopen(jobs, "w");
  fprintf(f, "progressive %s/rgb500x375.JPEG %s/progressive500x375.JPEG\n", dir, dir);
  int evals[][2] = {{256, 224}, {232, 224}, {160, 128}, {64, 72}};
  rrc_opts o = {0};
  rrc_opts_default(&o);
  crop_box boxes[32][4];
  int flips[32][4], sizes[4] = {224, 176, 64, 224};
  for (int i = 0; i < nfiles; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
    for (size_t e = 0; e < ARRAY_LEN(evals); e++)
      fprintf(f, "eval %s %d %d %s/ref_e%d_%zu\n", p, evals[e][0], evals[e][1], dir, i, e);
    for (int k = 0; k < 4; k++) {
      rng_stream r = rng_stream_make(77, (uint64_t)(i * 4 + k));
      boxes[i][k] = rrc_box(files[i].w, files[i].h, &o, &r);
      flips[i][k] = rng_next_uniform(&r) < 0.5;
      crop_box b = boxes[i][k];
      fprintf(f, "crop %s %d %d %d %d %d %d %s/ref_c%d_%d\n", p, b.y, b.x, b.h, b.w, sizes[k], flips[i][k], dir, i, k);
    }
  }
  fclose(f);
  char cmd[1200];
  snprintf(cmd, sizeof cmd, "/usr/bin/python3 tools/torch_transform_ref.py %s > %s/ref.log 2>&1", jobs, dir);
  int rc = system(cmd);
  snprintf(p, sizeof p, "%s/ref.log", dir);
  char *log = file_read_all(p, NULL, NULL, 0);
  if (WIFEXITED(rc) && WEXITSTATUS(rc) == 3) {
    printf("SKIP: torchvision is not available to /usr/bin/python3 (%s)\n", log ? log : "");
    free(log);
    return;
  }
  CHECK(rc == 0, "reference script failed: %s", log ? log : "(no log)");
  if (log) printf("  reference: %s", log);
  free(log);
  if (rc != 0) return;
  tf_ctx *t = tf_new();
  int exact_bad = 0, checked = 0;
  double worst_dct = 0;
  int worst_vh = 0;
  char err[256];
  for (int i = 0; i < nfiles; i++) {
    snprintf(p, sizeof p, "%s/%s", dir, files[i].name);
    for (size_t e = 0; e < ARRAY_LEN(evals); e++) {
      int crop = evals[e][1];
      size_t n = (size_t)crop * crop * 3;
      snprintf(out, sizeof out, "%s/ref_e%d_%zu", dir, i, e);
      uint8_t *ref = read_ref(out, n), *mine = malloc(n);
      CHECK(ref != NULL, "missing reference %s", out);
      CHECK(image_load_eval(p, evals[e][0], crop, mine, err, sizeof err) == 0, "%s: %s", p, err);
      int maxd = 0;
      for (size_t k = 0; ref && k < n; k++) maxd = MAX(maxd, abs(mine[k] - ref[k]));
      CHECK(maxd == 0, "eval Resize(%d)+CenterCrop(%d) of %s: max difference %d (allowed 0)", evals[e][0], crop,
            files[i].name, maxd);
      exact_bad += maxd != 0;
      checked++;
      free(ref);
      free(mine);
    }
    uint8_t *buf = NULL;
    size_t cap = 0, len = 0;
    img_read_file(p, &buf, &cap, &len, err, sizeof err);
    for (int k = 0; k < 4; k++) {
      int s = sizes[k];
      size_t n = (size_t)s * s * 3;
      snprintf(out, sizeof out, "%s/ref_c%d_%d", dir, i, k);
      uint8_t *ref = read_ref(out, n), *mine = malloc(n);
      CHECK(ref != NULL, "missing reference %s", out);
      if (!ref) continue;
      CHECK(tf_crop_resize(t, buf, len, boxes[i][k], flips[i][k], s, 0, 0, mine, err, sizeof err) == IMG_OK, "%s: %s",
            p, err);
      int maxd = 0;
      for (size_t q = 0; q < n; q++) maxd = MAX(maxd, abs(mine[q] - ref[q]));
      CHECK(maxd == 0, "resized_crop(%d,%d,%d,%d -> %d, flip %d) of %s: max difference %d (allowed 0)", boxes[i][k].y,
            boxes[i][k].x, boxes[i][k].h, boxes[i][k].w, s, flips[i][k], files[i].name, maxd);
      exact_bad += maxd != 0;
      checked++;
      for (int dct = 0; dct < 2; dct++) {
        tf_crop_resize(t, buf, len, boxes[i][k], flips[i][k], s, 1, dct, mine, err, sizeof err);
        double sum = 0;
        int maxd = 0;
        for (size_t q = 0; q < n; q++) {
          sum += abs(mine[q] - ref[q]);
          maxd = MAX(maxd, abs(mine[q] - ref[q]));
        }
        if (dct) worst_dct = fmax(worst_dct, sum / n);
        else worst_vh = MAX(worst_vh, maxd);
      }
      free(ref);
      free(mine);
    }
    free(buf);
  }
  tf_free(t);
  printf(
      "  %d transforms compared with torchvision, %d differ (allowed 0); train path: vertical-first resize max "
      "|diff| %d (allowed 2), with DCT-domain scaling worst mean |diff| %.2f (allowed 6)\n",
      checked, exact_bad, worst_vh, worst_dct);
  CHECK(worst_vh <= 2, "train path without DCT scaling: max |diff| %d > 2", worst_vh);
  CHECK(worst_dct <= 6.0, "train path with DCT scaling: mean |diff| %.2f > 6", worst_dct);
}

int main(void) {
  dir = fx_tmpdir("tv");
  RUN(test_against_torchvision);
  fx_rmdir(dir);
  return harness_finish();
}
