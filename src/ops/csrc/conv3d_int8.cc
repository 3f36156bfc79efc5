// INT8 inference convolution (issue 30; the scheme is docs/int8.md's, the Python side src/ops/int8_conv3d.py).
// One conv unit of the quantized network computes, per output element of channel c:
//   acc = sum(q_x * w_q)                         (s32 accumulation, s8 weights, u8 or s8 activations)
//   y   = in_scale * w_scale[c] * acc + bias[c]  (float32; oneDNN's runtime src / weights scales)
//   y  += res_scale * q_res                      (a residual unit)
//   y   = max(y, 0)                              (relu)
//   out = saturate(rint(y / out_scale)) as u8 / s8 (oneDNN's runtime dst scale), or y as float32
//
// Layout: activations are channels-last, NDHWC (tensor shape [N, D, H, W, C]), the layout of oneDNN's INT8
// brgemm kernels, so no reorder runs between units. The one exception is a unit whose input type is float32:
// it takes the float32 clips NCDHW [N, C, D, H, W] and quantizes them to s8 with its in_scale while moving
// them to NDHWC (q = clamp(rint(x / in_scale), -128, 127), computed here exactly as written).
//
// The residual: with the element size of the destination (u8 or s8 onto u8 or s8, float32 onto float32) it
// is copied into the destination buffer and added by a sum post-op whose scale is res_scale (the sum reads it
// as its own type, so a u8 residual onto an s8 destination works too). Otherwise (a u8 residual onto the
// float32 output of the network's last unit) it is dequantized to float32 (res_scale * q_res) and added by a
// binary add post-op. ReLU is an eltwise post-op after it; the dst scale applies after the post-ops.
//
// The weights (BatchNorm folded in, quantized per output channel), their scales, the bias and the unit's
// types and activation scales are handed over once (conv3d_int8_prepare) and live here under a handle; the
// first call at a geometry reorders the s8 weights into the blocked layout the primitive chose (format_tag any,
// compensation for an s8 source added by the reorder) and keeps that copy. Primitives are cached per geometry
// and unit types, shared between handles (the scales are runtime arguments; the residual's is in the key).
//
// aot entry points: conv3d_int8 (x, params) -> y and conv3d_int8_add (x, params, residual) -> y,
// params = int64[7]: stride(3), padding(3), weight handle. Tensor types: "float32", "uint8", "int8", as the
// handle declares them.
//
// oneDNN may refuse a form on some ISA, and an ISA without INT8 dot products counts as a refusal (see
// int8_dot_products): conv3d_int8_probe says so before the first call (the caller then runs its own
// emulation). For tests only: RESNET3D_INT8_REFUSE=all (or =grouped) makes every (grouped) geometry count as
// refused.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dnnl_runtime.h"
#include "executor.h"
#include "units.h"

namespace {

using namespace conv3d;

struct Unit {
  memory::dims dims;               // OIDHW, or GOIDHW for a grouped convolution
  std::vector<int8_t> plain_w;     // kept: the source of another blocked layout, 1 byte a weight
  memory::dims fold_dims;          // a stem's folded weights (see Fold), empty when the unit is not folded
  std::vector<int8_t> fold_w;
  std::vector<float> w_scale, bias;
  dt in_dt = dt::u8, out_dt = dt::u8, res_dt = dt::undef;  // in f32: NCDHW clips; res undef: no residual
  float in_scale = 1.f, out_scale = 1.f, res_scale = 1.f;
  bool relu = false;
  std::vector<std::pair<memory::desc, memory>> blocked;  // one per weights layout a primitive asked for
};

std::map<int64_t, std::unique_ptr<Unit>> &registry() {
  static std::map<int64_t, std::unique_ptr<Unit>> r;
  return r;
}
std::atomic<int64_t> g_next_handle{1};
std::atomic<long> g_calls{0};

// The stem's fold. A unit taking the float32 clips has few input channels (3), so each kernel tap gives
// oneDNN's INT8 kernel a reduction of 3 padded to VNNI's 4: a quarter of its multiply-adds on zeros (r3d50's
// stem, batch 1, one thread: 18-20 ms unfolded, 15 ms folded, with 21 of 24 lanes used). Folded, the kw taps join the channels: the clips are quantized into
// rows where output column wo holds the kw * ic values its window reads (channel j * ic + k = input channel k
// at column wo * sw + j - pad_w, zero outside the clip; zero channels pad the count to a multiple of 4), and
// the convolution runs with kernel kd x kh x 1, stride sd x sh x 1, no W padding, on weights rearranged the
// same way. The same products are summed in s32: the result is the unfolded convolution's, exactly.
struct Fold {
  int64_t ic = 0, kw = 1, sw = 1, pad_w = 0, channels = 0;  // channels: round_up(kw * ic, 4)
};

bool foldable(const memory::dims &w, dt in_dt) { return in_dt == dt::f32 && w.size() == 5 && w[4] > 1 && w[1] * w[4] <= 64; }

// OIDHW weights -> O (kw * ic rounded up to 4) D H 1, channel j * ic + k = input channel k at tap kw = j
void fold_weights(Unit &u) {
  const auto &d = u.dims;
  const int64_t o = d[0], ic = d[1], kd = d[2], kh = d[3], kw = d[4], ch = (kw * ic + 3) / 4 * 4;
  u.fold_dims = {o, ch, kd, kh, 1};
  u.fold_w.assign(size_t(o * ch * kd * kh), 0);
  for (int64_t a = 0; a < o; ++a)
    for (int64_t k = 0; k < ic; ++k)
      for (int64_t z = 0; z < kd; ++z)
        for (int64_t y = 0; y < kh; ++y)
          for (int64_t j = 0; j < kw; ++j)
            u.fold_w[size_t(((a * ch + j * ic + k) * kd + z) * kh + y)] = u.plain_w[size_t((((a * ic + k) * kd + z) * kh + y) * kw + j)];
}

struct Plan {
  dnnl::convolution_forward prim;
  memory::desc src, dst, wei, bias, scratch, res_f32;
  bool binary = false;  // the residual is added from a float32 copy by a binary post-op
  bool folded = false;  // the stem's fold (the src desc is the folded clips')
  Fold fold;
  std::string impl;     // the implementation oneDNN chose
};

struct Call {
  memory::dims src, dst, strides, pad_l, pad_r;  // oneDNN's logical N, C, D, H, W
  int64_t handle = 0;
  bool residual = false;
};

size_t size_of(dt t) { return t == dt::f32 ? 4 : 1; }
const char *type_name(dt t) { return t == dt::f32 ? "float32" : t == dt::u8 ? "uint8" : t == dt::s8 ? "int8" : "none"; }

std::string key_of(const Call &c, const Unit &u) {
  std::string k = std::string(type_name(u.in_dt)) + type_name(u.out_dt) + (c.residual ? type_name(u.res_dt) : "-");
  k += u.relu ? "r" : "l";
  uint32_t bits;
  std::memcpy(&bits, &u.res_scale, sizeof bits);
  k += std::to_string(bits);
  for (const auto *v : {&c.src, &u.dims, &c.dst, &c.strides, &c.pad_l, &c.pad_r})
    for (auto x : *v) k += "," + std::to_string(x);
  const char *refuse = std::getenv("RESNET3D_INT8_REFUSE");  // tests: plans made under another setting not reused
  if (refuse != nullptr) k += std::string("|") + refuse;
  return k;
}

// Without INT8 dot products (VNNI / AMX) oneDNN multiplies u8 x s8 pairs with vpmaddubsw, which saturates their
// sum at 16 bits (255 * 127 * 2 > 32767), and halves s8-source weights to avoid it: results far from the
// scheme's (12 % of the accumulator's range on full-range data). Such an ISA (the CPU's, or a cap such as
// ONEDNN_MAX_CPU_ISA=AVX512_CORE / AVX2) counts as a refusal, so that the caller runs its exact emulation.
bool int8_dot_products() {
  const auto isa = static_cast<unsigned>(dnnl_get_effective_cpu_isa());
  for (unsigned vnni : {unsigned(dnnl_cpu_isa_avx2_vnni), unsigned(dnnl_cpu_isa_avx512_core_vnni)})
    if ((isa & vnni) == vnni) return true;
  return false;
}

bool refused_for_tests(bool grouped) {
  const char *env = std::getenv("RESNET3D_INT8_REFUSE");
  if (env == nullptr) return false;
  return std::strcmp(env, "all") == 0 || (grouped && std::strcmp(env, "grouped") == 0);
}

std::unique_ptr<Plan> make_plan(const Call &c, const Unit &u) {
  auto &rt = runtime();
  const bool grouped = u.dims.size() == 6;
  if (refused_for_tests(grouped)) throw dnnl::error(dnnl_unimplemented, "refused by RESNET3D_INT8_REFUSE (tests)");
  if (!int8_dot_products())
    throw dnnl::error(dnnl_unimplemented, "oneDNN runs at an ISA without INT8 dot products (VNNI or AMX), where its "
                                          "u8 x s8 products saturate at 16 bits");
  auto plan = std::make_unique<Plan>();
  dnnl::post_ops po;
  if (c.residual) {
    plan->binary = size_of(u.res_dt) != size_of(u.out_dt);
    if (plan->binary) {
      plan->res_f32 = memory::desc(c.dst, dt::f32, tag::ndhwc);
      po.append_binary(dnnl::algorithm::binary_add, plan->res_f32);
    } else {
      po.append_sum(u.res_scale, 0, u.res_dt);
    }
  }
  if (u.relu) po.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(po);
  attr.set_scales_mask(DNNL_ARG_SRC, 0);
  attr.set_scales_mask(DNNL_ARG_WEIGHTS, grouped ? 3 : 1);  // per output channel: (G, O / G) or O
  if (u.out_dt != dt::f32) attr.set_scales_mask(DNNL_ARG_DST, 0);
  const int64_t out = grouped ? u.dims[0] * u.dims[1] : u.dims[0];
  const dt src_dt = u.in_dt == dt::f32 ? dt::s8 : u.in_dt;
  memory::dims src = c.src, strides = c.strides, pad_l = c.pad_l, pad_r = c.pad_r;
  plan->folded = !u.fold_dims.empty();
  if (plan->folded) {
    plan->fold = {u.dims[1], u.dims[4], c.strides[2], c.pad_l[2], u.fold_dims[1]};
    src = {c.src[0], plan->fold.channels, c.src[2], c.src[3], c.dst[4]};
    strides[2] = 1;
    pad_l[2] = pad_r[2] = 0;
  }
  dnnl::convolution_forward::primitive_desc pd(
      rt.eng, dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct,
      memory::desc(src, src_dt, tag::ndhwc), any(plan->folded ? u.fold_dims : u.dims, dt::s8),
      memory::desc({out}, dt::f32, tag::a), memory::desc(c.dst, u.out_dt, tag::ndhwc), strides,
      memory::dims{0, 0, 0}, pad_l, pad_r, attr);
  plan->prim = dnnl::convolution_forward(pd);
  plan->src = pd.src_desc();
  plan->dst = pd.dst_desc();
  plan->wei = pd.weights_desc();
  plan->bias = pd.bias_desc();
  plan->scratch = pd.scratchpad_desc();
  plan->impl = pd.impl_info_str();
  return plan;
}

PlanCache<Plan> g_plans;  // guarded by runtime().mu

memory &weights_for(Unit &u, const Plan &plan) {
  const memory::desc &want = plan.wei;
  for (auto &entry : u.blocked)
    if (entry.first == want) return entry.second;
  auto &rt = runtime();
  memory from(plain(plan.folded ? u.fold_dims : u.dims, dt::s8), rt.eng,
              plan.folded ? u.fold_w.data() : u.plain_w.data());
  memory blocked(want, rt.eng);  // owns its buffer (the weights and any compensation oneDNN appends)
  dnnl::reorder(from, blocked).execute(rt.strm, from, blocked);
  rt.strm.wait();
  u.blocked.emplace_back(want, blocked);
  return u.blocked.back().second;
}

// q = clamp(rint(x / scale), -128, 127), round half to even (a NaN gives -128). Clamped before rounding (the
// same result: rint is monotone and the bounds are integers), then rounded by adding and subtracting 1.5 * 2^23
// in the default rounding mode (exact for |v| < 2^22), which the compiler vectorizes where nearbyint is a call.
inline int8_t quantized(float x, float scale) {
  float v = x / scale;
  v = v > 127.f ? 127.f : v >= -128.f ? v : -128.f;
  v = (v + 12582912.f) - 12582912.f;
  return int8_t(v);
}

// float32 NCDHW clips -> s8 NDHWC
void quantize_clips(const memory::dims &d, const float *x, float scale, int8_t *q) {
  const int64_t n = d[0], ch = d[1], sp = d[2] * d[3] * d[4];
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t b = 0; b < n; ++b)
    for (int64_t s = 0; s < sp; ++s)
      for (int64_t k = 0; k < ch; ++k) q[(b * sp + s) * ch + k] = quantized(x[(b * ch + k) * sp + s], scale);
}

// Output columns of one folded row: `channels` bytes copied from each window (the row has that many bytes of
// slack at its end), the bytes past the window's `span` zeroed. kChannels: the count known at compile time
// (24 for 3 channels x 7 taps), so that the copy is a few moves instead of a call.
template <int64_t kChannels>
void fold_row(const int8_t *row, int64_t wo_len, int64_t step, int64_t span, int64_t channels, int8_t *o) {
  const int64_t count = kChannels > 0 ? kChannels : channels;
  for (int64_t wo = 0; wo < wo_len; ++wo, o += count, row += step) {
    std::memcpy(o, row, size_t(count));
    for (int64_t j = span; j < count; ++j) o[j] = 0;
  }
}

// float32 NCDHW clips [n, ic, D, H, W] -> the folded s8 clips [n, D, H, wo_len, f.channels] (see Fold): each
// input row quantized once into a zero-padded s8 row, output column wo copying its kw * ic window from it
void fold_clips(const memory::dims &d, const float *x, float scale, const Fold &f, int64_t wo_len, int8_t *out) {
  const int64_t n = d[0], ic = d[1], depth = d[2], h_len = d[3], w_len = d[4], rows = n * depth * h_len;
  const int64_t wp = (wo_len - 1) * f.sw + f.kw, span = f.kw * ic;  // the padded row's columns; one window
#pragma omp parallel
  {
    const int64_t used = std::min(w_len, wp - f.pad_w);  // the input columns some window reads
    std::vector<int8_t> row(size_t(wp * ic + f.channels)), plane(static_cast<size_t>(used));
#pragma omp for schedule(static)
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t b = r / (depth * h_len), zh = r % (depth * h_len);  // zh = z * h_len + h
      std::fill(row.begin(), row.end(), int8_t(0));
      for (int64_t k = 0; k < ic; ++k) {
        const float *src = x + (b * ic + k) * depth * h_len * w_len + zh * w_len;
        for (int64_t w = 0; w < used; ++w) plane[size_t(w)] = quantized(src[w], scale);
        for (int64_t w = 0; w < used; ++w) row[size_t((w + f.pad_w) * ic + k)] = plane[size_t(w)];
      }
      int8_t *o = out + r * wo_len * f.channels;
      if (f.channels == 24) fold_row<24>(row.data(), wo_len, f.sw * ic, span, f.channels, o);
      else fold_row<0>(row.data(), wo_len, f.sw * ic, span, f.channels, o);
    }
  }
}

// the residual as float32: res_scale * q_res (res_scale * r for a float32 residual)
template <typename T>
void dequantize(const T *r, float scale, int64_t n, float *out) {
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) out[i] = scale * float(r[i]);
}

void residual_f32(const Unit &u, const void *r, int64_t n, float *out) {
  if (u.res_dt == dt::u8) dequantize(static_cast<const uint8_t *>(r), u.res_scale, n, out);
  else if (u.res_dt == dt::s8) dequantize(static_cast<const int8_t *>(r), u.res_scale, n, out);
  else dequantize(static_cast<const float *>(r), u.res_scale, n, out);
}

std::pair<Unit *, Plan *> plan_of(const Call &c) {  // the caller holds runtime().mu
  auto it = registry().find(c.handle);
  if (it == registry().end()) throw std::runtime_error("unknown weight handle " + std::to_string(c.handle));
  Unit &u = *it->second;
  if (c.residual != (u.res_dt != dt::undef))
    throw std::runtime_error(c.residual ? "a residual given to a unit without one" : "the unit's residual missing");
  Plan &plan = g_plans.get(key_of(c, u), [&] { return make_plan(c, u); });
  return {&u, &plan};
}

void run(const Call &c, void *x, void *residual, void *y) {
  auto &rt = runtime();
  g_calls++;
  std::lock_guard<std::mutex> lock(rt.mu);
  auto [up, pp] = plan_of(c);
  Unit &u = *up;
  Plan &plan = *pp;
  memory &wei = weights_for(u, plan);
  const bool quantize = u.in_dt == dt::f32;
  size_t total = align_up(plan.scratch.get_size());
  if (quantize) total += align_up(plan.src.get_size());
  if (plan.binary) total += align_up(plan.res_f32.get_size());
  char *base = rt.reserve(total);
  size_t off = align_up(plan.scratch.get_size());
  std::unordered_map<int, memory> args;
  args[DNNL_ARG_SCRATCHPAD] = memory(plan.scratch, rt.eng, base);
  if (quantize) {
    auto *q = reinterpret_cast<int8_t *>(base + off);
    if (plan.folded) fold_clips(c.src, static_cast<const float *>(x), u.in_scale, plan.fold, c.dst[4], q);
    else quantize_clips(c.src, static_cast<const float *>(x), u.in_scale, q);
    args[DNNL_ARG_SRC] = memory(plan.src, rt.eng, base + off);
    off += align_up(plan.src.get_size());
  } else {
    args[DNNL_ARG_SRC] = memory(plan.src, rt.eng, x);
  }
  if (plan.binary) {
    float *r = reinterpret_cast<float *>(base + off);
    residual_f32(u, residual, int64_t(plan.res_f32.get_size() / sizeof(float)), r);
    args[DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1] = memory(plan.res_f32, rt.eng, r);
  } else if (c.residual && residual != y) {
    std::memcpy(y, residual, plan.dst.get_size());  // the sum post-op adds what the destination holds
  }
  const int64_t out = int64_t(u.w_scale.size());
  args[DNNL_ARG_WEIGHTS] = wei;
  args[DNNL_ARG_BIAS] = memory(plan.bias, rt.eng, u.bias.data());
  args[DNNL_ARG_DST] = memory(plan.dst, rt.eng, y);
  args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_SRC] = memory({{1}, dt::f32, tag::x}, rt.eng, &u.in_scale);
  args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_WEIGHTS] = memory({{out}, dt::f32, tag::x}, rt.eng, u.w_scale.data());
  if (u.out_dt != dt::f32)
    args[DNNL_ARG_ATTR_SCALES | DNNL_ARG_DST] = memory({{1}, dt::f32, tag::x}, rt.eng, &u.out_scale);
  plan.prim.execute(rt.strm, args);
  rt.strm.wait();
}

bool type_of(const char *name, dt &t) {
  if (std::strcmp(name, "float32") == 0) t = dt::f32;
  else if (std::strcmp(name, "uint8") == 0) t = dt::u8;
  else if (std::strcmp(name, "int8") == 0) t = dt::s8;
  else return false;
  return true;
}

dt type_of_code(int code) { return code == 0 ? dt::f32 : code == 1 ? dt::u8 : code == 2 ? dt::s8 : dt::undef; }

// The call of handle p[6] on an input of shape x (NCDHW for a float32 input, else NDHWC) with an NDHWC output
// of shape y, params p = int64[7]; `types` (in, out, residual) gets the handle's tensor types. False for an
// unknown handle.
bool make_call(const int64_t *x, const int64_t *y, const int64_t *p, bool residual, Call &c, dt *types) {
  c.handle = p[6];
  c.residual = residual;
  memory::dims wei;
  {
    std::lock_guard<std::mutex> lock(runtime().mu);
    auto it = registry().find(c.handle);
    if (it == registry().end()) return false;
    wei = it->second->dims;
    types[0] = it->second->in_dt;
    types[1] = it->second->out_dt;
    types[2] = it->second->res_dt;
  }
  auto ncdhw = [](const int64_t *s) { return memory::dims{s[0], s[4], s[1], s[2], s[3]}; };
  c.src = types[0] == dt::f32 ? memory::dims(x, x + 5) : ncdhw(x);
  c.dst = ncdhw(y);
  for (int k = 0; k < 3; ++k) {
    c.strides.push_back(p[k]);
    c.pad_l.push_back(p[3 + k]);
    c.pad_r.push_back((c.dst[2 + k] - 1) * p[k] + wei[wei.size() - 3 + k] - c.src[2 + k] - p[3 + k]);
  }
  return true;
}

int entry(bool with_residual, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  try {
    const int n_in = with_residual ? 3 : 2;
    bool ok = nparam == n_in + 1 && ndims[0] == 5 && ndims[1] == 1 && shapes[1][0] == 7 &&
              std::strcmp(dtypes[1], "int64") == 0 && ndims[n_in] == 5;
    if (ok && with_residual) ok = ndims[2] == 5 && std::memcmp(shapes[2], shapes[n_in], 5 * sizeof(int64_t)) == 0;
    if (!ok) {
      std::fprintf(stderr, "conv3d_int8: unexpected inputs\n");
      return 1;
    }
    const int64_t *p = static_cast<const int64_t *>(params[1]);
    Call c;
    dt want[3], got[3] = {dt::undef, dt::undef, dt::undef};
    if (!make_call(shapes[0], shapes[n_in], p, with_residual, c, want)) {
      std::fprintf(stderr, "conv3d_int8: unknown weight handle %lld\n", static_cast<long long>(p[6]));
      return 3;
    }
    ok = type_of(dtypes[0], got[0]) && type_of(dtypes[n_in], got[1]) && got[0] == want[0] && got[1] == want[1];
    if (ok && with_residual) ok = type_of(dtypes[2], got[2]) && got[2] == want[2];
    if (!ok) {
      std::fprintf(stderr, "conv3d_int8: tensors %s -> %s, the unit wants %s -> %s (residual %s)\n", dtypes[0],
                   dtypes[n_in], type_name(want[0]), type_name(want[1]), type_name(want[2]));
      return 1;
    }
    run(c, params[0], with_residual ? params[2] : nullptr, params[n_in]);
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "conv3d_int8: %s\n", e.what());
    return 2;
  }
}

}  // namespace

namespace conv3d {
bool int8_unit_info(int64_t handle, Int8UnitInfo &info) {
  std::lock_guard<std::mutex> lock(runtime().mu);
  auto it = registry().find(handle);
  if (it == registry().end()) return false;
  const Unit &u = *it->second;
  auto code = [](dt t) { return t == dt::f32 ? 0 : t == dt::u8 ? 1 : t == dt::s8 ? 2 : -1; };
  info.in = code(u.in_dt);
  info.out = code(u.out_dt);
  info.res = code(u.res_dt);
  info.out_channels = int64_t(u.w_scale.size());
  for (int k = 0; k < 3; ++k) info.kernel[k] = u.dims[u.dims.size() - 3 + k];
  return true;
}

void run_int8_unit(const int64_t *x_shape, const int64_t *y_shape, const int64_t *params, void *x, void *residual,
                   void *y) {
  Call c;
  dt types[3];
  if (!make_call(x_shape, y_shape, params, residual != nullptr, c, types))
    throw std::runtime_error("unknown weight handle " + std::to_string(params[6]));
  run(c, x, residual, y);
}
}  // namespace conv3d

#define AOT_ARGS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *
#define AOT_PASS nparam, params, ndims, shapes, dtypes

extern "C" {
int conv3d_int8(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry(false, AOT_PASS); }); }
int conv3d_int8_add(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry(true, AOT_PASS); }); }

// Copies a unit: s8 weights (out, in / groups, kd, kh, kw) (dims[5]), their float32 scales and the bias (out
// values each); types: 0 float32, 1 uint8, 2 int8 (res_type -1: no residual); scales[3]: in, out, residual.
// Returns the handle, 0 on failure (said on stderr).
int64_t conv3d_int8_prepare(const int8_t *w, const int64_t *dims, const float *w_scale, const float *bias,
                            int64_t groups, int in_type, int out_type, int res_type, const float *scales, int relu) {
  try {
    if (groups < 1 || dims[0] % groups != 0) throw std::runtime_error("out channels not divisible by groups");
    auto u = std::make_unique<Unit>();
    u->dims.assign(dims, dims + 5);
    if (groups > 1) {
      u->dims[0] = dims[0] / groups;
      u->dims.insert(u->dims.begin(), groups);
    }
    size_t n = 1;
    for (auto d : u->dims) n *= size_t(d);
    u->plain_w.assign(w, w + n);
    u->w_scale.assign(w_scale, w_scale + dims[0]);
    u->bias.assign(bias, bias + dims[0]);
    u->in_dt = type_of_code(in_type);
    u->out_dt = type_of_code(out_type);
    u->res_dt = type_of_code(res_type);
    if (u->in_dt == dt::undef || u->out_dt == dt::undef) throw std::runtime_error("unknown tensor type code");
    u->in_scale = scales[0];
    u->out_scale = scales[1];
    u->res_scale = scales[2];
    u->relu = relu != 0;
    if (foldable(u->dims, u->in_dt)) fold_weights(*u);
    int64_t handle = g_next_handle++;
    std::lock_guard<std::mutex> lock(runtime().mu);
    registry()[handle] = std::move(u);
    return handle;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "conv3d_int8_prepare: %s\n", e.what());
    return 0;
  }
}

void conv3d_int8_release(int64_t handle) {
  std::lock_guard<std::mutex> lock(runtime().mu);
  registry().erase(handle);
}

// Makes (and caches) the plan a call of `handle` on an input of shape x[5] with an output of shape y[5] would
// use (params = int64[7] as the entry points', p[6] overridden by `handle`). Returns 0 when oneDNN accepts it
// (`why` then names the implementation oneDNN chose), 1 when oneDNN refuses it, 2 for an unknown handle or
// another error; `why` (why_len bytes) says why.
int conv3d_int8_probe(int64_t handle, const int64_t *x, const int64_t *y, const int64_t *params, int residual,
                      char *why, int64_t why_len) {
  auto say = [&](const std::string &text, int code) {
    if (why_len > 0) std::snprintf(why, size_t(why_len), "%s", text.c_str());
    return code;
  };
  try {
    int64_t p[7];
    std::memcpy(p, params, sizeof p);
    p[6] = handle;
    Call c;
    dt types[3];
    if (!make_call(x, y, p, residual != 0, c, types)) return say("unknown weight handle " + std::to_string(handle), 2);
    std::lock_guard<std::mutex> lock(runtime().mu);
    return say(plan_of(c).second->impl, 0);
  } catch (const dnnl::error &e) {
    std::string what(e.what());
    return say(what.substr(0, what.find(". ")), 1);
  } catch (const std::exception &e) {
    return say(e.what(), 2);
  }
}

long conv3d_int8_calls() { return g_calls.load(); }
long conv3d_int8_handles() {
  std::lock_guard<std::mutex> lock(runtime().mu);
  return long(registry().size());
}
long conv3d_int8_plan_cache_entries() {
  std::lock_guard<std::mutex> lock(runtime().mu);
  return long(g_plans.size());
}
}
