/* pack.h: `rn50 pack` — the dataset rewritten as WebDataset-style tar shards
 * (OUT/train-000000.tar ...: <key>.jpg + <key>.cls per sample, train shuffled
 * once) with images bounded to a maximum side (re-encoded only when larger,
 * or when not a plain YCbCr JPEG: CMYK, grayscale and PNG become RGB JPEGs),
 * plus OUT/rn50pack.idx, an index in dataset order with each image's shard
 * and byte offset for random access. Shards are written whole (temporary
 * file, fsync, rename), so an interrupted pack continues with the first
 * missing shard and ends byte-identical to an uninterrupted one. */
#ifndef RN50_PACK_H
#define RN50_PACK_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *root; /* source dataset (any layout ds_open reads, not packed) */
  const char *out;  /* pack directory */
  int max_side;     /* longer side bound in pixels; 0 keeps sizes */
  int quality;      /* JPEG quality of re-encoded images */
  int shard_size;   /* images per shard */
  int threads;      /* 0: all cores */
  uint64_t seed;    /* order of the train shards */
  int stop_after;   /* tests: return 3 after writing this many shards (0: never) */
} pack_opts;

/* Returns 0 when the pack is complete, 3 when stopped by stop_after, -1 on
 * error (err filled). */
int pack_run(const pack_opts *o, char *err, size_t errlen);

#endif
