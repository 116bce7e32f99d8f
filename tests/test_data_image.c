/* test_data_image.c: decoding (every kind of good and bad file), region and
 * DCT-scaled decoding, the PIL resampler's properties, and the transforms'
 * geometry (RandomResizedCrop, Resize, CenterCrop). Pixel parity with
 * torchvision itself is test_data_torchvision.c. */
#include <math.h>

#include "core/rng.h"
#include "data/image.h"
#include "data/resample.h"
#include "data/transform.h"
#include "harness.h"
#include "test_data_fixtures.h"

static char *dir;

/* Decodes a whole in-memory image to RGB; returns status. */
static int decode_all(const uint8_t *buf, size_t len, int num, int fast, uint8_t **rgb, int *w, int *h) {
  img_decoder *d = img_decoder_new();
  img_info info;
  char err[256];
  int st = img_open(d, buf, len, &info, err, sizeof err);
  *rgb = NULL;
  if (st == IMG_OK) {
    img_scaled_size(d, num, w, h);
    size_t cap = 0;
    int x0, pw;
    st = img_decode(d, num, fast, 3, 0, 0, *w, *h, rgb, &cap, &x0, &pw, err, sizeof err);
  }
  img_decoder_free(d);
  return st;
}

static void test_rgb_roundtrip(void) {
  int w = 123, h = 77;
  uint8_t *rgb = malloc((size_t)w * h * 3), *out, *j;
  for (int y = 0; y < h; y++) /* smooth colours: JPEG keeps them closely */
    for (int x = 0; x < w; x++) {
      uint8_t *p = rgb + ((size_t)y * w + x) * 3;
      p[0] = (uint8_t)(2 * x);
      p[1] = (uint8_t)(3 * y);
      p[2] = (uint8_t)(128 + 100 * sin(x * 0.05 + y * 0.03));
    }
  size_t len;
  char err[256];
  CHECK(img_encode_jpeg(rgb, w, h, 98, &j, &len, err, sizeof err) == 0, "encode: %s", err);
  int ow, oh;
  CHECK(decode_all(j, len, 8, 0, &out, &ow, &oh) == IMG_OK, "decode");
  CHECK(ow == w && oh == h, "size %dx%d", ow, oh);
  double sum = 0;
  for (size_t i = 0; i < (size_t)w * h * 3; i++) sum += abs(out[i] - rgb[i]);
  CHECK(sum / (w * h * 3) < 1.5, "mean abs error %.2f after a q98 round trip", sum / (w * h * 3));
  free(out);
  /* DCT scaling: 1/2 gives ceil(w/2) x ceil(h/2) */
  CHECK(decode_all(j, len, 4, 1, &out, &ow, &oh) == IMG_OK && ow == 62 && oh == 39, "half size %dx%d", ow, oh);
  free(out);
  free(j);
  free(rgb);
}

/* Every region of a region decode equals the same pixels of a full decode. */
static void check_regions(const uint8_t *j, size_t len, const char *what) {
  img_decoder *d = img_decoder_new();
  img_info info;
  char err[256];
  for (int fast = 0; fast < 2; fast++)
    for (int num = 1; num <= 8; num *= 2) {
      uint8_t *full, *reg = NULL;
      int W, H;
      CHECK(decode_all(j, len, num, fast, &full, &W, &H) == IMG_OK, "%s full decode", what);
      size_t cap = 0;
      rng_stream r = rng_stream_make(5, (uint64_t)num);
      int bad = 0;
      for (int k = 0; k < 40; k++) {
        int x0 = (int)rng_next_below(&r, (uint64_t)W), y0 = (int)rng_next_below(&r, (uint64_t)H);
        int w = 1 + (int)rng_next_below(&r, (uint64_t)(W - x0)), h = 1 + (int)rng_next_below(&r, (uint64_t)(H - y0));
        int px0, pw;
        img_open(d, j, len, &info, err, sizeof err);
        int st = img_decode(d, num, fast, 4, x0, y0, w, h, &reg, &cap, &px0, &pw, err, sizeof err);
        CHECK(st == IMG_OK && px0 <= x0 && px0 + pw >= x0 + w, "%s region decode: %s", what, err);
        if (st != IMG_OK) break;
        for (int y = 0; y < h; y++)
          for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++)
              bad += reg[((size_t)y * pw + (x0 - px0 + x)) * 4 + c] != full[((size_t)(y0 + y) * W + x0 + x) * 3 + c];
      }
      CHECK(bad == 0, "%s num %d fast %d: %d region pixels differ from the full decode", what, num, fast, bad);
      free(full);
      free(reg);
    }
  img_decoder_free(d);
}

static void test_region_decode(void) {
  size_t len;
  uint8_t *j = fx_jpeg(203, 150, IMG_CS_RGB, 4, 90, &len);
  check_regions(j, len, "4:2:0 JPEG");
  free(j);
  j = fx_jpeg(90, 71, IMG_CS_GRAY, 5, 90, &len);
  check_regions(j, len, "grayscale JPEG");
  free(j);
  j = fx_jpeg(77, 64, IMG_CS_CMYK, 6, 90, &len);
  check_regions(j, len, "CMYK JPEG");
  free(j);
}

static void test_gray_cmyk_ycck(void) {
  size_t len;
  uint8_t *j = fx_jpeg(64, 48, IMG_CS_GRAY, 9, 95, &len), *out;
  int w, h;
  img_decoder *d = img_decoder_new();
  img_info info;
  char err[256];
  CHECK(img_open(d, j, len, &info, err, sizeof err) == IMG_OK && info.colorspace == IMG_CS_GRAY, "gray header");
  CHECK(decode_all(j, len, 8, 0, &out, &w, &h) == IMG_OK, "gray decode");
  int same = 1;
  for (int i = 0; i < w * h; i++) same &= out[3 * i] == out[3 * i + 1] && out[3 * i] == out[3 * i + 2];
  CHECK(same, "grayscale becomes R = G = B");
  free(out);
  free(j);
  /* CMYK as Photoshop writes it (inverted); PIL: R = k' - (255 - c') * k' / 255 */
  int cs[2] = {IMG_CS_CMYK, IMG_CS_YCCK};
  for (int t = 0; t < 2; t++) {
    uint8_t px[16 * 16 * 4];
    for (int i = 0; i < 256; i++) {
      px[4 * i] = 200;
      px[4 * i + 1] = 100;
      px[4 * i + 2] = 30;
      px[4 * i + 3] = 180;
    }
    uint8_t *jj;
    CHECK(img_encode_jpeg_cs(px, 16, 16, cs[t], 100, &jj, &len, err, sizeof err) == 0, "encode: %s", err);
    CHECK(img_open(d, jj, len, &info, err, sizeof err) == IMG_OK && info.colorspace == cs[t], "cmyk header %d",
          info.colorspace);
    CHECK(decode_all(jj, len, 8, 0, &out, &w, &h) == IMG_OK, "cmyk decode");
    int expect[3];
    for (int c = 0; c < 3; c++) {
      int v = 255 - px[c], nk = px[3], tt = v * nk + 128;
      expect[c] = nk - (((tt >> 8) + tt) >> 8);
    }
    int maxd = 0;
    for (int i = 0; i < 256; i++)
      for (int c = 0; c < 3; c++) maxd = MAX(maxd, abs(out[3 * i + c] - expect[c]));
    CHECK(maxd <= 3, "%s: RGB off PIL's conversion by %d", t ? "YCCK" : "CMYK", maxd);
    free(out);
    free(jj);
  }
  img_decoder_free(d);
}

static void test_png(void) {
  char p[512];
  for (int gray = 0; gray < 2; gray++) {
    snprintf(p, sizeof p, "%s/png%d.JPEG", dir, gray); /* a PNG named .JPEG, as ImageNet has one */
    fx_write_png(p, 37, 21, gray, 11);
    uint8_t *buf = NULL, *out;
    size_t cap = 0, len;
    char err[256];
    CHECK(img_read_file(p, &buf, &cap, &len, err, sizeof err) == IMG_OK, "read");
    int w, h;
    CHECK(decode_all(buf, len, 4, 1, &out, &w, &h) == IMG_OK && w == 37 && h == 21, "PNG decodes at full size");
    uint8_t *ref = fx_rgb(37, 21, 11);
    int bad = 0;
    for (int i = 0; i < 37 * 21; i++)
      for (int c = 0; c < 3; c++) bad += out[3 * i + c] != ref[3 * i + (gray ? 1 : c)];
    CHECK(bad == 0, "PNG pixels (gray %d): %d differ", gray, bad);
    free(ref);
    free(out);
    free(buf);
  }
}

/* Each kind of bad file gives its status, through img_open/img_verify/tf_*. */
static void test_bad_files(void) {
  char p[512], err[256];
  uint8_t *buf = NULL, *out = malloc(64 * 64 * 3);
  size_t cap = 0, len;
  img_decoder *d = img_decoder_new();
  tf_ctx *t = tf_new();
  img_info info;
  snprintf(p, sizeof p, "%s/zero.JPEG", dir);
  fx_write(p, "", 0);
  CHECK(img_read_file(p, &buf, &cap, &len, err, sizeof err) == IMG_EMPTY, "zero bytes");
  CHECK(img_open(d, buf, 0, &info, err, sizeof err) == IMG_EMPTY, "zero bytes (open)");
  snprintf(p, sizeof p, "%s/missing.JPEG", dir);
  CHECK(img_read_file(p, &buf, &cap, &len, err, sizeof err) == IMG_UNREADABLE && strstr(err, "No such file"),
        "missing file: %s", err);
  CHECK(img_read_file(dir, &buf, &cap, &len, err, sizeof err) == IMG_UNREADABLE, "a directory is unreadable");
  snprintf(p, sizeof p, "%s/trunc.JPEG", dir);
  fx_write_truncated(p, 160, 120, 3, 0.6);
  CHECK(img_read_file(p, &buf, &cap, &len, err, sizeof err) == IMG_OK, "read truncated");
  CHECK(img_open(d, buf, len, &info, err, sizeof err) == IMG_OK, "a truncated file's header is fine");
  CHECK(img_verify(d, err, sizeof err) == IMG_TRUNCATED, "verify finds truncation: %s", err);
  CHECK(tf_eval(t, buf, len, 64, 64, out, err, sizeof err) == IMG_TRUNCATED, "eval of a truncated file: %s", err);
  fx_write_truncated(p, 160, 120, 3, 0.05);
  img_read_file(p, &buf, &cap, &len, err, sizeof err);
  int st = img_open(d, buf, len, &info, err, sizeof err);
  if (st == IMG_OK) st = img_verify(d, err, sizeof err);
  CHECK(st == IMG_TRUNCATED || st == IMG_CORRUPT, "header cut short: %d %s", st, err);
  snprintf(p, sizeof p, "%s/garbage.JPEG", dir);
  fx_write_garbage(p, 3000);
  img_read_file(p, &buf, &cap, &len, err, sizeof err);
  CHECK(img_open(d, buf, len, &info, err, sizeof err) == IMG_UNSUPPORTED && strstr(err, "not a JPEG"), "garbage: %s",
        err);
  /* a JPEG marker followed by garbage */
  memcpy(buf, "\xFF\xD8\xFF\xE0", 4);
  st = img_open(d, buf, len, &info, err, sizeof err);
  if (st == IMG_OK) st = img_verify(d, err, sizeof err);
  CHECK(st == IMG_CORRUPT || st == IMG_TRUNCATED, "JPEG garbage: %d %s", st, err);
  snprintf(p, sizeof p, "%s/huge.JPEG", dir);
  fx_write_huge_dims(p, 60000, 50000);
  img_read_file(p, &buf, &cap, &len, err, sizeof err);
  CHECK(img_open(d, buf, len, &info, err, sizeof err) == IMG_DIMS && strstr(err, "60000x50000"), "absurd dims: %s",
        err);
  CHECK(tf_eval(t, buf, len, 64, 64, out, err, sizeof err) == IMG_DIMS, "eval refuses absurd dims");
  rrc_opts o = {0};
  rrc_opts_default(&o);
  rng_stream r = rng_stream_make(1, 1);
  CHECK(tf_train(t, buf, len, 64, &o, &r, out, err, sizeof err) == IMG_DIMS, "train refuses absurd dims");
  /* a truncated PNG */
  snprintf(p, sizeof p, "%s/trunc.png", dir);
  fx_write_png(p, 64, 64, 0, 2);
  img_read_file(p, &buf, &cap, &len, err, sizeof err);
  len = len * 2 / 3;
  st = img_open(d, buf, len, &info, err, sizeof err);
  if (st == IMG_OK) st = img_verify(d, err, sizeof err);
  CHECK(st == IMG_TRUNCATED || st == IMG_CORRUPT, "truncated PNG: %d %s", st, err);
  for (int s = 1; s < IMG_NSTATUS; s++) CHECK(strcmp(img_status_name(s), "unknown") != 0, "status %d named", s);
  img_decoder_free(d);
  tf_free(t);
  free(buf);
  free(out);
}

/* A window of the resize equals the same pixels of the whole resize; flip mirrors. */
static void test_resample_window_flip(void) {
  int w = 157, h = 103, ow = 91, oh = 77;
  uint8_t *rgb = fx_rgb(w, h, 8);
  rs_axis ax = {0}, ay = {0};
  rs_scratch s = {0};
  CHECK(rs_axis_init(&ax, w, 0, w, ow) == 0 && rs_axis_init(&ay, h, 0, h, oh) == 0, "axes");
  uint8_t *full = malloc((size_t)ow * oh * 3), *win = malloc((size_t)ow * oh * 3), *fl = malloc((size_t)ow * oh * 3);
  rs_resample(&s, full, (size_t)ow * 3, rgb, (size_t)w * 3, 3, 0, 0, &ax, 0, ow, &ay, 0, oh, 0);
  int x0 = 13, y0 = 9, ww = 40, hh = 50, bad = 0;
  int lo, hi, ylo, yhi;
  rs_axis_span(&ax, x0, ww, &lo, &hi);
  rs_axis_span(&ay, y0, hh, &ylo, &yhi);
  /* pass only the source rows/columns the window needs */
  rs_resample(&s, win, (size_t)ww * 3, rgb + ((size_t)ylo * w + lo) * 3, (size_t)w * 3, 3, lo, ylo, &ax, x0, ww, &ay,
              y0, hh, 0);
  for (int y = 0; y < hh; y++)
    bad += memcmp(win + (size_t)y * ww * 3, full + ((size_t)(y0 + y) * ow + x0) * 3, (size_t)ww * 3) != 0;
  CHECK(bad == 0, "window rows differing: %d", bad);
  rs_resample(&s, fl, (size_t)ow * 3, rgb, (size_t)w * 3, 3, 0, 0, &ax, 0, ow, &ay, 0, oh, 1);
  bad = 0;
  for (int y = 0; y < oh; y++)
    for (int x = 0; x < ow; x++)
      bad += memcmp(fl + ((size_t)y * ow + x) * 3, full + ((size_t)y * ow + ow - 1 - x) * 3, 3) != 0;
  CHECK(bad == 0, "flip: %d pixels not mirrored", bad);
  /* identity */
  rs_axis_init(&ax, w, 0, w, w);
  rs_axis_init(&ay, h, 0, h, h);
  uint8_t *id = malloc((size_t)w * h * 3);
  rs_resample(&s, id, (size_t)w * 3, rgb, (size_t)w * 3, 3, 0, 0, &ax, 0, w, &ay, 0, h, 0);
  CHECK(ax.identity && !memcmp(id, rgb, (size_t)w * h * 3), "identity resize copies");
  /* the fast path (14-bit weights, vertical pass first) stays within 2 of the exact one, flipped too */
  uint8_t *rgbx = malloc((size_t)w * h * 4), *fast = malloc((size_t)ow * oh * 3);
  uint8_t *padded = malloc((size_t)w * h * 3 + 16); /* the fast path reads 16 bytes ahead */
  memcpy(padded, rgb, (size_t)w * h * 3);
  for (int i = 0; i < w * h; i++) {
    memcpy(rgbx + 4 * i, rgb + 3 * i, 3);
    rgbx[4 * i + 3] = 255;
  }
  rs_axis_init(&ax, w, 0, w, ow);
  rs_axis_init(&ay, h, 0, h, oh);
  int maxd = 0;
  for (int f = 0; f < 2; f++) {
    rs_resample_fast(&s, fast, (size_t)ow * 3, padded, (size_t)w * 3, 0, 0, &ax, &ay, f);
    for (int y = 0; y < oh; y++)
      for (int x = 0; x < ow; x++)
        for (int c = 0; c < 3; c++)
          maxd = MAX(maxd,
                     abs(fast[((size_t)y * ow + (f ? ow - 1 - x : x)) * 3 + c] - full[((size_t)y * ow + x) * 3 + c]));
  }
  CHECK(maxd <= 2, "fast resize differs by %d", maxd);
  /* and for a shrink by 5 (several groups of taps) */
  rs_axis_init(&ax, w, 0, w, 31);
  rs_axis_init(&ay, h, 0, h, 20);
  uint8_t small[31 * 20 * 3], small_fast[31 * 20 * 3];
  rs_resample(&s, small, 31 * 3, rgb, (size_t)w * 3, 3, 0, 0, &ax, 0, 31, &ay, 0, 20, 0);
  rs_resample_fast(&s, small_fast, 31 * 3, padded, (size_t)w * 3, 0, 0, &ax, &ay, 0);
  maxd = 0;
  for (size_t i = 0; i < sizeof small; i++) maxd = MAX(maxd, abs(small[i] - small_fast[i]));
  CHECK(maxd <= 2, "fast shrink by 5 differs by %d", maxd);
  rs_axis_init(&ax, w, 0, w, ow);
  rs_axis_init(&ay, h, 0, h, oh);
  free(padded);
  /* RGBX input through the exact path equals RGB input */
  rs_resample(&s, fast, (size_t)ow * 3, rgbx, (size_t)w * 4, 4, 0, 0, &ax, 0, ow, &ay, 0, oh, 0);
  CHECK(!memcmp(fast, full, (size_t)ow * oh * 3), "RGBX and RGB sources give the same exact resize");
  free(rgbx);
  free(fast);
  free(id);
  free(full);
  free(win);
  free(fl);
  free(rgb);
  rs_axis_free(&ax);
  rs_axis_free(&ay);
  rs_scratch_free(&s);
}

/* PIL's coefficients: each output's weights sum to 1 (in fixed point, within rounding). */
static void test_resample_coeffs(void) {
  rs_axis a = {0};
  int sizes[][2] = {{500, 224}, {224, 500}, {375, 256}, {7, 3}, {1000, 13}};
  for (size_t k = 0; k < ARRAY_LEN(sizes); k++) {
    rs_axis_init(&a, sizes[k][0], 0, sizes[k][0], sizes[k][1]);
    int bad = 0;
    for (int i = 0; i < a.n; i++) {
      long long sum = 0;
      for (int t = 0; t < a.count[i]; t++) sum += a.w[(size_t)i * a.ksize + t];
      bad += llabs(sum - (1 << 22)) > a.count[i] || a.start[i] < 0 || a.start[i] + a.count[i] > a.in_size;
    }
    CHECK(bad == 0, "%d -> %d: %d outputs with bad weights", sizes[k][0], sizes[k][1], bad);
  }
  rs_axis_free(&a);
}

static void test_geometry(void) {
  int rw, rh;
  eval_resize_size(500, 375, 256, &rw, &rh);
  CHECK(rw == 341 && rh == 256, "Resize(256) of 500x375: %dx%d", rw, rh);
  eval_resize_size(333, 500, 256, &rw, &rh);
  CHECK(rw == 256 && rh == 384, "Resize(256) of 333x500: %dx%d", rw, rh);
  CHECK(center_crop_offset(341, 224) == 58, "CenterCrop offset rounds half to even (58.5 -> 58): %d",
        center_crop_offset(341, 224));
  CHECK(center_crop_offset(293, 224) == 34 && center_crop_offset(295, 224) == 36, "34.5 -> 34, 35.5 -> 36");
  CHECK(center_crop_offset(200, 224) == -12 && center_crop_offset(201, 224) == -11, "padding offsets");
  rrc_opts o = {0};
  rrc_opts_default(&o);
  CHECK(o.scale_min == 0.08 && o.scale_max == 1.0 && fabs(o.ratio_min - 0.75) < 1e-12 &&
            fabs(o.ratio_max - 4.0 / 3) < 1e-12,
        "torchvision defaults");
  int fallback = 0, bad = 0;
  for (int i = 0; i < 2000; i++) {
    rng_stream r = rng_stream_make(3, (uint64_t)i);
    crop_box b = rrc_box(500, 375, &o, &r);
    bad += b.x < 0 || b.y < 0 || b.w < 1 || b.h < 1 || b.x + b.w > 500 || b.y + b.h > 375;
    double area = (double)b.w * b.h / (500.0 * 375), ratio = (double)b.w / b.h;
    if (area > 1.0 - 1e-9 && b.w == 500 && b.h == 375) fallback++;
    else bad += area < 0.07 || area > 1.01 || ratio < 0.74 || ratio > 1.35;
    rng_stream r2 = rng_stream_make(3, (uint64_t)i);
    crop_box b2 = rrc_box(500, 375, &o, &r2);
    bad += memcmp(&b, &b2, sizeof b) != 0;
  }
  CHECK(bad == 0, "%d RandomResizedCrop boxes out of range or not reproducible", bad);
  /* a very wide image: all ten tries fail, the fallback takes the central 4/3 crop */
  rng_stream r = rng_stream_make(3, 1);
  crop_box b = rrc_box(1000, 10, &o, &r);
  CHECK(b.w == 13 && b.h == 10 && b.x == 493 && b.y == 0, "fallback box %d,%d %dx%d", b.x, b.y, b.w, b.h);
  b = rrc_box(10, 1000, &o, &r);
  CHECK(b.w == 10 && b.h == 13 && b.y == 493, "tall fallback box %d,%d %dx%d", b.x, b.y, b.w, b.h);
}

/* The train transform: deterministic for a stream, flips follow the stream, output near an exact crop. */
static void test_train_transform(void) {
  size_t len;
  uint8_t *j = fx_jpeg(500, 375, IMG_CS_RGB, 12, 90, &len);
  tf_ctx *t = tf_new();
  rrc_opts o = {0};
  rrc_opts_default(&o);
  uint8_t *a = malloc(96 * 96 * 3), *b = malloc(96 * 96 * 3), *ref = malloc(96 * 96 * 3);
  char err[256];
  int flips = 0, bad = 0;
  double total = 0;
  for (int i = 0; i < 40; i++) {
    rng_stream r1 = rng_stream_make(9, (uint64_t)i), r2 = r1, r3 = r1;
    CHECK(tf_train(t, j, len, 96, &o, &r1, a, err, sizeof err) == IMG_OK, "train: %s", err);
    tf_train(t, j, len, 96, &o, &r2, b, err, sizeof err);
    bad += memcmp(a, b, 96 * 96 * 3) != 0;
    crop_box box = rrc_box(500, 375, &o, &r3);
    int flip = rng_next_uniform(&r3) < 0.5;
    flips += flip;
    tf_crop_resize(t, j, len, box, flip, 96, 0, 0, ref, err, sizeof err);
    double sum = 0;
    for (int k = 0; k < 96 * 96 * 3; k++) sum += abs(a[k] - ref[k]);
    total += sum / (96 * 96 * 3);
  }
  CHECK(bad == 0, "train transform not reproducible");
  CHECK(flips > 5 && flips < 35, "flips %d of 40", flips);
  /* DCT-domain scaling and the vertical-first resize move sharp synthetic
   * edges a little (test_data_torchvision.c bounds this against torchvision) */
  CHECK(total / 40 < 4.0, "fast train path differs from the exact crop by %.2f on average", total / 40);
  free(a);
  free(b);
  free(ref);
  free(j);
  tf_free(t);
}

int main(void) {
  dir = fx_tmpdir("img");
  RUN(test_rgb_roundtrip);
  RUN(test_region_decode);
  RUN(test_gray_cmyk_ycck);
  RUN(test_png);
  RUN(test_bad_files);
  RUN(test_resample_window_flip);
  RUN(test_resample_coeffs);
  RUN(test_geometry);
  RUN(test_train_transform);
  fx_rmdir(dir);
  return harness_finish();
}
