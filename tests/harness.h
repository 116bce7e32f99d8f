/* harness.h: the tiny test harness every tests/test_*.c uses.
 * A test is a void function; CHECK records a failure with its location and
 * message and the test goes on. main() calls RUN for each test and returns
 * harness_finish(), which prints "RESULT <passed> <failed>" for
 * tests/run_tests.sh to add up, and exits non-zero if anything failed. */
#ifndef RN50_HARNESS_H
#define RN50_HARNESS_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

static int h_passed, h_failed, h_cur_failed;
static const char *h_cur_name;

static void h_fail(const char *file, int line, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stdout, "  %s:%d: ", file, line);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  va_end(ap);
  h_cur_failed++;
}

#define CHECK(cond, ...)                                 \
  do {                                                   \
    if (!(cond)) h_fail(__FILE__, __LINE__, __VA_ARGS__); \
  } while (0)

/* Relative L2 error ||a-b|| / ||b|| in double; NaN anywhere gives +inf. */
static inline double rel_l2(const float *a, const float *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)a[i] - (double)b[i];
    if (isnan(a[i]) || isnan(b[i])) return INFINITY;
    num += d * d;
    den += (double)b[i] * (double)b[i];
  }
  if (den == 0) return num == 0 ? 0 : INFINITY;
  return sqrt(num / den);
}

/* The same against a double reference; NaN in a gives +inf. */
static inline double rel_l2_d(const float *a, const double *b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    if (isnan(a[i])) return INFINITY;
    num += (a[i] - b[i]) * (a[i] - b[i]);
    den += b[i] * b[i];
  }
  return den == 0 ? (num == 0 ? 0 : INFINITY) : sqrt(num / den);
}

#define CHECK_REL(a, b, n, tol, what)                                                     \
  do {                                                                                    \
    double e_ = rel_l2((a), (b), (n));                                                    \
    CHECK(e_ <= (tol), "%s: relative L2 error %.3g > tolerance %.1g", (what), e_, (double)(tol)); \
  } while (0)

static void h_run(const char *name, void (*fn)(void)) {
  h_cur_name = name;
  h_cur_failed = 0;
  fn();
  if (h_cur_failed) {
    printf("FAIL %s\n", name);
    h_failed++;
  } else {
    printf("ok   %s\n", name);
    h_passed++;
  }
  fflush(stdout);
}

#define RUN(fn) h_run(#fn, fn)

/* removes a flat scratch directory and the files in it */
static inline void h_remove_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *de;
  while (d && (de = readdir(d))) {
    if (de->d_name[0] == '.') continue;
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
    unlink(p);
  }
  if (d) closedir(d);
  rmdir(dir);
}

/* Runs fn(arg, fd) in a forked child (killed by SIGALRM after timeout_s
 * seconds if > 0), which reports by writing three ints to fd (what they mean
 * is the caller's: e.g. skipped, passed, failed). Returns 0 with msg filled,
 * or -1 after printing a FAIL line naming `what` and how the child died.
 * GPU tests use it so that the parent never touches CUDA. */
static inline int h_in_child(void (*fn)(const void *arg, int fd), const void *arg, int timeout_s, int msg[3],
                             const char *what) {
  int pfd[2];
  if (pipe(pfd) != 0) {
    printf("FAIL %s: pipe failed\n", what);
    exit(1);
  }
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    printf("FAIL %s: fork failed\n", what);
    exit(1);
  }
  if (pid == 0) {
    close(pfd[0]);
    if (timeout_s > 0) alarm((unsigned)timeout_s);
    fn(arg, pfd[1]);
    _exit(0);
  }
  close(pfd[1]);
  ssize_t got = read(pfd[0], msg, 3 * sizeof(int));
  close(pfd[0]);
  int st = 0;
  waitpid(pid, &st, 0);
  if (got == (ssize_t)(3 * sizeof(int))) return 0;
  if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
    printf("FAIL %s: timed out after %d s (RN50_TEST_CHILD_TIMEOUT)\n", what, timeout_s);
  else
    printf("FAIL %s: the test process died (%s %d) before finishing; see the message above\n", what,
           WIFSIGNALED(st) ? "signal" : "exit status", WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
  return -1;
}

static int harness_finish(void) {
  printf("RESULT %d %d\n", h_passed, h_failed);
  return h_failed ? 1 : 0;
}

#endif
