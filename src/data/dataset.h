/* dataset.h: ImageNet as users have it on disk, as a list of samples.
 * Three layouts are recognised under ROOT:
 *   folder: ROOT/train/WNID/X.JPEG and ROOT/val/WNID/X.JPEG (ImageFolder
 *           after valprep; ROOT/test optional);
 *   kaggle: ROOT/ILSVRC/Data/CLS-LOC/{train,val,test} with val flat, labels
 *           from ROOT/LOC_val_solution.csv (read as it is, nothing moved);
 *   packed: a directory written by `rn50 pack` (ROOT/rn50pack.idx + shards).
 * A class's index is the position of its wnid in sorted order, as
 * torchvision's ImageFolder assigns it. Names come from
 * ROOT/LOC_synset_mapping.txt when present. `rn50 prepare` saves the scan as
 * an index file so that later opens skip walking the tree. */
#ifndef RN50_DATASET_H
#define RN50_DATASET_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

enum { DS_TRAIN = 0, DS_VAL = 1, DS_TEST = 2, DS_NSPLIT = 3 };
enum { DS_LAYOUT_NONE = 0, DS_LAYOUT_FOLDER, DS_LAYOUT_KAGGLE, DS_LAYOUT_PACKED };

/* Per-sample flags found by `rn50 prepare` (bad ones are replaced when read). */
enum {
  DS_BAD = 1,      /* unusable: the IMG_* status is in bits 5..7 */
  DS_PNG = 2,      /* a PNG (whatever its name says) */
  DS_CMYK = 4,     /* CMYK or YCCK JPEG */
  DS_GRAY = 8,     /* grayscale */
  DS_CHECKED = 16, /* decoded in full by prepare or pack */
};
#define DS_FLAGS_STATUS(f) (((f) >> 5) & 7)
#define DS_FLAGS_MAKE_BAD(status) (DS_BAD | DS_CHECKED | ((status) << 5))

typedef struct {
  int present;         /* the split exists on disk */
  char base[PATH_MAX]; /* directory the relative paths are under (raw layouts) */
  int64_t n;           /* samples */
  int64_t cap;
  char *pool; /* NUL-terminated relative paths (raw) or keys (packed) */
  size_t pool_len, pool_cap;
  int64_t *name;   /* [n] offset of the sample's path in pool */
  int32_t *label;  /* [n] class index (-1: unlabelled) */
  int32_t *shard;  /* [n] packed: shard number; raw: -1 */
  int64_t *offset; /* [n] packed: byte offset of the image in its shard */
  int64_t *bytes;  /* [n] file size in bytes (-1: not known) */
  int32_t *width;  /* [n] pixels (0: not known) */
  int32_t *height; /* [n] */
  uint8_t *flags;  /* [n] DS_* */
  int nshard;
  char **shard_file; /* [nshard] packed: shard file names, relative to the root */
} ds_split;

typedef struct {
  int64_t mtime_ns;
  char *path; /* relative to the root */
} ds_stamp;

typedef struct {
  char root[PATH_MAX]; /* absolute, symlinks resolved */
  int layout;          /* DS_LAYOUT_* */
  int nclass;
  char **wnid; /* [nclass] sorted */
  char **name; /* [nclass] human names (the wnid when unknown) */
  ds_split split[DS_NSPLIT];
  int nstamp;
  ds_stamp *stamps; /* directories and files scanned, with their mtimes */
  int from_index;   /* loaded from an index file rather than a walk */
  int64_t ignored;  /* files skipped during the walk (not .jpg/.jpeg/.png) */
} dataset;

const char *ds_split_name(int split);
const char *ds_layout_name(int layout);

/* Opens ROOT: detects the layout, loads the splits in want (bit 1<<DS_TRAIN
 * ...; the test split is only counted). Uses prepare's index when it is
 * present and still matches the tree (use_index). Returns 0, or -1 with a
 * message for the user in err (missing/unreadable ROOT, unknown layout,
 * empty class, ...). */
int ds_open(dataset *ds, const char *root, int want, int use_index, char *err, size_t errlen);
void ds_free(dataset *ds);

/* Where prepare keeps the index of ROOT: $RN50_CACHE, else
 * $XDG_CACHE_HOME/rn50, else $HOME/.cache/rn50, then index-<hash>.txt. */
int ds_index_path(const char *root_abs, char *out, size_t outlen);
/* Writes ds as an index file (also the format of a pack's rn50pack.idx). */
int ds_index_write(const dataset *ds, const char *path, char *err, size_t errlen);
/* Reads an index file into ds (which must be zeroed). */
int ds_index_read(dataset *ds, const char *path, char *err, size_t errlen);
/* 1 when every directory and file stamped in ds still has its mtime. */
int ds_index_fresh(const dataset *ds);

/* Appends a sample to a split; path is copied into the pool. Returns its index. */
int64_t ds_add(ds_split *s, const char *path, int32_t label);
/* Full path of a raw sample into buf. */
const char *ds_sample_path(const dataset *ds, int split, int64_t i, char *buf, size_t buflen);
static inline const char *ds_sample_name(const ds_split *s, int64_t i) { return s->pool + s->name[i]; }

/* Class index of a wnid (binary search), -1 if unknown. */
int ds_class_index(const dataset *ds, const char *wnid);

#endif
