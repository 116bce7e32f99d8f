/* evaluate.h: a model on a dataset split with the eval transform — loss
 * (plain cross-entropy), top-1 and top-5 — and the top-k of one row of
 * logits, shared by training, `rn50 eval` and `rn50 predict`. */
#ifndef RN50_EVALUATE_H
#define RN50_EVALUATE_H

#include "../data/loader.h"
#include "../model/exec.h"

typedef struct {
  double loss, top1, top5; /* top-k in percent */
  long images;
  double seconds;
} eval_result;

/* Runs the whole split the loader produces (loader_start(0, 0) first). The
 * model must be at the loader's crop size (model_set_image_size). */
void evaluate(model *m, loader *val, eval_result *r);
/* Indices of the k largest of row[classes] in descending order, and their
 * softmax probabilities (prob may be NULL). */
void topk(const float *row, int classes, int k, int *idx, double *prob);

#endif
