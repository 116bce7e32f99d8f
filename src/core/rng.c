/* rng.c: Philox4x32-10 (Salmon et al., SC'11) and the draws built on it. */
#include "rng.h"

#include <math.h>

void philox4x32(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]) {
  uint32_t c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3];
  uint32_t k0 = key[0], k1 = key[1];
  for (int r = 0; r < 10; r++) {
    uint64_t p0 = (uint64_t)0xD2511F53u * c0;
    uint64_t p1 = (uint64_t)0xCD9E8D57u * c2;
    uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = (uint32_t)p1;
    uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = (uint32_t)p0;
    c0 = n0;
    c1 = n1;
    c2 = n2;
    c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  out[0] = c0;
  out[1] = c1;
  out[2] = c2;
  out[3] = c3;
}

static void draw4(uint64_t seed, uint64_t stream, uint64_t index, uint32_t out[4]) {
  uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)stream, (uint32_t)(stream >> 32)};
  uint32_t key[2] = {(uint32_t)seed, (uint32_t)(seed >> 32)};
  philox4x32(ctr, key, out);
}

uint64_t rng_u64(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t o[4];
  draw4(seed, stream, index, o);
  return (uint64_t)o[0] | (uint64_t)o[1] << 32;
}

static double to_unit(uint32_t lo, uint32_t hi) {
  uint64_t bits = ((uint64_t)hi << 21) ^ (lo >> 11); /* 53 bits */
  return (double)(bits & ((1ULL << 53) - 1)) * (1.0 / 9007199254740992.0);
}

double rng_uniform(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t o[4];
  draw4(seed, stream, index, o);
  return to_unit(o[0], o[1]);
}

double rng_normal(uint64_t seed, uint64_t stream, uint64_t index) {
  uint32_t o[4];
  draw4(seed, stream, index, o);
  double u1 = to_unit(o[0], o[1]);
  double u2 = to_unit(o[2], o[3]);
  if (u1 < 1e-300) u1 = 1e-300;
  return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

double rng_next_uniform(rng_stream *s) { return rng_uniform(s->seed, s->stream, s->index++); }
double rng_next_normal(rng_stream *s) { return rng_normal(s->seed, s->stream, s->index++); }
uint64_t rng_next_u64(rng_stream *s) { return rng_u64(s->seed, s->stream, s->index++); }

uint64_t rng_next_below(rng_stream *s, uint64_t n) {
  if (n <= 1) return 0;
  uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  for (;;) {
    uint64_t v = rng_next_u64(s);
    if (v < limit) return v % n;
  }
}
