/* config.h: everything a training run is configured by — recipe presets,
 * command-line overrides, the resolved configuration written to
 * RUN/config.json, and the check that a resumed run was not changed in a way
 * that would change its result. */
#ifndef RN50_CONFIG_H
#define RN50_CONFIG_H

#include <limits.h>
#include <stdint.h>

#include "../cli/args.h"
#include "../core/json.h"

typedef enum { SCHED_COSINE, SCHED_STEP, SCHED_ONECYCLE } sched_kind;

#define CFG_MAX_MILESTONES 8

typedef struct {
  /* where */
  char data[PATH_MAX];
  char out[PATH_MAX];
  char recipe[16];
  /* model */
  char arch[16];
  int classes;          /* 0: from the dataset */
  int zero_gamma;
  char init_weights[PATH_MAX]; /* start from these weights ("" = fresh init) */
  /* optimisation: all of these change the result */
  int epochs;
  int batch;            /* images per micro-batch */
  int accum;            /* micro-batches per optimizer step */
  double lr;            /* peak learning rate of the effective batch */
  double momentum;
  double wd;
  int wd_bn;            /* 1: weight decay on BN parameters and biases too */
  int nesterov;
  double smoothing;
  sched_kind sched;
  double warmup_epochs; /* linear warm-up from lr*warmup_start */
  double warmup_start;
  int milestones[CFG_MAX_MILESTONES]; /* step schedule: epochs where lr *= gamma */
  int n_milestones;
  double gamma;
  double peak_epoch;    /* one-cycle: epoch of the peak */
  double ema_decay;     /* 0: no EMA */
  int image_size;       /* train crop when not resizing progressively */
  int min_res, max_res; /* progressive resizing (FFCV): min_res..max_res */
  double start_ramp, end_ramp; /* between these epochs; end_ramp 0 = off */
  int val_resize, val_crop;
  uint64_t seed;
  char precision[8];    /* fp32 (CPU), bf16/fp16/fp32 (CUDA) */
  int tf32;
  /* operational: may change between runs of one RUN */
  char device[16];
  int workers;
  int threads;
  int log_every;        /* optimizer steps between log lines */
  double ckpt_minutes;  /* checkpoint every N minutes (0: only at epoch ends) */
  int ckpt_steps;       /* and/or every N optimizer steps (0: off) */
  int keep;             /* checkpoints kept (plus the best) */
  int max_steps;        /* stop after this many optimizer steps in total (0: no limit) */
  int nan_limit;        /* consecutive non-finite losses before stopping */
  int eval_every;       /* evaluate every N epochs (and at the end) */
  int force;            /* resume even if result-changing options differ */
  int graph;            /* issue 6: 1 = each step as a replayed CUDA graph (--graph 1) */
} train_config;

/* Fill c from a recipe ("fast", "classic") and then the command line.
 * Exits with a clear message on bad options (args_fail). */
void config_from_args(train_config *c, args *a);
/* Names of the recipes, for help text. */
extern const char config_recipes_help[];
/* The train crop of epoch e (0-based) with progressive resizing. */
int config_train_res(const train_config *c, int epoch);
/* Learning rate at a fractional epoch position t in [0, epochs]. */
double config_lr_at(const train_config *c, double t);

void config_to_json(const train_config *c, strbuf *out);
/* Read a config written by config_to_json (missing keys keep c's values). */
void config_from_json(train_config *c, const json *j);
/* Lists, one per line into out, the options that differ between a saved
 * run and this one and would change its result. Returns their count. */
int config_diff(const train_config *saved, const train_config *now, strbuf *out);

#endif
