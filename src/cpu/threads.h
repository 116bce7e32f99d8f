/* threads.h: the CPU backend's worker threads. cpu_for() runs a loop of
 * work items on all of them, each thread claiming the next item as it
 * becomes free, and returns when every item is done.
 *
 * Why not OpenMP: libgomp's threads spin for milliseconds at every barrier
 * before they sleep (GOMP_SPINCOUNT, read once at start-up), so on a
 * machine shared with other jobs a thread that waits for a preempted
 * partner burns the core the partner needs, and a training step with
 * hundreds of barriers slows down several times. These threads spin for
 * tens of microseconds, then sleep; items are claimed one at a time, so a
 * preempted thread holds back at most the item it is working on.
 *
 * Results never depend on which thread runs an item: callers give each
 * item its own outputs (or partial sums combined afterwards in item
 * order). */
#ifndef RN50_CPU_THREADS_H
#define RN50_CPU_THREADS_H

#include <stddef.h>

/* fn(ctx, item, thread): thread is in [0, cpu_threads()) and tells the
 * item which per-thread scratch it may use */
typedef void (*cpu_item_fn)(void *ctx, int item, int thread);

/* threads to use from now on (the caller counts as one); n >= 1 */
void cpu_threads_set(int n);
/* threads in use (cpu_thread_count() until set) */
int cpu_threads(void);
/* run fn for items [0, n) on all threads; nested calls run serially */
void cpu_for(int n, cpu_item_fn fn, void *ctx);
/* grow-only scratch of at least `bytes` (64-byte aligned) for one thread:
 * slot tells apart the buffers one op uses at the same time (< 8); an op
 * may use any thread's scratch only from that thread's items */
void *cpu_scratch(int thread, int slot, size_t bytes);
/* items for a loop over n elements in pieces of about `grain` elements */
static inline int cpu_pieces(size_t n, size_t grain) {
  size_t k = (n + grain - 1) / (grain ? grain : 1);
  return k < 1 ? 1 : (k > 1 << 20 ? 1 << 20 : (int)k);
}
/* first element of piece i of k over n elements */
static inline size_t cpu_piece_start(size_t n, int k, int i) { return n / (size_t)k * (size_t)i + (n % (size_t)k < (size_t)i ? n % (size_t)k : (size_t)i); }

#endif
