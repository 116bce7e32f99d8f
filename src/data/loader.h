/* loader.h: batches of augmented images for training and evaluation.
 * A pool of decode threads fills a bounded ring of prefetched batches; the
 * caller copies each batch out with loader_next. Everything random is a pure
 * function of (seed, epoch, position): the epoch's order is a permutation
 * drawn from (seed, epoch), each sample's crop and flip from (seed, epoch,
 * position in the epoch), with the counter-based RNG of src/core/rng.h. So
 * batch N of epoch E is the same for any number of threads, and
 * loader_start(E, N) on a fresh loader resumes mid-epoch exactly. A bad image
 * (zero bytes, truncated, not an image, ...) is logged once with its path and
 * reason, counted, and replaced by another sample drawn from the same
 * position's stream, so batches stay full and deterministic. */
#ifndef RN50_LOADER_H
#define RN50_LOADER_H

#include <stddef.h>
#include <stdint.h>

typedef struct loader loader;
typedef struct {
  const char *root;   /* raw tree (layout a or b) or a packed directory (auto-detected) */
  int train;          /* 1: train split + RandomResizedCrop+flip; 0: val split + resize + centre crop */
  int batch;          /* images per batch */
  int crop;           /* output side in pixels (train crop or eval crop) */
  int resize;         /* eval: shorter side before the centre crop (e.g. 256); ignored for train */
  int workers;        /* decode threads; 0 = all cores */
  uint64_t seed;
  int rank, world;    /* data-parallel share (0, 1 for one process) */
  int drop_last;      /* 1: only full batches (train); 0: last batch may be short (eval) */
  double scale_min, scale_max, ratio_min, ratio_max;   /* 0 = torchvision defaults */
} loader_config;

loader *loader_open(const loader_config *cfg, char *err, size_t errlen); /* NULL + message on error */
int64_t loader_size(const loader *l);               /* images in this split for this rank */
int64_t loader_batches_per_epoch(const loader *l);
int loader_classes(const loader *l);
const char *loader_class_wnid(const loader *l, int idx);   /* e.g. "n01440764" */
const char *loader_class_name(const loader *l, int idx);   /* human name from LOC_synset_mapping.txt when present, else the wnid */
void loader_set_crop(loader *l, int crop);            /* progressive resizing: applies from the next loader_start */
void loader_start(loader *l, int64_t epoch, int64_t batch); /* produce epoch `epoch` starting at batch index `batch` */
/* Fill images [n, crop, crop, 3] uint8 RGB HWC and labels [n]; returns n (0 when the epoch is done). The
   caller's buffers may be pinned memory; they must hold batch*crop*crop*3 bytes. */
int loader_next(loader *l, uint8_t *images, int32_t *labels);
int64_t loader_bad_images(const loader *l);          /* corrupt samples replaced so far */
double loader_wait_seconds(const loader *l);         /* time loader_next spent blocked waiting */
void loader_close(loader *l);
/* One image file through the eval transform (for `rn50 predict`): out [crop, crop, 3]. 0 or -1 + err. */
int image_load_eval(const char *path, int resize, int crop, uint8_t *out, char *err, size_t errlen);

/* --- additions --- */
/* Crop of the batches loader_next returns now (set_crop applies at loader_start). */
int loader_crop(const loader *l);
/* Decode threads in use. */
int loader_workers(const loader *l);
/* Samples in the split for all ranks together. */
int64_t loader_dataset_size(const loader *l);
/* Which dataset sample is this rank's position pos of epoch epoch (before any
 * bad-image replacement), its label and its file (raw: the path; packed: the
 * key). For checks against other pipelines. */
int64_t loader_sample_at(const loader *l, int64_t epoch, int64_t pos);
int loader_sample_label(const loader *l, int64_t sample);
const char *loader_sample_name(const loader *l, int64_t sample);
/* "folder", "kaggle" or "packed"; 1 when the sample list came from an index file. */
const char *loader_layout(const loader *l);
int loader_from_index(const loader *l);

#endif
