/* cuda_stub.c: the CUDA backend's entry points for a build without CUDA
 * (RN50_CUDA undefined): the backend reports itself absent, so --device cuda
 * fails with a clear message instead of a link error. With CUDA the real
 * versions live in src/cuda/cuda_backend.cu and conv.cu. */
#ifndef RN50_CUDA
#include <stdio.h>

#include "../backend.h"
#include "../cuda/cuda_backend.h"

int cuda_backend_available(void) { return 0; }

backend *cuda_backend_create(dtype act_dtype, int allow_tf32, int device, char *err, size_t errlen) {
  (void)act_dtype;
  (void)allow_tf32;
  (void)device;
  if (err && errlen) snprintf(err, errlen, "this rn50 was built without CUDA (rebuild with 'make CUDA=1' where nvcc and cuDNN are installed)");
  return NULL;
}

int cuda_conv_cache_save(backend *be, const char *path) {
  (void)be;
  (void)path;
  return -1;
}

int cuda_conv_cache_load(backend *be, const char *path) {
  (void)be;
  (void)path;
  return -1;
}
void cuda_memory_stats(backend *be, size_t *peak_in_use, size_t *baseline) {
  (void)be;
  if (peak_in_use) *peak_in_use = 0;
  if (baseline) *baseline = 0;
}
size_t cuda_memory_allocated_peak(backend *be) {
  (void)be;
  return 0;
}
void cuda_backend_describe(backend *be, char *buf, size_t len) {
  (void)be;
  if (buf && len) snprintf(buf, len, "no CUDA in this build");
}
#else
typedef int rn50_cuda_stub_unused; /* ISO C wants a non-empty file */
#endif
