/* sgd.c: the optimizer step, finiteness check and weight EMA on the CPU,
 * elementwise over pieces of the flat parameter array (cpu_for). */
#include <math.h>
#include <stdatomic.h>
#include <string.h>

#include "cpu.h"
#include "threads.h"

#define GRAIN 65536 /* floats per work item */

typedef struct {
  float *w, *buf, *ema;
  const float *g;
  size_t n, n_decay;
  int pieces, nesterov;
  float lr, momentum, wd, wd_rest, grad_scale, decay;
  atomic_int bad;
} flat_args;

static void sgd_piece(void *ctx, int item, int thread) {
  flat_args *A = ctx;
  size_t i0 = cpu_piece_start(A->n, A->pieces, item), i1 = cpu_piece_start(A->n, A->pieces, item + 1);
  for (size_t i = i0; i < i1; i++) {
    float decay = i < A->n_decay ? A->wd : A->wd_rest;
    float d = A->g[i] * A->grad_scale + decay * A->w[i];
    float b = A->momentum * A->buf[i] + d;
    A->buf[i] = b;
    if (A->nesterov) d = d + A->momentum * b;
    else d = b;
    A->w[i] = A->w[i] - A->lr * d;
  }
}

void cpu_sgd_step(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                  float lr, float momentum, float wd, float wd_rest, int nesterov, float grad_scale) {
  /* w, buf, g: [n]; w_work: [n] working copy (fp32 here: may alias w) */
  flat_args A = {w, buf, NULL, g, n, n_decay, cpu_pieces(n, GRAIN), nesterov, lr, momentum, wd, wd_rest, grad_scale,
                 0, 0};
  cpu_for(A.pieces, sgd_piece, &A);
  if (w_work && w_work != (void *)w) memcpy(w_work, w, n * sizeof(float));
}

static void nonfinite_piece(void *ctx, int item, int thread) {
  flat_args *A = ctx;
  size_t i0 = cpu_piece_start(A->n, A->pieces, item), i1 = cpu_piece_start(A->n, A->pieces, item + 1);
  int bad = 0;
  for (size_t i = i0; i < i1; i++) bad |= !isfinite(A->g[i]);
  if (bad) atomic_store(&A->bad, 1);
}

int cpu_nonfinite(backend *be, const float *g, size_t n) {
  flat_args A = {0};
  A.g = g;
  A.n = n;
  A.pieces = cpu_pieces(n, GRAIN);
  atomic_init(&A.bad, 0);
  cpu_for(A.pieces, nonfinite_piece, &A);
  return atomic_load(&A.bad);
}

static void ema_piece(void *ctx, int item, int thread) {
  flat_args *A = ctx;
  size_t i0 = cpu_piece_start(A->n, A->pieces, item), i1 = cpu_piece_start(A->n, A->pieces, item + 1);
  for (size_t i = i0; i < i1; i++) A->ema[i] = A->decay * A->ema[i] + (1.0f - A->decay) * A->w[i];
}

void cpu_ema_update(backend *be, float *ema, const float *w, size_t n, float decay) {
  flat_args A = {0};
  A.ema = ema;
  A.w = (float *)w; /* read only */
  A.n = n;
  A.pieces = cpu_pieces(n, GRAIN);
  A.decay = decay;
  cpu_for(A.pieces, ema_piece, &A);
}
