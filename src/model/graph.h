/* graph.h: the whole training step — input normalisation aside: forward,
 * loss, backward, SGD and EMA — captured once as a backend graph (a CUDA
 * graph) per configuration and replayed at every step (issue 6). Per-step
 * values (learning rate, loss scale) are read from backend memory; the
 * decision to skip a step (non-finite loss, or gradients in fp16) is taken
 * on the device, which then leaves the weights alone and restores the BN
 * running statistics; the losses and that decision come back to pinned host
 * memory inside the graph. The next batch is uploaded on a second queue
 * while a step runs (model_graph_set_input).
 *
 * Use: model_graph_set_input(batch k); model_graph_step; [load batch k+1
 * and model_graph_set_input it]; model_graph_result. A step returning -1
 * ran nothing: run the eager step (model_set_input, model_forward, ...) on
 * the same batch; graph steps are then off for this model. */
#ifndef RN50_GRAPH_H
#define RN50_GRAPH_H

#include "exec.h"

typedef struct {
  sgd_config sgd;    /* sgd.lr may change at every step; the other fields are fixed per graph */
  float smoothing;   /* label smoothing (fixed per graph) */
  double loss_scale; /* 1, or fp16's dynamic loss scale (may change at every step) */
  int check_grads;   /* skip the update also when a gradient is not finite (fp16) */
  int force_skip;    /* skip this step's update (the trainer's RN50_TEST_NAN_AT hook) */
  float *ema_params, *ema_running; /* backend arrays updated after the step, or NULL (no EMA) */
  float ema_decay;
} model_step_config;

typedef struct {
  int warmups;   /* steps run uncaptured: the first of each configuration */
  int captures;  /* graphs captured */
  int replays;   /* steps run as a graph */
  int fallbacks; /* model_graph_step calls that returned -1 */
} model_graph_stats;

/* 0 if this model can take graph steps; -1 with the reason in why. */
int model_graph_available(model *m, char *why, size_t len);

/* Uploads a batch (uint8 HWC images [nb, H, W, 3], labels [nb]; host
 * memory, pinned for an asynchronous copy) for the next model_graph_step,
 * on a second queue where the backend has one. The host buffers must stay
 * unchanged until model_graph_result of the step that uses them. Does
 * nothing when graph steps are off. */
void model_graph_set_input(model *m, const uint8_t *images, const int32_t *labels, int nb);

/* One training step on the batch last given to model_graph_set_input, as
 * the trainer's eager step with accumulation 1 does it: forward, loss
 * (scaled by loss_scale / nb), backward, and unless the loss (or, with
 * check_grads, a gradient) is not finite: SGD with gradients scaled by
 * 1 / loss_scale, then EMA; gradients are zeroed. Asynchronous. The first
 * step of a configuration (batch size, image size, buffers, fixed
 * hyper-parameters) runs uncaptured, which sizes every scratch buffer; the
 * second is captured and launched; later ones are replays. Returns 0, or -1
 * when the graph step is not available or capturing failed: then nothing
 * ran, a one-line message said why (once), and graph steps stay off. */
int model_graph_step(model *m, int nb, const model_step_config *c);

/* Waits for the last step launched and gives its mean loss (NaN if any
 * sample's is not finite) and whether its update was skipped; on a skipped
 * step the BN counters are restored too (as the trainer does for an eager
 * step). 0, or -1 if no step is waiting. */
int model_graph_result(model *m, double *loss, int *skipped);

/* "on", or why graph steps are off */
const char *model_graph_status(const model *m);
void model_graph_get_stats(const model *m, model_graph_stats *s);
/* Frees the graphs and buffers (model_destroy calls it). */
void model_graph_free(model *m);

#endif
