/* resample.h: PIL's antialiased bilinear resize (Image.resize with
 * Image.BILINEAR, which torchvision 0.14 uses on PIL images), bit for bit: the
 * same filter support, coefficient rounding to 22 fraction bits, horizontal
 * pass first with 8-bit rounding, then the vertical pass. It can compute any
 * window of the output alone (the centre crop of a resize) and mirror columns
 * (a horizontal flip after the resize) without changing a single pixel. */
#ifndef RN50_RESAMPLE_H
#define RN50_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* One axis of a resize: input samples [in0, in1) of in_size onto n outputs. */
typedef struct {
  int n;        /* output samples */
  int in_size;  /* input samples */
  int ksize;    /* weights stored per output sample */
  int identity; /* output sample i is input sample i */
  int *start;   /* [n] first input sample used */
  int *count;   /* [n] input samples used */
  int32_t *w;   /* [n][ksize] weights in PIL's fixed point */
  size_t cap_n, cap_w;
} rs_axis;

/* Coefficients as PIL's precompute_coeffs + normalize_coeffs_8bpc make them
 * (in0/in1 are the box edges, rounded to float as PIL stores them).
 * Returns 0, or -1 when out of memory. Reuses a's arrays. */
int rs_axis_init(rs_axis *a, int in_size, double in0, double in1, int out_size);
void rs_axis_free(rs_axis *a);
/* Input samples [*lo, *hi) that outputs [o0, o0+n) read. */
void rs_axis_span(const rs_axis *a, int o0, int n, int *lo, int *hi);

/* Reusable scratch for rs_resample. */
typedef struct {
  uint8_t *tmp;
  size_t tmp_cap;
  int16_t *wv; /* rs_resample_fast's expanded weights */
  size_t wv_cap;
} rs_scratch;
void rs_scratch_free(rs_scratch *s);

/* Writes the output window columns [ox0, ox0+ow), rows [oy0, oy0+oh) of the
 * resize described by ax (horizontal) and ay (vertical) to out (RGB, row
 * stride out_stride bytes). src (bpp 3: RGB, 4: RGBX, row stride src_stride)
 * holds input pixel (sx0, sy0) at its start and must cover the spans of the
 * window. flip mirrors the window's columns. Returns 0, or -1 when out of
 * memory. */
int rs_resample(rs_scratch *s, uint8_t *out, size_t out_stride, const uint8_t *src, size_t src_stride, int bpp, int sx0,
                int sy0, const rs_axis *ax, int ox0, int ow, const rs_axis *ay, int oy0, int oh, int flip);

/* The same resize of the whole output (resample_fast.c): 14-bit weights,
 * vertical pass first, AVX2 pair multiply-adds. Within 1-2 of PIL's pixels;
 * for the train transform. src is RGB and must be readable 16 bytes past
 * the last row used. */
int rs_resample_fast(rs_scratch *s, uint8_t *out, size_t out_stride, const uint8_t *src, size_t src_stride, int sx0,
                     int sy0, const rs_axis *ax, const rs_axis *ay, int flip);

#endif
