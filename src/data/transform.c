/* transform.c: RandomResizedCrop/flip and Resize/CenterCrop on encoded
 * images: geometry first (from the header alone), then only the pixels that
 * geometry needs are decoded, then resampled. */
#include "transform.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "resample.h"

struct tf_ctx {
  img_decoder *dec;
  img_info info;
  uint8_t *px; /* decoded region */
  size_t px_cap;
  rs_axis ax, ay;
  rs_scratch rs;
  int in_decode; /* the last call got past the header */
};

void rrc_opts_default(rrc_opts *o) {
  if (o->scale_min <= 0) o->scale_min = 0.08;
  if (o->scale_max <= 0) o->scale_max = 1.0;
  if (o->ratio_min <= 0) o->ratio_min = 3.0 / 4.0;
  if (o->ratio_max <= 0) o->ratio_max = 4.0 / 3.0;
}

/* Python's round(): half to even (the default rounding mode). */
static int py_round(double v) { return (int)nearbyint(v); }

crop_box rrc_box(int width, int height, const rrc_opts *o, rng_stream *r) {
  double area = (double)height * width;
  double lr0 = log(o->ratio_min), lr1 = log(o->ratio_max);
  for (int i = 0; i < 10; i++) {
    double target_area = area * (o->scale_min + (o->scale_max - o->scale_min) * rng_next_uniform(r));
    double aspect = exp(lr0 + (lr1 - lr0) * rng_next_uniform(r));
    int w = py_round(sqrt(target_area * aspect));
    int h = py_round(sqrt(target_area / aspect));
    if (0 < w && w <= width && 0 < h && h <= height) {
      int y = (int)rng_next_below(r, (uint64_t)(height - h + 1));
      int x = (int)rng_next_below(r, (uint64_t)(width - w + 1));
      return (crop_box){x, y, w, h};
    }
  }
  /* fallback to the central crop */
  double in_ratio = (double)width / (double)height;
  double rmin = o->ratio_min < o->ratio_max ? o->ratio_min : o->ratio_max;
  double rmax = o->ratio_min < o->ratio_max ? o->ratio_max : o->ratio_min;
  int w = width, h = height;
  if (in_ratio < rmin) {
    h = py_round(w / rmin);
  } else if (in_ratio > rmax) {
    w = py_round(h * rmax);
  }
  if (w < 1) w = 1;
  if (h < 1) h = 1;
  if (w > width) w = width;
  if (h > height) h = height;
  return (crop_box){(width - w) / 2, (height - h) / 2, w, h};
}

void eval_resize_size(int width, int height, int resize, int *rw, int *rh) {
  int sshort = width <= height ? width : height, slong = width <= height ? height : width;
  int nlong = (int)((double)((long long)resize * slong) / (double)sshort);
  if (nlong < 1) nlong = 1;
  if (width <= height) {
    *rw = resize;
    *rh = nlong;
  } else {
    *rw = nlong;
    *rh = resize;
  }
}

int center_crop_offset(int size, int crop) {
  if (crop > size) return -((crop - size) / 2);
  return py_round((size - crop) / 2.0);
}

tf_ctx *tf_new(void) {
  tf_ctx *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  t->dec = img_decoder_new();
  if (!t->dec) {
    free(t);
    return NULL;
  }
  return t;
}

void tf_free(tf_ctx *t) {
  if (!t) return;
  img_decoder_free(t->dec);
  free(t->px);
  rs_axis_free(&t->ax);
  rs_axis_free(&t->ay);
  rs_scratch_free(&t->rs);
  free(t);
}

int tf_failed_in_decode(const tf_ctx *t) { return t->in_decode; }

void tf_last_size(const tf_ctx *t, int *w, int *h) {
  *w = t->info.width;
  *h = t->info.height;
}

static int oom(char *err, size_t errlen) {
  if (err && errlen) snprintf(err, errlen, "out of memory");
  return IMG_CORRUPT;
}

/* Decodes [x0,x1) x [y0,y1) of the image at scale num/8 into t->px (bpp 3:
 * RGB, 4: RGBX); the buffer starts at column *px_x0 and holds rows of *px_w
 * pixels. */
static int decode_region(tf_ctx *t, int num, int bpp, int x0, int x1, int y0, int y1, int *px_x0, int *px_w, char *err,
                         size_t errlen) {
  return img_decode(t->dec, num, 0, bpp, x0, y0, x1 - x0, y1 - y0, &t->px, &t->px_cap, px_x0, px_w, err, errlen);
}

/* Opens the image's header (t->info). */
static int open_image(tf_ctx *t, const uint8_t *buf, size_t len, char *err, size_t errlen) {
  t->in_decode = 0;
  int st = img_open(t->dec, buf, len, &t->info, err, errlen);
  if (st == IMG_OK) t->in_decode = 1;
  return st;
}

/* tf_crop_resize on an opened image. */
static int crop_resize(tf_ctx *t, crop_box box, int flip, int crop, int fast, int dct, uint8_t *out, char *err,
                       size_t errlen) {
  int st;
  int W = t->info.width, H = t->info.height;
  if (box.x < 0 || box.y < 0 || box.w < 1 || box.h < 1 || box.x + box.w > W || box.y + box.h > H) {
    if (err && errlen) snprintf(err, errlen, "crop box outside the image");
    return IMG_CORRUPT;
  }
  int num = 8, sw = W, sh = H;
  if (dct && t->info.format == IMG_FMT_JPEG) {
    static const int nums[3] = {1, 2, 4};
    for (int i = 0; i < 3; i++) {
      int w2, h2;
      img_scaled_size(t->dec, nums[i], &w2, &h2);
      if ((double)box.w * w2 / W >= crop && (double)box.h * h2 / H >= crop) {
        num = nums[i];
        break;
      }
    }
    img_scaled_size(t->dec, num, &sw, &sh);
  }
  /* The crop box in the scaled image; the crop is the resize's input image. */
  double fx = (double)sw / W, fy = (double)sh / H;
  double bx0 = box.x * fx, bx1 = (box.x + box.w) * fx, by0 = box.y * fy, by1 = (box.y + box.h) * fy;
  int cx0 = (int)floor(bx0), cx1 = (int)ceil(bx1), cy0 = (int)floor(by0), cy1 = (int)ceil(by1);
  if (cx1 > sw) cx1 = sw;
  if (cy1 > sh) cy1 = sh;
  if (rs_axis_init(&t->ax, cx1 - cx0, bx0 - cx0, bx1 - cx0, crop) != 0 ||
      rs_axis_init(&t->ay, cy1 - cy0, by0 - cy0, by1 - cy0, crop) != 0)
    return oom(err, errlen);
  int xlo, xhi, ylo, yhi;
  rs_axis_span(&t->ax, 0, crop, &xlo, &xhi);
  rs_axis_span(&t->ay, 0, crop, &ylo, &yhi);
  int px0, pw;
  int bpp = fast ? 3 : 4;
  st = decode_region(t, num, bpp, cx0 + xlo, cx0 + xhi, cy0 + ylo, cy0 + yhi, &px0, &pw, err, errlen);
  if (st != IMG_OK) return st;
  const uint8_t *src = t->px;
  size_t stride = (size_t)pw * bpp;
  int rc = fast ? rs_resample_fast(&t->rs, out, (size_t)crop * 3, src, stride, px0 - cx0, ylo, &t->ax, &t->ay, flip)
                : rs_resample(&t->rs, out, (size_t)crop * 3, src, stride, 4, px0 - cx0, ylo, &t->ax, 0, crop, &t->ay, 0,
                              crop, flip);
  if (rc != 0) return oom(err, errlen);
  return IMG_OK;
}

int tf_crop_resize(tf_ctx *t, const uint8_t *buf, size_t len, crop_box box, int flip, int crop, int fast, int dct,
                   uint8_t *out, char *err, size_t errlen) {
  int st = open_image(t, buf, len, err, errlen);
  if (st != IMG_OK) return st;
  return crop_resize(t, box, flip, crop, fast, dct, out, err, errlen);
}

int tf_train(tf_ctx *t, const uint8_t *buf, size_t len, int crop, const rrc_opts *o, rng_stream *r, uint8_t *out,
             char *err, size_t errlen) {
  int st = open_image(t, buf, len, err, errlen);
  if (st != IMG_OK) return st;
  crop_box box = rrc_box(t->info.width, t->info.height, o, r);
  int flip = rng_next_uniform(r) < 0.5;
  return crop_resize(t, box, flip, crop, 1, 1, out, err, errlen);
}

int tf_eval(tf_ctx *t, const uint8_t *buf, size_t len, int resize, int crop, uint8_t *out, char *err, size_t errlen) {
  int st = open_image(t, buf, len, err, errlen);
  if (st != IMG_OK) return st;
  int W = t->info.width, H = t->info.height, rw, rh;
  eval_resize_size(W, H, resize, &rw, &rh);
  if (rs_axis_init(&t->ax, W, 0, W, rw) != 0 || rs_axis_init(&t->ay, H, 0, H, rh) != 0) return oom(err, errlen);
  int left = center_crop_offset(rw, crop), top = center_crop_offset(rh, crop);
  int wx0 = left > 0 ? left : 0, wx1 = left + crop < rw ? left + crop : rw;
  int wy0 = top > 0 ? top : 0, wy1 = top + crop < rh ? top + crop : rh;
  if (wx0 != left || wy0 != top || wx1 != left + crop || wy1 != top + crop) memset(out, 0, (size_t)crop * crop * 3);
  int xlo, xhi, ylo, yhi;
  rs_axis_span(&t->ax, wx0, wx1 - wx0, &xlo, &xhi);
  rs_axis_span(&t->ay, wy0, wy1 - wy0, &ylo, &yhi);
  int px0, pw;
  st = decode_region(t, 8, 4, xlo, xhi, ylo, yhi, &px0, &pw, err, errlen);
  if (st != IMG_OK) return st;
  uint8_t *o = out + ((size_t)(wy0 - top) * crop + (size_t)(wx0 - left)) * 3;
  if (rs_resample(&t->rs, o, (size_t)crop * 3, t->px, (size_t)pw * 4, 4, px0, ylo, &t->ax, wx0, wx1 - wx0, &t->ay, wy0,
                  wy1 - wy0, 0) != 0)
    return oom(err, errlen);
  return IMG_OK;
}

int tf_fit(const uint8_t *rgb, int w, int h, int max_side, uint8_t **out, int *ow, int *oh) {
  int l = w > h ? w : h;
  int nw = w, nh = h;
  if (max_side > 0 && l > max_side) {
    if (w >= h) {
      nw = max_side;
      nh = py_round((double)h * max_side / w);
    } else {
      nh = max_side;
      nw = py_round((double)w * max_side / h);
    }
    if (nw < 1) nw = 1;
    if (nh < 1) nh = 1;
  }
  uint8_t *o = malloc((size_t)nw * nh * 3);
  if (!o) return -1;
  rs_axis ax = {0}, ay = {0};
  rs_scratch s = {0};
  int rc = -1;
  if (rs_axis_init(&ax, w, 0, w, nw) == 0 && rs_axis_init(&ay, h, 0, h, nh) == 0)
    rc = rs_resample(&s, o, (size_t)nw * 3, rgb, (size_t)w * 3, 3, 0, 0, &ax, 0, nw, &ay, 0, nh, 0);
  rs_axis_free(&ax);
  rs_axis_free(&ay);
  rs_scratch_free(&s);
  if (rc != 0) {
    free(o);
    return -1;
  }
  *out = o;
  *ow = nw;
  *oh = nh;
  return 0;
}
