/* device.c: backend selection from the command line. */
#include "device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"

static const char *dtype_name(dtype t) { return t == DTYPE_BF16 ? "bf16" : t == DTYPE_F16 ? "fp16" : "fp32"; }

int device_config_parse(device_config *dc, const char *dev, const char *prec, int tf32, int threads, char *err,
                        size_t errlen) {
  memset(dc, 0, sizeof *dc);
  if (!strcmp(dev, "cpu")) dc->cuda = 0;
  else if (!strncmp(dev, "cuda", 4) && (dev[4] == 0 || dev[4] == ':')) {
    long idx = 0;
    if (dev[4] == ':' && parse_int(dev + 5, 0, 64, &idx) != 0) {
      snprintf(err, errlen, "bad --device '%s' (use cuda or cuda:N)", dev);
      return -1;
    }
    dc->cuda = 1;
    dc->gpu_index = (int)idx;
  } else {
    snprintf(err, errlen, "unknown --device '%s' (cpu, cuda or cuda:N)", dev);
    return -1;
  }
  if (!prec || !*prec) prec = dc->cuda ? "bf16" : "fp32";
  if (!strcmp(prec, "bf16")) dc->precision = DTYPE_BF16;
  else if (!strcmp(prec, "fp16")) dc->precision = DTYPE_F16;
  else if (!strcmp(prec, "fp32")) dc->precision = DTYPE_F32;
  else {
    snprintf(err, errlen, "unknown --precision '%s' (bf16, fp16 or fp32)", prec);
    return -1;
  }
  if (!dc->cuda && dc->precision != DTYPE_F32) {
    snprintf(err, errlen, "--precision %s needs --device cuda (the CPU computes in fp32)", prec);
    return -1;
  }
  dc->tf32 = tf32;
  dc->threads = threads;
  return 0;
}

void device_config_from_args(args *a, device_config *dc) {
  const char *dev = args_str(a, "device", "cpu");
  const char *prec = args_str(a, "precision", "");
  int tf32 = (int)args_int(a, "tf32", 1, 0, 1);
  int threads = (int)args_int(a, "threads", 0, 0, 4096);
  char err[256];
  if (device_config_parse(dc, dev, prec, tf32, threads, err, sizeof err) != 0) args_fail(a, "%s", err);
}

backend *device_open(device_config *dc) {
  if (!dc->cuda) {
    backend *be = cpu_backend_create(dc->threads);
    snprintf(dc->label, sizeof dc->label, "cpu (%d threads)", dc->threads > 0 ? dc->threads : cpu_thread_count());
    /* issue 6, tests: RN50_GRAPH_EMULATE=1 gives the CPU emulated graph
     * capture (src/cpu/graph_emu.c) so that graph steps run without a GPU;
     * =fail makes every capture fail (the fallback) */
    const char *emu = getenv("RN50_GRAPH_EMULATE");
    if (emu && *emu && strcmp(emu, "0") != 0) cpu_graph_emulate(be, strcmp(emu, "fail") == 0);
    return be;
  }
  char err[512] = "";
  backend *be = cuda_backend_create(dc->precision, dc->tf32, dc->gpu_index, err, sizeof err);
  if (!be) die("--device cuda: %s", err[0] ? err : "CUDA backend not available");
  snprintf(dc->label, sizeof dc->label, "cuda:%d %s%s", dc->gpu_index, dtype_name(dc->precision),
           dc->precision == DTYPE_F32 ? (dc->tf32 ? " (tf32)" : " (no tf32)") : "");
  return be;
}
