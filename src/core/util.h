/* util.h: the few helpers every module needs — fatal errors that name their
 * cause, checked allocation, checked file I/O, a monotonic clock.
 * Library code that can fail on user input returns an error instead of dying;
 * die() is for the CLI layer and for impossible states. */
#ifndef RN50_UTIL_H
#define RN50_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define RN50_VERSION "0.1.0"

#if defined(__GNUC__)
#define RN50_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define RN50_NORETURN __attribute__((noreturn))
#else
#define RN50_PRINTF(a, b)
#define RN50_NORETURN
#endif

/* Print "rn50: <message>" to stderr and exit(1). */
RN50_NORETURN void die(const char *fmt, ...) RN50_PRINTF(1, 2);
/* Print "rn50: warning: <message>" to stderr. */
void warn(const char *fmt, ...) RN50_PRINTF(1, 2);

/* Allocation that dies with the size and the caller's purpose on failure. */
void *xmalloc(size_t bytes, const char *what);
void *xcalloc(size_t n, size_t size, const char *what);
void *xrealloc(void *p, size_t bytes, const char *what);
char *xstrdup(const char *s);
/* 64-byte aligned allocation (free with free()). */
void *xmalloc_aligned(size_t bytes, const char *what);

/* Whole-file read; returns NULL and fills err (if non-NULL, size errlen)
 * with "<path>: <reason>" on failure. The buffer has a trailing NUL. */
char *file_read_all(const char *path, size_t *len, char *err, size_t errlen);
/* Atomic whole-file write: temp file, fsync, rename, fsync of the directory.
 * Returns 0, or -1 with err filled. */
int file_write_atomic(const char *path, const void *data, size_t len, char *err, size_t errlen);
/* fsync the directory that holds path. Returns 0 or -1 (errno set). */
int fsync_parent_dir(const char *path);
/* mkdir -p. Returns 0 or -1 with err filled. */
int mkdir_p(const char *path, char *err, size_t errlen);
int path_exists(const char *path);
int path_is_dir(const char *path);

/* Seconds from a monotonic clock. */
double now_sec(void);

/* Number of threads the CPU backend should use (RN50_THREADS or all cores). */
int cpu_thread_count(void);

/* FNV-1a 64-bit hash, for names and checksums of small things. */
uint64_t hash64(const void *data, size_t len, uint64_t seed);
/* CRC-32C (Castagnoli) over a buffer, continuing from crc (start with 0). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);

/* Parse helpers for the CLI: return 0 on success, -1 if s is not a number
 * in range. */
int parse_int(const char *s, long lo, long hi, long *out);
int parse_double(const char *s, double lo, double hi, double *out);

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
