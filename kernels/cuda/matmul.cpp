// kernels/cuda/matmul.cpp: row-major products through column-major cuBLAS by computing the
// transposed product (C^T = B^T A^T), which is the same memory.
#include "kernels/cuda/check.h"
#include "kernels/matmul.h"

namespace caf::cuda {

namespace {
const float kOne = 1.f, kZero = 0.f;
}

void matmul_forward(const float* A, const float* B, float* C, int64_t M, int64_t K, int64_t N) {
  CAF_CHECK_CUBLAS(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_N, int(N), int(M), int(K), &kOne,
                               B, int(N), A, int(K), &kZero, C, int(N)));
}

void matmul_backward(const float* A, const float* B, const float* gC, float* gA, float* gB,
                     int64_t M, int64_t K, int64_t N) {
  if (gA)  // gA^T (K x M) += B (K x N, col-major view N x K transposed) * gC^T
    CAF_CHECK_CUBLAS(cublasSgemm(cublas(), CUBLAS_OP_T, CUBLAS_OP_N, int(K), int(M), int(N), &kOne,
                                 B, int(N), gC, int(N), &kOne, gA, int(K)));
  if (gB)  // gB^T (N x K) += gC^T (N x M) * A (M x K)
    CAF_CHECK_CUBLAS(cublasSgemm(cublas(), CUBLAS_OP_N, CUBLAS_OP_T, int(N), int(K), int(M), &kOne,
                                 gC, int(N), A, int(K), &kOne, gB, int(N)));
}

}  // namespace caf::cuda
