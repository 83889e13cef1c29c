// kernels/matmul.h: dense matrix product, row-major.
//
//   matmul_forward   C = A B,  A (M,K), B (K,N), C (M,N)   (=)
//   matmul_backward  gA += gC B^T, gB += A^T gC             (+=; gA or gB may be null)
// CPU: the blocked GEMM of kernels/cpu/gemm.h. CUDA: cuBLAS sgemm (fp32, no TF32).
#pragma once

#include "kernels/dispatch.h"

namespace caf {

namespace cpu {
template <class T> void matmul_forward(const T* A, const T* B, T* C, int64_t M, int64_t K, int64_t N);
template <class T>
void matmul_backward(const T* A, const T* B, const T* gC, T* gA, T* gB, int64_t M, int64_t K,
                     int64_t N);
}  // namespace cpu
namespace cuda {
void matmul_forward(const float* A, const float* B, float* C, int64_t M, int64_t K, int64_t N);
void matmul_backward(const float* A, const float* B, const float* gC, float* gA, float* gB,
                     int64_t M, int64_t K, int64_t N);
}  // namespace cuda

template <class T>
void matmul_forward(Device d, const T* A, const T* B, T* C, int64_t M, int64_t K, int64_t N) {
  CAF_DISPATCH(T, d, matmul_forward, A, B, C, M, K, N);
}
template <class T>
void matmul_backward(Device d, const T* A, const T* B, const T* gC, T* gA, T* gB, int64_t M,
                     int64_t K, int64_t N) {
  CAF_DISPATCH(T, d, matmul_backward, A, B, gC, gA, gB, M, K, N);
}

}  // namespace caf
