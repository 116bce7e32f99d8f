/* train.h: a training run from start to end — or from its newest checkpoint
 * to the end: `rn50 train` started again with the same RUN continues where
 * the last one stopped, mid-epoch included. */
#ifndef RN50_TRAIN_H
#define RN50_TRAIN_H

#include "config.h"

/* Exit statuses of train_main */
#define TRAIN_OK 0        /* finished, or stopped by a signal after a checkpoint */
#define TRAIN_ERROR 1     /* could not start or continue (message printed) */
#define TRAIN_DIVERGED 3  /* stopped after nan_limit non-finite losses in a row */

int train_main(train_config *cfg);

#endif
