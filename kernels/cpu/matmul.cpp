#include "kernels/matmul.h"

#include "kernels/cpu/gemm.h"

namespace caf::cpu {

template <class T>
void matmul_forward(const T* A, const T* B, T* C, int64_t M, int64_t K, int64_t N) {
  gemm<T>(false, false, M, N, K, T(1), A, K, B, N, T(0), C, N);
}

template <class T>
void matmul_backward(const T* A, const T* B, const T* gC, T* gA, T* gB, int64_t M, int64_t K,
                     int64_t N) {
  if (gA) gemm<T>(false, true, M, K, N, T(1), gC, N, B, N, T(1), gA, K);
  if (gB) gemm<T>(true, false, K, N, M, T(1), A, K, gC, N, T(1), gB, N);
}

template void matmul_forward<float>(const float*, const float*, float*, int64_t, int64_t, int64_t);
template void matmul_forward<double>(const double*, const double*, double*, int64_t, int64_t,
                                     int64_t);
template void matmul_backward<float>(const float*, const float*, const float*, float*, float*,
                                     int64_t, int64_t, int64_t);
template void matmul_backward<double>(const double*, const double*, const double*, double*,
                                      double*, int64_t, int64_t, int64_t);

}  // namespace caf::cpu
