// kernels/cpu/gemm.cpp: blocked, packed, OpenMP-parallel GEMM, C = alpha*op(A)*op(B) + beta*C.
//
// Blocking, from the outside in:
//   jc: N in blocks of kNC columns.
//   pc: K in blocks of at most kKC, balanced (K = 576 runs as 2 x 288, not 320 + 256).
//       For each (jc, pc) both operands are packed once, the threads sharing the work:
//         B[kc x nc] -> NR-wide row-major micro-panels (alpha folded in, zero-padded columns),
//         A[M  x kc] -> MR-tall column-major micro-panels (zero-padded rows).
//       Packing walks each source row contiguously whichever way ta/tb say it is stored.
//   tasks: the packed M x nc block is cut into (row block of <= kMC rows) x (column chunk) tasks,
//       their count a multiple of the thread count so that the cores finish together.
//   inside a task: for each B micro-panel (kc x NR, <= 20 KB, stays in L1) sweep the task's A
//       rows (<= kMC x kc, <= 184 KB float, stays in L2) MR at a time with the micro-kernel.
// Called from inside a parallel region (conv2d's tasks), the whole product runs on that thread.
// Micro-kernel: an MR x NR tile of C held in registers, NR = two 256-bit vectors (6 x 16 float,
// 6 x 8 double: 12 accumulators + 2 B vectors + 1 broadcast A = 15 of 16 ymm registers), updated
// by kc rank-1 FMAs. The AVX2+FMA version is compiled with a function target attribute (the build
// itself stays portable) and picked at run time when the CPU has both; the portable loop version
// is the fallback (forced with CAF_GEMM_PORTABLE=1). Edge tiles are computed into a local tile
// and merged, so C is never touched outside M x N and, with beta = 0, never read.
#include "kernels/cpu/gemm.h"

#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CAF_GEMM_X86 1
#define CAF_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace caf::cpu {

namespace {

template <class T>
constexpr int64_t kMR = 6;  // rows of the register tile
template <class T>
constexpr int64_t kNR = 64 / sizeof(T);  // columns: two 256-bit vectors
constexpr int64_t kKC = 320;             // max depth of a packed block
constexpr int64_t kMC = 144;             // max rows of A per task
constexpr int64_t kNC = 4096;            // columns of B per packed block (<= 5 MB float, in L3)
constexpr int64_t kChunkPanels = 16;     // B micro-panels per task, before splitting for threads

int64_t ceil_div(int64_t a, int64_t b) {
  return (a + b - 1) / b;
}

// How a micro-kernel writes its tile: overwrite (beta = 0, first K block) or C = beta*C + tile.
struct Store {
  bool overwrite;
  double beta;
};

// The portable micro-kernel: plain loops the compiler vectorises for the baseline ISA. One row of
// the tile at a time, so its NR accumulators stay in registers (the B panel stays in L1).
template <class T>
void kernel_portable(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, Store st) {
  constexpr int64_t MR = kMR<T>, NR = kNR<T>;
  const T beta = T(st.beta);
  for (int64_t i = 0; i < MR; ++i) {
    T acc[NR] = {};
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t j = 0; j < NR; ++j) acc[j] += Ap[p * MR + i] * Bp[p * NR + j];
    for (int64_t j = 0; j < NR; ++j) {
      T& c = C[i * ldc + j];
      c = st.overwrite ? acc[j] : beta * c + acc[j];
    }
  }
}

#ifdef CAF_GEMM_X86
// Overloads that let one AVX2 kernel template serve float (8 lanes) and double (4 lanes).
CAF_AVX2 inline __m256 vload(const float* p) {
  return _mm256_loadu_ps(p);
}
CAF_AVX2 inline __m256d vload(const double* p) {
  return _mm256_loadu_pd(p);
}
CAF_AVX2 inline __m256 vbroadcast(const float* p) {
  return _mm256_broadcast_ss(p);
}
CAF_AVX2 inline __m256d vbroadcast(const double* p) {
  return _mm256_broadcast_sd(p);
}
CAF_AVX2 inline void vstore(float* p, __m256 v) {
  _mm256_storeu_ps(p, v);
}
CAF_AVX2 inline void vstore(double* p, __m256d v) {
  _mm256_storeu_pd(p, v);
}
CAF_AVX2 inline __m256 vfma(__m256 a, __m256 b, __m256 c) {
  return _mm256_fmadd_ps(a, b, c);
}
CAF_AVX2 inline __m256d vfma(__m256d a, __m256d b, __m256d c) {
  return _mm256_fmadd_pd(a, b, c);
}

// Writes one accumulated row (two vectors) back: overwrite, or C = beta*C + acc.
template <class T, class V>
CAF_AVX2 inline void store_row(T* c, V lo, V hi, V beta, bool overwrite) {
  constexpr int64_t L = 32 / sizeof(T);
  if (!overwrite) {
    lo = vfma(beta, vload(c), lo);
    hi = vfma(beta, vload(c + L), hi);
  }
  vstore(c, lo);
  vstore(c + L, hi);
}

// The AVX2+FMA micro-kernel: 6 rows x 2 vectors of accumulators, one rank-1 update per p. The
// accumulators are separate locals (not an array) so that they stay in registers.
template <class T>
CAF_AVX2 void kernel_avx2(int64_t kc, const T* Ap, const T* Bp, T* C, int64_t ldc, Store st) {
  constexpr int64_t MR = kMR<T>, L = 32 / sizeof(T);  // L lanes per vector, NR = 2 * L
  static_assert(MR == 6, "the register tile below is written out for 6 rows");
  using V = decltype(vload(Ap));
  V c00{}, c01{}, c10{}, c11{}, c20{}, c21{}, c30{}, c31{}, c40{}, c41{}, c50{}, c51{};
  for (int64_t i = 0; i < MR; ++i)  // start fetching the C tile; it is needed only at the end
    _mm_prefetch(reinterpret_cast<const char*>(C + i * ldc), _MM_HINT_T0);
  for (int64_t p = 0; p < kc; ++p, Ap += MR, Bp += 2 * L) {
    const V b0 = vload(Bp), b1 = vload(Bp + L);
    V a = vbroadcast(Ap + 0);
    c00 = vfma(a, b0, c00), c01 = vfma(a, b1, c01);
    a = vbroadcast(Ap + 1);
    c10 = vfma(a, b0, c10), c11 = vfma(a, b1, c11);
    a = vbroadcast(Ap + 2);
    c20 = vfma(a, b0, c20), c21 = vfma(a, b1, c21);
    a = vbroadcast(Ap + 3);
    c30 = vfma(a, b0, c30), c31 = vfma(a, b1, c31);
    a = vbroadcast(Ap + 4);
    c40 = vfma(a, b0, c40), c41 = vfma(a, b1, c41);
    a = vbroadcast(Ap + 5);
    c50 = vfma(a, b0, c50), c51 = vfma(a, b1, c51);
  }
  const T beta_t = T(st.beta);
  const V beta = vbroadcast(&beta_t);
  store_row(C + 0 * ldc, c00, c01, beta, st.overwrite);
  store_row(C + 1 * ldc, c10, c11, beta, st.overwrite);
  store_row(C + 2 * ldc, c20, c21, beta, st.overwrite);
  store_row(C + 3 * ldc, c30, c31, beta, st.overwrite);
  store_row(C + 4 * ldc, c40, c41, beta, st.overwrite);
  store_row(C + 5 * ldc, c50, c51, beta, st.overwrite);
}
#endif

template <class T>
using Kernel = void (*)(int64_t, const T*, const T*, T*, int64_t, Store);

// AVX2+FMA when this CPU has it (checked once), else the portable loops.
template <class T>
Kernel<T> pick_kernel() {
#ifdef CAF_GEMM_X86
  const char* force = std::getenv("CAF_GEMM_PORTABLE");
  if (!(force && *force && *force != '0') && __builtin_cpu_supports("avx2") &&
      __builtin_cpu_supports("fma"))
    return kernel_avx2<T>;
#endif
  return kernel_portable<T>;
}

// Distance between packed B micro-panels: kc rows of NR plus one cache line, so that the NR-wide
// strips of one source row, dealt to consecutive panels, do not all land in the same L1 set.
template <class T>
int64_t b_panel_stride(int64_t kc) {
  return (kc + 1) * kNR<T>;
}

// Packs op(B)[pc:pc+kc, j0:j1] (times alpha) into consecutive kc x NR micro-panels at dst, the
// last one zero-padded to NR columns.
template <class T>
void pack_b(bool tb, const T* B, int64_t ldb, int64_t pc, int64_t kc, int64_t j0, int64_t j1,
            T alpha, T* dst) {
  constexpr int64_t NR = kNR<T>;
  const int64_t panel = b_panel_stride<T>(kc);
  if (!tb) {  // rows of B are contiguous: walk each row once, dealing NR-wide strips to panels
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = B + (pc + p) * ldb;
      T* d = dst + p * NR;
      int64_t j = j0;
      for (; j + NR <= j1; j += NR, d += panel)
        for (int64_t jj = 0; jj < NR; ++jj) d[jj] = alpha * src[j + jj];
      if (j == j1) continue;
      for (int64_t jj = 0; jj < NR; ++jj) d[jj] = j + jj < j1 ? alpha * src[j + jj] : T(0);
    }
    return;
  }
  // op(B)(p, j) = B[j, p]: read each source row contiguously, write one panel column.
  for (int64_t j = j0; j < j1; j += NR, dst += panel) {
    const int64_t nr = std::min(NR, j1 - j);
    for (int64_t jj = 0; jj < NR; ++jj) {
      const T* src = B + (j + jj) * ldb + pc;
      for (int64_t p = 0; p < kc; ++p) dst[p * NR + jj] = jj < nr ? alpha * src[p] : T(0);
    }
  }
}

// Packs op(A)[i0:i1, pc:pc+kc] into consecutive MR x kc column-major micro-panels at dst, the
// last one zero-padded to MR rows.
template <class T>
void pack_a(bool ta, const T* A, int64_t lda, int64_t i0, int64_t i1, int64_t pc, int64_t kc,
            T* dst) {
  constexpr int64_t MR = kMR<T>;
  const int64_t panel = kc * MR;
  if (ta) {  // op(A)(i, p) = A[p, i]: walk each row of A once, dealing MR-long pieces to panels
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = A + (pc + p) * lda;
      T* d = dst + p * MR;
      int64_t i = i0;
      for (; i + MR <= i1; i += MR, d += panel)
        for (int64_t ii = 0; ii < MR; ++ii) d[ii] = src[i + ii];
      if (i == i1) continue;
      for (int64_t ii = 0; ii < MR; ++ii) d[ii] = i + ii < i1 ? src[i + ii] : T(0);
    }
    return;
  }
  // Rows of A are contiguous in p: per panel, MR read streams and one contiguous write.
  for (int64_t i = i0; i < i1; i += MR, dst += panel) {
    const int64_t mr = std::min(MR, i1 - i);
    for (int64_t p = 0; p < kc; ++p)
      for (int64_t ii = 0; ii < MR; ++ii)
        dst[p * MR + ii] = ii < mr ? A[(i + ii) * lda + pc + p] : T(0);
  }
}

// Packing buffers of the calling thread, grown on demand and kept: no page faults per call.
template <class T>
T* scratch(std::vector<T>& buf, int64_t n) {
  if (int64_t(buf.size()) < n) buf.resize(size_t(n));
  return buf.data();
}

}  // namespace

template <class T>
void gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda,
          const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  constexpr int64_t MR = kMR<T>, NR = kNR<T>;
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == T(0) ? T(0) : beta * C[i * ldc + j];
    return;
  }
  static const Kernel<T> kernel = pick_kernel<T>();
  thread_local std::vector<T> abuf, bbuf;
  const int64_t nth = omp_get_max_threads();
  const int64_t kblocks = ceil_div(K, kKC), kcmax = ceil_div(K, kblocks);
  const int64_t mpanels = ceil_div(M, MR);
  // Row blocks: balanced counts of MR-row micro-panels, each block <= kMC rows.
  const int64_t mblocks = ceil_div(mpanels * MR, kMC);
  T* Ap = scratch(abuf, mpanels * MR * kcmax);
  T* Bp = scratch(bbuf, ceil_div(std::min(N, kNC), NR) * b_panel_stride<T>(kcmax));

  for (int64_t jc = 0; jc < N; jc += kNC) {
    const int64_t nc = std::min(kNC, N - jc), npanels = ceil_div(nc, NR);
    // Column chunks: enough that the task count is a multiple of the thread count.
    int64_t nchunks = ceil_div(npanels, kChunkPanels);
    while ((mblocks * nchunks) % nth != 0 && nchunks < npanels) ++nchunks;
    for (int64_t pc = 0; pc < K; pc += kcmax) {
      const int64_t kc = std::min(kcmax, K - pc);
      const Store st{pc == 0 && beta == T(0), pc == 0 ? double(beta) : 1.0};
#pragma omp parallel if (!omp_in_parallel())
      {
        // Each thread packs a contiguous run of B panels and one of A panels.
        const int64_t t = omp_get_thread_num(), nt = omp_get_num_threads();
        const int64_t qa = npanels * t / nt, qb = npanels * (t + 1) / nt;
        pack_b(tb, B, ldb, pc, kc, jc + qa * NR, std::min(jc + nc, jc + qb * NR), alpha,
               Bp + qa * b_panel_stride<T>(kc));
        const int64_t ra = mpanels * t / nt, rb = mpanels * (t + 1) / nt;
        pack_a(ta, A, lda, ra * MR, std::min(M, rb * MR), pc, kc, Ap + ra * kc * MR);
#pragma omp barrier
        // Each task sweeps its B panels x its A rows.
#pragma omp for collapse(2) schedule(static)
        for (int64_t ib = 0; ib < mblocks; ++ib)
          for (int64_t jb = 0; jb < nchunks; ++jb) {
            const int64_t r0 = ib * mpanels / mblocks, r1 = (ib + 1) * mpanels / mblocks;
            const int64_t q0 = jb * npanels / nchunks, q1 = (jb + 1) * npanels / nchunks;
            for (int64_t q = q0; q < q1; ++q) {
              const int64_t j = jc + q * NR, nr = std::min(NR, N - j);
              for (int64_t r = r0; r < r1; ++r) {
                const int64_t i = r * MR, mr = std::min(MR, M - i);
                const T* a = Ap + r * kc * MR;
                const T* b = Bp + q * b_panel_stride<T>(kc);
                if (mr == MR && nr == NR) {
                  kernel(kc, a, b, C + i * ldc + j, ldc, st);
                  continue;
                }
                // Edge tile: compute into a local tile, then merge only the valid part.
                T tile[MR * NR];
                kernel(kc, a, b, tile, NR, Store{true, 0.0});
                for (int64_t ii = 0; ii < mr; ++ii)
                  for (int64_t jj = 0; jj < nr; ++jj) {
                    T& c = C[(i + ii) * ldc + j + jj];
                    c = st.overwrite ? tile[ii * NR + jj] : T(st.beta) * c + tile[ii * NR + jj];
                  }
              }
            }
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
