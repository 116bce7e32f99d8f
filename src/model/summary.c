/* summary.c: prints the layer table that torchsummary's summary(model,
 * (3, S, S)) prints for the torchvision model, row for row: one row per
 * module call (the block's shared ReLU appears each time it runs), the
 * block itself after its last ReLU, then the totals and size estimates. */
#include <math.h>
#include <string.h>

#include "net.h"

typedef struct {
  FILE *f;
  int row;
  long long total_params;
  long long total_output; /* sum of output shape products with batch -1 */
} table;

static void fmt_commas(long long v, char *out, size_t len) {
  char tmp[32];
  snprintf(tmp, sizeof tmp, "%lld", v < 0 ? -v : v);
  int n = (int)strlen(tmp), o = 0;
  if (v < 0 && o < (int)len - 1) out[o++] = '-';
  for (int i = 0; i < n && o < (int)len - 1; i++) {
    if (i > 0 && (n - i) % 3 == 0 && o < (int)len - 1) out[o++] = ',';
    out[o++] = tmp[i];
  }
  out[o] = 0;
}

static void row(table *t, const char *type, const act_shape *s, int flat, long long params) {
  char name[64], shape[64], p[32];
  snprintf(name, sizeof name, "%s-%d", type, ++t->row);
  if (flat) {
    snprintf(shape, sizeof shape, "[-1, %d]", s->c);
    t->total_output += -(long long)s->c;
  } else {
    snprintf(shape, sizeof shape, "[-1, %d, %d, %d]", s->c, s->h, s->w);
    t->total_output += -(long long)s->c * s->h * s->w;
  }
  fmt_commas(params, p, sizeof p);
  fprintf(t->f, "%20s  %25s %15s\n", name, shape, p);
  t->total_params += params;
}

static long long state_numel(const net *n, int id) { return id < 0 ? 0 : (long long)state_torch_numel(&n->state[id]); }

void net_print_summary(const net *n, FILE *f) {
  table t = {f, 0, 0, 0};
  const char *dashes = "----------------------------------------------------------------";
  fprintf(f, "%s\n", dashes);
  fprintf(f, "%20s  %25s %15s\n", "Layer (type)", "Output Shape", "Param #");
  fprintf(f, "================================================================\n");
  const net_op *ds_conv = NULL, *ds_bn = NULL;
  for (int i = 0; i < n->n_ops; i++) {
    const net_op *op = &n->ops[i];
    const act_shape *y = &n->acts[op->y];
    int is_ds = strstr(op->name, ".downsample.") != NULL;
    switch (op->kind) {
      case OP_CONV:
        if (is_ds) ds_conv = op;
        else row(&t, "Conv2d", y, 0, state_numel(n, op->w));
        break;
      case OP_BN:
        if (is_ds) {
          ds_bn = op;
          break;
        }
        row(&t, "BatchNorm2d", y, 0, state_numel(n, op->w) + state_numel(n, op->b));
        if (op->r >= 0 && ds_conv && ds_bn) {
          row(&t, "Conv2d", &n->acts[ds_conv->y], 0, state_numel(n, ds_conv->w));
          row(&t, "BatchNorm2d", &n->acts[ds_bn->y], 0, state_numel(n, ds_bn->w) + state_numel(n, ds_bn->b));
          ds_conv = ds_bn = NULL;
        }
        if (op->relu) row(&t, "ReLU", y, 0, 0);
        if (op->r >= 0) row(&t, n->bottleneck ? "Bottleneck" : "BasicBlock", y, 0, 0);
        break;
      case OP_MAXPOOL: row(&t, "MaxPool2d", y, 0, 0); break;
      case OP_AVGPOOL: row(&t, "AdaptiveAvgPool2d", y, 0, 0); break;
      case OP_FC: row(&t, "Linear", y, 1, state_numel(n, op->w) + state_numel(n, op->b)); break;
    }
  }
  char p[32];
  fprintf(f, "================================================================\n");
  fmt_commas(t.total_params, p, sizeof p);
  fprintf(f, "Total params: %s\n", p);
  fprintf(f, "Trainable params: %s\n", p);
  fprintf(f, "Non-trainable params: 0\n");
  fprintf(f, "%s\n", dashes);
  /* the same double arithmetic as torchsummary, batch_size -1 */
  double input_mb = fabs((double)(3LL * n->image_size * n->image_size * -1) * 4. / (1024. * 1024.));
  double output_mb = fabs(2. * (double)t.total_output * 4. / (1024. * 1024.));
  double params_mb = fabs((double)t.total_params * 4. / (1024. * 1024.));
  double total_mb = params_mb + output_mb + input_mb;
  fprintf(f, "Input size (MB): %0.2f\n", input_mb);
  fprintf(f, "Forward/backward pass size (MB): %0.2f\n", output_mb);
  fprintf(f, "Params size (MB): %0.2f\n", params_mb);
  fprintf(f, "Estimated Total Size (MB): %0.2f\n", total_mb);
}
