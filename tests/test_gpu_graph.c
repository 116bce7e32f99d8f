/* test_gpu_graph.c: the graph training step (src/model/graph.h, issue 6)
 * against the eager step, from the same state on the same batches.
 *
 * Two models on one backend: E takes the trainer's eager step (forward,
 * loss, backward, skip check, SGD, EMA; on a skipped step gradients are
 * dropped and the running statistics and BN counters restored), G takes
 * model_graph_step. The steps change the learning rate and the loss scale
 * every time (a graph that kept either as a captured argument would replay
 * a stale value), one step is forced to skip (the trainer's NaN hook), one
 * overflows its gradients on purpose (loss scale ~3e38 with the fp16
 * gradient check), then the image size changes (a new graph is captured)
 * and more steps follow. Compared: every step's loss and skip decision, and
 * after each phase the weights, momentum, running statistics, EMA copies
 * and BN counters.
 *   emu:  the CPU backend with the emulated graph table (src/cpu/graph_emu.c:
 *         captured calls keep their arguments, as on a GPU) — runs anywhere;
 *         both paths run the same CPU code, so everything must be equal bit
 *         for bit. Also: a capture that fails (emulated) makes
 *         model_graph_step return -1 having run nothing (the eager step on
 *         the same batch then gives E's result exactly), and a backend
 *         without graphs reports why.
 *   bf16, fp16, fp32 (CUDA, each in a child process; skipped without a GPU):
 *         the same on the GPU. The two paths launch the same kernels with
 *         the same values, but cuDNN may choose algorithms that add in a
 *         nondeterministic order (atomics), so the bounds are: each step's
 *         loss within 1e-4 (fp32) / 1e-2 (bf16, fp16) relative; the weight
 *         difference at most 1e-3 (fp32) / 5e-2 (bf16, fp16) of the size of
 *         the eager run's own update (||w_G - w_E|| / ||w_E - w_0||); running
 *         statistics 1e-3 / 2e-2 relative L2. Whether the runs came out bit
 *         for bit equal is printed. Then a capture made to fail on purpose
 *         (a wait inside it) must be reported as failed, leave the backend
 *         usable, and two more steps must still agree.
 * RN50_TEST_THREADS sets the CPU threads; an argument (e.g. "bf16,fp16")
 * runs only those modes. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "core/rng.h"
#include "core/util.h"
#include "cuda/cuda_backend.h"
#include "model/exec.h"
#include "model/graph.h"

typedef struct {
  const char *name;
  int cuda;
  dtype dt;
  int check_grads; /* fp16: gradients checked for overflow */
  double base_scale;
  double tol_loss, tol_w, tol_run; /* 0: bit for bit */
  int arch_size, batch, size2;
} gg_mode;

static const gg_mode modes[] = {
    {"emu", 0, DTYPE_F32, 1, 1, 0, 0, 0, 32, 4, 40},
    {"bf16", 1, DTYPE_BF16, 0, 1, 1e-2, 5e-2, 2e-2, 64, 16, 96},
    {"fp16", 1, DTYPE_F16, 1, 1024, 1e-2, 5e-2, 2e-2, 64, 16, 96},
    {"fp32", 1, DTYPE_F32, 0, 1, 1e-4, 1e-3, 1e-3, 64, 16, 96},
};

#define CLASSES 10
#define PHASE1 5 /* steps before the image size changes */
#define PHASE2 3
#define FORCE_AT 2    /* step forced to skip (the NaN hook) */
#define OVERFLOW_AT 4 /* step whose gradients overflow (check_grads modes) */

static const gg_mode *M;
static backend *B;

/* a learnable batch: a colour per class plus per-pixel noise */
static void class_batch(uint64_t seed, int index, int nb, int size, uint8_t *img, int32_t *labels) {
  for (int i = 0; i < nb; i++) {
    uint64_t sample = (uint64_t)index * 1009u + (uint64_t)i;
    int k = (int)(rng_u64(seed, 1, sample) % CLASSES);
    labels[i] = k;
    for (size_t at = 0; at < (size_t)size * size * 3; at++) {
      double v = 40 + 20 * k + (at % 3) * 30 + 80 * (rng_uniform(seed, 2, sample * 1000003u + at) - 0.5);
      img[(size_t)i * size * size * 3 + at] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
  }
}

typedef struct {
  model m;
  float *ema_p, *ema_r, *backup; /* backend arrays */
} side;

static void side_init(side *s, const net *n, const float *p, const float *r, const int64_t *c) {
  model_create(&s->m, B, n, M->batch, 1);
  model_set_state(&s->m, p, r, c);
  size_t nr = n->n_running ? n->n_running : 1;
  s->ema_p = B->alloc(B, n->n_params * sizeof(float), "ema");
  s->ema_r = B->alloc(B, nr * sizeof(float), "ema");
  s->backup = B->alloc(B, nr * sizeof(float), "backup");
  B->copy(B, s->ema_p, s->m.params, n->n_params * sizeof(float));
  B->copy(B, s->ema_r, s->m.running, n->n_running * sizeof(float));
  B->sync(B);
}

static void side_free(side *s) {
  B->free(B, s->ema_p);
  B->free(B, s->ema_r);
  B->free(B, s->backup);
  model_destroy(&s->m);
}

static double step_lr(int k) { return 0.002 + 0.0005 * (k % 5); } /* small: the steps must not amplify rounding (chaos) */
static double step_scale(int k) {
  if (M->check_grads && k == OVERFLOW_AT) return 3e38;
  static const double f[4] = {1, 2, 0.5, 4};
  return M->base_scale * f[k % 4];
}

/* the trainer's eager step (accumulation 1) */
static double eager_step(side *s, const uint8_t *img, const int32_t *lab, int k, int *skipped) {
  model *m = &s->m;
  const net *n = &m->net;
  double ls = step_scale(k);
  int nb = M->batch;
  int64_t counts[NET_MAX_OPS];
  memcpy(counts, m->counts, sizeof counts);
  B->copy(B, s->backup, m->running, n->n_running * sizeof(float));
  model_set_input(m, img, lab, nb);
  model_forward(m, nb, 1);
  model_loss(m, nb, 0.1f, 1, (float)(ls / (double)nb));
  model_backward(m, nb);
  double loss = model_loss_mean(m, nb);
  if (k == FORCE_AT) loss = NAN;
  int bad = isfinite(loss) && M->check_grads && B->nonfinite(B, m->grads, n->n_params);
  *skipped = !isfinite(loss) || bad;
  if (*skipped) {
    model_zero_grads(m);
    B->copy(B, m->running, s->backup, n->n_running * sizeof(float));
    memcpy(m->counts, counts, sizeof counts);
    return loss;
  }
  sgd_config sc = {(float)step_lr(k), 0.9f, 5e-4f, 0, 1};
  model_sgd_step(m, &sc, (float)(1.0 / ls));
  B->ema_update(B, s->ema_p, m->params, n->n_params, 0.9f);
  B->ema_update(B, s->ema_r, m->running, n->n_running, 0.9f);
  return loss;
}

static model_step_config graph_config(side *s, int k) {
  model_step_config c;
  memset(&c, 0, sizeof c);
  c.sgd = (sgd_config){(float)step_lr(k), 0.9f, 5e-4f, 0, 1};
  c.smoothing = 0.1f;
  c.loss_scale = step_scale(k);
  c.check_grads = M->check_grads;
  c.force_skip = k == FORCE_AT;
  c.ema_params = s->ema_p;
  c.ema_running = s->ema_r;
  c.ema_decay = 0.9f;
  return c;
}

/* 0 and the loss, or -1 if model_graph_step declined (then nothing ran) */
static int graph_step(side *s, const uint8_t *img, const int32_t *lab, int k, double *loss, int *skipped) {
  model_step_config c = graph_config(s, k);
  model_graph_set_input(&s->m, img, lab, M->batch);
  if (model_graph_step(&s->m, M->batch, &c) != 0) return -1;
  CHECK(model_graph_result(&s->m, loss, skipped) == 0, "step %d: no graph result", k);
  if (k == FORCE_AT) *loss = NAN;
  return 0;
}

static float *down(const void *d, size_t n) {
  float *h = xmalloc(n * sizeof(float) + 4, "download");
  B->to_host(B, h, d, n * sizeof(float));
  return h;
}

static double diff_l2(const float *a, const float *b, size_t n) {
  double s = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)a[i] - b[i];
    s += d * d;
  }
  return sqrt(s);
}

/* G's state against E's; w0: the weights at the start (for the update size) */
static int compare_state(const char *when, side *e, side *g, const float *w0) {
  const net *n = &e->m.net;
  size_t np = n->n_params, nr = n->n_running;
  const void *ea[] = {e->m.params, e->m.momentum, e->m.running, e->ema_p, e->ema_r};
  const void *ga[] = {g->m.params, g->m.momentum, g->m.running, g->ema_p, g->ema_r};
  const char *names[] = {"weights", "momentum", "running statistics", "EMA weights", "EMA running statistics"};
  size_t ns[] = {np, np, nr, np, nr};
  int identical = 1;
  for (int i = 0; i < 5; i++) {
    float *a = down(ga[i], ns[i]), *b = down(ea[i], ns[i]);
    int same = memcmp(a, b, ns[i] * sizeof(float)) == 0;
    identical &= same;
    if (M->tol_w == 0) {
      CHECK(same, "%s: %s differ (relative L2 %.3g); the emulated paths must agree bit for bit", when,
            names[i], rel_l2(a, b, ns[i]));
    } else if (i == 0 || i == 3) { /* weights: against the size of the update */
      double upd = diff_l2(b, w0, ns[i]), d = diff_l2(a, b, ns[i]);
      double rel = upd > 0 ? d / upd : d;
      printf("    %s: %s differ by %.3g of the eager update (tol %.2g)\n", when, names[i], rel, M->tol_w);
      CHECK(rel <= M->tol_w, "%s: %s differ by %.3g of the eager update > %.2g", when, names[i], rel, M->tol_w);
    } else {
      double tol = i == 1 ? M->tol_w : M->tol_run, rel = rel_l2(a, b, ns[i]);
      printf("    %s: %s relative L2 %.3g (tol %.2g)\n", when, names[i], rel, tol);
      CHECK(rel <= tol, "%s: %s relative L2 %.3g > %.2g", when, names[i], rel, tol);
    }
    free(a), free(b);
  }
  for (int i = 0; i < n->n_bn; i++)
    CHECK(e->m.counts[i] == g->m.counts[i], "%s: BN %d counter %lld (graph) vs %lld (eager)", when, i,
          (long long)g->m.counts[i], (long long)e->m.counts[i]);
  return identical;
}

static void check_loss(int k, double le, double lg, int se, int sg) {
  CHECK(se == sg, "step %d: eager %s the update, the graph step %s it", k, se ? "skipped" : "applied",
        sg ? "skipped" : "applied");
  if (!isfinite(le) || !isfinite(lg)) {
    CHECK(isnan(le) == isnan(lg) && isinf(le) == isinf(lg), "step %d: loss %g (graph) vs %g (eager)", k, lg, le);
    return;
  }
  double rel = fabs(lg - le) / fmax(fabs(le), 1e-30);
  if (M->tol_loss == 0) CHECK(lg == le, "step %d: loss %.9g (graph) vs %.9g (eager)", k, lg, le);
  else CHECK(rel <= M->tol_loss, "step %d: loss %.7g (graph) vs %.7g (eager): rel %.3g > %.2g", k, lg, le, rel,
             M->tol_loss);
}

/* runs steps [k0, k1) on both sides at the current image size */
static void run_steps(side *e, side *g, int k0, int k1, int size, int fallback_ok) {
  int nb = M->batch;
  size_t ib = (size_t)nb * size * size * 3;
  uint8_t *img = B->alloc_host(B, ib, "images");
  int32_t *lab = B->alloc_host(B, (size_t)nb * sizeof(int32_t), "labels");
  for (int k = k0; k < k1; k++) {
    class_batch(77, k % 3, nb, size, img, lab);
    int se = 0, sg = 0;
    double le = eager_step(e, img, lab, k, &se), lg = 0;
    if (graph_step(g, img, lab, k, &lg, &sg) != 0) {
      CHECK(fallback_ok, "step %d: model_graph_step returned -1 (%s)", k, model_graph_status(&g->m));
      lg = eager_step(g, img, lab, k, &sg); /* the caller's fallback */
    }
    if (k == FORCE_AT) CHECK(se && sg, "step %d: forced skip not taken (eager %d, graph %d)", k, se, sg);
    if (M->check_grads && k == OVERFLOW_AT)
      CHECK(se && sg && isfinite(le), "step %d: loss scale 3e38 did not overflow the gradients (eager skip %d, "
            "graph skip %d, loss %g)", k, se, sg, le);
    check_loss(k, le, lg, se, sg);
    printf("    step %d (%d px): lr %.3f loss scale %g: loss eager %.6f graph %.6f%s\n", k, size, step_lr(k),
           step_scale(k), le, lg, se ? " (skipped)" : "");
  }
  B->free_host(B, img);
  B->free_host(B, lab);
}

static void set_size(side *s, int size) {
  char err[256];
  if (model_set_image_size(&s->m, size, err, sizeof err) != 0) die("model_set_image_size: %s", err);
}

/* the whole comparison; fail_capture (emu): every capture fails */
static void compare_paths(int fail_capture) {
  static net n;
  char err[256];
  if (net_build(&n, ARCH_RESNET18, CLASSES, M->size2, B->in_c, err, sizeof err) != 0) die("net_build: %s", err);
  float *p = xmalloc(n.n_params * sizeof(float), "p"), *r = xmalloc((n.n_running + 1) * sizeof(float), "r");
  int64_t c[NET_MAX_OPS];
  net_init_params(&n, 5, 0, p, r, c);
  side e, g;
  side_init(&e, &n, p, r, c);
  side_init(&g, &n, p, r, c);
  set_size(&e, M->arch_size);
  set_size(&g, M->arch_size);
  /* a failing capture: the warm-up step, the failed capture, one more */
  run_steps(&e, &g, 0, fail_capture ? 3 : PHASE1, M->arch_size, fail_capture);
  int same1 = compare_state("after the first steps", &e, &g, p), same2 = 1;
  if (!fail_capture) {
    set_size(&e, M->size2);
    set_size(&g, M->size2);
    run_steps(&e, &g, PHASE1, PHASE1 + PHASE2, M->size2, fail_capture);
    same2 = compare_state("after the image size changed", &e, &g, p);
  }
  model_graph_stats st;
  model_graph_get_stats(&g.m, &st);
  printf("    graph steps: %d uncaptured, %d captured, %d replays, %d fell back; bit for bit equal to eager: %s\n",
         st.warmups, st.captures, st.replays, st.fallbacks, same1 && same2 ? "yes" : "no");
  if (fail_capture) {
    CHECK(st.captures == 0 && st.fallbacks >= 1 && st.replays == 0, "failing captures: %d captured, %d fell back",
          st.captures, st.fallbacks);
    CHECK(strstr(model_graph_status(&g.m), "capture failed") != NULL, "status after a failed capture: %s",
          model_graph_status(&g.m));
  } else {
    /* one warm-up and one capture per image size (more if scratch memory moved) */
    CHECK(st.captures >= 2 && st.warmups >= 2 && st.fallbacks == 0, "%d captured, %d uncaptured, %d fell back",
          st.captures, st.warmups, st.fallbacks);
    CHECK(st.replays >= PHASE1 + PHASE2 - 4, "only %d of %d steps were replays", st.replays, PHASE1 + PHASE2);
    CHECK(strcmp(model_graph_status(&g.m), "on") == 0, "status: %s", model_graph_status(&g.m));
    if (!M->cuda) CHECK(st.warmups == 2 && st.captures == 2, "%d uncaptured, %d captured (want 2 and 2)",
                        st.warmups, st.captures);
  }
  if (M->cuda && !fail_capture) {
    /* a capture that fails on the real device: the backend stays usable */
    char cerr[320] = "";
    void *gr = NULL;
    CHECK(B->graph->begin(B, cerr, sizeof cerr) == 0, "begin: %s", cerr);
    float h[4];
    B->to_host(B, h, g.m.params, sizeof h); /* waits: not allowed in a capture */
    int rc = B->graph->end(B, &gr, cerr, sizeof cerr);
    printf("    a capture with a wait inside: end() = %d (%s)\n", rc, cerr);
    CHECK(rc != 0 && gr == NULL, "a capture with a wait inside did not fail");
    run_steps(&e, &g, PHASE1 + PHASE2, PHASE1 + PHASE2 + 2, M->size2, 0);
    compare_state("after a failed capture", &e, &g, p);
  }
  side_free(&e);
  side_free(&g);
  free(p), free(r);
}

static void test_graph_vs_eager(void) { compare_paths(0); }
static void test_failed_capture_falls_back(void) { compare_paths(1); }

static void test_no_graph_backend(void) {
  backend *cpu = cpu_backend_create(1);
  static net n;
  char err[256];
  if (net_build(&n, ARCH_RESNET18, CLASSES, 32, cpu->in_c, err, sizeof err) != 0) die("net_build: %s", err);
  model m;
  model_create(&m, cpu, &n, 2, 1);
  char why[320] = "";
  CHECK(model_graph_available(&m, why, sizeof why) != 0 && strstr(why, "cpu"), "available on the CPU? (%s)", why);
  uint8_t img[2 * 32 * 32 * 3] = {0};
  int32_t lab[2] = {0, 1};
  model_graph_set_input(&m, img, lab, 2);
  model_step_config c;
  memset(&c, 0, sizeof c);
  c.loss_scale = 1;
  CHECK(model_graph_step(&m, 2, &c) == -1, "model_graph_step on the CPU did not decline");
  double loss;
  CHECK(model_graph_result(&m, &loss, NULL) == -1, "a result without a step");
  model_destroy(&m);
  cpu->destroy(cpu);
}

/* ---- processes (the parent touches neither CUDA nor OpenMP) ---- */
static int env_int(const char *name, int dflt) {
  const char *s = getenv(name);
  return s && *s ? atoi(s) : dflt;
}

static void run_mode(const void *arg, int fd) {
  const gg_mode *md = arg;
  int msg[3] = {0, 0, 0};
  char err[512] = "";
  M = md;
  if (!md->cuda) {
    B = cpu_backend_create(env_int("RN50_TEST_THREADS", 0));
    cpu_graph_emulate(B, 0);
    h_run("graph step = eager step, bit for bit [emulated graphs]", test_graph_vs_eager);
    B->destroy(B);
    B = cpu_backend_create(env_int("RN50_TEST_THREADS", 0));
    cpu_graph_emulate(B, 1);
    h_run("failed capture: nothing ran, the eager step takes over [emulated]", test_failed_capture_falls_back);
    B->destroy(B);
    h_run("a backend without graphs says why", test_no_graph_backend);
  } else {
    B = cuda_backend_create(md->dt, 0, 0, err, sizeof err);
    if (!B) {
      printf("cuda_backend_create(%s): %s\n", md->name, err);
      msg[0] = 1;
    } else {
      char name[96];
      snprintf(name, sizeof name, "graph step vs eager step [%s]", md->name);
      h_run(name, test_graph_vs_eager);
      B->destroy(B);
    }
  }
  msg[1] = h_passed;
  msg[2] = h_failed;
  fflush(stdout);
  if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) _exit(3);
}

static void probe(const void *unused, int fd) {
  char err[512] = "";
  int msg[3] = {0, 0, 0};
  backend *be = cuda_backend_create(DTYPE_F32, 0, 0, err, sizeof err);
  if (!be) {
    printf("skipped: no GPU (%s)\n", err);
    msg[0] = 1;
  } else {
    be->destroy(be);
  }
  fflush(stdout);
  if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) _exit(3);
}

/* mode name in a comma-separated list */
static int listed(const char *list, const char *name) {
  size_t n = strlen(name);
  for (const char *p = list; p && *p;) {
    const char *end = strchr(p, ',');
    size_t len = end ? (size_t)(end - p) : strlen(p);
    if (len == n && strncmp(p, name, n) == 0) return 1;
    p = end ? end + 1 : NULL;
  }
  return 0;
}

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL; /* e.g. "bf16,fp16" */
  int timeout_s = env_int("RN50_TEST_CHILD_TIMEOUT", 300);
  int passed = 0, failed = 0, msg[3], have_gpu = 0;
  if (cuda_backend_available() && (!only || strcmp(only, "emu") != 0)) {
    if (h_in_child(probe, NULL, 60, msg, "GPU probe") != 0) failed++;
    else have_gpu = msg[0] == 0;
  } else if (!cuda_backend_available()) {
    printf("(built without CUDA: the GPU modes are skipped)\n");
  }
  for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
    const gg_mode *md = &modes[i];
    if (only && !listed(only, md->name)) continue;
    if (md->cuda && !have_gpu) continue;
    if (h_in_child(run_mode, md, timeout_s, msg, md->name) != 0) {
      failed++;
      continue;
    }
    if (msg[0] == 1) {
      printf("FAIL %s: no CUDA backend\n", md->name);
      failed++;
      continue;
    }
    passed += msg[1];
    failed += msg[2];
  }
  h_passed = passed;
  h_failed = failed;
  return harness_finish();
}
