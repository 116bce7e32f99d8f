/* test_io_safetensors.c: the safetensors reader and writer — round trips of
 * every dtype, exact conversions (all 65536 halves against the F16C
 * instruction), and a reader that rejects every truncation, header
 * corruption and malformed header with a message naming the file and the
 * tensor, without crashing.
 *
 * With arguments it is the C side of tests/io_safetensors_py.sh:
 *   test_io_safetensors --copy IN OUT [--expect-f32 EXP]
 * reads IN (written by tools/safetensors_py.py), checks every tensor's
 * float32 conversion bit for bit against EXP's, and re-writes all tensors
 * with rn50's writer to OUT for the Python side to compare. */
#include <dirent.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "harness.h"
#include "io/safetensors.h"

static char g_dir[256];
static char g_err[512];

static const char *tmp_path(const char *name) {
  static char p[4][512];
  static int k;
  k = (k + 1) % 4;
  snprintf(p[k], sizeof p[k], "%s/%s", g_dir, name);
  return p[k];
}

static uint32_t f32_bits(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  return u;
}

/* A file with one tensor of every dtype, a 0-dim I64 scalar and (optionally)
 * an empty tensor; returns its bytes (malloc'd). */
static unsigned char *make_sample(int with_empty, int with_meta, size_t *len) {
  safet_writer *w = safet_writer_new();
  float f32[6] = {1.5f, -2.25f, 0.0f, 3e-39f, 65504.0f, -1e30f};
  uint16_t f16[4] = {0x3c00, 0x8001, 0x7c00, 0x7e01};
  uint16_t bf16[3] = {0x3f80, 0xc2f7, 0x0001};
  double f64[2] = {1.0 / 3.0, -1e300};
  int64_t i64[3] = {INT64_MIN, -1, INT64_MAX};
  int64_t nbt = 12345;
  int32_t i32[2] = {INT32_MIN, 77};
  int16_t i16[2] = {-300, 300};
  int8_t i8[3] = {-128, 0, 127};
  uint8_t u8[2] = {0, 255};
  uint8_t bl[3] = {1, 0, 1};
  int64_t s23[2] = {2, 3}, s4[1] = {4}, s3[1] = {3}, s2[1] = {2}, s21[2] = {2, 1}, s40[3] = {4, 0, 3};
  safet_writer_add(w, "conv.weight", SAFET_F32, 2, s23, f32);
  safet_writer_add(w, "half", SAFET_F16, 1, s4, f16);
  safet_writer_add(w, "brain", SAFET_BF16, 1, s3, bf16);
  safet_writer_add(w, "dbl", SAFET_F64, 2, s21, f64);
  safet_writer_add(w, "big", SAFET_I64, 1, s3, i64);
  safet_writer_add(w, "bn1.num_batches_tracked", SAFET_I64, 0, NULL, &nbt);
  safet_writer_add(w, "i32", SAFET_I32, 1, s2, i32);
  safet_writer_add(w, "i16", SAFET_I16, 1, s2, i16);
  safet_writer_add(w, "i8", SAFET_I8, 1, s3, i8);
  safet_writer_add(w, "u8", SAFET_U8, 1, s2, u8);
  safet_writer_add(w, "flags", SAFET_BOOL, 1, s3, bl);
  if (with_empty) safet_writer_add(w, "empty", SAFET_F32, 3, s40, NULL);
  if (with_meta) {
    safet_writer_meta(w, "format", "pt");
    safet_writer_meta(w, "note", "quote \" backslash \\ newline \n");
  }
  const char *path = tmp_path("sample.safetensors");
  int rc = safet_writer_save(w, path, g_err, sizeof g_err);
  CHECK(rc == 0, "save: %s", g_err);
  safet_writer_free(w);
  unsigned char *buf = (unsigned char *)file_read_all(path, len, g_err, sizeof g_err);
  if (!buf) {
    fprintf(stderr, "%s\n", g_err);
    exit(1);
  }
  return buf;
}

static void test_dtype_table(void) {
  static const char *names[] = {"F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL"};
  static const size_t sizes[] = {4, 2, 2, 8, 8, 4, 2, 1, 1, 1};
  for (int i = 0; i < 10; i++) {
    safet_dtype d;
    CHECK(safet_dtype_parse(names[i], &d) == 0 && (int)d == i, "parse %s", names[i]);
    CHECK(!strcmp(safet_dtype_name((safet_dtype)i), names[i]), "name %d", i);
    CHECK(safet_dtype_size((safet_dtype)i) == sizes[i], "size %s", names[i]);
  }
  safet_dtype d;
  CHECK(safet_dtype_parse("F8_E4M3", &d) != 0 && safet_dtype_parse("f32", &d) != 0, "unknown dtypes rejected");
}

static void test_roundtrip_all_dtypes(void) {
  size_t len;
  unsigned char *buf = make_sample(1, 1, &len);
  safet_file f;
  int rc = safet_open(&f, tmp_path("sample.safetensors"), g_err, sizeof g_err);
  CHECK(rc == 0, "open: %s", g_err);
  if (rc) return;
  uint64_t n = 0;
  for (int i = 7; i >= 0; i--) n = n << 8 | buf[i];
  CHECK(n % 8 == 0 && buf[8] == '{', "header length %llu padded to 8, starts with '{'", (unsigned long long)n);
  CHECK(buf[8 + n - 1] == ' ' || buf[8 + n - 1] == '}', "header ends with '}' then spaces");
  CHECK(f.n == 12 && f.n_meta == 3, "12 tensors, 3 metadata entries (got %d, %d)", f.n, f.n_meta);
  CHECK(safet_verify_checksum(&f, g_err, sizeof g_err) == 0, "checksum: %s", g_err);
  CHECK(safet_meta(&f, SAFET_CRC_KEY) && strlen(safet_meta(&f, SAFET_CRC_KEY)) == 8, "crc metadata present");
  CHECK(safet_meta(&f, "format") && !strcmp(safet_meta(&f, "format"), "pt"), "meta format");
  CHECK(safet_meta(&f, "note") && !strcmp(safet_meta(&f, "note"), "quote \" backslash \\ newline \n"), "meta escaped");
  CHECK(safet_meta(&f, "nope") == NULL, "absent meta");
  /* header order is insertion order; data aligned to element size */
  CHECK(!strcmp(f.tensors[0].name, "conv.weight") && !strcmp(f.tensors[11].name, "empty"), "header order kept");
  for (int i = 0; i < f.n; i++)
    CHECK(f.tensors[i].offset % safet_dtype_size(f.tensors[i].dtype) == 0, "%s aligned", f.tensors[i].name);

  const safet_tensor *t = safet_find(&f, "conv.weight");
  CHECK(t && t->dtype == SAFET_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3 && safet_numel(t) == 6, "f32 tensor");
  if (t) {
    float out[6], want[6] = {1.5f, -2.25f, 0.0f, 3e-39f, 65504.0f, -1e30f};
    safet_read_f32(&f, t, out);
    CHECK(!memcmp(out, want, sizeof want), "f32 values");
  }
  char shp[64] = "";
  if (t) safet_shape_str(shp, sizeof shp, t->ndim, t->shape);
  CHECK(!strcmp(shp, "[2, 3]"), "shape string %s", shp);
  t = safet_find(&f, "bn1.num_batches_tracked");
  CHECK(t && t->dtype == SAFET_I64 && t->ndim == 0 && safet_numel(t) == 1 && t->nbytes == 8, "0-dim I64 scalar");
  if (t) {
    safet_shape_str(shp, sizeof shp, t->ndim, t->shape);
    CHECK(!strcmp(shp, "[]"), "scalar shape string %s", shp);
    int64_t v = 0;
    float fv = 0;
    CHECK(safet_read_i64(&f, t, &v) == 0 && v == 12345, "scalar value %lld", (long long)v);
    safet_read_f32(&f, t, &fv);
    CHECK(fv == 12345.0f, "scalar as float");
  }
  t = safet_find(&f, "big");
  if (t) {
    int64_t v[3];
    CHECK(safet_read_i64(&f, t, v) == 0 && v[0] == INT64_MIN && v[1] == -1 && v[2] == INT64_MAX, "i64 exact");
  }
  struct {
    const char *name;
    safet_dtype dt;
    float want[3];
    int n;
  } conv[] = {
      {"half", SAFET_F16, {1.0f, -0x1p-24f, INFINITY}, 3},
      {"brain", SAFET_BF16, {1.0f, -123.5f, 0x1p-133f}, 3},
      {"dbl", SAFET_F64, {(float)(1.0 / 3.0), -INFINITY}, 2},
      {"i32", SAFET_I32, {-2147483648.0f, 77.0f}, 2},
      {"i16", SAFET_I16, {-300.0f, 300.0f}, 2},
      {"i8", SAFET_I8, {-128.0f, 0.0f, 127.0f}, 3},
      {"u8", SAFET_U8, {0.0f, 255.0f}, 2},
      {"flags", SAFET_BOOL, {1.0f, 0.0f, 1.0f}, 3},
  };
  for (size_t k = 0; k < ARRAY_LEN(conv); k++) {
    t = safet_find(&f, conv[k].name);
    CHECK(t && t->dtype == conv[k].dt, "%s dtype", conv[k].name);
    if (!t) continue;
    float out[4];
    safet_read_f32(&f, t, out);
    for (int i = 0; i < conv[k].n; i++)
      CHECK(f32_bits(out[i]) == f32_bits(conv[k].want[i]), "%s[%d] = %g, want %g", conv[k].name, i, out[i], conv[k].want[i]);
  }
  t = safet_find(&f, "half");
  if (t) {
    float out[4];
    safet_read_f32(&f, t, out);
    CHECK(f32_bits(out[3]) == 0x7fc02000u, "f16 NaN payload kept and quiet: %08x", f32_bits(out[3]));
    int64_t iv;
    CHECK(safet_read_i64(&f, t, &iv) == -1, "read_i64 refuses floats");
  }
  t = safet_find(&f, "empty");
  CHECK(t && t->ndim == 3 && t->nbytes == 0 && safet_numel(t) == 0, "empty tensor");
  safet_close(&f);
  free(buf);
}

static void test_f16_exhaustive(void) {
  /* all 65536 halves against the F16C instruction: bit-exact, NaNs included */
  uint16_t *h = xmalloc(65536 * 2, "halves");
  for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
  int64_t shape[1] = {65536};
  safet_writer *w = safet_writer_new();
  safet_writer_add_nocopy(w, "h", SAFET_F16, 1, shape, h);
  const char *path = tmp_path("halves.safetensors");
  CHECK(safet_writer_save(w, path, g_err, sizeof g_err) == 0, "save: %s", g_err);
  safet_writer_free(w);
  safet_file f;
  if (safet_open(&f, path, g_err, sizeof g_err) != 0) {
    CHECK(0, "open: %s", g_err);
    free(h);
    return;
  }
  float *out = xmalloc(65536 * 4, "floats");
  safet_read_f32(&f, &f.tensors[0], out);
  int bad = 0;
  for (int i = 0; i < 65536; i++) {
    float want = _cvtsh_ss((unsigned short)i);
    if (f32_bits(out[i]) != f32_bits(want) && bad++ < 5)
      CHECK(0, "half %04x -> %08x, F16C says %08x", i, f32_bits(out[i]), f32_bits(want));
  }
  CHECK(bad == 0, "%d of 65536 halves differ from F16C", bad);
  safet_close(&f);
  free(out);
  free(h);
}

static void test_open_errors_basic(void) {
  safet_file f;
  CHECK(safet_open(&f, tmp_path("does-not-exist.safetensors"), g_err, sizeof g_err) == -1 &&
            strstr(g_err, "does-not-exist.safetensors"),
        "missing file named: %s", g_err);
  CHECK(safet_open(&f, g_dir, g_err, sizeof g_err) == -1, "a directory is refused: %s", g_err);
  safet_close(&f); /* harmless after a failed open */
}

static void test_truncation_every_length(void) {
  size_t len;
  unsigned char *buf = make_sample(1, 1, &len);
  int ok = 0, crashfree = 0;
  for (size_t l = 0; l < len; l++) {
    safet_file f;
    g_err[0] = 0;
    int rc = safet_open_mem(&f, buf, l, "trunc.safetensors", g_err, sizeof g_err);
    crashfree++;
    if (rc == 0) {
      CHECK(0, "truncated to %zu of %zu bytes accepted", l, len);
      safet_close(&f);
    } else if (!strstr(g_err, "trunc.safetensors: ")) {
      CHECK(0, "length %zu: message does not name the file: %s", l, g_err);
    } else {
      ok++;
    }
  }
  CHECK(ok == (int)len, "%d of %zu truncations rejected", ok, len);
  /* the same through the file path, and the data-section case's wording */
  const char *p = tmp_path("trunc_file.safetensors");
  file_write_atomic(p, buf, len - 5, NULL, 0);
  safet_file f;
  CHECK(safet_open(&f, p, g_err, sizeof g_err) == -1 && strstr(g_err, p) && strstr(g_err, "truncated"),
        "truncated data section: %s", g_err);
  free(buf);
}

/* Spans [b, e) of the header text that hold a tensor name or metadata key. */
static int name_spans(const char *hdr, size_t n, const safet_file *f, size_t *b, size_t *e) {
  int k = 0;
  for (int i = 0; i < f->n + f->n_meta; i++) {
    const char *nm = i < f->n ? f->tensors[i].name : f->meta_keys[i - f->n];
    char pat[300];
    snprintf(pat, sizeof pat, "\"%s\":", nm);
    const char *s = memmem(hdr, n, pat, strlen(pat));
    if (!s) continue;
    b[k] = (size_t)(s - hdr) + 1;
    e[k] = b[k] + strlen(nm);
    k++;
  }
  return k;
}

static void test_header_byte_flips(void) {
  size_t len;
  unsigned char *buf = make_sample(0, 0, &len); /* no empty tensor: [4,0,3] -> [5,0,3] would be valid */
  safet_file orig;
  if (safet_open_mem(&orig, buf, len, "orig", g_err, sizeof g_err) != 0) {
    CHECK(0, "open: %s", g_err);
    return;
  }
  size_t n = (size_t)(buf[0] | buf[1] << 8 | buf[2] << 16);
  size_t sb[32], se[32];
  int ns = name_spans((const char *)buf + 8, n, &orig, sb, se);
  CHECK(ns == orig.n + orig.n_meta, "found all name spans (%d)", ns);
  static const unsigned char masks[] = {0x01, 0x20, 0x80, 0xff};
  int errors = 0, valid_renames = 0, cases = 0;
  unsigned char *c = xmalloc(len, "copy");
  for (size_t pos = 0; pos < 8 + n; pos++) {
    int in_name = 0;
    for (int s = 0; s < ns; s++)
      if (pos >= 8 + sb[s] && pos < 8 + se[s]) in_name = 1;
    for (size_t m = 0; m < ARRAY_LEN(masks); m++) {
      memcpy(c, buf, len);
      c[pos] ^= masks[m];
      cases++;
      safet_file f;
      g_err[0] = 0;
      int rc = safet_open_mem(&f, c, len, "flip.safetensors", g_err, sizeof g_err);
      if (rc == 0) rc = safet_verify_checksum(&f, g_err, sizeof g_err) == 0 ? 0 : -2;
      if (rc != 0) {
        errors++;
        CHECK(strstr(g_err, "flip.safetensors: ") != NULL, "flip at %zu: message does not name the file: %s", pos, g_err);
        if (rc == -2) safet_close(&f);
        continue;
      }
      /* accepted: only a renamed tensor / metadata key may pass, and then a
       * loader looking for the original names notices */
      int missing = 0;
      for (int i = 0; i < orig.n; i++) missing += safet_find(&f, orig.tensors[i].name) == NULL;
      missing += safet_meta(&f, SAFET_CRC_KEY) == NULL;
      CHECK(in_name && missing == 1, "flip %02x at byte %zu (%s) accepted unnoticed", masks[m], pos,
            in_name ? "in a name" : "outside names");
      valid_renames++;
      safet_close(&f);
    }
  }
  CHECK(errors > 0 && errors + valid_renames == cases, "flips: %d errors, %d renames of %d", errors, valid_renames, cases);
  printf("  header flips: %d cases, %d rejected, %d accepted as renamed names\n", cases, errors, valid_renames);
  /* every byte of the data section: the checksum catches it */
  int caught = 0;
  for (size_t pos = 8 + n; pos < len; pos++) {
    memcpy(c, buf, len);
    c[pos] ^= 0x10;
    safet_file f;
    if (safet_open_mem(&f, c, len, "dflip", g_err, sizeof g_err) == 0) {
      caught += safet_verify_checksum(&f, g_err, sizeof g_err) == -1 && strstr(g_err, "checksum");
      safet_close(&f);
    }
  }
  CHECK(caught == (int)(len - 8 - n), "data flips caught by the checksum: %d of %zu", caught, len - 8 - n);
  free(c);
  safet_close(&orig);
  free(buf);
}

/* A file from a header text and data_len bytes of data. */
static int open_crafted(const char *hdr, size_t data_len, uint64_t hlen_override, safet_file *f) {
  size_t n = strlen(hdr);
  size_t len = 8 + n + data_len;
  unsigned char *b = xcalloc(1, len + 1, "crafted");
  uint64_t hl = hlen_override ? hlen_override : n;
  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hl >> (8 * i));
  memcpy(b + 8, hdr, n);
  g_err[0] = 0;
  int rc = safet_open_mem(f, b, len, "bad.safetensors", g_err, sizeof g_err);
  free(b);
  return rc;
}

static void test_bad_headers(void) {
  struct {
    const char *hdr;
    size_t data_len;
    uint64_t hlen;
    const char *want; /* substrings the message must contain */
    const char *want2;
  } cases[] = {
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 200000000, "limit", NULL},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 1000, "truncated", NULL},
      {"[\"a\", 1]                ", 0, 0, "start with '{'", NULL},
      {"  {\"a\":1}", 0, 0, "start with '{'", NULL},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", 8, 0, "bad header", "JSON"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}x", 8, 0, "bad header", NULL},
      {"{\"a\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, 0, "'a'", "unsupported dtype \"F8_E4M3\""},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20, 0, "'w'", "need 24 bytes"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,24]}}", 24, 0, "'w'", "negative dimension -3"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, 0, "'w'", "not an integer"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4, 0, "'w'", "9 dimensions"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}", 4, 0, "'w'", "too large"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8, 0, "'w'", "end before"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,-8]}}", 8, 0, "'w'", "non-negative"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0]}}", 8, 0, "'w'", "data_offsets"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8, 0, "'w'", "data_offsets"},
      {"{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, 0, "'w'", "dtype"},
      {"{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, 0, "'w'", "shape"},
      {"{\"w\":[1,2]}", 0, 0, "'w'", "not a JSON object"},
      {"{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8, 0, "'w'", "truncated"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
       12, 0, "'b'", "overlap tensor 'a'"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]}}",
       20, 0, "'b'", "hole"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
       8, 0, "'b'", "overlap"},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
       "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
       16, 0, "duplicate tensor name 'a'", NULL},
      {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 12, 0, "trailing", NULL},
      {"{}", 4, 0, "no tensors", NULL},
      {"{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, 0, "\"k\"",
       "not a string"},
      {"{\"__metadata__\":[],\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, 0, "__metadata__", NULL},
      {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"},\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, 0,
       "duplicate __metadata__ key", NULL},
      {"{\"__metadata__\":{},\"__metadata__\":{},\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}", 1, 0,
       "duplicate __metadata__", NULL},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    safet_file f;
    int rc = open_crafted(cases[i].hdr, cases[i].data_len, cases[i].hlen, &f);
    CHECK(rc == -1, "case %zu accepted: %s", i, cases[i].hdr);
    if (rc == 0) {
      safet_close(&f);
      continue;
    }
    CHECK(!strncmp(g_err, "bad.safetensors: ", 17), "case %zu: file not named: %s", i, g_err);
    CHECK(strstr(g_err, cases[i].want) && (!cases[i].want2 || strstr(g_err, cases[i].want2)),
          "case %zu: message \"%s\" lacks \"%s\"/\"%s\"", i, g_err, cases[i].want, cases[i].want2 ? cases[i].want2 : "");
  }
  /* valid edge cases: padding, empty tensor at the end, scalar, empty file of tensors */
  safet_file f;
  CHECK(open_crafted("{\"s\":{\"dtype\":\"BOOL\",\"shape\":[],\"data_offsets\":[0,1]},"
                     "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[1,1]}}    ",
                     1, 0, &f) == 0,
        "valid edge file: %s", g_err);
  safet_close(&f);
  CHECK(open_crafted("{}      ", 0, 0, &f) == 0, "no tensors at all is valid: %s", g_err);
  safet_close(&f);
  /* too short for a header length */
  unsigned char tiny[5] = {1, 2, 3, 4, 5};
  CHECK(safet_open_mem(&f, tiny, 5, "tiny", g_err, sizeof g_err) == -1 && strstr(g_err, "too short"), "tiny: %s", g_err);
  /* bad checksum strings */
  CHECK(open_crafted("{\"__metadata__\":{\"rn50.crc32c\":\"zz\"},\"a\":{\"dtype\":\"U8\",\"shape\":[],\"data_offsets\":[0,1]}}",
                     1, 0, &f) == 0,
        "open: %s", g_err);
  CHECK(safet_verify_checksum(&f, g_err, sizeof g_err) == -1 && strstr(g_err, "malformed checksum"), "%s", g_err);
  safet_close(&f);
}

static void test_garbage(void) {
  uint64_t s = 0x9e3779b97f4a7c15ULL;
  unsigned char b[600];
  int rejected = 0, total = 0;
  for (int it = 0; it < 3000; it++) {
    size_t len = (size_t)(it % 600);
    for (size_t i = 0; i < len; i++) {
      s = s * 6364136223846793005ULL + 1442695040888963407ULL;
      b[i] = (unsigned char)(s >> 56);
    }
    /* make a third of them look like safetensors: a plausible length and '{' */
    if (it % 3 == 0 && len > 10) {
      uint64_t n = (s >> 20) % (len - 8);
      memset(b, 0, 8);
      b[0] = (unsigned char)n;
      b[1] = (unsigned char)(n >> 8);
      b[8] = '{';
    }
    safet_file f;
    total++;
    if (safet_open_mem(&f, b, len, "garbage", g_err, sizeof g_err) == -1) rejected++;
    else safet_close(&f);
  }
  CHECK(rejected == total, "garbage accepted: %d of %d", total - rejected, total);
}

static void test_writer_errors(void) {
  int64_t good[1] = {2}, neg[1] = {-1}, nine[9] = {1, 1, 1, 1, 1, 1, 1, 1, 1};
  float d[2] = {1, 2};
  struct {
    const char *name;
    int ndim;
    const int64_t *shape;
    const char *want;
  } cases[] = {
      {"dup", 1, good, "duplicate tensor name 'dup'"},
      {"neg", 1, neg, "'neg': negative dimension"},
      {"nine", 9, nine, "'nine': 9 dimensions"},
      {"__metadata__", 1, good, "invalid tensor name"},
      {"", 1, good, "invalid tensor name"},
  };
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    safet_writer *w = safet_writer_new();
    safet_writer_add(w, "dup", SAFET_F32, 1, good, d);
    safet_writer_add(w, cases[i].name, SAFET_F32, cases[i].ndim, cases[i].shape, d);
    const char *p = tmp_path("werr.safetensors");
    CHECK(safet_writer_save(w, p, g_err, sizeof g_err) == -1, "case %zu saved", i);
    CHECK(strstr(g_err, p) && strstr(g_err, cases[i].want), "case %zu: %s", i, g_err);
    CHECK(!path_exists(p), "case %zu: no file written", i);
    safet_writer_free(w);
  }
  safet_writer *w = safet_writer_new();
  safet_writer_add(w, "x", SAFET_F32, 1, good, d);
  CHECK(safet_writer_save(w, "/nonexistent-dir/x.safetensors", g_err, sizeof g_err) == -1 && strstr(g_err, "/nonexistent-dir/"),
        "unwritable: %s", g_err);
  /* overwrite an existing file; no temporary file left behind */
  const char *p = tmp_path("over.safetensors");
  file_write_atomic(p, "junk", 4, NULL, 0);
  CHECK(safet_writer_save(w, p, g_err, sizeof g_err) == 0, "overwrite: %s", g_err);
  safet_file f;
  CHECK(safet_open(&f, p, g_err, sizeof g_err) == 0 && safet_verify_checksum(&f, g_err, sizeof g_err) == 0, "reopen: %s", g_err);
  safet_close(&f);
  safet_writer_free(w);
  DIR *dir = opendir(g_dir);
  struct dirent *de;
  int tmps = 0;
  while (dir && (de = readdir(dir)))
    if (strstr(de->d_name, ".tmp.")) tmps++;
  if (dir) closedir(dir);
  CHECK(tmps == 0, "%d temporary files left", tmps);
}

/* --copy IN OUT [--expect-f32 EXP] */
static int copy_mode(int argc, char **argv) {
  const char *in = argv[2], *out = argv[3], *exp = argc >= 6 ? argv[5] : NULL;
  int pass = 0, fail = 0;
  safet_file f, e;
  if (safet_open(&f, in, g_err, sizeof g_err) != 0) {
    printf("FAIL open: %s\nRESULT 0 1\n", g_err);
    return 1;
  }
  if (safet_verify_checksum(&f, g_err, sizeof g_err) != 0) {
    printf("FAIL %s\n", g_err);
    fail++;
  }
  if (exp) {
    if (safet_open(&e, exp, g_err, sizeof g_err) != 0) {
      printf("FAIL open: %s\nRESULT 0 1\n", g_err);
      return 1;
    }
    int bad_tensors = 0;
    for (int i = 0; i < f.n; i++) {
      const safet_tensor *t = &f.tensors[i], *x = safet_find(&e, t->name);
      size_t n = safet_numel(t);
      if (!x || x->dtype != SAFET_F32 || safet_numel(x) != n) {
        printf("FAIL %s: no matching F32 tensor in %s\n", t->name, exp);
        bad_tensors++;
        continue;
      }
      float *a = xmalloc(n * 4 + 4, "a"), *b = xmalloc(n * 4 + 4, "b");
      safet_read_f32(&f, t, a);
      safet_read_f32(&e, x, b);
      size_t diff = 0;
      for (size_t k = 0; k < n; k++)
        if (f32_bits(a[k]) != f32_bits(b[k]) && diff++ < 3)
          printf("  %s[%zu] (%s): rn50 %08x, torch %08x\n", t->name, k, safet_dtype_name(t->dtype), f32_bits(a[k]), f32_bits(b[k]));
      if (diff) {
        printf("FAIL %s: %zu of %zu float32 conversions differ from torch\n", t->name, diff, n);
        bad_tensors++;
      }
      free(a);
      free(b);
    }
    printf("%s float32 conversions of %d tensors equal torch's bit for bit\n", bad_tensors ? "FAIL" : "ok  ", f.n);
    bad_tensors ? fail++ : pass++;
    safet_close(&e);
  }
  safet_writer *w = safet_writer_new();
  for (int i = 0; i < f.n; i++) {
    const safet_tensor *t = &f.tensors[i];
    safet_writer_add(w, t->name, t->dtype, t->ndim, t->shape, safet_tensor_data(&f, t));
  }
  for (int i = 0; i < f.n_meta; i++)
    if (strcmp(f.meta_keys[i], SAFET_CRC_KEY)) safet_writer_meta(w, f.meta_keys[i], f.meta_vals[i]);
  if (safet_writer_save(w, out, g_err, sizeof g_err) != 0) {
    printf("FAIL save: %s\n", g_err);
    fail++;
  } else {
    printf("ok   %s: %d tensors re-written by rn50\n", out, f.n);
    pass++;
  }
  safet_writer_free(w);
  safet_close(&f);
  printf("RESULT %d %d\n", pass, fail);
  return fail ? 1 : 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && !strcmp(argv[1], "--copy")) return copy_mode(argc, argv);
  snprintf(g_dir, sizeof g_dir, "/tmp/rn50_st_XXXXXX");
  if (!mkdtemp(g_dir)) die("mkdtemp failed");
  RUN(test_dtype_table);
  RUN(test_roundtrip_all_dtypes);
  RUN(test_f16_exhaustive);
  RUN(test_open_errors_basic);
  RUN(test_truncation_every_length);
  RUN(test_header_byte_flips);
  RUN(test_bad_headers);
  RUN(test_garbage);
  RUN(test_writer_errors);
  h_remove_dir(g_dir);
  return harness_finish();
}
