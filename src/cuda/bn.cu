/* bn.cu: batch norm over NHWC activations viewed as m rows of c channels,
 * fused with the residual add and ReLU that follow it in a ResNet block.
 *
 * Training forward is three launches: (1) per-channel partial sums of
 * (x - shift) and (x - shift)^2 over row chunks, one fp32 partial per chunk
 * (shift = row 0's value, so that the variance does not cancel when the
 * mean is large); (2) one thread per channel adds the partials in a fixed
 * order in double (deterministic), writes mean / invstd / running stats and
 * the apply coefficients; (3) y = [relu]((x - mean) * gamma*invstd + beta
 * [+ r]). Backward is the same shape: partial sums of dz and dz*xhat, a
 * finalize that accumulates dgamma / dbeta, and one pass writing dx and dr.
 *
 * Threads: 256 per block, TC vector columns x TR rows; a vector column is V
 * consecutive channels read as one 16-byte access (V = 8 for bf16/fp16, 4
 * for fp32) when c and every pointer allow, else V = 1. */
#include "bn.h"

#define BN_THREADS 256

struct bn_tile {
  int cv;    /* vector columns: c / V */
  int tc;    /* vector columns per block */
  int tr;    /* rows a block works on at once */
  int gx;    /* blocks across the columns */
  int gy;    /* row chunks */
  int chunk; /* rows per chunk */
};

static bn_tile bn_make_tile(backend *be, int m, int c, int V, int target_blocks) {
  bn_tile t;
  t.cv = c / V;
  t.tc = t.cv < BN_THREADS ? t.cv : BN_THREADS;
  t.tr = BN_THREADS / t.tc;
  t.gx = (t.cv + t.tc - 1) / t.tc;
  int max_gy = (m + t.tr - 1) / t.tr;
  int gy = (target_blocks + t.gx - 1) / t.gx;
  if (gy > max_gy) gy = max_gy;
  if (gy > 1024) gy = 1024;
  if (gy < 1) gy = 1;
  t.chunk = (m + gy - 1) / gy;
  t.gy = (m + t.chunk - 1) / t.chunk;
  return t;
}

static __device__ __forceinline__ float relu_f(float v) { return v < 0.0f ? 0.0f : v; /* keeps NaN */ }

/* Adds a block's per-thread partials (TR rows per column) in fixed order and
 * writes one partial per channel for this chunk. */
template <int V>
__device__ __forceinline__ void bn_block_reduce(float (&s)[V], float (&q)[V], bn_tile t, int c, int col, bool active,
                                                float *__restrict__ part_s, float *__restrict__ part_q) {
  __shared__ float sh_s[V][BN_THREADS], sh_q[V][BN_THREADS];
  int tid = threadIdx.x, lc = tid % t.tc, lr = tid / t.tc;
#pragma unroll
  for (int v = 0; v < V; v++) {
    sh_s[v][tid] = s[v];
    sh_q[v][tid] = q[v];
  }
  __syncthreads();
  if (lr == 0 && active) {
#pragma unroll
    for (int v = 0; v < V; v++) {
      float S = 0.0f, Q = 0.0f;
      for (int j = 0; j < t.tr; j++) {
        S += sh_s[v][j * t.tc + lc];
        Q += sh_q[v][j * t.tc + lc];
      }
      size_t o = (size_t)blockIdx.y * c + (size_t)col * V + v;
      part_s[o] = S;
      part_q[o] = Q;
    }
  }
}

template <typename T, int V>
__global__ void __launch_bounds__(BN_THREADS)
    bn_stats_kernel(const T *__restrict__ x, int m, int c, bn_tile t, float *__restrict__ part_s,
                    float *__restrict__ part_q) {
  int tid = threadIdx.x, lc = tid % t.tc, lr = tid / t.tc;
  int col = blockIdx.x * t.tc + lc;
  bool active = lr < t.tr && col < t.cv;
  float s[V], q[V];
#pragma unroll
  for (int v = 0; v < V; v++) s[v] = q[v] = 0.0f;
  if (active) {
    const T *base = x + (size_t)col * V;
    float sft[V];
    load_vec<T, V>(sft, base); /* row 0 */
    int r0 = blockIdx.y * t.chunk, r1 = min(m, r0 + t.chunk);
#pragma unroll 4
    for (int r = r0 + lr; r < r1; r += t.tr) {
      float xv[V];
      load_vec<T, V>(xv, base + (size_t)r * c);
#pragma unroll
      for (int v = 0; v < V; v++) {
        float d = xv[v] - sft[v];
        s[v] += d;
        q[v] += d * d;
      }
    }
  }
  bn_block_reduce<V>(s, q, t, c, col, active, part_s, part_q);
}

/* coef layout: [0,c) mean, [c,2c) gamma*invstd, [2c,3c) beta */
template <typename T>
__global__ void bn_finalize_train_kernel(const T *__restrict__ x, int m, int c, int gy, const float *__restrict__ part_s,
                                         const float *__restrict__ part_q, const float *__restrict__ gamma,
                                         const float *__restrict__ beta, float *run_mean, float *run_var,
                                         float *__restrict__ save_mean, float *__restrict__ save_invstd,
                                         float momentum, float eps, float *__restrict__ coef) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double S = 0.0, Q = 0.0;
  for (int j = 0; j < gy; j++) {
    S += part_s[(size_t)j * c + ch];
    Q += part_q[(size_t)j * c + ch];
  }
  double dm = S / m;
  double var = Q / m - dm * dm;
  if (var < 0.0) var = 0.0;
  float mean = (float)((double)to_f(x[ch]) + dm);
  float invstd = (float)(1.0 / sqrt(var + (double)eps));
  save_mean[ch] = mean;
  save_invstd[ch] = invstd;
  if (run_mean) run_mean[ch] = (1.0f - momentum) * run_mean[ch] + momentum * mean;
  if (run_var) {
    float uvar = (float)(m > 1 ? var * (double)m / (double)(m - 1) : var);
    run_var[ch] = (1.0f - momentum) * run_var[ch] + momentum * uvar;
  }
  coef[ch] = mean;
  coef[c + ch] = gamma[ch] * invstd;
  coef[2 * c + ch] = beta[ch];
}

__global__ void bn_finalize_eval_kernel(int c, const float *__restrict__ gamma, const float *__restrict__ beta,
                                        const float *__restrict__ run_mean, const float *__restrict__ run_var,
                                        float eps, float *__restrict__ coef) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  float invstd = 1.0f / sqrtf(run_var[ch] + eps);
  coef[ch] = run_mean[ch];
  coef[c + ch] = gamma[ch] * invstd;
  coef[2 * c + ch] = beta[ch];
}

template <typename T, int V>
__global__ void __launch_bounds__(BN_THREADS)
    bn_apply_kernel(T *__restrict__ y, const T *__restrict__ x, const T *__restrict__ r,
                    const float *__restrict__ coef, int m, int c, bn_tile t, int relu) {
  int tid = threadIdx.x, lc = tid % t.tc, lr = tid / t.tc;
  int col = blockIdx.x * t.tc + lc;
  if (lr >= t.tr || col >= t.cv) return;
  float mean[V], scale[V], bias[V];
#pragma unroll
  for (int v = 0; v < V; v++) {
    int ch = col * V + v;
    mean[v] = coef[ch];
    scale[v] = coef[c + ch];
    bias[v] = coef[2 * c + ch];
  }
  int r0 = blockIdx.y * t.chunk, r1 = min(m, r0 + t.chunk);
#pragma unroll 2
  for (int row = r0 + lr; row < r1; row += t.tr) {
    size_t o = (size_t)row * c + (size_t)col * V;
    float xv[V], out[V];
    load_vec<T, V>(xv, x + o);
#pragma unroll
    for (int v = 0; v < V; v++) out[v] = (xv[v] - mean[v]) * scale[v] + bias[v];
    if (r) {
      float rv[V];
      load_vec<T, V>(rv, r + o);
#pragma unroll
      for (int v = 0; v < V; v++) out[v] += rv[v];
    }
    if (relu) {
#pragma unroll
      for (int v = 0; v < V; v++) out[v] = relu_f(out[v]);
    }
    store_vec<T, V>(y + o, out);
  }
}

/* dz = relu ? dy * (y > 0) : dy; partials of sum dz and sum dz*xhat */
template <typename T, int V>
__global__ void __launch_bounds__(BN_THREADS)
    bn_bwd_stats_kernel(const T *__restrict__ dy, const T *__restrict__ y, const T *__restrict__ x,
                        const float *__restrict__ mean, const float *__restrict__ invstd, int relu, int m, int c,
                        bn_tile t, float *__restrict__ part_s, float *__restrict__ part_q) {
  int tid = threadIdx.x, lc = tid % t.tc, lr = tid / t.tc;
  int col = blockIdx.x * t.tc + lc;
  bool active = lr < t.tr && col < t.cv;
  float s[V], q[V];
#pragma unroll
  for (int v = 0; v < V; v++) s[v] = q[v] = 0.0f;
  if (active) {
    float mu[V], is[V];
#pragma unroll
    for (int v = 0; v < V; v++) {
      mu[v] = mean[col * V + v];
      is[v] = invstd[col * V + v];
    }
    int r0 = blockIdx.y * t.chunk, r1 = min(m, r0 + t.chunk);
#pragma unroll 2
    for (int row = r0 + lr; row < r1; row += t.tr) {
      size_t o = (size_t)row * c + (size_t)col * V;
      float dyv[V], xv[V];
      load_vec<T, V>(dyv, dy + o);
      load_vec<T, V>(xv, x + o);
      if (relu) {
        float yv[V];
        load_vec<T, V>(yv, y + o);
#pragma unroll
        for (int v = 0; v < V; v++)
          if (!(yv[v] > 0.0f)) dyv[v] = 0.0f;
      }
#pragma unroll
      for (int v = 0; v < V; v++) {
        s[v] += dyv[v];
        q[v] += dyv[v] * ((xv[v] - mu[v]) * is[v]);
      }
    }
  }
  bn_block_reduce<V>(s, q, t, c, col, active, part_s, part_q);
}

/* coef layout: [0,c) mean, [c,2c) invstd, [2c,3c) a = gamma*invstd,
 * [3c,4c) a * sum(dz*xhat) / m, [4c,5c) a * sum(dz) / m */
__global__ void bn_finalize_bwd_kernel(int m, int c, int gy, const float *__restrict__ part_s,
                                       const float *__restrict__ part_q, const float *__restrict__ gamma,
                                       const float *__restrict__ save_mean, const float *__restrict__ save_invstd,
                                       float *__restrict__ dgamma, float *__restrict__ dbeta, float *__restrict__ coef) {
  int ch = blockIdx.x * blockDim.x + threadIdx.x;
  if (ch >= c) return;
  double S1 = 0.0, S2 = 0.0;
  for (int j = 0; j < gy; j++) {
    S1 += part_s[(size_t)j * c + ch];
    S2 += part_q[(size_t)j * c + ch];
  }
  if (dbeta) dbeta[ch] += (float)S1;
  if (dgamma) dgamma[ch] += (float)S2;
  float is = save_invstd[ch];
  float a = gamma[ch] * is;
  coef[ch] = save_mean[ch];
  coef[c + ch] = is;
  coef[2 * c + ch] = a;
  coef[3 * c + ch] = (float)((double)a * S2 / m);
  coef[4 * c + ch] = (float)((double)a * S1 / m);
}

template <typename T, int V>
__global__ void __launch_bounds__(BN_THREADS)
    bn_bwd_apply_kernel(T *__restrict__ dx, T *__restrict__ dr, const T *__restrict__ dy, const T *__restrict__ y,
                        const T *__restrict__ x, const float *__restrict__ coef, int relu, int acc_dx, int acc_dr,
                        int m, int c, bn_tile t) {
  int tid = threadIdx.x, lc = tid % t.tc, lr = tid / t.tc;
  int col = blockIdx.x * t.tc + lc;
  if (lr >= t.tr || col >= t.cv) return;
  float mu[V], is[V], a[V], k2[V], k3[V];
#pragma unroll
  for (int v = 0; v < V; v++) {
    int ch = col * V + v;
    mu[v] = coef[ch];
    is[v] = coef[c + ch];
    a[v] = coef[2 * c + ch];
    k2[v] = coef[3 * c + ch];
    k3[v] = coef[4 * c + ch];
  }
  int r0 = blockIdx.y * t.chunk, r1 = min(m, r0 + t.chunk);
#pragma unroll 2
  for (int row = r0 + lr; row < r1; row += t.tr) {
    size_t o = (size_t)row * c + (size_t)col * V;
    float dz[V], xv[V], out[V];
    load_vec<T, V>(dz, dy + o);
    load_vec<T, V>(xv, x + o);
    if (relu) {
      float yv[V];
      load_vec<T, V>(yv, y + o);
#pragma unroll
      for (int v = 0; v < V; v++)
        if (!(yv[v] > 0.0f)) dz[v] = 0.0f;
    }
#pragma unroll
    for (int v = 0; v < V; v++) out[v] = a[v] * dz[v] - k3[v] - ((xv[v] - mu[v]) * is[v]) * k2[v];
    if (acc_dx) {
      float old[V];
      load_vec<T, V>(old, dx + o);
#pragma unroll
      for (int v = 0; v < V; v++) out[v] += old[v];
    }
    if (dr) {
      if (acc_dr) {
        float old[V];
        load_vec<T, V>(old, dr + o);
#pragma unroll
        for (int v = 0; v < V; v++) old[v] += dz[v];
        store_vec<T, V>(dr + o, old);
      } else {
        store_vec<T, V>(dr + o, dz);
      }
    }
    store_vec<T, V>(dx + o, out);
  }
}

/* scratch: part_s[gy*c], part_q[gy*c], coef[5*c] (floats) */
static float *bn_scratch(backend *be, int c, int gy) {
  cuda_impl *ci = cuda_of(be);
  size_t floats = (size_t)2 * gy * c + (size_t)5 * c;
  return (float *)cuda_scratch(be, &ci->bn_buf, &ci->bn_size, floats * sizeof(float), "batch norm partial sums");
}

static int bn_target(backend *be, int per_sm) { return cuda_of(be)->sm_count * per_sm; }

template <typename T, int V>
static void bn_train_impl(backend *be, int m, int c, T *y, const T *x, const T *r, int relu, const float *gamma,
                          const float *beta, float *run_mean, float *run_var, float *save_mean, float *save_invstd,
                          float momentum, float eps) {
  cudaStream_t st = cuda_of(be)->stream;
  bn_tile ts = bn_make_tile(be, m, c, V, bn_target(be, 4));
  float *part_s = bn_scratch(be, c, ts.gy);
  if (!part_s) return; /* a capture that cannot grow the scratch: it fails */
  float *part_q = part_s + (size_t)ts.gy * c;
  float *coef = part_q + (size_t)ts.gy * c;
  bn_stats_kernel<T, V><<<dim3(ts.gx, ts.gy), BN_THREADS, 0, st>>>(x, m, c, ts, part_s, part_q);
  LAUNCH_CHECK(be, "bn_stats_kernel");
  bn_finalize_train_kernel<T><<<(c + 127) / 128, 128, 0, st>>>(x, m, c, ts.gy, part_s, part_q, gamma, beta, run_mean,
                                                                run_var, save_mean, save_invstd, momentum, eps, coef);
  LAUNCH_CHECK(be, "bn_finalize_train_kernel");
  bn_tile ta = bn_make_tile(be, m, c, V, bn_target(be, 8));
  bn_apply_kernel<T, V><<<dim3(ta.gx, ta.gy), BN_THREADS, 0, st>>>(y, x, r, coef, m, c, ta, relu);
  LAUNCH_CHECK(be, "bn_apply_kernel");
}

template <typename T>
static void bn_train_launch(backend *be, int m, int c, void *y, const void *x, const void *r, int relu,
                            const float *gamma, const float *beta, float *run_mean, float *run_var, float *save_mean,
                            float *save_invstd, float momentum, float eps) {
  constexpr int VW = 16 / sizeof(T);
  bool vec = c % VW == 0 && is_aligned16(y) && is_aligned16(x) && (!r || is_aligned16(r));
  if (vec)
    bn_train_impl<T, VW>(be, m, c, (T *)y, (const T *)x, (const T *)r, relu, gamma, beta, run_mean, run_var,
                         save_mean, save_invstd, momentum, eps);
  else
    bn_train_impl<T, 1>(be, m, c, (T *)y, (const T *)x, (const T *)r, relu, gamma, beta, run_mean, run_var,
                        save_mean, save_invstd, momentum, eps);
}

void cuda_bn_fwd_train(backend *be, int m, int c, void *y, const void *x, const void *r, int relu, const float *gamma,
                       const float *beta, float *run_mean, float *run_var, float *save_mean, float *save_invstd,
                       float momentum, float eps) {
  if (m <= 0 || c <= 0) return;
  DISPATCH_ACT(be->act_dtype, bn_train_launch, be, m, c, y, x, r, relu, gamma, beta, run_mean, run_var, save_mean,
               save_invstd, momentum, eps);
}

template <typename T>
static void bn_eval_launch(backend *be, int m, int c, void *y, const void *x, const void *r, int relu,
                           const float *coef) {
  constexpr int VW = 16 / sizeof(T);
  cudaStream_t st = cuda_of(be)->stream;
  bool vec = c % VW == 0 && is_aligned16(y) && is_aligned16(x) && (!r || is_aligned16(r));
  if (vec) {
    bn_tile ta = bn_make_tile(be, m, c, VW, bn_target(be, 8));
    bn_apply_kernel<T, VW><<<dim3(ta.gx, ta.gy), BN_THREADS, 0, st>>>((T *)y, (const T *)x, (const T *)r, coef, m, c,
                                                                      ta, relu);
  } else {
    bn_tile ta = bn_make_tile(be, m, c, 1, bn_target(be, 8));
    bn_apply_kernel<T, 1><<<dim3(ta.gx, ta.gy), BN_THREADS, 0, st>>>((T *)y, (const T *)x, (const T *)r, coef, m, c,
                                                                     ta, relu);
  }
  LAUNCH_CHECK(be, "bn_apply_kernel (eval)");
}

void cuda_bn_fwd_eval(backend *be, int m, int c, void *y, const void *x, const void *r, int relu, const float *gamma,
                      const float *beta, const float *run_mean, const float *run_var, float eps) {
  if (m <= 0 || c <= 0) return;
  float *coef = bn_scratch(be, c, 0);
  if (!coef) return;
  bn_finalize_eval_kernel<<<(c + 127) / 128, 128, 0, cuda_of(be)->stream>>>(c, gamma, beta, run_mean, run_var, eps,
                                                                             coef);
  LAUNCH_CHECK(be, "bn_finalize_eval_kernel");
  DISPATCH_ACT(be->act_dtype, bn_eval_launch, be, m, c, y, x, r, relu, coef);
}

template <typename T, int V>
static void bn_bwd_impl(backend *be, int m, int c, T *dx, T *dr, float *dgamma, float *dbeta, const T *dy, const T *y,
                        const T *x, const float *gamma, const float *save_mean, const float *save_invstd, int relu,
                        int acc_dx, int acc_dr) {
  cudaStream_t st = cuda_of(be)->stream;
  bn_tile ts = bn_make_tile(be, m, c, V, bn_target(be, 4));
  float *part_s = bn_scratch(be, c, ts.gy);
  if (!part_s) return; /* a capture that cannot grow the scratch: it fails */
  float *part_q = part_s + (size_t)ts.gy * c;
  float *coef = part_q + (size_t)ts.gy * c;
  bn_bwd_stats_kernel<T, V><<<dim3(ts.gx, ts.gy), BN_THREADS, 0, st>>>(dy, y, x, save_mean, save_invstd, relu, m, c,
                                                                       ts, part_s, part_q);
  LAUNCH_CHECK(be, "bn_bwd_stats_kernel");
  bn_finalize_bwd_kernel<<<(c + 127) / 128, 128, 0, st>>>(m, c, ts.gy, part_s, part_q, gamma, save_mean, save_invstd,
                                                          dgamma, dbeta, coef);
  LAUNCH_CHECK(be, "bn_finalize_bwd_kernel");
  bn_tile ta = bn_make_tile(be, m, c, V, bn_target(be, 8));
  bn_bwd_apply_kernel<T, V><<<dim3(ta.gx, ta.gy), BN_THREADS, 0, st>>>(dx, dr, dy, y, x, coef, relu, acc_dx, acc_dr, m,
                                                                       c, ta);
  LAUNCH_CHECK(be, "bn_bwd_apply_kernel");
}

template <typename T>
static void bn_bwd_launch(backend *be, int m, int c, void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                          const void *y, const void *x, const float *gamma, const float *save_mean,
                          const float *save_invstd, int relu, int acc_dx, int acc_dr) {
  constexpr int VW = 16 / sizeof(T);
  bool vec = c % VW == 0 && is_aligned16(dx) && (!dr || is_aligned16(dr)) && is_aligned16(dy) &&
             (!relu || is_aligned16(y)) && is_aligned16(x);
  if (vec)
    bn_bwd_impl<T, VW>(be, m, c, (T *)dx, (T *)dr, dgamma, dbeta, (const T *)dy, (const T *)y, (const T *)x, gamma,
                       save_mean, save_invstd, relu, acc_dx, acc_dr);
  else
    bn_bwd_impl<T, 1>(be, m, c, (T *)dx, (T *)dr, dgamma, dbeta, (const T *)dy, (const T *)y, (const T *)x, gamma,
                      save_mean, save_invstd, relu, acc_dx, acc_dr);
}

void cuda_bn_bwd(backend *be, int m, int c, void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                 const void *y, const void *x, const float *gamma, const float *save_mean, const float *save_invstd,
                 int relu, int acc_dx, int acc_dr) {
  if (m <= 0 || c <= 0) return;
  if (relu && !y) die("bn_bwd: relu needs the forward output y");
  DISPATCH_ACT(be->act_dtype, bn_bwd_launch, be, m, c, dx, dr, dgamma, dbeta, dy, y, x, gamma, save_mean, save_invstd,
               relu, acc_dx, acc_dr);
}
