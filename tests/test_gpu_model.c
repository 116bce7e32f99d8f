/* test_gpu_model.c: the whole model on the CUDA backend against the CPU
 * backend (issue 5, item 6, model level), on the same weights and batches;
 * the GPU nets take 4 input channels, the CPU's 3, and the state moves
 * between them through torchvision layout, as checkpoints do.
 *   a. resnet18 and resnet50, batch 8, 64 px, 10 classes, tools/torch_ref.py's
 *      well-conditioned start (small residual branches, random BN state):
 *      eval logits, one training step's logits, loss, every parameter
 *      gradient (each tensor, relative L2) and the BN running statistics
 *      after it; the gradient of conv1's padded input channel must be 0.
 *   b. resnet18, 64 px, batch 32, 30 SGD steps (Nesterov, weight decay,
 *      label smoothing) over 4 fixed batches of a learnable synthetic set:
 *      the loss curves step by step, both must fall.
 *   c. after (b): BN running statistics and counters, conv1's padded weights
 *      still 0, and checkpoints both ways: the GPU's state saved as a
 *      torchvision state_dict and loaded into a CPU model gives the GPU's
 *      eval logits, and the CPU's state loaded into the GPU model the CPU's.
 *   d. (mode "mem") resnet50, batch 256, 224 px, bf16: one training step;
 *      the peak device memory (cuda_memory_stats) must stay under 22 GiB so
 *      that it fits an A10G's 24 GB.
 *
 * Tolerances. The op tests (test_cuda_ops) hold single ops to 1e-5 (fp32)
 * and 1e-2 (bf16); a whole net cannot be held to those against the CPU's
 * own forward and backward: rounding differences grow through ~50 layers,
 * and ReLU and max pool make the gradient discontinuous. An activation within
 * rounding distance of 0 (or a max-pool near-tie) flips its mask and moves
 * a whole gradient tensor: at 64 px layer4 is 2x2, so one flip there moves a
 * tensor by ~1e-2 (tools/torch_ref.py saw PyTorch's own fp32 gradients 2-5%
 * off its fp64 ones). So the model is checked three ways:
 *   - against the CPU's own step (what the issue asks: same weights, same
 *     batch): logits and loss tightly; each gradient tensor and all of them
 *     together only as tightly as the kinks allow. For fp32 the test picks,
 *     like torch_ref.py, the data seed (of 6) on which the CPU's gradients
 *     move least when every activation gets relative noise COND_NOISE
 *     (about a GPU's fp32 summation differences), and no tensor's bound is
 *     below COND_FACTOR x that movement. resnet18 finds a seed at ~1.4e-4,
 *     so its fp32 gradients are held to 1.4e-3; resnet50 at batch 8 has none
 *     below ~7e-3 (so: 6.8e-2 per tensor, 2e-2 all together). In bf16 a mask
 *     flips wherever an activation is within 0.4% of 0, and the gradients
 *     honestly differ from fp32 by 10-30% per tensor: the bf16 bounds here
 *     (0.7 per tensor, 0.4 together) catch only gross errors;
 *   - activation by activation through the training forward (continuous:
 *     fp32 1e-4, bf16 8e-2);
 *   - the CPU's backward run on the device's forward (its activations, so
 *     the same masks; its batch statistics, d(logits) and act-dtype weights):
 *     the backward is then linear and every gradient tensor is held to
 *     rounding: fp32 1e-4, TF32 5e-3, fp16 1e-2, bf16 6e-2. This is the
 *     tight check of the whole backward (the "1e-3 on a
 *     well-conditioned setup" is met by a factor of 10 in fp32).
 * The bf16 / fp16 / TF32 bounds were measured, not guessed: the CPU against
 * itself with the GPU's rounding emulated (tests/emu_backend.h: activations,
 * activation gradients and working weights rounded as src/cuda stores them,
 * GEMM operands rounded for TF32, relative noise 5e-7 for summation order),
 * on this test's setups, then given 2-3x headroom (fp32: 10x or more). The
 * mode table below lists each bound with the largest emulated value;
 * RN50_TEST_CUDA_SELF=1 repeats those measurements.
 *
 * Every comparison prints its error, so the GPU log shows what the card
 * achieves. Each mode runs in its own child process (a fatal backend error
 * or a hang ends only that mode; RN50_TEST_CHILD_TIMEOUT seconds each); the
 * CPU reference is computed once, by a first child, into a record file.
 * Without a GPU: "skipped: no GPU" and RESULT 0 0. RN50_TEST_CUDA_SELF=1
 * runs everything with the emulating CPU backend as the device (slow: a few
 * minutes); an argument (fp32, bf16, tf32, fp16, mem) runs one mode;
 * RN50_TEST_THREADS sets the CPU threads; RN50_TEST_REF=FILE keeps the CPU
 * reference in FILE and reuses it (for working on this test). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "cuda_test_util.h"
#include "emu_backend.h"
#include "gpu_model_util.h"
#include "gpu_model_ref.h"
#include "cuda/cuda_backend.h"
#include "io/weights.h"

/* d: memory */
#define MEM_LIMIT_GIB 22.0

typedef struct {
  const char *name;
  dtype dt;
  int tf32;
  float loss_scale;       /* static loss scale (fp16) */
  double self_noise;      /* emulated device: summation-order noise */
  double logits;          /* eval / train logits and loss on identical state; checkpoint round trips */
  double grad;            /* each parameter gradient vs the CPU's own step (at least 10x the conditioning) */
  double grad_all;        /* all parameter gradients together, vs the CPU's own step */
  double running;         /* BN running statistics after one step */
  double act;             /* every activation of the training forward */
  double aligned;         /* each parameter gradient, CPU backward on the device's forward */
  double curve0, curve;   /* training loss: step 0, steps 1.. */
  double trained_running; /* BN running statistics after the training run */
  int mem;                /* the memory test instead */
} gm_mode;

/* bounds; in the comments, the largest value measured with the emulated
 * device (RN50_TEST_CUDA_SELF=1, resnet18 and resnet50, 2026-11-26) */
static const gm_mode modes[] = {
    {.name = "fp32", .dt = DTYPE_F32, .loss_scale = 1, .self_noise = 5e-7,
     .logits = 1e-4,          /* 2.7e-6 */
     .grad = 1e-3,            /* resnet18 6.6e-4; resnet50 3.1e-2 under its 10x conditioning bound 6.8e-2 */
     .grad_all = 2e-2,        /* 4.7e-3 */
     .running = 1e-4,         /* 5.1e-7 */
     .act = 1e-4,             /* 5.7e-6 */
     .aligned = 1e-4,         /* 3.9e-6 */
     .curve0 = 1e-4, .curve = 5e-3, /* 5.8e-8, 5.3e-4 */
     .trained_running = 5e-2}, /* 1.1e-2 */
    {.name = "bf16", .dt = DTYPE_BF16, .loss_scale = 1, .self_noise = 5e-7,
     .logits = 5e-2,          /* 1.7e-2 */
     .grad = 0.7,             /* 0.32 */
     .grad_all = 0.4,         /* 0.19 */
     .running = 1e-2,         /* 3.1e-3 */
     .act = 8e-2,             /* 3.3e-2 */
     .aligned = 6e-2,         /* 2.3e-2 */
     .curve0 = 2e-3, .curve = 5e-2, /* 7.1e-5, 1.4e-2 */
     .trained_running = 0.5}, /* 0.20 */
    {.name = "mem", .dt = DTYPE_BF16, .loss_scale = 1, .mem = 1},
    {.name = "tf32", .dt = DTYPE_F32, .tf32 = 1, .loss_scale = 1, .self_noise = 5e-7,
     .logits = 5e-3,          /* 1.4e-3 */
     .grad = 0.4,             /* 0.16 */
     .grad_all = 0.15,        /* 5.5e-2 */
     .running = 1e-3,         /* 2.7e-4 */
     .act = 1e-2,             /* 2.7e-3 */
     .aligned = 5e-3,         /* 1.7e-3 */
     .curve0 = 1e-3, .curve = 5e-2, /* 2.2e-5, 1.6e-2 */
     .trained_running = 0.4}, /* 0.14 */
    {.name = "fp16", .dt = DTYPE_F16, .loss_scale = 128, .self_noise = 5e-7,
     .logits = 1e-2,          /* 2.2e-3 */
     .grad = 0.4,             /* 0.17 */
     .grad_all = 0.15,        /* 6.7e-2 */
     .running = 2e-3,         /* 3.6e-4 */
     .act = 1.5e-2,           /* 4.1e-3 */
     .aligned = 1e-2,         /* 2.8e-3 */
     .curve0 = 1e-3, .curve = 5e-2, /* 5.7e-6, 1.5e-2 */
     .trained_running = 0.4}, /* 0.17 */
};

static const gm_mode *M; /* mode under test */
static backend *G;       /* device backend */
static backend *C;       /* CPU backend */
static int self_mode;    /* device = emulating CPU backend */
static char tmpdir[256];
static char ref_path[300];
/* ------------------------------------------------------------ a: grads */
static double rel1(double a, double b) { return fabs(a - b) / fmax(fabs(b), 1e-30); }

/* the device model's activation a as fp32 host floats in the CPU net's
 * shape (the input loses its padded channels) */
static float *dev_act(model *md, const net *nc, int a, int nb) {
  size_t n = act_numel(&md->net, a, nb);
  float *h = xmalloc(n * sizeof(float) + 4, "device activation");
  tu_down(G, a == md->net.logits ? DTYPE_F32 : G->act_dtype, h, md->act[a], n);
  int cd = md->net.acts[a].c, cc = nc->acts[a].c;
  if (cd != cc) {
    size_t pixels = n / (size_t)cd;
    for (size_t q = 0; q < pixels; q++)
      for (int j = 0; j < cc; j++) h[q * cc + j] = h[q * cd + j];
  }
  return h;
}

/* The device model md has just done a training step on img from state
 * (pc, r, c) (CPU layout). (1) The CPU's training forward on the same batch,
 * activation by activation: ReLU and max are continuous, so these agree to
 * rounding. (2) The CPU's backward run on the device's forward (its
 * activations, hence its ReLU and max-pool choices, its batch statistics,
 * its d(logits) and its act-dtype weights): with the kinks lined up the
 * backward is linear, so each parameter gradient agrees to rounding too.
 * Returns the worst activation error; *gres gets the gradients' report. */
static double aligned_checks(model *md, const net *nc, const float *pc, const float *r, const int64_t *c,
                             const uint8_t *img, const int32_t *lab, const float *gd, gm_cmp *gres, int *worst_act) {
  const net *nd = &md->net;
  model mc;
  model_create(&mc, C, nc, GB, 1);
  model_set_state(&mc, pc, r, c);
  model_set_input(&mc, img, lab, GB);
  model_forward(&mc, GB, 1);
  double worst = 0;
  *worst_act = 0;
  for (int a = 1; a < nc->n_acts; a++) {
    float *h = dev_act(md, nc, a, GB);
    double e = rel_l2(h, (const float *)mc.act[a], act_numel(nc, a, GB));
    if (!(e <= worst)) worst = e, *worst_act = a;
    free(h);
  }
  CHECK(worst <= M->act, "%s: training forward, activation %d of %d: rel err %.3g > %.2g", nc->arch_name, *worst_act,
        nc->n_acts, worst, M->act);
  /* the CPU takes the device's forward state and weights */
  float *work = xmalloc(nd->n_params * sizeof(float) + 4, "work"), *pw = xmalloc(nc->n_params * sizeof(float) + 4, "pw");
  tu_down(G, G->act_dtype, work, md->work, nd->n_params);
  gm_convert_params(nd, work, nc, pw);
  for (int i = 0; i < nc->n_ops; i++) /* BN reads the fp32 master gamma */
    if (nc->ops[i].kind == OP_BN) {
      const state_entry *e = &nc->state[nc->ops[i].w];
      memcpy(pw + e->offset, pc + e->offset, e->numel * sizeof(float));
      e = &nc->state[nc->ops[i].b];
      memcpy(pw + e->offset, pc + e->offset, e->numel * sizeof(float));
    }
  model_set_state(&mc, pw, NULL, NULL);
  for (int a = 0; a < nc->n_acts; a++) {
    float *h = dev_act(md, nc, a, GB);
    memcpy(mc.act[a], h, act_numel(nc, a, GB) * sizeof(float));
    free(h);
  }
  tu_down(G, DTYPE_F32, mc.save_mean, md->save_mean, nc->n_bn_channels);
  tu_down(G, DTYPE_F32, mc.save_invstd, md->save_invstd, nc->n_bn_channels);
  /* d(logits) again: its buffer was reused by later gradients of the step */
  model_loss(md, GB, 0.1f, 1, M->loss_scale / (float)GB);
  tu_down(G, DTYPE_F32, (float *)mc.dact[nc->logits], md->dact[nd->logits], (size_t)GB * nc->classes);
  model_zero_grads(&mc);
  model_backward(&mc, GB);
  float *ga = (float *)mc.grads;
  if (M->loss_scale != 1)
    for (size_t i = 0; i < nc->n_params; i++) ga[i] /= M->loss_scale;
  char what[96];
  snprintf(what, sizeof what, "%s gradient on the device's forward", nc->arch_name);
  *gres = gm_compare_state(what, ST_PARAM, nd, gd, nc, ga, M->aligned);
  free(work), free(pw);
  model_destroy(&mc);
  return worst;
}

static void check_grads(int which) {
  arch_id arch = grad_archs[which];
  const ref_grad *R = &RG[which];
  static net nc, nd;
  build(&nc, arch, GCL, GSIZE, 3);
  build(&nd, arch, GCL, GSIZE, G->in_c);
  float *pc = xmalloc(nc.n_params * 4, "p"), *r = xmalloc(nc.n_running * 4, "r"), *pd = xmalloc(nd.n_params * 4, "p"),
        *gd = xmalloc(nd.n_params * 4, "g"), *rd = xmalloc(nd.n_running * 4, "r");
  int64_t c[NET_MAX_OPS], cd[NET_MAX_OPS];
  gm_init_state(&nc, 11, 1, pc, r, c);
  gm_convert_params(&nc, pc, &nd, pd);
  uint8_t img[GB * GSIZE * GSIZE * 3];
  int32_t lab[GB];
  gm_random_batch(grad_data_seed(arch, R->seed), GB, GSIZE, GCL, img, lab);
  model m;
  double t0 = now_sec();
  model_create(&m, G, &nd, GB, 2); /* aligned_checks reads its activations after backward */
  double t_create = now_sec() - t0;
  float el[GB * GCL], lg[GB * GCL];
  double loss = grad_step(&m, pd, r, c, img, lab, M->loss_scale, el, lg, gd);
  model_get_state(&m, NULL, rd, cd);
  char what[96];
  /* against the CPU's own forward and backward (the reference record) */
  double e_eval = rel_l2(el, R->eval_logits, GB * GCL), e_train = rel_l2(lg, R->logits, GB * GCL);
  double e_loss = rel1(loss, R->loss);
  CHECK(e_eval <= M->logits, "%s eval logits: rel err %.3g > %.2g", nc.arch_name, e_eval, M->logits);
  CHECK(e_train <= M->logits, "%s train logits: rel err %.3g > %.2g", nc.arch_name, e_train, M->logits);
  CHECK(e_loss <= M->logits, "%s loss %.7f vs CPU %.7f: rel err %.3g > %.2g", nc.arch_name, loss, R->loss, e_loss,
        M->logits);
  snprintf(what, sizeof what, "%s gradient", nc.arch_name);
  double tol_e2e = fmax(M->grad, COND_FACTOR * R->cond);
  gm_cmp gc = gm_compare_state(what, ST_PARAM, &nd, gd, &nc, R->grads, tol_e2e);
  CHECK(gc.global <= M->grad_all, "%s: all gradients together: rel err %.3g > %.2g", nc.arch_name, gc.global,
        M->grad_all);
  CHECK(gm_nonzero_padding(&nd, gd) == 0, "%s: gradient of conv1's padded input channel is not 0", nc.arch_name);
  snprintf(what, sizeof what, "%s after one step", nc.arch_name);
  gm_cmp rc = gm_compare_state(what, ST_RUNNING, &nd, rd, &nc, R->running, M->running);
  for (int i = 0; i < nc.n_bn; i++) CHECK(cd[i] == R->counts[i], "%s BN %d counter %lld, CPU %lld", nc.arch_name, i,
                                          (long long)cd[i], (long long)R->counts[i]);
  /* with the device's forward lined up */
  gm_cmp ga;
  int wa;
  double e_act = aligned_checks(&m, &nc, pc, r, c, img, lab, gd, &ga, &wa);
  printf("  %s [%s] (data seed %d, model_create %.2f s):\n"
         "    logits eval %.2e train %.2e, loss %.2e (tol %.2g); running stats worst %.2e (tol %.2g)\n"
         "    %d gradients vs the CPU's: worst %.2e (%s, tol %.2g), all together %.2e (tol %.2g)\n"
         "    training forward, worst activation %.2e (act %d, tol %.2g); gradients on the device's forward: "
         "worst %.2e (%s, tol %.2g), all together %.2e\n",
         nc.arch_name, M->name, R->seed, t_create, e_eval, e_train, e_loss, M->logits, rc.worst_err, M->running, gc.n,
         gc.worst_err, gc.worst_name, tol_e2e, gc.global, M->grad_all, e_act, wa, M->act, ga.worst_err, ga.worst_name,
         M->aligned, ga.global);
  model_destroy(&m);
  free(pc), free(r), free(pd), free(gd), free(rd);
}

static void test_grads_resnet18(void) { check_grads(0); }
static void test_grads_resnet50(void) { check_grads(1); }

/* --------------------------------------------------- b, c: training run */
static void test_train_resnet18(void) {
  static net nc, nd;
  build(&nc, ARCH_RESNET18, TCL, TSIZE, 3);
  build(&nd, ARCH_RESNET18, TCL, TSIZE, G->in_c);
  train_data();
  float *pc = xmalloc(nc.n_params * 4, "p"), *r = xmalloc(nc.n_running * 4, "r"), *pd = xmalloc(nd.n_params * 4, "p");
  float *rd = xmalloc(nd.n_running * 4, "r"), *pl = xmalloc(nc.n_params * 4, "p"), *rl = xmalloc(nc.n_running * 4, "r");
  int64_t c[NET_MAX_OPS], cd[NET_MAX_OPS], cl[NET_MAX_OPS];
  net_init_params(&nc, 5, 1, pc, r, c);
  gm_convert_params(&nc, pc, &nd, pd);
  model m;
  model_create(&m, G, &nd, TB, 1);
  double losses[TSTEPS], t0 = now_sec();
  train_run(&m, pd, r, c, M->loss_scale, losses);
  double secs = now_sec() - t0;
  /* b: the curves */
  double worst0 = rel1(losses[0], RT.losses[0]), worst = 0;
  int worst_at = 0;
  CHECK(worst0 <= M->curve0, "step 0 loss %.6f vs CPU %.6f: rel diff %.3g > %.2g", losses[0], RT.losses[0], worst0,
        M->curve0);
  for (int s = 1; s < TSTEPS; s++) {
    double e = rel1(losses[s], RT.losses[s]);
    if (!(e <= worst)) worst = e, worst_at = s;
    CHECK(e <= M->curve, "step %d loss %.6f vs CPU %.6f: rel diff %.3g > %.2g", s, losses[s], RT.losses[s], e,
          M->curve);
  }
  double first[2] = {0, 0}, last[2] = {0, 0};
  for (int s = 0; s < 3; s++) first[0] += losses[s] / 3, first[1] += RT.losses[s] / 3;
  for (int s = TSTEPS - 5; s < TSTEPS; s++) last[0] += losses[s] / 5, last[1] += RT.losses[s] / 5;
  CHECK(last[0] <= DECREASE * first[0], "device loss does not fall: first 3 steps %.4f, last 5 %.4f", first[0], last[0]);
  CHECK(last[1] <= DECREASE * first[1], "CPU loss does not fall: first 3 steps %.4f, last 5 %.4f", first[1], last[1]);
  printf("  training run [%s] (%.1f s for %d steps):\n    step   device      CPU   rel diff\n", M->name, secs, TSTEPS);
  for (int s = 0; s < TSTEPS; s++)
    if (s % 5 == 0 || s == TSTEPS - 1)
      printf("    %4d  %.5f  %.5f  %.2e\n", s, losses[s], RT.losses[s], rel1(losses[s], RT.losses[s]));
  printf("    worst rel diff: step 0 %.2e (tol %.2g), later %.2e at step %d (tol %.2g)\n", worst0, M->curve0, worst,
         worst_at, M->curve);

  /* c: the state after the run */
  model_get_state(&m, pd, rd, cd);
  for (int i = 0; i < nc.n_bn; i++)
    CHECK(cd[i] == RT.counts[i] && cd[i] == TSTEPS, "BN %d counter %lld, CPU %lld", i, (long long)cd[i],
          (long long)RT.counts[i]);
  gm_cmp rc = gm_compare_state("running stats after training", ST_RUNNING, &nd, rd, &nc, RT.running,
                               M->trained_running);
  CHECK(gm_nonzero_padding(&nd, pd) == 0, "conv1's padded input channel is no longer 0 after training");
  /* GPU state -> checkpoint -> CPU model: the GPU's eval logits */
  char path[400], err[512];
  snprintf(path, sizeof path, "%s/gpu_state_%s.safetensors", tmpdir, M->name);
  CHECK(weights_save(&nd, pd, rd, cd, path, NULL, err, sizeof err) == 0, "%s", err);
  CHECK(weights_load(&nc, path, pl, rl, cl, err, sizeof err) == 0, "%s", err);
  float lg_dev[TB * TCL], lg_cpu[TB * TCL];
  eval_logits(&m, train_batch(0), TB, lg_dev);
  model mc;
  model_create(&mc, C, &nc, TB, 0);
  model_set_state(&mc, pl, rl, cl);
  eval_logits(&mc, train_batch(0), TB, lg_cpu);
  double e_g2c = rel_l2(lg_dev, lg_cpu, TB * TCL);
  CHECK(e_g2c <= M->logits, "GPU state on the CPU: eval logits rel err %.3g > %.2g", e_g2c, M->logits);
  for (int i = 0; i < nc.n_bn; i++) CHECK(cl[i] == cd[i], "BN %d counter lost in the checkpoint", i);
  model_destroy(&mc);
  unlink(path);
  /* CPU state -> checkpoint -> GPU model: the CPU's eval logits */
  snprintf(path, sizeof path, "%s/cpu_state_%s.safetensors", tmpdir, M->name);
  CHECK(weights_save(&nc, RT.params, RT.running, RT.counts, path, NULL, err, sizeof err) == 0, "%s", err);
  CHECK(weights_load(&nd, path, pd, rd, cd, err, sizeof err) == 0, "%s", err);
  model_set_state(&m, pd, rd, cd);
  eval_logits(&m, train_batch(0), TB, lg_dev);
  double e_c2g = rel_l2(lg_dev, RT.eval_logits, TB * TCL);
  CHECK(e_c2g <= M->logits, "CPU state on the GPU: eval logits rel err %.3g > %.2g", e_c2g, M->logits);
  CHECK(gm_nonzero_padding(&nd, pd) == 0, "loading a CPU checkpoint left conv1's padding non-zero");
  unlink(path);
  printf("    after training: running stats worst %.2e (%s, tol %.2g); checkpoint round trips, eval logits: "
         "GPU state on the CPU %.2e, CPU state on the GPU %.2e (tol %.2g)\n",
         rc.worst_err, rc.worst_name, M->trained_running, e_g2c, e_c2g, M->logits);
  model_destroy(&m);
  free(pc), free(r), free(pd), free(rd), free(pl), free(rl);
}

/* ---------------------------------------------------------- d: memory */
static void test_memory_resnet50_b256(void) {
  const char *e = getenv("RN50_TEST_MEM_BATCH");
  int batch = e && *e ? atoi(e) : 256;
  static net n;
  build(&n, ARCH_RESNET50, 1000, 224, G->in_c);
  model m;
  double t0 = now_sec();
  model_create(&m, G, &n, batch, 1);
  double t_create = now_sec() - t0;
  model_init_params(&m, 1, 1);
  size_t ib = (size_t)batch * 224 * 224 * 3;
  uint8_t *img = G->alloc_host(G, ib, "images");
  int32_t *lab = G->alloc_host(G, (size_t)batch * 4, "labels");
  for (size_t i = 0; i < ib; i++) img[i] = (uint8_t)(rng_u64(3, 1, i) >> 56);
  for (int i = 0; i < batch; i++) lab[i] = (int32_t)(rng_u64(3, 2, (uint64_t)i) % 1000);
  model_set_input(&m, img, lab, batch);
  t0 = now_sec();
  double loss = model_train_step(&m, batch, 0.1f, 1.0f);
  sgd_config sc = {0.1f, 0.9f, 5e-5f, 1, 1};
  model_sgd_step(&m, &sc, 1.0f);
  model_sync(&m);
  double t_step = now_sec() - t0;
  size_t peak = 0, base = 0;
  cuda_memory_stats(G, &peak, &base);
  double gib = 1024.0 * 1024 * 1024;
  printf("  resnet50 batch %d 224 px bf16: model_create %.1f s, first step %.2f s, loss %.4f; peak device memory "
         "in use %.2f GiB (%.2f GiB before any allocation: context, cuDNN / cuBLAS; rn50's share %.2f GiB); "
         "activations %.2f GiB, activation gradients %.2f GiB\n",
         batch, t_create, t_step, loss, peak / gib, base / gib, (peak - base) / gib, m.act_bytes / gib,
         m.grad_bytes / gib);
  CHECK(isfinite(loss) && loss > 0, "first step's loss %g", loss);
  CHECK(peak / gib < MEM_LIMIT_GIB, "peak %.2f GiB >= %.0f GiB: does not fit an A10G (24 GB)", peak / gib,
        MEM_LIMIT_GIB);
  G->free_host(G, img);
  G->free_host(G, lab);
  model_destroy(&m);
}

/* ------------------------------------------------------------ processes */
static int env_int(const char *name, int dflt) {
  const char *s = getenv(name);
  return s && *s ? atoi(s) : dflt;
}

static backend *device_create(const gm_mode *md, char *err, size_t len) {
  if (self_mode) return emu_backend_create(C, md->dt, md->tf32, md->self_noise, 4);
  return cuda_backend_create(md->dt, md->tf32, 0, err, len);
}

/* child: the CPU references into ref_path */
static void run_ref(int fd) {
  int msg[3] = {0, 0, 0};
  C = cpu_backend_create(env_int("RN50_TEST_THREADS", 0));
  FILE *f = fopen(ref_path, "wb");
  if (!f) die("cannot create %s: %s", ref_path, strerror(errno));
  double t0 = now_sec();
  for (int a = 0; a < 2; a++) ref_grads_make(f, C, grad_archs[a]);
  ref_train_make(f, C);
  if (fclose(f) != 0) die("cannot write %s: %s", ref_path, strerror(errno));
  printf("  CPU references: %.1f s\n", now_sec() - t0);
  fflush(stdout);
  if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) _exit(3);
}

/* child: one mode; sends {status, passed, failed} (status 1: no device) */
static void run_mode(const void *arg, int fd) {
  const gm_mode *md = arg;
  char err[512] = "";
  int msg[3] = {0, 0, 0};
  M = md;
  C = cpu_backend_create(env_int("RN50_TEST_THREADS", 0));
  G = device_create(md, err, sizeof err);
  if (!G) {
    printf("cuda_backend_create(%s): %s\n", md->name, err);
    msg[0] = 1;
  } else if (md->mem) {
    h_run("memory resnet50 b256 [bf16]", test_memory_resnet50_b256);
  } else {
    FILE *f = fopen(ref_path, "rb");
    int bad = !f;
    for (int a = 0; a < 2 && !bad; a++) bad = ref_grads_read(f, grad_archs[a], &RG[a]) != 0;
    if (!bad) bad = ref_train_read(f, &RT) != 0;
    if (f) fclose(f);
    if (bad) {
      printf("FAIL %s: the CPU reference record %s is missing or unreadable\n", md->name, ref_path);
      h_failed++;
    } else {
      static const struct {
        const char *name;
        void (*fn)(void);
      } tests[] = {{"gradients resnet18", test_grads_resnet18},
                   {"gradients resnet50", test_grads_resnet50},
                   {"training run resnet18", test_train_resnet18}};
      for (size_t i = 0; i < ARRAY_LEN(tests); i++) {
        char name[96];
        snprintf(name, sizeof name, "%s [%s]", tests[i].name, md->name);
        double t0 = now_sec();
        h_run(name, tests[i].fn);
        printf("     %.1f s\n", now_sec() - t0);
        fflush(stdout);
      }
    }
  }
  if (G) G->destroy(G);
  msg[1] = h_passed;
  msg[2] = h_failed;
  fflush(stdout);
  if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) _exit(3);
}

static void ref_entry(const void *unused, int fd) { run_ref(fd); }

static void probe_entry(const void *unused, int fd) {
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

int main(int argc, char **argv) {
  const char *only = argc > 1 ? argv[1] : NULL;
  const char *s = getenv("RN50_TEST_CUDA_SELF");
  self_mode = s && *s && *s != '0';
  int timeout_s = env_int("RN50_TEST_CHILD_TIMEOUT", self_mode ? 0 : 150);
  if (!self_mode && !cuda_backend_available()) {
    printf("skipped: no GPU (built without CUDA)\n");
    return harness_finish();
  }
  int msg[3];
  /* is there a GPU at all? (children only: the parent never touches CUDA
   * or OpenMP, so that forked children can use both) */
  if (!self_mode) {
    if (h_in_child(probe_entry, NULL, 60, msg, "GPU probe") != 0) {
      h_failed = 1;
      return harness_finish();
    }
    if (msg[0] == 1) return harness_finish(); /* the child printed "skipped: no GPU (...)" */
  }
  const char *td = getenv("TMPDIR");
  snprintf(tmpdir, sizeof tmpdir, "%s/rn50_gpu_model_XXXXXX", td && *td ? td : "/tmp");
  if (!mkdtemp(tmpdir)) die("mkdtemp %s: %s", tmpdir, strerror(errno));
  /* RN50_TEST_REF=FILE (for working on this test): keep the CPU reference
   * in FILE and reuse it when it exists */
  const char *keep = getenv("RN50_TEST_REF");
  snprintf(ref_path, sizeof ref_path, "%s", keep && *keep ? keep : "");
  if (!ref_path[0]) snprintf(ref_path, sizeof ref_path, "%s/cpu_reference.bin", tmpdir);
  int need_ref = (!only || strcmp(only, "mem") != 0) && !(keep && *keep && access(ref_path, R_OK) == 0);
  int passed = 0, failed = 0;
  if (need_ref) {
    double t0 = now_sec();
    if (h_in_child(ref_entry, NULL, timeout_s, msg, "CPU reference") != 0) failed++;
    printf("%s CPU reference (%.1f s)\n", failed ? "FAIL" : "ok  ", now_sec() - t0);
  }
  for (size_t i = 0; i < ARRAY_LEN(modes); i++) {
    const gm_mode *md = &modes[i];
    if (only && strcmp(only, md->name) != 0) continue;
    if (self_mode && md->mem) continue; /* a GPU's memory: nothing to emulate */
    double t0 = now_sec();
    if (h_in_child(run_mode, md, timeout_s, msg, md->name) != 0) {
      failed++;
      continue;
    }
    if (msg[0] == 1) {
      printf("FAIL %s mode: no CUDA backend\n", md->name);
      failed++;
      continue;
    }
    passed += msg[1];
    failed += msg[2];
    printf("     mode %s: %d passed, %d failed, %.1f s\n", md->name, msg[1], msg[2], now_sec() - t0);
  }
  if (!(keep && *keep)) unlink(ref_path);
  rmdir(tmpdir);
  h_passed = passed;
  h_failed = failed;
  return harness_finish();
}
