/* checkpoint.h: everything needed to continue a training run exactly, in a
 * directory per checkpoint under RUN/checkpoints/step-NNNNNNNNN/:
 *   model.safetensors  the model as a torchvision state_dict (loadable by
 *                      torchvision as it is), class names in its metadata
 *   state.safetensors  SGD momentum ("momentum.<param>"), EMA weights
 *                      ("ema.<name>"), and in its metadata the training state
 *                      (epoch, step, loader position, loss scale, metrics so
 *                      far: JSON) and the configuration
 * Each file carries a CRC-32C of its data; a checkpoint is written into a
 * temporary directory (files fsynced) and renamed into place, then the
 * directory is fsynced, so a kill at any moment leaves either the old set or
 * the new one. The newest readable checkpoint wins; a corrupt or truncated
 * one is reported and skipped. */
#ifndef RN50_CHECKPOINT_H
#define RN50_CHECKPOINT_H

#include <stdint.h>

#include "../model/net.h"

/* Host copies of what a checkpoint holds (net.h flat layouts). ema_* may be
 * NULL when the run has no EMA. */
typedef struct {
  float *params, *running, *momentum, *ema_params, *ema_running;
  int64_t *counts;
} ckpt_tensors;

/* Write checkpoint "step-<global_step>" and then delete all but the newest
 * `keep` checkpoints and the one named `protect` (the best; may be NULL).
 * meta_*: JSON texts stored in the metadata. name_out (>= 64 bytes) gets the
 * checkpoint's directory name. 0, or -1 with err. */
int ckpt_save(const char *run_dir, const net *n, const ckpt_tensors *t, int64_t global_step, const char *state_json,
              const char *config_json, const char *classes_json, int keep, const char *protect, char *name_out,
              char *err, size_t errlen);

/* Load the newest readable checkpoint into t (arrays sized for n); returns 1
 * if one was loaded, 0 if the run has none, -1 if there are some but none is
 * readable (err says why). Warnings about skipped corrupt checkpoints go to
 * stderr. *state_json / *config_json are malloc'ed copies (free them). */
int ckpt_load_latest(const char *run_dir, const net *n, ckpt_tensors *t, char **state_json, char **config_json,
                     char *name_out, char *err, size_t errlen);

/* Number of checkpoint directories in the run. */
int ckpt_count(const char *run_dir);

#endif
