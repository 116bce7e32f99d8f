/* cmd_data.c: the data commands — 'rn50 prepare', 'rn50 pack', 'rn50 synth'
 * — and the loader benchmark behind 'rn50 bench --loader'. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "../data/loader.h"
#include "../data/pack.h"
#include "../data/prepare.h"
#include "../data/synth.h"
#include "args.h"
#include "commands.h"

const char cmd_prepare_usage[] =
    "usage: rn50 prepare --data ROOT [--workers N] [--quick] [--list-all]\n"
    "Recognises and checks an ImageNet tree as it is on disk, changing nothing in it:\n"
    "  ROOT/train/<wnid>/*.JPEG + ROOT/val/<wnid>/*.JPEG (ImageFolder), or Kaggle's\n"
    "  ROOT/ILSVRC/Data/CLS-LOC/{train,val,test} + LOC_val_solution.csv + LOC_synset_mapping.txt.\n"
    "Reports images per split and per class against ImageNet-1K, finds every bad file (zero\n"
    "bytes, truncated, not a JPEG/PNG, absurd dimensions, unreadable) and the unusual ones\n"
    "(PNG named .JPEG, CMYK, grayscale), and writes an index (files, labels, sizes) to\n"
    "$RN50_CACHE or ~/.cache/rn50 that training and pack read instead of walking the tree.\n"
    "  --data ROOT     dataset root\n"
    "  --workers N     threads (default: all cores)\n"
    "  --quick         read headers only (does not find truncated files)\n"
    "  --list-all      list every bad/unusual file (default: the first 20 of each kind)\n";

const char cmd_pack_usage[] =
    "usage: rn50 pack --data ROOT --out DIR [--max-side S] [--quality Q] [--shard-size N]\n"
    "                 [--workers N] [--seed S]\n"
    "Writes the train and val splits into WebDataset-style tar shards (DIR/train-000000.tar,\n"
    "...: <key>.jpg + <key>.cls per image; train in a shuffled order) plus DIR/rn50pack.idx for\n"
    "random access. Images larger than S on their longer side are resized to S and\n"
    "re-encoded at quality Q, as are CMYK, grayscale and PNG images (to RGB JPEG); the rest\n"
    "are copied as they are. Bad images are left out (and replaced when training). Uses all\n"
    "cores; run it again after an interruption and it continues with the missing shards.\n"
    "--data DIR then reads the pack like the raw tree (same labels and sample order).\n"
    "  --data ROOT       source dataset (ImageFolder or Kaggle layout)\n"
    "  --out DIR         pack directory (created)\n"
    "  --max-side S      longer-side bound in pixels, 0 keeps sizes (default 500)\n"
    "  --quality Q       JPEG quality of re-encoded images (default 90)\n"
    "  --shard-size N    images per shard (default 10000)\n"
    "  --workers N       threads (default: all cores)\n"
    "  --seed S          order of the train samples in the shards (default 0)\n";

const char cmd_synth_usage[] =
    "usage: rn50 synth --out DIR --classes C --per-class N [--val-per-class M] [--size WxH]\n"
    "                  [--quality Q] [--seed S] [--layout folder|kaggle] [--workers N]\n"
    "Writes a synthetic ImageNet-like dataset whose classes can be learned (a texture family\n"
    "and colour pair per class, varied per image) as JPEGs: DIR/train/<wnid>/<wnid>_<i>.JPEG and\n"
    "DIR/val/<wnid>/ILSVRC2012_val_<n>.JPEG, plus DIR/LOC_synset_mapping.txt; with --layout\n"
    "kaggle, DIR/ILSVRC/Data/CLS-LOC/{train,val} with val flat and DIR/LOC_val_solution.csv.\n"
    "  --classes C        number of classes\n"
    "  --per-class N      train images per class\n"
    "  --val-per-class M  val images per class (default N/5, at least 1)\n"
    "  --size WxH         image size (default: varied around 500x375, a quarter portrait)\n"
    "  --quality Q        JPEG quality (default 90)\n"
    "  --seed S           (default 0)\n"
    "  --layout L         folder (default) or kaggle\n"
    "  --workers N        threads (default: all cores)\n";

const char cmd_bench_loader_usage[] =
    "usage: rn50 bench --loader --data DIR [--workers N] [--batch B] [--crop S] [--epochs E]\n"
    "                  [--eval] [--resize R] [--seed S]\n"
    "Measures the input pipeline alone: the train transform (RandomResizedCrop + flip) from\n"
    "DIR (raw tree or pack) into uint8 batches, images/s after the first batch over E epochs.\n"
    "Ends with the line 'loader img/s: X'.\n"
    "  --workers N   decode threads (default: all cores)\n"
    "  --batch B     (default 256)      --crop S    (default 224)\n"
    "  --epochs E    passes to time (default 2)\n"
    "  --eval        time the eval transform (Resize R + CenterCrop S) on val instead\n";

int cmd_prepare(int argc, char **argv) {
  args a;
  args_init(&a, "prepare", argc, argv);
  prepare_opts o = {0};
  o.root = args_str(&a, "data", NULL);
  o.threads = (int)args_int(&a, "workers", 0, 0, 1024);
  o.quick = args_flag(&a, "quick");
  o.list_all = args_flag(&a, "list-all");
  args_finish(&a);
  if (!o.root) args_fail(&a, "--data ROOT is required");
  char err[1024];
  int rc = prepare_run(&o, err, sizeof err);
  args_free(&a);
  if (rc != 0) {
    fprintf(stderr, "rn50 prepare: %s\n", err);
    return 1;
  }
  return 0;
}

int cmd_pack(int argc, char **argv) {
  args a;
  args_init(&a, "pack", argc, argv);
  pack_opts o = {0};
  o.root = args_str(&a, "data", NULL);
  o.out = args_str(&a, "out", NULL);
  o.max_side = (int)args_int(&a, "max-side", 500, 0, 16384);
  o.quality = (int)args_int(&a, "quality", 90, 1, 100);
  o.shard_size = (int)args_int(&a, "shard-size", 10000, 1, 100000000);
  o.threads = (int)args_int(&a, "workers", 0, 0, 1024);
  o.seed = (uint64_t)args_int(&a, "seed", 0, 0, 0x7fffffffffffffffL);
  args_finish(&a);
  if (!o.root) args_fail(&a, "--data ROOT is required");
  if (!o.out) args_fail(&a, "--out DIR is required");
  const char *stop = getenv("RN50_PACK_STOP_AFTER"); /* tests: simulate an interruption */
  if (stop) o.stop_after = atoi(stop);
  char err[1024];
  int rc = pack_run(&o, err, sizeof err);
  args_free(&a);
  if (rc < 0) {
    fprintf(stderr, "rn50 pack: %s\n", err);
    return 1;
  }
  return rc;
}

int cmd_synth(int argc, char **argv) {
  args a;
  args_init(&a, "synth", argc, argv);
  synth_opts o = {0};
  o.out = args_str(&a, "out", NULL);
  o.classes = (int)args_int(&a, "classes", 0, 1, 100000);
  o.per_class = (int)args_int(&a, "per-class", -1, 0, 100000000);
  o.val_per_class = (int)args_int(&a, "val-per-class", -1, 0, 100000000);
  const char *size = args_str(&a, "size", NULL);
  o.quality = (int)args_int(&a, "quality", 90, 1, 100);
  o.seed = (uint64_t)args_int(&a, "seed", 0, 0, 0x7fffffffffffffffL);
  const char *layout = args_str(&a, "layout", "folder");
  o.threads = (int)args_int(&a, "workers", 0, 0, 1024);
  args_finish(&a);
  if (!o.out) args_fail(&a, "--out DIR is required");
  if (o.classes < 1) args_fail(&a, "--classes C is required");
  if (o.per_class < 0) args_fail(&a, "--per-class N is required");
  if (o.val_per_class < 0) o.val_per_class = o.per_class / 5 > 0 ? o.per_class / 5 : 1;
  if (size) {
    char x;
    if (sscanf(size, "%d%c%d", &o.width, &x, &o.height) != 3 || (x != 'x' && x != 'X') || o.width < 1 || o.height < 1 ||
        o.width > 8192 || o.height > 8192)
      args_fail(&a, "--size must be WxH with sides from 1 to 8192 (got '%s')", size);
  }
  if (!strcmp(layout, "kaggle")) o.kaggle = 1;
  else if (strcmp(layout, "folder") != 0) args_fail(&a, "--layout must be folder or kaggle (got '%s')", layout);
  char err[1024];
  double t0 = now_sec();
  int rc = synth_write(&o, err, sizeof err);
  args_free(&a);
  if (rc != 0) {
    fprintf(stderr, "rn50 synth: %s\n", err);
    return 1;
  }
  fprintf(stderr, "rn50 synth: %d classes, %d train + %d val images per class in %s (%.1f s)\n", o.classes, o.per_class,
          o.val_per_class, o.out, now_sec() - t0);
  return 0;
}

int cmd_bench_loader(int argc, char **argv) {
  args a;
  args_init(&a, "bench", argc, argv);
  (void)args_flag(&a, "loader");
  loader_config c = {0};
  c.root = args_str(&a, "data", NULL);
  c.workers = (int)args_int(&a, "workers", 0, 0, 1024);
  c.batch = (int)args_int(&a, "batch", 256, 1, 65536);
  c.crop = (int)args_int(&a, "crop", 224, 1, 4096);
  c.resize = (int)args_int(&a, "resize", 256, 1, 8192);
  c.seed = (uint64_t)args_int(&a, "seed", 0, 0, 0x7fffffffffffffffL);
  int epochs = (int)args_int(&a, "epochs", 2, 1, 1000000);
  int eval = args_flag(&a, "eval");
  args_finish(&a);
  if (!c.root) args_fail(&a, "--data DIR is required");
  c.train = !eval;
  c.drop_last = !eval;
  c.world = 1;
  char err[1024];
  loader *l = loader_open(&c, err, sizeof err);
  args_free(&a);
  if (!l) {
    fprintf(stderr, "rn50 bench: %s\n", err);
    return 1;
  }
  printf("loader: %s, %s split (%s layout%s): %lld images, %d classes, %d workers, batch %d, %d px\n", c.root,
         eval ? "val" : "train", loader_layout(l), loader_from_index(l) ? ", from the index" : "",
         (long long)loader_size(l), loader_classes(l), loader_workers(l), c.batch, c.crop);
  size_t bytes = (size_t)c.batch * c.crop * c.crop * 3;
  uint8_t *img = xmalloc_aligned(bytes, "bench batch");
  int32_t *lab = xmalloc((size_t)c.batch * sizeof(int32_t), "bench labels");
  loader_start(l, 0, 0);
  double t0 = 0;
  int64_t counted = 0;
  int first = 1;
  for (int e = 0; e < epochs; e++) {
    if (e > 0) loader_start(l, e, 0);
    double te = now_sec();
    int64_t ne = 0;
    int n;
    while ((n = loader_next(l, img, lab)) > 0) {
      if (first) { /* like the peer: time from the end of the first batch */
        first = 0;
        t0 = now_sec();
        continue;
      }
      counted += n;
      ne += n;
    }
    printf("epoch %d: %lld images in %.2f s\n", e, (long long)ne, now_sec() - te);
  }
  double dt = now_sec() - t0;
  double rate = dt > 0 ? counted / dt : 0;
  printf("bad images replaced: %lld; waiting for data: %.2f s\n", (long long)loader_bad_images(l),
         loader_wait_seconds(l));
  printf("loader img/s: %.0f\n", rate);
  free(img);
  free(lab);
  loader_close(l);
  return 0;
}
