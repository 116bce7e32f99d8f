/* plan.h: places buffers with known lifetimes in one arena so that buffers
 * alive at the same time never overlap (greedy, largest first). Used for the
 * activation gradients, which live only between two ops of the backward. */
#ifndef RN50_PLAN_H
#define RN50_PLAN_H

#include <stddef.h>

/* n buffers of size[i] bytes alive over steps [start[i], end[i]] (inclusive;
 * size 0 = unused). Writes offset[i] (aligned to align) and returns the
 * arena size. */
size_t plan_arena(int n, const size_t *size, const int *start, const int *end, size_t align, size_t *offset);

#endif
