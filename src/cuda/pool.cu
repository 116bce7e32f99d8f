/* pool.cu: max pool and global average pool over NHWC activations.
 *
 * Max pool backward gathers instead of scattering: each input element looks
 * at the (at most ceil(k/stride)^2) windows that contain it, recomputes each
 * window's argmax — the first maximum in row-major order, as PyTorch picks
 * it, padding never winning — and adds the gradient of the windows it won.
 * No atomics, no saved indices, deterministic. Threads work on V channels
 * at once (16-byte accesses) when c and the pointers allow. */
#include "pool.h"

struct pool_geom {
  int n, h, w, c, oh, ow, k, stride, pad;
};

/* NaN wins (and propagates) like PyTorch; otherwise only a strictly larger
 * value replaces the first maximum. */
static __device__ __forceinline__ bool max_takes(float v, float best, int have) {
  return !have || v > best || isnan(v);
}

template <typename T, int V>
__global__ void maxpool_fwd_kernel(T *__restrict__ y, const T *__restrict__ x, pool_geom g) {
  int cv = g.c / V;
  size_t total = (size_t)g.n * g.oh * g.ow * cv;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    int col = (int)(i % cv);
    size_t pix = i / cv;
    int ox = (int)(pix % g.ow);
    int oy = (int)((pix / g.ow) % g.oh);
    int b = (int)(pix / ((size_t)g.ow * g.oh));
    float best[V];
    int have[V];
#pragma unroll
    for (int v = 0; v < V; v++) {
      best[v] = -INFINITY;
      have[v] = 0;
    }
    int y0 = oy * g.stride - g.pad, x0 = ox * g.stride - g.pad;
    for (int ky = 0; ky < g.k; ky++) {
      int iy = y0 + ky;
      if (iy < 0 || iy >= g.h) continue;
      for (int kx = 0; kx < g.k; kx++) {
        int ix = x0 + kx;
        if (ix < 0 || ix >= g.w) continue;
        float xv[V];
        load_vec<T, V>(xv, x + (((size_t)b * g.h + iy) * g.w + ix) * g.c + (size_t)col * V);
#pragma unroll
        for (int v = 0; v < V; v++)
          if (max_takes(xv[v], best[v], have[v])) {
            best[v] = xv[v];
            have[v] = 1;
          }
      }
    }
    store_vec<T, V>(y + pix * g.c + (size_t)col * V, best);
  }
}

template <typename T, int V>
__global__ void maxpool_bwd_kernel(T *__restrict__ dx, const T *__restrict__ dy, const T *__restrict__ x, pool_geom g,
                                   int acc) {
  int cv = g.c / V;
  size_t total = (size_t)g.n * g.h * g.w * cv;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    int col = (int)(i % cv);
    size_t pix = i / cv;
    int ix = (int)(pix % g.w);
    int iy = (int)((pix / g.w) % g.h);
    int b = (int)(pix / ((size_t)g.w * g.h));
    /* windows oy with oy*s - pad <= iy <= oy*s - pad + k - 1 */
    int ty = iy + g.pad - g.k + 1, tx = ix + g.pad - g.k + 1;
    int oy_lo = ty <= 0 ? 0 : (ty + g.stride - 1) / g.stride;
    int ox_lo = tx <= 0 ? 0 : (tx + g.stride - 1) / g.stride;
    int oy_hi = min(g.oh - 1, (iy + g.pad) / g.stride);
    int ox_hi = min(g.ow - 1, (ix + g.pad) / g.stride);
    float acc_v[V];
#pragma unroll
    for (int v = 0; v < V; v++) acc_v[v] = 0.0f;
    const T *xb = x + (size_t)b * g.h * g.w * g.c + (size_t)col * V;
    for (int oy = oy_lo; oy <= oy_hi; oy++)
      for (int ox = ox_lo; ox <= ox_hi; ox++) {
        int y0 = oy * g.stride - g.pad, x0 = ox * g.stride - g.pad;
        float best[V];
        int arg[V];
#pragma unroll
        for (int v = 0; v < V; v++) {
          best[v] = -INFINITY;
          arg[v] = -1;
        }
        for (int ky = 0; ky < g.k; ky++) {
          int yy = y0 + ky;
          if (yy < 0 || yy >= g.h) continue;
          for (int kx = 0; kx < g.k; kx++) {
            int xx = x0 + kx;
            if (xx < 0 || xx >= g.w) continue;
            float xv[V];
            load_vec<T, V>(xv, xb + ((size_t)yy * g.w + xx) * g.c);
#pragma unroll
            for (int v = 0; v < V; v++)
              if (max_takes(xv[v], best[v], arg[v] >= 0)) {
                best[v] = xv[v];
                arg[v] = ky * g.k + kx;
              }
          }
        }
        int mine = (iy - y0) * g.k + (ix - x0);
        float dyv[V];
        load_vec<T, V>(dyv, dy + (((size_t)b * g.oh + oy) * g.ow + ox) * g.c + (size_t)col * V);
#pragma unroll
        for (int v = 0; v < V; v++)
          if (arg[v] == mine) acc_v[v] += dyv[v];
      }
    T *dst = dx + pix * g.c + (size_t)col * V;
    if (acc) {
      float old[V];
      load_vec<T, V>(old, dst);
#pragma unroll
      for (int v = 0; v < V; v++) acc_v[v] += old[v];
    }
    store_vec<T, V>(dst, acc_v);
  }
}

template <typename T>
static void maxpool_fwd_launch(backend *be, pool_geom g, void *y, const void *x) {
  constexpr int VW = 16 / sizeof(T);
  cudaStream_t st = cuda_of(be)->stream;
  if (g.c % VW == 0 && is_aligned16(y) && is_aligned16(x)) {
    size_t total = (size_t)g.n * g.oh * g.ow * (g.c / VW);
    maxpool_fwd_kernel<T, VW><<<cuda_grid_blocks(be, total, 256), 256, 0, st>>>((T *)y, (const T *)x, g);
  } else {
    size_t total = (size_t)g.n * g.oh * g.ow * g.c;
    maxpool_fwd_kernel<T, 1><<<cuda_grid_blocks(be, total, 256), 256, 0, st>>>((T *)y, (const T *)x, g);
  }
  LAUNCH_CHECK(be, "maxpool_fwd_kernel");
}

template <typename T>
static void maxpool_bwd_launch(backend *be, pool_geom g, void *dx, const void *dy, const void *x, int acc) {
  constexpr int VW = 16 / sizeof(T);
  cudaStream_t st = cuda_of(be)->stream;
  if (g.c % VW == 0 && is_aligned16(dx) && is_aligned16(dy) && is_aligned16(x)) {
    size_t total = (size_t)g.n * g.h * g.w * (g.c / VW);
    maxpool_bwd_kernel<T, VW><<<cuda_grid_blocks(be, total, 256), 256, 0, st>>>((T *)dx, (const T *)dy,
                                                                                (const T *)x, g, acc);
  } else {
    size_t total = (size_t)g.n * g.h * g.w * g.c;
    maxpool_bwd_kernel<T, 1><<<cuda_grid_blocks(be, total, 256), 256, 0, st>>>((T *)dx, (const T *)dy, (const T *)x,
                                                                               g, acc);
  }
  LAUNCH_CHECK(be, "maxpool_bwd_kernel");
}

static pool_geom make_geom(int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad) {
  if (k < 1 || stride < 1 || pad < 0 || pad >= k)
    die("maxpool: bad window k=%d stride=%d pad=%d", k, stride, pad);
  if (oh != (h + 2 * pad - k) / stride + 1 || ow != (w + 2 * pad - k) / stride + 1)
    die("maxpool: output %dx%d does not match input %dx%d with k=%d stride=%d pad=%d", oh, ow, h, w, k, stride, pad);
  pool_geom g = {n, h, w, c, oh, ow, k, stride, pad};
  return g;
}

void cuda_maxpool_fwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *y,
                      const void *x) {
  pool_geom g = make_geom(n, h, w, c, oh, ow, k, stride, pad);
  if ((size_t)n * oh * ow * c == 0) return;
  DISPATCH_ACT(be->act_dtype, maxpool_fwd_launch, be, g, y, x);
}

void cuda_maxpool_bwd(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *dx,
                      const void *dy, const void *x, int acc_dx) {
  pool_geom g = make_geom(n, h, w, c, oh, ow, k, stride, pad);
  if ((size_t)n * h * w * c == 0) return;
  DISPATCH_ACT(be->act_dtype, maxpool_bwd_launch, be, g, dx, dy, x, acc_dx);
}

/* y[b, ch] = mean over hw of x[b, p, ch]: consecutive threads take
 * consecutive channels of one image, so each row read is coalesced */
template <typename T, int V>
__global__ void avgpool_fwd_kernel(T *__restrict__ y, const T *__restrict__ x, int n, int hw, int c) {
  int cv = c / V;
  size_t total = (size_t)n * cv;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    int col = (int)(i % cv);
    size_t b = i / cv;
    const T *src = x + b * hw * c + (size_t)col * V;
    float s[V];
#pragma unroll
    for (int v = 0; v < V; v++) s[v] = 0.0f;
    for (int p = 0; p < hw; p++) {
      float xv[V];
      load_vec<T, V>(xv, src + (size_t)p * c);
#pragma unroll
      for (int v = 0; v < V; v++) s[v] += xv[v];
    }
#pragma unroll
    for (int v = 0; v < V; v++) s[v] /= (float)hw;
    store_vec<T, V>(y + b * c + (size_t)col * V, s);
  }
}

template <typename T, int V>
__global__ void avgpool_bwd_kernel(T *__restrict__ dx, const T *__restrict__ dy, int n, int hw, int c, int acc) {
  int cv = c / V;
  size_t total = (size_t)n * hw * cv;
  float inv = 1.0f / (float)hw;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x) {
    int col = (int)(i % cv);
    size_t row = i / cv; /* b * hw + p */
    size_t b = row / hw;
    float g[V];
    load_vec<T, V>(g, dy + b * c + (size_t)col * V);
#pragma unroll
    for (int v = 0; v < V; v++) g[v] *= inv;
    T *dst = dx + row * c + (size_t)col * V;
    if (acc) {
      float old[V];
      load_vec<T, V>(old, dst);
#pragma unroll
      for (int v = 0; v < V; v++) g[v] += old[v];
    }
    store_vec<T, V>(dst, g);
  }
}

template <typename T> static void avgpool_fwd_launch(backend *be, int n, int hw, int c, void *y, const void *x) {
  constexpr int VW = 16 / sizeof(T);
  cudaStream_t st = cuda_of(be)->stream;
  if (c % VW == 0 && is_aligned16(y) && is_aligned16(x))
    avgpool_fwd_kernel<T, VW><<<cuda_grid_blocks(be, (size_t)n * (c / VW), 128), 128, 0, st>>>((T *)y, (const T *)x,
                                                                                              n, hw, c);
  else
    avgpool_fwd_kernel<T, 1><<<cuda_grid_blocks(be, (size_t)n * c, 128), 128, 0, st>>>((T *)y, (const T *)x, n, hw, c);
  LAUNCH_CHECK(be, "avgpool_fwd_kernel");
}

template <typename T>
static void avgpool_bwd_launch(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc) {
  constexpr int VW = 16 / sizeof(T);
  cudaStream_t st = cuda_of(be)->stream;
  if (c % VW == 0 && is_aligned16(dx) && is_aligned16(dy))
    avgpool_bwd_kernel<T, VW><<<cuda_grid_blocks(be, (size_t)n * hw * (c / VW), 256), 256, 0, st>>>(
        (T *)dx, (const T *)dy, n, hw, c, acc);
  else
    avgpool_bwd_kernel<T, 1><<<cuda_grid_blocks(be, (size_t)n * hw * c, 256), 256, 0, st>>>((T *)dx, (const T *)dy, n,
                                                                                          hw, c, acc);
  LAUNCH_CHECK(be, "avgpool_bwd_kernel");
}

void cuda_avgpool_fwd(backend *be, int n, int hw, int c, void *y, const void *x) {
  if ((size_t)n * hw * c == 0) return;
  DISPATCH_ACT(be->act_dtype, avgpool_fwd_launch, be, n, hw, c, y, x);
}

void cuda_avgpool_bwd(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc_dx) {
  if ((size_t)n * hw * c == 0) return;
  DISPATCH_ACT(be->act_dtype, avgpool_bwd_launch, be, n, hw, c, dx, dy, acc_dx);
}
