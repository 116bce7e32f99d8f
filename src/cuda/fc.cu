/* fc.cu: the fully connected layer through cublasGemmEx. Row-major
 * matrices are handed to column-major cuBLAS as their transposes:
 *   y[n,cout] = x[n,cin] w[cout,cin]^T + b      -> y^T = op_T(w) * x^T
 *   dx[n,cin] (+)= dy[n,cout] w[cout,cin]        -> dx^T = w^T * dy^T
 *   dw[cout,cin] += dy^T x                       -> dw^T = x^T * dy
 * x and w are in the act dtype, y / dy / dw / db fp32. For bf16/fp16, dy is
 * rounded to the act dtype for the two backward GEMMs (as PyTorch autocast
 * does); every GEMM accumulates in fp32 (TF32 only when the backend was
 * created with allow_tf32 and fp32 activations). db is a plain column sum
 * in fp32. */
#include "fc.h"

static cublasComputeType_t fc_compute(backend *be) {
  return cuda_of(be)->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
}

/* y[i, j] = b[j] */
template <typename T> __global__ void fc_bias_kernel(float *__restrict__ y, const T *__restrict__ b, int n, int cout) {
  size_t total = (size_t)n * cout;
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < total; i += (size_t)gridDim.x * blockDim.x)
    y[i] = to_f(b[i % cout]);
}

/* db[j] += sum_i dy[i, j], rows added in order */
__global__ void fc_db_kernel(float *__restrict__ db, const float *__restrict__ dy, int n, int cout) {
  int j = blockIdx.x * blockDim.x + threadIdx.x;
  if (j >= cout) return;
  float s = 0.0f;
  for (int i = 0; i < n; i++) s += dy[(size_t)i * cout + j];
  db[j] += s;
}

template <typename T> __global__ void fc_cast_kernel(T *__restrict__ dst, const float *__restrict__ src, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x)
    dst[i] = from_f<T>(src[i]);
}

template <typename T> static void fc_bias_launch(backend *be, float *y, const void *b, int n, int cout) {
  size_t total = (size_t)n * cout;
  fc_bias_kernel<T><<<cuda_grid_blocks(be, total, 256), 256, 0, cuda_of(be)->stream>>>(y, (const T *)b, n, cout);
  LAUNCH_CHECK(be, "fc_bias_kernel");
}

template <typename T> static void fc_cast_launch(backend *be, void *dst, const float *src, size_t n) {
  fc_cast_kernel<T><<<cuda_grid_blocks(be, n, 256), 256, 0, cuda_of(be)->stream>>>((T *)dst, src, n);
  LAUNCH_CHECK(be, "fc_cast_kernel");
}

void cuda_fc_fwd(backend *be, int n, int cin, int cout, float *y, const void *x, const void *w, const void *b) {
  cuda_impl *ci = cuda_of(be);
  if (n <= 0 || cout <= 0) return;
  cudaDataType_t at = dtype_cuda(be->act_dtype);
  float alpha = 1.0f, beta = 0.0f;
  if (b) {
    DISPATCH_ACT(be->act_dtype, fc_bias_launch, be, y, b, n, cout);
    beta = 1.0f;
  }
  CUBLAS_CHECK(cublasGemmEx(ci->cublas, CUBLAS_OP_T, CUBLAS_OP_N, cout, n, cin, &alpha, w, at, cin, x, at, cin, &beta,
                            y, CUDA_R_32F, cout, fc_compute(be), CUBLAS_GEMM_DEFAULT));
  LIBRARY_CHECK(be, "cublasGemmEx (fc forward)");
}

void cuda_fc_bwd(backend *be, int n, int cin, int cout, void *dx, float *dw, float *db, const float *dy,
                 const void *x, const void *w, int acc_dx) {
  cuda_impl *ci = cuda_of(be);
  if (n <= 0 || cout <= 0) return;
  cudaDataType_t at = dtype_cuda(be->act_dtype);
  const void *dy_act = dy;
  if (be->act_dtype != DTYPE_F32) {
    size_t elems = (size_t)n * cout;
    void *tmp = cuda_scratch(be, &ci->fc_buf, &ci->fc_size, elems * be->act_size, "fc gradient in act dtype");
    if (!tmp) return; /* a capture that cannot grow the scratch: it fails */
    DISPATCH_ACT(be->act_dtype, fc_cast_launch, be, tmp, dy, elems);
    dy_act = tmp;
  }
  float one = 1.0f, zero = 0.0f;
  if (dx)
    CUBLAS_CHECK(cublasGemmEx(ci->cublas, CUBLAS_OP_N, CUBLAS_OP_N, cin, n, cout, &one, w, at, cin, dy_act, at, cout,
                              acc_dx ? &one : &zero, dx, at, cin, fc_compute(be), CUBLAS_GEMM_DEFAULT));
  if (dx) LIBRARY_CHECK(be, "cublasGemmEx (fc dx)");
  if (dw)
    CUBLAS_CHECK(cublasGemmEx(ci->cublas, CUBLAS_OP_N, CUBLAS_OP_T, cin, cout, n, &one, x, at, cin, dy_act, at, cout,
                              &one, dw, CUDA_R_32F, cin, fc_compute(be), CUBLAS_GEMM_DEFAULT));
  if (dw) LIBRARY_CHECK(be, "cublasGemmEx (fc dw)");
  if (db) {
    fc_db_kernel<<<(cout + 127) / 128, 128, 0, ci->stream>>>(db, dy, n, cout);
    LAUNCH_CHECK(be, "fc_db_kernel");
  }
}
