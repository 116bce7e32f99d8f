/* cmd_train.c: 'rn50 train', 'rn50 eval', 'rn50 predict' and 'rn50 demo'. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../core/util.h"
#include "../data/loader.h"
#include "../io/safetensors.h"
#include "../io/weights.h"
#include "../model/exec.h"
#include "../train/config.h"
#include "../train/evaluate.h"
#include "../train/train.h"
#include "args.h"
#include "commands.h"
#include "device.h"

const char cmd_train_usage[] =
    "usage: rn50 train --data ROOT --out RUN [options]\n"
    "Trains from scratch (or from --init-weights) on the ImageNet-style dataset at ROOT (a\n"
    "raw tree in either layout, or a directory written by 'rn50 pack'). Started again with\n"
    "the same --out, it continues from the newest valid checkpoint, mid-epoch included.\n"
    "SIGTERM/SIGINT: finish the step, write a checkpoint, exit 0 (a second Ctrl-C: at once).\n"
    "\n"
    "  --recipe R           fast (default) or classic, then any option below overrides it:\n"
    "%s"
    "  --arch A             resnet18|34|50|101|152 (default resnet50)\n"
    "  --epochs N  --batch-size B  --accum-steps K (micro-batches per optimizer step)\n"
    "  --lr X               peak learning rate (default: the recipe's per-256 lr x B x K / 256)\n"
    "  --momentum M  --nesterov 0|1  --wd X  --wd-bn 0|1 (or --no-bn-wd)  --label-smoothing E\n"
    "  --schedule cosine|step|onecycle  --warmup-epochs W  --warmup-start F\n"
    "  --milestones 30,60  --gamma G (step)   --peak-epoch P (onecycle)\n"
    "  --ema-decay D        keep an EMA of the weights (e.g. 0.9998) and evaluate it too\n"
    "  --image-size S       train crop (turns progressive resizing off)\n"
    "  --min-res A --max-res B --start-ramp E1 --end-ramp E2   progressive resizing (FFCV)\n"
    "  --val-resize R --val-crop C   eval transform (default 256, 224)\n"
    "  --seed S  --zero-gamma  --classes C  --init-weights FILE\n"
    "  --device cpu|cuda[:N]  --precision bf16|fp16|fp32  --tf32 0|1  --threads T  --workers W\n"
    "  --log-every N (steps)  --ckpt-minutes M (default 10)  --ckpt-steps N  --keep K (default 3)\n"
    "  --eval-every N (epochs)  --max-steps N  --nan-limit N (default 5)  --force\n"
    "  --graph 0|1          CUDA: each step as one replayed CUDA graph, the next batch uploading\n"
    "                       meanwhile (default 0; needs --accum-steps 1; else eager steps)\n"
    "Writes RUN/config.json, train.log, metrics.jsonl, summary.csv, plot.html, tb/ (TensorBoard),\n"
    "checkpoints/, model_best.safetensors and at the end model.safetensors (torchvision names).\n";

const char cmd_eval_usage[] =
    "usage: rn50 eval --data ROOT --weights FILE [--arch A] [--batch-size B] [--val-resize R]\n"
    "                 [--val-crop C] [--device cpu|cuda] [--precision P] [--workers W]\n"
    "Loss, top-1 and top-5 on ROOT's val split with the eval transform. FILE is a weights file\n"
    "written by rn50 or a torchvision state_dict saved as safetensors; the arch and class\n"
    "count are read from it unless --arch is given.\n";

const char cmd_predict_usage[] =
    "usage: rn50 predict --weights FILE [--names LOC_synset_mapping.txt] [--top K]\n"
    "                    [--resize R] [--crop C] [--device cpu|cuda] IMAGE...\n"
    "The top-K classes (default 5) of each image with probabilities and names. Names come\n"
    "from --names, else from the class list rn50 stores in its weights files.\n";

const char cmd_demo_usage[] =
    "usage: rn50 demo [--out DIR] [--epochs N] [--threads T]\n"
    "A complete small training run on the CPU: writes a synthetic 10-class dataset with\n"
    "'rn50 synth' into DIR/data (once), then trains a ResNet-18 at 64 px on it into DIR/run\n"
    "(default DIR: demo). Run it again to continue or to see it resume.\n";

int cmd_train(int argc, char **argv) {
  args a;
  args_init(&a, "train", argc, argv);
  train_config c;
  config_from_args(&c, &a);
  args_finish(&a);
  if (!c.data[0]) args_fail(&a, "--data ROOT is required (the dataset)");
  if (!c.out[0]) args_fail(&a, "--out RUN is required (the run directory)");
  arch_id arch;
  if (arch_from_name(c.arch, &arch) != 0)
    args_fail(&a, "unknown --arch '%s' (resnet18, resnet34, resnet50, resnet101 or resnet152)", c.arch);
  char err[256];
  device_config dc;
  if (device_config_parse(&dc, c.device, c.precision, c.tf32, c.threads, err, sizeof err) != 0)
    args_fail(&a, "%s", err);
  args_free(&a);
  return train_main(&c);
}

/* Open a weights file, build the net it fits (arch and classes from the file
 * unless --arch is given) at the given input size and read it; exits with a
 * message naming the file and tensor on any problem. */
static void build_from_weights(args *a, const char *path, const char *arch_opt, int in_c, int size, net *n,
                               float **params, float **running, int64_t *counts, char **classes_json) {
  safet_file f;
  char err[1024];
  if (safet_open(&f, path, err, sizeof err) != 0 || safet_verify_checksum(&f, err, sizeof err) != 0) die("%s", err);
  arch_id arch;
  int classes;
  if (weights_detect_arch(&f, &arch, &classes, err, sizeof err) != 0) die("%s", err);
  if (arch_opt && arch_from_name(arch_opt, &arch) != 0) args_fail(a, "unknown --arch '%s'", arch_opt);
  if (net_build(n, arch, classes, size, in_c, err, sizeof err) != 0) args_fail(a, "%s", err);
  *params = xcalloc(n->n_params, sizeof(float), "weights");
  *running = xcalloc(n->n_running ? n->n_running : 1, sizeof(float), "weights");
  if (weights_read(n, &f, "", 1, *params, *running, counts, err, sizeof err) != 0) die("%s", err);
  const char *cj = safet_meta(&f, "rn50.classes_json");
  *classes_json = cj ? xstrdup(cj) : NULL;
  safet_close(&f);
}

int cmd_eval(int argc, char **argv) {
  args a;
  args_init(&a, "eval", argc, argv);
  device_config dc;
  device_config_from_args(&a, &dc);
  const char *data = args_str(&a, "data", NULL), *wpath = args_str(&a, "weights", NULL);
  const char *arch_opt = args_str(&a, "arch", NULL);
  int batch = (int)args_int(&a, "batch-size", dc.cuda ? 256 : 32, 1, 65536);
  int resize = (int)args_int(&a, "val-resize", 256, 32, 8192);
  int crop = (int)args_int(&a, "val-crop", 224, 32, 4096);
  int workers = (int)args_int(&a, "workers", 0, 0, 1024);
  args_finish(&a);
  if (!data || !wpath) args_fail(&a, "--data ROOT and --weights FILE are required");
  if (crop > resize) args_fail(&a, "--val-crop (%d) cannot exceed --val-resize (%d)", crop, resize);
  backend *be = device_open(&dc);
  static net n;
  float *params, *running;
  int64_t counts[NET_MAX_OPS];
  char *cj;
  build_from_weights(&a, wpath, arch_opt, be->in_c, crop, &n, &params, &running, counts, &cj);
  loader_config lc = {0};
  lc.root = data;
  lc.batch = batch;
  lc.crop = crop;
  lc.resize = resize;
  lc.workers = workers;
  lc.world = 1;
  char err[1024];
  loader *l = loader_open(&lc, err, sizeof err);
  if (!l) die("%s", err);
  if (loader_classes(l) != n.classes)
    die("%s has %d classes but %s was trained for %d", data, loader_classes(l), wpath, n.classes);
  static model m;
  model_create(&m, be, &n, batch, 0);
  model_set_state(&m, params, running, counts);
  eval_result r;
  evaluate(&m, l, &r);
  printf("%s on %s (%ld images, %s): loss %.4f  top-1 %.2f%%  top-5 %.2f%%  (%.1f s, %.1f img/s)\n", n.arch_name,
         data, r.images, dc.label, r.loss, r.top1, r.top5, r.seconds, r.images / fmax(r.seconds, 1e-9));
  loader_close(l);
  model_destroy(&m);
  be->destroy(be);
  free(params), free(running), free(cj);
  args_free(&a);
  return 0;
}

/* class names: --names file ("wnid words" per line, sorted order = index),
 * else the weights' stored list, else "class N" */
static char **load_names(const char *names_path, const char *classes_json, int classes) {
  char **names = xcalloc((size_t)classes, sizeof(char *), "class names");
  if (names_path) {
    char err[512];
    size_t len;
    char *text = file_read_all(names_path, &len, err, sizeof err);
    if (!text) die("%s", err);
    int i = 0;
    for (char *line = strtok(text, "\r\n"); line && i < classes; line = strtok(NULL, "\r\n")) names[i++] = xstrdup(line);
    free(text);
    if (i != classes) warn("%s lists %d classes, the model has %d", names_path, i, classes);
  } else if (classes_json) {
    json *j = json_parse(classes_json, strlen(classes_json), NULL, 0);
    int i = 0;
    for (const json *e = j && j->type == JSON_ARRAY ? j->child : NULL; e && i < classes; e = e->next)
      if (e->type == JSON_STRING) names[i++] = xstrdup(e->str);
    json_free(j);
  }
  for (int i = 0; i < classes; i++)
    if (!names[i]) {
      char b[32];
      snprintf(b, sizeof b, "class %d", i);
      names[i] = xstrdup(b);
    }
  return names;
}

int cmd_predict(int argc, char **argv) {
  args a;
  args_init(&a, "predict", argc, argv);
  device_config dc;
  device_config_from_args(&a, &dc);
  const char *wpath = args_str(&a, "weights", NULL), *names_path = args_str(&a, "names", NULL);
  const char *arch_opt = args_str(&a, "arch", NULL);
  int top = (int)args_int(&a, "top", 5, 1, 100);
  int resize = (int)args_int(&a, "resize", 256, 32, 8192);
  int crop = (int)args_int(&a, "crop", 224, 32, 4096);
  char *files[4096];
  int nf = args_positional(&a, files, 4096);
  args_finish(&a);
  if (!wpath) args_fail(&a, "--weights FILE is required");
  if (nf < 1) args_fail(&a, "give at least one IMAGE");
  if (nf > 4096) args_fail(&a, "at most 4096 images per call");
  if (crop > resize) args_fail(&a, "--crop (%d) cannot exceed --resize (%d)", crop, resize);
  backend *be = device_open(&dc);
  static net n;
  float *params, *running;
  int64_t counts[NET_MAX_OPS];
  char *cj;
  build_from_weights(&a, wpath, arch_opt, be->in_c, crop, &n, &params, &running, counts, &cj);
  char **names = load_names(names_path, cj, n.classes);
  if (top > n.classes) top = n.classes;
  static model m;
  model_create(&m, be, &n, 1, 0);
  model_set_state(&m, params, running, counts);
  uint8_t *img = be->alloc_host(be, (size_t)crop * crop * 3, "image");
  float *logits = xmalloc((size_t)n.classes * sizeof(float), "logits");
  int failures = 0;
  for (int i = 0; i < nf; i++) {
    char err[1024];
    if (image_load_eval(files[i], resize, crop, img, err, sizeof err) != 0) {
      fprintf(stderr, "rn50 predict: %s\n", err);
      failures++;
      continue;
    }
    model_set_input(&m, img, NULL, 1);
    model_forward(&m, 1, 0);
    model_logits_to_host(&m, 1, logits);
    int idx[100];
    double prob[100];
    topk(logits, n.classes, top, idx, prob);
    printf("%s\n", files[i]);
    for (int k = 0; k < top; k++) printf("  %6.2f%%  %4d  %s\n", 100 * prob[k], idx[k], names[idx[k]]);
  }
  for (int i = 0; i < n.classes; i++) free(names[i]);
  free(names), free(logits), free(params), free(running), free(cj);
  be->free_host(be, img);
  model_destroy(&m);
  be->destroy(be);
  args_free(&a);
  return failures ? 1 : 0;
}

int cmd_demo(int argc, char **argv) {
  args a;
  args_init(&a, "demo", argc, argv);
  const char *out = args_str(&a, "out", "demo");
  long epochs = args_int(&a, "epochs", 8, 1, 1000);
  long threads = args_int(&a, "threads", 0, 0, 4096);
  args_finish(&a);
  char data[PATH_MAX], run[PATH_MAX], marker[PATH_MAX + 16];
  snprintf(data, sizeof data, "%s/data", out);
  snprintf(run, sizeof run, "%s/run", out);
  snprintf(marker, sizeof marker, "%s/.complete", data);
  if (!path_exists(marker)) {
    printf("demo: writing a synthetic dataset (10 classes, 100 train + 20 val images each) to %s\n", data);
    fflush(stdout);
    char *sargv[] = {"--out", data, "--classes", "10", "--per-class", "100", "--val-per-class", "20", "--size",
                     "160x120", NULL};
    if (cmd_synth(10, sargv) != 0) return 1;
    FILE *f = fopen(marker, "w");
    if (f) fclose(f);
  }
  char ep[32], th[32];
  snprintf(ep, sizeof ep, "%ld", epochs);
  snprintf(th, sizeof th, "%ld", threads);
  printf("demo: training a ResNet-18 at 64 px for %s epochs on the CPU into %s\n", ep, run);
  fflush(stdout);
  char *targv[] = {"--data", data, "--out", run, "--arch", "resnet18", "--epochs", ep, "--batch-size", "32",
                   "--image-size", "64", "--val-resize", "73", "--val-crop", "64", "--lr", "0.1",
                   "--peak-epoch", "2", "--label-smoothing", "0.1", "--wd", "5e-5", "--log-every", "10",
                   "--threads", th, "--ckpt-minutes", "1", NULL};
  int rc = cmd_train((int)ARRAY_LEN(targv) - 1, targv);
  if (rc == 0)
    printf("demo: log %s/train.log, curves %s/plot.html (TensorBoard: tensorboard --logdir %s), checkpoints "
           "%s/checkpoints, model %s/model.safetensors\n",
           run, run, run, run, run);
  args_free(&a);
  return rc;
}
