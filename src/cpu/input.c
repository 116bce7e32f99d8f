/* input.c: uint8 images to normalised activations, and the weights' working
 * copy (a plain copy on the CPU, where everything is fp32). */
#include <string.h>

#include "cpu.h"
#include "threads.h"

typedef struct {
  float *x;
  const uint8_t *img;
  size_t pixels;
  int c, pieces;
  const float *mean, *inv_std;
} input_args;

static void input_piece(void *ctx, int item, int thread) {
  const input_args *A = ctx;
  size_t p0 = cpu_piece_start(A->pixels, A->pieces, item), p1 = cpu_piece_start(A->pixels, A->pieces, item + 1);
  for (size_t p = p0; p < p1; p++) {
    const uint8_t *s = A->img + p * 3;
    float *d = A->x + p * A->c;
    for (int j = 0; j < 3; j++) d[j] = ((float)s[j] / 255.0f - A->mean[j]) * A->inv_std[j];
    for (int j = 3; j < A->c; j++) d[j] = 0.0f;
  }
}

void cpu_input_from_u8(backend *be, void *x, const uint8_t *img, int n, int h, int w, int c, const float mean[3],
                       const float inv_std[3]) {
  /* x [n, h, w, c]; img [n, h, w, 3] */
  input_args A = {x, img, (size_t)n * h * w, c, 0, mean, inv_std};
  A.pieces = cpu_pieces(A.pixels, 16384);
  cpu_for(A.pieces, input_piece, &A);
}

void cpu_cast_params(backend *be, void *dst, const float *src, size_t n) {
  if (dst != (const void *)src) memcpy(dst, src, n * sizeof(float));
}
