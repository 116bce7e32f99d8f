/* net.c: builds the torchvision ResNet family (v1.5: stride on the 3x3 conv
 * of the bottleneck) as an op list and a state table, and initialises and
 * converts its parameters. */
#include "net.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../core/rng.h"
#include "../core/util.h"

const char *const arch_names[] = {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152", NULL};

static const int arch_blocks[5][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 23, 3}, {3, 8, 36, 3}};

int arch_from_name(const char *name, arch_id *out) {
  for (int i = 0; arch_names[i]; i++)
    if (!strcmp(name, arch_names[i])) {
      *out = (arch_id)i;
      return 0;
    }
  return -1;
}

typedef struct {
  net *n;
  int overflow;
} builder;

static int add_act(builder *b, int h, int w, int c) {
  net *n = b->n;
  if (n->n_acts >= NET_MAX_ACTS) {
    b->overflow = 1;
    return 0;
  }
  n->acts[n->n_acts] = (act_shape){h, w, c};
  return n->n_acts++;
}

static int add_state(builder *b, const char *prefix, const char *suffix, state_class cls, int ndim,
                     const int64_t *shape) {
  net *n = b->n;
  if (n->n_state >= NET_MAX_STATE) {
    b->overflow = 1;
    return 0;
  }
  state_entry *e = &n->state[n->n_state];
  memset(e, 0, sizeof *e);
  snprintf(e->name, sizeof e->name, "%s%s%s", prefix, *prefix ? "." : "", suffix);
  e->cls = cls;
  e->ndim = ndim;
  e->numel = 1;
  for (int i = 0; i < ndim; i++) {
    e->shape[i] = shape[i];
    e->numel *= (size_t)shape[i];
  }
  return n->n_state++;
}

static net_op *add_op(builder *b, op_kind kind, const char *name) {
  net *n = b->n;
  if (n->n_ops >= NET_MAX_OPS) {
    b->overflow = 1;
    return &n->ops[0];
  }
  net_op *op = &n->ops[n->n_ops++];
  memset(op, 0, sizeof *op);
  op->kind = kind;
  op->r = -1;
  op->w = op->b = op->rmean = op->rvar = op->count = op->bn = -1;
  snprintf(op->name, sizeof op->name, "%s", name);
  return op;
}

/* conv without bias; returns its output activation */
static int conv(builder *b, const char *name, int x, int cin_stored, int cin, int cout, int k, int stride,
                int pad) {
  const act_shape *s = &b->n->acts[x];
  int oh = (s->h + 2 * pad - k) / stride + 1;
  int ow = (s->w + 2 * pad - k) / stride + 1;
  int y = add_act(b, oh, ow, cout);
  int64_t shape[4] = {cout, cin, k, k};
  int w = add_state(b, name, "weight", ST_PARAM, 4, shape);
  state_entry *e = &b->n->state[w];
  e->conv = 1;
  e->in_pad = cin_stored;
  e->numel = (size_t)cout * k * k * cin_stored;
  e->decay = 1;
  net_op *op = add_op(b, OP_CONV, name);
  op->x = x;
  op->y = y;
  op->w = w;
  op->k = k;
  op->stride = stride;
  op->pad = pad;
  return y;
}

static int batchnorm(builder *b, const char *name, int x, int r, int relu) {
  net *n = b->n;
  int c = n->acts[x].c;
  int y = add_act(b, n->acts[x].h, n->acts[x].w, c);
  int64_t shape[1] = {c};
  int w = add_state(b, name, "weight", ST_PARAM, 1, shape);
  int bb = add_state(b, name, "bias", ST_PARAM, 1, shape);
  int rm = add_state(b, name, "running_mean", ST_RUNNING, 1, shape);
  int rv = add_state(b, name, "running_var", ST_RUNNING, 1, shape);
  int cnt = add_state(b, name, "num_batches_tracked", ST_COUNT, 0, shape);
  net_op *op = add_op(b, OP_BN, name);
  op->x = x;
  op->y = y;
  op->r = r;
  op->relu = relu;
  op->w = w;
  op->b = bb;
  op->rmean = rm;
  op->rvar = rv;
  op->count = cnt;
  op->bn = n->n_bn;
  if (n->n_bn < NET_MAX_OPS) {
    n->bn_channels[n->n_bn] = c;
    n->bn_offset[n->n_bn] = n->n_bn_channels;
    n->n_bn_channels += (size_t)c;
    n->n_bn++;
  } else {
    b->overflow = 1;
  }
  return y;
}

/* one residual block; returns its output */
static int block(builder *b, const char *name, int x, int inplanes, int planes, int stride) {
  char nm[NET_NAME_LEN], nm2[NET_NAME_LEN];
  int bottleneck = b->n->bottleneck;
  int expansion = bottleneck ? 4 : 1;
  int out_c = planes * expansion;
  int t;
  if (bottleneck) {
    snprintf(nm, sizeof nm, "%s.conv1", name);
    t = conv(b, nm, x, inplanes, inplanes, planes, 1, 1, 0);
    snprintf(nm, sizeof nm, "%s.bn1", name);
    t = batchnorm(b, nm, t, -1, 1);
    snprintf(nm, sizeof nm, "%s.conv2", name);
    t = conv(b, nm, t, planes, planes, planes, 3, stride, 1);
    snprintf(nm, sizeof nm, "%s.bn2", name);
    t = batchnorm(b, nm, t, -1, 1);
    snprintf(nm, sizeof nm, "%s.conv3", name);
    t = conv(b, nm, t, planes, planes, out_c, 1, 1, 0);
  } else {
    snprintf(nm, sizeof nm, "%s.conv1", name);
    t = conv(b, nm, x, inplanes, inplanes, planes, 3, stride, 1);
    snprintf(nm, sizeof nm, "%s.bn1", name);
    t = batchnorm(b, nm, t, -1, 1);
    snprintf(nm, sizeof nm, "%s.conv2", name);
    t = conv(b, nm, t, planes, planes, planes, 3, 1, 1);
  }
  int identity = x;
  if (stride != 1 || inplanes != out_c) {
    snprintf(nm, sizeof nm, "%s.downsample.0", name);
    int d = conv(b, nm, x, inplanes, inplanes, out_c, 1, stride, 0);
    snprintf(nm, sizeof nm, "%s.downsample.1", name);
    identity = batchnorm(b, nm, d, -1, 0);
  }
  snprintf(nm2, sizeof nm2, "%s.bn%d", name, bottleneck ? 3 : 2);
  /* the last BN's state must come before the downsample's in the state
   * table (torchvision order); fix the order up after the fact */
  return batchnorm(b, nm2, t, identity, 1);
}

static int state_cmp_order(const net *n, const char *a, const char *b);

int net_build(net *n, arch_id arch, int classes, int image_size, int in_c, char *err, size_t errlen) {
  memset(n, 0, sizeof *n);
  if ((int)arch < 0 || arch > ARCH_RESNET152) {
    snprintf(err, errlen, "unknown arch");
    return -1;
  }
  if (classes < 1 || classes > 1000000) {
    snprintf(err, errlen, "--classes must be between 1 and 1000000 (got %d)", classes);
    return -1;
  }
  if (image_size < 32 || image_size > 4096) {
    snprintf(err, errlen, "--image-size must be between 32 and 4096 pixels (got %d): ResNet downsamples by 32",
             image_size);
    return -1;
  }
  if (in_c < 3 || in_c > 16) {
    snprintf(err, errlen, "input channels must be 3..16 (got %d)", in_c);
    return -1;
  }
  n->arch = arch;
  snprintf(n->arch_name, sizeof n->arch_name, "%s", arch_names[arch]);
  n->classes = classes;
  n->image_size = image_size;
  n->in_c = in_c;
  n->bottleneck = arch >= ARCH_RESNET50;
  builder b = {n, 0};
  int x = add_act(&b, image_size, image_size, in_c);
  int t = conv(&b, "conv1", x, in_c, 3, 64, 7, 2, 3);
  t = batchnorm(&b, "bn1", t, -1, 1);
  const act_shape *s = &n->acts[t];
  int ph = (s->h + 2 - 3) / 2 + 1, pw = (s->w + 2 - 3) / 2 + 1;
  int p = add_act(&b, ph, pw, 64);
  net_op *mp = add_op(&b, OP_MAXPOOL, "maxpool");
  mp->x = t;
  mp->y = p;
  mp->k = 3;
  mp->stride = 2;
  mp->pad = 1;
  t = p;
  int inplanes = 64;
  int expansion = n->bottleneck ? 4 : 1;
  for (int L = 0; L < 4; L++) {
    int planes = 64 << L;
    for (int i = 0; i < arch_blocks[arch][L]; i++) {
      char name[NET_NAME_LEN];
      snprintf(name, sizeof name, "layer%d.%d", L + 1, i);
      t = block(&b, name, t, inplanes, planes, (i == 0 && L > 0) ? 2 : 1);
      inplanes = planes * expansion;
    }
  }
  int f = add_act(&b, 1, 1, inplanes);
  net_op *ap = add_op(&b, OP_AVGPOOL, "avgpool");
  ap->x = t;
  ap->y = f;
  n->features = f;
  int lg = add_act(&b, 1, 1, classes);
  int64_t wshape[2] = {classes, inplanes}, bshape[1] = {classes};
  net_op *fc = add_op(&b, OP_FC, "fc");
  fc->x = f;
  fc->y = lg;
  fc->w = add_state(&b, "fc", "weight", ST_PARAM, 2, wshape);
  n->state[fc->w].decay = 1;
  fc->b = add_state(&b, "fc", "bias", ST_PARAM, 1, bshape);
  n->logits = lg;
  if (b.overflow) {
    snprintf(err, errlen, "network too large for rn50's tables");
    return -1;
  }
  /* torchvision's state_dict order: within a block, downsample after the
   * main path's BNs. A stable insertion sort by module order does it. */
  for (int i = 1; i < n->n_state; i++) {
    state_entry e = n->state[i];
    int j = i - 1;
    while (j >= 0 && state_cmp_order(n, n->state[j].name, e.name) > 0) {
      n->state[j + 1] = n->state[j];
      j--;
    }
    n->state[j + 1] = e;
  }
  /* re-point ops at the moved state entries */
  for (int i = 0; i < n->n_ops; i++) {
    net_op *op = &n->ops[i];
    int *ids[] = {&op->w, &op->b, &op->rmean, &op->rvar, &op->count};
    static const char *const suffix[] = {"weight", "bias", "running_mean", "running_var", "num_batches_tracked"};
    for (int k = 0; k < 5; k++) {
      if (*ids[k] < 0) continue;
      char nm[NET_NAME_LEN * 2];
      snprintf(nm, sizeof nm, "%s.%s", op->name, suffix[k]);
      *ids[k] = net_find_state(n, nm);
    }
  }
  /* flat offsets: decayed weights first, then BN parameters and biases;
   * each tensor 16-float aligned */
  size_t off = 0;
  for (int pass = 0; pass < 2; pass++) {
    for (int i = 0; i < n->n_state; i++) {
      state_entry *e = &n->state[i];
      if (e->cls != ST_PARAM || e->decay != (pass == 0)) continue;
      e->offset = off;
      off += (e->numel + 15) & ~(size_t)15;
    }
    if (pass == 0) n->n_decay = off;
  }
  n->n_params = off;
  size_t roff = 0;
  for (int i = 0; i < n->n_state; i++) {
    state_entry *e = &n->state[i];
    if (e->cls == ST_RUNNING) {
      e->offset = roff;
      roff += e->numel;
    }
  }
  n->n_running = roff;
  /* counters are indexed by BN layer (the executor counts op->bn), which is
   * not the state order: a block's downsample BN runs before its last BN */
  for (int i = 0; i < n->n_ops; i++)
    if (n->ops[i].kind == OP_BN) n->state[n->ops[i].count].offset = (size_t)n->ops[i].bn;
  return 0;
}

/* Order of two state names as torchvision's modules are registered: within
 * a block "conv1 bn1 conv2 bn2 conv3 bn3 downsample"; the ops list already
 * has everything else in order, so only a bn-after-downsample pair swaps. */
static int state_cmp_order(const net *n, const char *a, const char *b) {
  (void)n;
  const char *da = strstr(a, ".downsample."), *db = strstr(b, ".downsample.");
  if (da && !db) {
    size_t pa = (size_t)(da - a);
    /* same block prefix and b is a main-path bn of that block */
    if (!strncmp(a, b, pa) && b[pa] == '.' && !strncmp(b + pa + 1, "bn", 2)) return 1;
  }
  return 0;
}

size_t net_param_count(const net *n) {
  size_t total = 0;
  for (int i = 0; i < n->n_state; i++)
    if (n->state[i].cls == ST_PARAM) total += state_torch_numel(&n->state[i]);
  return total;
}

int net_find_state(const net *n, const char *name) {
  for (int i = 0; i < n->n_state; i++)
    if (!strcmp(n->state[i].name, name)) return i;
  return -1;
}

size_t state_torch_numel(const state_entry *e) {
  size_t k = 1;
  for (int i = 0; i < e->ndim; i++) k *= (size_t)e->shape[i];
  return k;
}

void state_to_torch(const state_entry *e, const float *stored, float *out) {
  if (!e->conv) {
    memcpy(out, stored, state_torch_numel(e) * sizeof(float));
    return;
  }
  int64_t O = e->shape[0], I = e->shape[1], H = e->shape[2], W = e->shape[3], P = e->in_pad;
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) out[((o * I + i) * H + h) * W + w] = stored[((o * H + h) * W + w) * P + i];
}

void state_from_torch(const state_entry *e, const float *in, float *stored) {
  if (!e->conv) {
    memcpy(stored, in, state_torch_numel(e) * sizeof(float));
    return;
  }
  int64_t O = e->shape[0], I = e->shape[1], H = e->shape[2], W = e->shape[3], P = e->in_pad;
  memset(stored, 0, e->numel * sizeof(float));
  for (int64_t o = 0; o < O; o++)
    for (int64_t i = 0; i < I; i++)
      for (int64_t h = 0; h < H; h++)
        for (int64_t w = 0; w < W; w++) stored[((o * H + h) * W + w) * P + i] = in[((o * I + i) * H + h) * W + w];
}

static int is_last_bn(const net *n, const char *name) {
  /* "layerL.i.bn3" (bottleneck) or "layerL.i.bn2" (basic) */
  const char *dot = strrchr(name, '.');
  if (!dot || strncmp(name, "layer", 5) || strstr(name, "downsample")) return 0;
  return !strcmp(dot + 1, n->bottleneck ? "bn3" : "bn2");
}

void net_init_params(const net *n, uint64_t seed, int zero_gamma, float *params, float *running, int64_t *counts) {
  memset(params, 0, n->n_params * sizeof(float));
  for (int i = 0; i < n->n_state; i++) {
    const state_entry *e = &n->state[i];
    uint64_t stream = hash64(e->name, strlen(e->name), 0);
    size_t numel = state_torch_numel(e);
    if (e->cls == ST_COUNT) {
      counts[e->offset] = 0;
      continue;
    }
    if (e->cls == ST_RUNNING) {
      int is_var = strstr(e->name, "running_var") != NULL;
      for (size_t k = 0; k < numel; k++) running[e->offset + k] = is_var ? 1.0f : 0.0f;
      continue;
    }
    const char *leaf = strrchr(e->name, '.') + 1;
    float *dst = params + e->offset;
    if (e->conv) {
      float *tmp = xmalloc(numel * sizeof(float), "init");
      double fan_out = (double)e->shape[0] * (double)e->shape[2] * (double)e->shape[3];
      double std = sqrt(2.0 / fan_out);
      /* each draw is a pure function of (seed, tensor, index): threads
       * change the speed, never the values */
#pragma omp parallel for schedule(static) if (numel >= 65536)
      for (size_t k = 0; k < numel; k++) tmp[k] = (float)(std * rng_normal(seed, stream, k));
      state_from_torch(e, tmp, dst);
      free(tmp);
    } else if (!strncmp(e->name, "fc.", 3)) {
      int64_t fan_in = n->state[net_find_state(n, "fc.weight")].shape[1];
      double bound = 1.0 / sqrt((double)fan_in);
#pragma omp parallel for schedule(static) if (numel >= 65536)
      for (size_t k = 0; k < numel; k++) dst[k] = (float)((2.0 * rng_uniform(seed, stream, k) - 1.0) * bound);
    } else if (!strcmp(leaf, "weight")) { /* BN gamma */
      char mod[NET_NAME_LEN];
      snprintf(mod, sizeof mod, "%.*s", (int)(leaf - 1 - e->name), e->name);
      float g = (zero_gamma && is_last_bn(n, mod)) ? 0.0f : 1.0f;
      for (size_t k = 0; k < numel; k++) dst[k] = g;
    } else { /* BN beta */
      for (size_t k = 0; k < numel; k++) dst[k] = 0.0f;
    }
  }
}
