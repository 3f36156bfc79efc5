// 3-D max pooling on plain NCDHW float32 for MindSpore's CPU backend (Custom op, func_type="aot"); the
// inference variant also pools bfloat16 (BF16 inference): compared as float32, stored back exactly.
//
// MindSpore's MaxPool3D hands oneDNN plain layouts, where oneDNN runs its simple_nchw kernel: on
// AVX2 the stem's pool (8x64x16x112x112 -> 56x56) took ~0.4 s forward, a tenth of a whole r3d18
// training step. This one is a direct loop, one (n, c) plane per OpenMP task.
//
// Semantics are PyTorch's max_pool3d (CPU): padded positions never win, the first maximum in
// (d, h, w) order wins, a NaN wins over any number (and a later NaN over an earlier one). The
// forward records the winner's flat index in its input plane; the backward adds each output
// gradient at that index.
//
// The last input is an int64[9] tensor: kernel(3), stride(3), padding(3). Output shapes come from
// MindSpore's infer (Python side).
#include <omp.h>

#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>
#include <algorithm>

#include "executor.h"
#include "units.h"

namespace {

struct Shape {
  int64_t planes, id, ih, iw, od, oh, ow;
  int64_t k[3], s[3], p[3];
};

Shape shape_of(const int64_t *in, const int64_t *out, const int64_t *params) {
  Shape sh{in[0] * in[1], in[2], in[3], in[4], out[2], out[3], out[4], {}, {}, {}};
  for (int i = 0; i < 3; ++i) {
    sh.k[i] = params[i];
    sh.s[i] = params[3 + i];
    sh.p[i] = params[6 + i];
  }
  return sh;
}

// The Shape of a channels-last pool: shapes [N, D, H, W, C]
Shape shape_of_ndhwc(const int64_t *in, const int64_t *out, const int64_t *params) {
  const int64_t in_ncdhw[5] = {in[0], in[4], in[1], in[2], in[3]}, out_ncdhw[5] = {out[0], out[4], out[1], out[2], out[3]};
  return shape_of(in_ncdhw, out_ncdhw, params);
}

// The window of output position o along one axis, clipped to the input: [begin, end).
inline void window(int64_t o, int64_t k, int64_t s, int64_t p, int64_t n, int64_t &b, int64_t &e) {
  b = o * s - p;
  e = b + k;
  if (b < 0) b = 0;
  if (e > n) e = n;
}

// bfloat16 is the upper half of a float32: widening is exact, and so is narrowing a value that was
// read from bfloat16 (a max-pool only ever stores one of its inputs, or -inf)
using bf16_t = uint16_t;
inline float widen(float v) { return v; }
inline float widen(bf16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}
inline void narrow(float v, float &out) { out = v; }
// quantized activations (u8 after a ReLU, s8): exact in float32, compared as numbers (max commutes with the
// monotonic quantization, so the pooled tensor keeps its scale)
inline float widen(uint8_t v) { return v; }
inline float widen(int8_t v) { return v; }
inline void narrow(float v, uint8_t &out) { out = static_cast<uint8_t>(v); }
inline void narrow(float v, int8_t &out) { out = static_cast<int8_t>(v); }
inline void narrow(float v, bf16_t &out) {
  uint32_t u;
  std::memcpy(&u, &v, sizeof u);
  out = bf16_t(u >> 16);
}

// m[ow], best[ow] <- src[ow * stride] (flat index base + ow * stride) where it beats m[ow].
template <typename T, typename Stride>
inline void update(const T *src, Stride stride, float *m, int32_t *best, int32_t base, int64_t lo, int64_t hi) {
  for (int64_t ow = lo; ow < hi; ++ow) {
    const float v = widen(src[ow * stride]);
    const bool take = (v > m[ow]) | (v != v);  // NaN wins, as in PyTorch
    m[ow] = take ? v : m[ow];
    best[ow] = take ? base + static_cast<int32_t>(ow * stride) : best[ow];
  }
}

// One output row (od, oh) at a time: the window's candidates are visited in (d, h, w) order, each
// as one branch-free select over the whole row of outputs, which the compiler vectorises.
template <bool kIndex, typename T>
void forward(const Shape &sh, const T *x, T *y, int32_t *idx) {
  const int64_t in_plane = sh.id * sh.ih * sh.iw, out_plane = sh.od * sh.oh * sh.ow;
  // outputs whose window starts inside the input along w: [ow_lo, ow_hi) per kw, precomputed
  std::vector<int64_t> lo(sh.k[2]), hi(sh.k[2]);
  for (int64_t kw = 0; kw < sh.k[2]; ++kw) {
    lo[kw] = sh.ow;
    hi[kw] = 0;
    for (int64_t ow = 0; ow < sh.ow; ++ow) {
      const int64_t w = ow * sh.s[2] + kw - sh.p[2];
      if (w >= 0 && w < sh.iw) {
        lo[kw] = std::min(lo[kw], ow);
        hi[kw] = ow + 1;
      }
    }
  }
#pragma omp parallel
  {
    std::vector<float> m(sh.ow);
    std::vector<int32_t> best(sh.ow);
#pragma omp for schedule(static)
    for (int64_t pl = 0; pl < sh.planes; ++pl) {
      const T *xp = x + pl * in_plane;
      for (int64_t od = 0; od < sh.od; ++od) {
        int64_t d0, d1;
        window(od, sh.k[0], sh.s[0], sh.p[0], sh.id, d0, d1);
        for (int64_t oh = 0; oh < sh.oh; ++oh) {
          int64_t h0, h1;
          window(oh, sh.k[1], sh.s[1], sh.p[1], sh.ih, h0, h1);
          std::fill(m.begin(), m.end(), -std::numeric_limits<float>::infinity());
          for (int64_t ow = 0; ow < sh.ow; ++ow)  // an all -inf window keeps its first valid index
            best[ow] = static_cast<int32_t>((d0 * sh.ih + h0) * sh.iw + std::max<int64_t>(0, ow * sh.s[2] - sh.p[2]));
          for (int64_t d = d0; d < d1; ++d)
            for (int64_t h = h0; h < h1; ++h) {
              const int64_t row = (d * sh.ih + h) * sh.iw;
              for (int64_t kw = 0; kw < sh.k[2]; ++kw) {
                const int64_t shift = kw - sh.p[2];
                const T *src = xp + row + shift;
                float *mp = m.data();
                int32_t *bp = best.data();
                const int32_t base = static_cast<int32_t>(row + shift);
                if (sh.s[2] == 2)  // the model's pool: a constant stride lets the loop vectorise
                  update(src, std::integral_constant<int64_t, 2>(), mp, bp, base, lo[kw], hi[kw]);
                else
                  update(src, sh.s[2], mp, bp, base, lo[kw], hi[kw]);
              }
            }
          const int64_t o = (od * sh.oh + oh) * sh.ow;
          T *yp = y + pl * out_plane + o;
          for (int64_t ow = 0; ow < sh.ow; ++ow) narrow(m[ow], yp[ow]);
          if (kIndex) std::copy(best.begin(), best.end(), idx + pl * out_plane + o);
        }
      }
    }
  }
}

// The running maximum's type: float32 (NaN-aware compares of float32 / bfloat16 values; bf16_t is a uint16_t),
// or the integers themselves for u8 / s8 (a plain max, which the compiler vectorises over 64 channels at a time;
// no NaN there)
template <typename T>
constexpr bool kBytes = std::is_same_v<T, uint8_t> || std::is_same_v<T, int8_t>;
template <typename T>
using Running = std::conditional_t<kBytes<T>, T, float>;
template <typename T>
inline Running<T> lowest() {
  if constexpr (kBytes<T>) return std::numeric_limits<T>::min();
  else return -std::numeric_limits<float>::infinity();
}
template <typename T>
inline void take_max(Running<T> &m, T v) {
  if constexpr (kBytes<T>) m = v > m ? v : m;
  else {
    const float f = widen(v);
    m = (f > m) | (f != f) ? f : m;
  }
}
template <typename T>
inline void store(Running<T> m, T &out) {
  if constexpr (kBytes<T>) out = m;
  else narrow(m, out);
}

// Channels-last (NDHWC) inference pooling: one output row (n, od, oh) per OpenMP task, each output
// position's window visited in (d, h, w) order with a branch-free select over the channels.
template <typename T>
void forward_ndhwc(int64_t n, int64_t c, const Shape &sh, const T *x, T *y) {
#pragma omp parallel
  {
    std::vector<Running<T>> m(c);
#pragma omp for schedule(static)
    for (int64_t row = 0; row < n * sh.od * sh.oh; ++row) {
      const int64_t b = row / (sh.od * sh.oh), od = row / sh.oh % sh.od, oh = row % sh.oh;
      int64_t d0, d1, h0, h1;
      window(od, sh.k[0], sh.s[0], sh.p[0], sh.id, d0, d1);
      window(oh, sh.k[1], sh.s[1], sh.p[1], sh.ih, h0, h1);
      for (int64_t ow = 0; ow < sh.ow; ++ow) {
        int64_t w0, w1;
        window(ow, sh.k[2], sh.s[2], sh.p[2], sh.iw, w0, w1);
        std::fill(m.begin(), m.end(), lowest<T>());
        for (int64_t d = d0; d < d1; ++d)
          for (int64_t h = h0; h < h1; ++h)
            for (int64_t w = w0; w < w1; ++w) {
              const T *src = x + (((b * sh.id + d) * sh.ih + h) * sh.iw + w) * c;
              for (int64_t ch = 0; ch < c; ++ch) take_max(m[ch], src[ch]);
            }
        T *dst = y + (((b * sh.od + od) * sh.oh + oh) * sh.ow + ow) * c;
        for (int64_t ch = 0; ch < c; ++ch) store(m[ch], dst[ch]);
      }
    }
  }
}

void backward(const Shape &sh, const float *dy, const int32_t *idx, float *dx) {
  const int64_t in_plane = sh.id * sh.ih * sh.iw, out_plane = sh.od * sh.oh * sh.ow;
#pragma omp parallel for schedule(static)
  for (int64_t pl = 0; pl < sh.planes; ++pl) {
    float *dp = dx + pl * in_plane;
    const float *gp = dy + pl * out_plane;
    const int32_t *ip = idx + pl * out_plane;
    std::memset(dp, 0, sizeof(float) * in_plane);
    for (int64_t o = 0; o < out_plane; ++o) dp[ip[o]] += gp[o];
  }
}

bool is(int *ndims, const char **dtypes, int i, int nd, const char *dtype) {
  return ndims[i] == nd && std::strcmp(dtypes[i], dtype) == 0;
}

std::atomic<long> g_calls[2];  // forward (either variant), backward: lets tests see which ran

}  // namespace

#define AOT_ARGS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *
#define AOT_PASS nparam, params, ndims, shapes, dtypes, nullptr, nullptr

namespace conv3d {
// NDHWC integer pooling for src/ops/csrc/int8_program.cc (declared in units.h)
void max_pool_ndhwc(bool is_signed, const int64_t *in, const int64_t *out, const int64_t *params, const void *x,
                    void *y) {
  const Shape sh = shape_of_ndhwc(in, out, params);
  g_calls[0]++;
  if (is_signed) forward_ndhwc(in[0], in[4], sh, static_cast<const int8_t *>(x), static_cast<int8_t *>(y));
  else forward_ndhwc(in[0], in[4], sh, static_cast<const uint8_t *>(x), static_cast<uint8_t *>(y));
}
}  // namespace conv3d

extern "C" {
// (x f32[N,C,D,H,W], p int64[9]) -> (y f32, index int32), training
static int maxpool3d_fwd_body(AOT_ARGS) {
  if (nparam != 4 || !is(ndims, dtypes, 0, 5, "float32") || !is(ndims, dtypes, 1, 1, "int64") ||
      !is(ndims, dtypes, 2, 5, "float32") || !is(ndims, dtypes, 3, 5, "int32")) {
    std::fprintf(stderr, "maxpool3d_fwd: unexpected inputs\n");
    return 1;
  }
  if (shapes[0][2] * shapes[0][3] * shapes[0][4] > std::numeric_limits<int32_t>::max()) {
    std::fprintf(stderr, "maxpool3d_fwd: input plane too large for int32 indices\n");
    return 1;
  }
  g_calls[0]++;
  Shape sh = shape_of(shapes[0], shapes[2], static_cast<const int64_t *>(params[1]));
  forward<true>(sh, static_cast<const float *>(params[0]), static_cast<float *>(params[2]),
                static_cast<int32_t *>(params[3]));
  return 0;
}

// (x f32, p int64[9]) -> y f32, inference (no index); or bfloat16 x and y
static int maxpool3d_infer_body(AOT_ARGS) {
  const bool bf16 = nparam == 3 && is(ndims, dtypes, 0, 5, "bfloat16") && is(ndims, dtypes, 2, 5, "bfloat16");
  if (nparam != 3 || !is(ndims, dtypes, 1, 1, "int64") ||
      !(bf16 || (is(ndims, dtypes, 0, 5, "float32") && is(ndims, dtypes, 2, 5, "float32")))) {
    std::fprintf(stderr, "maxpool3d_infer: unexpected inputs\n");
    return 1;
  }
  g_calls[0]++;
  Shape sh = shape_of(shapes[0], shapes[2], static_cast<const int64_t *>(params[1]));
  if (bf16)
    forward<false>(sh, static_cast<const bf16_t *>(params[0]), static_cast<bf16_t *>(params[2]), nullptr);
  else
    forward<false>(sh, static_cast<const float *>(params[0]), static_cast<float *>(params[2]), nullptr);
  return 0;
}

// (x [N,D,H,W,C] float32, bfloat16, uint8 or int8, p int64[9]) -> y [N,od,oh,ow,C] of x's type, inference,
// channels-last
static int maxpool3d_infer_ndhwc_body(AOT_ARGS) {
  const bool bf16 = nparam == 3 && is(ndims, dtypes, 0, 5, "bfloat16") && is(ndims, dtypes, 2, 5, "bfloat16");
  const bool u8 = nparam == 3 && is(ndims, dtypes, 0, 5, "uint8") && is(ndims, dtypes, 2, 5, "uint8");
  const bool s8 = nparam == 3 && is(ndims, dtypes, 0, 5, "int8") && is(ndims, dtypes, 2, 5, "int8");
  if (nparam != 3 || !is(ndims, dtypes, 1, 1, "int64") ||
      !(bf16 || u8 || s8 || (is(ndims, dtypes, 0, 5, "float32") && is(ndims, dtypes, 2, 5, "float32")))) {
    std::fprintf(stderr, "maxpool3d_infer_ndhwc: unexpected inputs\n");
    return 1;
  }
  g_calls[0]++;
  const int64_t *in = shapes[0], *out = shapes[2];
  const Shape sh = shape_of_ndhwc(in, out, static_cast<const int64_t *>(params[1]));
  if (u8)
    forward_ndhwc(in[0], in[4], sh, static_cast<const uint8_t *>(params[0]), static_cast<uint8_t *>(params[2]));
  else if (s8)
    forward_ndhwc(in[0], in[4], sh, static_cast<const int8_t *>(params[0]), static_cast<int8_t *>(params[2]));
  else if (bf16)
    forward_ndhwc(in[0], in[4], sh, static_cast<const bf16_t *>(params[0]), static_cast<bf16_t *>(params[2]));
  else
    forward_ndhwc(in[0], in[4], sh, static_cast<const float *>(params[0]), static_cast<float *>(params[2]));
  return 0;
}

// (dy f32[N,C,od,oh,ow], index int32, x f32 (shape only), p int64[9]) -> dx f32
static int maxpool3d_bwd_body(AOT_ARGS) {
  if (nparam != 5 || !is(ndims, dtypes, 0, 5, "float32") || !is(ndims, dtypes, 1, 5, "int32") ||
      !is(ndims, dtypes, 2, 5, "float32") || !is(ndims, dtypes, 3, 1, "int64") ||
      !is(ndims, dtypes, 4, 5, "float32")) {
    std::fprintf(stderr, "maxpool3d_bwd: unexpected inputs\n");
    return 1;
  }
  g_calls[1]++;
  Shape sh = shape_of(shapes[4], shapes[0], static_cast<const int64_t *>(params[3]));
  backward(sh, static_cast<const float *>(params[0]), static_cast<const int32_t *>(params[1]),
           static_cast<float *>(params[4]));
  return 0;
}

long maxpool3d_calls(int kind) { return (kind >= 0 && kind < 2) ? g_calls[kind].load() : -1; }
// the bodies run on the library's executor thread (executor.h)
int maxpool3d_fwd(AOT_ARGS) { return conv3d::entry_on_executor([&] { return maxpool3d_fwd_body(AOT_PASS); }); }
int maxpool3d_infer(AOT_ARGS) { return conv3d::entry_on_executor([&] { return maxpool3d_infer_body(AOT_PASS); }); }
int maxpool3d_infer_ndhwc(AOT_ARGS) { return conv3d::entry_on_executor([&] { return maxpool3d_infer_ndhwc_body(AOT_PASS); }); }
int maxpool3d_bwd(AOT_ARGS) { return conv3d::entry_on_executor([&] { return maxpool3d_bwd_body(AOT_PASS); }); }
}
