/* cmd_weights.c: 'rn50 init' writes freshly initialised weights and
 * 'rn50 check' validates a weights file (rn50's or one PyTorch wrote) and
 * summarises it; both as torchvision state_dicts in safetensors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "../io/weights.h"
#include "args.h"
#include "commands.h"

const char cmd_init_usage[] =
    "usage: rn50 init --out FILE [--arch A] [--classes C] [--seed S] [--zero-gamma]\n"
    "Writes freshly initialised weights as torchvision's state_dict in safetensors\n"
    "(torchvision's names, OIHW conv weights, F32, I64 num_batches_tracked):\n"
    "Kaiming normal (fan_out, ReLU) convs, BN gamma 1 and beta 0, nn.Linear's\n"
    "uniform fc, running mean 0 / var 1. The same seed gives the same file on\n"
    "every machine and thread count.\n"
    "  --out FILE      output file (written atomically)\n"
    "  --arch A        resnet18|resnet34|resnet50|resnet101|resnet152 (default resnet50)\n"
    "  --classes C     output classes (default 1000)\n"
    "  --seed S        (default 0)\n"
    "  --zero-gamma    gamma 0 on each block's last BN (blocks start as identities)\n";

const char cmd_check_usage[] =
    "usage: rn50 check FILE [--arch A] [--classes C]\n"
    "Checks a weights file: the safetensors structure, rn50's checksum when present,\n"
    "then every tensor of the model by name, shape and dtype (none missing, none\n"
    "extra), finite values, non-negative running variances. The arch and class count\n"
    "come from the tensor names and fc.weight's shape unless given. Prints the model,\n"
    "its parameter count and statistics per kind of tensor; exits 0 if the file is\n"
    "valid, 1 with a message naming the file and the tensor if not.\n"
    "  --arch A        expect this arch (resnet18|resnet34|resnet50|resnet101|resnet152)\n"
    "  --classes C     expect this many classes\n";

static arch_id parse_arch(args *a, const char *s) {
  arch_id id;
  if (arch_from_name(s, &id) != 0)
    args_fail(a, "unknown arch '%s' (choose resnet18, resnet34, resnet50, resnet101 or resnet152)", s);
  return id;
}

static void commas(long long v, char *out, size_t len) {
  char tmp[32];
  int n = snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v), o = 0;
  if (v < 0) out[o++] = '-';
  for (int i = 0; i < n && o < (int)len - 2; i++) {
    if (i > 0 && (n - i) % 3 == 0) out[o++] = ',';
    out[o++] = tmp[i];
  }
  out[o] = 0;
}

int cmd_init(int argc, char **argv) {
  args a;
  args_init(&a, "init", argc, argv);
  const char *out = args_str(&a, "out", NULL);
  const char *arch_s = args_str(&a, "arch", "resnet50");
  int classes = (int)args_int(&a, "classes", 1000, 1, 1000000);
  long seed = args_int(&a, "seed", 0, 0, 0x7fffffffffffffffL);
  int zero_gamma = args_flag(&a, "zero-gamma");
  args_finish(&a);
  if (!out || !*out) args_fail(&a, "--out FILE is required");
  arch_id arch = parse_arch(&a, arch_s);
  static net n;
  char err[512];
  if (net_build(&n, arch, classes, 224, 3, err, sizeof err) != 0) args_fail(&a, "%s", err);
  float *params = xmalloc(n.n_params * sizeof(float), "parameters");
  float *running = xmalloc(n.n_running * sizeof(float), "running statistics");
  int64_t counts[NET_MAX_OPS];
  net_init_params(&n, (uint64_t)seed, zero_gamma, params, running, counts);
  char seed_s[32];
  snprintf(seed_s, sizeof seed_s, "%ld", seed);
  const char *meta[] = {"rn50.init_seed", seed_s, "rn50.zero_gamma", zero_gamma ? "1" : "0", NULL};
  int rc = weights_save(&n, params, running, counts, out, meta, err, sizeof err);
  free(params);
  free(running);
  args_free(&a);
  if (rc != 0) {
    fprintf(stderr, "rn50 init: %s\n", err);
    return 1;
  }
  char np[32];
  commas((long long)net_param_count(&n), np, sizeof np);
  printf("rn50 init: wrote %s (%d classes, %s parameters, seed %ld%s) to %s\n", n.arch_name, classes, np, seed,
         zero_gamma ? ", zero gamma" : "", out);
  return 0;
}

/* statistics of one kind of tensor */
typedef struct {
  const char *label;
  int tensors;
  size_t count;
  double sum, sq, lo, hi;
} group;

static void group_add(group *g, const float *x, size_t n) {
  if (!g->tensors && !g->count) g->lo = INFINITY, g->hi = -INFINITY;
  g->tensors++;
  for (size_t i = 0; i < n; i++) {
    g->sum += x[i];
    g->sq += (double)x[i] * x[i];
    if (x[i] < g->lo) g->lo = x[i];
    if (x[i] > g->hi) g->hi = x[i];
  }
  g->count += n;
}

static void group_print(const group *g) {
  if (!g->tensors) return;
  char c[32];
  commas((long long)g->count, c, sizeof c);
  double mean = g->count ? g->sum / g->count : 0;
  double var = g->count ? g->sq / g->count - mean * mean : 0;
  printf("  %-20s %4d %11s %11.4g %11.4g %11.4g %11.4g\n", g->label, g->tensors, c, mean, sqrt(var > 0 ? var : 0),
         g->lo, g->hi);
}

enum { G_CONV, G_GAMMA, G_BETA, G_FCW, G_FCB, G_RMEAN, G_RVAR, G_N };

/* finite values, non-negative variances; fills the groups. 0, or -1 with
 * err naming the tensor. */
static int check_values(const net *n, const char *path, const float *params, const float *running, group *g,
                        char *err, size_t errlen) {
  for (int i = 0; i < n->n_state; i++) {
    const state_entry *e = &n->state[i];
    if (e->cls == ST_COUNT) continue;
    const float *x = (e->cls == ST_PARAM ? params : running) + e->offset;
    size_t numel = e->numel, bad = 0, neg = 0;
    for (size_t k = 0; k < numel; k++) {
      bad += !isfinite(x[k]);
      neg += x[k] < 0;
    }
    if (bad) {
      snprintf(err, errlen, "%s: tensor '%s' has %zu non-finite values (NaN or infinity) of %zu", path, e->name, bad,
               numel);
      return -1;
    }
    const char *leaf = strrchr(e->name, '.') + 1;
    int k;
    if (e->conv) k = G_CONV;
    else if (!strcmp(e->name, "fc.weight")) k = G_FCW;
    else if (!strcmp(e->name, "fc.bias")) k = G_FCB;
    else if (!strcmp(leaf, "weight")) k = G_GAMMA;
    else if (!strcmp(leaf, "bias")) k = G_BETA;
    else if (!strcmp(leaf, "running_mean")) k = G_RMEAN;
    else k = G_RVAR;
    if (k == G_RVAR && neg) {
      snprintf(err, errlen, "%s: tensor '%s' has %zu negative variances", path, e->name, neg);
      return -1;
    }
    group_add(&g[k], x, numel);
  }
  return 0;
}

int cmd_check(int argc, char **argv) {
  args a;
  args_init(&a, "check", argc, argv);
  const char *arch_s = args_str(&a, "arch", NULL);
  int classes_opt = (int)args_int(&a, "classes", 0, 1, 1000000);
  char *files[2];
  int nf = args_positional(&a, files, 2);
  args_finish(&a);
  if (nf != 1) args_fail(&a, nf ? "give one weights file (got %d)" : "give the weights FILE to check", nf);
  arch_id arch = ARCH_RESNET50;
  if (arch_s) arch = parse_arch(&a, arch_s);
  const char *path = files[0];
  char err[1024];
  safet_file f;
  if (safet_open(&f, path, err, sizeof err) != 0) {
    fprintf(stderr, "rn50 check: %s\n", err);
    args_free(&a);
    return 1;
  }
  static net n;
  float *params = NULL, *running = NULL;
  int64_t counts[NET_MAX_OPS];
  group g[G_N] = {{"conv weights", 0, 0, 0, 0, 0, 0}, {"bn weight (gamma)", 0, 0, 0, 0, 0, 0},
                  {"bn bias (beta)", 0, 0, 0, 0, 0, 0}, {"fc.weight", 0, 0, 0, 0, 0, 0},
                  {"fc.bias", 0, 0, 0, 0, 0, 0},        {"bn running_mean", 0, 0, 0, 0, 0, 0},
                  {"bn running_var", 0, 0, 0, 0, 0, 0}};
  int rc = -1, classes = 0, det_classes = 0;
  arch_id det_arch = ARCH_RESNET50;
  const char *crc = safet_meta(&f, SAFET_CRC_KEY);
  if (safet_verify_checksum(&f, err, sizeof err) != 0) goto done;
  /* the arch and classes the file holds, from names and fc.weight */
  int detected = weights_detect_arch(&f, &det_arch, &det_classes, err, sizeof err) == 0;
  if (!detected && (!arch_s || !classes_opt)) goto done;
  if (detected && arch_s && det_arch != arch) {
    snprintf(err, sizeof err, "%s: holds a %s state_dict (from its tensor names), not %s", path,
             arch_names[det_arch], arch_names[arch]);
    goto done;
  }
  if (!arch_s) arch = det_arch;
  classes = classes_opt ? classes_opt : det_classes;
  char berr[512];
  if (net_build(&n, arch, classes, 224, 3, berr, sizeof berr) != 0) {
    snprintf(err, sizeof err, "%s: no %s with %d classes (from 'fc.weight'): %s", path, arch_names[arch], classes,
             berr);
    goto done;
  }
  params = xmalloc(n.n_params * sizeof(float), "parameters");
  running = xmalloc(n.n_running * sizeof(float), "running statistics");
  memset(params, 0, n.n_params * sizeof(float));
  /* strict: every tensor of the net, by name, shape and dtype; nothing else */
  if (weights_read(&n, &f, "", 1, params, running, counts, err, sizeof err) != 0) goto done;
  if (check_values(&n, path, params, running, g, err, sizeof err) != 0) goto done;
  for (int i = 0; i < n.n_state; i++)
    if (n.state[i].cls == ST_COUNT && counts[n.state[i].offset] < 0) {
      snprintf(err, sizeof err, "%s: tensor '%s' is negative (%lld)", path, n.state[i].name,
               (long long)counts[n.state[i].offset]);
      goto done;
    }
  rc = 0;
done:
  if (rc != 0) {
    fprintf(stderr, "rn50 check: %s\n", err);
  } else {
    char np[32], nr[32];
    commas((long long)net_param_count(&n), np, sizeof np);
    commas((long long)n.n_running, nr, sizeof nr);
    int n_param_t = 0;
    int64_t cmin = INT64_MAX, cmax = INT64_MIN;
    for (int i = 0; i < n.n_state; i++) {
      n_param_t += n.state[i].cls == ST_PARAM;
      if (n.state[i].cls == ST_COUNT) {
        int64_t c = counts[n.state[i].offset];
        cmin = c < cmin ? c : cmin;
        cmax = c > cmax ? c : cmax;
      }
    }
    const char *meta_arch = safet_meta(&f, "rn50.arch");
    printf("rn50 check: %s: valid %s state_dict\n", path, n.arch_name);
    printf("  arch        %s (%s)\n", n.arch_name,
           arch_s ? "as given" : meta_arch ? "from the tensor names; written by rn50" : "from the tensor names");
    printf("  classes     %d\n", n.classes);
    printf("  parameters  %s in %d tensors; %s running statistics; %d num_batches_tracked (%lld..%lld)\n", np,
           n_param_t, nr, n.n_bn, (long long)cmin, (long long)cmax);
    printf("  tensors     %d, checksum %s\n", f.n, crc ? "crc32c ok" : "none (not written by rn50)");
    printf("  %-20s %4s %11s %11s %11s %11s %11s\n", "kind", "#", "values", "mean", "std", "min", "max");
    for (int k = 0; k < G_N; k++) group_print(&g[k]);
  }
  free(params);
  free(running);
  safet_close(&f);
  args_free(&a);
  return rc == 0 ? 0 : 1;
}
