/* conv.cu: convolutions through cuDNN's (legacy, still supported) API on
 * NHWC tensors: x and y NHWC, weights OHWI = cuDNN's KRSC in NHWC format,
 * compute in fp32 (bf16/fp16 data use tensor cores; fp32 data use TF32 only
 * when the backend allows it, else FMA kernels and no FFT/Winograd, so that
 * "fp32" means fp32 arithmetic).
 *
 * Plans: one entry per distinct shape (batch included) holds the
 * descriptors and the fastest algorithm per direction, measured once with
 * cudnnFind*AlgorithmEx on random data (conv_prepare, or lazily at the first
 * call) or taken from a cache file written by cuda_conv_cache_save. All
 * convs share one workspace, grown to the largest chosen algorithm's need.
 *
 * Backward-filter: cuDNN wants dw in the data's dtype, so for bf16/fp16 it
 * writes a scratch copy that a small kernel adds to the fp32 dw; for fp32
 * cuDNN adds into dw directly (beta = 1). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv.h"
#include "cuda_backend.h"

enum { DIR_FWD = 0, DIR_BWD_DATA = 1, DIR_BWD_FILTER = 2, N_DIR = 3 };
static const char *const dir_names[N_DIR] = {"fwd", "bwdd", "bwdf"};

struct conv_key {
  int n, h, w, c, k, kh, kw, stride, pad, oh, ow;
};

struct conv_choice {
  int algo[N_DIR];
  int math[N_DIR];
};

struct conv_entry {
  conv_key key;
  cudnnTensorDescriptor_t xd, yd;
  cudnnFilterDescriptor_t wd;
  cudnnConvolutionDescriptor_t cd[N_DIR]; /* one per direction: math types may differ */
  conv_choice ch;
  size_t ws[N_DIR];
  float ms[N_DIR]; /* measured time, -1 when taken from the cache */
};

struct conv_saved {
  conv_key key;
  conv_choice ch;
};

static int key_eq(const conv_key *a, const conv_key *b) { return memcmp(a, b, sizeof *a) == 0; }

static conv_key key_of(const conv_desc *d) {
  conv_key k;
  memset(&k, 0, sizeof k);
  k.n = d->n;
  k.h = d->h;
  k.w = d->w;
  k.c = d->c;
  k.k = d->k;
  k.kh = d->kh;
  k.kw = d->kw;
  k.stride = d->stride;
  k.pad = d->pad;
  k.oh = d->oh;
  k.ow = d->ow;
  return k;
}

static const char *dtype_tag(dtype t) { return t == DTYPE_F32 ? "f32" : t == DTYPE_BF16 ? "bf16" : "f16"; }

static int strict_fp32(backend *be) { return be->act_dtype == DTYPE_F32 && !cuda_of(be)->tf32; }

static cudnnMathType_t base_math(backend *be) {
  if (be->act_dtype != DTYPE_F32) return CUDNN_TENSOR_OP_MATH;
  return cuda_of(be)->tf32 ? CUDNN_DEFAULT_MATH : CUDNN_FMA_MATH;
}

/* In strict fp32, only algorithms that sum products directly. */
static int algo_exact(int dir, int algo) {
  switch (dir) {
  case DIR_FWD:
    return algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_IMPLICIT_PRECOMP_GEMM ||
           algo == CUDNN_CONVOLUTION_FWD_ALGO_GEMM || algo == CUDNN_CONVOLUTION_FWD_ALGO_DIRECT;
  case DIR_BWD_DATA: return algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_DATA_ALGO_1;
  default:
    return algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_0 || algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_1 ||
           algo == CUDNN_CONVOLUTION_BWD_FILTER_ALGO_3;
  }
}

static int math_allowed(backend *be, int math) {
  if (!strict_fp32(be)) return 1;
  return math != CUDNN_TENSOR_OP_MATH && math != CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION;
}

static void describe(const conv_key *k, char *buf, size_t len) {
  snprintf(buf, len, "n=%d %dx%dx%d -> %dx%dx%d kernel %dx%d stride %d pad %d", k->n, k->h, k->w, k->c, k->oh, k->ow,
           k->k, k->kh, k->kw, k->stride, k->pad);
}

/* Workspace an algorithm needs in a direction; -1 if cuDNN refuses it. */
static long long algo_workspace(backend *be, conv_entry *e, int dir, int algo) {
  cuda_impl *ci = cuda_of(be);
  size_t sz = 0;
  cudnnStatus_t s;
  if (dir == DIR_FWD)
    s = cudnnGetConvolutionForwardWorkspaceSize(ci->cudnn, e->xd, e->wd, e->cd[dir], e->yd,
                                                (cudnnConvolutionFwdAlgo_t)algo, &sz);
  else if (dir == DIR_BWD_DATA)
    s = cudnnGetConvolutionBackwardDataWorkspaceSize(ci->cudnn, e->wd, e->yd, e->cd[dir], e->xd,
                                                     (cudnnConvolutionBwdDataAlgo_t)algo, &sz);
  else
    s = cudnnGetConvolutionBackwardFilterWorkspaceSize(ci->cudnn, e->xd, e->yd, e->cd[dir], e->wd,
                                                       (cudnnConvolutionBwdFilterAlgo_t)algo, &sz);
  return s == CUDNN_STATUS_SUCCESS ? (long long)sz : -1;
}

/* ---- random data for the search (never time on zeros) ---- */
template <typename T> __global__ void conv_fill_kernel(T *p, size_t n, uint32_t seed) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    uint32_t h = (uint32_t)i * 2654435761u ^ seed;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    p[i] = from_f<T>((float)(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
  }
}

template <typename T> static void conv_fill_launch(backend *be, void *p, size_t n, uint32_t seed) {
  conv_fill_kernel<T><<<cuda_grid_blocks(be, n, 256), 256, 0, cuda_of(be)->stream>>>((T *)p, n, seed);
  LAUNCH_CHECK(be, "conv_fill_kernel");
}

static void release_find_scratch(backend *be) {
  cuda_impl *ci = cuda_of(be);
  if (!ci->find_buf || ci->capturing) return; /* (freeing waits: not in a capture) */
  CUDA_CHECK(cudaStreamSynchronize(ci->stream));
  CUDA_CHECK(cudaFree(ci->find_buf));
  ci->find_buf = NULL;
  ci->find_size = 0;
}

/* Measure every algorithm of every direction on random data; choose the
 * fastest allowed one. Returns 0, or -1 if some direction found none. */
static int conv_search(backend *be, conv_entry *e) {
  cuda_impl *ci = cuda_of(be);
  const conv_key *k = &e->key;
  size_t es = be->act_size;
  size_t xb = ((size_t)k->n * k->h * k->w * k->c * es + 255) & ~(size_t)255;
  size_t yb = ((size_t)k->n * k->oh * k->ow * k->k * es + 255) & ~(size_t)255;
  size_t wb = ((size_t)k->k * k->kh * k->kw * k->c * es + 255) & ~(size_t)255;
  /* grow the search scratch without keeping the old one alive */
  if (ci->find_buf && ci->find_size < xb + yb + wb) release_find_scratch(be);
  size_t ws_try = ci->ws_cap;
  if (!ci->find_buf) {
    size_t fr = 0, tot = 0;
    CUDA_CHECK(cudaMemGetInfo(&fr, &tot));
    size_t room = fr > xb + yb + wb ? (fr - xb - yb - wb) / 2 : 0;
    if (ws_try > room) ws_try = room & ~(size_t)255;
    cuda_scratch(be, &ci->find_buf, &ci->find_size, xb + yb + wb + ws_try, "cuDNN algorithm search");
  }
  ws_try = ci->find_size - xb - yb - wb;
  if (ws_try > ci->ws_cap) ws_try = ci->ws_cap;
  char *base = (char *)ci->find_buf;
  void *x = base, *y = base + xb, *w = base + xb + yb, *ws = ws_try ? base + xb + yb + wb : NULL;
  DISPATCH_ACT(be->act_dtype, conv_fill_launch, be, x, xb / es, 0x1234u);
  DISPATCH_ACT(be->act_dtype, conv_fill_launch, be, y, yb / es, 0x5678u);
  DISPATCH_ACT(be->act_dtype, conv_fill_launch, be, w, wb / es, 0x9abcu);
  CUDA_CHECK(cudaStreamSynchronize(ci->stream));

  int ok = 0;
  for (int dir = 0; dir < N_DIR; dir++) {
    int n_res = 0, algo[8], math[8], status[8];
    float tms[8];
    size_t mem[8];
    cudnnStatus_t s;
    if (dir == DIR_FWD) {
      cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
      s = cudnnFindConvolutionForwardAlgorithmEx(ci->cudnn, e->xd, x, e->wd, w, e->cd[dir], e->yd, y,
                                                 CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n_res, p, ws, ws_try);
      for (int i = 0; i < n_res && s == CUDNN_STATUS_SUCCESS; i++) {
        algo[i] = p[i].algo, math[i] = p[i].mathType, status[i] = p[i].status, tms[i] = p[i].time;
        mem[i] = p[i].memory;
      }
    } else if (dir == DIR_BWD_DATA) {
      cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
      s = cudnnFindConvolutionBackwardDataAlgorithmEx(ci->cudnn, e->wd, w, e->yd, y, e->cd[dir], e->xd, x,
                                                      CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n_res, p, ws, ws_try);
      for (int i = 0; i < n_res && s == CUDNN_STATUS_SUCCESS; i++) {
        algo[i] = p[i].algo, math[i] = p[i].mathType, status[i] = p[i].status, tms[i] = p[i].time;
        mem[i] = p[i].memory;
      }
    } else {
      cudnnConvolutionBwdFilterAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
      s = cudnnFindConvolutionBackwardFilterAlgorithmEx(ci->cudnn, e->xd, x, e->yd, y, e->cd[dir], e->wd, w,
                                                        CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n_res, p, ws,
                                                        ws_try);
      for (int i = 0; i < n_res && s == CUDNN_STATUS_SUCCESS; i++) {
        algo[i] = p[i].algo, math[i] = p[i].mathType, status[i] = p[i].status, tms[i] = p[i].time;
        mem[i] = p[i].memory;
      }
    }
    if (s != CUDNN_STATUS_SUCCESS) {
      char d[160];
      describe(k, d, sizeof d);
      warn("cuDNN %s algorithm search failed for %s: %s", dir_names[dir], d, cudnnGetErrorString(s));
      n_res = 0;
    }
    if (n_res > 8) n_res = 8;
    int pick = -1;
    for (int pass = 0; pass < 2 && pick < 0; pass++) /* pass 1: strict fp32 relaxed to any FMA algorithm */
      for (int i = 0; i < n_res; i++) {
        if (status[i] != CUDNN_STATUS_SUCCESS || mem[i] > ws_try || !math_allowed(be, math[i])) continue;
        if (pass == 0 && strict_fp32(be) && !algo_exact(dir, algo[i])) continue;
        pick = i;
        break;
      }
    if (pick < 0) continue;
    e->ch.algo[dir] = algo[pick];
    e->ch.math[dir] = strict_fp32(be) ? (int)CUDNN_FMA_MATH : math[pick];
    e->ms[dir] = tms[pick];
    ok |= 1 << dir;
  }
  (void)cudaGetLastError(); /* failed trials may leave an error behind */
  return ok == 7 ? 0 : -1;
}

/* Without a measured choice: cuDNN's heuristic order, first that works. */
static int conv_heuristic(backend *be, conv_entry *e, int dir) {
  cuda_impl *ci = cuda_of(be);
  int n_res = 0, algo[8], math[8], status[8];
  cudnnStatus_t s;
  if (dir == DIR_FWD) {
    cudnnConvolutionFwdAlgoPerf_t p[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    s = cudnnGetConvolutionForwardAlgorithm_v7(ci->cudnn, e->xd, e->wd, e->cd[dir], e->yd,
                                               CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n_res, p);
    for (int i = 0; i < n_res && i < 8; i++) algo[i] = p[i].algo, math[i] = p[i].mathType, status[i] = p[i].status;
  } else if (dir == DIR_BWD_DATA) {
    cudnnConvolutionBwdDataAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    s = cudnnGetConvolutionBackwardDataAlgorithm_v7(ci->cudnn, e->wd, e->yd, e->cd[dir], e->xd,
                                                    CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n_res, p);
    for (int i = 0; i < n_res && i < 8; i++) algo[i] = p[i].algo, math[i] = p[i].mathType, status[i] = p[i].status;
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t p[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    s = cudnnGetConvolutionBackwardFilterAlgorithm_v7(ci->cudnn, e->xd, e->yd, e->cd[dir], e->wd,
                                                      CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n_res, p);
    for (int i = 0; i < n_res && i < 8; i++) algo[i] = p[i].algo, math[i] = p[i].mathType, status[i] = p[i].status;
  }
  if (s != CUDNN_STATUS_SUCCESS) return -1;
  if (n_res > 8) n_res = 8;
  for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < n_res; i++) {
      if (status[i] != CUDNN_STATUS_SUCCESS || !math_allowed(be, math[i])) continue;
      if (pass == 0 && strict_fp32(be) && !algo_exact(dir, algo[i])) continue;
      int m = strict_fp32(be) ? (int)CUDNN_FMA_MATH : math[i];
      CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd[dir], (cudnnMathType_t)m));
      long long ws = algo_workspace(be, e, dir, algo[i]);
      if (ws < 0 || (size_t)ws > cuda_of(be)->ws_cap) continue;
      e->ch.algo[dir] = algo[i];
      e->ch.math[dir] = m;
      e->ms[dir] = -1;
      return 0;
    }
  return -1;
}

/* Apply a choice (math types) and size its workspace; -1 if cuDNN refuses. */
static int conv_apply_choice(backend *be, conv_entry *e) {
  for (int dir = 0; dir < N_DIR; dir++) {
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd[dir], (cudnnMathType_t)e->ch.math[dir]));
    long long ws = algo_workspace(be, e, dir, e->ch.algo[dir]);
    if (ws < 0) return -1;
    e->ws[dir] = (size_t)ws;
  }
  return 0;
}

static conv_entry *conv_lookup(cuda_impl *ci, const conv_key *k) {
  for (int i = 0; i < ci->n_convs; i++)
    if (key_eq(&ci->convs[i].key, k)) return &ci->convs[i];
  return NULL;
}

static conv_entry *conv_plan(backend *be, const conv_desc *d) {
  cuda_impl *ci = cuda_of(be);
  conv_key k = key_of(d);
  conv_entry *e = conv_lookup(ci, &k);
  if (e) return e;
  char desc[160];
  describe(&k, desc, sizeof desc);
  if (ci->capturing) { /* the search allocates and waits: not in a graph */
    cuda_capture_note("conv %s has no plan yet (the search cannot run in a capture)", desc);
    return NULL;
  }
  if (k.n < 1 || k.h < 1 || k.w < 1 || k.c < 1 || k.k < 1 || k.kh < 1 || k.kw < 1 || k.stride < 1 || k.pad < 0)
    die("conv: bad shape %s", desc);
  if (ci->n_convs == ci->cap_convs) {
    ci->cap_convs = ci->cap_convs ? 2 * ci->cap_convs : 32;
    ci->convs = (conv_entry *)xrealloc(ci->convs, (size_t)ci->cap_convs * sizeof(conv_entry), "conv plans");
  }
  e = &ci->convs[ci->n_convs];
  memset(e, 0, sizeof *e);
  e->key = k;
  cudnnDataType_t dt = dtype_cudnn(be->act_dtype);
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->xd));
  CUDNN_CHECK(cudnnCreateTensorDescriptor(&e->yd));
  CUDNN_CHECK(cudnnCreateFilterDescriptor(&e->wd));
  ci->n_convs++; /* from here on destroy() cleans the descriptors up */
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->xd, CUDNN_TENSOR_NHWC, dt, k.n, k.c, k.h, k.w));
  CUDNN_CHECK(cudnnSetTensor4dDescriptor(e->yd, CUDNN_TENSOR_NHWC, dt, k.n, k.k, k.oh, k.ow));
  CUDNN_CHECK(cudnnSetFilter4dDescriptor(e->wd, dt, CUDNN_TENSOR_NHWC, k.k, k.c, k.kh, k.kw));
  for (int dir = 0; dir < N_DIR; dir++) {
    CUDNN_CHECK(cudnnCreateConvolutionDescriptor(&e->cd[dir]));
    CUDNN_CHECK(cudnnSetConvolution2dDescriptor(e->cd[dir], k.pad, k.pad, k.stride, k.stride, 1, 1,
                                                CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT));
    CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd[dir], base_math(be)));
  }
  int on, oc, ohh, oww;
  CUDNN_CHECK(cudnnGetConvolution2dForwardOutputDim(e->cd[0], e->xd, e->wd, &on, &oc, &ohh, &oww));
  if (on != k.n || oc != k.k || ohh != k.oh || oww != k.ow)
    die("conv: output %dx%d given for %s, cuDNN computes %dx%d", k.oh, k.ow, desc, ohh, oww);

  /* 1. a cached choice, if cuDNN still accepts it */
  int have = 0;
  for (int i = 0; i < ci->n_saved && !have; i++)
    if (key_eq(&ci->saved[i].key, &k)) {
      e->ch = ci->saved[i].ch;
      for (int dir = 0; dir < N_DIR; dir++) e->ms[dir] = -1;
      have = conv_apply_choice(be, e) == 0;
      if (!have) warn("conv: cached algorithms for %s refused by cuDNN; searching again", desc);
    }
  /* 2. measure; 3. heuristics for any direction the search could not settle */
  if (!have) {
    for (int dir = 0; dir < N_DIR; dir++) e->ch.algo[dir] = -1;
    conv_search(be, e);
    for (int dir = 0; dir < N_DIR; dir++) {
      if (e->ch.algo[dir] >= 0) continue;
      CUDNN_CHECK(cudnnSetConvolutionMathType(e->cd[dir], base_math(be)));
      if (conv_heuristic(be, e, dir) != 0)
        die("conv: cuDNN has no %s algorithm for %s (%s)", dir_names[dir], desc, dtype_tag(be->act_dtype));
    }
    if (conv_apply_choice(be, e) != 0) die("conv: cuDNN refused its own algorithm choice for %s", desc);
  }
  if (ci->verbose)
    fprintf(stderr, "rn50: conv %s [%s]: fwd algo %d math %d %.3f ms ws %zu | bwdd algo %d math %d %.3f ms ws %zu | "
                    "bwdf algo %d math %d %.3f ms ws %zu\n",
            desc, dtype_tag(be->act_dtype), e->ch.algo[0], e->ch.math[0], e->ms[0], e->ws[0], e->ch.algo[1],
            e->ch.math[1], e->ms[1], e->ws[1], e->ch.algo[2], e->ch.math[2], e->ms[2], e->ws[2]);
  return e;
}

void cuda_conv_prepare(backend *be, const conv_desc *d) { conv_plan(be, d); }

void cuda_conv_release_search(backend *be) { release_find_scratch(be); }

/* The plan for d, its workspace ready; the search scratch goes away. NULL
 * only during a capture that cannot have them (the capture fails). */
static conv_entry *conv_ready(backend *be, const conv_desc *d, int dir, void **ws, size_t *ws_size) {
  cuda_impl *ci = cuda_of(be);
  conv_entry *e = conv_plan(be, d);
  if (!e) return NULL;
  release_find_scratch(be);
  if (e->ws[dir] > 0) {
    if (!cuda_scratch(be, &ci->ws, &ci->ws_size, e->ws[dir], "cuDNN workspace")) return NULL;
    *ws = ci->ws;
    *ws_size = ci->ws_size;
  } else {
    *ws = NULL;
    *ws_size = 0;
  }
  return e;
}

void cuda_conv_fwd(backend *be, const conv_desc *d, void *y, const void *x, const void *w) {
  void *ws;
  size_t wss;
  conv_entry *e = conv_ready(be, d, DIR_FWD, &ws, &wss);
  if (!e) return;
  float alpha = 1.0f, beta = 0.0f;
  CUDNN_CHECK(cudnnConvolutionForward(cuda_of(be)->cudnn, &alpha, e->xd, x, e->wd, w, e->cd[DIR_FWD],
                                      (cudnnConvolutionFwdAlgo_t)e->ch.algo[DIR_FWD], ws, wss, &beta, e->yd, y));
  LIBRARY_CHECK(be, "cudnnConvolutionForward");
}

void cuda_conv_bwd_data(backend *be, const conv_desc *d, void *dx, const void *dy, const void *w, int acc_dx) {
  void *ws;
  size_t wss;
  conv_entry *e = conv_ready(be, d, DIR_BWD_DATA, &ws, &wss);
  if (!e) return;
  float alpha = 1.0f, beta = acc_dx ? 1.0f : 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardData(cuda_of(be)->cudnn, &alpha, e->wd, w, e->yd, dy, e->cd[DIR_BWD_DATA],
                                           (cudnnConvolutionBwdDataAlgo_t)e->ch.algo[DIR_BWD_DATA], ws, wss, &beta,
                                           e->xd, dx));
  LIBRARY_CHECK(be, "cudnnConvolutionBackwardData");
}

template <typename T> __global__ void add_to_f32_kernel(float *__restrict__ dst, const T *__restrict__ src, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] += to_f(src[i]);
}

template <typename T> static void add_to_f32_launch(backend *be, float *dst, const void *src, size_t n) {
  add_to_f32_kernel<T><<<cuda_grid_blocks(be, n, 256), 256, 0, cuda_of(be)->stream>>>(dst, (const T *)src, n);
  LAUNCH_CHECK(be, "add_to_f32_kernel");
}

void cuda_conv_bwd_filter(backend *be, const conv_desc *d, float *dw, const void *dy, const void *x) {
  cuda_impl *ci = cuda_of(be);
  void *ws;
  size_t wss;
  conv_entry *e = conv_ready(be, d, DIR_BWD_FILTER, &ws, &wss);
  if (!e) return;
  size_t nw = (size_t)d->k * d->kh * d->kw * d->c;
  float alpha = 1.0f;
  if (be->act_dtype == DTYPE_F32) {
    float beta = 1.0f;
    CUDNN_CHECK(cudnnConvolutionBackwardFilter(ci->cudnn, &alpha, e->xd, x, e->yd, dy, e->cd[DIR_BWD_FILTER],
                                               (cudnnConvolutionBwdFilterAlgo_t)e->ch.algo[DIR_BWD_FILTER], ws, wss,
                                               &beta, e->wd, dw));
    LIBRARY_CHECK(be, "cudnnConvolutionBackwardFilter");
    return;
  }
  void *tmp = cuda_scratch(be, &ci->wgrad_buf, &ci->wgrad_size, nw * be->act_size, "conv weight gradient");
  if (!tmp) return;
  float beta = 0.0f;
  CUDNN_CHECK(cudnnConvolutionBackwardFilter(ci->cudnn, &alpha, e->xd, x, e->yd, dy, e->cd[DIR_BWD_FILTER],
                                             (cudnnConvolutionBwdFilterAlgo_t)e->ch.algo[DIR_BWD_FILTER], ws, wss,
                                             &beta, e->wd, tmp));
  LIBRARY_CHECK(be, "cudnnConvolutionBackwardFilter");
  DISPATCH_ACT(be->act_dtype, add_to_f32_launch, be, dw, tmp, nw);
}

void cuda_conv_destroy(backend *be) {
  cuda_impl *ci = cuda_of(be);
  for (int i = 0; i < ci->n_convs; i++) {
    conv_entry *e = &ci->convs[i];
    for (int dir = 0; dir < N_DIR; dir++)
      if (e->cd[dir]) CUDNN_CHECK(cudnnDestroyConvolutionDescriptor(e->cd[dir]));
    if (e->wd) CUDNN_CHECK(cudnnDestroyFilterDescriptor(e->wd));
    if (e->yd) CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->yd));
    if (e->xd) CUDNN_CHECK(cudnnDestroyTensorDescriptor(e->xd));
  }
  free(ci->convs);
  free(ci->saved);
  ci->convs = NULL;
  ci->saved = NULL;
  ci->n_convs = ci->cap_convs = ci->n_saved = 0;
  release_find_scratch(be);
  if (ci->ws) CUDA_CHECK(cudaFree(ci->ws));
  if (ci->wgrad_buf) CUDA_CHECK(cudaFree(ci->wgrad_buf));
  ci->ws = ci->wgrad_buf = NULL;
  ci->ws_size = ci->wgrad_size = 0;
}

/* ---- the cache file ---- */
#define CACHE_MAGIC "rn50-conv-cache 1"

static void cache_header(backend *be, char *buf, size_t len) {
  cuda_impl *ci = cuda_of(be);
  char name[256];
  snprintf(name, sizeof name, "%s", ci->device_name);
  for (char *p = name; *p; p++)
    if (*p == ' ' || *p == '\t' || *p == '\n') *p = '_';
  snprintf(buf, len, "device %s cc %d.%d cudnn %zu dtype %s tf32 %d", name, ci->cc_major, ci->cc_minor,
           (size_t)cudnnGetVersion(), dtype_tag(be->act_dtype), ci->tf32);
}

extern "C" int cuda_conv_cache_save(backend *be, const char *path) {
  cuda_impl *ci = cuda_of(be);
  size_t cap = 512 + (size_t)ci->n_convs * 160, len = 0;
  char *buf = (char *)xmalloc(cap, "conv cache text");
  char head[512];
  cache_header(be, head, sizeof head);
  len += snprintf(buf + len, cap - len, "%s\n%s\n", CACHE_MAGIC, head);
  for (int i = 0; i < ci->n_convs; i++) {
    const conv_entry *e = &ci->convs[i];
    const conv_key *k = &e->key;
    len += snprintf(buf + len, cap - len, "conv %d %d %d %d %d %d %d %d %d %d %d  %d %d  %d %d  %d %d\n", k->n, k->h,
                    k->w, k->c, k->k, k->kh, k->kw, k->stride, k->pad, k->oh, k->ow, e->ch.algo[0], e->ch.math[0],
                    e->ch.algo[1], e->ch.math[1], e->ch.algo[2], e->ch.math[2]);
  }
  char err[512];
  int rc = file_write_atomic(path, buf, len, err, sizeof err);
  free(buf);
  if (rc != 0) {
    warn("conv cache not saved: %s", err);
    return -1;
  }
  return ci->n_convs;
}

extern "C" int cuda_conv_cache_load(backend *be, const char *path) {
  cuda_impl *ci = cuda_of(be);
  char err[512];
  size_t len = 0;
  if (!path_exists(path)) return 0;
  char *text = file_read_all(path, &len, err, sizeof err);
  if (!text) {
    warn("conv cache not read: %s", err);
    return 0;
  }
  char head[512];
  cache_header(be, head, sizeof head);
  int n_lines = 0, n = 0, bad = 0;
  conv_saved *saved = NULL;
  int cap = 0;
  char *save_ptr = NULL;
  for (char *line = strtok_r(text, "\n", &save_ptr); line; line = strtok_r(NULL, "\n", &save_ptr)) {
    n_lines++;
    if (n_lines == 1) {
      if (strcmp(line, CACHE_MAGIC) != 0) bad = 1;
      continue;
    }
    if (n_lines == 2) {
      if (strcmp(line, head) != 0) {
        warn("conv cache %s was written for \"%s\", this run is \"%s\": searching again", path, line, head);
        free(text);
        free(saved);
        return 0;
      }
      continue;
    }
    conv_saved s;
    memset(&s, 0, sizeof s);
    conv_key *k = &s.key;
    int used = 0;
    int got = sscanf(line, "conv %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d %d%n", &k->n, &k->h, &k->w, &k->c,
                     &k->k, &k->kh, &k->kw, &k->stride, &k->pad, &k->oh, &k->ow, &s.ch.algo[0], &s.ch.math[0],
                     &s.ch.algo[1], &s.ch.math[1], &s.ch.algo[2], &s.ch.math[2], &used);
    if (got != 17) {
      bad = 1;
      break;
    }
    if (n == cap) {
      cap = cap ? 2 * cap : 32;
      saved = (conv_saved *)xrealloc(saved, (size_t)cap * sizeof(conv_saved), "conv cache");
    }
    saved[n++] = s;
  }
  free(text);
  if (bad || n_lines < 2) {
    warn("conv cache %s is malformed; ignoring it", path);
    free(saved);
    return -1;
  }
  free(ci->saved);
  ci->saved = saved;
  ci->n_saved = n;
  return n;
}
