// tests/emu/fake_cublas.cpp: cuBLAS's SGEMM (tests/emu/include/cublas_v2.h) on the CPU for the
// emulated build: C = alpha * op(A) op(B) + beta * C, column-major, sums in double, beta = 0
// writing C without reading it.
#include <algorithm>

#include "cublas_v2.h"
#include "tests/emu/cuda_emu.h"

struct cublasContext {};

cublasStatus_t cublasCreate(cublasHandle_t* h) {
  if (caf_emu::refuse_while_capturing()) return CUBLAS_STATUS_NOT_INITIALIZED;
  *h = new cublasContext();
  return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream(cublasHandle_t, cudaStream_t) { return CUBLAS_STATUS_SUCCESS; }
cublasStatus_t cublasSetMathMode(cublasHandle_t, cublasMath_t) { return CUBLAS_STATUS_SUCCESS; }

cublasStatus_t cublasSgemm(cublasHandle_t, cublasOperation_t transa, cublasOperation_t transb, int m, int n, int k,
                           const float* alpha, const float* A, int lda, const float* B, int ldb, const float* beta,
                           float* C, int ldc) {
  // As cuBLAS: leading dimensions at least the rows of each stored (column-major) matrix.
  if (m < 0 || n < 0 || k < 0 || lda < std::max(1, transa == CUBLAS_OP_N ? m : k) ||
      ldb < std::max(1, transb == CUBLAS_OP_N ? k : n) || ldc < std::max(1, m))
    return CUBLAS_STATUS_INVALID_VALUE;
  const float al = *alpha, be = *beta;
  caf_emu::enqueue([=] {
    for (int j = 0; j < n; ++j)
      for (int i = 0; i < m; ++i) {
        double acc = 0;
        for (int p = 0; p < k; ++p) {
          const float a = transa == CUBLAS_OP_N ? A[i + size_t(p) * lda] : A[p + size_t(i) * lda];
          const float b = transb == CUBLAS_OP_N ? B[p + size_t(j) * ldb] : B[j + size_t(p) * ldb];
          acc += double(a) * b;
        }
        float& c = C[i + size_t(j) * ldc];
        c = be == 0.f ? float(al * acc) : float(al * acc + double(be) * c);
      }
  });
  return CUBLAS_STATUS_SUCCESS;
}
