/* args.h: command-line options for the subcommands. Options are
 * "--name value", "--name=value" or bare "--flag"; anything else is a
 * positional argument. Bad values and unknown options end the program with a
 * message that names the option (exit 2). */
#ifndef RN50_ARGS_H
#define RN50_ARGS_H

typedef struct {
  const char *cmd; /* subcommand name, for messages */
  int argc;
  char **argv;
  char *used;      /* per argv entry: consumed by an option lookup */
} args;

void args_init(args *a, const char *cmd, int argc, char **argv);
void args_free(args *a);
/* Value of --name, or dflt when absent. */
const char *args_str(args *a, const char *name, const char *dflt);
/* Integer / real value of --name within [lo, hi], or dflt when absent. */
long args_int(args *a, const char *name, long dflt, long lo, long hi);
double args_double(args *a, const char *name, double dflt, double lo, double hi);
/* 1 if the bare flag --name is present (also accepts --name=1/0/true/false). */
int args_flag(args *a, const char *name);
/* Positional arguments not consumed by options, in order. Returns count. */
int args_positional(args *a, char **out, int max);
/* Die if any option was not consumed (call after all lookups). */
void args_finish(args *a);
/* Print a usage error for this command and exit 2. */
void args_fail(args *a, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3), noreturn))
#endif
    ;

#endif
