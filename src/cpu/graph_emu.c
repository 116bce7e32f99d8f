/* graph_emu.c: an emulated graph table (backend.h, backend_graph) for the
 * CPU backend, so that the graph training step (src/model/graph.c) and the
 * trainer's use of it run and are tested where there is no GPU. It does
 * what CUDA stream capture does, on the CPU:
 *   - between begin and end, every op call is recorded with its arguments
 *     by value (pointers, sizes, scalars such as a learning rate) and not
 *     run; calls a GPU could not capture (to_host, sync, nonfinite, alloc,
 *     free, to_device, conv_prepare) make the capture fail at end;
 *   - launch replays the recorded calls in order, so a value passed as an
 *     argument stays what it was at capture while step_scalars are read at
 *     run time — a step that forgot to read a per-step value from backend
 *     memory replays a stale one, as it would on the GPU;
 *   - memory_version changes at every allocation.
 * Enabled by cpu_graph_emulate (tests; RN50_GRAPH_EMULATE=1 for the CLI). */
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"

typedef enum {
  R_COPY, R_ZERO, R_INPUT, R_CAST, R_CONV_FWD, R_CONV_BWD_DATA, R_CONV_BWD_FILTER, R_BN_TRAIN, R_BN_EVAL,
  R_BN_BWD, R_MAXPOOL_FWD, R_MAXPOOL_BWD, R_AVGPOOL_FWD, R_AVGPOOL_BWD, R_FC_FWD, R_FC_BWD, R_XENT, R_SGD,
  R_EMA, R_SET_SCALARS, R_XENT_S, R_CHECK, R_SGD_S, R_EMA_S, R_RESTORE, R_TO_HOST_ASYNC
} rec_kind;

/* one recorded call: its arguments by value */
typedef struct {
  rec_kind k;
  conv_desc d;
  void *p[10];
  int i[12];
  float f[8];
  size_t z[3];
  step_scalars sc; /* set_scalars: the value at the call */
} rec;

typedef struct {
  rec *r;
  int n;
} emu_graph_exec;

typedef struct {
  backend real;     /* the op table outside a capture */
  int capturing;
  int fail_capture; /* tests: every capture fails */
  char err[256];    /* first reason the current capture fails */
  rec *recs;
  int n, cap;
  uint64_t version;
  void *(*alloc)(backend *be, size_t bytes, const char *what);
  void (*destroy)(backend *be);
} emu_graph;

static emu_graph *eg_of(backend *be) { return (emu_graph *)be->graph_impl; }

static rec *push(backend *be, rec_kind k) {
  emu_graph *g = eg_of(be);
  if (g->n == g->cap) {
    g->cap = g->cap ? 2 * g->cap : 256;
    g->recs = xrealloc(g->recs, (size_t)g->cap * sizeof(rec), "graph emulation");
  }
  rec *r = &g->recs[g->n++];
  memset(r, 0, sizeof *r);
  r->k = k;
  return r;
}

static void fail(backend *be, const char *what) {
  emu_graph *g = eg_of(be);
  if (!g->err[0]) snprintf(g->err, sizeof g->err, "%s called during capture", what);
}

/* ---- recorders (installed between begin and end) ---- */
static void r_copy(backend *be, void *dst, const void *src, size_t bytes) {
  rec *r = push(be, R_COPY);
  r->p[0] = dst, r->p[1] = (void *)src, r->z[0] = bytes;
}
static void r_zero(backend *be, void *p, size_t bytes) {
  rec *r = push(be, R_ZERO);
  r->p[0] = p, r->z[0] = bytes;
}
static void r_input(backend *be, void *x, const uint8_t *img, int n, int h, int w, int c, const float mean[3],
                    const float inv_std[3]) {
  rec *r = push(be, R_INPUT);
  r->p[0] = x, r->p[1] = (void *)img, r->i[0] = n, r->i[1] = h, r->i[2] = w, r->i[3] = c;
  for (int j = 0; j < 3; j++) r->f[j] = mean[j], r->f[3 + j] = inv_std[j];
}
static void r_cast(backend *be, void *dst, const float *src, size_t n) {
  rec *r = push(be, R_CAST);
  r->p[0] = dst, r->p[1] = (void *)src, r->z[0] = n;
}
static void r_conv_fwd(backend *be, const conv_desc *d, void *y, const void *x, const void *w) {
  rec *r = push(be, R_CONV_FWD);
  r->d = *d, r->p[0] = y, r->p[1] = (void *)x, r->p[2] = (void *)w;
}
static void r_conv_bwd_data(backend *be, const conv_desc *d, void *dx, const void *dy, const void *w, int acc) {
  rec *r = push(be, R_CONV_BWD_DATA);
  r->d = *d, r->p[0] = dx, r->p[1] = (void *)dy, r->p[2] = (void *)w, r->i[0] = acc;
}
static void r_conv_bwd_filter(backend *be, const conv_desc *d, float *dw, const void *dy, const void *x) {
  rec *r = push(be, R_CONV_BWD_FILTER);
  r->d = *d, r->p[0] = dw, r->p[1] = (void *)dy, r->p[2] = (void *)x;
}
static void r_bn_train(backend *be, int m, int c, void *y, const void *x, const void *res, int relu, const float *gamma,
                       const float *beta, float *rm, float *rv, float *sm, float *si, float momentum, float eps) {
  rec *r = push(be, R_BN_TRAIN);
  r->i[0] = m, r->i[1] = c, r->i[2] = relu, r->f[0] = momentum, r->f[1] = eps;
  void *p[] = {y, (void *)x, (void *)res, (void *)gamma, (void *)beta, rm, rv, sm, si};
  memcpy(r->p, p, sizeof p);
}
static void r_bn_eval(backend *be, int m, int c, void *y, const void *x, const void *res, int relu, const float *gamma,
                      const float *beta, const float *rm, const float *rv, float eps) {
  rec *r = push(be, R_BN_EVAL);
  r->i[0] = m, r->i[1] = c, r->i[2] = relu, r->f[0] = eps;
  void *p[] = {y, (void *)x, (void *)res, (void *)gamma, (void *)beta, (void *)rm, (void *)rv};
  memcpy(r->p, p, sizeof p);
}
static void r_bn_bwd(backend *be, int m, int c, void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                     const void *y, const void *x, const float *gamma, const float *sm, const float *si, int relu,
                     int acc_dx, int acc_dr) {
  rec *r = push(be, R_BN_BWD);
  r->i[0] = m, r->i[1] = c, r->i[2] = relu, r->i[3] = acc_dx, r->i[4] = acc_dr;
  void *p[] = {dx, dr, dgamma, dbeta, (void *)dy, (void *)y, (void *)x, (void *)gamma, (void *)sm, (void *)si};
  memcpy(r->p, p, sizeof p);
}
static void r_maxpool_fwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int s, int pad, void *y,
                          const void *x) {
  rec *r = push(be, R_MAXPOOL_FWD);
  int i[] = {n, h, w, c, oh, ow, k, s, pad};
  memcpy(r->i, i, sizeof i);
  r->p[0] = y, r->p[1] = (void *)x;
}
static void r_maxpool_bwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int s, int pad, void *dx,
                          const void *dy, const void *x, int acc) {
  rec *r = push(be, R_MAXPOOL_BWD);
  int i[] = {n, h, w, c, oh, ow, k, s, pad, acc};
  memcpy(r->i, i, sizeof i);
  r->p[0] = dx, r->p[1] = (void *)dy, r->p[2] = (void *)x;
}
static void r_avgpool_fwd(backend *be, int n, int hw, int c, void *y, const void *x) {
  rec *r = push(be, R_AVGPOOL_FWD);
  r->i[0] = n, r->i[1] = hw, r->i[2] = c, r->p[0] = y, r->p[1] = (void *)x;
}
static void r_avgpool_bwd(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc) {
  rec *r = push(be, R_AVGPOOL_BWD);
  r->i[0] = n, r->i[1] = hw, r->i[2] = c, r->i[3] = acc, r->p[0] = dx, r->p[1] = (void *)dy;
}
static void r_fc_fwd(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b) {
  rec *r = push(be, R_FC_FWD);
  r->i[0] = n, r->i[1] = cin, r->i[2] = cout;
  r->p[0] = y, r->p[1] = (void *)x, r->p[2] = (void *)w, r->p[3] = (void *)b;
}
static void r_fc_bwd(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                     const void *x, const void *w, int acc) {
  rec *r = push(be, R_FC_BWD);
  r->i[0] = n, r->i[1] = cin, r->i[2] = cout, r->i[3] = acc;
  void *p[] = {dx, dw, db, (void *)dy, (void *)x, (void *)w};
  memcpy(r->p, p, sizeof p);
}
static void r_xent(backend *be, int n, int classes, float *loss, float *dl, const float *logits, const int32_t *labels,
                   float smoothing, float gs) {
  rec *r = push(be, R_XENT);
  r->i[0] = n, r->i[1] = classes, r->f[0] = smoothing, r->f[1] = gs;
  r->p[0] = loss, r->p[1] = dl, r->p[2] = (void *)logits, r->p[3] = (void *)labels;
}
static void r_sgd(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t nd, float lr,
                  float mom, float wd, float wd_rest, int nesterov, float gs) {
  rec *r = push(be, R_SGD);
  r->p[0] = w, r->p[1] = buf, r->p[2] = (void *)g, r->p[3] = w_work, r->z[0] = n, r->z[1] = nd;
  r->f[0] = lr, r->f[1] = mom, r->f[2] = wd, r->f[3] = wd_rest, r->f[4] = gs, r->i[0] = nesterov;
}
static void r_ema(backend *be, float *ema, const float *w, size_t n, float decay) {
  rec *r = push(be, R_EMA);
  r->p[0] = ema, r->p[1] = (void *)w, r->z[0] = n, r->f[0] = decay;
}

/* calls a GPU cannot capture: the capture fails; they still act, so that
 * the caller does not crash before end reports the failure */
static void *x_alloc(backend *be, size_t bytes, const char *what) {
  fail(be, "alloc");
  return eg_of(be)->real.alloc(be, bytes, what);
}
static void x_free(backend *be, void *p) {
  fail(be, "free");
  eg_of(be)->real.free(be, p);
}
static void *x_alloc_host(backend *be, size_t bytes, const char *what) {
  fail(be, "alloc_host");
  return eg_of(be)->real.alloc_host(be, bytes, what);
}
static void x_free_host(backend *be, void *p) {
  fail(be, "free_host");
  eg_of(be)->real.free_host(be, p);
}
static void x_to_device(backend *be, void *dst, const void *src, size_t bytes) {
  fail(be, "to_device");
  eg_of(be)->real.to_device(be, dst, src, bytes);
}
static void x_to_host(backend *be, void *dst, const void *src, size_t bytes) {
  fail(be, "to_host (waits)");
  eg_of(be)->real.to_host(be, dst, src, bytes);
}
static void x_sync(backend *be) { fail(be, "sync"); }
static int x_nonfinite(backend *be, const float *g, size_t n) {
  fail(be, "nonfinite (waits)");
  return 0;
}
static void x_conv_prepare(backend *be, const conv_desc *d) { fail(be, "conv_prepare"); }

/* ---- the graph table ---- */
static void run_rec(backend *be, const rec *r);

static void g_set_scalars(backend *be, step_scalars *dst, const step_scalars *src) {
  if (eg_of(be)->capturing) {
    rec *r = push(be, R_SET_SCALARS);
    r->p[0] = dst, r->sc = *src;
  } else {
    *dst = *src;
  }
}
static void g_xent(backend *be, int n, int classes, float *loss, float *dl, const float *logits,
                   const int32_t *labels, float smoothing, const step_scalars *s) {
  rec *r = push(be, R_XENT_S);
  r->i[0] = n, r->i[1] = classes, r->f[0] = smoothing;
  r->p[0] = loss, r->p[1] = dl, r->p[2] = (void *)logits, r->p[3] = (void *)labels, r->p[4] = (void *)s;
  if (!eg_of(be)->capturing) run_rec(be, r), eg_of(be)->n--;
}
static void g_check(backend *be, step_scalars *s, const float *x, size_t n) {
  rec *r = push(be, R_CHECK);
  r->p[0] = s, r->p[1] = (void *)x, r->z[0] = n;
  if (!eg_of(be)->capturing) run_rec(be, r), eg_of(be)->n--;
}
static void g_sgd(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t nd, float mom,
                  float wd, float wd_rest, int nesterov, const step_scalars *s) {
  rec *r = push(be, R_SGD_S);
  r->p[0] = w, r->p[1] = buf, r->p[2] = (void *)g, r->p[3] = w_work, r->p[4] = (void *)s, r->z[0] = n, r->z[1] = nd;
  r->f[1] = mom, r->f[2] = wd, r->f[3] = wd_rest, r->i[0] = nesterov;
  if (!eg_of(be)->capturing) run_rec(be, r), eg_of(be)->n--;
}
static void g_ema(backend *be, float *ema, const float *w, size_t n, float decay, const step_scalars *s) {
  rec *r = push(be, R_EMA_S);
  r->p[0] = ema, r->p[1] = (void *)w, r->p[2] = (void *)s, r->z[0] = n, r->f[0] = decay;
  if (!eg_of(be)->capturing) run_rec(be, r), eg_of(be)->n--;
}
static void g_restore(backend *be, float *dst, const float *src, size_t n, const step_scalars *s) {
  rec *r = push(be, R_RESTORE);
  r->p[0] = dst, r->p[1] = (void *)src, r->p[2] = (void *)s, r->z[0] = n;
  if (!eg_of(be)->capturing) run_rec(be, r), eg_of(be)->n--;
}
static void g_to_host_async(backend *be, void *dst, const void *src, size_t bytes) {
  rec *r = push(be, R_TO_HOST_ASYNC);
  r->p[0] = dst, r->p[1] = (void *)src, r->z[0] = bytes;
  if (!eg_of(be)->capturing) run_rec(be, r), eg_of(be)->n--;
}

/* Runs one call with the real ops: be's table is the real one outside a
 * capture, and run_rec only runs then. */
static void run_rec(backend *be, const rec *r) {
  backend *R = be;
  void *const *p = r->p;
  const int *i = r->i;
  const float *f = r->f;
  switch (r->k) {
    case R_COPY: R->copy(be, p[0], p[1], r->z[0]); break;
    case R_ZERO: R->zero(be, p[0], r->z[0]); break;
    case R_INPUT: R->input_from_u8(be, p[0], p[1], i[0], i[1], i[2], i[3], f, f + 3); break;
    case R_CAST: R->cast_params(be, p[0], p[1], r->z[0]); break;
    case R_CONV_FWD: R->conv_fwd(be, &r->d, p[0], p[1], p[2]); break;
    case R_CONV_BWD_DATA: R->conv_bwd_data(be, &r->d, p[0], p[1], p[2], i[0]); break;
    case R_CONV_BWD_FILTER: R->conv_bwd_filter(be, &r->d, p[0], p[1], p[2]); break;
    case R_BN_TRAIN:
      R->bn_fwd_train(be, i[0], i[1], p[0], p[1], p[2], i[2], p[3], p[4], p[5], p[6], p[7], p[8], f[0], f[1]);
      break;
    case R_BN_EVAL: R->bn_fwd_eval(be, i[0], i[1], p[0], p[1], p[2], i[2], p[3], p[4], p[5], p[6], f[0]); break;
    case R_BN_BWD:
      R->bn_bwd(be, i[0], i[1], p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9], i[2], i[3], i[4]);
      break;
    case R_MAXPOOL_FWD: R->maxpool_fwd(be, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], p[0], p[1]); break;
    case R_MAXPOOL_BWD:
      R->maxpool_bwd(be, i[0], i[1], i[2], i[3], i[4], i[5], i[6], i[7], i[8], p[0], p[1], p[2], i[9]);
      break;
    case R_AVGPOOL_FWD: R->avgpool_fwd(be, i[0], i[1], i[2], p[0], p[1]); break;
    case R_AVGPOOL_BWD: R->avgpool_bwd(be, i[0], i[1], i[2], p[0], p[1], i[3]); break;
    case R_FC_FWD: R->fc_fwd(be, i[0], i[1], i[2], p[0], p[1], p[2], p[3]); break;
    case R_FC_BWD: R->fc_bwd(be, i[0], i[1], i[2], p[0], p[1], p[2], p[3], p[4], p[5], i[3]); break;
    case R_XENT: R->xent(be, i[0], i[1], p[0], p[1], p[2], p[3], f[0], f[1]); break;
    case R_SGD: R->sgd_step(be, p[0], p[1], p[2], p[3], r->z[0], r->z[1], f[0], f[1], f[2], f[3], i[0], f[4]); break;
    case R_EMA: R->ema_update(be, p[0], p[1], r->z[0], f[0]); break;
    case R_SET_SCALARS: *(step_scalars *)p[0] = r->sc; break;
    case R_XENT_S: {
      const step_scalars *s = p[4];
      R->xent(be, i[0], i[1], p[0], p[1], p[2], p[3], f[0], s->loss_grad);
      break;
    }
    case R_CHECK:
      if (r->z[0] && R->nonfinite(be, p[1], r->z[0])) ((step_scalars *)p[0])->skip = 1;
      break;
    case R_SGD_S: {
      const step_scalars *s = p[4];
      if (!s->skip)
        R->sgd_step(be, p[0], p[1], p[2], p[3], r->z[0], r->z[1], s->lr, f[1], f[2], f[3], i[0], s->sgd_grad);
      break;
    }
    case R_EMA_S: {
      const step_scalars *s = p[2];
      if (!s->skip) R->ema_update(be, p[0], p[1], r->z[0], f[0]);
      break;
    }
    case R_RESTORE: {
      const step_scalars *s = p[2];
      if (s->skip && r->z[0]) memcpy(p[0], p[1], r->z[0] * sizeof(float));
      break;
    }
    case R_TO_HOST_ASYNC:
      if (r->z[0]) memcpy(p[0], p[1], r->z[0]);
      break;
  }
}

static int g_begin(backend *be, char *err, size_t errlen) {
  emu_graph *g = eg_of(be);
  if (g->capturing) {
    snprintf(err, errlen, "a capture is already running");
    return -1;
  }
  g->real = *be;
  g->capturing = 1;
  g->err[0] = 0;
  g->n = 0;
  be->alloc = x_alloc;
  be->free = x_free;
  be->alloc_host = x_alloc_host;
  be->free_host = x_free_host;
  be->to_device = x_to_device;
  be->to_host = x_to_host;
  be->sync = x_sync;
  be->nonfinite = x_nonfinite;
  if (be->conv_prepare) be->conv_prepare = x_conv_prepare;
  be->copy = r_copy;
  be->zero = r_zero;
  be->input_from_u8 = r_input;
  be->cast_params = r_cast;
  be->conv_fwd = r_conv_fwd;
  be->conv_bwd_data = r_conv_bwd_data;
  be->conv_bwd_filter = r_conv_bwd_filter;
  be->bn_fwd_train = r_bn_train;
  be->bn_fwd_eval = r_bn_eval;
  be->bn_bwd = r_bn_bwd;
  be->maxpool_fwd = r_maxpool_fwd;
  be->maxpool_bwd = r_maxpool_bwd;
  be->avgpool_fwd = r_avgpool_fwd;
  be->avgpool_bwd = r_avgpool_bwd;
  be->fc_fwd = r_fc_fwd;
  be->fc_bwd = r_fc_bwd;
  be->xent = r_xent;
  be->sgd_step = r_sgd;
  be->ema_update = r_ema;
  return 0;
}

static int g_end(backend *be, void **graph, char *err, size_t errlen) {
  emu_graph *g = eg_of(be);
  *graph = NULL;
  if (!g->capturing) {
    snprintf(err, errlen, "no capture is running");
    return -1;
  }
  *be = g->real; /* the real table again (graph, graph_impl unchanged) */
  g->capturing = 0;
  if (g->fail_capture && !g->err[0]) snprintf(g->err, sizeof g->err, "capture failure (emulated for tests)");
  if (g->err[0]) {
    snprintf(err, errlen, "%s", g->err);
    g->n = 0;
    return -1;
  }
  emu_graph_exec *x = xcalloc(1, sizeof *x, "graph emulation");
  x->n = g->n;
  x->r = xmalloc((size_t)(g->n ? g->n : 1) * sizeof(rec), "graph emulation");
  memcpy(x->r, g->recs, (size_t)g->n * sizeof(rec));
  g->n = 0;
  *graph = x;
  return 0;
}

static int g_launch(backend *be, void *graph, char *err, size_t errlen) {
  emu_graph *g = eg_of(be);
  if (g->capturing) {
    snprintf(err, errlen, "launch during a capture");
    return -1;
  }
  const emu_graph_exec *x = graph;
  for (int k = 0; k < x->n; k++) run_rec(be, &x->r[k]);
  return 0;
}

static void g_destroy(backend *be, void *graph) {
  emu_graph_exec *x = graph;
  if (!x) return;
  free(x->r);
  free(x);
}

static uint64_t g_memory_version(backend *be) { return eg_of(be)->version; }

static void *counting_alloc(backend *be, size_t bytes, const char *what) {
  emu_graph *g = eg_of(be);
  g->version++;
  return g->alloc(be, bytes, what);
}

static void emu_destroy(backend *be) {
  emu_graph *g = eg_of(be);
  void (*destroy)(backend *) = g->destroy;
  free(g->recs);
  free(g);
  be->graph = NULL;
  be->graph_impl = NULL;
  destroy(be);
}

static const backend_graph emu_table = {
    .begin = g_begin,
    .end = g_end,
    .launch = g_launch,
    .destroy = g_destroy,
    .memory_version = g_memory_version,
    .set_scalars = g_set_scalars,
    .xent = g_xent,
    .check = g_check,
    .sgd_step = g_sgd,
    .ema_update = g_ema,
    .restore = g_restore,
    .to_host_async = g_to_host_async,
    /* no second queue: uploads are to_device */
};

void cpu_graph_emulate(backend *be, int fail_capture) {
  if (be->graph) die("cpu_graph_emulate: the %s backend already has a graph table", be->name);
  emu_graph *g = xcalloc(1, sizeof *g, "graph emulation");
  g->fail_capture = fail_capture;
  g->alloc = be->alloc;
  g->destroy = be->destroy;
  be->graph_impl = g;
  be->graph = &emu_table;
  be->alloc = counting_alloc;
  be->destroy = emu_destroy;
}
