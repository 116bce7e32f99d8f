/* prepare.h: `rn50 prepare` — recognise and check a dataset once: layout,
 * images per split and per class against ImageNet-1K's numbers, every bad
 * file (zero bytes, truncated, not a JPEG or PNG, absurd dimensions,
 * unreadable) and the unusual but usable ones (PNG named .JPEG, CMYK,
 * grayscale), then write the index that later opens read instead of walking
 * the tree. Nothing under ROOT is changed. */
#ifndef RN50_PREPARE_H
#define RN50_PREPARE_H

#include <stddef.h>

typedef struct {
  const char *root;
  int threads;  /* 0: all cores */
  int quick;    /* headers only (no full decode: misses truncation) */
  int list_all; /* list every bad/unusual file instead of the first 20 of each kind */
} prepare_opts;

/* Prints the report on stdout (progress on stderr). Returns 0, or -1 with err. */
int prepare_run(const prepare_opts *o, char *err, size_t errlen);

#endif
