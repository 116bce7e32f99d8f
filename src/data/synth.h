/* synth.h: a synthetic ImageNet-like dataset for tests, benchmarks and the
 * demo. Each class is a texture family (stripes in three orientations,
 * checkerboard, dots, rings, waves, grid) in its own pair of colours; every
 * image varies period, phase, angle, brightness, noise, size and carries a
 * random distractor blob, so a small ResNet has something to learn even from
 * 64-pixel random crops. Written as JPEG (quality 90 by default) at
 * ImageNet-like sizes around 500x375, in the folder layout (ROOT/train,
 * ROOT/val) or the Kaggle layout, with LOC_synset_mapping.txt. */
#ifndef RN50_SYNTH_H
#define RN50_SYNTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  const char *out; /* root directory to write */
  int classes;
  int per_class;     /* train images per class */
  int val_per_class; /* val images per class */
  int width, height; /* fixed size; 0: varied around 500x375, some portrait */
  int quality;       /* JPEG quality */
  uint64_t seed;
  int kaggle;  /* 1: ROOT/ILSVRC/Data/CLS-LOC layout with LOC_val_solution.csv */
  int threads; /* 0: all cores */
} synth_opts;

/* Writes the dataset. Returns 0, or -1 with err filled. */
int synth_write(const synth_opts *o, char *err, size_t errlen);

/* The wnid of synthetic class c ("n%08d"). */
void synth_wnid(int c, char *buf, size_t len);
/* Draws image `id` of class cls into rgb [h][w][3]. */
void synth_render(uint8_t *rgb, int w, int h, int cls, uint64_t seed, uint64_t id);

#endif
