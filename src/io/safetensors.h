/* safetensors.h: read and write .safetensors files, the format torchvision /
 * Hugging Face weights travel in. rn50 keeps its weights and checkpoints in
 * it so PyTorch can load what rn50 writes and the other way round.
 *
 * Layout: 8-byte little-endian header length N; N bytes of JSON
 *   {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]},
 *    ..., "__metadata__": {"key": "value", ...}}
 * (starting with '{', padded with spaces); then the data section. Offsets are
 * relative to the data section, which the tensors must cover exactly: no
 * holes, no overlaps, nothing left over. Little-endian, row-major.
 *
 * The reader loads the whole file and validates every rule above; any
 * violation is an error "<path>: <reason>" naming the tensor where one is
 * involved, never a crash. The writer adds the metadata "rn50.crc32c" (CRC-32C
 * of the data section, 8 lowercase hex digits) that safet_verify_checksum
 * checks, and writes atomically. */
#ifndef RN50_SAFETENSORS_H
#define RN50_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SAFET_F32, SAFET_F16, SAFET_BF16, SAFET_F64, SAFET_I64, SAFET_I32, SAFET_I16, SAFET_I8, SAFET_U8, SAFET_BOOL } safet_dtype;

#define SAFET_MAX_DIMS 8
#define SAFET_MAX_HEADER 100000000u /* bytes; as the reference implementation */
#define SAFET_CRC_KEY "rn50.crc32c"

typedef struct {
  char *name;
  safet_dtype dtype;
  int ndim;
  int64_t shape[SAFET_MAX_DIMS];
  size_t offset; /* into the data section */
  size_t nbytes;
} safet_tensor;

typedef struct {
  safet_tensor *tensors; /* in header order */
  int n;
  char **meta_keys;
  char **meta_vals;
  int n_meta;
  unsigned char *buf; /* the whole file */
  size_t buf_len;
  const unsigned char *data; /* data section (inside buf) */
  size_t data_len;
  char *path;
} safet_file;

/* Element size in bytes, and the format's name ("F32", ...). */
size_t safet_dtype_size(safet_dtype dt);
const char *safet_dtype_name(safet_dtype dt);
/* Name to dtype; 0, or -1 for a name rn50 does not know. */
int safet_dtype_parse(const char *name, safet_dtype *out);

/* Reads + validates the whole file; 0, or -1 with "path: reason". On error f
 * holds nothing to free (safet_close is harmless). */
int safet_open(safet_file *f, const char *path, char *err, size_t errlen);
/* The same from memory (len bytes are copied); name stands for the path in
 * messages. */
int safet_open_mem(safet_file *f, const void *bytes, size_t len, const char *name, char *err, size_t errlen);
void safet_close(safet_file *f);

const safet_tensor *safet_find(const safet_file *f, const char *name);
/* __metadata__ value, or NULL. */
const char *safet_meta(const safet_file *f, const char *key);
/* Elements (1 for a 0-dim scalar, 0 when a dimension is 0). */
size_t safet_numel(const safet_tensor *t);
/* "[64, 3, 7, 7]" ("[]" for a scalar), for messages about misshapen tensors. */
void safet_shape_str(char *buf, size_t n, int ndim, const int64_t *shape);
/* The raw little-endian bytes of t (t->nbytes of them; not aligned). */
const void *safet_tensor_data(const safet_file *f, const safet_tensor *t);

/* Converts t to float32: exact for F32/F16 (subnormals, inf, NaN)/BF16,
 * rounded to nearest for F64 and wide integers, BOOL as 0/1.
 * out: safet_numel(t) floats. */
void safet_read_f32(const safet_file *f, const safet_tensor *t, float *out);
/* Converts an integer or BOOL tensor to int64 exactly; 0, or -1 (nothing
 * written) for floating dtypes. out: safet_numel(t) values. */
int safet_read_i64(const safet_file *f, const safet_tensor *t, int64_t *out);

/* If metadata "rn50.crc32c" exists, the CRC-32C of the data section must
 * match it: 0 when it does (or is absent), -1 with "path: reason" otherwise. */
int safet_verify_checksum(const safet_file *f, char *err, size_t errlen);

typedef struct safet_writer safet_writer;
safet_writer *safet_writer_new(void);
/* Adds a tensor; data (numel * dtype size bytes, row-major, shape as given,
 * e.g. OIHW) is copied. A bad name (empty, "__metadata__", duplicate) or
 * shape (ndim outside 0..8, negative dimension, byte size overflow) makes
 * safet_writer_save fail with a message naming the tensor. */
void safet_writer_add(safet_writer *w, const char *name, safet_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* The same without the copy: data must stay valid until save returns. */
void safet_writer_add_nocopy(safet_writer *w, const char *name, safet_dtype dtype, int ndim, const int64_t *shape, const void *data);
/* Sets (or replaces) a __metadata__ entry. */
void safet_writer_meta(safet_writer *w, const char *key, const char *value);
/* Writes atomically (temp file, fsync, rename, fsync of the directory) with
 * metadata "rn50.crc32c" added. The header lists tensors in the order added;
 * the data section stores them by element size, largest first, so every
 * tensor is aligned to its element size. 0, or -1 with err. */
int safet_writer_save(safet_writer *w, const char *path, char *err, size_t errlen);
void safet_writer_free(safet_writer *w);

#endif
