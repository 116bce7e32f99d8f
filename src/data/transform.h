/* transform.h: torchvision's ImageNet transforms on encoded images.
 *   train: RandomResizedCrop(crop, scale, ratio) (ten tries, then the centre
 *          crop fallback) + RandomHorizontalFlip(0.5), bilinear with antialias;
 *   eval:  Resize(resize) (shorter side, bilinear with antialias) + CenterCrop(crop).
 * The output is uint8 RGB HWC. The eval transform is bit-exact with
 * torchvision 0.14 on PIL images. The train transform draws its randomness
 * from the caller's rng stream and decodes only the crop's region, scaled in
 * the DCT domain by 1/2, 1/4 or 1/8 when the crop is shrunk at least that
 * much anyway (without that scaling it is within 1-2 of torchvision's pixels). */
#ifndef RN50_TRANSFORM_H
#define RN50_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "../core/rng.h"

typedef struct {
  double scale_min, scale_max; /* fraction of the image area (0.08, 1) */
  double ratio_min, ratio_max; /* aspect ratio w/h (3/4, 4/3) */
} rrc_opts;

/* A crop box in image pixels. */
typedef struct {
  int x, y, w, h;
} crop_box;

/* Fills zeros with torchvision's defaults. */
void rrc_opts_default(rrc_opts *o);
/* RandomResizedCrop.get_params (torchvision 0.14) with draws from r. */
crop_box rrc_box(int width, int height, const rrc_opts *o, rng_stream *r);
/* Resize(resize) output size: shorter side = resize, longer truncated. */
void eval_resize_size(int width, int height, int resize, int *rw, int *rh);
/* CenterCrop offset along one axis; negative when the crop pads with zeros. */
int center_crop_offset(int size, int crop);

typedef struct tf_ctx tf_ctx; /* per-thread decoder + buffers, reused */
tf_ctx *tf_new(void);
void tf_free(tf_ctx *t);

/* Train transform of the encoded image buf[len] into out [crop][crop][3].
 * Returns IMG_OK or an IMG_* status with the reason in err. */
int tf_train(tf_ctx *t, const uint8_t *buf, size_t len, int crop, const rrc_opts *o, rng_stream *r, uint8_t *out,
             char *err, size_t errlen);
/* Crop box -> resize to crop x crop -> optional flip, as torchvision's
 * resized_crop + hflip. The pixels are always decoded as PIL decodes them.
 * fast=0, dct=0 is PIL-exact; the train transform uses fast=1 (vertical pass
 * first: less work, rounding differs by 1 here and there) and dct=1 (decode
 * at 1/2, 1/4 or 1/8 scale when the crop is shrunk at least that much). */
int tf_crop_resize(tf_ctx *t, const uint8_t *buf, size_t len, crop_box box, int flip, int crop, int fast, int dct,
                   uint8_t *out, char *err, size_t errlen);
/* Eval transform into out [crop][crop][3]. */
int tf_eval(tf_ctx *t, const uint8_t *buf, size_t len, int resize, int crop, uint8_t *out, char *err, size_t errlen);
/* 1 when the last tf_* call failed while decoding pixels (truncated or
 * corrupt data, which another crop might not reach), 0 when it failed on
 * the header (or did not fail). */
int tf_failed_in_decode(const tf_ctx *t);
/* Size of the image last opened by tf_* (0 x 0 if none). */
void tf_last_size(const tf_ctx *t, int *w, int *h);

/* Resize an RGB image so that its longer side is at most max_side (PIL
 * bilinear with antialias); used by `rn50 pack`. *out is malloc'd. */
int tf_fit(const uint8_t *rgb, int w, int h, int max_side, uint8_t **out, int *ow, int *oh);

#endif
