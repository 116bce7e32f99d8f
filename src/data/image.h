/* image.h: image files to RGB pixels and back. JPEG through the libjpeg API of
 * libjpeg-turbo (DCT-domain scaling by n/8, decoding of a row/column region),
 * PNG through libspng. Grayscale, CMYK and YCCK become RGB exactly as PIL's
 * convert("RGB") makes them, so the eval transform can match torchvision's.
 * Every failure on bad input comes back as a status (never a crash). */
#ifndef RN50_IMAGE_H
#define RN50_IMAGE_H

#include <stddef.h>
#include <stdint.h>

/* Outcome of reading an image; everything but IMG_OK marks a bad file. */
enum {
  IMG_OK = 0,
  IMG_EMPTY,       /* zero bytes */
  IMG_TRUNCATED,   /* data ends before the image does */
  IMG_CORRUPT,     /* a JPEG/PNG the library cannot decode */
  IMG_DIMS,        /* absurd dimensions (see IMG_MAX_SIDE / IMG_MAX_PIXELS) */
  IMG_UNSUPPORTED, /* neither JPEG nor PNG (garbage, GIF, ...) */
  IMG_UNREADABLE,  /* the file could not be read */
  IMG_NSTATUS
};
enum { IMG_FMT_UNKNOWN = 0, IMG_FMT_JPEG, IMG_FMT_PNG };
enum { IMG_CS_RGB = 0, IMG_CS_GRAY, IMG_CS_CMYK, IMG_CS_YCCK };

/* Larger images are refused before any pixel memory is allocated. */
#define IMG_MAX_SIDE 16384
#define IMG_MAX_PIXELS (64LL * 1024 * 1024)

typedef struct {
  int format; /* IMG_FMT_* */
  int width, height;
  int colorspace;  /* IMG_CS_* of the stored data */
  int progressive; /* JPEG: progressive scan */
  int plain;       /* JPEG: baseline-or-progressive YCbCr, 3 components (pack copies these as they are) */
} img_info;

/* Short name of a status ("zero bytes", "truncated", ...). */
const char *img_status_name(int status);

/* A reusable decoder (one per thread): holds the library state and buffers. */
typedef struct img_decoder img_decoder;
img_decoder *img_decoder_new(void);
void img_decoder_free(img_decoder *d);

/* Reads the header of the in-memory file buf[len] (which must stay alive until
 * the next img_open). Returns IMG_OK or a status with the reason in err. */
int img_open(img_decoder *d, const uint8_t *buf, size_t len, img_info *info, char *err, size_t errlen);

/* Size of the open image decoded at scale num/8 (1..8; PNG: always full size). */
void img_scaled_size(const img_decoder *d, int num, int *w, int *h);

/* Decodes (at least) columns [x0, x0+w) and rows [y0, y0+h) of the open
 * image scaled by num/8 into *px (grown as needed, capacity *cap): h rows of
 * *px_w pixels of bpp (3: RGB, 4: RGBX) bytes, the first being column *px_x0
 * (<= x0; JPEG decodes whole iMCU columns). Only that region is decoded as
 * far as the format allows (JPEG: rows below it are never read); its pixels
 * equal those of a full decode. fast=0 decodes as PIL does (ISLOW IDCT,
 * fancy upsampling); fast=1 trades a little precision for speed (train).
 * Returns IMG_OK or a status. */
int img_decode(img_decoder *d, int num, int fast, int bpp, int x0, int y0, int w, int h, uint8_t **px, size_t *cap,
               int *px_x0, int *px_w, char *err, size_t errlen);

/* Decodes every pixel of the open image and checks the whole stream (at 1/8
 * scale for JPEG, which still reads every coefficient): finds truncation and
 * corruption anywhere in the file. Returns IMG_OK or a status. */
int img_verify(img_decoder *d, char *err, size_t errlen);

/* Encodes rgb [h][w][3] as a baseline JPEG (4:2:0, quality 1..100) into *out
 * (malloc'd, *outlen bytes). Returns 0, or -1 with err filled. */
int img_encode_jpeg(const uint8_t *rgb, int w, int h, int quality, uint8_t **out, size_t *outlen, char *err,
                    size_t errlen);
/* The same for CMYK (Adobe, inverted as Photoshop writes it) or grayscale
 * pixels [h][w][components]; used by the tests to make such files. */
int img_encode_jpeg_cs(const uint8_t *px, int w, int h, int colorspace, int quality, uint8_t **out, size_t *outlen,
                       char *err, size_t errlen);
/* Encodes rgb [h][w][3] (or gray [h][w] when gray=1) as PNG into *out. */
int img_encode_png(const uint8_t *px, int w, int h, int gray, uint8_t **out, size_t *outlen, char *err, size_t errlen);

/* Reads a whole file into *buf (grown as needed, capacity *cap). Returns
 * IMG_OK, IMG_EMPTY or IMG_UNREADABLE (reason in err). */
int img_read_file(const char *path, uint8_t **buf, size_t *cap, size_t *len, char *err, size_t errlen);

#endif
