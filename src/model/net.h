/* net.h: the ResNet family as data. A net is a list of ops over numbered
 * activations plus a table of state tensors (parameters, BN running stats,
 * counters) named exactly as torchvision's state_dict. Every backend runs the
 * same list (src/model/exec.c); no backend builds its own model.
 *
 * Layouts shared by all backends:
 *   activations: NHWC, batch size given at run time (shapes here are per image)
 *   conv weights: OHWI inside rn50 (OIHW in files, converted at I/O)
 *   fc weight: [out, in] as torchvision; all parameters fp32 in one flat array,
 *   the weight-decayed ones first, so an optimizer can treat a prefix. */
#ifndef RN50_NET_H
#define RN50_NET_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NET_MAX_OPS 512
#define NET_MAX_ACTS 512
#define NET_MAX_STATE 2048
#define NET_NAME_LEN 64

typedef struct {
  int h, w, c; /* per image; the batch size is a run-time argument */
} act_shape;

typedef enum { OP_CONV, OP_BN, OP_MAXPOOL, OP_AVGPOOL, OP_FC } op_kind;

typedef struct {
  op_kind kind;
  char name[NET_NAME_LEN]; /* torchvision module name: "layer1.0.conv1" */
  int x, y;                /* input and output activation ids */
  int r;                   /* BN: residual added before ReLU (-1: none) */
  int relu;                /* BN: ReLU after (and after the residual add) */
  int w, b;                /* state ids: conv w; bn gamma=w beta=b; fc w, b */
  int rmean, rvar, count;  /* BN state ids of running stats and counter */
  int bn;                  /* BN: index among BN layers (saved statistics) */
  int k, stride, pad;      /* conv / maxpool kernel size (square) */
} net_op;

typedef enum { ST_PARAM, ST_RUNNING, ST_COUNT } state_class;

typedef struct {
  char name[NET_NAME_LEN]; /* torchvision state_dict key */
  state_class cls;
  int ndim;
  int64_t shape[4];        /* torchvision shape (OIHW for conv weights) */
  int conv;                /* 1: stored OHWI with I padded to in_pad */
  int in_pad;              /* conv: stored input channels (>= shape[1]) */
  size_t offset;           /* floats into params (ST_PARAM) or running
                              (ST_RUNNING); index into counts (ST_COUNT):
                              the BN layer's index, net_op.bn */
  size_t numel;            /* elements as stored (with padding) */
  int decay;               /* ST_PARAM: weight decay applies when not
                              exempted (conv and fc weights always; BN and
                              biases unless --no-bn-wd style exemption) */
} state_entry;

typedef enum { ARCH_RESNET18, ARCH_RESNET34, ARCH_RESNET50, ARCH_RESNET101, ARCH_RESNET152 } arch_id;

typedef struct {
  arch_id arch;
  char arch_name[16];
  int classes;
  int image_size;         /* input height = width */
  int in_c;               /* input channels as stored (3, or padded to 4/8) */
  int bottleneck;         /* 1 for resnet50/101/152 */
  int n_ops;
  net_op ops[NET_MAX_OPS];
  int n_acts;
  act_shape acts[NET_MAX_ACTS]; /* act 0 is the input image */
  int logits;             /* id of the logits activation (fp32, 1x1xclasses) */
  int features;           /* id of the pooled features (1x1xC) */
  int n_state;
  state_entry state[NET_MAX_STATE];
  size_t n_params;        /* floats in the flat parameter array (padded) */
  size_t n_decay;         /* params[0, n_decay) are conv and fc weights */
  size_t n_running;       /* floats of running means and variances */
  int n_bn;               /* BN layers (= entries of ST_COUNT) */
  int bn_channels[NET_MAX_OPS]; /* channels of BN layer i */
  size_t bn_offset[NET_MAX_OPS]; /* offset of BN layer i's channels in a
                                    per-channel array of total n_bn_channels */
  size_t n_bn_channels;
} net;

/* Parse an arch name ("resnet50"); returns 0 or -1 if unknown. */
int arch_from_name(const char *name, arch_id *out);
/* Names of all arches, NULL-terminated. */
extern const char *const arch_names[];

/* Build the net. in_c is 3 on the CPU (a GPU backend may pad to 4 or 8).
 * Returns 0, or -1 with err filled for bad arguments (image size too small
 * for the network, classes < 1). */
int net_build(net *n, arch_id arch, int classes, int image_size, int in_c, char *err, size_t errlen);

/* Number of trainable parameters as torchvision counts them (no padding). */
size_t net_param_count(const net *n);
/* State entry by torchvision name, or -1. */
int net_find_state(const net *n, const char *name);
/* Elements of an activation for a batch of nb images. */
static inline size_t act_numel(const net *n, int id, int nb) {
  const act_shape *s = &n->acts[id];
  return (size_t)nb * (size_t)s->h * (size_t)s->w * (size_t)s->c;
}
/* Elements of a state tensor as torchvision shapes it. */
size_t state_torch_numel(const state_entry *e);

/* Initialise parameters as torchvision does (Kaiming normal fan_out for
 * convs, gamma 1 / beta 0, nn.Linear's uniform for fc), from seed alone:
 * identical on every machine and thread count. zero_gamma sets the gamma of
 * each block's last BN to 0. Also resets running stats (mean 0, var 1) and
 * counters. params has n->n_params floats, running n->n_running, counts n->n_bn. */
void net_init_params(const net *n, uint64_t seed, int zero_gamma, float *params, float *running, int64_t *counts);

/* Convert one state tensor between rn50's storage and torchvision's
 * (contiguous, OIHW for convs). src/dst are float arrays. */
void state_to_torch(const state_entry *e, const float *stored, float *torch_out);
void state_from_torch(const state_entry *e, const float *torch_in, float *stored);

/* Print the torchsummary-style table for batch -1 to f. */
void net_print_summary(const net *n, FILE *f);

#endif
