/* test_plan.c: the arena planner (src/model/plan.c) that places activations
 * and their gradients by lifetime. Random buffer sets: no two buffers alive
 * at the same time overlap in memory, offsets are aligned, every buffer lies
 * inside the arena, the arena is at least the largest live total (a lower
 * bound no placement can beat) and the plan is deterministic. Also a chain
 * like a network's forward + backward, whose plan must come close to it. */
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "harness.h"
#include "model/plan.h"

#define MAXN 300

static size_t up(size_t v, size_t a) { return (v + a - 1) / a * a; }

/* the largest total size alive at one step (with aligned sizes) */
static size_t live_bound(int n, const size_t *size, const int *start, const int *end, size_t align) {
  int tmax = 0;
  for (int i = 0; i < n; i++)
    if (size[i] && end[i] > tmax) tmax = end[i];
  size_t best = 0;
  for (int t = 0; t <= tmax; t++) {
    size_t live = 0;
    for (int i = 0; i < n; i++)
      if (size[i] && start[i] <= t && t <= end[i]) live += up(size[i], align);
    if (live > best) best = live;
  }
  return best;
}

/* returns the number of violations */
static int check_plan(int n, const size_t *size, const int *start, const int *end, size_t align, const size_t *off,
                      size_t total) {
  int bad = 0;
  for (int i = 0; i < n; i++) {
    if (!size[i]) continue;
    if (off[i] % align) bad++;
    if (off[i] + size[i] > total) bad++;
    for (int j = i + 1; j < n; j++) {
      if (!size[j] || end[i] < start[j] || end[j] < start[i]) continue;
      if (off[i] < off[j] + size[j] && off[j] < off[i] + size[i]) bad++;
    }
  }
  return bad;
}

static void test_random_sets(void) {
  static size_t size[MAXN], off[MAXN], off2[MAXN];
  static int start[MAXN], end[MAXN];
  int bad = 0, below = 0, nondet = 0;
  double worst = 1.0;
  for (int trial = 0; trial < 200; trial++) {
    int n = 1 + (int)(rng_u64(11, (uint64_t)trial, 0) % MAXN);
    int steps = 2 + (int)(rng_u64(11, (uint64_t)trial, 1) % 200);
    size_t align = (size_t)1 << (rng_u64(11, (uint64_t)trial, 2) % 9);
    for (int i = 0; i < n; i++) {
      uint64_t r = rng_u64(12, (uint64_t)trial, (uint64_t)i);
      /* some empty buffers; sizes over five orders of magnitude; equal sizes too */
      size[i] = r % 10 == 0 ? 0 : r % 7 == 0 ? 4096 : 1 + (size_t)((r >> 8) % 100000) * (1 + (r >> 40) % 3);
      int a = (int)((r >> 20) % (uint64_t)steps), b = (int)((r >> 30) % (uint64_t)steps);
      start[i] = a < b ? a : b;
      end[i] = a < b ? b : a;
    }
    size_t total = plan_arena(n, size, start, end, align, off);
    size_t total2 = plan_arena(n, size, start, end, align, off2);
    size_t lb = live_bound(n, size, start, end, align);
    bad += check_plan(n, size, start, end, align, off, total);
    below += total < lb;
    nondet += total != total2 || memcmp(off, off2, (size_t)n * sizeof(size_t)) != 0;
    if (lb && (double)total / (double)lb > worst) worst = (double)total / (double)lb;
  }
  printf("  200 random sets: worst arena / live lower bound %.3f\n", worst);
  CHECK(bad == 0, "%d overlapping, unaligned or out-of-arena placements", bad);
  CHECK(below == 0, "%d arenas below the live lower bound (the check itself is wrong)", below);
  CHECK(nondet == 0, "%d plans differ between two identical calls", nondet);
}

/* a chain of L layers as the executor plans training: activation a (size
 * s_a) lives from its forward (time a) to its backward (time 2L - a), its
 * gradient from the backward of its consumer to its own; greedy placement
 * is not optimal in general, but here it must stay within 5% of the largest
 * live total (for ResNet-50's real timeline it meets it exactly) */
static void test_training_chain(void) {
  enum { L = 60 };
  static size_t size[2 * L], off[2 * L];
  static int start[2 * L], end[2 * L];
  for (int a = 0; a < L; a++) {
    size[a] = 1000 * (size_t)(1 + (L - a) % 7) * (a < L / 2 ? 4 : 1);
    start[a] = a;
    end[a] = 2 * L - a;
    size[L + a] = size[a];
    start[L + a] = 2 * L - a - 1;
    end[L + a] = 2 * L - a;
  }
  size_t total = plan_arena(2 * L, size, start, end, 256, off);
  size_t lb = live_bound(2 * L, size, start, end, 256);
  CHECK(check_plan(2 * L, size, start, end, 256, off, total) == 0, "training chain: overlapping placements");
  printf("  training chain: arena %zu, live lower bound %zu\n", total, lb);
  CHECK(total <= lb + lb / 20, "training chain: arena %zu more than 5%% above the live lower bound %zu", total, lb);
}

int main(void) {
  RUN(test_random_sets);
  RUN(test_training_chain);
  return harness_finish();
}
