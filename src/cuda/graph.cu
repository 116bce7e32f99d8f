/* graph.cu: the CUDA backend's graph table (backend.h, backend_graph) —
 * stream capture into a CUDA graph and its replay, the step scalars, and
 * input uploads on a second stream ordered by events.
 *
 * Capture (cudaStreamCaptureModeThreadLocal: only this thread's calls are
 * restricted, so nothing another thread does can break it) records every
 * kernel, cuDNN / cuBLAS call, memset and copy enqueued on the backend's
 * stream. Nothing in a step may allocate, search or wait: cuDNN plans and
 * scratch buffers exist after the uncaptured first step (src/model/graph.c);
 * cuBLAS runs in its preallocated workspace (cublasSetWorkspace at
 * creation); a scratch buffer that would have to grow, a conv without a
 * plan, or any failing CUDA / cuDNN / cuBLAS call during the capture is
 * recorded by cuda_capture_note instead of ending the program, and end then
 * reports the capture as failed (the stream leaves capture mode, nothing
 * ran, the caller falls back to the eager step). RN50_CUDA_SYNC's waits are
 * skipped while capturing and done after each launch instead. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "conv.h"
#include "loss.h"
#include "sgd.h"

/* the backend whose capture this thread is running, if any */
static thread_local cuda_impl *tl_capture;

int cuda_capture_note(const char *fmt, ...) {
  cuda_impl *ci = tl_capture;
  if (!ci || !ci->capturing) return 0;
  if (!ci->capture_err[0]) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ci->capture_err, sizeof ci->capture_err, fmt, ap);
    va_end(ap);
  }
  return 1;
}

static int g_begin(backend *be, char *err, size_t errlen) {
  cuda_impl *ci = cuda_of(be);
  if (ci->capturing) {
    snprintf(err, errlen, "a capture is already running");
    return -1;
  }
  CUDA_CHECK(cudaSetDevice(ci->device));
  cuda_conv_release_search(be); /* (waits and frees: before the capture) */
  (void)cudaGetLastError();      /* nothing left over is blamed on the capture */
  cudaError_t e = cudaStreamBeginCapture(ci->stream, cudaStreamCaptureModeThreadLocal);
  if (e != cudaSuccess) {
    snprintf(err, errlen, "cudaStreamBeginCapture: %s", cudaGetErrorString(e));
    (void)cudaGetLastError();
    return -1;
  }
  ci->capture_err[0] = 0;
  ci->capturing = 1;
  tl_capture = ci;
  return 0;
}

static int g_end(backend *be, void **graph, char *err, size_t errlen) {
  cuda_impl *ci = cuda_of(be);
  *graph = NULL;
  if (!ci->capturing) {
    snprintf(err, errlen, "no capture is running");
    return -1;
  }
  cudaGraph_t g = NULL;
  cudaError_t e = cudaStreamEndCapture(ci->stream, &g);
  ci->capturing = 0;
  tl_capture = NULL;
  if (ci->capture_err[0] || e != cudaSuccess || !g) {
    snprintf(err, errlen, "%s", ci->capture_err[0] ? ci->capture_err
                                : e != cudaSuccess ? cudaGetErrorString(e)
                                                   : "cudaStreamEndCapture returned no graph");
    if (g) cudaGraphDestroy(g);
    (void)cudaGetLastError();
    return -1;
  }
  cudaGraphExec_t x = NULL;
  e = cudaGraphInstantiate(&x, g, 0);
  cudaGraphDestroy(g);
  if (e != cudaSuccess || !x) {
    snprintf(err, errlen, "cudaGraphInstantiate: %s", cudaGetErrorString(e));
    (void)cudaGetLastError();
    return -1;
  }
  /* upload the graph now, so that the first launch is not slower */
  e = cudaGraphUpload(x, ci->stream);
  if (e != cudaSuccess) {
    snprintf(err, errlen, "cudaGraphUpload: %s", cudaGetErrorString(e));
    cudaGraphExecDestroy(x);
    (void)cudaGetLastError();
    return -1;
  }
  *graph = (void *)x;
  return 0;
}

static int g_launch(backend *be, void *graph, char *err, size_t errlen) {
  cuda_impl *ci = cuda_of(be);
  if (ci->capturing) {
    snprintf(err, errlen, "launch during a capture");
    return -1;
  }
  cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)graph, ci->stream);
  if (e != cudaSuccess) {
    snprintf(err, errlen, "cudaGraphLaunch: %s", cudaGetErrorString(e));
    (void)cudaGetLastError();
    return -1;
  }
  if (ci->debug_sync) {
    e = cudaStreamSynchronize(ci->stream);
    if (e != cudaSuccess) die("CUDA error: a graph replay (training step) failed: %s", cudaGetErrorString(e));
  }
  return 0;
}

static void g_destroy(backend *be, void *graph) {
  if (graph) CUDA_CHECK(cudaGraphExecDestroy((cudaGraphExec_t)graph));
}

static uint64_t g_memory_version(backend *be) { return cuda_of(be)->mem_version; }

/* the value travels as a kernel argument: the host copy may change at once */
__global__ void set_scalars_kernel(step_scalars *dst, step_scalars v) { *dst = v; }

static void g_set_scalars(backend *be, step_scalars *dst, const step_scalars *src) {
  set_scalars_kernel<<<1, 1, 0, cuda_of(be)->stream>>>(dst, *src);
  LAUNCH_CHECK(be, "set_scalars_kernel");
}

static void g_to_host_async(backend *be, void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, cuda_of(be)->stream));
}

/* ---- uploads on a second stream ---- */
static void upload_init(backend *be) {
  cuda_impl *ci = cuda_of(be);
  if (ci->upload) return;
  CUDA_CHECK(cudaSetDevice(ci->device));
  for (int s = 0; s < 2; s++) {
    CUDA_CHECK(cudaEventCreateWithFlags(&ci->up_ready[s], cudaEventDisableTiming));
    CUDA_CHECK(cudaEventCreateWithFlags(&ci->up_free[s], cudaEventDisableTiming));
  }
  CUDA_CHECK(cudaStreamCreateWithFlags(&ci->upload, cudaStreamNonBlocking));
}

static void g_upload(backend *be, int slot, void *dst, const void *src, size_t bytes) {
  cuda_impl *ci = cuda_of(be);
  upload_init(be);
  CUDA_CHECK(cudaSetDevice(ci->device));
  CUDA_CHECK(cudaStreamWaitEvent(ci->upload, ci->up_free[slot & 1], 0)); /* the slot's last reader is done */
  if (bytes) CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, ci->upload));
  CUDA_CHECK(cudaEventRecord(ci->up_ready[slot & 1], ci->upload));
}

static void g_upload_wait(backend *be, int slot) {
  cuda_impl *ci = cuda_of(be);
  upload_init(be);
  CUDA_CHECK(cudaStreamWaitEvent(ci->stream, ci->up_ready[slot & 1], 0));
}

static void g_upload_done(backend *be, int slot) {
  cuda_impl *ci = cuda_of(be);
  upload_init(be);
  CUDA_CHECK(cudaEventRecord(ci->up_free[slot & 1], ci->stream));
}

void cuda_graph_teardown(backend *be) {
  cuda_impl *ci = cuda_of(be);
  if (!ci->upload) return;
  CUDA_CHECK(cudaStreamSynchronize(ci->upload));
  CUDA_CHECK(cudaStreamDestroy(ci->upload));
  for (int s = 0; s < 2; s++) {
    CUDA_CHECK(cudaEventDestroy(ci->up_ready[s]));
    CUDA_CHECK(cudaEventDestroy(ci->up_free[s]));
  }
  ci->upload = NULL;
}

extern const backend_graph cuda_graph_table = {
    g_begin,           /* begin */
    g_end,             /* end */
    g_launch,          /* launch */
    g_destroy,         /* destroy */
    g_memory_version,  /* memory_version */
    g_set_scalars,     /* set_scalars */
    cuda_xent_s,       /* xent */
    cuda_step_check,   /* check */
    cuda_sgd_step_s,   /* sgd_step */
    cuda_ema_update_s, /* ema_update */
    cuda_step_restore, /* restore */
    g_to_host_async,   /* to_host_async */
    g_upload,          /* upload */
    g_upload_wait,     /* upload_wait */
    g_upload_done,     /* upload_done */
};
