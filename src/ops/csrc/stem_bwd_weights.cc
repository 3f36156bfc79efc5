// Backward-weights of a few-input-channel convolution (the ResNet stem: 3 -> 64, 7x7x7, stride 1x2x2).
//
// oneDNN has no JIT backward-weights kernel for it and runs im2col + GEMM: on AVX2 ~0.5-0.6 s of an
// r3d18 training step at batch 8 x 16x112x112 (the forward takes ~0.25 s for the same FLOPs), because
// im2col writes 343 x 3 floats per output voxel. Here no im2col is built: the output gradient is
// transposed once to channels-last (oneDNN reorder), the input is copied once with its width padded
// and its channels moved inside each row, and an AVX2/FMA register tile (16 output channels x 6
// (channel, kw) pairs) accumulates over one output row at a time, reading the input by broadcast.
//
// Deterministic: rows are split statically over the threads, each thread sums its rows in order into
// its own accumulator, and the accumulators are added in thread order.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "dnnl_runtime.h"
#include "stem_bwd_weights.h"

namespace conv3d {

namespace {

struct Dims {
  int64_t n, c, d, h, w;      // input
  int64_t oc, od, oh, ow;     // output
  int64_t kd, kh, kw;         // kernel
  int64_t sd, sh, sw, pd, ph, pw;
  int64_t wp;                 // padded input width
  int64_t j;                  // (channel, kw) pairs: c * kw
};

// acc[j][oc] += sum over ow of dy[ow][oc] * x_j[ow * sw] for 32 output channels (4 ymm) and NJ <= 3
// (channel, kw) pairs: 12 accumulators, 4 loads and 3 broadcasts per 12 FMAs. The accumulators are
// named variables, not an array: GCC keeps an array on the stack and stores it every iteration.
#define STEM_ROW(T)                                                                     \
  __m256 a##T##0 = _mm256_setzero_ps(), a##T##1 = a##T##0, a##T##2 = a##T##0, a##T##3 = a##T##0
#define STEM_FMA(T)                                                                     \
  if constexpr (NJ > T) {                                                               \
    const __m256 b = _mm256_broadcast_ss(x##T + o * sw);                                \
    a##T##0 = _mm256_fmadd_ps(g0, b, a##T##0);                                          \
    a##T##1 = _mm256_fmadd_ps(g1, b, a##T##1);                                          \
    a##T##2 = _mm256_fmadd_ps(g2, b, a##T##2);                                          \
    a##T##3 = _mm256_fmadd_ps(g3, b, a##T##3);                                          \
  }
#define STEM_ADD(T, V)                                                                  \
  _mm256_storeu_ps(acc + T * acc_stride + 8 * V,                                        \
                   _mm256_add_ps(_mm256_loadu_ps(acc + T * acc_stride + 8 * V), a##T##V))
#define STEM_STORE(T)                                                                   \
  if constexpr (NJ > T) {                                                               \
    STEM_ADD(T, 0);                                                                     \
    STEM_ADD(T, 1);                                                                     \
    STEM_ADD(T, 2);                                                                     \
    STEM_ADD(T, 3);                                                                     \
  }

constexpr int kOcTile = 32;
constexpr int kJTile = 3;

template <int NJ>
__attribute__((target("avx2,fma"))) void tile(const float *dy, int64_t oc_stride, const float *const *xj,
                                              int64_t sw, int64_t ow, float *acc, int64_t acc_stride) {
  const float *x0 = xj[0], *x1 = NJ > 1 ? xj[1] : x0, *x2 = NJ > 2 ? xj[2] : x0;
  STEM_ROW(0);
  STEM_ROW(1);
  STEM_ROW(2);
  for (int64_t o = 0; o < ow; ++o) {
    const float *g = dy + o * oc_stride;
    const __m256 g0 = _mm256_loadu_ps(g), g1 = _mm256_loadu_ps(g + 8), g2 = _mm256_loadu_ps(g + 16),
                 g3 = _mm256_loadu_ps(g + 24);
    STEM_FMA(0)
    STEM_FMA(1)
    STEM_FMA(2)
  }
  STEM_STORE(0)
  STEM_STORE(1)
  STEM_STORE(2)
  (void)x1, (void)x2, (void)a10, (void)a11, (void)a12, (void)a13, (void)a20, (void)a21, (void)a22, (void)a23;
}
#undef STEM_ROW
#undef STEM_FMA
#undef STEM_ADD
#undef STEM_STORE

using TileFn = void (*)(const float *, int64_t, const float *const *, int64_t, int64_t, float *, int64_t);
constexpr TileFn kTiles[kJTile + 1] = {nullptr, tile<1>, tile<2>, tile<3>};

// One output row (n, od, oh) into acc[kd][kh][j][oc].
void row(const Dims &g, const float *xp, const float *dyt, int64_t r, float *acc) {
  const int64_t oh = r % g.oh, od = (r / g.oh) % g.od, n = r / (g.oh * g.od);
  const float *dy_row = dyt + r * g.ow * g.oc;
  const float *xj[kJTile];
  for (int64_t kd = 0; kd < g.kd; ++kd) {
    const int64_t d = od * g.sd + kd - g.pd;
    if (d < 0 || d >= g.d) continue;
    for (int64_t kh = 0; kh < g.kh; ++kh) {
      const int64_t h = oh * g.sh + kh - g.ph;
      if (h < 0 || h >= g.h) continue;
      const float *x_row = xp + ((n * g.d + d) * g.h + h) * g.c * g.wp;  // [c][wp]
      float *acc_k = acc + (kd * g.kh + kh) * g.j * g.oc;
      for (int64_t j0 = 0; j0 < g.j; j0 += kJTile) {
        const int nj = static_cast<int>(std::min<int64_t>(kJTile, g.j - j0));
        for (int t = 0; t < nj; ++t) {
          const int64_t j = j0 + t, c = j / g.kw, kw = j % g.kw;
          xj[t] = x_row + c * g.wp + kw;
        }
        for (int64_t oc0 = 0; oc0 < g.oc; oc0 += kOcTile)
          kTiles[nj](dy_row + oc0, g.oc, xj, g.sw, g.ow, acc_k + j0 * g.oc + oc0, g.oc);
      }
    }
  }
}

}  // namespace

bool stem_bwd_weights_applies(const int64_t *x, const int64_t *dy, const int64_t *w, const int64_t *p) {
  static const bool cpu_ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  const bool unit_dilation = p[6] == 1 && p[7] == 1 && p[8] == 1;
  return cpu_ok && unit_dilation && x[1] <= 4 && w[0] % kOcTile == 0 && dy[1] == w[0] && w[4] <= 16;
}

void stem_bwd_weights(const int64_t *xs, const int64_t *dys, const int64_t *ws, const int64_t *p, const float *x,
                      const float *dy, float *dw) {
  Dims g{xs[0], xs[1], xs[2], xs[3], xs[4], dys[1], dys[2], dys[3], dys[4], ws[2], ws[3], ws[4],
         p[0], p[1], p[2], p[3], p[4], p[5], 0, 0};
  // right padding as the output size implies (the forward's own rule)
  const int64_t pw_r = std::max<int64_t>(0, (g.ow - 1) * g.sw + g.kw - g.w - g.pw);
  g.wp = g.pw + g.w + pw_r;
  g.j = g.c * g.kw;
  const int threads = std::max(1, omp_get_max_threads());
  const int64_t rows = g.n * g.od * g.oh;
  const size_t dyt_n = size_t(rows) * g.ow * g.oc, xp_n = size_t(g.n) * g.d * g.h * g.c * g.wp;
  const size_t acc_n = size_t(g.kd) * g.kh * g.j * g.oc;

  auto &rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  char *base = rt.reserve(align_up(dyt_n * 4) + align_up(xp_n * 4) + threads * align_up(acc_n * 4));
  float *dyt = reinterpret_cast<float *>(base);
  float *xp = reinterpret_cast<float *>(base + align_up(dyt_n * 4));
  float *accs = reinterpret_cast<float *>(base + align_up(dyt_n * 4) + align_up(xp_n * 4));
  const size_t acc_step = align_up(acc_n * 4) / 4;

  // dy: NCDHW -> NDHWC, by oneDNN
  const memory::dims dy_dims{g.n, g.oc, g.od, g.oh, g.ow};
  memory dy_user(plain(dy_dims), rt.eng, const_cast<float *>(dy));
  memory dy_cl(memory::desc(dy_dims, dt::f32, tag::ndhwc), rt.eng, dyt);
  dnnl::reorder(dy_user, dy_cl).execute(rt.strm, dy_user, dy_cl);
  rt.strm.wait();

#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    // x: [n][c][d][h][w] -> [n][d][h][c][pw + w + pw_r], zero borders
#pragma omp for schedule(static)
    for (int64_t ndh = 0; ndh < g.n * g.d * g.h; ++ndh) {
      const int64_t h = ndh % g.h, d = (ndh / g.h) % g.d, n = ndh / (g.h * g.d);
      for (int64_t c = 0; c < g.c; ++c) {
        float *dst = xp + (ndh * g.c + c) * g.wp;
        const float *src = x + (((n * g.c + c) * g.d + d) * g.h + h) * g.w;
        std::fill(dst, dst + g.pw, 0.f);
        std::memcpy(dst + g.pw, src, sizeof(float) * g.w);
        std::fill(dst + g.pw + g.w, dst + g.wp, 0.f);
      }
    }
    float *acc = accs + t * acc_step;
    std::fill(acc, acc + acc_n, 0.f);
    // the implicit barrier of the omp for above has made xp complete
    const int64_t begin = rows * t / nt, end = rows * (t + 1) / nt;
    for (int64_t r = begin; r < end; ++r) row(g, xp, dyt, r, acc);
#pragma omp barrier
    // dw[oc][c][kd][kh][kw] = sum over threads, in thread order, of acc[kd][kh][c * kw + kw][oc]
#pragma omp for schedule(static)
    for (int64_t oc = 0; oc < g.oc; ++oc)
      for (int64_t c = 0; c < g.c; ++c)
        for (int64_t kd = 0; kd < g.kd; ++kd)
          for (int64_t kh = 0; kh < g.kh; ++kh)
            for (int64_t kw = 0; kw < g.kw; ++kw) {
              const size_t i = ((kd * g.kh + kh) * g.j + c * g.kw + kw) * g.oc + oc;
              float s = 0.f;
              for (int u = 0; u < nt; ++u) s += accs[u * acc_step + i];
              dw[(((oc * g.c + c) * g.kd + kd) * g.kh + kh) * g.kw + kw] = s;
            }
  }
}

}  // namespace conv3d
