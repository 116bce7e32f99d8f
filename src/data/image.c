/* image.c: JPEG (libjpeg API) and PNG (libspng) decoding to RGB, region and
 * DCT-scaled decoding, JPEG/PNG encoding. libjpeg reports errors by longjmp;
 * every entry point that calls it sets its own jump target and turns the
 * error into an IMG_* status. */
#include "image.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <spng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jpeglib.h>
#include <jerror.h>

static const char *status_names[IMG_NSTATUS] = {
    "ok", "zero bytes", "truncated", "corrupt", "absurd dimensions", "not a JPEG or PNG", "unreadable",
};

const char *img_status_name(int status) {
  return status >= 0 && status < IMG_NSTATUS ? status_names[status] : "unknown";
}

static void set_err(char *err, size_t errlen, const char *fmt, const char *detail) {
  if (err && errlen) snprintf(err, errlen, fmt, detail);
}

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  int eof;      /* "Premature end of JPEG file" warnings: the data was cut short */
  int msg_code; /* code of the error that ended decoding */
  char msg[JMSG_LENGTH_MAX];
} jerr_mgr;

static void j_error_exit(j_common_ptr c) {
  jerr_mgr *e = (jerr_mgr *)c->err;
  e->msg_code = c->err->msg_code;
  (*c->err->format_message)(c, e->msg);
  longjmp(e->jb, 1);
}

static void j_emit_message(j_common_ptr c, int level) {
  jerr_mgr *e = (jerr_mgr *)c->err;
  if (level < 0 && c->err->msg_code == JWRN_JPEG_EOF) e->eof++;
}

static void j_output_message(j_common_ptr c) { (void)c; }

struct img_decoder {
  struct jpeg_decompress_struct jd;
  jerr_mgr jerr;
  int jd_ready;
  int header_ready; /* jpeg_read_header done and not yet used by a decode */
  const uint8_t *buf;
  size_t len;
  img_info info;
  uint8_t *rows; /* row staging for cropped/CMYK decoding */
  size_t rows_cap;
  uint8_t *png; /* full PNG decode */
  size_t png_cap;
};

img_decoder *img_decoder_new(void) {
  img_decoder *volatile d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->jd.err = jpeg_std_error(&d->jerr.pub);
  d->jerr.pub.error_exit = j_error_exit;
  d->jerr.pub.emit_message = j_emit_message;
  d->jerr.pub.output_message = j_output_message;
  if (setjmp(d->jerr.jb)) {
    free(d);
    return NULL;
  }
  jpeg_create_decompress(&d->jd);
  d->jd_ready = 1;
  return d;
}

void img_decoder_free(img_decoder *d) {
  if (!d) return;
  if (d->jd_ready) jpeg_destroy_decompress(&d->jd);
  free(d->rows);
  free(d->png);
  free(d);
}

static int grow(uint8_t **p, size_t *cap, size_t need) {
  if (*cap >= need) return 0;
  size_t n = need + need / 4 + 4096;
  uint8_t *q = realloc(*p, n);
  if (!q) return -1;
  *p = q;
  *cap = n;
  return 0;
}

static int check_dims(long w, long h, char *err, size_t errlen) {
  if (w < 1 || h < 1 || w > IMG_MAX_SIDE || h > IMG_MAX_SIDE || (long long)w * h > IMG_MAX_PIXELS) {
    if (err && errlen) snprintf(err, errlen, "absurd dimensions %ldx%ld", w, h);
    return IMG_DIMS;
  }
  return IMG_OK;
}

/* Status for a libjpeg error that ended decoding. */
static int jpeg_fail(img_decoder *d, char *err, size_t errlen) {
  jpeg_abort_decompress(&d->jd);
  d->header_ready = 0;
  int code = d->jerr.msg_code;
  if (d->jerr.eof || code == JERR_INPUT_EOF) {
    set_err(err, errlen, "truncated (%s)", d->jerr.msg);
    return IMG_TRUNCATED;
  }
  if (code == JERR_IMAGE_TOO_BIG) {
    set_err(err, errlen, "absurd dimensions (%s)", d->jerr.msg);
    return IMG_DIMS;
  }
  set_err(err, errlen, "corrupt JPEG (%s)", d->jerr.msg);
  return IMG_CORRUPT;
}

static int open_jpeg(img_decoder *d, img_info *info, char *err, size_t errlen) {
  struct jpeg_decompress_struct *c = &d->jd;
  d->jerr.eof = 0;
  d->header_ready = 0;
  if (setjmp(d->jerr.jb)) return jpeg_fail(d, err, errlen);
  jpeg_abort_decompress(c);
  jpeg_mem_src(c, d->buf, (unsigned long)d->len);
  jpeg_read_header(c, TRUE);
  info->format = IMG_FMT_JPEG;
  info->width = (int)c->image_width;
  info->height = (int)c->image_height;
  info->progressive = c->progressive_mode ? 1 : 0;
  info->plain = 0;
  switch (c->jpeg_color_space) {
    case JCS_GRAYSCALE:
      info->colorspace = IMG_CS_GRAY;
      break;
    case JCS_YCbCr:
      info->colorspace = IMG_CS_RGB;
      info->plain = c->num_components == 3;
      break;
    case JCS_RGB:
      info->colorspace = IMG_CS_RGB;
      break;
    case JCS_CMYK:
      info->colorspace = IMG_CS_CMYK;
      break;
    case JCS_YCCK:
      info->colorspace = IMG_CS_YCCK;
      break;
    default:
      jpeg_abort_decompress(c);
      if (err && errlen)
        snprintf(err, errlen, "corrupt JPEG (unsupported colour space with %d components)", c->num_components);
      return IMG_CORRUPT;
  }
  if (d->jerr.eof) {
    jpeg_abort_decompress(c);
    set_err(err, errlen, "%s", "truncated (the header is cut short)");
    return IMG_TRUNCATED;
  }
  int st = check_dims((long)c->image_width, (long)c->image_height, err, errlen);
  if (st != IMG_OK) jpeg_abort_decompress(c);
  d->header_ready = st == IMG_OK;
  return st;
}

/* Puts the decompressor back at "header read" for a further decode of the same file. */
static void jpeg_rewind(img_decoder *d) {
  if (d->header_ready) {
    d->header_ready = 0;
    return;
  }
  jpeg_abort_decompress(&d->jd);
  jpeg_mem_src(&d->jd, d->buf, (unsigned long)d->len);
  jpeg_read_header(&d->jd, TRUE);
}

static int png_status(int rc, char *err, size_t errlen) {
  set_err(err, errlen, "corrupt PNG (%s)", spng_strerror(rc));
  if (rc == SPNG_EOF || rc == SPNG_IO_EOF) {
    set_err(err, errlen, "truncated PNG (%s)", spng_strerror(rc));
    return IMG_TRUNCATED;
  }
  return IMG_CORRUPT;
}

static int open_png(img_decoder *d, img_info *info, char *err, size_t errlen) {
  spng_ctx *ctx = spng_ctx_new(0);
  if (!ctx) {
    set_err(err, errlen, "%s", "out of memory");
    return IMG_CORRUPT;
  }
  spng_set_png_buffer(ctx, d->buf, d->len);
  spng_set_image_limits(ctx, IMG_MAX_SIDE * 4, IMG_MAX_SIDE * 4);
  struct spng_ihdr ih;
  int rc = spng_get_ihdr(ctx, &ih);
  spng_ctx_free(ctx);
  if (rc) return png_status(rc, err, errlen);
  info->format = IMG_FMT_PNG;
  info->width = (int)ih.width;
  info->height = (int)ih.height;
  info->progressive = ih.interlace_method != 0;
  info->plain = 0;
  info->colorspace = (ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE || ih.color_type == SPNG_COLOR_TYPE_GRAYSCALE_ALPHA)
                         ? IMG_CS_GRAY
                         : IMG_CS_RGB;
  return check_dims((long)ih.width, (long)ih.height, err, errlen);
}

int img_open(img_decoder *d, const uint8_t *buf, size_t len, img_info *info, char *err, size_t errlen) {
  static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  memset(info, 0, sizeof *info);
  d->buf = buf;
  d->len = len;
  d->info.format = IMG_FMT_UNKNOWN;
  if (len == 0) {
    set_err(err, errlen, "%s", "zero bytes");
    return IMG_EMPTY;
  }
  int st;
  if (len >= 3 && buf[0] == 0xFF && buf[1] == 0xD8 && buf[2] == 0xFF) {
    st = open_jpeg(d, info, err, errlen);
  } else if (len >= 8 && !memcmp(buf, png_magic, 8)) {
    st = open_png(d, info, err, errlen);
  } else {
    if (err && errlen) {
      unsigned char b[4] = {0};
      memcpy(b, buf, len < 4 ? len : 4);
      snprintf(err, errlen, "not a JPEG or PNG (starts with %02x %02x %02x %02x)", b[0], b[1], b[2], b[3]);
    }
    return IMG_UNSUPPORTED;
  }
  if (st == IMG_OK) d->info = *info;
  else d->info.format = IMG_FMT_UNKNOWN;
  return st;
}

static int scaled(int size, int num) { return (int)(((long)size * num + 7) / 8); }

void img_scaled_size(const img_decoder *d, int num, int *w, int *h) {
  if (d->info.format != IMG_FMT_JPEG || num >= 8 || num < 1) num = 8;
  *w = scaled(d->info.width, num);
  *h = scaled(d->info.height, num);
}

/* PIL's CMYK -> RGB for Adobe (inverted) CMYK data as libjpeg hands it out. */
static void cmyk_to_rgb(uint8_t *out, const uint8_t *in, int n, int bpp) {
  for (int x = 0; x < n; x++) {
    int nk = in[3]; /* 255 - k with k = 255 - stored */
    for (int c = 0; c < 3; c++) {
      int v = 255 - in[c];
      int t = v * nk + 128;
      int r = nk - (((t >> 8) + t) >> 8);
      out[c] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
    }
    if (bpp == 4) out[3] = 255;
    out += bpp;
    in += 4;
  }
}

#define ROWS_AT_ONCE 16

static int decode_jpeg(img_decoder *d, int num, int fast, int bpp, int x0, int y0, int w, int h, uint8_t **px,
                       size_t *cap, int *px_x0, int *px_w, char *err, size_t errlen) {
  struct jpeg_decompress_struct *c = &d->jd;
  int cmyk = d->info.colorspace == IMG_CS_CMYK || d->info.colorspace == IMG_CS_YCCK;
  d->jerr.eof = 0;
  if (setjmp(d->jerr.jb)) return jpeg_fail(d, err, errlen);
  jpeg_rewind(d);
  c->scale_num = (unsigned)num;
  c->scale_denom = 8;
  c->out_color_space = cmyk ? JCS_CMYK : bpp == 4 ? JCS_EXT_RGBX : JCS_RGB;
  c->dct_method = fast ? JDCT_IFAST : JDCT_ISLOW;
  c->do_fancy_upsampling = fast ? FALSE : TRUE;
  jpeg_start_decompress(c);
  /* Cropped columns: ask for 2 more on each side, since fancy upsampling
   * treats the crop's edge as the image's; inside, pixels equal a full decode. */
  JDIMENSION xoff = 0, cw = c->output_width;
  if (x0 > 0 || (JDIMENSION)w < c->output_width) {
    int m0 = x0 >= 2 ? x0 - 2 : 0, m1 = x0 + w + 2 < (int)c->output_width ? x0 + w + 2 : (int)c->output_width;
    xoff = (JDIMENSION)m0;
    cw = (JDIMENSION)(m1 - m0);
    if (m0 > 0 || cw < c->output_width) jpeg_crop_scanline(c, &xoff, &cw);
  }
  if (y0 > 0) jpeg_skip_scanlines(c, (JDIMENSION)y0);
  size_t rowlen = (size_t)cw * bpp;
  if (grow(px, cap, rowlen * h + 16) != 0 ||
      (cmyk && grow(&d->rows, &d->rows_cap, (size_t)cw * 4 * ROWS_AT_ONCE) != 0)) {
    jpeg_abort_decompress(c);
    set_err(err, errlen, "%s", "out of memory");
    return IMG_CORRUPT;
  }
  int y = 0;
  while (y < h) {
    JSAMPROW ptr[ROWS_AT_ONCE];
    int n = h - y < ROWS_AT_ONCE ? h - y : ROWS_AT_ONCE;
    for (int i = 0; i < n; i++) ptr[i] = cmyk ? d->rows + (size_t)i * cw * 4 : *px + (size_t)(y + i) * rowlen;
    int got = (int)jpeg_read_scanlines(c, ptr, (JDIMENSION)n);
    if (got <= 0) break;
    if (cmyk)
      for (int i = 0; i < got; i++) cmyk_to_rgb(*px + (size_t)(y + i) * rowlen, ptr[i], (int)cw, bpp);
    y += got;
  }
  jpeg_abort_decompress(c);
  if (d->jerr.eof || y < h) {
    set_err(err, errlen, "%s", "truncated (Premature end of JPEG file)");
    return IMG_TRUNCATED;
  }
  *px_x0 = (int)xoff;
  *px_w = (int)cw;
  return IMG_OK;
}

static int decode_png_full(img_decoder *d, char *err, size_t errlen) {
  size_t need = (size_t)d->info.width * d->info.height * 3;
  if (grow(&d->png, &d->png_cap, need) != 0) {
    set_err(err, errlen, "%s", "out of memory");
    return IMG_CORRUPT;
  }
  spng_ctx *ctx = spng_ctx_new(0);
  if (!ctx) {
    set_err(err, errlen, "%s", "out of memory");
    return IMG_CORRUPT;
  }
  spng_set_png_buffer(ctx, d->buf, d->len);
  spng_set_image_limits(ctx, IMG_MAX_SIDE * 4, IMG_MAX_SIDE * 4);
  size_t size = 0;
  int rc = spng_decoded_image_size(ctx, SPNG_FMT_RGB8, &size);
  if (!rc && size != need) rc = SPNG_EOVERFLOW;
  if (!rc) rc = spng_decode_image(ctx, d->png, need, SPNG_FMT_RGB8, 0);
  spng_ctx_free(ctx);
  return rc ? png_status(rc, err, errlen) : IMG_OK;
}

int img_decode(img_decoder *d, int num, int fast, int bpp, int x0, int y0, int w, int h, uint8_t **px, size_t *cap,
               int *px_x0, int *px_w, char *err, size_t errlen) {
  if (d->info.format == IMG_FMT_UNKNOWN) {
    set_err(err, errlen, "%s", "no image open");
    return IMG_CORRUPT;
  }
  if (num < 1 || num > 8 || d->info.format == IMG_FMT_PNG) num = 8;
  if (bpp != 4) bpp = 3;
  int sw, sh;
  img_scaled_size(d, num, &sw, &sh);
  if (x0 < 0 || y0 < 0 || w < 1 || h < 1 || x0 + w > sw || y0 + h > sh) {
    set_err(err, errlen, "%s", "region outside the image");
    return IMG_CORRUPT;
  }
  if (d->info.format == IMG_FMT_JPEG)
    return decode_jpeg(d, num, fast, bpp, x0, y0, w, h, px, cap, px_x0, px_w, err, errlen);
  int st = decode_png_full(d, err, errlen);
  if (st != IMG_OK) return st;
  if (grow(px, cap, (size_t)w * h * bpp + 16) != 0) {
    set_err(err, errlen, "%s", "out of memory");
    return IMG_CORRUPT;
  }
  for (int y = 0; y < h; y++) {
    const uint8_t *s = d->png + ((size_t)(y0 + y) * sw + x0) * 3;
    uint8_t *o = *px + (size_t)y * w * bpp;
    if (bpp == 3) {
      memcpy(o, s, (size_t)w * 3);
    } else {
      for (int x = 0; x < w; x++, s += 3, o += 4) {
        o[0] = s[0];
        o[1] = s[1];
        o[2] = s[2];
        o[3] = 255;
      }
    }
  }
  *px_x0 = x0;
  *px_w = w;
  return IMG_OK;
}

int img_verify(img_decoder *d, char *err, size_t errlen) {
  if (d->info.format == IMG_FMT_PNG) return decode_png_full(d, err, errlen);
  if (d->info.format != IMG_FMT_JPEG) {
    set_err(err, errlen, "%s", "no image open");
    return IMG_CORRUPT;
  }
  struct jpeg_decompress_struct *c = &d->jd;
  d->jerr.eof = 0;
  if (setjmp(d->jerr.jb)) return jpeg_fail(d, err, errlen);
  jpeg_rewind(d);
  c->scale_num = 1;
  c->scale_denom = 8;
  c->out_color_space = c->jpeg_color_space == JCS_CMYK || c->jpeg_color_space == JCS_YCCK ? JCS_CMYK : JCS_RGB;
  c->dct_method = JDCT_IFAST;
  c->do_fancy_upsampling = FALSE;
  jpeg_start_decompress(c);
  size_t rowlen = (size_t)c->output_width * c->output_components;
  if (grow(&d->rows, &d->rows_cap, rowlen) != 0) {
    jpeg_abort_decompress(c);
    set_err(err, errlen, "%s", "out of memory");
    return IMG_CORRUPT;
  }
  while (c->output_scanline < c->output_height) {
    JSAMPROW r = d->rows;
    if (jpeg_read_scanlines(c, &r, 1) != 1) break;
  }
  int complete = c->output_scanline >= c->output_height;
  /* Reading up to the end marker finds data cut off after the last row. */
  if (complete) jpeg_finish_decompress(c);
  else jpeg_abort_decompress(c);
  if (d->jerr.eof || !complete) {
    set_err(err, errlen, "%s", "truncated (Premature end of JPEG file)");
    return IMG_TRUNCATED;
  }
  return IMG_OK;
}

typedef struct {
  struct jpeg_error_mgr pub;
  jmp_buf jb;
  char msg[JMSG_LENGTH_MAX];
} cerr_mgr;

static void c_error_exit(j_common_ptr c) {
  cerr_mgr *e = (cerr_mgr *)c->err;
  (*c->err->format_message)(c, e->msg);
  longjmp(e->jb, 1);
}

int img_encode_jpeg_cs(const uint8_t *px, int w, int h, int colorspace, int quality, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen) {
  struct jpeg_compress_struct c;
  cerr_mgr e;
  unsigned char *volatile mem = NULL;
  unsigned long memlen = 0;
  c.err = jpeg_std_error(&e.pub);
  e.pub.error_exit = c_error_exit;
  e.pub.output_message = j_output_message;
  if (setjmp(e.jb)) {
    jpeg_destroy_compress(&c);
    free(mem);
    set_err(err, errlen, "JPEG encoding failed: %s", e.msg);
    return -1;
  }
  jpeg_create_compress(&c);
  jpeg_mem_dest(&c, (unsigned char **)&mem, &memlen);
  c.image_width = (JDIMENSION)w;
  c.image_height = (JDIMENSION)h;
  int comps = colorspace == IMG_CS_GRAY ? 1 : colorspace == IMG_CS_RGB ? 3 : 4;
  c.input_components = comps;
  c.in_color_space = comps == 1 ? JCS_GRAYSCALE : comps == 3 ? JCS_RGB : JCS_CMYK;
  jpeg_set_defaults(&c);
  if (colorspace == IMG_CS_YCCK) jpeg_set_colorspace(&c, JCS_YCCK);
  jpeg_set_quality(&c, quality, TRUE);
  jpeg_start_compress(&c, TRUE);
  while (c.next_scanline < c.image_height) {
    JSAMPROW r = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
    jpeg_write_scanlines(&c, &r, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  *out = mem;
  *outlen = memlen;
  return 0;
}

int img_encode_jpeg(const uint8_t *rgb, int w, int h, int quality, uint8_t **out, size_t *outlen, char *err,
                    size_t errlen) {
  return img_encode_jpeg_cs(rgb, w, h, IMG_CS_RGB, quality, out, outlen, err, errlen);
}

int img_encode_png(const uint8_t *px, int w, int h, int gray, uint8_t **out, size_t *outlen, char *err, size_t errlen) {
  spng_ctx *ctx = spng_ctx_new(SPNG_CTX_ENCODER);
  if (!ctx) {
    set_err(err, errlen, "%s", "out of memory");
    return -1;
  }
  spng_set_option(ctx, SPNG_ENCODE_TO_BUFFER, 1);
  struct spng_ihdr ih = {
      (uint32_t)w, (uint32_t)h, 8, (uint8_t)(gray ? SPNG_COLOR_TYPE_GRAYSCALE : SPNG_COLOR_TYPE_TRUECOLOR), 0, 0, 0};
  int rc = spng_set_ihdr(ctx, &ih);
  size_t len = (size_t)w * h * (gray ? 1 : 3);
  if (!rc) rc = spng_encode_image(ctx, px, len, SPNG_FMT_PNG, SPNG_ENCODE_FINALIZE);
  if (rc) {
    spng_ctx_free(ctx);
    set_err(err, errlen, "PNG encoding failed: %s", spng_strerror(rc));
    return -1;
  }
  int e2 = 0;
  *out = spng_get_png_buffer(ctx, outlen, &e2);
  spng_ctx_free(ctx);
  if (!*out) {
    set_err(err, errlen, "PNG encoding failed: %s", spng_strerror(e2));
    return -1;
  }
  return 0;
}

int img_read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len, char *err, size_t errlen) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    set_err(err, errlen, "unreadable (%s)", strerror(errno));
    return IMG_UNREADABLE;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    set_err(err, errlen, "%s", "unreadable (not a regular file)");
    return IMG_UNREADABLE;
  }
  size_t n = (size_t)st.st_size;
  if (n == 0) {
    close(fd);
    set_err(err, errlen, "%s", "zero bytes");
    *len = 0;
    return IMG_EMPTY;
  }
  if (grow(buf, cap, n) != 0) {
    close(fd);
    set_err(err, errlen, "%s", "unreadable (out of memory)");
    return IMG_UNREADABLE;
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, *buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    got += (size_t)r;
  }
  int rerr = errno;
  close(fd);
  if (got != n) {
    set_err(err, errlen, "unreadable (%s)", got < n && rerr ? strerror(rerr) : "short read");
    return IMG_UNREADABLE;
  }
  *len = n;
  return IMG_OK;
}
