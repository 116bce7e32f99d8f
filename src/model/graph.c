/* graph.c: the training step captured once and replayed (graph.h). Each
 * configuration has a cache entry: its first step runs uncaptured (so that
 * every scratch buffer the backend grows on first use has grown: a capture
 * must not allocate), its second is captured and launched, the rest are
 * launches. An entry is keyed by everything a captured graph holds fixed:
 * batch size, net, fixed hyper-parameters, every buffer address, and the
 * backend's memory version (its scratch buffers). Anything that fails in a
 * capture turns graph steps off for the model; the caller's eager step
 * runs instead (nothing of the failed step ran). */
#include "graph.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

#define GRAPH_CACHE 4

enum { ENTRY_EMPTY = 0, ENTRY_WARM = 1, ENTRY_CAPTURED = 2 };

typedef struct {
  int state;
  void *exec; /* the backend's graph (ENTRY_CAPTURED) */
  /* the key */
  int nb, image_size, classes, check_grads, nesterov, ema;
  float smoothing, momentum, wd, wd_rest, ema_decay;
  uint64_t mem_version;
  void **deps; /* buffer addresses the graph uses */
  int n_deps;
  uint64_t last_used;
} graph_entry;

typedef struct model_graph model_graph;
struct model_graph {
  int disabled;
  char why[320];
  /* step scalars: device copy, and the copy the step leaves in pinned host memory */
  step_scalars *ds, *hs_out;
  float *host_loss;  /* pinned [max_batch] */
  float *run_backup; /* backend [n_running]: running statistics before the step */
  /* input staging: two slots, so that a batch uploads while the step before runs */
  uint8_t *stage_img[2];
  int32_t *stage_lab[2];
  size_t stage_cap;
  int next_slot;
  int pending, pending_slot, pending_nb, pending_size;
  /* the last launched step, for model_graph_result */
  int launched, launched_nb;
  graph_entry cache[GRAPH_CACHE];
  uint64_t tick;
  model_graph_stats stats;
};

static int profiling_on(void) {
  const char *e = getenv("RN50_PROFILE");
  return e && *e && *e != '0';
}

int model_graph_available(model *m, char *why, size_t len) {
  if (!m->be->graph) {
    snprintf(why, len, "the %s backend cannot capture graphs", m->be->name);
    return -1;
  }
  if (!m->train_mode) {
    snprintf(why, len, "the model has no training buffers");
    return -1;
  }
  if (profiling_on()) {
    snprintf(why, len, "RN50_PROFILE times ops one by one");
    return -1;
  }
  if (m->graph && m->graph->disabled) {
    snprintf(why, len, "%s", m->graph->why);
    return -1;
  }
  return 0;
}

static void entry_clear(backend *be, graph_entry *e) {
  if (e->exec) be->graph->destroy(be, e->exec);
  free(e->deps);
  memset(e, 0, sizeof *e);
}

/* Turns graph steps off for good, saying why once. */
static void graph_off(model *m, const char *fmt, const char *detail) {
  model_graph *g = m->graph;
  if (g->disabled) return;
  g->disabled = 1;
  char msg[256];
  snprintf(msg, sizeof msg, fmt, detail);
  snprintf(g->why, sizeof g->why, "%s", msg);
  warn("graph step off (%s): using the eager step", msg);
  for (int i = 0; i < GRAPH_CACHE; i++) entry_clear(m->be, &g->cache[i]);
}

static model_graph *graph_state(model *m) {
  if (m->graph) return m->graph;
  backend *be = m->be;
  model_graph *g = xcalloc(1, sizeof *g, "graph step state");
  size_t nr = m->net.n_running ? m->net.n_running : 1;
  g->ds = be->alloc(be, sizeof(step_scalars), "step scalars");
  g->hs_out = be->alloc_host(be, sizeof(step_scalars), "step scalars");
  g->host_loss = be->alloc_host(be, (size_t)m->max_batch * sizeof(float), "step losses");
  g->run_backup = be->alloc(be, nr * sizeof(float), "BN running statistics backup");
  memset(g->hs_out, 0, sizeof *g->hs_out);
  memset(g->host_loss, 0, (size_t)m->max_batch * sizeof(float));
  m->graph = g;
  return g;
}

void model_graph_free(model *m) {
  model_graph *g = m->graph;
  if (!g) return;
  backend *be = m->be;
  be->sync(be);
  for (int i = 0; i < GRAPH_CACHE; i++) entry_clear(be, &g->cache[i]);
  for (int s = 0; s < 2; s++) {
    if (g->stage_img[s]) be->free(be, g->stage_img[s]);
    if (g->stage_lab[s]) be->free(be, g->stage_lab[s]);
  }
  be->free(be, g->ds);
  be->free(be, g->run_backup);
  be->free_host(be, g->hs_out);
  be->free_host(be, g->host_loss);
  free(g);
  m->graph = NULL;
}

void model_graph_set_input(model *m, const uint8_t *images, const int32_t *labels, int nb) {
  char why[320];
  if (model_graph_available(m, why, sizeof why) != 0) return;
  if (nb < 1 || nb > m->max_batch) die("model_graph_set_input: batch of %d, the model takes 1..%d", nb, m->max_batch);
  backend *be = m->be;
  model_graph *g = graph_state(m);
  const act_shape *in = &m->net.acts[0];
  size_t per_slot = (size_t)m->max_batch * in->h * in->w * 3, bytes = (size_t)nb * in->h * in->w * 3;
  if (per_slot > g->stage_cap) { /* first use, or a larger image size */
    be->sync(be);
    for (int s = 0; s < 2; s++) {
      if (g->stage_img[s]) be->free(be, g->stage_img[s]);
      g->stage_img[s] = be->alloc(be, per_slot, "input staging");
      if (!g->stage_lab[s]) g->stage_lab[s] = be->alloc(be, (size_t)m->max_batch * sizeof(int32_t), "label staging");
    }
    g->stage_cap = per_slot;
  }
  int s = g->next_slot;
  g->next_slot ^= 1;
  const backend_graph *G = be->graph;
  if (G->upload) {
    G->upload(be, s, g->stage_img[s], images, bytes);
    G->upload(be, s, g->stage_lab[s], labels, (size_t)nb * sizeof(int32_t));
  } else {
    be->to_device(be, g->stage_img[s], images, bytes);
    be->to_device(be, g->stage_lab[s], labels, (size_t)nb * sizeof(int32_t));
  }
  g->pending = 1;
  g->pending_slot = s;
  g->pending_nb = nb;
  g->pending_size = m->net.image_size;
}

/* The step itself, as it is captured: forward, loss, backward, skip
 * decision, restore / SGD / zero / EMA, results to the host. */
static void step_ops(model *m, int nb, const model_step_config *c) {
  backend *be = m->be;
  const backend_graph *G = be->graph;
  model_graph *g = m->graph;
  const net *N = &m->net;
  size_t nr = N->n_running;
  int lg = N->logits;
  if (nr) be->copy(be, g->run_backup, m->running, nr * sizeof(float));
  model_forward_pass(m, nb, 1, 0);
  G->xent(be, nb, N->classes, m->losses, m->dact[lg], m->act[lg], m->labels, c->smoothing, g->ds);
  G->check(be, g->ds, m->losses, (size_t)nb);
  model_backward(m, nb);
  if (c->check_grads) G->check(be, g->ds, m->grads, N->n_params);
  if (nr) G->restore(be, m->running, g->run_backup, nr, g->ds);
  G->sgd_step(be, m->params, m->momentum, m->grads, m->work == (void *)m->params ? NULL : m->work, N->n_params,
              N->n_decay, c->sgd.momentum, c->sgd.wd, c->sgd.wd_bn ? c->sgd.wd : 0.0f, c->sgd.nesterov, g->ds);
  be->zero(be, m->grads, N->n_params * sizeof(float));
  if (c->ema_params) {
    G->ema_update(be, c->ema_params, m->params, N->n_params, c->ema_decay, g->ds);
    if (nr && c->ema_running) G->ema_update(be, c->ema_running, m->running, nr, c->ema_decay, g->ds);
  }
  G->to_host_async(be, g->host_loss, m->losses, (size_t)nb * sizeof(float));
  G->to_host_async(be, g->hs_out, g->ds, sizeof(step_scalars));
}

/* the buffer addresses a graph of this model holds */
static int collect_deps(const model *m, const model_step_config *c, void **d) {
  const model_graph *g = m->graph;
  int n = 0;
  void *fixed[] = {m->params, m->work, m->grads, m->momentum, m->running, m->save_mean, m->save_invstd, m->labels,
                   m->losses, c->ema_params, c->ema_running, g->ds, g->hs_out, g->host_loss, g->run_backup};
  for (size_t i = 0; i < ARRAY_LEN(fixed); i++) d[n++] = fixed[i];
  for (int a = 0; a < m->net.n_acts; a++) d[n++] = m->act[a];
  for (int a = 0; a < m->net.n_acts; a++) d[n++] = m->dact[a];
  return n;
}

#define MAX_DEPS (15 + 2 * NET_MAX_ACTS)

static int entry_matches(const graph_entry *e, const model *m, int nb, const model_step_config *c, void **deps,
                         int n_deps) {
  float wd_rest = c->sgd.wd_bn ? c->sgd.wd : 0.0f;
  return e->state != ENTRY_EMPTY && e->nb == nb && e->image_size == m->net.image_size &&
         e->classes == m->net.classes && e->check_grads == (c->check_grads != 0) &&
         e->nesterov == (c->sgd.nesterov != 0) && e->ema == (c->ema_params != NULL) && e->smoothing == c->smoothing &&
         e->momentum == c->sgd.momentum && e->wd == c->sgd.wd && e->wd_rest == wd_rest &&
         (!c->ema_params || e->ema_decay == c->ema_decay) && e->n_deps == n_deps &&
         memcmp(e->deps, deps, (size_t)n_deps * sizeof(void *)) == 0;
}

static graph_entry *entry_for(model *m, int nb, const model_step_config *c) {
  model_graph *g = m->graph;
  backend *be = m->be;
  static void *deps[MAX_DEPS];
  int n_deps = collect_deps(m, c, deps);
  uint64_t ver = be->graph->memory_version(be);
  graph_entry *lru = &g->cache[0];
  for (int i = 0; i < GRAPH_CACHE; i++) {
    graph_entry *e = &g->cache[i];
    if (entry_matches(e, m, nb, c, deps, n_deps)) {
      if (e->mem_version != ver) entry_clear(be, e); /* scratch memory moved: start this one again */
      else return e;
    }
    if (e->state == ENTRY_EMPTY) {
      if (lru->state != ENTRY_EMPTY) lru = e;
    } else if (lru->state != ENTRY_EMPTY && e->last_used < lru->last_used) {
      lru = e;
    }
  }
  graph_entry *e = lru;
  entry_clear(be, e);
  e->nb = nb;
  e->image_size = m->net.image_size;
  e->classes = m->net.classes;
  e->check_grads = c->check_grads != 0;
  e->nesterov = c->sgd.nesterov != 0;
  e->ema = c->ema_params != NULL;
  e->smoothing = c->smoothing;
  e->momentum = c->sgd.momentum;
  e->wd = c->sgd.wd;
  e->wd_rest = c->sgd.wd_bn ? c->sgd.wd : 0.0f;
  e->ema_decay = c->ema_params ? c->ema_decay : 0.0f;
  e->deps = xmalloc((size_t)n_deps * sizeof(void *), "graph dependencies");
  memcpy(e->deps, deps, (size_t)n_deps * sizeof(void *));
  e->n_deps = n_deps;
  return e; /* state ENTRY_EMPTY: the caller runs the warm-up step */
}

int model_graph_step(model *m, int nb, const model_step_config *c) {
  char why[320];
  if (model_graph_available(m, why, sizeof why) != 0) {
    if (m->graph) m->graph->stats.fallbacks++;
    return -1;
  }
  backend *be = m->be;
  const backend_graph *G = be->graph;
  model_graph *g = graph_state(m);
  const act_shape *in = &m->net.acts[0];
  if (!g->pending || g->pending_nb != nb || g->pending_size != m->net.image_size) {
    graph_off(m, "%s", "internal: model_graph_step without a matching model_graph_set_input");
    g->stats.fallbacks++;
    return -1;
  }
  if (!(c->loss_scale > 0) || !isfinite(c->loss_scale)) die("model_graph_step: loss scale %g", c->loss_scale);
  graph_entry *e = entry_for(m, nb, c);
  /* outside the graph: the batch (waiting for its upload), the scalars */
  int s = g->pending_slot;
  if (G->upload_wait) G->upload_wait(be, s);
  be->input_from_u8(be, m->act[0], g->stage_img[s], nb, in->h, in->w, in->c, m->mean, m->inv_std);
  be->copy(be, m->labels, g->stage_lab[s], (size_t)nb * sizeof(int32_t));
  if (G->upload_done) G->upload_done(be, s);
  step_scalars hs;
  memset(&hs, 0, sizeof hs);
  hs.lr = c->sgd.lr;
  hs.loss_grad = (float)(c->loss_scale / (double)nb);
  hs.sgd_grad = (float)(1.0 / c->loss_scale);
  hs.skip = c->force_skip != 0;
  G->set_scalars(be, g->ds, &hs);
  g->launched = 0;
  char err[256] = "";
  if (e->state == ENTRY_EMPTY) {
    step_ops(m, nb, c); /* warm-up: uncaptured, sizes the scratch buffers */
    e->state = ENTRY_WARM;
    e->mem_version = G->memory_version(be);
    g->stats.warmups++;
  } else {
    if (e->state == ENTRY_WARM) {
      if (G->begin(be, err, sizeof err) != 0) {
        graph_off(m, "capture could not start: %s", err);
        g->stats.fallbacks++;
        return -1;
      }
      step_ops(m, nb, c);
      if (G->end(be, &e->exec, err, sizeof err) != 0) {
        e->exec = NULL;
        graph_off(m, "capture failed: %s", err);
        g->stats.fallbacks++;
        return -1;
      }
      if (G->memory_version(be) != e->mem_version) {
        graph_off(m, "%s", "backend memory changed during the capture");
        g->stats.fallbacks++;
        return -1;
      }
      e->state = ENTRY_CAPTURED;
      g->stats.captures++;
    }
    if (G->launch(be, e->exec, err, sizeof err) != 0) {
      graph_off(m, "launch failed: %s", err);
      g->stats.fallbacks++;
      return -1;
    }
    g->stats.replays++;
  }
  e->last_used = ++g->tick;
  g->pending = 0;
  for (int i = 0; i < m->net.n_bn; i++) m->counts[i]++;
  g->launched = 1;
  g->launched_nb = nb;
  return 0;
}

int model_graph_result(model *m, double *loss, int *skipped) {
  model_graph *g = m->graph;
  if (!g || !g->launched) return -1;
  m->be->sync(m->be);
  double s = 0;
  for (int i = 0; i < g->launched_nb; i++) s += g->host_loss[i];
  int sk = g->hs_out->skip != 0;
  if (sk)
    for (int i = 0; i < m->net.n_bn; i++) m->counts[i]--;
  g->launched = 0;
  if (loss) *loss = g->launched_nb ? s / g->launched_nb : 0;
  if (skipped) *skipped = sk;
  return 0;
}

const char *model_graph_status(const model *m) {
  if (!m->be->graph) return "the backend cannot capture graphs";
  if (m->graph && m->graph->disabled) return m->graph->why;
  return "on";
}

void model_graph_get_stats(const model *m, model_graph_stats *s) {
  if (m->graph) *s = m->graph->stats;
  else memset(s, 0, sizeof *s);
}
