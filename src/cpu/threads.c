/* threads.c: the CPU backend's worker pool (see threads.h).
 *
 * One task at a time (calls are serialised by a mutex). A task is published
 * by bumping `gen`; workers spin on it for a short while, then sleep on a
 * condition variable. Items are claimed from `ticket`, whose high 32 bits
 * hold the task's generation, so a worker that is late for a task can
 * never claim (or skip) an item of the next one. The caller runs items too, then
 * waits (spin, then sleep) until `done` reaches the item count. */
#include "threads.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

#include "../core/util.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
#else
#define cpu_relax() ((void)0)
#endif

#define MAX_THREADS 256
/* pause instructions spent polling before sleeping (~50-100 us) */
#define SPIN 4000

static pthread_mutex_t call_mu = PTHREAD_MUTEX_INITIALIZER; /* one cpu_for at a time */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;     /* new task */
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER; /* task done */

static int n_threads;      /* in use, caller included (0: not set yet) */
static int n_workers;      /* started */
static _Atomic uint32_t gen;
static _Atomic uint64_t ticket; /* gen << 32 | next item */
static _Atomic int done;        /* items finished in the current task */
static int caller_sleeping;     /* under mu */
static cpu_item_fn task_fn;
static void *task_ctx;
static int task_n, task_threads;
static _Thread_local int in_task; /* nested cpu_for runs serially */

/* claim and run items of task g */
static void run_items(uint32_t g, cpu_item_fn fn, void *ctx, int n, int thread) {
  in_task = 1;
  uint64_t t = atomic_load(&ticket);
  for (;;) {
    /* claim with a compare-exchange: a worker late for task g must not
     * move the counter once it belongs to task g+1 */
    if ((uint32_t)(t >> 32) != g || (int)(uint32_t)t >= n) break;
    if (!atomic_compare_exchange_weak(&ticket, &t, t + 1)) continue;
    fn(ctx, (int)(uint32_t)t, thread);
    t = atomic_load(&ticket);
    if (atomic_fetch_add(&done, 1) + 1 == n) { /* the last item: wake the caller */
      pthread_mutex_lock(&mu);
      if (caller_sleeping) pthread_cond_signal(&finished);
      pthread_mutex_unlock(&mu);
    }
  }
  in_task = 0;
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg; /* 1.. (the caller is thread 0) */
  uint32_t seen = 0;
  for (;;) {
    uint32_t g = atomic_load(&gen);
    for (int s = 0; g == seen && s < SPIN; s++) {
      cpu_relax();
      g = atomic_load(&gen);
    }
    if (g == seen) {
      pthread_mutex_lock(&mu);
      while ((g = atomic_load(&gen)) == seen) pthread_cond_wait(&wake, &mu);
      pthread_mutex_unlock(&mu);
    }
    seen = g;
    pthread_mutex_lock(&mu);
    cpu_item_fn fn = task_fn;
    void *ctx = task_ctx;
    int n = task_n, nt = task_threads;
    pthread_mutex_unlock(&mu);
    if (id < nt) run_items(g, fn, ctx, n, id);
  }
  return NULL;
}

#define SCRATCH_SLOTS 8
static struct {
  void *p;
  size_t n;
} scratch[MAX_THREADS][SCRATCH_SLOTS];

void *cpu_scratch(int thread, int slot, size_t bytes) {
  if (thread < 0 || thread >= MAX_THREADS || slot < 0 || slot >= SCRATCH_SLOTS)
    die("cpu_scratch: bad thread %d or slot %d", thread, slot);
  if (bytes > scratch[thread][slot].n) {
    free(scratch[thread][slot].p);
    scratch[thread][slot].p = xmalloc_aligned(bytes, "CPU thread scratch");
    scratch[thread][slot].n = bytes;
  }
  return scratch[thread][slot].p;
}

void cpu_threads_set(int n) {
  pthread_mutex_lock(&call_mu);
  n_threads = n < 1 ? 1 : (n > MAX_THREADS ? MAX_THREADS : n);
  while (n_workers < n_threads - 1) {
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    if (pthread_create(&t, &at, worker, (void *)(intptr_t)(n_workers + 1)) != 0)
      die("cannot start CPU worker thread %d", n_workers + 1);
    pthread_attr_destroy(&at);
    n_workers++;
  }
  pthread_mutex_unlock(&call_mu);
}

int cpu_threads(void) {
  if (!n_threads) cpu_threads_set(cpu_thread_count());
  return n_threads;
}

void cpu_for(int n, cpu_item_fn fn, void *ctx) {
  if (n <= 0) return;
  int nt = cpu_threads();
  if (nt == 1 || n == 1 || in_task) {
    for (int i = 0; i < n; i++) fn(ctx, i, 0);
    return;
  }
  pthread_mutex_lock(&call_mu);
  pthread_mutex_lock(&mu);
  uint32_t g = atomic_load(&gen) + 1;
  if (g == 0) g = 1; /* workers start having seen 0 */
  task_fn = fn;
  task_ctx = ctx;
  task_n = n;
  task_threads = n_threads;
  atomic_store(&done, 0);
  atomic_store(&ticket, (uint64_t)g << 32);
  atomic_store(&gen, g);
  pthread_cond_broadcast(&wake);
  pthread_mutex_unlock(&mu);
  run_items(g, fn, ctx, n, 0);
  for (int s = 0; atomic_load(&done) < n && s < SPIN; s++) cpu_relax();
  if (atomic_load(&done) < n) {
    pthread_mutex_lock(&mu);
    caller_sleeping = 1;
    while (atomic_load(&done) < n) pthread_cond_wait(&finished, &mu);
    caller_sleeping = 0;
    pthread_mutex_unlock(&mu);
  }
  pthread_mutex_unlock(&call_mu);
}
