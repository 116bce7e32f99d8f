/* commands.h: the subcommands of the rn50 program, one function each.
 * Each takes the arguments after the subcommand name and returns the exit
 * status (0 ok, 1 failure, 2 bad usage). */
#ifndef RN50_COMMANDS_H
#define RN50_COMMANDS_H

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary; /* one line for 'rn50 help' */
  const char *usage;   /* full text for 'rn50 help NAME' */
} command;

int cmd_summary(int argc, char **argv);
extern const char cmd_summary_usage[];
int cmd_init(int argc, char **argv);
extern const char cmd_init_usage[];
int cmd_check(int argc, char **argv);
extern const char cmd_check_usage[];
int cmd_bench(int argc, char **argv);
extern const char cmd_bench_usage[];
int cmd_train(int argc, char **argv);
extern const char cmd_train_usage[];
int cmd_eval(int argc, char **argv);
extern const char cmd_eval_usage[];
int cmd_predict(int argc, char **argv);
extern const char cmd_predict_usage[];
int cmd_demo(int argc, char **argv);
extern const char cmd_demo_usage[];
int cmd_prepare(int argc, char **argv);
extern const char cmd_prepare_usage[];
int cmd_pack(int argc, char **argv);
extern const char cmd_pack_usage[];
int cmd_synth(int argc, char **argv);
extern const char cmd_synth_usage[];
/* 'rn50 bench --loader ...' (args after 'bench'): the input pipeline benchmark. */
int cmd_bench_loader(int argc, char **argv);
extern const char cmd_bench_loader_usage[];

#endif
