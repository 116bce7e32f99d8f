/* rng.h: a counter-based random number generator (Philox4x32-10).
 * Every random draw in rn50 is a pure function of (seed, stream, counter), so
 * results do not depend on thread count, call order or restarts: weight init
 * uses one stream per tensor, the loader one per (epoch, sample). */
#ifndef RN50_RNG_H
#define RN50_RNG_H

#include <stdint.h>

/* Four 32-bit random words for counter (c0..c3) under key (k0, k1). */
void philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* 64 random bits for (seed, stream, index). */
uint64_t rng_u64(uint64_t seed, uint64_t stream, uint64_t index);
/* Uniform double in [0, 1) with 53 random bits. */
double rng_uniform(uint64_t seed, uint64_t stream, uint64_t index);
/* Standard normal (Box-Muller on two uniforms drawn from one counter). */
double rng_normal(uint64_t seed, uint64_t stream, uint64_t index);

/* A sequential generator over one (seed, stream): state is the next index,
 * so it can be saved and restored exactly. */
typedef struct {
  uint64_t seed, stream, index;
} rng_stream;

static inline rng_stream rng_stream_make(uint64_t seed, uint64_t stream) {
  rng_stream s = {seed, stream, 0};
  return s;
}
double rng_next_uniform(rng_stream *s);
double rng_next_normal(rng_stream *s);
uint64_t rng_next_u64(rng_stream *s);
/* Uniform integer in [0, n) without modulo bias. */
uint64_t rng_next_below(rng_stream *s, uint64_t n);

#endif
