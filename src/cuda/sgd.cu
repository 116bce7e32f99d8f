/* sgd.cu: kernels over the flat fp32 parameter array — the SGD step (one
 * kernel for all tensors, writing the act-dtype working copy as it goes),
 * the working-copy cast, the non-finite gradient check and the EMA. */
#include "sgd.h"

template <typename T> __global__ void cast_kernel(T *__restrict__ dst, const float *__restrict__ src, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = from_f<T>(src[i]);
}

template <typename T> static void cast_launch(backend *be, void *dst, const float *src, size_t n) {
  int blocks = cuda_grid_blocks(be, n, 256);
  cast_kernel<T><<<blocks, 256, 0, cuda_of(be)->stream>>>((T *)dst, src, n);
  LAUNCH_CHECK(be, "cast_kernel");
}

void cuda_cast_params(backend *be, void *dst, const float *src, size_t n) {
  if (n == 0 || dst == (const void *)src) return;
  DISPATCH_ACT(be->act_dtype, cast_launch, be, dst, src, n);
}

struct sgd_args {
  size_t n, n_decay;
  float lr, momentum, wd, wd_rest, grad_scale;
  int nesterov;
};

/* torch.optim.SGD with dampening 0; w_work may be NULL (no working copy).
 * sc (graph steps): lr and grad_scale read on the device, nothing done when
 * the step is skipped. */
template <typename T>
__global__ void sgd_kernel(float *__restrict__ w, float *__restrict__ buf, const float *__restrict__ g,
                           T *__restrict__ w_work, sgd_args a, const step_scalars *__restrict__ sc) {
  if (sc) {
    if (sc->skip) return;
    a.lr = sc->lr;
    a.grad_scale = sc->sgd_grad;
  }
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < a.n; i += (size_t)gridDim.x * blockDim.x) {
    float wi = w[i];
    float gi = a.grad_scale * g[i] + (i < a.n_decay ? a.wd : a.wd_rest) * wi;
    float b = a.momentum * buf[i] + gi;
    buf[i] = b;
    float step = a.nesterov ? gi + a.momentum * b : b;
    wi -= a.lr * step;
    w[i] = wi;
    if (w_work) w_work[i] = from_f<T>(wi);
  }
}

template <typename T>
static void sgd_launch(backend *be, float *w, float *buf, const float *g, void *w_work, sgd_args a,
                       const step_scalars *sc) {
  int blocks = cuda_grid_blocks(be, a.n, 256);
  sgd_kernel<T><<<blocks, 256, 0, cuda_of(be)->stream>>>(w, buf, g, (T *)w_work, a, sc);
  LAUNCH_CHECK(be, "sgd_kernel");
}

static void sgd_step(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                     float lr, float momentum, float wd, float wd_rest, int nesterov, float grad_scale,
                     const step_scalars *sc) {
  if (n == 0) return;
  sgd_args a;
  a.n = n;
  a.n_decay = n_decay;
  a.lr = lr;
  a.momentum = momentum;
  a.wd = wd;
  a.wd_rest = wd_rest;
  a.grad_scale = grad_scale;
  a.nesterov = nesterov;
  /* an fp32 working copy that is the master itself needs no write */
  if (w_work == (void *)w) w_work = NULL;
  DISPATCH_ACT(be->act_dtype, sgd_launch, be, w, buf, g, w_work, a, sc);
}

void cuda_sgd_step(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                   float lr, float momentum, float wd, float wd_rest, int nesterov, float grad_scale) {
  sgd_step(be, w, buf, g, w_work, n, n_decay, lr, momentum, wd, wd_rest, nesterov, grad_scale, NULL);
}

void cuda_sgd_step_s(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                     float momentum, float wd, float wd_rest, int nesterov, const step_scalars *s) {
  sgd_step(be, w, buf, g, w_work, n, n_decay, 0.0f, momentum, wd, wd_rest, nesterov, 0.0f, s);
}

__global__ void nonfinite_kernel(int *__restrict__ flag, const float *__restrict__ g, size_t n) {
  int bad = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    bad |= !isfinite(g[i]);
  if (__syncthreads_or(bad) && threadIdx.x == 0) *flag = 1;
}

int cuda_nonfinite(backend *be, const float *g, size_t n) {
  cuda_impl *ci = cuda_of(be);
  if (n == 0) return 0;
  CUDA_CHECK(cudaMemsetAsync(ci->flag_dev, 0, sizeof(int), ci->stream));
  int blocks = cuda_grid_blocks(be, n, 256);
  nonfinite_kernel<<<blocks, 256, 0, ci->stream>>>(ci->flag_dev, g, n);
  LAUNCH_CHECK(be, "nonfinite_kernel");
  CUDA_CHECK(cudaMemcpyAsync(ci->flag_host, ci->flag_dev, sizeof(int), cudaMemcpyDeviceToHost, ci->stream));
  CUDA_CHECK(cudaStreamSynchronize(ci->stream));
  return *ci->flag_host != 0;
}

__global__ void ema_kernel(float *__restrict__ ema, const float *__restrict__ w, size_t n, float decay,
                           const step_scalars *__restrict__ sc) {
  if (sc && sc->skip) return;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    ema[i] = decay * ema[i] + (1.0f - decay) * w[i];
}

static void ema_update(backend *be, float *ema, const float *w, size_t n, float decay, const step_scalars *sc) {
  if (n == 0) return;
  int blocks = cuda_grid_blocks(be, n, 256);
  ema_kernel<<<blocks, 256, 0, cuda_of(be)->stream>>>(ema, w, n, decay, sc);
  LAUNCH_CHECK(be, "ema_kernel");
}

void cuda_ema_update(backend *be, float *ema, const float *w, size_t n, float decay) {
  ema_update(be, ema, w, n, decay, NULL);
}

void cuda_ema_update_s(backend *be, float *ema, const float *w, size_t n, float decay, const step_scalars *s) {
  ema_update(be, ema, w, n, decay, s);
}

/* graph steps: s->skip = 1 if any x is not finite (no wait) */
__global__ void check_kernel(step_scalars *__restrict__ sc, const float *__restrict__ x, size_t n) {
  int bad = 0;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    bad |= !isfinite(x[i]);
  if (__syncthreads_or(bad) && threadIdx.x == 0) atomicOr(&sc->skip, 1);
}

void cuda_step_check(backend *be, step_scalars *s, const float *x, size_t n) {
  if (n == 0) return;
  int blocks = cuda_grid_blocks(be, n, 256);
  check_kernel<<<blocks, 256, 0, cuda_of(be)->stream>>>(s, x, n);
  LAUNCH_CHECK(be, "check_kernel");
}

/* graph steps: dst = src when the step is skipped */
__global__ void restore_kernel(float *__restrict__ dst, const float *__restrict__ src, size_t n,
                               const step_scalars *__restrict__ sc) {
  if (!sc->skip) return;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = src[i];
}

void cuda_step_restore(backend *be, float *dst, const float *src, size_t n, const step_scalars *s) {
  if (n == 0) return;
  int blocks = cuda_grid_blocks(be, n, 256);
  restore_kernel<<<blocks, 256, 0, cuda_of(be)->stream>>>(dst, src, n, s);
  LAUNCH_CHECK(be, "restore_kernel");
}
