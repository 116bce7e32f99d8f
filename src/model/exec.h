/* exec.h: a net's state in backend memory and the passes over it:
 * forward (train or eval), loss, backward, optimizer step, and transfers of
 * weights to and from the host. It is backend-neutral: every op goes
 * through the backend's dispatch table (src/backend.h). */
#ifndef RN50_EXEC_H
#define RN50_EXEC_H

#include "../backend.h"
#include "net.h"

typedef struct {
  float lr;         /* set per step by the caller (schedules live in src/train) */
  float momentum;   /* 0.9 */
  float wd;         /* weight decay of conv and fc weights */
  int wd_bn;        /* 1: BN parameters and biases are decayed too (torch default) */
  int nesterov;
} sgd_config;

struct model_graph; /* src/model/graph.c */

typedef struct {
  net net;
  backend *be;
  int max_batch;
  int train_mode;   /* 0: eval only; 1: training; 2: training, every
                       activation kept through the step (for tests) */
  /* backend memory */
  float *params;    /* [n_params] fp32 master weights */
  void *work;       /* [n_params] working copy in act dtype (== params for fp32) */
  float *grads;     /* [n_params] */
  float *momentum;  /* [n_params] SGD momentum buffers (zero = none yet) */
  float *running;   /* [n_running] BN running means and variances */
  float *save_mean, *save_invstd; /* [n_bn_channels] batch statistics */
  void *act_arena; /* activations and their gradients, shared by lifetime */
  void *act[NET_MAX_ACTS];   /* activation buffers (logits fp32) */
  void *dact[NET_MAX_ACTS];  /* activation gradients */
  uint8_t *images;  /* [max_batch, H, W, 3] uint8 input staging */
  int32_t *labels;  /* [max_batch] */
  float *losses;    /* [max_batch] per-sample loss */
  /* host */
  int64_t counts[NET_MAX_OPS]; /* num_batches_tracked per BN layer */
  float mean[3], inv_std[3];   /* input normalisation */
  size_t act_bytes, grad_bytes;             /* in use for the current size (training:
                                               gradients inside act_bytes) */
  size_t act_cap, images_cap;               /* allocated */
  struct model_graph *graph; /* graph steps (src/model/graph.h), NULL until used */
} model;

/* Allocate a model for batches of at most max_batch images (train_mode 1:
 * with gradient buffers; 2: and every activation kept after backward). The net must be built with in_c = be->in_c.
 * Parameters are zero until model_init_params or model_set_state. */
void model_create(model *m, backend *be, const net *n, int max_batch, int train_mode);
void model_destroy(model *m);
/* Re-plan for another input size (progressive resizing, eval at another
 * size): parameters are kept; buffers grow if needed. 0, or -1 with err. */
int model_set_image_size(model *m, int image_size, char *err, size_t errlen);
/* Swap the model's parameters and running statistics with another pair of
 * backend arrays of the same sizes (evaluating EMA weights), refreshing the
 * working copy. Swap again to restore. */
void model_swap_weights(model *m, float **params, float **running);
/* Fresh torchvision-style initialisation from seed (see net_init_params). */
void model_init_params(model *m, uint64_t seed, int zero_gamma);

/* Copy a batch of uint8 HWC images [nb, H, W, 3] and labels [nb] (host
 * memory; pinned on CUDA for asynchronous copies: do not modify until the
 * next model_sync) into the model and normalise them. Labels may be NULL. */
void model_set_input(model *m, const uint8_t *images, const int32_t *labels, int nb);
void model_forward(model *m, int nb, int train);
/* model_forward; count_bn 0 leaves the host's BN counters alone (a step
 * captured once and replayed counts per replay: src/model/graph.c). */
void model_forward_pass(model *m, int nb, int train, int count_bn);
/* Per-sample losses and, if with_grad, d(loss)/d(logits) scaled by
 * grad_scale (the caller includes 1/nb and any loss scale). */
void model_loss(model *m, int nb, float smoothing, int with_grad, float grad_scale);
/* Mean of the per-sample losses (waits for the backend). */
double model_loss_mean(model *m, int nb);
/* Backward through the whole net; parameter gradients are accumulated. */
void model_backward(model *m, int nb);
/* One optimizer step over all parameters, then gradients are zeroed.
 * grad_scale multiplies the gradients first (1/loss_scale in fp16). */
void model_sgd_step(model *m, const sgd_config *c, float grad_scale);
void model_zero_grads(model *m);
/* Logits [nb, classes] to host memory (waits). */
void model_logits_to_host(model *m, int nb, float *out);
void model_sync(model *m);

/* Host copies of the parameters, running stats, counters (flat layout of
 * net.h). Any pointer may be NULL to skip that part. */
void model_get_state(model *m, float *params, float *running, int64_t *counts);
/* Set them (refreshes the working copy). */
void model_set_state(model *m, const float *params, const float *running, const int64_t *counts);

/* Convenience: one training step on a batch already set with
 * model_set_input: forward, loss (mean, label smoothing), backward.
 * Returns the mean loss. Gradients accumulate until model_sgd_step. */
double model_train_step(model *m, int nb, float smoothing, float grad_scale);

#endif
