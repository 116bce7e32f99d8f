/* cpu_backend.c: the CPU backend's dispatch table and memory functions. */
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "../core/util.h"
#include "cpu.h"
#include "threads.h"

static void *cpu_alloc(backend *be, size_t bytes, const char *what) { return xmalloc_aligned(bytes, what); }
static void cpu_free(backend *be, void *p) { free(p); }
static void cpu_copy(backend *be, void *dst, const void *src, size_t bytes) {
  if (bytes) memcpy(dst, src, bytes);
}
static void cpu_zero(backend *be, void *p, size_t bytes) {
  if (bytes) memset(p, 0, bytes);
}
static void cpu_sync(backend *be) {}
static void cpu_destroy(backend *be) { free(be); }

backend *cpu_backend_create(int threads) {
  if (threads <= 0) threads = cpu_thread_count();
  cpu_threads_set(threads);
  omp_set_num_threads(threads); /* for any OpenMP code outside the backend */
  backend *be = xcalloc(1, sizeof *be, "CPU backend");
  be->name = "cpu";
  be->act_dtype = DTYPE_F32;
  be->act_size = sizeof(float);
  be->in_c = 3;
  be->alloc = cpu_alloc;
  be->free = cpu_free;
  be->alloc_host = cpu_alloc;
  be->free_host = cpu_free;
  be->to_device = cpu_copy;
  be->to_host = cpu_copy;
  be->copy = cpu_copy;
  be->zero = cpu_zero;
  be->sync = cpu_sync;
  be->destroy = cpu_destroy;
  be->input_from_u8 = cpu_input_from_u8;
  be->cast_params = cpu_cast_params;
  be->conv_fwd = cpu_conv_fwd;
  be->conv_bwd_data = cpu_conv_bwd_data;
  be->conv_bwd_filter = cpu_conv_bwd_filter;
  be->conv_prepare = NULL;
  be->bn_fwd_train = cpu_bn_fwd_train;
  be->bn_fwd_eval = cpu_bn_fwd_eval;
  be->bn_bwd = cpu_bn_bwd;
  be->maxpool_fwd = cpu_maxpool_fwd;
  be->maxpool_bwd = cpu_maxpool_bwd;
  be->avgpool_fwd = cpu_avgpool_fwd;
  be->avgpool_bwd = cpu_avgpool_bwd;
  be->fc_fwd = cpu_fc_fwd;
  be->fc_bwd = cpu_fc_bwd;
  be->xent = cpu_xent;
  be->sgd_step = cpu_sgd_step;
  be->nonfinite = cpu_nonfinite;
  be->ema_update = cpu_ema_update;
  return be;
}
