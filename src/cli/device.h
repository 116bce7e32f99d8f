/* device.h: the --device / --precision / --tf32 / --threads options shared
 * by every command that computes, and opening the chosen backend. */
#ifndef RN50_DEVICE_H
#define RN50_DEVICE_H

#include "../backend.h"
#include "args.h"

typedef struct {
  int cuda;        /* 1: --device cuda */
  int gpu_index;   /* --device cuda:N */
  dtype precision; /* bf16 (CUDA default), fp16, fp32 (CPU: always fp32) */
  int tf32;        /* CUDA fp32: allow TF32 (default 1) */
  int threads;     /* CPU threads (0: all cores) */
  char label[64];  /* e.g. "cpu (2 threads)", "cuda bf16" */
} device_config;

void device_config_from_args(args *a, device_config *dc);
/* The same from strings ("cpu", "cuda", "cuda:1"; "bf16"/"fp16"/"fp32" or
 * "" for the device's default). 0, or -1 with err. */
int device_config_parse(device_config *dc, const char *device, const char *precision, int tf32, int threads,
                        char *err, size_t errlen);
/* Open the backend; exits with a clear message if it is not available. */
backend *device_open(device_config *dc);

#endif
