/* common.h: what every CUDA op file shares — the backend's private state
 * (stream, library handles, scratch buffers), checked-call macros that name
 * the call, file and line, dtype conversion and 16-byte vector helpers, and
 * the prototypes of the op functions the dispatch table points at.
 * Internal to src/cuda (C++); the public C API is cuda_backend.h. */
#ifndef RN50_CUDA_COMMON_H
#define RN50_CUDA_COMMON_H

#include <cublas_v2.h>
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <cudnn.h>
#include <stdint.h>

extern "C" {
#include "../backend.h"
#include "../core/util.h"
}

/* While this thread captures a graph (graph.cu), a failing call does not
 * end the program: it becomes the capture's failure (the first one is
 * kept), the capture fails and the caller runs the step eagerly. Returns 1
 * if it recorded the failure, 0 if no capture is running. */
int cuda_capture_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- checked calls: any failure is fatal and names its call and place
 * (during a capture: the capture fails instead) ---- */
#define CUDA_CHECK(call)                                                                            \
  do {                                                                                              \
    cudaError_t e_ = (call);                                                                        \
    if (e_ != cudaSuccess && !cuda_capture_note("%s failed at %s:%d: %s", #call, __FILE__, __LINE__, \
                                                cudaGetErrorString(e_)))                            \
      die("CUDA error: %s failed at %s:%d: %s", #call, __FILE__, __LINE__, cudaGetErrorString(e_));   \
  } while (0)
#define CUDNN_CHECK(call)                                                                                 \
  do {                                                                                                    \
    cudnnStatus_t s_ = (call);                                                                            \
    if (s_ != CUDNN_STATUS_SUCCESS && !cuda_capture_note("%s failed at %s:%d: %s", #call, __FILE__, __LINE__, \
                                                         cudnnGetErrorString(s_)))                        \
      die("cuDNN error: %s failed at %s:%d: %s", #call, __FILE__, __LINE__, cudnnGetErrorString(s_));       \
  } while (0)
#define CUBLAS_CHECK(call)                                                                                  \
  do {                                                                                                      \
    cublasStatus_t s_ = (call);                                                                             \
    if (s_ != CUBLAS_STATUS_SUCCESS && !cuda_capture_note("%s failed at %s:%d: %s", #call, __FILE__, __LINE__, \
                                                          cublasGetStatusString(s_)))                       \
      die("cuBLAS error: %s failed at %s:%d: %s", #call, __FILE__, __LINE__, cublasGetStatusString(s_));      \
  } while (0)
/* After every kernel launch: launch errors now; with RN50_CUDA_SYNC=1 also
 * wait for the stream so that an asynchronous fault names its kernel. */
#define LAUNCH_CHECK(be, what) cuda_after_launch((be), (what), __FILE__, __LINE__)
/* After a cuDNN / cuBLAS call (whose status is checked by the macros
 * above): clears any error the library left behind in the runtime's
 * per-thread state, so that it is not blamed on our next kernel; with
 * RN50_CUDA_SYNC=1 waits and checks like LAUNCH_CHECK. */
#define LIBRARY_CHECK(be, what) cuda_after_library((be), (what), __FILE__, __LINE__)

/* ---- private state ---- */
struct conv_entry; /* conv.cu */
struct conv_saved; /* conv.cu: algorithms read from a cache file */

struct cuda_impl {
  int device;
  char device_name[256];
  int sm_count;
  int cc_major, cc_minor;
  int tf32;       /* fp32 convs / GEMMs may use TF32 */
  int debug_sync; /* RN50_CUDA_SYNC=1: synchronise after every launch */
  int verbose;    /* RN50_CUDA_VERBOSE=1: print algorithm choices */
  cudaStream_t stream;
  cudnnHandle_t cudnn;
  cublasHandle_t cublas;
  void *cublas_ws;
  size_t cublas_ws_size;

  /* conv plans (conv.cu) */
  conv_entry *convs;
  int n_convs, cap_convs;
  conv_saved *saved;
  int n_saved;
  void *ws; /* one cuDNN workspace shared by every conv */
  size_t ws_size;
  size_t ws_cap;   /* most workspace an algorithm may ask for */
  void *find_buf;  /* random x, y, w for the algorithm search; freed at
                      the first conv that runs for real */
  size_t find_size;
  void *wgrad_buf; /* dw in act dtype before it is added to the fp32 dw */
  size_t wgrad_size;

  /* other scratch (bn.cu, fc.cu) */
  void *bn_buf;
  size_t bn_size;
  void *fc_buf;
  size_t fc_size;

  /* memory: device bytes in use (cudaMemGetInfo) sampled after every
   * allocation; baseline = in use right after creation (context, handles) */
  size_t mem_baseline, mem_peak;
  /* bytes rn50 itself allocated (cu_alloc, scratch buffers, workspaces):
   * what torch.cuda.max_memory_allocated counts on PyTorch's side */
  size_t alloc_live, alloc_peak;
  int n_alloc;
  void *alloc_ptr[1024];
  size_t alloc_size[1024];
  int mem_report; /* RN50_CUDA_MEM=1: print the peak at destroy */

  /* nonfinite(): device flag and its pinned host copy */
  int *flag_dev;
  int *flag_host;

  /* graph steps (graph.cu) */
  int capturing;          /* the stream is being captured by this backend's thread */
  char capture_err[320];  /* first failure during the capture */
  uint64_t mem_version;   /* bumped whenever a scratch buffer is (re)allocated */
  cudaStream_t upload;    /* input uploads (created at first use) */
  cudaEvent_t up_ready[2], up_free[2];
};

static inline cuda_impl *cuda_of(backend *be) { return (cuda_impl *)be->impl; }

void cuda_after_launch(backend *be, const char *what, const char *file, int line);
void cuda_after_library(backend *be, const char *what, const char *file, int line);
/* Sample device memory in use after an allocation (for the peak). */
void cuda_mem_sample(backend *be);
/* Grow a device scratch buffer to at least bytes (waits for the stream
 * before freeing the old one). Returns *buf. During a capture it cannot
 * allocate: if the buffer is too small it returns NULL (and the capture
 * fails); the caller then enqueues nothing. */
void *cuda_scratch(backend *be, void **buf, size_t *size, size_t bytes, const char *what);
/* Blocks for a grid-stride elementwise kernel over n items. */
int cuda_grid_blocks(backend *be, size_t n, int threads);
/* graph.cu: the graph table, and its teardown (upload stream, events) */
extern const backend_graph cuda_graph_table;
void cuda_graph_teardown(backend *be);

/* ---- dtypes ---- */
static inline size_t dtype_size(dtype t) { return t == DTYPE_F32 ? 4 : 2; }
static inline cudaDataType_t dtype_cuda(dtype t) {
  return t == DTYPE_F32 ? CUDA_R_32F : t == DTYPE_BF16 ? CUDA_R_16BF : CUDA_R_16F;
}
static inline cudnnDataType_t dtype_cudnn(dtype t) {
  return t == DTYPE_F32 ? CUDNN_DATA_FLOAT : t == DTYPE_BF16 ? CUDNN_DATA_BFLOAT16 : CUDNN_DATA_HALF;
}
static inline int is_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

__device__ __forceinline__ float to_f(float x) { return x; }
__device__ __forceinline__ float to_f(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f(__half x) { return __half2float(x); }
template <typename T> __device__ __forceinline__ T from_f(float x);
template <> __device__ __forceinline__ float from_f<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f<__half>(float x) { return __float2half_rn(x); }

/* V consecutive elements of T as floats; one 16-byte access when
 * V * sizeof(T) == 16 (the caller guarantees alignment), else V scalars. */
template <typename T, int V> __device__ __forceinline__ void load_vec(float (&out)[V], const T *p) {
  if constexpr (V * sizeof(T) == 16) {
    uint4 u = *reinterpret_cast<const uint4 *>(p);
    const T *t = reinterpret_cast<const T *>(&u);
#pragma unroll
    for (int v = 0; v < V; v++) out[v] = to_f(t[v]);
  } else {
#pragma unroll
    for (int v = 0; v < V; v++) out[v] = to_f(p[v]);
  }
}
template <typename T, int V> __device__ __forceinline__ void store_vec(T *p, const float (&in)[V]) {
  if constexpr (V * sizeof(T) == 16) {
    uint4 u;
    T *t = reinterpret_cast<T *>(&u);
#pragma unroll
    for (int v = 0; v < V; v++) t[v] = from_f<T>(in[v]);
    *reinterpret_cast<uint4 *>(p) = u;
  } else {
#pragma unroll
    for (int v = 0; v < V; v++) p[v] = from_f<T>(in[v]);
  }
}

/* Call F<T>(args...) for the backend's activation dtype. */
#define DISPATCH_ACT(dt, F, ...)                    \
  do {                                              \
    switch (dt) {                                   \
    case DTYPE_F32: F<float>(__VA_ARGS__); break;   \
    case DTYPE_BF16: F<__nv_bfloat16>(__VA_ARGS__); break; \
    case DTYPE_F16: F<__half>(__VA_ARGS__); break;  \
    default: die("unknown dtype %d", (int)(dt));    \
    }                                               \
  } while (0)

#endif
