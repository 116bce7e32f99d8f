/* progress.h: a progress bar on stderr for long jobs (prepare, pack, synth):
 * redrawn in place on a terminal, a plain line every 10% otherwise (logs). */
#ifndef RN50_PROGRESS_H
#define RN50_PROGRESS_H

#include <stdint.h>

typedef struct {
  const char *what;
  int64_t total;
  double t0, last;
  int tty, last_decile, quiet;
} progress;

void progress_init(progress *p, const char *what, int64_t total);
/* Shows done/total (rate-limited; call from one thread). */
void progress_update(progress *p, int64_t done);
/* Final line with the elapsed time. */
void progress_end(progress *p, int64_t done);

#endif
