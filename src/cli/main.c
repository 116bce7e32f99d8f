/* main.c: the rn50 program — dispatches to one subcommand per job. */
#include <stdio.h>
#include <string.h>

#include "../core/util.h"
#include "../train/config.h"
#include "commands.h"

static const command commands[] = {
    {"demo", cmd_demo, "a complete small training run on the CPU (synthetic data)", cmd_demo_usage},
    {"train", cmd_train, "train (or continue training) on ImageNet", cmd_train_usage},
    {"eval", cmd_eval, "loss, top-1 and top-5 of a weights file on a val split", cmd_eval_usage},
    {"predict", cmd_predict, "top-5 classes of images", cmd_predict_usage},
    {"summary", cmd_summary, "print the model's layer table (torchsummary format)", cmd_summary_usage},
    {"init", cmd_init, "write freshly initialised weights (torchvision safetensors)", cmd_init_usage},
    {"check", cmd_check, "validate a weights file and summarise it", cmd_check_usage},
    {"bench", cmd_bench, "measure training and inference throughput", cmd_bench_usage},
    {"prepare", cmd_prepare, "check an ImageNet tree and index it for fast starts", cmd_prepare_usage},
    {"pack", cmd_pack, "write a dataset into tar shards with bounded image sizes", cmd_pack_usage},
    {"synth", cmd_synth, "write a synthetic ImageNet-like dataset", cmd_synth_usage},
};

static void print_usage(const command *c) {
  if (c->run == cmd_train) printf(c->usage, config_recipes_help);
  else fputs(c->usage, stdout);
  if (c->run == cmd_bench) fputs(cmd_bench_loader_usage, stdout);
}

static void print_help(FILE *f) {
  fprintf(f, "rn50 %s: trains ResNet-50 (and the torchvision ResNet family) on ImageNet.\n\n", RN50_VERSION);
  fprintf(f, "usage: rn50 COMMAND [OPTIONS]\n\ncommands:\n");
  for (size_t i = 0; i < ARRAY_LEN(commands); i++) fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n'rn50 help COMMAND' shows a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_help(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
    if (argc > 2)
      for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (!strcmp(argv[2], commands[i].name)) {
          print_usage(&commands[i]);
          return 0;
        }
    print_help(stdout);
    return 0;
  }
  if (!strcmp(name, "--version") || !strcmp(name, "version")) {
    printf("rn50 %s\n", RN50_VERSION);
    return 0;
  }
  for (size_t i = 0; i < ARRAY_LEN(commands); i++)
    if (!strcmp(name, commands[i].name)) {
      for (int k = 2; k < argc; k++)
        if (!strcmp(argv[k], "--help") || !strcmp(argv[k], "-h")) {
          print_usage(&commands[i]);
          return 0;
        }
      return commands[i].run(argc - 2, argv + 2);
    }
  fprintf(stderr, "rn50: unknown command '%s'\n\n", name);
  print_help(stderr);
  return 2;
}
