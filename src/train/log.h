/* log.h: what a person watching a run sees: RUN/train.log (appended,
 * flushed every line, readable with `tail -f`) and the same lines on stdout,
 * where a terminal also gets a live progress bar redrawn in place; under
 * nohup or a pipe stdout gets plain lines only. */
#ifndef RN50_LOG_H
#define RN50_LOG_H

#include <stddef.h>

/* Open RUN/train.log for appending. Returns 0 or -1 with err. */
int log_open(const char *run_dir, char *err, size_t errlen);
void log_close(void);
/* A timestamped line to train.log and stdout. */
void log_line(const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 1, 2)))
#endif
    ;
/* Redraw the progress bar (terminals only; a no-op otherwise). done/total
 * in steps; text follows the bar. */
void log_progress(long done, long total, const char *text);
/* "1h02m", "3m05s", "12s" */
void log_fmt_duration(char *buf, size_t n, double seconds);

#endif
