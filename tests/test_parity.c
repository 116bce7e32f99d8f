/* test_parity.c: rn50 against PyTorch (tools/torch_ref.py, run by `make test`
 * into $RN50_REFS) for resnet18 and resnet50 at batch 4, 3x64x64, with
 * identical weights and inputs:
 *   eval logits, train logits and loss     rel L2 <= 1e-4
 *   every parameter gradient               rel L2 <= 1e-3 (each tensor)
 *   BN running stats after the step        rel L2 <= 1e-4, counters exact
 *   3 SGD steps (momentum 0.9, Nesterov, weight decay, label smoothing 0.1),
 *     every tensor's change (final - initial) and the BN buffers:
 *     rel L2 <= max(2e-3, 3 x PyTorch fp32's own error)
 * The references are PyTorch in float64 on the same float32 weights
 * (tools/torch_ref.py explains the choice of data and why three steps of a
 * batch-4 ResNet are compared with PyTorch's own fp32 accuracy). */
#include <stdlib.h>
#include <string.h>

#include "cpu/cpu.h"
#include "harness.h"
#include "io/weights.h"
#include "model/exec.h"

#define TOL_OUT 1e-4
#define TOL_GRAD 1e-3
#define TOL_DW 2e-3
#define TORCH_FACTOR 3.0
#define BATCH 4
#define SIZE 64
#define CLASSES 10

static backend *be;
static char refs[512];

typedef struct {
  net n;
  model m;
  float *p0, *r0, *params, *running;
  int64_t c0[NET_MAX_OPS], counts[NET_MAX_OPS];
  uint8_t *images; /* [3, BATCH, SIZE, SIZE, 3] */
  int32_t labels[3][BATCH];
} fixture;

static int open_ref(safet_file *f, const char *arch, const char *what) {
  char path[640], err[512];
  snprintf(path, sizeof path, "%s/%s_%s.safetensors", refs, arch, what);
  if (safet_open(f, path, err, sizeof err) != 0) {
    CHECK(0, "%s (run `make test`, which runs tools/torch_ref.py first)", err);
    return -1;
  }
  return 0;
}

static int setup(fixture *fx, arch_id arch) {
  char err[512], path[640];
  const char *name = arch_names[arch];
  if (net_build(&fx->n, arch, CLASSES, SIZE, 3, err, sizeof err) != 0) {
    CHECK(0, "%s", err);
    return -1;
  }
  fx->p0 = calloc(fx->n.n_params, 4), fx->r0 = calloc(fx->n.n_running, 4);
  fx->params = calloc(fx->n.n_params, 4), fx->running = calloc(fx->n.n_running, 4);
  snprintf(path, sizeof path, "%s/%s_init.safetensors", refs, name);
  if (weights_load(&fx->n, path, fx->p0, fx->r0, fx->c0, err, sizeof err) != 0) {
    CHECK(0, "%s", err);
    return -1;
  }
  safet_file d;
  if (open_ref(&d, name, "data")) return -1;
  const safet_tensor *ti = safet_find(&d, "images"), *tl = safet_find(&d, "labels");
  CHECK(ti && tl && ti->nbytes == (size_t)3 * BATCH * SIZE * SIZE * 3, "data fixture malformed");
  fx->images = malloc(ti->nbytes);
  memcpy(fx->images, safet_tensor_data(&d, ti), ti->nbytes);
  int64_t lab[3 * BATCH];
  safet_read_i64(&d, tl, lab);
  for (int i = 0; i < 3 * BATCH; i++) fx->labels[i / BATCH][i % BATCH] = (int32_t)lab[i];
  safet_close(&d);
  model_create(&fx->m, be, &fx->n, BATCH, 1);
  model_set_state(&fx->m, fx->p0, fx->r0, fx->c0);
  return 0;
}

static void teardown(fixture *fx) {
  model_destroy(&fx->m);
  free(fx->p0), free(fx->r0), free(fx->params), free(fx->running), free(fx->images);
}

static const uint8_t *batch_images(fixture *fx, int s) { return fx->images + (size_t)s * BATCH * SIZE * SIZE * 3; }

/* compare one state-shaped tensor (in rn50's flat layout) with a reference */
static double compare_state(const state_entry *e, const float *flat, const safet_file *f, const char *ref_name) {
  const safet_tensor *t = safet_find(f, ref_name);
  if (!t || safet_numel(t) != state_torch_numel(e)) return INFINITY;
  size_t n = state_torch_numel(e);
  float *mine = malloc(n * 4), *ref = malloc(n * 4);
  state_to_torch(e, flat + e->offset, mine);
  safet_read_f32(f, t, ref);
  double err = rel_l2(mine, ref, n);
  free(mine), free(ref);
  return err;
}

static void check_step(arch_id arch) {
  fixture fx;
  memset(&fx, 0, sizeof fx);
  if (setup(&fx, arch)) return;
  const char *name = arch_names[arch];
  safet_file ref;
  if (open_ref(&ref, name, "step")) return;
  float logits[BATCH * CLASSES], rl[BATCH * CLASSES];
  /* eval mode with the (randomised) running statistics */
  model_set_input(&fx.m, batch_images(&fx, 0), fx.labels[0], BATCH);
  model_forward(&fx.m, BATCH, 0);
  model_logits_to_host(&fx.m, BATCH, logits);
  safet_read_f32(&ref, safet_find(&ref, "eval_logits"), rl);
  double e = rel_l2(logits, rl, BATCH * CLASSES);
  CHECK(e <= TOL_OUT, "%s eval logits: rel err %.3g", name, e);
  /* one training step */
  double loss = model_train_step(&fx.m, BATCH, 0.1f, 1.0f);
  model_logits_to_host(&fx.m, BATCH, logits);
  safet_read_f32(&ref, safet_find(&ref, "logits"), rl);
  e = rel_l2(logits, rl, BATCH * CLASSES);
  CHECK(e <= TOL_OUT, "%s train logits: rel err %.3g", name, e);
  float rloss;
  safet_read_f32(&ref, safet_find(&ref, "loss"), &rloss);
  CHECK(fabs(loss - rloss) <= TOL_OUT * fabs(rloss), "%s loss %.7f vs torch %.7f", name, loss, rloss);
  float *grads = malloc(fx.n.n_params * 4);
  backend *b = fx.m.be;
  b->to_host(b, grads, fx.m.grads, fx.n.n_params * 4);
  model_get_state(&fx.m, NULL, fx.running, fx.counts);
  double worst = 0;
  const char *worst_name = "";
  int nparam = 0;
  for (int i = 0; i < fx.n.n_state; i++) {
    const state_entry *st = &fx.n.state[i];
    char rn[160];
    if (st->cls == ST_PARAM) {
      snprintf(rn, sizeof rn, "grad.%s", st->name);
      e = compare_state(st, grads, &ref, rn);
      nparam++;
      if (e > worst) worst = e, worst_name = st->name;
      CHECK(e <= TOL_GRAD, "%s gradient of %s: rel err %.3g", name, st->name, e);
    } else if (st->cls == ST_RUNNING) {
      e = compare_state(st, fx.running, &ref, st->name);
      CHECK(e <= TOL_OUT, "%s %s after the step: rel err %.3g", name, st->name, e);
    } else {
      int64_t want;
      safet_read_i64(&ref, safet_find(&ref, st->name), &want);
      CHECK(fx.counts[st->offset] == want, "%s %s = %lld, torch %lld", name, st->name,
            (long long)fx.counts[st->offset], (long long)want);
    }
  }
  printf("  %s: %d parameter gradients, worst rel err %.2e (%s)\n", name, nparam, worst, worst_name);
  free(grads);
  safet_close(&ref);
  teardown(&fx);
}

/* relative L2 of (a - init) against (b - init), in torch layout */
static double update_err(const state_entry *st, const float *a_flat, const float *init_flat, const safet_file *ref,
                         const float *b_torch) {
  size_t n = state_torch_numel(st);
  float *a = malloc(n * 4), *b = malloc(n * 4), *init = malloc(n * 4);
  state_to_torch(st, a_flat + st->offset, a);
  state_to_torch(st, init_flat + st->offset, init);
  if (b_torch) memcpy(b, b_torch, n * 4);
  else safet_read_f32(ref, safet_find(ref, st->name), b);
  for (size_t k = 0; k < n; k++) a[k] -= init[k], b[k] -= init[k];
  double e = rel_l2(a, b, n);
  free(a), free(b), free(init);
  return e;
}

static void check_sgd3(arch_id arch, int wd_bn) {
  fixture fx;
  memset(&fx, 0, sizeof fx);
  if (setup(&fx, arch)) return;
  const char *name = arch_names[arch];
  safet_file ref, t32;
  if (open_ref(&ref, name, "sgd3") || open_ref(&t32, name, "sgd3_fp32")) return;
  sgd_config sc = {0.005f, 0.9f, 5e-3f, wd_bn, 1};
  float rlosses[3], tlosses[3];
  safet_read_f32(&ref, safet_find(&ref, "losses"), rlosses);
  safet_read_f32(&t32, safet_find(&t32, "losses"), tlosses);
  for (int s = 0; s < 3; s++) {
    model_set_input(&fx.m, batch_images(&fx, s), fx.labels[s], BATCH);
    double loss = model_train_step(&fx.m, BATCH, 0.1f, 1.0f);
    model_sgd_step(&fx.m, &sc, 1.0f);
    double tol = fmax(TOL_OUT, TORCH_FACTOR * fabs(tlosses[s] - rlosses[s]) / fabs(rlosses[s]));
    CHECK(fabs(loss - rlosses[s]) <= tol * fabs(rlosses[s]), "%s step %d loss %.7f vs %.7f (PyTorch fp32 %.7f)", name,
          s, loss, rlosses[s], tlosses[s]);
  }
  model_get_state(&fx.m, fx.params, fx.running, fx.counts);
  /* PyTorch's fp32 result in rn50's layout, for its own error */
  float *t_params = calloc(fx.n.n_params, 4), *t_running = calloc(fx.n.n_running, 4);
  int64_t t_counts[NET_MAX_OPS];
  char err[512];
  CHECK(weights_read(&fx.n, &t32, "", 0, t_params, t_running, t_counts, err, sizeof err) == 0, "%s", err);
  double worst = 0, worst_torch = 0;
  for (int i = 0; i < fx.n.n_state; i++) {
    const state_entry *st = &fx.n.state[i];
    if (st->cls == ST_COUNT) {
      int64_t want;
      safet_read_i64(&ref, safet_find(&ref, st->name), &want);
      CHECK(fx.counts[st->offset] == want, "%s %s after 3 steps", name, st->name);
      continue;
    }
    int is_param = st->cls == ST_PARAM;
    const float *mine = is_param ? fx.params : fx.running, *theirs = is_param ? t_params : t_running;
    const float *init = is_param ? fx.p0 : fx.r0;
    double e = update_err(st, mine, init, &ref, NULL);
    double et = update_err(st, theirs, init, &ref, NULL);
    worst = fmax(worst, e), worst_torch = fmax(worst_torch, et);
    double tol = fmax(TOL_DW, TORCH_FACTOR * et);
    CHECK(e <= tol, "%s change of %s over 3 steps: rel err %.3g (PyTorch fp32: %.3g)", name, st->name, e, et);
  }
  printf("  %s: 3 SGD steps: worst rel err of a tensor's change %.2e (PyTorch fp32 vs fp64: %.2e)\n", name, worst,
         worst_torch);
  free(t_params), free(t_running);
  safet_close(&ref);
  safet_close(&t32);
  teardown(&fx);
}

static void test_resnet18_step(void) { check_step(ARCH_RESNET18); }
static void test_resnet50_step(void) { check_step(ARCH_RESNET50); }
static void test_resnet18_sgd3(void) { check_sgd3(ARCH_RESNET18, 1); }
static void test_resnet50_sgd3_bn_no_wd(void) { check_sgd3(ARCH_RESNET50, 0); }

int main(void) {
  const char *r = getenv("RN50_REFS");
  snprintf(refs, sizeof refs, "%s", r ? r : "build/refs");
  be = cpu_backend_create(0);
  RUN(test_resnet18_step);
  RUN(test_resnet50_step);
  RUN(test_resnet18_sgd3);
  RUN(test_resnet50_sgd3_bn_no_wd);
  be->destroy(be);
  return harness_finish();
}
