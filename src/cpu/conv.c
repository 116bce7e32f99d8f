/* conv.c: NHWC convolution on the CPU as indirect GEMMs (src/cpu/kernels.h):
 *   forward:     y[pixel][k]   = sum over taps, ci of x[pixel + tap][ci] * w[k][tap][ci]
 *   back data:   dx[pixel][ci] = sum over taps, k of dy[pixel - tap][k] * w[k][tap][ci]
 *   back filter: dw[k][tap][ci] += sum over pixels of dy[pixel][k] * x[pixel + tap][ci]
 * A GEMM row is reached through a pointer per tap (a zero row stands for
 * the padding), and the operands are packed for the 6x16 register tiles
 * straight from the activations, a cache-sized block at a time: no im2col
 * matrix is ever made. Backward data with stride s splits the input pixels
 * into s*s classes that share the taps which reach them. Weights are OHWI:
 * [k][kh*kw*c].
 *
 * Threads split the output into tiles and each tile sums its terms in a
 * fixed order, so results do not depend on the number of threads. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"
#include "kernels.h"
#include "threads.h"

/* blocking (BLIS-like): a job covers up to JOB_TILES row tiles x JOB_PANELS
 * column panels; the reduction runs in blocks of at most BLOCK_STEPS steps
 * (channel chunks of CHUNK_CH times whole taps), so one packed 16-column B
 * panel (16 KB) stays in L1 while the job's packed A rows (L2) stream past.
 * The filter gradient reduces over pixels in blocks of FILTER_PIXELS, with
 * A blocks of FILTER_TILES tiles of output channels. */
#define JOB_TILES 24
#define JOB_PANELS 16
#define CHUNK_CH 256
#define BLOCK_STEPS 256
#define FILTER_PIXELS 256
#define FILTER_TILES 24
#define PACK_PIXELS 16 /* pixels per run when packing them */

/* grow-only scratch buffers (ops run one at a time) */
typedef struct {
  float *p;
  size_t n;
} scratch;

static scratch s_packed, s_zero;

static float *scratch_get(scratch *s, size_t floats, const char *what) {
  if (floats > s->n) {
    free(s->p);
    s->p = xmalloc_aligned(floats * sizeof(float), what);
    s->n = floats;
  }
  return s->p;
}

/* a row of at least n zeros (the padding every out-of-range tap reads) */
static const float *zero_row(size_t n) {
  int fresh = n > s_zero.n;
  float *z = scratch_get(&s_zero, n, "convolution zero row");
  if (fresh) memset(z, 0, n * sizeof(float));
  return z;
}

static int cdiv(int a, int b) { return (a + b - 1) / b; }

/* ---- indirect GEMM over the pixels of a grid ----
 * Row m = (img, ry, rx) of an n x rh x rw grid. At tap t its source is pixel
 * (ry*ss + toy[t], rx*ss + tox[t]) of src [n][sh][sw][sc], or the zero row
 * when outside; its output is pixel (ry*ds + dy0, rx*ds + dx0) of dst
 * [n][dh][dw][dc], columns [0, ncol). The reduction runs over (chunk of
 * source channels, tap, channel); b holds it packed per 16-column panel:
 * b[(panel*taps*sc + c0*taps + t*kc + j)*16 + col] for the chunk starting
 * at c0 with kc channels.
 *
 * Taps that fall outside the source for all rows of a tile are skipped.
 * On small grids, where most pixels touch the border, rows are ordered
 * position-major (m = (ry*rw + rx)*n + img) so that a tile's rows share
 * one position, and with it the taps that reach them. */
typedef struct {
  int n, rh, rw;
  const float *src;
  int sh, sw, sc, ss;
  int taps;
  const int *toy, *tox;
  float *dst;
  int dh, dw, dc, ds, dy0, dx0;
  int ncol;
  const float *b;
  int acc;        /* add to dst (else overwrite) */
  int pos_major;  /* row order (set by igemm_run) */
} igemm;

/* grids of at most this many positions are ordered position-major */
#define SMALL_GRID 196

/* Pointers of rows [m0, m0 + 6*tiles): a[(tile*taps + t)*6 + r],
 * c[tile*6 + r]; live[tile] has bit t set when tap t reaches some row of
 * the tile (all bits when taps > 64). */
static void igemm_pointers(const igemm *g, int m0, int tiles, const float **a, float **c, uint64_t *live,
                           float *dummy, const float *zero) {
  const int M = g->n * g->rh * g->rw, T = g->taps;
  for (int i = 0; i < tiles; i++) {
    live[i] = T > 64 ? ~(uint64_t)0 : 0;
    for (int r = 0; r < KER_MR; r++) {
      int m = m0 + i * KER_MR + r;
      const float **ar = a + (size_t)i * T * KER_MR + r;
      if (m >= M) {
        c[i * KER_MR + r] = dummy;
        for (int t = 0; t < T; t++) ar[t * KER_MR] = zero;
        continue;
      }
      int img, pos;
      if (g->pos_major) img = m % g->n, pos = m / g->n;
      else img = m / (g->rw * g->rh), pos = m % (g->rw * g->rh);
      int rx = pos % g->rw, ry = pos / g->rw;
      c[i * KER_MR + r] =
          g->dst + (((size_t)img * g->dh + ry * g->ds + g->dy0) * g->dw + rx * g->ds + g->dx0) * g->dc;
      for (int t = 0; t < T; t++) {
        int sy = ry * g->ss + g->toy[t], sx = rx * g->ss + g->tox[t];
        int in = sy >= 0 && sy < g->sh && sx >= 0 && sx < g->sw;
        ar[t * KER_MR] = in ? g->src + (((size_t)img * g->sh + sy) * g->sw + sx) * g->sc : zero;
        if (in && t < 64) live[i] |= (uint64_t)1 << t;
      }
    }
  }
}

/* tiles and panels per job: the defaults, split further until there are a
 * few jobs per thread (the partition never changes a result, only who
 * computes it) */
static void job_shape(int mtiles, int panels, int *jt, int *jp) {
  int t = MIN(JOB_TILES, mtiles), p = MIN(JOB_PANELS, panels), want = 4 * cpu_threads();
  while (cdiv(mtiles, t) * cdiv(panels, p) < want) {
    if (t >= 2 * p && t > 1) t = cdiv(t, 2);
    else if (p > 1) p = cdiv(p, 2);
    else if (t > 1) t = cdiv(t, 2);
    else break;
  }
  *jt = t;
  *jp = p;
}

typedef struct {
  const igemm *g;
  int mtiles, panels, jt, jp, njobs;
  const float *zero;
} igemm_jobs;

/* c rows (+)= the taps [t0, t0 + nt) from the first to the last that is
 * live for this tile, in one kernel call (the dead ones at either end add
 * exact zeros, so skipping them changes no rounding); *fresh: nothing
 * written yet */
static void tile_taps(int kc, int t0, int nt, uint64_t live, const float *a, const float *b, float *const *c,
                      size_t coff, int nr, int acc, int *fresh) {
  int t = 0, e = nt;
  while (t < e && !(live >> (t0 + t) & 1)) t++;
  while (e > t && !(live >> (t0 + e - 1) & 1)) e--;
  if (t == e) return;
  ker_tile((e - t) * kc, a + (size_t)t * kc * KER_MR, b + (size_t)t * kc * KER_NR, c, coff, nr, *fresh ? acc : 1);
  *fresh = 0;
}

static void igemm_job(void *ctx, int job, int thread) {
  const igemm_jobs *J = ctx;
  const igemm *g = J->g;
  const int T = g->taps, C = g->sc, jt = J->jt;
  const size_t red = (size_t)T * C; /* reduction length of one panel */
  const float **rows = cpu_scratch(thread, 0, (size_t)jt * T * KER_MR * sizeof *rows);
  float **c = cpu_scratch(thread, 1, (size_t)jt * KER_MR * sizeof *c);
  float *dummy = cpu_scratch(thread, 2, (size_t)J->panels * KER_NR * sizeof(float));
  float *ap = cpu_scratch(thread, 3, ((size_t)jt * BLOCK_STEPS * KER_MR + 8) * sizeof(float));
  uint64_t *live = cpu_scratch(thread, 4, (size_t)jt * sizeof *live);
  int *fresh = cpu_scratch(thread, 5, (size_t)jt * JOB_PANELS * sizeof *fresh);
  int tile0 = job / J->njobs * jt, tiles = MIN(jt, J->mtiles - tile0);
  int p0 = job % J->njobs * J->jp, p1 = MIN(J->panels, p0 + J->jp);
  igemm_pointers(g, tile0 * KER_MR, tiles, rows, c, live, dummy, J->zero);
  for (int i = 0; i < tiles * (p1 - p0); i++) fresh[i] = 1;
  for (int c0 = 0; c0 < C; c0 += CHUNK_CH) {
    int kc = MIN(CHUNK_CH, C - c0), tb = MAX(1, BLOCK_STEPS / kc);
    for (int t0 = 0; t0 < T; t0 += tb) {
      int nt = MIN(tb, T - t0), steps = nt * kc;
      const float *b0 = g->b + ((size_t)c0 * T + (size_t)t0 * kc) * KER_NR;
      for (int i = 0; i < tiles; i++)
        pack_a_rows(ap + (size_t)i * steps * KER_MR, rows + ((size_t)i * T + t0) * KER_MR, nt, (size_t)c0, kc);
      if (steps == (int)red) {
        /* the whole reduction in one block: finish each tile's rows in turn
         * (the job's B panels stay in L2), so the output is written in order */
        for (int i = 0; i < tiles; i++)
          for (int p = p0; p < p1; p++)
            tile_taps(kc, t0, nt, live[i], ap + (size_t)i * steps * KER_MR, b0 + (size_t)p * red * KER_NR,
                      c + i * KER_MR, (size_t)p * KER_NR, MIN(KER_NR, g->ncol - p * KER_NR), g->acc,
                      &fresh[i * (p1 - p0) + p - p0]);
      } else {
        /* one 16-column B panel in L1 against all the job's row tiles */
        for (int p = p0; p < p1; p++)
          for (int i = 0; i < tiles; i++)
            tile_taps(kc, t0, nt, live[i], ap + (size_t)i * steps * KER_MR, b0 + (size_t)p * red * KER_NR,
                      c + i * KER_MR, (size_t)p * KER_NR, MIN(KER_NR, g->ncol - p * KER_NR), g->acc,
                      &fresh[i * (p1 - p0) + p - p0]);
      }
    }
  }
  /* tiles that no tap reaches: their output is zero */
  if (!g->acc)
    for (int i = 0; i < tiles; i++)
      for (int p = p0; p < p1; p++)
        if (fresh[i * (p1 - p0) + p - p0])
          for (int r = 0; r < KER_MR; r++)
            memset(c[i * KER_MR + r] + (size_t)p * KER_NR, 0, (size_t)MIN(KER_NR, g->ncol - p * KER_NR) * sizeof(float));
}

static void igemm_run(igemm *g) {
  const int M = g->n * g->rh * g->rw;
  if (M <= 0 || g->taps <= 0) return;
  g->pos_major = g->rh * g->rw <= SMALL_GRID && g->n >= KER_MR;
  igemm_jobs J = {g, cdiv(M, KER_MR), cdiv(g->ncol, KER_NR), 0, 0, 0, zero_row((size_t)g->sc)};
  job_shape(J.mtiles, J.panels, &J.jt, &J.jp);
  J.njobs = cdiv(J.panels, J.jp);
  cpu_for(cdiv(J.mtiles, J.jt) * J.njobs, igemm_job, &J);
}

/* packed B for igemm: value(col, tap index, channel) over panels of 16
 * columns, zero past ncol. fwd: w[col][tap][ch]; bwd data: w[ch][tap][col]. */
typedef struct {
  float *b;
  const float *w;
  const conv_desc *d;
  int bwd_data, ntap, ncol, nch;
  const int *tap;
} weight_pack;

static void pack_panel(void *ctx, int p, int thread) {
  const weight_pack *P = ctx;
  const int C = P->d->c, ntap = P->ntap, nch = P->nch, nr = MIN(KER_NR, P->ncol - p * KER_NR);
  const size_t red = (size_t)ntap * nch, kdim = (size_t)P->d->kh * P->d->kw * C;
  float *bp = P->b + (size_t)p * red * KER_NR;
  if (nr < KER_NR) memset(bp, 0, red * KER_NR * sizeof(float));
  for (int c0 = 0; c0 < nch; c0 += CHUNK_CH) {
    int kc = MIN(CHUNK_CH, nch - c0);
    for (int t = 0; t < ntap; t++) {
      float *dst = bp + ((size_t)c0 * ntap + (size_t)t * kc) * KER_NR;
      if (P->bwd_data) { /* rows of w are contiguous in col */
        const float *src = P->w + (size_t)c0 * kdim + (size_t)P->tap[t] * C + p * KER_NR;
        for (int j = 0; j < kc; j++, src += kdim) {
          if (nr == KER_NR) memcpy(dst + (size_t)j * KER_NR, src, KER_NR * sizeof(float));
          else memcpy(dst + (size_t)j * KER_NR, src, (size_t)nr * sizeof(float));
        }
      } else { /* transpose the panel's rows of w, 8x8 blocks at a time */
        const float *src = P->w + (size_t)p * KER_NR * kdim + (size_t)P->tap[t] * C + c0;
        int j = 0;
        if (nr == KER_NR)
          for (; j + 8 <= kc; j += 8) {
            transpose8x8(dst + (size_t)j * KER_NR, KER_NR, src + j, kdim);
            transpose8x8(dst + (size_t)j * KER_NR + 8, KER_NR, src + 8 * kdim + j, kdim);
          }
        for (; j < kc; j++)
          for (int q = 0; q < nr; q++) dst[(size_t)j * KER_NR + q] = src[(size_t)q * kdim + j];
      }
    }
  }
}

static float *pack_weights(const float *w, const conv_desc *d, int bwd_data, int ntap, const int *tap, int ncol,
                           int nch) {
  const int panels = cdiv(ncol, KER_NR);
  weight_pack P = {scratch_get(&s_packed, (size_t)panels * ntap * nch * KER_NR, "packed convolution weights"),
                   w, d, bwd_data, ntap, ncol, nch, tap};
  cpu_for(panels, pack_panel, &P);
  return P.b;
}

/* tap offsets of the forward (and filter) direction: source pixel of output
 * (oy, ox) at tap (ky, kx) is (oy*s - p + ky, ox*s - p + kx) */
static void forward_taps(const conv_desc *d, int *tap, int *toy, int *tox) {
  for (int ky = 0; ky < d->kh; ky++)
    for (int kx = 0; kx < d->kw; kx++) {
      int t = ky * d->kw + kx;
      tap[t] = t;
      toy[t] = ky - d->pad;
      tox[t] = kx - d->pad;
    }
}

void cpu_conv_fwd(backend *be, const conv_desc *d, void *y_, const void *x_, const void *w_) {
  float *y = y_;       /* [n, oh, ow, k] */
  const float *x = x_; /* [n, h, w, c] */
  const float *w = w_; /* [k, kh, kw, c] */
  const int T = d->kh * d->kw;
  int *tap = xmalloc((size_t)T * 3 * sizeof(int), "convolution taps"), *toy = tap + T, *tox = toy + T;
  forward_taps(d, tap, toy, tox);
  igemm g = {d->n, d->oh, d->ow, x, d->h, d->w, d->c, d->stride, T, toy, tox,
             y,    d->oh, d->ow, d->k, 1,   0,    0,    d->k,   NULL, 0, 0};
  g.b = pack_weights(w, d, 0, T, tap, d->k, d->c);
  igemm_run(&g);
  free(tap);
}

void cpu_conv_bwd_data(backend *be, const conv_desc *d, void *dx_, const void *dy_, const void *w_, int acc_dx) {
  float *dx = dx_;       /* [n, h, w, c] */
  const float *dy = dy_; /* [n, oh, ow, k] */
  const float *w = w_;   /* [k, kh, kw, c] */
  const int S = d->stride, T = d->kh * d->kw;
  int *tap = xmalloc((size_t)T * 3 * sizeof(int), "convolution taps"), *toy = tap + T, *tox = toy + T;
  /* input pixel (iy, ix) = (py + S*ry, px + S*rx) takes tap (ky, kx) from
   * output pixel ((iy + p - ky)/S, ...) when S divides iy + p - ky */
  for (int py = 0; py < S; py++)
    for (int px = 0; px < S; px++) {
      int rh = py < d->h ? cdiv(d->h - py, S) : 0, rw = px < d->w ? cdiv(d->w - px, S) : 0;
      if (rh == 0 || rw == 0) continue;
      int nt = 0;
      for (int ky = 0; ky < d->kh; ky++)
        for (int kx = 0; kx < d->kw; kx++) {
          int ty = py + d->pad - ky, tx = px + d->pad - kx;
          if (((ty % S) + S) % S || ((tx % S) + S) % S) continue;
          tap[nt] = ky * d->kw + kx;
          toy[nt] = ty / S; /* exact */
          tox[nt] = tx / S;
          nt++;
        }
      if (nt == 0) { /* no tap reaches this class: its gradient is zero */
        if (acc_dx) continue;
        for (int n = 0; n < d->n; n++)
          for (int ry = 0; ry < rh; ry++)
            for (int rx = 0; rx < rw; rx++)
              memset(dx + (((size_t)n * d->h + py + S * ry) * d->w + px + S * rx) * d->c, 0,
                     (size_t)d->c * sizeof(float));
        continue;
      }
      igemm g = {d->n, rh,   rw,   dy, d->oh, d->ow, d->k, 1,      nt,   toy, tox,
                 dx,   d->h, d->w, d->c, S,   py,    px,   d->c, NULL, acc_dx, 0};
      g.b = pack_weights(w, d, 1, nt, tap, d->c, d->k);
      igemm_run(&g);
    }
  free(tap);
}

/* dw[k][t][ci] += sum over the n*oh*ow output pixels p of dy[p][k] * x(p, t)[ci]
 * as a GEMM over pixels: A = dy (6 output channels per tile), B = the input
 * pixels under the taps, 16 columns of dw per panel: panel q holds channels
 * [16c, 16c+16) of tap t (q = t*cpan + c), or, with fewer than 16 channels
 * (the stem's 3), columns [16q, 16q+16) of the flattened (tap, channel)
 * index. Items own a range of tiles times a range of panels, pack just
 * those and add the pixel blocks in order. */
typedef struct {
  const conv_desc *d;
  const float *dy, *x;
  int M, T, C, K, cpan, panels, ktiles, gk, gp;
  const int *toy, *tox;
  const float *zero;
  float *const *c; /* dw row of each output channel (past K: scratch) */
  int flat;        /* panels over the flattened (tap, channel) index */
} filter_job;

/* first dw column, width and taps [t0, t1) of panel q */
static void filter_panel(const filter_job *F, int q, int *col, int *nr, int *t0, int *t1) {
  if (F->flat) {
    *col = q * KER_NR;
    *nr = MIN(KER_NR, F->T * F->C - *col);
    *t0 = *col / F->C;
    *t1 = (*col + *nr - 1) / F->C + 1;
  } else {
    *t0 = q / F->cpan;
    *t1 = *t0 + 1;
    *col = *t0 * F->C + q % F->cpan * KER_NR;
    *nr = MIN(KER_NR, F->C - q % F->cpan * KER_NR);
  }
}

static void filter_item(void *ctx, int item, int thread) {
  const filter_job *F = ctx;
  const conv_desc *d = F->d;
  const int kg = item / F->gp, pg = item % F->gp, C = F->C, K = F->K;
  const int kt0 = F->ktiles * kg / F->gk, kt1 = F->ktiles * (kg + 1) / F->gk;
  const int q0 = F->panels * pg / F->gp, q1 = F->panels * (pg + 1) / F->gp;
  if (kt0 == kt1 || q0 == q1) return;
  int col, nr, t0, t1, ta, tb; /* taps [t0, t1) of these panels */
  filter_panel(F, q0, &col, &nr, &t0, &tb);
  filter_panel(F, q1 - 1, &col, &nr, &ta, &t1);
  const float **xp = cpu_scratch(thread, 0, (size_t)F->T * FILTER_PIXELS * sizeof *xp);
  float *bp = cpu_scratch(thread, 1, (size_t)(q1 - q0) * FILTER_PIXELS * KER_NR * sizeof(float));
  float *ap = cpu_scratch(thread, 2, (size_t)MIN(FILTER_TILES, kt1 - kt0) * FILTER_PIXELS * KER_MR * sizeof(float));
  for (int m0 = 0; m0 < F->M; m0 += FILTER_PIXELS) {
    int np = MIN(FILTER_PIXELS, F->M - m0);
    for (int i = 0; i < np; i++) {
      int m = m0 + i, ox = m % d->ow, oy = (m / d->ow) % d->oh, img = m / (d->ow * d->oh);
      for (int t = t0; t < t1; t++) {
        int iy = oy * d->stride + F->toy[t], ix = ox * d->stride + F->tox[t];
        xp[(size_t)t * FILTER_PIXELS + i] = (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                                ? F->zero
                                                : F->x + (((size_t)img * d->h + iy) * d->w + ix) * C;
      }
    }
    /* a few pixels at a time across the panels, so that input rows are read
     * front to back and each panel is written in runs */
    for (int i0 = 0; i0 < np; i0 += PACK_PIXELS)
      for (int q = q0; q < q1; q++) {
        float *b = bp + ((size_t)(q - q0) * np + i0) * KER_NR;
        int n = MIN(PACK_PIXELS, np - i0);
        filter_panel(F, q, &col, &nr, &ta, &tb);
        if (!F->flat) {
          pack_b_rows(b, xp + (size_t)ta * FILTER_PIXELS + i0, (size_t)(col - ta * C), n, nr);
          continue;
        }
        const float *const *src[KER_NR]; /* gather (tap, channel) pairs */
        int ch[KER_NR];
        for (int j = 0; j < nr; j++) src[j] = xp + (size_t)((col + j) / C) * FILTER_PIXELS + i0, ch[j] = (col + j) % C;
        for (int i = 0; i < n; i++, b += KER_NR) {
          for (int j = 0; j < nr; j++) b[j] = src[j][i][ch[j]];
          for (int j = nr; j < KER_NR; j++) b[j] = 0.0f;
        }
      }
    for (int k0 = kt0; k0 < kt1; k0 += FILTER_TILES) {
      int k1 = MIN(kt1, k0 + FILTER_TILES);
      for (int kt = k0; kt < k1; kt++) /* a column of dy: one stride, prefetched */
        pack_a_cols(ap + (size_t)(kt - k0) * np * KER_MR, F->dy + (size_t)m0 * K + kt * KER_MR, (size_t)K, np,
                    MIN(KER_MR, K - kt * KER_MR));
      for (int q = q0; q < q1; q++) {
        const float *b = bp + (size_t)(q - q0) * np * KER_NR;
        filter_panel(F, q, &col, &nr, &ta, &tb);
        for (int kt = k0; kt < k1; kt++)
          ker_tile(np, ap + (size_t)(kt - k0) * np * KER_MR, b, F->c + kt * KER_MR, (size_t)col, nr, 1);
      }
    }
  }
}

static void filter_run(const conv_desc *d, float *dw, const float *dy, const float *x) {
  const int T = d->kh * d->kw, C = d->c, K = d->k;
  const size_t kdim = (size_t)T * C;
  filter_job F = {d, dy, x, d->n * d->oh * d->ow, T, C, K, cdiv(C, KER_NR), 0, cdiv(K, KER_MR), 1, 1,
                  NULL, NULL, NULL, NULL, C < KER_NR && T > 1};
  F.panels = F.flat ? cdiv(T * C, KER_NR) : T * F.cpan;
  /* groups of tiles x groups of panels: enough items for every thread, the
   * least repacking (each tile group packs its panels' pixels, each panel
   * group its tiles' output gradients) */
  const int want = MIN(2 * cpu_threads(), F.ktiles * F.panels);
  double best = -1;
  for (int gk = 1; gk <= MIN(F.ktiles, want); gk++) {
    int gp = MIN(F.panels, cdiv(want, gk));
    if (gk * gp < want) continue;
    double cost = (double)gp * K + (double)gk * T * C;
    if (best < 0 || cost < best) best = cost, F.gk = gk, F.gp = gp;
  }
  int *toy = xmalloc((size_t)T * 3 * sizeof(int), "convolution taps"), *tox = toy + T, *tap = tox + T;
  forward_taps(d, tap, toy, tox);
  F.toy = toy;
  F.tox = tox;
  F.zero = zero_row((size_t)C + KER_NR);
  float **c = xmalloc((size_t)F.ktiles * KER_MR * sizeof *c, "convolution row pointers");
  float *dummy = xmalloc((kdim + KER_NR) * sizeof(float), "convolution scratch row");
  for (int i = 0; i < F.ktiles * KER_MR; i++) c[i] = i < K ? dw + (size_t)i * kdim : dummy;
  F.c = c;
  cpu_for(F.gk * F.gp, filter_item, &F);
  free(c);
  free(dummy);
  free(toy);
}

void cpu_conv_bwd_filter(backend *be, const conv_desc *d, float *dw, const void *dy_, const void *x_) {
  const float *dy = dy_; /* [n, oh, ow, k] */
  const float *x = x_;   /* [n, h, w, c] */
  /* dw: [k, kh, kw, c], accumulated */
  filter_run(d, dw, dy, x);
}
