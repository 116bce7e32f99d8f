/* weights.c: torchvision state_dict <-> rn50's flat arrays, via safetensors. */
#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

void weights_add(safet_writer *w, const net *n, const char *prefix, const float *params, const float *running,
                 const int64_t *counts) {
  char name[160];
  for (int i = 0; i < n->n_state; i++) {
    const state_entry *e = &n->state[i];
    snprintf(name, sizeof name, "%s%s", prefix, e->name);
    if (e->cls == ST_COUNT) {
      if (counts) safet_writer_add(w, name, SAFET_I64, 0, NULL, &counts[e->offset]);
      continue;
    }
    const float *src = e->cls == ST_PARAM ? params : running;
    if (!src) continue;
    size_t numel = state_torch_numel(e);
    float *tmp = xmalloc(numel * sizeof(float), "weights export");
    state_to_torch(e, src + e->offset, tmp);
    safet_writer_add(w, name, SAFET_F32, e->ndim, e->shape, tmp);
    free(tmp);
  }
}

int weights_save(const net *n, const float *params, const float *running, const int64_t *counts, const char *path,
                 const char *const *meta, char *err, size_t errlen) {
  safet_writer *w = safet_writer_new();
  weights_add(w, n, "", params, running, counts);
  char classes[32];
  snprintf(classes, sizeof classes, "%d", n->classes);
  safet_writer_meta(w, "format", "pt");
  safet_writer_meta(w, "rn50.arch", n->arch_name);
  safet_writer_meta(w, "rn50.classes", classes);
  for (int i = 0; meta && meta[i] && meta[i + 1]; i += 2) safet_writer_meta(w, meta[i], meta[i + 1]);
  int rc = safet_writer_save(w, path, err, errlen);
  safet_writer_free(w);
  return rc;
}

static int is_float(safet_dtype t) { return t == SAFET_F32 || t == SAFET_F16 || t == SAFET_BF16 || t == SAFET_F64; }

static void shape_str(char *out, size_t len, int ndim, const int64_t *shape) {
  size_t o = (size_t)snprintf(out, len, "[");
  for (int i = 0; i < ndim && o < len; i++) o += (size_t)snprintf(out + o, len - o, "%s%lld", i ? ", " : "", (long long)shape[i]);
  if (o < len) snprintf(out + o, len - o, "]");
}

int weights_read(const net *n, const safet_file *f, const char *prefix, int strict, float *params, float *running,
                 int64_t *counts, char *err, size_t errlen) {
  char name[160];
  size_t plen = strlen(prefix);
  for (int i = 0; i < n->n_state; i++) {
    const state_entry *e = &n->state[i];
    if ((e->cls == ST_PARAM && !params) || (e->cls == ST_RUNNING && !running) || (e->cls == ST_COUNT && !counts))
      continue;
    snprintf(name, sizeof name, "%s%s", prefix, e->name);
    const safet_tensor *t = safet_find(f, name);
    if (!t) {
      snprintf(err, errlen, "%s: tensor '%s' is missing (this file does not hold a %s with %d classes)", f->path, name,
               n->arch_name, n->classes);
      return -1;
    }
    int same = t->ndim == e->ndim;
    for (int d = 0; same && d < e->ndim; d++) same = t->shape[d] == e->shape[d];
    if (!same) {
      char want[96], got[96];
      shape_str(want, sizeof want, e->ndim, e->shape);
      shape_str(got, sizeof got, t->ndim, t->shape);
      snprintf(err, errlen, "%s: tensor '%s' has shape %s, %s needs %s", f->path, name, got, n->arch_name, want);
      return -1;
    }
    if (e->cls == ST_COUNT) {
      if (safet_read_i64(f, t, &counts[e->offset]) != 0) {
        snprintf(err, errlen, "%s: tensor '%s' must be an integer (is %s)", f->path, name, safet_dtype_name(t->dtype));
        return -1;
      }
      continue;
    }
    if (!is_float(t->dtype)) {
      snprintf(err, errlen, "%s: tensor '%s' must be floating point (is %s)", f->path, name, safet_dtype_name(t->dtype));
      return -1;
    }
    size_t numel = state_torch_numel(e);
    float *tmp = xmalloc(numel * sizeof(float), "weights import");
    safet_read_f32(f, t, tmp);
    state_from_torch(e, tmp, (e->cls == ST_PARAM ? params : running) + e->offset);
    free(tmp);
  }
  if (strict)
    for (int i = 0; i < f->n; i++) {
      const char *tn = f->tensors[i].name;
      if (strncmp(tn, prefix, plen)) continue;
      if (net_find_state(n, tn + plen) < 0) {
        snprintf(err, errlen, "%s: unexpected tensor '%s' (not part of %s with %d classes)", f->path, tn, n->arch_name,
                 n->classes);
        return -1;
      }
    }
  return 0;
}

int weights_load(const net *n, const char *path, float *params, float *running, int64_t *counts, char *err,
                 size_t errlen) {
  safet_file f;
  if (safet_open(&f, path, err, errlen) != 0) return -1;
  int rc = safet_verify_checksum(&f, err, errlen);
  if (rc == 0) rc = weights_read(n, &f, "", 1, params, running, counts, err, errlen);
  safet_close(&f);
  return rc;
}

int weights_detect_arch(const safet_file *f, arch_id *arch, int *classes, char *err, size_t errlen) {
  const safet_tensor *fc = safet_find(f, "fc.weight");
  if (!fc || fc->ndim != 2) {
    snprintf(err, errlen, "%s: no 'fc.weight' [classes, features] tensor: not a torchvision ResNet state_dict", f->path);
    return -1;
  }
  int blocks[4] = {0, 0, 0, 0};
  char name[64];
  for (int L = 0; L < 4; L++)
    for (;;) {
      snprintf(name, sizeof name, "layer%d.%d.conv1.weight", L + 1, blocks[L]);
      if (!safet_find(f, name)) break;
      blocks[L]++;
    }
  int bottleneck = safet_find(f, "layer1.0.conv3.weight") != NULL;
  static const int table[5][4] = {{2, 2, 2, 2}, {3, 4, 6, 3}, {3, 4, 6, 3}, {3, 4, 23, 3}, {3, 8, 36, 3}};
  for (int a = 0; a < 5; a++) {
    if ((a >= ARCH_RESNET50) != bottleneck) continue;
    if (!memcmp(blocks, table[a], sizeof blocks)) {
      *arch = (arch_id)a;
      *classes = (int)fc->shape[0];
      return 0;
    }
  }
  snprintf(err, errlen, "%s: blocks per layer %d/%d/%d/%d (%s) match no resnet18/34/50/101/152", f->path, blocks[0],
           blocks[1], blocks[2], blocks[3], bottleneck ? "bottleneck" : "basic");
  return -1;
}
