/* cuda_backend.cu: the CUDA backend's dispatch table and everything that is
 * not an op — device choice, the one stream every call runs on, cuDNN and
 * cuBLAS handles, device and pinned host memory, scratch buffers, teardown.
 * Every call is asynchronous on the stream except to_host, sync and
 * nonfinite, which wait. Environment knobs (for experiments only):
 *   RN50_CUDA_SYNC=1       wait after every launch (locates faults)
 *   RN50_CUDA_VERBOSE=1    print each conv shape's chosen algorithms
 *   RN50_CUDA_IN_C=4|8     input channels the first conv sees (default 4)
 *   RN50_CUDNN_WS_MB=N     largest cuDNN workspace an algorithm may use (512)
 *   RN50_CUDA_MEM=1        print the peak device memory in use at destroy */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "bn.h"
#include "conv.h"
#include "cuda_backend.h"
#include "fc.h"
#include "input.h"
#include "loss.h"
#include "pool.h"
#include "sgd.h"

void cuda_after_launch(backend *be, const char *what, const char *file, int line) {
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess &&
      !cuda_capture_note("launch of %s failed at %s:%d: %s", what, file, line, cudaGetErrorString(e)))
    die("CUDA error: launch of %s failed at %s:%d: %s", what, file, line, cudaGetErrorString(e));
  cuda_impl *ci = cuda_of(be);
  if (ci->debug_sync && !ci->capturing) {
    e = cudaStreamSynchronize(ci->stream);
    if (e != cudaSuccess) die("CUDA error: kernel %s (launched at %s:%d) failed: %s", what, file, line,
                              cudaGetErrorString(e));
  }
}

void cuda_after_library(backend *be, const char *what, const char *file, int line) {
  (void)cudaGetLastError();
  cuda_impl *ci = cuda_of(be);
  if (ci->debug_sync && !ci->capturing) {
    cudaError_t e = cudaStreamSynchronize(ci->stream);
    if (e != cudaSuccess) die("CUDA error: %s (called at %s:%d) failed: %s", what, file, line, cudaGetErrorString(e));
  }
}

void cuda_mem_sample(backend *be) {
  cuda_impl *ci = cuda_of(be);
  size_t fr = 0, tot = 0;
  if (cudaMemGetInfo(&fr, &tot) == cudaSuccess && tot - fr > ci->mem_peak) ci->mem_peak = tot - fr;
}

extern "C" void cuda_memory_stats(backend *be, size_t *peak_in_use, size_t *baseline) {
  cuda_impl *ci = cuda_of(be);
  cuda_mem_sample(be);
  if (peak_in_use) *peak_in_use = ci->mem_peak;
  if (baseline) *baseline = ci->mem_baseline;
}

extern "C" void cuda_backend_describe(backend *be, char *buf, size_t len) {
  cuda_impl *ci = cuda_of(be);
  int drv = 0, rt = 0, bl = 0;
  size_t fr = 0, tot = 0;
  cudaDriverGetVersion(&drv);
  cudaRuntimeGetVersion(&rt);
  cudaMemGetInfo(&fr, &tot);
  if (cublasGetVersion(ci->cublas, &bl) != CUBLAS_STATUS_SUCCESS) bl = 0;
  size_t dn = cudnnGetVersion();
  (void)cudaGetLastError();
  snprintf(buf, len, "%s, cc %d.%d, %d SMs, %.1f GiB; driver %d.%d, runtime %d.%d, cuDNN %zu.%zu.%zu, cuBLAS %d.%d.%d",
           ci->device_name, ci->cc_major, ci->cc_minor, ci->sm_count, tot / 1073741824.0, drv / 1000,
           (drv % 1000) / 10, rt / 1000, (rt % 1000) / 10, dn / 10000, (dn % 10000) / 100, dn % 100, bl / 10000,
           (bl % 10000) / 100, bl % 100);
}

static void alloc_count(cuda_impl *ci, long long delta) {
  ci->alloc_live = (size_t)((long long)ci->alloc_live + delta);
  if (ci->alloc_live > ci->alloc_peak) ci->alloc_peak = ci->alloc_live;
}

extern "C" size_t cuda_memory_allocated_peak(backend *be) { return cuda_of(be)->alloc_peak; }

void *cuda_scratch(backend *be, void **buf, size_t *size, size_t bytes, const char *what) {
  if (*buf && *size >= bytes) return *buf;
  cuda_impl *ci = cuda_of(be);
  if (ci->capturing) { /* no allocation in a graph: the capture fails */
    cuda_capture_note("scratch for %s would grow from %zu to %zu bytes during the capture", what, *size, bytes);
    return NULL;
  }
  ci->mem_version++; /* graphs that use the old buffer are stale */
  if (*buf) {
    CUDA_CHECK(cudaStreamSynchronize(ci->stream));
    CUDA_CHECK(cudaFree(*buf));
    alloc_count(ci, -(long long)*size);
    *buf = NULL;
    *size = 0;
  }
  bytes = (bytes + 255) & ~(size_t)255;
  if (bytes == 0) bytes = 256;
  cudaError_t e = cudaMalloc(buf, bytes);
  if (e != cudaSuccess) {
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    die("CUDA: cannot allocate %zu bytes of scratch for %s: %s (%zu of %zu MiB free)", bytes, what,
        cudaGetErrorString(e), fr >> 20, tot >> 20);
  }
  *size = bytes;
  alloc_count(ci, (long long)bytes);
  cuda_mem_sample(be);
  return *buf;
}

int cuda_grid_blocks(backend *be, size_t n, int threads) {
  size_t want = (n + threads - 1) / threads;
  size_t most = (size_t)cuda_of(be)->sm_count * 16;
  if (want > most) want = most;
  return want < 1 ? 1 : (int)want;
}

/* ---- memory ---- */
/* The calls a loader thread may make set the device first: the current
 * device is per host thread. */
static void cu_set_device(backend *be) {
  cuda_impl *ci = cuda_of(be);
  if (!ci->capturing) CUDA_CHECK(cudaSetDevice(ci->device)); /* (a capture's thread has it set already) */
}

static void *cu_alloc(backend *be, size_t bytes, const char *what) {
  void *p = NULL;
  cu_set_device(be);
  if (bytes == 0) bytes = 1;
  cudaError_t e = cudaMalloc(&p, bytes);
  if (e != cudaSuccess) {
    size_t fr = 0, tot = 0;
    cudaMemGetInfo(&fr, &tot);
    die("CUDA: cannot allocate %zu bytes of device memory for %s: %s (%zu of %zu MiB free)", bytes,
        what ? what : "?", cudaGetErrorString(e), fr >> 20, tot >> 20);
  }
  cuda_impl *ci = cuda_of(be);
  if (ci->n_alloc < 1024) {
    ci->alloc_ptr[ci->n_alloc] = p;
    ci->alloc_size[ci->n_alloc++] = bytes;
  }
  alloc_count(ci, (long long)bytes);
  cuda_mem_sample(be);
  return p;
}

static void cu_free(backend *be, void *p) {
  cuda_impl *ci = cuda_of(be);
  for (int i = 0; p && i < ci->n_alloc; i++)
    if (ci->alloc_ptr[i] == p) {
      alloc_count(ci, -(long long)ci->alloc_size[i]);
      ci->alloc_ptr[i] = ci->alloc_ptr[--ci->n_alloc];
      ci->alloc_size[i] = ci->alloc_size[ci->n_alloc];
      break;
    }
  if (p) CUDA_CHECK(cudaFree(p));
}

static void *cu_alloc_host(backend *be, size_t bytes, const char *what) {
  void *p = NULL;
  cu_set_device(be);
  if (bytes == 0) bytes = 1;
  cudaError_t e = cudaMallocHost(&p, bytes);
  if (e != cudaSuccess)
    die("CUDA: cannot allocate %zu bytes of pinned host memory for %s: %s", bytes, what ? what : "?",
        cudaGetErrorString(e));
  return p;
}

static void cu_free_host(backend *be, void *p) {
  if (p) CUDA_CHECK(cudaFreeHost(p));
}

static void cu_to_device(backend *be, void *dst, const void *src, size_t bytes) {
  cu_set_device(be);
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, cuda_of(be)->stream));
}

static void cu_to_host(backend *be, void *dst, const void *src, size_t bytes) {
  cuda_impl *ci = cuda_of(be);
  cu_set_device(be);
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, ci->stream));
  CUDA_CHECK(cudaStreamSynchronize(ci->stream));
}

static void cu_zero(backend *be, void *p, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, cuda_of(be)->stream));
}

static void cu_sync(backend *be) {
  cuda_impl *ci = cuda_of(be);
  CUDA_CHECK(cudaStreamSynchronize(ci->stream));
  if (ci->upload) CUDA_CHECK(cudaStreamSynchronize(ci->upload));
}

static void cu_destroy(backend *be) {
  if (!be) return;
  cuda_impl *ci = cuda_of(be);
  if (ci) {
    CUDA_CHECK(cudaStreamSynchronize(ci->stream));
    if (ci->mem_report) {
      cuda_mem_sample(be);
      fprintf(stderr, "rn50: cuda memory: peak in use %.1f MiB (of which %.1f MiB before any allocation: context, "
                      "cuDNN/cuBLAS handles and workspace); rn50's share %.1f MiB\n",
              ci->mem_peak / 1048576.0, ci->mem_baseline / 1048576.0,
              (ci->mem_peak - ci->mem_baseline) / 1048576.0);
    }
    cuda_graph_teardown(be);
    cuda_conv_destroy(be);
    if (ci->bn_buf) CUDA_CHECK(cudaFree(ci->bn_buf));
    if (ci->fc_buf) CUDA_CHECK(cudaFree(ci->fc_buf));
    if (ci->flag_dev) CUDA_CHECK(cudaFree(ci->flag_dev));
    if (ci->flag_host) CUDA_CHECK(cudaFreeHost(ci->flag_host));
    if (ci->cublas) CUBLAS_CHECK(cublasDestroy(ci->cublas));
    if (ci->cublas_ws) CUDA_CHECK(cudaFree(ci->cublas_ws));
    if (ci->cudnn) CUDNN_CHECK(cudnnDestroy(ci->cudnn));
    if (ci->stream) CUDA_CHECK(cudaStreamDestroy(ci->stream));
    free(ci);
  }
  free(be);
}

static int env_int(const char *name, int dflt) {
  const char *s = getenv(name);
  if (!s || !*s) return dflt;
  return atoi(s);
}

/* ---- creation: every failure here returns NULL with err filled ---- */
#define TRY_CUDA(call)                                                                           \
  do {                                                                                           \
    cudaError_t e_ = (call);                                                                     \
    if (e_ != cudaSuccess) {                                                                     \
      snprintf(err, errlen, "%s failed (%s:%d): %s", #call, __FILE__, __LINE__, cudaGetErrorString(e_)); \
      goto fail;                                                                                 \
    }                                                                                            \
  } while (0)

extern "C" int cuda_backend_available(void) { return 1; }

extern "C" backend *cuda_backend_create(dtype act_dtype, int allow_tf32, int device, char *err, size_t errlen) {
  backend *be = NULL;
  cuda_impl *ci = NULL;
  int count = 0;
  cudaDeviceProp prop;
  cudnnStatus_t ds;
  cublasStatus_t bs;
  if (act_dtype != DTYPE_F32 && act_dtype != DTYPE_BF16 && act_dtype != DTYPE_F16) {
    snprintf(err, errlen, "unknown activation dtype %d", (int)act_dtype);
    return NULL;
  }
  cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    snprintf(err, errlen, "no usable CUDA GPU (%s)", e != cudaSuccess ? cudaGetErrorString(e) : "0 devices");
    cudaGetLastError(); /* clear the sticky error from the failed query */
    return NULL;
  }
  if (device < 0 || device >= count) {
    snprintf(err, errlen, "GPU %d requested but %d present", device, count);
    return NULL;
  }
  be = (backend *)xcalloc(1, sizeof(backend), "CUDA backend");
  ci = (cuda_impl *)xcalloc(1, sizeof(cuda_impl), "CUDA backend state");
  be->impl = ci;
  ci->device = device;
  TRY_CUDA(cudaSetDevice(device));
  TRY_CUDA(cudaGetDeviceProperties(&prop, device));
  snprintf(ci->device_name, sizeof ci->device_name, "%s", prop.name);
  TRY_CUDA(cudaDeviceGetAttribute(&ci->sm_count, cudaDevAttrMultiProcessorCount, device));
  TRY_CUDA(cudaDeviceGetAttribute(&ci->cc_major, cudaDevAttrComputeCapabilityMajor, device));
  TRY_CUDA(cudaDeviceGetAttribute(&ci->cc_minor, cudaDevAttrComputeCapabilityMinor, device));
  if (ci->cc_major < 8) {
    snprintf(err, errlen, "GPU %d (%s) has compute capability %d.%d; rn50 needs 8.0 or newer", device,
             ci->device_name, ci->cc_major, ci->cc_minor);
    goto fail;
  }
  ci->tf32 = act_dtype == DTYPE_F32 && allow_tf32;
  ci->debug_sync = env_int("RN50_CUDA_SYNC", 0);
  ci->verbose = env_int("RN50_CUDA_VERBOSE", 0);
  {
    int mb = env_int("RN50_CUDNN_WS_MB", 512);
    ci->ws_cap = (size_t)(mb < 0 ? 0 : mb) << 20;
  }
  TRY_CUDA(cudaStreamCreateWithFlags(&ci->stream, cudaStreamNonBlocking));
  ds = cudnnCreate(&ci->cudnn);
  if (ds != CUDNN_STATUS_SUCCESS) {
    snprintf(err, errlen, "cudnnCreate failed: %s (is libcudnn on LD_LIBRARY_PATH?)", cudnnGetErrorString(ds));
    ci->cudnn = NULL;
    goto fail;
  }
  ds = cudnnSetStream(ci->cudnn, ci->stream);
  if (ds != CUDNN_STATUS_SUCCESS) {
    snprintf(err, errlen, "cudnnSetStream failed: %s", cudnnGetErrorString(ds));
    goto fail;
  }
  bs = cublasCreate(&ci->cublas);
  if (bs != CUBLAS_STATUS_SUCCESS) {
    snprintf(err, errlen, "cublasCreate failed: %s", cublasGetStatusString(bs));
    ci->cublas = NULL;
    goto fail;
  }
  /* a fixed workspace keeps cuBLAS from allocating during a step (and
   * makes the step capturable in a CUDA graph later) */
  ci->cublas_ws_size = (size_t)32 << 20;
  TRY_CUDA(cudaMalloc(&ci->cublas_ws, ci->cublas_ws_size));
  alloc_count(ci, (long long)ci->cublas_ws_size);
  bs = cublasSetStream(ci->cublas, ci->stream);
  if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetWorkspace(ci->cublas, ci->cublas_ws, ci->cublas_ws_size);
  /* fp32 GEMMs stay true fp32 unless the compute type asks for TF32 */
  if (bs == CUBLAS_STATUS_SUCCESS) bs = cublasSetMathMode(ci->cublas, CUBLAS_DEFAULT_MATH);
  if (bs != CUBLAS_STATUS_SUCCESS) {
    snprintf(err, errlen, "cuBLAS setup failed: %s", cublasGetStatusString(bs));
    goto fail;
  }
  TRY_CUDA(cudaMalloc(&ci->flag_dev, sizeof(int)));
  TRY_CUDA(cudaMallocHost(&ci->flag_host, sizeof(int)));

  ci->mem_report = env_int("RN50_CUDA_MEM", 0);
  {
    size_t fr = 0, tot = 0;
    TRY_CUDA(cudaMemGetInfo(&fr, &tot));
    ci->mem_baseline = ci->mem_peak = tot - fr;
  }

  be->name = "cuda";
  be->act_dtype = act_dtype;
  be->act_size = dtype_size(act_dtype);
  be->in_c = env_int("RN50_CUDA_IN_C", 4) == 8 ? 8 : 4;
  be->alloc = cu_alloc;
  be->free = cu_free;
  be->alloc_host = cu_alloc_host;
  be->free_host = cu_free_host;
  be->to_device = cu_to_device;
  be->to_host = cu_to_host;
  be->copy = cu_to_device; /* cudaMemcpyDefault: device to device too */
  be->zero = cu_zero;
  be->sync = cu_sync;
  be->destroy = cu_destroy;
  be->input_from_u8 = cuda_input_from_u8;
  be->cast_params = cuda_cast_params;
  be->conv_fwd = cuda_conv_fwd;
  be->conv_bwd_data = cuda_conv_bwd_data;
  be->conv_bwd_filter = cuda_conv_bwd_filter;
  be->conv_prepare = cuda_conv_prepare;
  be->bn_fwd_train = cuda_bn_fwd_train;
  be->bn_fwd_eval = cuda_bn_fwd_eval;
  be->bn_bwd = cuda_bn_bwd;
  be->maxpool_fwd = cuda_maxpool_fwd;
  be->maxpool_bwd = cuda_maxpool_bwd;
  be->avgpool_fwd = cuda_avgpool_fwd;
  be->avgpool_bwd = cuda_avgpool_bwd;
  be->fc_fwd = cuda_fc_fwd;
  be->fc_bwd = cuda_fc_bwd;
  be->xent = cuda_xent;
  be->sgd_step = cuda_sgd_step;
  be->nonfinite = cuda_nonfinite;
  be->ema_update = cuda_ema_update;
  be->graph = &cuda_graph_table;
  (void)cudaGetLastError(); /* nothing left over from the libraries' setup */
  return be;

fail:
  if (ci) {
    if (ci->flag_host) cudaFreeHost(ci->flag_host);
    if (ci->flag_dev) cudaFree(ci->flag_dev);
    if (ci->cublas) cublasDestroy(ci->cublas);
    if (ci->cublas_ws) cudaFree(ci->cublas_ws);
    if (ci->cudnn) cudnnDestroy(ci->cudnn);
    if (ci->stream) cudaStreamDestroy(ci->stream);
    free(ci);
  }
  free(be);
  cudaGetLastError();
  return NULL;
}
