/* weights.h: a net's parameters, BN running statistics and counters as a
 * torchvision state_dict in safetensors: the names, shapes (OIHW convs) and
 * dtypes (F32, I64 num_batches_tracked) that
 * torchvision.models.resnet50().load_state_dict() accepts. */
#ifndef RN50_WEIGHTS_H
#define RN50_WEIGHTS_H

#include "../io/safetensors.h"
#include "../model/net.h"

/* Host arrays in the net's flat layout: params [n_params], running
 * [n_running], counts [n_bn]. meta: NULL-terminated key, value, key, value,
 * ... list added to __metadata__ (may be NULL). "rn50.arch" and
 * "rn50.classes" are always written. Returns 0 or -1 with err. */
int weights_save(const net *n, const float *params, const float *running, const int64_t *counts, const char *path,
                 const char *const *meta, char *err, size_t errlen);

/* Adds the state tensors, under prefix (e.g. "" or "ema."), to a writer;
 * used by checkpoints that hold several copies. */
void weights_add(safet_writer *w, const net *n, const char *prefix, const float *params, const float *running,
                 const int64_t *counts);
/* Reads the state tensors under prefix from an open file: every tensor the
 * net has must be there with its torchvision shape; with strict, no tensor
 * outside the net may be there either (tensors under other prefixes of a
 * checkpoint are skipped by passing strict 0). Any of params/running/counts
 * may be NULL to skip that class. 0 or -1 with err naming the tensor. */
int weights_read(const net *n, const safet_file *f, const char *prefix, int strict, float *params, float *running,
                 int64_t *counts, char *err, size_t errlen);
/* Open, verify and read a weights file strictly. */
int weights_load(const net *n, const char *path, float *params, float *running, int64_t *counts, char *err,
                 size_t errlen);

/* The arch and class count a weights file was made for, from its tensor
 * names and shapes (works for torchvision-exported files without rn50
 * metadata). 0, or -1 with err if no ResNet of the family matches. */
int weights_detect_arch(const safet_file *f, arch_id *arch, int *classes, char *err, size_t errlen);

#endif
