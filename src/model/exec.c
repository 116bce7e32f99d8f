/* exec.c: runs a net's forward and backward passes through a backend.
 * Memory: parameters, gradients and momentum are flat arrays; all
 * activations of a training step live in one arena (backward needs them);
 * activation gradients share a second arena by lifetime (src/model/plan.c),
 * so only a few are ever allocated at once. */
#include "exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "graph.h"
#include "plan.h"

#define ALIGN 256

/* RN50_PROFILE=1: time every op (synchronising after each) and print a
 * table per op kind at exit. For finding where a step's time goes. */
static int prof_on = -1;
static double prof_t[2][5];
static long prof_n[2][5];
static const char *const prof_names[5] = {"conv", "bn", "maxpool", "avgpool", "fc"};

static void prof_report(void) {
  double total = 0;
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < 5; k++) total += prof_t[d][k];
  fflush(stdout);
  fprintf(stderr, "profile (ms total, share): ");
  for (int d = 0; d < 2; d++)
    for (int k = 0; k < 5; k++)
      if (prof_n[d][k])
        fprintf(stderr, "%s-%s %.0f (%.0f%%)  ", prof_names[k], d ? "bwd" : "fwd", prof_t[d][k] * 1e3,
                100 * prof_t[d][k] / total);
  fprintf(stderr, "\n");
}

static int profiling(void) {
  if (prof_on < 0) {
    const char *e = getenv("RN50_PROFILE");
    prof_on = e && *e && *e != '0';
    if (prof_on) atexit(prof_report);
  }
  return prof_on;
}

static double prof_begin(backend *be) {
  if (!profiling()) return 0;
  be->sync(be);
  return now_sec();
}

static void prof_end(backend *be, double t0, int bwd, op_kind k) {
  if (!prof_on) return;
  be->sync(be);
  prof_t[bwd][k] += now_sec() - t0;
  prof_n[bwd][k]++;
}

static const float imagenet_mean[3] = {0.485f, 0.456f, 0.406f};
static const float imagenet_std[3] = {0.229f, 0.224f, 0.225f};

static size_t elem_size(const model *m, int act) { return act == m->net.logits ? sizeof(float) : m->be->act_size; }

static void *work_ptr(const model *m, int state_id) {
  return (char *)m->work + m->net.state[state_id].offset * m->be->act_size;
}

static conv_desc conv_of(const model *m, const net_op *op, int nb, int index) {
  const act_shape *x = &m->net.acts[op->x], *y = &m->net.acts[op->y];
  conv_desc d = {nb, x->h, x->w, x->c, y->h, y->w, y->c, op->k, op->k, op->stride, op->pad, index};
  return d;
}

/* Lays out activations and activation gradients for the current net in the
 * arenas, growing them (and the input staging buffer) when too small. */
static void place(model *m, void **arena, size_t *cap, size_t bytes, const char *what) {
  if (bytes > *cap) {
    if (*arena) m->be->free(m->be, *arena);
    *arena = m->be->alloc(m->be, bytes, what);
    *cap = bytes;
  }
}

static void plan_buffers(model *m) {
  backend *be = m->be;
  const net *N = &m->net;
  int mode = m->train_mode, max_batch = m->max_batch;
  int na = N->n_acts, n = N->n_ops;
  size_t size[2 * NET_MAX_ACTS], off[2 * NET_MAX_ACTS];
  int start[2 * NET_MAX_ACTS], end[2 * NET_MAX_ACTS];
  for (int a = 0; a < na; a++) size[a] = act_numel(N, a, max_batch) * elem_size(m, a);
  if (mode == 0) {
    /* eval only: activations share memory by lifetime over the forward */
    for (int a = 0; a < na; a++) start[a] = end[a] = 0;
    for (int i = 0; i < n; i++) {
      const net_op *op = &N->ops[i];
      start[op->y] = i;
      end[op->y] = MAX(end[op->y], i);
      end[op->x] = MAX(end[op->x], i);
      if (op->r >= 0) end[op->r] = MAX(end[op->r], i);
    }
    end[N->logits] = n;
    m->act_bytes = plan_arena(na, size, start, end, ALIGN, off);
    place(m, &m->act_arena, &m->act_cap, m->act_bytes, "activations");
    for (int a = 0; a < na; a++) m->act[a] = (char *)m->act_arena + off[a];
    m->grad_bytes = 0;
  } else {
    /* training: one timeline, forward op i at time i, the loss at time n,
     * backward of op i at time 2n - i. An activation lives from its producer
     * to its last reader, in the forward or the backward (conv, BN, max-pool
     * and fc read their input again in backward, BN with ReLU its output; a
     * downsample BN's output dies at the block's add); the logits live to
     * the end (callers read them after the step). The gradient of an
     * activation lives from the backward of its last consumer to the
     * backward of its producer. Activations that are dead by then give
     * their memory to gradients, as a framework's allocator would.
     * Mode 2 keeps every activation for the whole step (tests that inspect
     * them after backward). */
    for (int a = 0; a < na; a++) {
      start[a] = 0;
      end[a] = mode == 2 ? 2 * n + 1 : 0;
      size[na + a] = a == 0 ? 0 : size[a];
      start[na + a] = 2 * n + 1;
      end[na + a] = 0;
    }
    for (int i = 0; i < n; i++) {
      const net_op *op = &N->ops[i];
      int tb = 2 * n - i;
      start[op->y] = i;
      end[op->y] = MAX(end[op->y], i);
      if (op->kind == OP_BN && op->relu) end[op->y] = MAX(end[op->y], tb);
      end[op->x] = MAX(end[op->x], op->kind == OP_AVGPOOL ? i : tb);
      if (op->r >= 0) end[op->r] = MAX(end[op->r], i);
      end[na + op->y] = tb;
      start[na + op->x] = MIN(start[na + op->x], tb);
      if (op->r >= 0) start[na + op->r] = MIN(start[na + op->r], tb);
    }
    end[N->logits] = 2 * n + 1;
    start[na + N->logits] = n;
    size_t total = plan_arena(2 * na, size, start, end, ALIGN, off);
    place(m, &m->act_arena, &m->act_cap, total, "activations and their gradients");
    for (int a = 0; a < na; a++) {
      m->act[a] = (char *)m->act_arena + off[a];
      m->dact[a] = a == 0 ? NULL : (char *)m->act_arena + off[na + a];
    }
    m->act_bytes = total;
    m->grad_bytes = 0; /* inside act_bytes */
  }
  const act_shape *in = &N->acts[0];
  size_t img_bytes = (size_t)max_batch * in->h * in->w * 3;
  if (img_bytes > m->images_cap) {
    if (m->images) be->free(be, m->images);
    m->images = be->alloc(be, img_bytes, "input images");
    m->images_cap = img_bytes;
  }
  if (be->conv_prepare)
    for (int i = 0; i < N->n_ops; i++)
      if (N->ops[i].kind == OP_CONV) {
        conv_desc d = conv_of(m, &N->ops[i], max_batch, i);
        be->conv_prepare(be, &d);
      }
}

void model_create(model *m, backend *be, const net *n, int max_batch, int train_mode) {
  memset(m, 0, sizeof *m);
  m->net = *n;
  m->be = be;
  m->max_batch = max_batch;
  m->train_mode = train_mode;
  const net *N = &m->net;
  for (int i = 0; i < 3; i++) {
    m->mean[i] = imagenet_mean[i];
    m->inv_std[i] = 1.0f / imagenet_std[i];
  }
  m->params = be->alloc(be, N->n_params * sizeof(float), "parameters");
  be->zero(be, m->params, N->n_params * sizeof(float));
  if (be->act_size == sizeof(float)) m->work = m->params;
  else {
    m->work = be->alloc(be, N->n_params * be->act_size, "working copy of the parameters");
    be->zero(be, m->work, N->n_params * be->act_size);
  }
  m->running = be->alloc(be, (N->n_running ? N->n_running : 1) * sizeof(float), "BN running statistics");
  m->save_mean = be->alloc(be, N->n_bn_channels * sizeof(float), "BN batch statistics");
  m->save_invstd = be->alloc(be, N->n_bn_channels * sizeof(float), "BN batch statistics");
  if (train_mode) {
    m->grads = be->alloc(be, N->n_params * sizeof(float), "gradients");
    m->momentum = be->alloc(be, N->n_params * sizeof(float), "momentum buffers");
    be->zero(be, m->grads, N->n_params * sizeof(float));
    be->zero(be, m->momentum, N->n_params * sizeof(float));
  }
  plan_buffers(m);
  m->labels = be->alloc(be, (size_t)max_batch * sizeof(int32_t), "labels");
  m->losses = be->alloc(be, (size_t)max_batch * sizeof(float), "losses");
}

void model_destroy(model *m) {
  backend *be = m->be;
  if (!be) return;
  model_graph_free(m);
  if (m->work != m->params) be->free(be, m->work);
  void *ptrs[] = {m->params, m->running, m->save_mean, m->save_invstd, m->grads, m->momentum, m->act_arena,
                  m->images, m->labels, m->losses};
  for (size_t i = 0; i < ARRAY_LEN(ptrs); i++)
    if (ptrs[i]) be->free(be, ptrs[i]);
  memset(m, 0, sizeof *m);
}

int model_set_image_size(model *m, int image_size, char *err, size_t errlen) {
  if (image_size == m->net.image_size) return 0;
  net n;
  if (net_build(&n, m->net.arch, m->net.classes, image_size, m->net.in_c, err, errlen) != 0) return -1;
  m->net = n;
  plan_buffers(m);
  return 0;
}

void model_swap_weights(model *m, float **params, float **running) {
  float *p = m->params, *r = m->running;
  m->params = *params;
  m->running = *running;
  *params = p;
  *running = r;
  if (m->work != p) m->be->cast_params(m->be, m->work, m->params, m->net.n_params);
  else m->work = m->params;
}

void model_init_params(model *m, uint64_t seed, int zero_gamma) {
  const net *N = &m->net;
  float *p = xmalloc(N->n_params * sizeof(float), "parameters");
  float *r = xmalloc((N->n_running ? N->n_running : 1) * sizeof(float), "running statistics");
  int64_t counts[NET_MAX_OPS];
  net_init_params(N, seed, zero_gamma, p, r, counts);
  model_set_state(m, p, r, counts);
  free(p);
  free(r);
}

void model_set_state(model *m, const float *params, const float *running, const int64_t *counts) {
  backend *be = m->be;
  const net *N = &m->net;
  if (params) {
    be->to_device(be, m->params, params, N->n_params * sizeof(float));
    be->cast_params(be, m->work, m->params, N->n_params);
  }
  if (running) be->to_device(be, m->running, running, N->n_running * sizeof(float));
  if (counts) memcpy(m->counts, counts, (size_t)N->n_bn * sizeof(int64_t));
  be->sync(be);
}

void model_get_state(model *m, float *params, float *running, int64_t *counts) {
  backend *be = m->be;
  const net *N = &m->net;
  if (params) be->to_host(be, params, m->params, N->n_params * sizeof(float));
  if (running) be->to_host(be, running, m->running, N->n_running * sizeof(float));
  if (counts) memcpy(counts, m->counts, (size_t)N->n_bn * sizeof(int64_t));
}

void model_set_input(model *m, const uint8_t *images, const int32_t *labels, int nb) {
  backend *be = m->be;
  const act_shape *in = &m->net.acts[0];
  be->to_device(be, m->images, images, (size_t)nb * in->h * in->w * 3);
  if (labels) be->to_device(be, m->labels, labels, (size_t)nb * sizeof(int32_t));
  be->input_from_u8(be, m->act[0], m->images, nb, in->h, in->w, in->c, m->mean, m->inv_std);
}

void model_forward(model *m, int nb, int train) { model_forward_pass(m, nb, train, 1); }

void model_forward_pass(model *m, int nb, int train, int count_bn) {
  backend *be = m->be;
  const net *N = &m->net;
  for (int i = 0; i < N->n_ops; i++) {
    const net_op *op = &N->ops[i];
    const act_shape *xs = &N->acts[op->x], *ys = &N->acts[op->y];
    double t0 = prof_begin(be);
    switch (op->kind) {
      case OP_CONV: {
        conv_desc d = conv_of(m, op, nb, i);
        be->conv_fwd(be, &d, m->act[op->y], m->act[op->x], work_ptr(m, op->w));
        break;
      }
      case OP_BN: {
        int rows = nb * xs->h * xs->w;
        const float *gamma = m->params + N->state[op->w].offset, *beta = m->params + N->state[op->b].offset;
        float *rm = m->running + N->state[op->rmean].offset, *rv = m->running + N->state[op->rvar].offset;
        const void *r = op->r >= 0 ? m->act[op->r] : NULL;
        if (train) {
          size_t o = N->bn_offset[op->bn];
          be->bn_fwd_train(be, rows, xs->c, m->act[op->y], m->act[op->x], r, op->relu, gamma, beta, rm, rv,
                           m->save_mean + o, m->save_invstd + o, 0.1f, 1e-5f);
          if (count_bn) m->counts[op->bn]++;
        } else {
          be->bn_fwd_eval(be, rows, xs->c, m->act[op->y], m->act[op->x], r, op->relu, gamma, beta, rm, rv, 1e-5f);
        }
        break;
      }
      case OP_MAXPOOL:
        be->maxpool_fwd(be, nb, xs->h, xs->w, xs->c, ys->h, ys->w, op->k, op->stride, op->pad, m->act[op->y],
                        m->act[op->x]);
        break;
      case OP_AVGPOOL: be->avgpool_fwd(be, nb, xs->h * xs->w, xs->c, m->act[op->y], m->act[op->x]); break;
      case OP_FC:
        be->fc_fwd(be, nb, xs->c, ys->c, m->act[op->y], m->act[op->x], work_ptr(m, op->w), work_ptr(m, op->b));
        break;
    }
    prof_end(be, t0, 0, op->kind);
  }
}

void model_loss(model *m, int nb, float smoothing, int with_grad, float grad_scale) {
  backend *be = m->be;
  int lg = m->net.logits;
  be->xent(be, nb, m->net.classes, m->losses, with_grad ? m->dact[lg] : NULL, m->act[lg], m->labels, smoothing,
           grad_scale);
}

double model_loss_mean(model *m, int nb) {
  float buf[1024];
  double s = 0;
  for (int i0 = 0; i0 < nb; i0 += 1024) {
    int k = MIN(1024, nb - i0);
    m->be->to_host(m->be, buf, m->losses + i0, (size_t)k * sizeof(float));
    for (int i = 0; i < k; i++) s += buf[i];
  }
  return nb ? s / nb : 0;
}

void model_backward(model *m, int nb) {
  backend *be = m->be;
  const net *N = &m->net;
  char written[NET_MAX_ACTS] = {0};
  written[N->logits] = 1;
  for (int i = N->n_ops - 1; i >= 0; i--) {
    const net_op *op = &N->ops[i];
    const act_shape *xs = &N->acts[op->x], *ys = &N->acts[op->y];
    void *dy = m->dact[op->y];
    void *dx = m->dact[op->x]; /* NULL for the input image */
    double t0 = prof_begin(be);
    switch (op->kind) {
      case OP_CONV: {
        conv_desc d = conv_of(m, op, nb, i);
        be->conv_bwd_filter(be, &d, m->grads + N->state[op->w].offset, dy, m->act[op->x]);
        if (dx) be->conv_bwd_data(be, &d, dx, dy, work_ptr(m, op->w), written[op->x]);
        break;
      }
      case OP_BN: {
        int rows = nb * xs->h * xs->w;
        size_t o = N->bn_offset[op->bn];
        void *dr = op->r >= 0 ? m->dact[op->r] : NULL;
        be->bn_bwd(be, rows, xs->c, dx, dr, m->grads + N->state[op->w].offset, m->grads + N->state[op->b].offset,
                   dy, m->act[op->y], m->act[op->x], m->params + N->state[op->w].offset, m->save_mean + o,
                   m->save_invstd + o, op->relu, written[op->x], op->r >= 0 ? written[op->r] : 0);
        if (op->r >= 0) written[op->r] = 1;
        break;
      }
      case OP_MAXPOOL:
        be->maxpool_bwd(be, nb, xs->h, xs->w, xs->c, ys->h, ys->w, op->k, op->stride, op->pad, dx, dy,
                        m->act[op->x], written[op->x]);
        break;
      case OP_AVGPOOL: be->avgpool_bwd(be, nb, xs->h * xs->w, xs->c, dx, dy, written[op->x]); break;
      case OP_FC:
        be->fc_bwd(be, nb, xs->c, ys->c, dx, m->grads + N->state[op->w].offset, m->grads + N->state[op->b].offset,
                   dy, m->act[op->x], work_ptr(m, op->w), written[op->x]);
        break;
    }
    prof_end(be, t0, 1, op->kind);
    if (dx) written[op->x] = 1;
  }
}

void model_zero_grads(model *m) { m->be->zero(m->be, m->grads, m->net.n_params * sizeof(float)); }

void model_sgd_step(model *m, const sgd_config *c, float grad_scale) {
  backend *be = m->be;
  const net *N = &m->net;
  be->sgd_step(be, m->params, m->momentum, m->grads, m->work == m->params ? NULL : m->work, N->n_params, N->n_decay,
               c->lr, c->momentum, c->wd, c->wd_bn ? c->wd : 0.0f, c->nesterov, grad_scale);
  model_zero_grads(m);
}

void model_logits_to_host(model *m, int nb, float *out) {
  m->be->to_host(m->be, out, m->act[m->net.logits], (size_t)nb * m->net.classes * sizeof(float));
}

void model_sync(model *m) { m->be->sync(m->be); }

double model_train_step(model *m, int nb, float smoothing, float grad_scale) {
  model_forward(m, nb, 1);
  model_loss(m, nb, smoothing, 1, grad_scale / (float)nb);
  model_backward(m, nb);
  return model_loss_mean(m, nb);
}
