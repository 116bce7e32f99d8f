/* plan.c: greedy interval placement for buffer arenas. */
#include "plan.h"

#include <stdlib.h>

#include "../core/util.h"

size_t plan_arena(int n, const size_t *size, const int *start, const int *end, size_t align, size_t *offset) {
  int *order = xmalloc((size_t)n * sizeof(int), "arena plan");
  int *placed = xmalloc((size_t)n * sizeof(int), "arena plan");
  int k = 0;
  for (int i = 0; i < n; i++) order[i] = i;
  /* largest first; ties by index, so the plan is deterministic */
  for (int i = 1; i < n; i++) {
    int v = order[i], j = i - 1;
    while (j >= 0 && (size[order[j]] < size[v] || (size[order[j]] == size[v] && order[j] > v))) {
      order[j + 1] = order[j];
      j--;
    }
    order[j + 1] = v;
  }
  size_t total = 0;
  for (int oi = 0; oi < n; oi++) {
    int i = order[oi];
    offset[i] = 0;
    if (size[i] == 0) continue;
    size_t sz = (size[i] + align - 1) / align * align;
    size_t at = 0;
    /* move past every placed, time-overlapping buffer that collides, until
     * a gap is found (placed buffers are few: O(n^2) is fine) */
    for (int moved = 1; moved;) {
      moved = 0;
      for (int p = 0; p < k; p++) {
        int q = placed[p];
        if (end[q] < start[i] || end[i] < start[q]) continue;
        size_t qsz = (size[q] + align - 1) / align * align;
        if (at < offset[q] + qsz && offset[q] < at + sz) {
          at = offset[q] + qsz;
          moved = 1;
        }
      }
    }
    offset[i] = at;
    placed[k++] = i;
    if (at + sz > total) total = at + sz;
  }
  free(order);
  free(placed);
  return total;
}
