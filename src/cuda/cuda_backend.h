/* cuda_backend.h: the CUDA backend's public C API beyond backend.h — the
 * cache of cuDNN algorithm choices that lets a resumed run skip the search.
 * cuda_backend_create / cuda_backend_available are declared in backend.h.
 * Without CUDA (RN50_CUDA undefined) src/core/cuda_stub.c provides versions
 * that report the backend as absent. */
#ifndef RN50_CUDA_BACKEND_H
#define RN50_CUDA_BACKEND_H

#ifdef __cplusplus
extern "C" {
#endif

#include "../backend.h"

/* Write the algorithm chosen for every conv shape seen so far to path (a
 * small text file, written atomically). Returns the number of shapes
 * written, or -1 with a warning on stderr. */
int cuda_conv_cache_save(backend *be, const char *path);
/* Read choices written by cuda_conv_cache_save; later conv_prepare calls for
 * those shapes use them instead of searching. Returns the number of shapes
 * read; 0 (with a warning) if the file is missing or was written for another
 * GPU, cuDNN version or precision; -1 with a warning if it is malformed. */
int cuda_conv_cache_load(backend *be, const char *path);

/* Device memory in use (cudaMemGetInfo: all of the process's memory on the
 * GPU) at its highest seen after any allocation, and right after the
 * backend was created (CUDA context, library handles). peak - baseline is
 * comparable to torch.cuda.max_memory_allocated. */
void cuda_memory_stats(backend *be, size_t *peak_in_use, size_t *baseline);
/* Peak of the bytes rn50 itself holds in cudaMalloc'ed buffers (weights,
 * activations, workspaces, scratch): the counterpart of PyTorch's
 * torch.cuda.max_memory_allocated. */
size_t cuda_memory_allocated_peak(backend *be);

/* One line naming the GPU and the library versions found at run time, e.g.
 * "NVIDIA H100 80GB HBM3, cc 9.0, 132 SMs, 79.1 GiB; driver 13.0, runtime
 * 13.0, cuDNN 9.19.0, cuBLAS 13.0.0" (for logs: which libraries a run used). */
void cuda_backend_describe(backend *be, char *buf, size_t len);

#ifdef __cplusplus
}
#endif

#endif
