/* cmd_summary.c: 'rn50 summary' prints the model's layer table. */
#include <stdio.h>

#include "../model/net.h"
#include "args.h"
#include "commands.h"

const char cmd_summary_usage[] =
    "usage: rn50 summary [--arch A] [--image-size S] [--classes C]\n"
    "Prints the layer table as torchsummary prints it for the torchvision model\n"
    "(output shapes for batch -1, parameter counts, totals, size estimates).\n"
    "  --arch A        resnet18|resnet34|resnet50|resnet101|resnet152 (default resnet50)\n"
    "  --image-size S  input height and width in pixels (default 224)\n"
    "  --classes C     output classes (default 1000)\n";

int cmd_summary(int argc, char **argv) {
  args a;
  args_init(&a, "summary", argc, argv);
  const char *arch_s = args_str(&a, "arch", "resnet50");
  int size = (int)args_int(&a, "image-size", 224, 1, 1 << 20);
  int classes = (int)args_int(&a, "classes", 1000, 1, 1000000);
  args_finish(&a);
  arch_id arch;
  if (arch_from_name(arch_s, &arch) != 0)
    args_fail(&a, "unknown arch '%s' (choose resnet18, resnet34, resnet50, resnet101 or resnet152)", arch_s);
  static net n;
  char err[256];
  if (net_build(&n, arch, classes, size, 3, err, sizeof err) != 0) args_fail(&a, "%s", err);
  net_print_summary(&n, stdout);
  args_free(&a);
  return 0;
}
