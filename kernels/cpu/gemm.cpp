// kernels/cpu/gemm.cpp: blocked, OpenMP-parallel GEMM.
//
// Key decision: pack A and B into contiguous panels once per cache block, then run a small
// register-blocked micro-kernel written with plain loops the compiler vectorises. The same
// template serves double (gradient checks) and float (everything else).
#include "kernels/cpu/gemm.h"

#include <algorithm>
#include <vector>

namespace caf::cpu {

namespace {

constexpr int64_t kMR = 6, kNR = 16;            // micro-tile of C kept in registers
constexpr int64_t kMC = 96, kNC = 1024, kKC = 256;  // cache blocks

template <class T>
inline T at(const T* X, int64_t ld, bool t, int64_t r, int64_t c) {
  return t ? X[c * ld + r] : X[r * ld + c];
}

// C[MR x NR] (+)= Ap (MR x kc, column-major panel) * Bp (kc x NR, row-major panel)
template <class T>
inline void micro_kernel(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, int64_t mr,
                         int64_t nr, bool first, T beta) {
  T acc[kMR][kNR] = {};
  for (int64_t p = 0; p < kc; ++p) {
    const T* a = Ap + p * kMR;
    const T* b = Bp + p * kNR;
    for (int64_t i = 0; i < kMR; ++i)
      for (int64_t j = 0; j < kNR; ++j) acc[i][j] += a[i] * b[j];
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      T& c = C[i * ldc + j];
      c = first ? (beta == T(0) ? acc[i][j] : beta * c + acc[i][j]) : c + acc[i][j];
    }
}

}  // namespace

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  for (int64_t jc = 0; jc < N; jc += kNC) {
    int64_t nc = std::min(kNC, N - jc);
    for (int64_t pc = 0; pc < K; pc += kKC) {
      int64_t kc = std::min(kKC, K - pc);
      bool first = pc == 0;
      // Pack B[pc:pc+kc, jc:jc+nc] into NR-wide row-major panels, alpha folded in.
      int64_t npanels = (nc + kNR - 1) / kNR;
      std::vector<T> Bp(npanels * kc * kNR);
#pragma omp parallel for schedule(static)
      for (int64_t q = 0; q < npanels; ++q)
        for (int64_t p = 0; p < kc; ++p)
          for (int64_t j = 0; j < kNR; ++j) {
            int64_t col = jc + q * kNR + j;
            Bp[(q * kc + p) * kNR + j] = col < jc + nc ? alpha * at(B, ldb, tb, pc + p, col) : T(0);
          }
      int64_t mblocks = (M + kMC - 1) / kMC;
#pragma omp parallel for schedule(dynamic)
      for (int64_t task = 0; task < mblocks * npanels; ++task) {
        int64_t ib = task / npanels, q = task % npanels;
        int64_t ic = ib * kMC, mc = std::min(kMC, M - ic);
        T Ap[kMR * kKC];
        for (int64_t ir = 0; ir < mc; ir += kMR) {
          int64_t mr = std::min(kMR, mc - ir);
          for (int64_t p = 0; p < kc; ++p)
            for (int64_t i = 0; i < kMR; ++i)
              Ap[p * kMR + i] = i < mr ? at(A, lda, ta, ic + ir + i, pc + p) : T(0);
          int64_t nr = std::min(kNR, nc - q * kNR);
          micro_kernel(kc, Ap, &Bp[q * kc * kNR], C + (ic + ir) * ldc + jc + q * kNR, ldc, mr, nr,
                       first, beta);
        }
      }
    }
  }
}

template void gemm<float>(bool, bool, int64_t, int64_t, int64_t, float, const float*, int64_t,
                          const float*, int64_t, float, float*, int64_t);
template void gemm<double>(bool, bool, int64_t, int64_t, int64_t, double, const double*, int64_t,
                           const double*, int64_t, double, double*, int64_t);

}  // namespace caf::cpu
