/* safetensors.c: the safetensors reader (validation of every format rule),
 * dtype conversions and the checksum check. The writer is in
 * safetensors_write.c. */
#include "safetensors.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/json.h"
#include "../core/util.h"

static const struct {
  const char *name;
  size_t size;
} dtype_info[] = {
    [SAFET_F32] = {"F32", 4}, [SAFET_F16] = {"F16", 2}, [SAFET_BF16] = {"BF16", 2}, [SAFET_F64] = {"F64", 8},
    [SAFET_I64] = {"I64", 8}, [SAFET_I32] = {"I32", 4}, [SAFET_I16] = {"I16", 2},   [SAFET_I8] = {"I8", 1},
    [SAFET_U8] = {"U8", 1},   [SAFET_BOOL] = {"BOOL", 1},
};

size_t safet_dtype_size(safet_dtype dt) {
  return (unsigned)dt < ARRAY_LEN(dtype_info) ? dtype_info[dt].size : 0;
}

const char *safet_dtype_name(safet_dtype dt) {
  return (unsigned)dt < ARRAY_LEN(dtype_info) ? dtype_info[dt].name : "?";
}

int safet_dtype_parse(const char *name, safet_dtype *out) {
  for (size_t i = 0; i < ARRAY_LEN(dtype_info); i++)
    if (!strcmp(name, dtype_info[i].name)) {
      *out = (safet_dtype)i;
      return 0;
    }
  return -1;
}

static void seterr(char *err, size_t errlen, const char *path, const char *fmt, ...) RN50_PRINTF(4, 5);
static void seterr(char *err, size_t errlen, const char *path, const char *fmt, ...) {
  if (!err || !errlen) return;
  int n = snprintf(err, errlen, "%s: ", path);
  if (n < 0 || (size_t)n >= errlen) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
  va_end(ap);
}

/* A JSON number that is a plain integer ("123", "-4"); 0, or -1 when it is
 * not an integer or does not fit. */
static int json_int(const json *j, int64_t *out) {
  if (!j || j->type != JSON_NUMBER || !j->str) return -1;
  const char *s = j->str;
  const char *d = s + (*s == '-');
  if (!*d) return -1;
  for (const char *p = d; *p; p++)
    if (*p < '0' || *p > '9') return -1;
  errno = 0;
  char *end;
  long long v = strtoll(s, &end, 10);
  if (errno || *end) return -1;
  *out = v;
  return 0;
}

static uint64_t le64(const unsigned char *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

void safet_close(safet_file *f) {
  if (!f) return;
  for (int i = 0; i < f->n; i++) free(f->tensors[i].name);
  for (int i = 0; i < f->n_meta; i++) {
    free(f->meta_keys[i]);
    free(f->meta_vals[i]);
  }
  free(f->tensors);
  free(f->meta_keys);
  free(f->meta_vals);
  free(f->buf);
  free(f->path);
  memset(f, 0, sizeof *f);
}

/* Parses one tensor entry into t (name already set). */
static int parse_tensor(const safet_file *f, const json *v, safet_tensor *t, char *err, size_t errlen) {
  const char *p = f->path, *nm = t->name;
  if (v->type != JSON_OBJECT) {
    seterr(err, errlen, p, "tensor '%s': entry is not a JSON object", nm);
    return -1;
  }
  const json *jd = json_get(v, "dtype"), *js = json_get(v, "shape"), *jo = json_get(v, "data_offsets");
  if (!jd || jd->type != JSON_STRING) {
    seterr(err, errlen, p, "tensor '%s': missing or non-string \"dtype\"", nm);
    return -1;
  }
  if (safet_dtype_parse(jd->str, &t->dtype) != 0) {
    seterr(err, errlen, p, "tensor '%s': unsupported dtype \"%.32s\" (rn50 reads F32 F16 BF16 F64 I64 I32 I16 I8 U8 BOOL)", nm, jd->str);
    return -1;
  }
  if (!js || js->type != JSON_ARRAY) {
    seterr(err, errlen, p, "tensor '%s': missing or non-array \"shape\"", nm);
    return -1;
  }
  if (js->count > SAFET_MAX_DIMS) {
    seterr(err, errlen, p, "tensor '%s': %d dimensions (at most %d supported)", nm, js->count, SAFET_MAX_DIMS);
    return -1;
  }
  t->ndim = js->count;
  uint64_t numel = 1;
  int overflow = 0;
  for (int i = 0; i < t->ndim; i++) {
    int64_t d;
    if (json_int(json_at(js, i), &d) != 0) {
      seterr(err, errlen, p, "tensor '%s': shape[%d] is not an integer", nm, i);
      return -1;
    }
    if (d < 0) {
      seterr(err, errlen, p, "tensor '%s': negative dimension %lld in shape[%d]", nm, (long long)d, i);
      return -1;
    }
    t->shape[i] = d;
    if (d && numel > UINT64_MAX / (uint64_t)d) overflow = 1;
    else numel *= (uint64_t)d;
  }
  size_t es = safet_dtype_size(t->dtype);
  if (overflow || numel > (uint64_t)SIZE_MAX / es) {
    seterr(err, errlen, p, "tensor '%s': shape too large", nm);
    return -1;
  }
  if (!jo || jo->type != JSON_ARRAY || jo->count != 2) {
    seterr(err, errlen, p, "tensor '%s': \"data_offsets\" must be an array [begin, end]", nm);
    return -1;
  }
  int64_t b, e;
  if (json_int(json_at(jo, 0), &b) != 0 || json_int(json_at(jo, 1), &e) != 0 || b < 0 || e < 0) {
    seterr(err, errlen, p, "tensor '%s': data_offsets are not non-negative integers", nm);
    return -1;
  }
  if (e < b) {
    seterr(err, errlen, p, "tensor '%s': data_offsets [%lld, %lld] end before they begin", nm, (long long)b, (long long)e);
    return -1;
  }
  t->offset = (size_t)b;
  t->nbytes = (size_t)(e - b);
  if ((uint64_t)t->nbytes != numel * es) {
    seterr(err, errlen, p, "tensor '%s': shape and dtype %s need %llu bytes but data_offsets [%lld, %lld] span %zu", nm,
           safet_dtype_name(t->dtype), (unsigned long long)(numel * es), (long long)b, (long long)e, t->nbytes);
    return -1;
  }
  if ((uint64_t)e > f->data_len) {
    seterr(err, errlen, p, "tensor '%s': data_offsets [%lld, %lld] run past the end of the data section (%zu bytes): file truncated?",
           nm, (long long)b, (long long)e, f->data_len);
    return -1;
  }
  return 0;
}

static int parse_metadata(safet_file *f, const json *v, char *err, size_t errlen) {
  if (v->type != JSON_OBJECT) {
    seterr(err, errlen, f->path, "__metadata__ is not a JSON object");
    return -1;
  }
  f->meta_keys = xcalloc((size_t)v->count, sizeof(char *), "safetensors metadata");
  f->meta_vals = xcalloc((size_t)v->count, sizeof(char *), "safetensors metadata");
  for (const json *c = v->child; c; c = c->next) {
    if (c->type != JSON_STRING) {
      seterr(err, errlen, f->path, "__metadata__ value of \"%.64s\" is not a string", c->key);
      return -1;
    }
    if (safet_meta(f, c->key)) {
      seterr(err, errlen, f->path, "duplicate __metadata__ key \"%.64s\"", c->key);
      return -1;
    }
    f->meta_keys[f->n_meta] = xstrdup(c->key);
    f->meta_vals[f->n_meta] = xstrdup(c->str);
    f->n_meta++;
  }
  return 0;
}

static int cmp_name(const void *a, const void *b, void *base) {
  const safet_tensor *t = base;
  return strcmp(t[*(const int *)a].name, t[*(const int *)b].name);
}
static int cmp_offset(const void *a, const void *b, void *base) {
  const safet_tensor *x = (const safet_tensor *)base + *(const int *)a, *y = (const safet_tensor *)base + *(const int *)b;
  if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
  if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
  return 0;
}

/* Names unique; tensors tile the data section exactly. */
static int check_layout(const safet_file *f, char *err, size_t errlen) {
  if (f->n == 0) {
    if (f->data_len) seterr(err, errlen, f->path, "no tensors but a data section of %zu bytes", f->data_len);
    return f->data_len ? -1 : 0;
  }
  int *idx = xmalloc((size_t)f->n * sizeof(int), "safetensors index");
  for (int i = 0; i < f->n; i++) idx[i] = i;
  int rc = 0;
  qsort_r(idx, (size_t)f->n, sizeof(int), cmp_name, f->tensors);
  for (int i = 1; i < f->n && !rc; i++)
    if (!strcmp(f->tensors[idx[i]].name, f->tensors[idx[i - 1]].name)) {
      seterr(err, errlen, f->path, "duplicate tensor name '%s'", f->tensors[idx[i]].name);
      rc = -1;
    }
  if (!rc) {
    qsort_r(idx, (size_t)f->n, sizeof(int), cmp_offset, f->tensors);
    size_t expect = 0;
    for (int i = 0; i < f->n && !rc; i++) {
      const safet_tensor *t = &f->tensors[idx[i]];
      if (t->offset < expect) {
        seterr(err, errlen, f->path, "tensor '%s': data_offsets [%zu, %zu] overlap tensor '%s'", t->name, t->offset,
               t->offset + t->nbytes, f->tensors[idx[i - 1]].name);
        rc = -1;
      } else if (t->offset > expect) {
        seterr(err, errlen, f->path, "tensor '%s': hole in the data section (bytes %zu..%zu belong to no tensor)", t->name,
               expect, t->offset);
        rc = -1;
      }
      expect = t->offset + t->nbytes;
    }
    if (!rc && expect != f->data_len) {
      seterr(err, errlen, f->path, "data section has %zu bytes but the tensors cover %zu (trailing bytes)", f->data_len, expect);
      rc = -1;
    }
  }
  free(idx);
  return rc;
}

/* Validates f->buf (already owned by f) and fills the tables. */
static int parse_buffer(safet_file *f, char *err, size_t errlen) {
  const char *p = f->path;
  if (f->buf_len < 8) {
    seterr(err, errlen, p, "file too short (%zu bytes) for a safetensors header", f->buf_len);
    return -1;
  }
  uint64_t n = le64(f->buf);
  if (n > SAFET_MAX_HEADER) {
    seterr(err, errlen, p, "header length %llu exceeds the %u-byte limit: not a safetensors file?", (unsigned long long)n,
           SAFET_MAX_HEADER);
    return -1;
  }
  if (n > f->buf_len - 8) {
    seterr(err, errlen, p, "truncated: header length %llu but only %zu bytes follow", (unsigned long long)n, f->buf_len - 8);
    return -1;
  }
  const char *hdr = (const char *)f->buf + 8;
  if (n < 2 || hdr[0] != '{') {
    seterr(err, errlen, p, "header does not start with '{': not a safetensors file?");
    return -1;
  }
  f->data = f->buf + 8 + n;
  f->data_len = f->buf_len - 8 - (size_t)n;
  char jerr[160];
  json *root = json_parse(hdr, (size_t)n, jerr, sizeof jerr);
  if (!root) {
    seterr(err, errlen, p, "bad header: %s", jerr);
    return -1;
  }
  if (root->type != JSON_OBJECT) {
    json_free(root);
    seterr(err, errlen, p, "header is not a JSON object");
    return -1;
  }
  int rc = 0;
  f->tensors = xcalloc((size_t)root->count, sizeof(safet_tensor), "safetensors tensors");
  int seen_meta = 0;
  for (const json *c = root->child; c && !rc; c = c->next) {
    if (!strcmp(c->key, "__metadata__")) {
      if (seen_meta++) {
        seterr(err, errlen, p, "duplicate __metadata__");
        rc = -1;
      } else {
        rc = parse_metadata(f, c, err, errlen);
      }
      continue;
    }
    safet_tensor *t = &f->tensors[f->n++];
    t->name = xstrdup(c->key);
    rc = parse_tensor(f, c, t, err, errlen);
  }
  json_free(root);
  if (!rc) rc = check_layout(f, err, errlen);
  return rc;
}

int safet_open_mem(safet_file *f, const void *bytes, size_t len, const char *name, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  f->buf = xmalloc(len + 1, "safetensors file");
  if (len) memcpy(f->buf, bytes, len);
  f->buf_len = len;
  f->path = xstrdup(name);
  if (parse_buffer(f, err, errlen) != 0) {
    safet_close(f);
    return -1;
  }
  return 0;
}

int safet_open(safet_file *f, const char *path, char *err, size_t errlen) {
  memset(f, 0, sizeof *f);
  size_t len;
  char *buf = file_read_all(path, &len, err, errlen);
  if (!buf) return -1;
  f->buf = (unsigned char *)buf;
  f->buf_len = len;
  f->path = xstrdup(path);
  if (parse_buffer(f, err, errlen) != 0) {
    safet_close(f);
    return -1;
  }
  return 0;
}

const safet_tensor *safet_find(const safet_file *f, const char *name) {
  for (int i = 0; i < f->n; i++)
    if (!strcmp(f->tensors[i].name, name)) return &f->tensors[i];
  return NULL;
}

const char *safet_meta(const safet_file *f, const char *key) {
  for (int i = 0; i < f->n_meta; i++)
    if (!strcmp(f->meta_keys[i], key)) return f->meta_vals[i];
  return NULL;
}

size_t safet_numel(const safet_tensor *t) {
  size_t n = 1;
  for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
  return n;
}

void safet_shape_str(char *buf, size_t n, int ndim, const int64_t *shape) {
  strbuf b;
  sb_init(&b);
  sb_putc(&b, '[');
  for (int i = 0; i < ndim; i++) sb_printf(&b, "%s%lld", i ? ", " : "", (long long)shape[i]);
  sb_putc(&b, ']');
  snprintf(buf, n, "%s", b.data);
  sb_free(&b);
}

const void *safet_tensor_data(const safet_file *f, const safet_tensor *t) { return f->data + t->offset; }

static float f32_from_bits(uint32_t u) {
  float x;
  memcpy(&x, &u, 4);
  return x;
}

/* IEEE half to float, exactly; NaN payloads kept, made quiet (as F16C and
 * PyTorch do). */
static float half_to_float(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
  if (exp == 0x1f) return f32_from_bits(sign | 0x7f800000u | (mant << 13) | (mant ? 0x400000u : 0));
  if (exp == 0) {
    /* zero or subnormal: mant * 2^-24, exact in float */
    float v = (float)mant * 0x1p-24f;
    return sign ? -v : v;
  }
  return f32_from_bits(sign | ((exp + 112) << 23) | (mant << 13));
}

/* Unaligned little-endian loads of element i. */
static uint16_t ld_u16(const unsigned char *p, size_t i) {
  uint16_t v;
  memcpy(&v, p + 2 * i, 2);
  return v;
}
static int16_t ld_i16(const unsigned char *p, size_t i) {
  int16_t v;
  memcpy(&v, p + 2 * i, 2);
  return v;
}
static int32_t ld_i32(const unsigned char *p, size_t i) {
  int32_t v;
  memcpy(&v, p + 4 * i, 4);
  return v;
}
static int64_t ld_i64(const unsigned char *p, size_t i) {
  int64_t v;
  memcpy(&v, p + 8 * i, 8);
  return v;
}
static double ld_f64(const unsigned char *p, size_t i) {
  double v;
  memcpy(&v, p + 8 * i, 8);
  return v;
}

void safet_read_f32(const safet_file *f, const safet_tensor *t, float *out) {
  const unsigned char *src = safet_tensor_data(f, t);
  size_t n = safet_numel(t);
  switch (t->dtype) {
    case SAFET_F32:
      if (n) memcpy(out, src, n * 4);
      break;
    case SAFET_F16:
      for (size_t i = 0; i < n; i++) out[i] = half_to_float(ld_u16(src, i));
      break;
    case SAFET_BF16:
      for (size_t i = 0; i < n; i++) out[i] = f32_from_bits((uint32_t)ld_u16(src, i) << 16);
      break;
    case SAFET_F64:
      for (size_t i = 0; i < n; i++) out[i] = (float)ld_f64(src, i);
      break;
    case SAFET_I64:
      for (size_t i = 0; i < n; i++) out[i] = (float)ld_i64(src, i);
      break;
    case SAFET_I32:
      for (size_t i = 0; i < n; i++) out[i] = (float)ld_i32(src, i);
      break;
    case SAFET_I16:
      for (size_t i = 0; i < n; i++) out[i] = (float)ld_i16(src, i);
      break;
    case SAFET_I8:
      for (size_t i = 0; i < n; i++) out[i] = (float)(int8_t)src[i];
      break;
    case SAFET_U8:
      for (size_t i = 0; i < n; i++) out[i] = (float)src[i];
      break;
    case SAFET_BOOL:
      for (size_t i = 0; i < n; i++) out[i] = src[i] ? 1.0f : 0.0f;
      break;
  }
}

int safet_read_i64(const safet_file *f, const safet_tensor *t, int64_t *out) {
  const unsigned char *src = safet_tensor_data(f, t);
  size_t n = safet_numel(t);
  switch (t->dtype) {
    case SAFET_I64:
      if (n) memcpy(out, src, n * 8);
      return 0;
    case SAFET_I32:
      for (size_t i = 0; i < n; i++) out[i] = ld_i32(src, i);
      return 0;
    case SAFET_I16:
      for (size_t i = 0; i < n; i++) out[i] = ld_i16(src, i);
      return 0;
    case SAFET_I8:
      for (size_t i = 0; i < n; i++) out[i] = (int8_t)src[i];
      return 0;
    case SAFET_U8:
      for (size_t i = 0; i < n; i++) out[i] = src[i];
      return 0;
    case SAFET_BOOL:
      for (size_t i = 0; i < n; i++) out[i] = src[i] != 0;
      return 0;
    default:
      return -1;
  }
}

int safet_verify_checksum(const safet_file *f, char *err, size_t errlen) {
  const char *want = safet_meta(f, SAFET_CRC_KEY);
  if (!want) return 0;
  uint32_t crc = crc32c(0, f->data, f->data_len);
  char have[16];
  snprintf(have, sizeof have, "%08x", crc);
  if (strlen(want) != 8 || strspn(want, "0123456789abcdef") != 8) {
    seterr(err, errlen, f->path, "malformed checksum \"%.16s\" in the header: file corrupt", want);
    return -1;
  }
  if (strcmp(have, want) != 0) {
    seterr(err, errlen, f->path, "checksum mismatch: data section CRC-32C is %s but the header records \"%.16s\": file corrupt",
           have, want);
    return -1;
  }
  return 0;
}
