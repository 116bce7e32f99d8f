/* cuda_stub.c: what a CPU-only build (CUDA=0) answers when asked for the
 * CUDA backend. Compiles to nothing when the CUDA backend is built in. */
#ifndef RN50_CUDA
#include <stdio.h>

#include "../backend.h"

int cuda_backend_available(void) { return 0; }

backend *cuda_backend_create(dtype act_dtype, int allow_tf32, int device, char *err, size_t errlen) {
  snprintf(err, errlen, "this rn50 was built without CUDA (rebuild with 'make CUDA=1' where nvcc and cuDNN are installed)");
  return NULL;
}
#else
typedef int rn50_cuda_stub_unused;
#endif
