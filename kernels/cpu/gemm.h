// kernels/cpu/gemm.h: the CPU matrix product behind conv2d and matmul.
//
// C = alpha * op(A) * op(B) + beta * C, row-major, op = transpose when ta/tb. M x N output,
// K the shared extent; lda/ldb/ldc are row strides of the matrices as stored. beta = 0 never reads
// C (so C may hold garbage or NaN). Parallel over output tiles with OpenMP.
#pragma once

#include <cstdint>

namespace caf::cpu {

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc);

}  // namespace caf::cpu
