/* cmd_bench.c: 'rn50 bench' measures training-step and inference
 * throughput on random data held in the backend (no input pipeline). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "../core/util.h"
#include "../model/exec.h"
#include "args.h"
#include "commands.h"
#include "device.h"

const char cmd_bench_usage[] =
    "usage: rn50 bench [--arch A] [--batch-size B] [--image-size S] [--steps N] [--device cpu|cuda]\n"
    "                  [--precision bf16|fp16|fp32] [--tf32 0|1] [--threads T]\n"
    "Times training steps (forward, loss, backward, SGD) and inference on random\n"
    "images and labels, after one warm-up step. Ends with the line\n"
    "  train img/s: X  infer img/s: Y\n"
    "  --arch A        model (default resnet50)\n"
    "  --batch-size B  images per step (default 16 on the CPU, 256 on CUDA)\n"
    "  --image-size S  input side in pixels (default 224)\n"
    "  --steps N       timed steps (default 5)\n"
    "  --threads T     CPU threads (default: all cores)\n"
    "With --loader it measures the input pipeline instead (see below).\n\n";

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
  args_finish(&a);
  arch_id arch;
  if (arch_from_name(arch_s, &arch) != 0) args_fail(&a, "unknown arch '%s'", arch_s);
  backend *be = device_open(&dc);
  static net n;
  char err[256];
  if (net_build(&n, arch, 1000, size, be->in_c, err, sizeof err) != 0) args_fail(&a, "%s", err);
  static model m;
  model_create(&m, be, &n, batch, 1);
  model_init_params(&m, 1, 0);
  size_t img_bytes = (size_t)batch * size * size * 3;
  uint8_t *img = be->alloc_host(be, img_bytes, "bench images");
  int32_t *lab = be->alloc_host(be, (size_t)batch * sizeof(int32_t), "bench labels");
  for (size_t i = 0; i < img_bytes; i++) img[i] = (uint8_t)(rng_u64(7, 1, i) & 0xff);
  for (int i = 0; i < batch; i++) lab[i] = (int32_t)(rng_u64(7, 2, (uint64_t)i) % 1000);
  sgd_config sc = {0.01f, 0.9f, 5e-5f, 1, 1};
  printf("bench: %s, %s, batch %d, %dx%d, %d steps, activations %.1f MB, gradients %.1f MB\n", n.arch_name,
         dc.label, batch, size, size, steps, m.act_bytes / 1e6, m.grad_bytes / 1e6);
  fflush(stdout);
  model_set_input(&m, img, lab, batch);
  model_train_step(&m, batch, 0.1f, 1.0f);
  model_sgd_step(&m, &sc, 1.0f);
  model_sync(&m);
  double t0 = now_sec();
  for (int s = 0; s < steps; s++) {
    model_set_input(&m, img, lab, batch);
    model_train_step(&m, batch, 0.1f, 1.0f);
    model_sgd_step(&m, &sc, 1.0f);
  }
  model_sync(&m);
  double train = (double)batch * steps / (now_sec() - t0);
  model_forward(&m, batch, 0);
  model_sync(&m);
  t0 = now_sec();
  for (int s = 0; s < steps; s++) {
    model_set_input(&m, img, NULL, batch);
    model_forward(&m, batch, 0);
  }
  model_sync(&m);
  double infer = (double)batch * steps / (now_sec() - t0);
  printf("train img/s: %.2f  infer img/s: %.2f\n", train, infer);
  be->free_host(be, img);
  be->free_host(be, lab);
  model_destroy(&m);
  be->destroy(be);
  args_free(&a);
  return 0;
}
