/* loss.cu: softmax cross-entropy with label smoothing on fp32 logits, one
 * block per row: max, log-sum-exp and the sum of logits by fixed-order
 * block reductions (deterministic), then
 *   loss = -(1-eps) (l_y - lse) - eps/C * (sum_j l_j - C lse)
 *   dlogits_j = grad_scale * (exp(l_j - lse) - q_j),
 *   q_j = (1-eps) [j == y] + eps/C.
 * A label outside [0, C) gives a NaN loss and NaN gradients, which the
 * trainer's non-finite check reports. */
#include "loss.h"

#define XENT_THREADS 256

/* Sum (or max) over the block; every thread gets the result. */
template <bool MAX> __device__ float block_reduce(float v, float *sh) {
  for (int o = 16; o > 0; o >>= 1) {
    float u = __shfl_xor_sync(0xffffffffu, v, o);
    v = MAX ? fmaxf(v, u) : v + u;
  }
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  __syncthreads(); /* sh may still be read from a previous call */
  if (lane == 0) sh[warp] = v;
  __syncthreads();
  float r = sh[0];
  for (int i = 1; i < XENT_THREADS / 32; i++) r = MAX ? fmaxf(r, sh[i]) : r + sh[i];
  return r;
}

__global__ void __launch_bounds__(XENT_THREADS)
    xent_kernel(float *__restrict__ loss, float *__restrict__ dlogits, const float *__restrict__ logits,
                const int32_t *__restrict__ labels, int classes, float smoothing, float grad_scale,
                const step_scalars *__restrict__ sc) {
  __shared__ float sh[XENT_THREADS / 32];
  if (sc) grad_scale = sc->loss_grad; /* graph steps: read at run time */
  int row = blockIdx.x;
  const float *l = logits + (size_t)row * classes;
  float *dl = dlogits ? dlogits + (size_t)row * classes : NULL;
  int y = labels[row];
  if (y < 0 || y >= classes) {
    if (threadIdx.x == 0) loss[row] = NAN;
    if (dl)
      for (int j = threadIdx.x; j < classes; j += XENT_THREADS) dl[j] = NAN;
    return;
  }
  float mx = -INFINITY;
  for (int j = threadIdx.x; j < classes; j += XENT_THREADS) mx = fmaxf(mx, l[j]);
  mx = block_reduce<true>(mx, sh);
  float se = 0.0f, sl = 0.0f;
  for (int j = threadIdx.x; j < classes; j += XENT_THREADS) {
    se += expf(l[j] - mx);
    sl += l[j];
  }
  se = block_reduce<false>(se, sh);
  sl = block_reduce<false>(sl, sh);
  float lse = mx + logf(se);
  if (threadIdx.x == 0)
    loss[row] = -(1.0f - smoothing) * (l[y] - lse) - smoothing / classes * (sl - (float)classes * lse);
  if (dl) {
    float off = smoothing / classes;
    for (int j = threadIdx.x; j < classes; j += XENT_THREADS) {
      float q = off + (j == y ? 1.0f - smoothing : 0.0f);
      dl[j] = grad_scale * (expf(l[j] - lse) - q);
    }
  }
}

static void xent_launch(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
                        const int32_t *labels, float smoothing, float grad_scale, const step_scalars *sc) {
  if (n <= 0) return;
  if (classes <= 0) die("xent: %d classes", classes);
  xent_kernel<<<n, XENT_THREADS, 0, cuda_of(be)->stream>>>(loss, dlogits, logits, labels, classes, smoothing,
                                                            grad_scale, sc);
  LAUNCH_CHECK(be, "xent_kernel");
}

void cuda_xent(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
               const int32_t *labels, float smoothing, float grad_scale) {
  xent_launch(be, n, classes, loss, dlogits, logits, labels, smoothing, grad_scale, NULL);
}

void cuda_xent_s(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
                 const int32_t *labels, float smoothing, const step_scalars *s) {
  xent_launch(be, n, classes, loss, dlogits, logits, labels, smoothing, 0.0f, s);
}
