// kernels/cpu/conv2d.cpp: convolution (stride 1, "same" zero padding, odd k) on the packed GEMM.
//
// Forward: y[n] = W (K x Ckk) * col[n] (Ckk x HW), col = im2col of x[n], Ckk = C*k*k. The col
// matrix is never built whole: OpenMP tasks are (image, band of R rows) pairs, R chosen so that a
// band of col (Ckk x R*W) is about kColBytes; each task fills its band and runs a one-thread GEMM
// into those columns of y. W goes in transposed (ta = true) so the GEMM packs it by plain copies.
//
// Backward data: the transposed convolution is itself a "same" convolution of gy, with the weights
// flipped in space and in/out channels swapped, so it reuses the forward path (accumulating into
// gx; no col2im).
//
// Backward filter: with x and gy copied to zero-padded pixel-major layouts (one row of channels
// per padded pixel), tap (ky, kx) of gw is gy^T * (x shifted by the tap's offset): a plain GEMM
// whose depth is every padded pixel of the batch (the zero border of gy cancels the rows that wrap
// into a neighbouring row or image). The k taps of one kernel row are neighbouring pixels, so one
// GEMM per ky covers them (B rows of k*C elements, overlapping). Threads take fixed (static)
// pieces of the depth and their partial gw are summed at the end in thread order, so the result
// is the same on every run with the same thread count.
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "kernels/cast.h"
#include "kernels/conv2d.h"
#include "kernels/cpu/gemm.h"

namespace caf::cpu {

namespace {

constexpr int64_t kColBytes = 1024 * 1024;  // target size of one task's im2col chunk
constexpr int64_t kPixelsPerTask = 1024;    // GEMM depth of one backward-filter task
constexpr int64_t kPaddedBytes = 16 << 20;  // backward filter: padded copies per image group

// Scratch of the calling thread, grown on demand and kept (no page faults per call). Each slot
// is a separate buffer, so one call can hold several.
template <class T>
T* scratch(int slot, int64_t n) {
  thread_local std::vector<T> bufs[3];
  if (int64_t(bufs[slot].size()) < n) bufs[slot].resize(size_t(n));
  return bufs[slot].data();
}

// col (Ckk x (h1 - h0) * W) = the columns of im2col(x) for image rows h0..h1 of one C x H x W
// image. Each col row is one shifted run of x: copied in one piece, then the pixels whose source
// column wrapped into a neighbouring image row (or lies outside the plane) are zeroed.
template <class T>
void im2col_rows(const T* x, int64_t C, int64_t H, int64_t W, int64_t k, int64_t h0, int64_t h1,
                 T* col) {
  const int64_t half = k / 2, n = (h1 - h0) * W;
  for (int64_t c = 0; c < C; ++c)
    for (int64_t ky = 0; ky < k; ++ky)
      for (int64_t kx = 0; kx < k; ++kx) {
        T* out = col + ((c * k + ky) * k + kx) * n;
        const T* plane = x + c * H * W;
        const int64_t dx = kx - half;
        // Output rows [v0, v1) have a source row; the rest are zero.
        const int64_t v0 = std::clamp(half - ky, h0, h1), v1 = std::clamp(H + half - ky, v0, h1);
        const int64_t o0 = (v0 - h0) * W, len = (v1 - v0) * W, s0 = (v0 + ky - half) * W + dx;
        // out[o0 + i] = plane[s0 + i], for the i in [a, b) that fall inside the plane.
        const int64_t a = std::min(len, std::max<int64_t>(0, -s0));
        const int64_t b = std::max(a, std::min(len, H * W - s0));
        std::fill(out, out + o0 + a, T(0));
        std::copy_n(plane + s0 + a, b - a, out + o0 + a);
        std::fill(out + o0 + b, out + n, T(0));
        if (dx == 0) continue;
        for (int64_t h = v0; h < v1; ++h) {
          T* r = out + (h - h0) * W;
          if (dx > 0)
            std::fill(r + std::max<int64_t>(0, W - dx), r + W, T(0));
          else
            std::fill(r, r + std::min(W, -dx), T(0));
        }
      }
}

// dst[n] = wt^T * im2col(src[n]) (+ bias), or += when accumulate. src: N x Cin x H x W,
// wt: (Cin*k*k) x Cout (the weight matrix transposed), dst: N x Cout x H x W.
template <class T>
void conv_im2col(const T* src, int64_t N, int64_t Cin, int64_t H, int64_t W, int64_t k, const T* wt,
                 int64_t Cout, const T* bias, bool accumulate, T* dst) {
  const int64_t HW = H * W, Ckk = Cin * k * k, nth = omp_get_max_threads();
  // Chunk: R whole image rows, as many as keep the chunk near kColBytes, few enough that every
  // thread gets about two tasks.
  int64_t R = std::max<int64_t>(1, kColBytes / int64_t(sizeof(T)) / Ckk / W);
  R = std::min({R, H, std::max<int64_t>(1, N * H / (2 * nth))});
  const int64_t chunks = (H + R - 1) / R;
#pragma omp parallel for schedule(dynamic)
  for (int64_t task = 0; task < N * chunks; ++task) {
    const int64_t n = task / chunks, h0 = task % chunks * R, h1 = std::min(H, h0 + R);
    const int64_t cols = (h1 - h0) * W;
    T* col = scratch<T>(0, Ckk * R * W);
    im2col_rows(src + n * Cin * HW, Cin, H, W, k, h0, h1, col);
    T* out = dst + n * Cout * HW + h0 * W;
    if (bias)
      for (int64_t o = 0; o < Cout; ++o) std::fill(out + o * HW, out + o * HW + cols, bias[o]);
    const T beta = bias || accumulate ? T(1) : T(0);
    gemm<T>(true, false, Cout, cols, Ckk, T(1), wt, Cout, col, cols, beta, out, HW);
  }
}

// Four T as one vector (GCC/Clang vector extension: an SSE register for float on x86-64).
template <class T>
struct Lanes4;
template <>
struct Lanes4<float> {
  typedef float V __attribute__((vector_size(16)));
};
template <>
struct Lanes4<double> {
  typedef double V __attribute__((vector_size(32)));
};

// d[j * ld + i] = s[i * ls + j] for a 4 x 4 block: four row loads, four gathered column stores.
template <class T>
void transpose4x4(const T* s, int64_t ls, T* d, int64_t ld) {
  using V = typename Lanes4<T>::V;
  V r[4];
  for (int i = 0; i < 4; ++i) std::memcpy(&r[i], s + i * ls, sizeof(V));
  for (int j = 0; j < 4; ++j) {
    const V col = {r[0][j], r[1][j], r[2][j], r[3][j]};
    std::memcpy(d + j * ld, &col, sizeof(V));
  }
}

// d[j * ld + i] = s[i * ls + j] for i < rows, j < cols: 4 x 4 blocks, then the ragged edges.
template <class T>
void transpose(const T* s, int64_t ls, T* d, int64_t ld, int64_t rows, int64_t cols) {
  const int64_t r4 = rows / 4 * 4, c4 = cols / 4 * 4;
  for (int64_t i = 0; i < r4; i += 4)
    for (int64_t j = 0; j < c4; j += 4) transpose4x4(s + i * ls + j, ls, d + j * ld + i, ld);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = i < r4 ? c4 : 0; j < cols; ++j) d[j * ld + i] = s[i * ls + j];
}

// dst = src (N x C x H x W) in pixel-major order on a zero-padded grid: pixel (n, h, w) is row
// (n * Hp + h + half) * Wp + w + half of dst, holding its C channels contiguously.
template <class T>
void to_padded_pixel_major(const T* src, int64_t N, int64_t C, int64_t H, int64_t W, int64_t half,
                           T* dst) {
  const int64_t Hp = H + 2 * half, Wp = W + 2 * half;
#pragma omp parallel for schedule(static)
  for (int64_t row = 0; row < N * Hp; ++row) {
    const int64_t n = row / Hp, h = row % Hp - half;
    T* d = dst + row * Wp * C;
    if (h < 0 || h >= H) {
      std::fill(d, d + Wp * C, T(0));
      continue;
    }
    std::fill(d, d + half * C, T(0));
    std::fill(d + (W + half) * C, d + Wp * C, T(0));
    // The C x W slice of image row h (channel stride H*W) becomes W pixels of C channels.
    transpose(src + (n * C * H + h) * W, H * W, d + half * C, C, C, W);
  }
}

}  // namespace

template <class T>
void conv2d_forward(const T* x, const T* w, const T* b, T* y, const Conv2dShape& s) {
  const int64_t Ckk = s.x.c * s.k * s.k, K = s.k_out;
  // wt (Ckk x K) = w^T
  std::vector<T> wt(Ckk * K);
  for (int64_t o = 0; o < K; ++o)
    for (int64_t r = 0; r < Ckk; ++r) wt[r * K + o] = w[o * Ckk + r];
  conv_im2col(x, s.x.n, s.x.c, s.x.h, s.x.w, s.k, wt.data(), K, b, false, y);
}

template <class T>
void conv2d_backward_data(const T* w, const T* gy, T* gx, const Conv2dShape& s, bool accumulate) {
  const int64_t C = s.x.c, K = s.k_out, kk = s.k * s.k;
  // gx = "same" conv of gy with wf[c][o][t] = w[o][c][kk-1-t]; wft = wf^T is (K*kk) x C.
  std::vector<T> wft(K * kk * C);
  for (int64_t o = 0; o < K; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t t = 0; t < kk; ++t) wft[(o * kk + t) * C + c] = w[(o * C + c) * kk + kk - 1 - t];
  conv_im2col(gy, s.x.n, K, s.x.h, s.x.w, s.k, wft.data(), C, static_cast<const T*>(nullptr), accumulate,
              gx);
}

template <class T>
void conv2d_backward_filter(const T* x, const T* gy, T* gw, const Conv2dShape& s) {
  const int64_t N = s.x.n, C = s.x.c, H = s.x.h, W = s.x.w, K = s.k_out, k = s.k, half = k / 2;
  const int64_t Hp = H + 2 * half, Wp = W + 2 * half, kk = k * k, nth = omp_get_max_threads();
  // Images go through in groups whose padded copies take about kPaddedBytes.
  const int64_t G =
      std::clamp<int64_t>(kPaddedBytes / (Hp * Wp * (C + K) * int64_t(sizeof(T))), 1, N);
  T* xp = scratch<T>(0, G * Hp * Wp * C);
  T* gp = scratch<T>(1, G * Hp * Wp * K);
  T* part = scratch<T>(2, nth * kk * K * C);  // per thread: k blocks of K x (k*C)
  std::fill(part, part + nth * kk * K * C, T(0));
  for (int64_t n0 = 0; n0 < N; n0 += G) {
    const int64_t P = std::min(G, N - n0) * Hp * Wp;
    to_padded_pixel_major(x + n0 * C * H * W, P / (Hp * Wp), C, H, W, half, xp);
    to_padded_pixel_major(gy + n0 * K * H * W, P / (Hp * Wp), K, H, W, half, gp);
    // Padded pixels q in [q0, q1) cover every interior pixel; q + any tap offset stays in range.
    // They are cut into pieces of about kPixelsPerTask, a multiple of the thread count of them.
    const int64_t q0 = half * Wp + half, q1 = P - q0;
    const int64_t pieces = ((q1 - q0) / kPixelsPerTask / nth + 1) * nth;
    // Static schedule: which thread's partial sum a piece lands in must not depend on timing,
    // or the gradient would differ from run to run in its last bits.
#pragma omp parallel for schedule(static) num_threads(int(nth))
    for (int64_t piece = 0; piece < pieces; ++piece) {
      T* g = part + omp_get_thread_num() * kk * K * C;
      const int64_t a = q0 + (q1 - q0) * piece / pieces, b = q0 + (q1 - q0) * (piece + 1) / pieces;
      // One GEMM per kernel row ky: the k taps of that row are k consecutive pixels of xp, so
      // rows of length k*C starting every C elements form the B matrix (kx, c) directly.
      for (int64_t ky = 0; ky < k; ++ky) {
        const int64_t shift = (ky - half) * Wp - half;
        // g[ky] (K x k*C) += gp[a:b]^T * xp[a+shift : b+shift] (overlapping rows, ldb = C)
        gemm<T>(true, false, K, k * C, b - a, T(1), gp + a * K, K, xp + (a + shift) * C, C, T(1),
                g + ky * K * k * C, k * C);
      }
    }
  }
  // gw[o][c][ky][kx] += sum over threads of part[thread][ky][o][kx * C + c].
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < K; ++o)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t tap = 0; tap < kk; ++tap) {
        const int64_t ky = tap / k, kx = tap % k;
        T sum = T(0);
        for (int64_t u = 0; u < nth; ++u) sum += part[((u * k + ky) * K + o) * k * C + kx * C + c];
        gw[(o * C + c) * kk + tap] += sum;
      }
}

template <class T>
void conv2d_backward_bias(const T* gy, T* gb, const Conv2dShape& s) {
  const int64_t HW = s.x.hw(), K = s.k_out;
  if (s.nhwc) {  // gy channels-last: rows of K channels, summed in double per channel
    std::vector<acc_t<T>> acc(size_t(K), acc_t<T>(0));
    for (int64_t r = 0; r < s.x.n * HW; ++r)
      for (int64_t o = 0; o < K; ++o) acc[size_t(o)] += gy[r * K + o];
    for (int64_t o = 0; o < K; ++o) gb[o] += T(acc[size_t(o)]);
    return;
  }
#pragma omp parallel for schedule(static)
  for (int64_t o = 0; o < K; ++o) {
    // Eight independent partial sums (in double for float data), so the loop vectorises.
    acc_t<T> lane[8] = {};
    for (int64_t n = 0; n < s.x.n; ++n) {
      const T* g = gy + (n * K + o) * HW;
      int64_t i = 0;
      for (; i + 8 <= HW; i += 8)
        for (int64_t l = 0; l < 8; ++l) lane[l] += g[i + l];
      for (; i < HW; ++i) lane[i % 8] += g[i];
    }
    acc_t<T> acc = 0;
    for (acc_t<T> v : lane) acc += v;
    gb[o] += T(acc);
  }
}

#define CAF_INSTANTIATE(T)                                                               \
  template void conv2d_forward<T>(const T*, const T*, const T*, T*, const Conv2dShape&); \
  template void conv2d_backward_data<T>(const T*, const T*, T*, const Conv2dShape&, bool); \
  template void conv2d_backward_filter<T>(const T*, const T*, T*, const Conv2dShape&);   \
  template void conv2d_backward_bias<T>(const T*, T*, const Conv2dShape&);
CAF_INSTANTIATE(float)
CAF_INSTANTIATE(double)

// bf16: widen, convolve in fp32, round (kernels/conv2d.h). Channels-last operands (s.nhwc) are
// permuted to planar order while widening and back while rounding: the same values throughout.
namespace {
// A tensor of the convolution as [b][c][p] (x, y: N, C, H*W; w: K, C, k*k).
struct Bcp {
  int64_t b, c, p;
  int64_t numel() const { return b * c * p; }
};
Bcp bcp_x(const Conv2dShape& s) { return {s.x.n, s.x.c, s.x.hw()}; }
Bcp bcp_y(const Conv2dShape& s) { return {s.x.n, s.k_out, s.x.hw()}; }
Bcp bcp_w(const Conv2dShape& s) { return {s.k_out, s.x.c, s.k * s.k}; }

std::vector<float> widen(const uint16_t* x, Bcp t, bool nhwc) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  const BcpLayout l{t.c, t.p};
  for (int64_t b = 0; b < t.b; ++b)
    for (int64_t c = 0; c < t.c; ++c)
      for (int64_t p = 0; p < t.p; ++p)
        v[size_t(l.planar(b, c, p))] = bf16_to_f32(x[nhwc ? l.last(b, c, p) : l.planar(b, c, p)]);
  return v;
}
void narrow(const std::vector<float>& v, Bcp t, bool nhwc, uint16_t* y) {
  const BcpLayout l{t.c, t.p};
  for (int64_t b = 0; b < t.b; ++b)
    for (int64_t c = 0; c < t.c; ++c)
      for (int64_t p = 0; p < t.p; ++p)
        y[nhwc ? l.last(b, c, p) : l.planar(b, c, p)] = f32_to_bf16(v[size_t(l.planar(b, c, p))]);
}
}  // namespace

void conv2d_forward_bf16(const uint16_t* x, const uint16_t* w, uint16_t* y, const Conv2dShape& s) {
  std::vector<float> xf = widen(x, bcp_x(s), s.nhwc), wf = widen(w, bcp_w(s), s.nhwc);
  std::vector<float> yf(static_cast<size_t>(s.y().numel()));
  conv2d_forward<float>(xf.data(), wf.data(), nullptr, yf.data(), s);
  narrow(yf, bcp_y(s), s.nhwc, y);
}
void conv2d_backward_data_bf16(const uint16_t* w, const uint16_t* gy, uint16_t* gx, const Conv2dShape& s) {
  std::vector<float> wf = widen(w, bcp_w(s), s.nhwc), gyf = widen(gy, bcp_y(s), s.nhwc);
  std::vector<float> gxf(static_cast<size_t>(s.x.numel()), 0.f);
  conv2d_backward_data<float>(wf.data(), gyf.data(), gxf.data(), s);
  narrow(gxf, bcp_x(s), s.nhwc, gx);
}
void conv2d_backward_filter_bf16(const uint16_t* x, const uint16_t* gy, uint16_t* gw, const Conv2dShape& s) {
  std::vector<float> xf = widen(x, bcp_x(s), s.nhwc), gyf = widen(gy, bcp_y(s), s.nhwc);
  std::vector<float> gwf(static_cast<size_t>(s.weight_numel()), 0.f);
  conv2d_backward_filter<float>(xf.data(), gyf.data(), gwf.data(), s);
  narrow(gwf, bcp_w(s), s.nhwc, gw);
}
void conv2d_backward_bias_bf16(const uint16_t* gy, float* gb, const Conv2dShape& s) {
  std::vector<float> gyf(static_cast<size_t>(s.y().numel()));  // widened in gy's layout
  cast_from_bf16(gy, nullptr, 1, 1, gyf.data(), s.y().numel());
  conv2d_backward_bias<float>(gyf.data(), gb, s);
}

}  // namespace caf::cpu
