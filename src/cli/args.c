/* args.c: option lookup with range checks and clear errors. */
#include "args.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

void args_init(args *a, const char *cmd, int argc, char **argv) {
  a->cmd = cmd;
  a->argc = argc;
  a->argv = argv;
  a->used = xcalloc((size_t)argc + 1, 1, "arguments");
}

void args_free(args *a) { free(a->used); }

void args_fail(args *a, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "rn50 %s: ", a->cmd);
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n(see 'rn50 help %s')\n", a->cmd);
  va_end(ap);
  exit(2);
}

/* Finds --name; the last occurrence wins (all are consumed). Returns the
 * index of the option or -1. *val gets the value (inline after '=' or the
 * next argv entry) or NULL. */
static int find(args *a, const char *name, const char **val, int want_value) {
  size_t n = strlen(name);
  int found = -1;
  for (int i = 0; i < a->argc; i++) {
    const char *s = a->argv[i];
    if (a->used[i] == 2 || s[0] != '-' || s[1] != '-' || strncmp(s + 2, name, n)) continue;
    if (s[2 + n] == '=') {
      *val = s + 3 + n;
      a->used[i] = 1;
      found = i;
      continue;
    }
    if (s[2 + n] != 0) continue;
    a->used[i] = 1;
    *val = NULL;
    found = i;
    if (want_value) {
      if (i + 1 >= a->argc) args_fail(a, "option --%s needs a value", name);
      *val = a->argv[i + 1];
      a->used[i + 1] = 2; /* a value, never an option name */
      i++;
    }
  }
  return found;
}

const char *args_str(args *a, const char *name, const char *dflt) {
  const char *v;
  if (find(a, name, &v, 1) < 0) return dflt;
  return v;
}

long args_int(args *a, const char *name, long dflt, long lo, long hi) {
  const char *v = args_str(a, name, NULL);
  if (!v) return dflt;
  long out;
  if (parse_int(v, lo, hi, &out) != 0) args_fail(a, "--%s must be an integer from %ld to %ld (got '%s')", name, lo, hi, v);
  return out;
}

double args_double(args *a, const char *name, double dflt, double lo, double hi) {
  const char *v = args_str(a, name, NULL);
  if (!v) return dflt;
  double out;
  if (parse_double(v, lo, hi, &out) != 0) args_fail(a, "--%s must be a number from %g to %g (got '%s')", name, lo, hi, v);
  return out;
}

int args_flag(args *a, const char *name) {
  const char *v;
  if (find(a, name, &v, 0) < 0) return 0;
  if (!v) return 1;
  if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes")) return 1;
  if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no")) return 0;
  args_fail(a, "--%s takes no value, or one of 1/0/true/false (got '%s')", name, v);
}

int args_positional(args *a, char **out, int max) {
  int k = 0;
  for (int i = 0; i < a->argc; i++) {
    if (a->used[i]) continue;
    const char *s = a->argv[i];
    if (s[0] == '-' && s[1] == '-' && s[2]) continue; /* an unknown option */
    if (k < max) out[k] = a->argv[i];
    a->used[i] = 1;
    k++;
  }
  return k;
}

void args_finish(args *a) {
  for (int i = 0; i < a->argc; i++)
    if (!a->used[i]) {
      const char *s = a->argv[i];
      if (s[0] == '-' && s[1] == '-') args_fail(a, "unknown option '%s'", s);
      args_fail(a, "unexpected argument '%s'", s);
    }
}
