/* test_model.c: the net description (src/model/net.c) against torchvision's
 * ResNets: parameter counts, state_dict names, shapes and order, the flat
 * parameter layout the optimizer and backends rely on, the initialisation's
 * statistics and determinism, the padded-input conv weight layout, and
 * weights_detect_arch.
 *
 * `test_model --dump-state ARCH CLASSES` prints the state table, one
 * "name dtype [shape]" line per tensor in order; tests/model_py.sh compares
 * it with torchvision's state_dict() line for line. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "harness.h"
#include "io/weights.h"
#include "model/net.h"

static net N, N2; /* large: static */

static int build(net *n, arch_id a, int classes, int size, int in_c) {
  char err[256];
  if (net_build(n, a, classes, size, in_c, err, sizeof err) != 0) {
    CHECK(0, "net_build(%s): %s", arch_names[a], err);
    return -1;
  }
  return 0;
}

typedef struct {
  float *params, *running;
  int64_t counts[NET_MAX_OPS];
} state_buf;

static void buf_alloc(state_buf *s, const net *n) {
  s->params = xmalloc(n->n_params * sizeof(float), "params");
  s->running = xmalloc(n->n_running * sizeof(float), "running");
  /* garbage, so that init must write every element it owns */
  memset(s->params, 0xff, n->n_params * sizeof(float));
  memset(s->running, 0xff, n->n_running * sizeof(float));
  memset(s->counts, 0xff, sizeof s->counts);
}

static void buf_free(state_buf *s) {
  free(s->params);
  free(s->running);
}

static const state_entry *find(const net *n, const char *name) {
  int i = net_find_state(n, name);
  return i < 0 ? NULL : &n->state[i];
}

/* torchvision's figures (torchvision 0.14: sum of p.numel() over
 * parameters(), len(state_dict()), BN layers, parameter tensors, running
 * statistic values) */
static const struct {
  arch_id arch;
  size_t params;
  int n_state, n_bn, n_param_tensors;
  size_t running;
} tv[] = {
    {ARCH_RESNET18, 11689512, 122, 20, 62, 9600},       {ARCH_RESNET34, 21797672, 218, 36, 110, 17024},
    {ARCH_RESNET50, 25557032, 320, 53, 161, 53120},     {ARCH_RESNET101, 44549160, 626, 104, 314, 105344},
    {ARCH_RESNET152, 60192808, 932, 155, 467, 151424},
};

static void test_counts(void) {
  for (size_t i = 0; i < ARRAY_LEN(tv); i++) {
    if (build(&N, tv[i].arch, 1000, 224, 3)) continue;
    const char *a = arch_names[tv[i].arch];
    CHECK(net_param_count(&N) == tv[i].params, "%s: %zu parameters, torchvision has %zu", a, net_param_count(&N),
          tv[i].params);
    CHECK(N.n_state == tv[i].n_state, "%s: %d state tensors, torchvision's state_dict has %d", a, N.n_state,
          tv[i].n_state);
    CHECK(N.n_bn == tv[i].n_bn, "%s: %d BN layers, want %d", a, N.n_bn, tv[i].n_bn);
    CHECK(N.n_running == tv[i].running, "%s: %zu running values, want %zu", a, N.n_running, tv[i].running);
    CHECK(N.n_running == 2 * N.n_bn_channels, "%s: running = 2 x BN channels", a);
    int np = 0, nc = 0;
    for (int k = 0; k < N.n_state; k++) {
      np += N.state[k].cls == ST_PARAM;
      nc += N.state[k].cls == ST_COUNT;
    }
    CHECK(np == tv[i].n_param_tensors, "%s: %d parameter tensors, want %d", a, np, tv[i].n_param_tensors);
    CHECK(nc == N.n_bn, "%s: %d counters for %d BN layers", a, nc, N.n_bn);
  }
  /* the classifier scales with --classes: fc is (features + 1) x classes */
  if (build(&N, ARCH_RESNET18, 10, 224, 3) == 0)
    CHECK(net_param_count(&N) == 11689512 - 513 * 990, "resnet18 10 classes: %zu", net_param_count(&N));
  if (build(&N, ARCH_RESNET50, 1, 64, 3) == 0)
    CHECK(net_param_count(&N) == 25557032 - 2049 * 999, "resnet50 1 class: %zu", net_param_count(&N));
  /* the image size changes activations, never parameters */
  if (build(&N, ARCH_RESNET50, 1000, 32, 3) == 0) CHECK(net_param_count(&N) == 25557032, "resnet50 at 32 px");
}

static void check_shape(const net *n, const char *name, int ndim, int64_t s0, int64_t s1, int64_t s2, int64_t s3) {
  const state_entry *e = find(n, name);
  CHECK(e != NULL, "%s: no state '%s'", n->arch_name, name);
  if (!e) return;
  int64_t want[4] = {s0, s1, s2, s3};
  int same = e->ndim == ndim;
  for (int d = 0; same && d < ndim; d++) same = e->shape[d] == want[d];
  CHECK(same, "%s: '%s' has ndim %d shape %lld %lld %lld %lld", n->arch_name, name, e->ndim, (long long)e->shape[0],
        (long long)e->shape[1], (long long)e->shape[2], (long long)e->shape[3]);
}

static void test_state_names(void) {
  /* resnet50: the key facts of torchvision's state_dict */
  if (build(&N, ARCH_RESNET50, 1000, 224, 3)) return;
  static const char *const head[] = {"conv1.weight",       "bn1.weight",
                                     "bn1.bias",           "bn1.running_mean",
                                     "bn1.running_var",    "bn1.num_batches_tracked",
                                     "layer1.0.conv1.weight", "layer1.0.bn1.weight"};
  for (size_t i = 0; i < ARRAY_LEN(head); i++)
    CHECK(!strcmp(N.state[i].name, head[i]), "state %zu is '%s', torchvision has '%s'", i, N.state[i].name, head[i]);
  CHECK(!strcmp(N.state[N.n_state - 2].name, "fc.weight") && !strcmp(N.state[N.n_state - 1].name, "fc.bias"),
        "last two states are '%s', '%s'", N.state[N.n_state - 2].name, N.state[N.n_state - 1].name);
  /* a block's downsample comes after its bn3 (module registration order) */
  int ds = net_find_state(&N, "layer2.0.downsample.0.weight");
  CHECK(ds == 84, "layer2.0.downsample.0.weight at %d, torchvision: 84", ds);
  CHECK(ds > 0 && !strcmp(N.state[ds - 1].name, "layer2.0.bn3.num_batches_tracked"), "before downsample: '%s'",
        ds > 0 ? N.state[ds - 1].name : "?");
  CHECK(!strcmp(N.state[ds + 3].name, "layer2.0.downsample.1.running_mean"), "downsample BN order: '%s'",
        N.state[ds + 3].name);
  CHECK(!strcmp(N.state[ds + 6].name, "layer2.1.conv1.weight"), "after downsample: '%s'", N.state[ds + 6].name);
  check_shape(&N, "conv1.weight", 4, 64, 3, 7, 7);
  check_shape(&N, "layer1.0.conv1.weight", 4, 64, 64, 1, 1);
  check_shape(&N, "layer1.0.downsample.0.weight", 4, 256, 64, 1, 1);
  check_shape(&N, "layer2.0.conv2.weight", 4, 128, 128, 3, 3);
  check_shape(&N, "layer2.0.downsample.0.weight", 4, 512, 256, 1, 1);
  check_shape(&N, "layer2.0.downsample.1.weight", 1, 512, 0, 0, 0);
  check_shape(&N, "layer3.5.conv2.weight", 4, 256, 256, 3, 3);
  check_shape(&N, "layer4.2.conv3.weight", 4, 2048, 512, 1, 1);
  check_shape(&N, "layer4.2.bn3.running_var", 1, 2048, 0, 0, 0);
  check_shape(&N, "bn1.num_batches_tracked", 0, 0, 0, 0, 0);
  check_shape(&N, "fc.weight", 2, 1000, 2048, 0, 0);
  check_shape(&N, "fc.bias", 1, 1000, 0, 0, 0);
  CHECK(find(&N, "layer3.6.conv1.weight") == NULL, "resnet50 layer3 has 6 blocks");
  CHECK(find(&N, "layer2.1.downsample.0.weight") == NULL, "only a layer's first block downsamples");
  /* resnet18: basic blocks, no downsample where the shape stays */
  if (build(&N, ARCH_RESNET18, 7, 224, 3)) return;
  CHECK(find(&N, "layer1.0.downsample.0.weight") == NULL, "resnet18 layer1.0 has no downsample");
  CHECK(find(&N, "layer1.0.conv3.weight") == NULL, "resnet18 blocks have 2 convs");
  check_shape(&N, "layer1.0.conv2.weight", 4, 64, 64, 3, 3);
  check_shape(&N, "layer4.0.downsample.0.weight", 4, 512, 256, 1, 1);
  check_shape(&N, "fc.weight", 2, 7, 512, 0, 0);
  ds = net_find_state(&N, "layer2.0.downsample.0.weight");
  CHECK(ds > 0 && !strcmp(N.state[ds - 1].name, "layer2.0.bn2.num_batches_tracked"), "resnet18 downsample order");
  /* every arch: names unique; every op points at its own state entries;
   * classes as torchvision: conv weights are parameters with decay */
  for (int a = 0; a <= ARCH_RESNET152; a++) {
    if (build(&N, (arch_id)a, 1000, 64, 3)) continue;
    for (int i = 0; i < N.n_state; i++)
      for (int j = i + 1; j < N.n_state; j++)
        CHECK(strcmp(N.state[i].name, N.state[j].name), "%s: '%s' twice", arch_names[a], N.state[i].name);
    for (int i = 0; i < N.n_ops; i++) {
      const net_op *op = &N.ops[i];
      const int ids[] = {op->w, op->b, op->rmean, op->rvar, op->count};
      static const char *const sfx[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
      for (int k = 0; k < 5; k++) {
        if (ids[k] < 0) continue;
        char want[2 * NET_NAME_LEN];
        snprintf(want, sizeof want, "%s.%s", op->name, sfx[k]);
        CHECK(!strcmp(N.state[ids[k]].name, want), "%s: op %s points at '%s' for %s", arch_names[a], op->name,
              N.state[ids[k]].name, sfx[k]);
      }
      if (op->kind == OP_BN) {
        CHECK(N.state[op->count].cls == ST_COUNT && (int)N.state[op->count].offset == op->bn,
              "%s: %s counter index %zu, BN index %d", arch_names[a], op->name, N.state[op->count].offset, op->bn);
        CHECK(N.bn_channels[op->bn] == N.acts[op->y].c, "%s: %s channels", arch_names[a], op->name);
      }
    }
  }
}

/* --dump-state ARCH CLASSES */
static int dump_state(const char *arch, const char *classes) {
  arch_id a;
  char err[256];
  if (arch_from_name(arch, &a) || net_build(&N, a, atoi(classes), 224, 3, err, sizeof err)) {
    fprintf(stderr, "bad arch/classes\n");
    return 2;
  }
  for (int i = 0; i < N.n_state; i++) {
    const state_entry *e = &N.state[i];
    printf("%s %s [", e->name, e->cls == ST_COUNT ? "I64" : "F32");
    for (int d = 0; d < e->ndim; d++) printf("%s%lld", d ? ", " : "", (long long)e->shape[d]);
    printf("]\n");
  }
  return 0;
}

typedef struct {
  size_t off, len;
  const char *name;
} span;

static int span_cmp(const void *a, const void *b) {
  const span *x = a, *y = b;
  return x->off < y->off ? -1 : x->off > y->off;
}

static void test_layout(void) {
  for (int a = 0; a <= ARCH_RESNET152; a++)
    for (int in_c = 3; in_c <= 4; in_c++) {
      if (build(&N, (arch_id)a, a == ARCH_RESNET18 ? 10 : 1000, 64, in_c)) continue;
      const char *an = arch_names[a];
      static span sp[NET_MAX_STATE];
      int ns = 0;
      size_t run_total = 0;
      CHECK(N.n_decay % 16 == 0 && N.n_params % 16 == 0 && N.n_decay <= N.n_params, "%s: n_decay %zu n_params %zu",
            an, N.n_decay, N.n_params);
      for (int i = 0; i < N.n_state; i++) {
        const state_entry *e = &N.state[i];
        const char *leaf = strrchr(e->name, '.') + 1;
        if (e->cls == ST_RUNNING) {
          run_total += e->numel;
          CHECK(e->offset + e->numel <= N.n_running, "%s: %s beyond running", an, e->name);
          continue;
        }
        if (e->cls != ST_PARAM) continue;
        int weight_like = e->conv || !strcmp(e->name, "fc.weight");
        CHECK(e->decay == weight_like, "%s: %s decay %d", an, e->name, e->decay);
        CHECK(e->offset % 16 == 0, "%s: %s offset %zu not 16-float aligned", an, e->name, e->offset);
        if (e->decay)
          CHECK(e->offset + e->numel <= N.n_decay, "%s: decayed %s at [%zu, %zu) outside [0, %zu)", an, e->name,
                e->offset, e->offset + e->numel, N.n_decay);
        else
          CHECK(e->offset >= N.n_decay && e->offset + e->numel <= N.n_params, "%s: %s at %zu outside [%zu, %zu)", an,
                e->name, e->offset, N.n_decay, N.n_params);
        if (e->conv) {
          CHECK(e->in_pad >= e->shape[1], "%s: %s in_pad", an, e->name);
          CHECK(e->numel == (size_t)(e->shape[0] * e->shape[2] * e->shape[3] * e->in_pad), "%s: %s numel %zu", an,
                e->name, e->numel);
          CHECK(e->in_pad == (!strcmp(e->name, "conv1.weight") ? in_c : e->shape[1]), "%s: %s in_pad %d", an, e->name,
                e->in_pad);
        } else {
          CHECK(e->numel == state_torch_numel(e), "%s: %s numel", an, e->name);
          CHECK(!strcmp(leaf, "weight") || !strcmp(leaf, "bias"), "%s: %s", an, e->name);
        }
        sp[ns++] = (span){e->offset, e->numel, e->name};
      }
      CHECK(run_total == N.n_running, "%s: running entries cover %zu of %zu", an, run_total, N.n_running);
      qsort(sp, (size_t)ns, sizeof *sp, span_cmp);
      for (int i = 0; i + 1 < ns; i++)
        CHECK(sp[i].off + sp[i].len <= sp[i + 1].off, "%s: %s overlaps %s", an, sp[i].name, sp[i + 1].name);
      /* no more than alignment padding between tensors */
      size_t used = 0;
      for (int i = 0; i < ns; i++) used += (sp[i].len + 15) & ~(size_t)15;
      CHECK(used == N.n_params, "%s: %zu padded floats used of %zu", an, used, N.n_params);
    }
}

typedef struct {
  double mean, std, within1; /* fraction within one expected std of 0 */
  float lo, hi;
} stats;

static stats stats_of(const float *x, size_t n, double sigma) {
  stats s = {0, 0, 0, x[0], x[0]};
  double sum = 0, sq = 0;
  size_t in1 = 0;
  for (size_t i = 0; i < n; i++) {
    sum += x[i];
    sq += (double)x[i] * x[i];
    in1 += fabs(x[i]) <= sigma;
    if (x[i] < s.lo) s.lo = x[i];
    if (x[i] > s.hi) s.hi = x[i];
  }
  s.mean = sum / n;
  s.std = sqrt(sq / n - s.mean * s.mean);
  s.within1 = (double)in1 / n;
  return s;
}

static int is_last_bn_name(const net *n, const char *name) {
  if (strncmp(name, "layer", 5) || strstr(name, "downsample")) return 0;
  const char *leaf = strrchr(name, '.');
  /* "layerL.i.bnK.weight" -> the module is the part before the leaf */
  char mod[NET_NAME_LEN];
  snprintf(mod, sizeof mod, "%.*s", (int)(leaf - name), name);
  const char *m = strrchr(mod, '.') + 1;
  return !strcmp(m, n->bottleneck ? "bn3" : "bn2");
}

static void check_init(const net *n, const state_buf *s, int zero_gamma) {
  const char *an = n->arch_name;
  int fc_in = (int)find(n, "fc.weight")->shape[1];
  int n_zero = 0;
  for (int i = 0; i < n->n_state; i++) {
    const state_entry *e = &n->state[i];
    size_t numel = state_torch_numel(e);
    const char *leaf = strrchr(e->name, '.') + 1;
    if (e->cls == ST_COUNT) {
      CHECK(s->counts[e->offset] == 0, "%s: %s = %lld", an, e->name, (long long)s->counts[e->offset]);
      continue;
    }
    if (e->cls == ST_RUNNING) {
      float want = strcmp(leaf, "running_var") ? 0.0f : 1.0f;
      int bad = 0;
      for (size_t k = 0; k < numel; k++) bad += s->running[e->offset + k] != want;
      CHECK(!bad, "%s: %s has %d values != %g", an, e->name, bad, want);
      continue;
    }
    float *t = xmalloc(numel * sizeof(float), "torch layout");
    state_to_torch(e, s->params + e->offset, t);
    if (e->conv) {
      /* kaiming_normal_(mode="fan_out", nonlinearity="relu") */
      double fan_out = (double)(e->shape[0] * e->shape[2] * e->shape[3]);
      double sigma = sqrt(2.0 / fan_out);
      stats st = stats_of(t, numel, sigma);
      double se_mean = sigma / sqrt((double)numel), se_std = 1.0 / sqrt(2.0 * numel);
      double se_in1 = sqrt(0.6827 * 0.3173 / numel);
      CHECK(fabs(st.mean) < 5 * se_mean, "%s: %s mean %.3g (std err %.2g)", an, e->name, st.mean, se_mean);
      CHECK(fabs(st.std / sigma - 1) < 5 * se_std, "%s: %s std %.5g, want %.5g = sqrt(2/fan_out)", an, e->name,
            st.std, sigma);
      /* normal, not uniform with the same std (57.7% within one std) */
      CHECK(fabs(st.within1 - 0.6827) < 5 * se_in1, "%s: %s %.4f within one std, normal: 0.6827", an, e->name,
            st.within1);
      /* stored padding channels are zero */
      int bad = 0;
      for (size_t o = 0; o < (size_t)(e->shape[0] * e->shape[2] * e->shape[3]); o++)
        for (int c = (int)e->shape[1]; c < e->in_pad; c++) bad += s->params[e->offset + o * e->in_pad + c] != 0.0f;
      CHECK(!bad, "%s: %s has %d non-zero padding values", an, e->name, bad);
    } else if (!strncmp(e->name, "fc.", 3)) {
      /* nn.Linear: weight kaiming_uniform_(a=sqrt(5)) = U(+-1/sqrt(fan_in)),
       * bias U(+-1/sqrt(fan_in)) */
      double b = 1.0 / sqrt((double)fc_in);
      stats st = stats_of(t, numel, b);
      CHECK(st.lo >= -b && st.hi <= b, "%s: %s range [%g, %g] outside +-%g", an, e->name, st.lo, st.hi, b);
      /* (n uniform draws all inside +-0.9 b: probability 0.95^n) */
      if (numel >= 500)
        CHECK(st.lo < -0.9 * b && st.hi > 0.9 * b, "%s: %s range [%g, %g] does not fill +-%g", an, e->name, st.lo, st.hi,
            b);
      double sigma = b / sqrt(3.0);
      CHECK(fabs(st.mean) < 5 * sigma / sqrt((double)numel), "%s: %s mean %g", an, e->name, st.mean);
      CHECK(fabs(st.std / sigma - 1) < 5 * 0.9 / sqrt((double)numel) + 1e-3, "%s: %s std %g, uniform: %g", an,
            e->name, st.std, sigma);
    } else {
      float want = 0.0f;
      if (!strcmp(leaf, "weight")) {
        want = zero_gamma && is_last_bn_name(n, e->name) ? 0.0f : 1.0f;
        n_zero += want == 0.0f;
      }
      int bad = 0;
      for (size_t k = 0; k < numel; k++) bad += t[k] != want;
      CHECK(!bad, "%s: %s has %d values != %g (zero_gamma %d)", an, e->name, bad, want, zero_gamma);
    }
    free(t);
  }
  /* zero gamma: exactly one BN per block */
  int blocks = 0;
  for (int i = 0; i < n->n_state; i++)
    blocks += !strncmp(n->state[i].name, "layer", 5) && strstr(n->state[i].name, ".conv1.weight");
  CHECK(n_zero == (zero_gamma ? blocks : 0), "%s: %d zero gammas for %d blocks (zero_gamma %d)", an, n_zero, blocks,
        zero_gamma);
}

static void test_init_stats(void) {
  state_buf s;
  if (build(&N, ARCH_RESNET50, 1000, 224, 3) == 0) { /* bottleneck blocks: bn3 zeroed */
    buf_alloc(&s, &N);
    net_init_params(&N, 1, 1, s.params, s.running, s.counts);
    check_init(&N, &s, 1);
    buf_free(&s);
  }
  if (build(&N, ARCH_RESNET18, 10, 64, 4) == 0) { /* basic blocks, padded conv1, small fc */
    buf_alloc(&s, &N);
    net_init_params(&N, 7, 0, s.params, s.running, s.counts);
    check_init(&N, &s, 0);
    net_init_params(&N, 7, 1, s.params, s.running, s.counts);
    check_init(&N, &s, 1);
    /* alignment gaps between tensors are zero too */
    char *owned = xcalloc(N.n_params, 1, "owned");
    for (int i = 0; i < N.n_state; i++)
      if (N.state[i].cls == ST_PARAM) memset(owned + N.state[i].offset, 1, N.state[i].numel);
    size_t bad = 0;
    for (size_t k = 0; k < N.n_params; k++) bad += !owned[k] && s.params[k] != 0.0f;
    CHECK(!bad, "%zu non-zero floats in the gaps between tensors", bad);
    free(owned);
    buf_free(&s);
  }
}

/* the same seed gives the same bits at any thread count; another seed and
 * another tensor give other values */
static void test_init_determinism(void) {
  if (build(&N, ARCH_RESNET18, 100, 64, 3)) return;
  state_buf a, b, c;
  buf_alloc(&a, &N);
  buf_alloc(&b, &N);
  buf_alloc(&c, &N);
  int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  net_init_params(&N, 42, 0, a.params, a.running, a.counts);
  omp_set_num_threads(2);
  net_init_params(&N, 42, 0, b.params, b.running, b.counts);
  omp_set_num_threads(7);
  net_init_params(&N, 43, 0, c.params, c.running, c.counts);
  omp_set_num_threads(saved);
  CHECK(!memcmp(a.params, b.params, N.n_params * sizeof(float)), "params differ between 1 and 2 threads");
  CHECK(!memcmp(a.running, b.running, N.n_running * sizeof(float)) && !memcmp(a.counts, b.counts, N.n_bn * 8),
        "running stats differ between 1 and 2 threads");
  for (int i = 0; i < N.n_state; i++) {
    const state_entry *e = &N.state[i];
    if (e->cls != ST_PARAM || !e->decay) continue; /* random tensors only */
    size_t same = 0;
    for (size_t k = 0; k < e->numel; k++) same += a.params[e->offset + k] == c.params[e->offset + k];
    size_t pad = e->conv ? (size_t)(e->in_pad - e->shape[1]) * e->numel / e->in_pad : 0;
    CHECK(same - pad < e->numel / 100 + 1, "%s: seeds 42 and 43 agree on %zu of %zu values", e->name, same, e->numel);
  }
  /* every tensor draws its own stream */
  const state_entry *x = find(&N, "layer1.0.conv2.weight"), *y = find(&N, "layer1.1.conv2.weight");
  CHECK(memcmp(a.params + x->offset, a.params + y->offset, x->numel * sizeof(float)), "two tensors drew equal values");
  /* the same values at any image size and input padding: init is in
   * torchvision's layout, padding added after */
  if (build(&N2, ARCH_RESNET18, 100, 224, 4) == 0) {
    state_buf d;
    buf_alloc(&d, &N2);
    net_init_params(&N2, 42, 0, d.params, d.running, d.counts);
    for (int i = 0; i < N.n_state; i++) {
      const state_entry *e = &N.state[i], *e2 = &N2.state[i];
      if (e->cls != ST_PARAM) continue;
      size_t k = state_torch_numel(e);
      float *t1 = xmalloc(k * 4, "t"), *t2 = xmalloc(k * 4, "t");
      state_to_torch(e, a.params + e->offset, t1);
      state_to_torch(e2, d.params + e2->offset, t2);
      CHECK(!memcmp(t1, t2, k * 4), "%s differs between in_c 3 and 4", e->name);
      free(t1);
      free(t2);
    }
    buf_free(&d);
  }
  buf_free(&a);
  buf_free(&b);
  buf_free(&c);
}

/* conv weights stored OHWI with I padded (in_c = 4): to/from torchvision's
 * OIHW is a lossless round trip and the padding channel is zero */
static void test_in_pad(void) {
  if (build(&N, ARCH_RESNET18, 10, 64, 4)) return;
  const state_entry *e = find(&N, "conv1.weight");
  CHECK(e && e->conv && e->in_pad == 4 && e->shape[1] == 3, "conv1 in_pad");
  if (!e || e->in_pad != 4) return;
  size_t tn = state_torch_numel(e);
  CHECK(tn == 64 * 3 * 7 * 7 && e->numel == 64 * 7 * 7 * 4, "conv1 sizes %zu %zu", tn, e->numel);
  float *torch_w = xmalloc(tn * 4, "t"), *stored = xmalloc(e->numel * 4, "s"), *back = xmalloc(tn * 4, "b");
  for (size_t k = 0; k < tn; k++) torch_w[k] = (float)k + 0.5f;
  for (size_t k = 0; k < e->numel; k++) stored[k] = NAN; /* from_torch must write the padding */
  state_from_torch(e, torch_w, stored);
  int bad_pad = 0, bad_val = 0;
  for (int o = 0; o < 64; o++)
    for (int h = 0; h < 7; h++)
      for (int w = 0; w < 7; w++) {
        const float *px = stored + ((size_t)(o * 7 + h) * 7 + w) * 4;
        bad_pad += px[3] != 0.0f;
        for (int i = 0; i < 3; i++) bad_val += px[i] != torch_w[((o * 3 + i) * 7 + h) * 7 + w];
      }
  CHECK(!bad_pad, "%d padding values not zero", bad_pad);
  CHECK(!bad_val, "%d values not at OHWI positions", bad_val);
  state_to_torch(e, stored, back);
  CHECK(!memcmp(back, torch_w, tn * 4), "OIHW -> OHWI(pad 4) -> OIHW is not the identity");
  free(torch_w);
  free(stored);
  free(back);
  /* through a file: saved from in_c 4, loaded into in_c 3, equal in
   * torchvision's layout; and back into in_c 4 with zero padding */
  char path[] = "/tmp/rn50_test_model_XXXXXX";
  int fd = mkstemp(path);
  CHECK(fd >= 0, "mkstemp");
  if (fd < 0) return;
  close(fd);
  state_buf a, b, c;
  buf_alloc(&a, &N);
  net_init_params(&N, 5, 0, a.params, a.running, a.counts);
  char err[512];
  CHECK(weights_save(&N, a.params, a.running, a.counts, path, NULL, err, sizeof err) == 0, "save: %s", err);
  if (build(&N2, ARCH_RESNET18, 10, 224, 3) == 0) {
    buf_alloc(&b, &N2);
    CHECK(weights_load(&N2, path, b.params, b.running, b.counts, err, sizeof err) == 0, "load in_c 3: %s", err);
    const state_entry *e3 = find(&N2, "conv1.weight");
    float *t4 = xmalloc(tn * 4, "t"), *t3 = xmalloc(tn * 4, "t");
    state_to_torch(e, a.params + e->offset, t4);
    state_to_torch(e3, b.params + e3->offset, t3);
    CHECK(!memcmp(t3, t4, tn * 4), "conv1 differs after in_c 4 -> file -> in_c 3");
    free(t3);
    free(t4);
    buf_free(&b);
  }
  buf_alloc(&c, &N);
  CHECK(weights_load(&N, path, c.params, c.running, c.counts, err, sizeof err) == 0, "load in_c 4: %s", err);
  int bad = 0;
  for (size_t k = 0; k < e->numel; k++) bad += c.params[e->offset + k] != a.params[e->offset + k];
  CHECK(!bad, "%d conv1 values (padding included) differ after in_c 4 -> file -> in_c 4", bad);
  buf_free(&c);
  buf_free(&a);
  unlink(path);
}

/* weights_detect_arch from tensor names and fc.weight's shape alone */
static void test_detect_arch(void) {
  static const int classes[] = {3, 1000, 17, 2, 1};
  static float zero[2048 * 1000];
  for (int a = 0; a <= ARCH_RESNET152; a++) {
    if (build(&N, (arch_id)a, classes[a], 64, 3)) continue;
    char path[] = "/tmp/rn50_test_model_XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) continue;
    close(fd);
    safet_writer *w = safet_writer_new();
    for (int i = 0; i < N.n_state; i++) {
      const state_entry *e = &N.state[i];
      if (!strcmp(e->name, "fc.weight")) safet_writer_add_nocopy(w, e->name, SAFET_F32, 2, e->shape, zero);
      else safet_writer_add_nocopy(w, e->name, SAFET_F32, 0, NULL, zero); /* names are enough */
    }
    char err[512];
    CHECK(safet_writer_save(w, path, err, sizeof err) == 0, "%s", err);
    safet_writer_free(w);
    safet_file f;
    if (safet_open(&f, path, err, sizeof err) == 0) {
      arch_id got = ARCH_RESNET50;
      int cl = 0;
      CHECK(weights_detect_arch(&f, &got, &cl, err, sizeof err) == 0, "%s: %s", arch_names[a], err);
      CHECK(got == (arch_id)a && cl == classes[a], "%s/%d detected as %s/%d", arch_names[a], classes[a],
            arch_names[got], cl);
      safet_close(&f);
    } else {
      CHECK(0, "%s", err);
    }
    unlink(path);
  }
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--dump-state")) return dump_state(argv[2], argv[3]);
  RUN(test_counts);
  RUN(test_state_names);
  RUN(test_layout);
  RUN(test_init_stats);
  RUN(test_init_determinism);
  RUN(test_in_pad);
  RUN(test_detect_arch);
  return harness_finish();
}
