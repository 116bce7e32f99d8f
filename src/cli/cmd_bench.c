/* cmd_bench.c: 'rn50 bench' measures training-step and inference
 * throughput on random data held in the backend (no input pipeline). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "../core/util.h"
#include "../cuda/cuda_backend.h"
#include "../model/exec.h"
#include "../model/graph.h"
#include "args.h"
#include "commands.h"
#include "device.h"

const char cmd_bench_usage[] =
    "usage: rn50 bench [--arch A] [--batch-size B] [--image-size S] [--steps N] [--device cpu|cuda]\n"
    "                  [--precision bf16|fp16|fp32] [--tf32 0|1] [--threads T] [--cache FILE] [--graph 0|1]\n"
    "Times training steps (forward, loss, backward, SGD) and inference on random\n"
    "images and labels, after one warm-up step. The line before the last gives\n"
    "the time model_create took (on CUDA: the cuDNN algorithm search) and, on\n"
    "CUDA, the peak device memory. Ends with the line\n"
    "  train img/s: X  infer img/s: Y\n"
    "  --arch A        model (default resnet50)\n"
    "  --batch-size B  images per step (default 16 on the CPU, 256 on CUDA)\n"
    "  --image-size S  input side in pixels (default 224)\n"
    "  --steps N       timed steps (default 5)\n"
    "  --threads T     CPU threads (default: all cores)\n"
    "  --cache FILE    CUDA: cuDNN algorithm choices read from FILE before the\n"
    "                  model is made (no search for the shapes it holds) and\n"
    "                  written to it after the first step\n"
    "  --graph 1       each training step as one replayed graph (CUDA graphs;\n"
    "                  the next batch uploads on a second stream meanwhile; fp16\n"
    "                  also checks the gradients for overflow as training does).\n"
    "                  A line says whether graphs were used; without support the\n"
    "                  eager step is timed\n"
    "With --loader it measures the input pipeline instead (see below).\n\n";

/* One training step on the bench batch: replayed as a graph while use_graph
 * holds, else eager. Returns use_graph, cleared (with the reason in why) when
 * a graph step failed and the eager step ran instead. */
static int bench_step(model *m, const uint8_t *img, const int32_t *lab, int batch, const sgd_config *sc,
                      const model_step_config *gc, int use_graph, char why[320]) {
  if (use_graph) {
    model_graph_set_input(m, img, lab, batch);
    if (model_graph_step(m, batch, gc) == 0) return 1;
    snprintf(why, 320, "%s", model_graph_status(m));
  }
  model_set_input(m, img, lab, batch);
  model_train_step(m, batch, 0.1f, 1.0f);
  model_sgd_step(m, sc, 1.0f);
  return 0;
}

int cmd_bench(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--loader")) return cmd_bench_loader(argc, argv);
  args a;
  args_init(&a, "bench", argc, argv);
  device_config dc;
  device_config_from_args(&a, &dc);
  const char *arch_s = args_str(&a, "arch", "resnet50");
  int batch = (int)args_int(&a, "batch-size", dc.cuda ? 256 : 16, 1, 65536);
  int size = (int)args_int(&a, "image-size", 224, 32, 4096);
  int steps = (int)args_int(&a, "steps", 5, 1, 1000000);
  const char *cache = args_str(&a, "cache", NULL);
  int use_graph = (int)args_int(&a, "graph", 0, 0, 1);
  args_finish(&a);
  arch_id arch;
  if (arch_from_name(arch_s, &arch) != 0) args_fail(&a, "unknown arch '%s'", arch_s);
  if (cache && !dc.cuda) args_fail(&a, "--cache holds cuDNN algorithm choices: it needs --device cuda");
  backend *be = device_open(&dc);
  if (dc.cuda) {
    char desc[512];
    cuda_backend_describe(be, desc, sizeof desc);
    printf("bench: device %s\n", desc);
  }
  if (cache) {
    int got = cuda_conv_cache_load(be, cache);
    printf("bench: conv algorithm cache %s: %s", cache, got > 0 ? "" : "nothing usable, searching\n");
    if (got > 0) printf("%d shapes loaded\n", got);
  }
  static net n;
  char err[256];
  if (net_build(&n, arch, 1000, size, be->in_c, err, sizeof err) != 0) args_fail(&a, "%s", err);
  static model m;
  double t_create = now_sec();
  model_create(&m, be, &n, batch, 1);
  model_sync(&m);
  t_create = now_sec() - t_create;
  model_init_params(&m, 1, 0);
  size_t img_bytes = (size_t)batch * size * size * 3;
  uint8_t *img = be->alloc_host(be, img_bytes, "bench images");
  int32_t *lab = be->alloc_host(be, (size_t)batch * sizeof(int32_t), "bench labels");
  for (size_t i = 0; i < img_bytes; i++) img[i] = (uint8_t)(rng_u64(7, 1, i) & 0xff);
  for (int i = 0; i < batch; i++) lab[i] = (int32_t)(rng_u64(7, 2, (uint64_t)i) % 1000);
  sgd_config sc = {0.01f, 0.9f, 5e-5f, 1, 1};
  printf("bench: %s, %s, batch %d, %dx%d, %d steps, activations and their gradients %.1f MB\n", n.arch_name,
         dc.label, batch, size, size, steps, m.act_bytes / 1e6);
  fflush(stdout);
  /* --graph 1: the first step of a shape runs uncaptured, the second is
   * captured and replayed; both before the timing */
  model_step_config gc;
  memset(&gc, 0, sizeof gc);
  gc.sgd = sc;
  gc.smoothing = 0.1f;
  gc.loss_scale = 1.0;
  gc.check_grads = dc.cuda && dc.precision == DTYPE_F16;
  char gwhy[320] = "";
  if (use_graph && model_graph_available(&m, gwhy, sizeof gwhy) != 0) use_graph = 0;
  for (int w = 0; w < (use_graph ? 2 : 1); w++) use_graph = bench_step(&m, img, lab, batch, &sc, &gc, use_graph, gwhy);
  model_sync(&m);
  if (cache) {
    int put = cuda_conv_cache_save(be, cache);
    if (put >= 0) printf("bench: conv algorithm cache %s: %d shapes saved\n", cache, put);
  }
  double t0 = now_sec();
  /* the same pinned batch each step: graph uploads overlap the steps before */
  for (int s = 0; s < steps; s++) use_graph = bench_step(&m, img, lab, batch, &sc, &gc, use_graph, gwhy);
  model_sync(&m);
  double train = (double)batch * steps / (now_sec() - t0);
  if (gwhy[0] || use_graph) {
    model_graph_stats gs;
    model_graph_get_stats(&m, &gs);
    double gl = 0;
    int gskip = 0;
    if (use_graph && model_graph_result(&m, &gl, &gskip) == 0 && (!isfinite(gl) || gskip))
      printf("bench: the last graph step's update was skipped (loss %g)\n", gl);
    if (use_graph)
      printf("bench: graph step: used (%d uncaptured warm-up, %d captured, %d replays)\n", gs.warmups, gs.captures,
             gs.replays);
    else
      printf("bench: graph step: not used (%s)\n", gwhy);
  }
  model_forward(&m, batch, 0);
  model_sync(&m);
  t0 = now_sec();
  for (int s = 0; s < steps; s++) {
    model_set_input(&m, img, NULL, batch);
    model_forward(&m, batch, 0);
  }
  model_sync(&m);
  double infer = (double)batch * steps / (now_sec() - t0);
  if (dc.cuda) {
    size_t peak = 0, base = 0;
    cuda_memory_stats(be, &peak, &base);
    printf("bench: model_create %.2f s (incl. cuDNN algorithm search), peak GPU memory %.2f GiB in use (%.2f GiB "
           "before any allocation: context, cuDNN / cuBLAS; rn50's share %.2f GiB)\n",
           t_create, peak / 1073741824.0, base / 1073741824.0, (peak - base) / 1073741824.0);
    printf("bench: peak allocated %.2f GiB (buffers rn50 allocated: weights, activations, workspaces; the "
           "counterpart of torch.cuda.max_memory_allocated)\n",
           cuda_memory_allocated_peak(be) / 1073741824.0);
  } else {
    printf("bench: model_create %.2f s\n", t_create);
  }
  printf("train img/s: %.2f  infer img/s: %.2f\n", train, infer);
  be->free_host(be, img);
  be->free_host(be, lab);
  model_destroy(&m);
  be->destroy(be);
  args_free(&a);
  return 0;
}
