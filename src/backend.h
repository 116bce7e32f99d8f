/* backend.h: the one dispatch point between the model executor
 * (src/model/exec.c) and a compute backend (src/cpu, src/cuda). A backend is
 * a table of functions; every op has a CPU version (src/cpu/x.c, cpu_x_y)
 * and may have a CUDA version (src/cuda/x.cu, cuda_x_y) with the same
 * arguments. All pointers are backend memory ("device" memory; plain memory
 * on the CPU). Calls may run asynchronously; sync() waits for them.
 *
 * Conventions:
 *   activations: NHWC in the backend's act_dtype (fp32 on the CPU, bf16 /
 *     fp16 / fp32 on CUDA); logits and their gradient are always fp32.
 *   weights: fp32 master copy in one flat array; ops read a working copy in
 *     act_dtype ("w" arguments, same offsets as the master array).
 *   parameter gradients (dw, dgamma, dbeta, db) are fp32 and ALWAYS
 *     accumulated (+=); the executor zeroes them after an optimizer step.
 *   activation gradients (dx, dr) overwrite unless acc_* is 1 (+=).
 *   BN statistics are fp32; saved mean / inverse std are per channel. */
#ifndef RN50_BACKEND_H
#define RN50_BACKEND_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DTYPE_F32 = 0, DTYPE_BF16 = 1, DTYPE_F16 = 2 } dtype;

/* Geometry of one convolution (NHWC input, OHWI weights, NHWC output). */
typedef struct {
  int n, h, w, c;   /* input: batch, height, width, channels (as stored) */
  int oh, ow, k;    /* output height, width, channels */
  int kh, kw;       /* kernel */
  int stride, pad;  /* same in both directions */
  int id;           /* op index in the net: lets a backend cache plans */
} conv_desc;

typedef struct backend backend;

/* ---- graph steps (src/model/graph.c; issue 6) ----
 * A training step captured once as a graph and replayed: a replay runs the
 * recorded ops with the arguments they had at capture, so what changes from
 * step to step is read at run time from this block in backend memory. */
typedef struct {
  float lr;        /* SGD learning rate */
  float loss_grad; /* d(loss)/d(logits) scale: loss scale / batch */
  float sgd_grad;  /* gradient multiplier in SGD: 1 / loss scale */
  int skip;        /* 1: the step's update is not applied (set by check; the
                      host may set it beforehand to force a skip) */
} step_scalars;

/* Optional table (NULL where graphs are not supported, as on the CPU). */
typedef struct {
  /* Capture: the ops the calling thread issues between begin and end are
   * recorded, not run; end returns them as one runnable graph (0), or -1
   * with err when anything could not be captured (nothing ran, the backend
   * stays usable). */
  int (*begin)(backend *be, char *err, size_t errlen);
  int (*end)(backend *be, void **graph, char *err, size_t errlen);
  /* run a graph (asynchronously); 0, or -1 with err (nothing ran) */
  int (*launch)(backend *be, void *graph, char *err, size_t errlen);
  void (*destroy)(backend *be, void *graph);
  /* changes whenever backend scratch memory that a graph may use is
   * reallocated: graphs captured before are then stale */
  uint64_t (*memory_version)(backend *be);
  /* enqueue *dst = *src (dst backend memory; src host memory, reusable at once) */
  void (*set_scalars)(backend *be, step_scalars *dst, const step_scalars *src);
  /* xent with grad_scale = s->loss_grad */
  void (*xent)(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
               const int32_t *labels, float smoothing, const step_scalars *s);
  /* s->skip = 1 if any of x[0,n) is NaN or infinite (no wait) */
  void (*check)(backend *be, step_scalars *s, const float *x, size_t n);
  /* sgd_step with lr = s->lr, grad_scale = s->sgd_grad; nothing if s->skip */
  void (*sgd_step)(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                   float momentum, float wd, float wd_rest, int nesterov, const step_scalars *s);
  /* ema_update; nothing if s->skip */
  void (*ema_update)(backend *be, float *ema, const float *w, size_t n, float decay, const step_scalars *s);
  /* dst[0,n) = src[0,n) if s->skip */
  void (*restore)(backend *be, float *dst, const float *src, size_t n, const step_scalars *s);
  /* copy to pinned host memory (alloc_host) without waiting; valid after sync */
  void (*to_host_async)(backend *be, void *dst, const void *src, size_t bytes);
  /* optional (NULL: to_device): input uploads on a second queue, ordered by
   * slot (0 or 1). upload copies host -> backend memory once the work
   * enqueued before the slot's last upload_done has finished; upload_wait
   * makes later work wait for the slot's uploads; upload_done marks the
   * slot's data as consumed by the work enqueued so far. */
  void (*upload)(backend *be, int slot, void *dst, const void *src, size_t bytes);
  void (*upload_wait)(backend *be, int slot);
  void (*upload_done)(backend *be, int slot);
} backend_graph;

struct backend {
  const char *name; /* "cpu", "cuda" */
  dtype act_dtype;
  size_t act_size;  /* bytes per activation element */
  int in_c;         /* input channels the backend wants (3, or padded) */
  void *impl;       /* backend-private state */

  /* memory */
  void *(*alloc)(backend *be, size_t bytes, const char *what); /* dies on failure */
  void (*free)(backend *be, void *p);
  void *(*alloc_host)(backend *be, size_t bytes, const char *what); /* pinned on CUDA */
  void (*free_host)(backend *be, void *p);
  void (*to_device)(backend *be, void *dst, const void *src, size_t bytes);
  void (*to_host)(backend *be, void *dst, const void *src, size_t bytes); /* waits */
  void (*copy)(backend *be, void *dst, const void *src, size_t bytes); /* within backend memory */
  void (*zero)(backend *be, void *p, size_t bytes);
  void (*sync)(backend *be);
  void (*destroy)(backend *be);

  /* x[n,h,w,c] = (img[n,h,w,3] / 255 - mean) / std, channels 3..c-1 zero.
   * img is backend memory holding uint8 HWC images. */
  void (*input_from_u8)(backend *be, void *x, const uint8_t *img, int n, int h, int w, int c, const float mean[3],
                        const float inv_std[3]);
  /* working copy of weights: dst[i] = (act_dtype)src[i] */
  void (*cast_params)(backend *be, void *dst, const float *src, size_t n);

  /* convolution: y = conv(x, w); dx (+)= conv^T(dy, w); dw += corr(x, dy) */
  void (*conv_fwd)(backend *be, const conv_desc *d, void *y, const void *x, const void *w);
  void (*conv_bwd_data)(backend *be, const conv_desc *d, void *dx, const void *dy, const void *w, int acc_dx);
  void (*conv_bwd_filter)(backend *be, const conv_desc *d, float *dw, const void *dy, const void *x);
  /* optional: called once per conv shape before the first step (plan,
   * algorithm search); NULL if not needed */
  void (*conv_prepare)(backend *be, const conv_desc *d);

  /* batch norm over m rows (n*h*w) of c channels, fused with an optional
   * residual add (r, NULL if none) and ReLU:
   *   y = [relu](gamma * (x - mean) * invstd + beta [+ r])
   * training: batch mean and biased variance; running_mean/var updated as
   * PyTorch does (momentum, unbiased variance); save_mean/save_invstd kept
   * for backward. */
  void (*bn_fwd_train)(backend *be, int m, int c, void *y, const void *x, const void *r, int relu,
                       const float *gamma, const float *beta, float *run_mean, float *run_var, float *save_mean,
                       float *save_invstd, float momentum, float eps);
  void (*bn_fwd_eval)(backend *be, int m, int c, void *y, const void *x, const void *r, int relu,
                      const float *gamma, const float *beta, const float *run_mean, const float *run_var,
                      float eps);
  /* dz = relu ? dy * (y > 0) : dy;  dr (+)= dz (if dr);  dgamma += sum dz*xhat;
   * dbeta += sum dz;  dx (+)= BN backward of dz (training statistics). */
  void (*bn_bwd)(backend *be, int m, int c, void *dx, void *dr, float *dgamma, float *dbeta, const void *dy,
                 const void *y, const void *x, const float *gamma, const float *save_mean,
                 const float *save_invstd, int relu, int acc_dx, int acc_dr);

  /* max pool k x k, stride, pad (padding never wins); backward sends each
   * output's gradient to the first maximum of its window in row-major
   * order, as PyTorch does */
  void (*maxpool_fwd)(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad, void *y,
                      const void *x);
  void (*maxpool_bwd)(backend *be, int n, int h, int w, int c, int oh, int ow, int k, int stride, int pad,
                      void *dx, const void *dy, const void *x, int acc_dx);
  /* global average pool: y[n,c] = mean over hw of x[n,hw,c] */
  void (*avgpool_fwd)(backend *be, int n, int hw, int c, void *y, const void *x);
  void (*avgpool_bwd)(backend *be, int n, int hw, int c, void *dx, const void *dy, int acc_dx);

  /* fully connected: y[n,cout] (fp32) = x[n,cin] w[cout,cin]^T + b;
   * dx (+)= dy w; dw += dy^T x; db += sum dy. w and b are working copies. */
  void (*fc_fwd)(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b);
  void (*fc_bwd)(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                 const void *x, const void *w, int acc_dx);

  /* softmax cross-entropy with label smoothing eps, per row:
   *   loss[i] = -(1-eps) log p[i,y_i] - eps/classes * sum_j log p[i,j]
   * dlogits (if non-NULL) = grad_scale * (p - q) with q the smoothed target
   * (the caller folds 1/n and any loss scale into grad_scale). */
  void (*xent)(backend *be, int n, int classes, float *loss, float *dlogits, const float *logits,
               const int32_t *labels, float smoothing, float grad_scale);

  /* torch.optim.SGD (dampening 0) over n flat parameters, momentum buffer
   * zero-initialised; g is multiplied by grad_scale first; weight decay wd
   * on [0, n_decay) and wd_rest on [n_decay, n):
   *   g = grad_scale*g + wd*w; buf = momentum*buf + g;
   *   g = nesterov ? g + momentum*buf : buf; w -= lr*g; w_work = (act_dtype)w */
  void (*sgd_step)(backend *be, float *w, float *buf, const float *g, void *w_work, size_t n, size_t n_decay,
                   float lr, float momentum, float wd, float wd_rest, int nesterov, float grad_scale);
  /* 1 if any of g[0,n) is NaN or infinite (waits for the result) */
  int (*nonfinite)(backend *be, const float *g, size_t n);
  /* ema = decay*ema + (1-decay)*w over n floats */
  void (*ema_update)(backend *be, float *ema, const float *w, size_t n, float decay);

  /* optional: graph steps (see backend_graph above); NULL if unsupported */
  const backend_graph *graph;
  void *graph_impl; /* state of an emulated graph table (cpu_graph_emulate) */
};

/* The CPU backend (always available). threads <= 0: all cores. */
backend *cpu_backend_create(int threads);

/* Tests: gives a CPU backend an emulated graph table (src/cpu/graph_emu.c):
 * captures record the op calls with their arguments and launches replay
 * them, as a GPU graph does, so that the graph step runs without a GPU.
 * fail_capture 1: every capture fails (tests the fallback). */
void cpu_graph_emulate(backend *be, int fail_capture);

/* The CUDA backend, when built with CUDA=1: returns NULL and fills err when
 * no usable GPU is present. */
backend *cuda_backend_create(dtype act_dtype, int allow_tf32, int device, char *err, size_t errlen);
/* 1 if this binary has the CUDA backend compiled in. */
int cuda_backend_available(void);

#endif
