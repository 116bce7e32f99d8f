/* cuda_ops_bench.h: `test_cuda_ops --bench [bf16|fp16|fp32|tf32] [batch]`
 * times every op of a backend at ResNet-50's shapes (batch 256 by default)
 * on random data: each conv shape forward / backward-data /
 * backward-filter with its TFLOP/s, each BN shape forward / backward with
 * its GB/s, pools, fc, loss, SGD; then the per-step total, each shape
 * weighted by how often ResNet-50 uses it. Host timing around `reps` calls
 * and a sync (launch overhead included). Included by test_cuda_ops.c. */
#ifndef RN50_CUDA_OPS_BENCH_H
#define RN50_CUDA_OPS_BENCH_H

typedef struct {
  int h, c, k, ks, stride, count; /* input side and channels, output channels, kernel, stride, uses per step */
} bench_conv;

/* ResNet-50 at 224 px: every distinct conv and how many times it appears */
static const bench_conv bench_convs[] = {
    {224, 4, 64, 7, 2, 1},                                                                  /* stem */
    {56, 64, 64, 1, 1, 1},    {56, 64, 64, 3, 1, 3},    {56, 64, 256, 1, 1, 4},   {56, 256, 64, 1, 1, 2},     /* layer1 */
    {56, 256, 128, 1, 1, 1},  {56, 128, 128, 3, 2, 1},  {28, 128, 512, 1, 1, 4},  {56, 256, 512, 1, 2, 1},
    {28, 512, 128, 1, 1, 3},  {28, 128, 128, 3, 1, 3},                                                    /* layer2 */
    {28, 512, 256, 1, 1, 1},  {28, 256, 256, 3, 2, 1},  {14, 256, 1024, 1, 1, 6}, {28, 512, 1024, 1, 2, 1},
    {14, 1024, 256, 1, 1, 5}, {14, 256, 256, 3, 1, 5},                                                    /* layer3 */
    {14, 1024, 512, 1, 1, 1}, {14, 512, 512, 3, 2, 1},  {7, 512, 2048, 1, 1, 3},  {14, 1024, 2048, 1, 2, 1},
    {7, 2048, 512, 1, 1, 2},  {7, 512, 512, 3, 1, 2},                                                     /* layer4 */
};

typedef struct {
  int h, c, resid, count;
} bench_bn;

static const bench_bn bench_bns[] = {
    {112, 64, 0, 1}, {56, 64, 0, 6},   {56, 256, 1, 4},  {56, 128, 0, 1}, {28, 128, 0, 7},  {28, 512, 1, 5},
    {28, 256, 0, 1}, {14, 256, 0, 11}, {14, 1024, 1, 7}, {14, 512, 0, 1}, {7, 512, 0, 5},   {7, 2048, 1, 4},
};

static double bench_time(backend *be, double t0, int reps) {
  be->sync(be);
  return (now_sec() - t0) * 1e3 / reps;
}

/* run STMT twice to warm up, then reps times; ms per call into OUT */
#define BENCH(OUT, STMT)                           \
  do {                                             \
    STMT;                                          \
    STMT;                                          \
    G->sync(G);                                    \
    double t0_ = now_sec();                        \
    for (int r_ = 0; r_ < reps; r_++) { STMT; }    \
    OUT = bench_time(G, t0_, reps);                \
  } while (0)

/* a device buffer of n random act-dtype (or fp32) values in [-1, 1) */
static void *bench_buf(dtype dt, size_t n) {
  size_t es = tu_size(dt), chunk = (size_t)1 << 22;
  void *d = tu_alloc(G, n * es);
  void *h = xmalloc(chunk * es, "bench data");
  uint32_t s = 2463534242u + (uint32_t)tu_counter++;
  for (size_t i = 0; i < chunk; i++) {
    s ^= s << 13, s ^= s >> 17, s ^= s << 5;
    float v = (float)(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
    if (dt == DTYPE_F32) ((float *)h)[i] = v;
    else ((uint16_t *)h)[i] = dt == DTYPE_BF16 ? tu_f2bf(v) : tu_f2h(v);
  }
  for (size_t o = 0; o < n; o += chunk) /* the same random block, repeated */
    G->to_device(G, (char *)d + o * es, h, (n - o < chunk ? n - o : chunk) * es);
  G->sync(G);
  free(h);
  return d;
}

static int cuda_ops_bench(const char *mode_name, int nb) {
  char err[512];
  const test_mode *mode = &modes[1];
  for (size_t i = 0; i < ARRAY_LEN(modes); i++)
    if (mode_name && !strcmp(mode_name, modes[i].name)) mode = &modes[i];
  M = mode;
  G = cuda_backend_create(M->dt, M->tf32, 0, err, sizeof err);
  if (!G) {
    printf("bench: no GPU (%s)\n", err);
    return 0;
  }
  const int reps = 10;
  dtype dt = M->dt;
  size_t big = (size_t)nb * 112 * 112 * 64; /* largest activation */
  void *A = bench_buf(dt, big), *B = bench_buf(dt, big), *Cb = bench_buf(dt, big), *D = bench_buf(dt, big),
       *E = bench_buf(dt, big);
  void *W = bench_buf(dt, (size_t)2400000); /* largest weight: 512x3x3x512 */
  float *dW = bench_buf(DTYPE_F32, (size_t)2400000);
  float *gam = bench_buf(DTYPE_F32, 2048), *bet = bench_buf(DTYPE_F32, 2048), *rm = bench_buf(DTYPE_F32, 2048);
  float *rv = bench_buf(DTYPE_F32, 2048), *sm = bench_buf(DTYPE_F32, 2048), *si = bench_buf(DTYPE_F32, 2048);
  float *dg = bench_buf(DTYPE_F32, 2048), *db = bench_buf(DTYPE_F32, 2048);
  {
    /* positive variances and inverse stds */
    float one[2048];
    for (int i = 0; i < 2048; i++) one[i] = 1.0f;
    G->to_device(G, rv, one, sizeof one);
    G->to_device(G, si, one, sizeof one);
  }
  printf("op micro-benchmark: %s, batch %d, %d reps per op (ms per call)\n", M->name, nb, reps);
  printf("%-34s %9s %9s %9s   %s\n", "conv (uses/step)", "fwd", "bwd-data", "bwd-filt", "TFLOP/s fwd/bd/bf");
  double conv_total = 0;
  for (size_t i = 0; i < ARRAY_LEN(bench_convs); i++) {
    const bench_conv *b = &bench_convs[i];
    int pad = b->ks / 2, oh = (b->h + 2 * pad - b->ks) / b->stride + 1;
    conv_desc d = {nb, b->h, b->h, b->c, oh, oh, b->k, b->ks, b->ks, b->stride, pad, (int)i};
    double t0 = now_sec();
    G->conv_prepare(G, &d);
    double prep = now_sec() - t0, tf, td, tw;
    BENCH(tf, G->conv_fwd(G, &d, B, A, W));
    BENCH(td, G->conv_bwd_data(G, &d, D, Cb, W, 0));
    BENCH(tw, G->conv_bwd_filter(G, &d, dW, Cb, A));
    double fl = 2.0 * nb * oh * oh * (double)b->k * b->c * b->ks * b->ks;
    char name[64];
    snprintf(name, sizeof name, "%dx%d s%d %3dx%-4d %4d->%-4d x%d", b->ks, b->ks, b->stride, b->h, b->h, b->c, b->k,
             b->count);
    printf("%-34s %9.3f %9.3f %9.3f   %.0f/%.0f/%.0f  (search %.1f s)\n", name, tf, td, tw, fl / tf / 1e9,
           fl / td / 1e9, fl / tw / 1e9, prep);
    conv_total += b->count * (tf + td + tw);
    fflush(stdout);
  }
  printf("%-34s %9s %9s   %s\n", "bn (uses/step)", "fwd", "bwd", "GB/s fwd/bwd");
  double bn_total = 0;
  size_t es = tu_size(dt);
  for (size_t i = 0; i < ARRAY_LEN(bench_bns); i++) {
    const bench_bn *b = &bench_bns[i];
    int m = nb * b->h * b->h;
    const void *r = b->resid ? Cb : NULL;
    double tf, tb;
    BENCH(tf, G->bn_fwd_train(G, m, b->c, B, A, r, 1, gam, bet, rm, rv, sm, si, 0.1f, 1e-5f));
    BENCH(tb, G->bn_bwd(G, m, b->c, D, b->resid ? E : NULL, dg, db, Cb, B, A, gam, sm, si, 1, 0, 0));
    double n = (double)m * b->c * es;
    double bf = n * (3 + b->resid), bb = n * (7 + b->resid); /* x twice, [r], y | dy,y,x twice, dx, [dr] */
    char name[64];
    snprintf(name, sizeof name, "%3dx%-3d c%-4d%s x%d", b->h, b->h, b->c, b->resid ? " +r" : "   ", b->count);
    printf("%-34s %9.3f %9.3f   %.0f/%.0f\n", name, tf, tb, bf / tf / 1e6, bb / tb / 1e6);
    bn_total += b->count * (tf + tb);
    fflush(stdout);
  }
  double tmf, tmb, taf, tab, tff, tfb, tx, ts;
  BENCH(tmf, G->maxpool_fwd(G, nb, 112, 112, 64, 56, 56, 3, 2, 1, B, A));
  BENCH(tmb, G->maxpool_bwd(G, nb, 112, 112, 64, 56, 56, 3, 2, 1, D, Cb, A, 0));
  BENCH(taf, G->avgpool_fwd(G, nb, 49, 2048, B, A));
  BENCH(tab, G->avgpool_bwd(G, nb, 49, 2048, D, Cb, 0));
  float *logits = bench_buf(DTYPE_F32, (size_t)nb * 1000), *dlog = bench_buf(DTYPE_F32, (size_t)nb * 1000);
  float *loss = bench_buf(DTYPE_F32, (size_t)nb);
  int32_t *lab = tu_alloc(G, (size_t)nb * 4);
  G->zero(G, lab, (size_t)nb * 4);
  BENCH(tff, G->fc_fwd(G, nb, 2048, 1000, logits, A, W, W));
  BENCH(tfb, G->fc_bwd(G, nb, 2048, 1000, D, dW, db, dlog, A, W, 0));
  BENCH(tx, G->xent(G, nb, 1000, loss, dlog, logits, lab, 0.1f, 1.0f / nb));
  size_t np = 25557032; /* resnet50 parameters */
  float *pw = bench_buf(DTYPE_F32, np), *pb = bench_buf(DTYPE_F32, np), *pg = bench_buf(DTYPE_F32, np);
  void *pwk = dt == DTYPE_F32 ? NULL : bench_buf(dt, np);
  BENCH(ts, G->sgd_step(G, pw, pb, pg, pwk, np, np - 60000, 1e-3f, 0.9f, 5e-5f, 0.0f, 1, 1.0f));
  printf("maxpool fwd %.3f bwd %.3f | avgpool fwd %.3f bwd %.3f | fc fwd %.3f bwd %.3f | xent %.3f | sgd %.3f\n",
         tmf, tmb, taf, tab, tff, tfb, tx, ts);
  double other = tmf + tmb + taf + tab + tff + tfb + tx + ts;
  double total = conv_total + bn_total + other;
  printf("per step (sum over ResNet-50's ops): conv %.2f ms, bn %.2f ms, other %.2f ms, total %.2f ms = %.0f img/s\n",
         conv_total, bn_total, other, total, nb * 1e3 / total);
  tu_release();
  G->destroy(G);
  return 0;
}

#endif
