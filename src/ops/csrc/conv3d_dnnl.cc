// Fast float32 3-D convolution for MindSpore's CPU backend (Custom op, func_type="aot").
//
// MindSpore's own Conv3D hands oneDNN fixed plain layouts, so oneDNN falls back to its reference
// kernel. Here the same bundled oneDNN (mindspore/lib/libdnnl.so.3, v3.10, THREADPOOL runtime) gets
// format_tag::any, picks its blocked JIT kernels, and we reorder plain NCDHW/OIDHW tensors in and
// out, as PyTorch does. Built against the oneDNN 3.9 headers (src/ops/build.py says why).
//
// Every entry point has MindSpore's aot signature. The last input is an int64[9] tensor:
// stride(3), padding(3), dilation(3) -- a tensor rather than attributes, so one symbol serves
// every convolution. Output shapes come from MindSpore's infer (Python side).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnnl_runtime.h"
#include "executor.h"
#include "stem_bwd_weights.h"

namespace {

using namespace conv3d;

// One primitive argument: the caller's plain tensor and the layout the primitive wants.
struct Arg {
  int id;
  bool output;
  memory::desc user, prim;
  bool same;
  dnnl::reorder to_prim, to_user;
};

struct Plan {
  dnnl::primitive prim;
  std::vector<Arg> args;
  memory::desc scratch;
  int bf16_ok = -1;  // a BF16 plan's check against FP32 (see run): -1 not yet made, 0 failed, 1 passed
};

struct Geometry {
  memory::dims src, wei, dst, strides, dil, pad_l, pad_r;  // wei: OIDHW, or GOIDHW when grouped
  bool bf16 = false;  // BF16 inputs, FP32 accumulation and output (mixed-precision training)
};

// The parameter tensor's optional 10th element: 1 = BF16 compute (src/ops/fast_conv3d.py, PRECISION_CODES);
// its optional 11th: the number of groups (ResNeXt), whose weights (O, I / groups, kd, kh, kw) are oneDNN's
// GOIDHW in the same bytes.
bool bf16_requested(const int64_t *p, int64_t nparams) { return nparams > 9 && p[9] == 1; }
int64_t groups_of(const int64_t *p, int64_t nparams) { return nparams > 10 && p[10] > 1 ? p[10] : 1; }

Geometry geometry(int64_t **shapes, int i_src, int i_wei, int i_dst, const int64_t *p, int64_t nparams) {
  Geometry g;
  g.src.assign(shapes[i_src], shapes[i_src] + 5);
  g.wei.assign(shapes[i_wei], shapes[i_wei] + 5);
  g.dst.assign(shapes[i_dst], shapes[i_dst] + 5);
  for (int k = 0; k < 3; ++k) {
    g.strides.push_back(p[k]);
    g.pad_l.push_back(p[3 + k]);
    g.dil.push_back(p[6 + k] - 1);  // oneDNN counts dilation from 0
    // right padding implied by the output size (equals pad_l for PyTorch-style symmetric padding)
    int64_t span = (g.wei[2 + k] - 1) * p[6 + k] + 1;
    g.pad_r.push_back((g.dst[2 + k] - 1) * p[k] + span - g.src[2 + k] - p[3 + k]);
  }
  g.bf16 = bf16_requested(p, nparams);
  if (int64_t groups = groups_of(p, nparams); groups > 1) {
    if (g.wei[0] % groups != 0) throw std::runtime_error("output channels not divisible by the groups");
    g.wei[0] /= groups;
    g.wei.insert(g.wei.begin(), groups);
  }
  return g;
}

std::string key_of(char kind, const Geometry &g) {
  std::string k(1, kind);
  for (const auto *v : {&g.src, &g.wei, &g.dst, &g.strides, &g.dil, &g.pad_l, &g.pad_r})
    for (auto x : *v) k += "," + std::to_string(x);
  return g.bf16 ? k + ",bf16" : k;
}

dnnl::primitive_attr attr_user_scratch() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

// Activation layout per pass, measured on AVX2 (bench/investigations/onednn_passes.py):
// FP32 backward-weights on channels-last, where oneDNN's GEMM kernel (its only non-reference one for
// 3x3x3) is 1.3-1.7x faster than on plain NCDHW; forward and backward-data on the blocked JIT kernels
// (format any), which channels-last did not beat inside the network. BF16 (Zen 4, avx512_bf16): every
// pass on the blocked jit_bf16 kernels; channels-last for backward-data (brgemm) or all passes was no
// faster over a whole r3d18 step (docs/bf16.md).
memory::desc act(const memory::dims &d, char kind, bool bf16, dt type) {
  return (!bf16 && kind == 'w') ? memory::desc(d, type, tag::ndhwc) : any(d, type);
}

// The data types of one pass: BF16 training reads BF16 (converted in the input reorders) and
// accumulates and writes FP32, so the MindSpore graph around the op stays FP32.
struct Types {
  dt in, out;
};
Types types(const Geometry &g) { return g.bf16 ? Types{dt::bf16, dt::f32} : Types{dt::f32, dt::f32}; }

dnnl::convolution_forward::primitive_desc fwd_pd(char kind, const Geometry &g) {
  auto &rt = runtime();
  Types t = types(g);
  dt dst_type = kind == 'f' ? t.out : t.in;  // a backward pass's hint: the forward it mirrors
  return dnnl::convolution_forward::primitive_desc(
      rt.eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct,
      act(g.src, kind, g.bf16, t.in), any(g.wei, t.in), act(g.dst, kind, g.bf16, dst_type), g.strides, g.dil,
      g.pad_l, g.pad_r, attr_user_scratch());
}

Arg make_arg(int id, bool output, const memory::dims &dims, const memory::desc &prim) {
  auto &rt = runtime();
  Arg a{id, output, plain(dims), prim, false, {}, {}};
  a.same = (a.user == a.prim);
  if (!a.same) {
    if (output)
      a.to_user = dnnl::reorder(dnnl::reorder::primitive_desc(rt.eng, a.prim, rt.eng, a.user));
    else
      a.to_prim = dnnl::reorder(dnnl::reorder::primitive_desc(rt.eng, a.user, rt.eng, a.prim));
  }
  return a;
}

// kind: 'f' forward (src, wei -> dst), 'd' backward data (diff_dst, wei -> diff_src),
// 'w' backward weights (src, diff_dst -> diff_wei). Arguments are listed in the call's order.
std::unique_ptr<Plan> make_plan(char kind, const Geometry &g) {
  auto &rt = runtime();
  auto plan = std::make_unique<Plan>();
  auto fpd = fwd_pd(kind, g);
  Types t = types(g);
  if (kind == 'f') {
    plan->prim = dnnl::convolution_forward(fpd);
    plan->args = {make_arg(DNNL_ARG_SRC, false, g.src, fpd.src_desc()),
                  make_arg(DNNL_ARG_WEIGHTS, false, g.wei, fpd.weights_desc()),
                  make_arg(DNNL_ARG_DST, true, g.dst, fpd.dst_desc())};
    plan->scratch = fpd.scratchpad_desc();
  } else if (kind == 'd') {
    dnnl::convolution_backward_data::primitive_desc pd(
        rt.eng, dnnl::algorithm::convolution_direct, act(g.src, kind, g.bf16, t.out), any(g.wei, t.in),
        act(g.dst, kind, g.bf16, t.in), g.strides, g.dil, g.pad_l, g.pad_r, fpd, attr_user_scratch());
    plan->prim = dnnl::convolution_backward_data(pd);
    plan->args = {make_arg(DNNL_ARG_DIFF_DST, false, g.dst, pd.diff_dst_desc()),
                  make_arg(DNNL_ARG_WEIGHTS, false, g.wei, pd.weights_desc()),
                  make_arg(DNNL_ARG_DIFF_SRC, true, g.src, pd.diff_src_desc())};
    plan->scratch = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        rt.eng, dnnl::algorithm::convolution_direct, act(g.src, kind, g.bf16, t.in), any(g.wei, t.out),
        act(g.dst, kind, g.bf16, t.in), g.strides, g.dil, g.pad_l, g.pad_r, fpd, attr_user_scratch());
    plan->prim = dnnl::convolution_backward_weights(pd);
    plan->args = {make_arg(DNNL_ARG_SRC, false, g.src, pd.src_desc()),
                  make_arg(DNNL_ARG_DIFF_DST, false, g.dst, pd.diff_dst_desc()),
                  make_arg(DNNL_ARG_DIFF_WEIGHTS, true, g.wei, pd.diff_weights_desc())};
    plan->scratch = pd.scratchpad_desc();
  }
  return plan;
}

// Calls per kind (forward, backward data, backward weights, and of those the stem's own kernel):
// lets tests see which passes ran.
std::atomic<long> g_calls[4];
PlanCache<Plan> g_plans;  // guarded by runtime().mu

// The cached plan of one pass; the caller holds runtime().mu. The reference stays valid until the next call.
Plan &plan_for(char kind, const Geometry &g) {
  return g_plans.get(key_of(kind, g), [&] { return make_plan(kind, g); });
}

Geometry fp32_of(Geometry g) {
  g.bf16 = false;
  return g;
}

// Runs one pass on the caller's plain float32 tensors; the caller holds runtime().mu.
void execute(Plan &plan, const std::vector<void *> &ptrs) {
  auto &rt = runtime();

  size_t total = align_up(plan.scratch.get_size());
  for (auto &a : plan.args)
    if (!a.same) total += align_up(a.prim.get_size());
  char *base = rt.reserve(total);
  size_t off = 0;
  std::unordered_map<int, memory> exec;
  exec[DNNL_ARG_SCRATCHPAD] = memory(plan.scratch, rt.eng, base);
  off += align_up(plan.scratch.get_size());
  std::vector<std::pair<memory, memory>> outputs;  // (blocked, user) pairs to copy back
  for (size_t i = 0; i < plan.args.size(); ++i) {
    Arg &a = plan.args[i];
    memory user(a.user, rt.eng, ptrs[i]);
    if (a.same) {
      exec[a.id] = user;
      continue;
    }
    memory blocked(a.prim, rt.eng, base + off);
    off += align_up(a.prim.get_size());
    if (a.output)
      outputs.emplace_back(blocked, user);
    else
      a.to_prim.execute(rt.strm, user, blocked);
    exec[a.id] = blocked;
  }
  plan.prim.execute(rt.strm, exec);
  for (size_t i = 0, j = 0; i < plan.args.size(); ++i)
    if (plan.args[i].output && !plan.args[i].same) {
      plan.args[i].to_user.execute(rt.strm, outputs[j].first, outputs[j].second);
      ++j;
    }
  rt.strm.wait();
}

int64_t elements(const memory::dims &d) {
  int64_t n = 1;
  for (auto x : d) n *= x;
  return n;
}

// oneDNN 3.10's jit_bf16 backward-weights kernel returns wrong weights for some geometries (on Zen 4: a
// 3-deep kernel with padding 1 over a depth of 2, as in ResNet layer3 at 16 frames: relative error ~1).
// So every BF16 plan is checked against FP32 on pseudo-random data when it is made, and a geometry
// whose BF16 result is off by more than kBf16CheckTolerance runs in FP32 (said on stderr, counted by
// conv3d_bf16_fallbacks; again only if the plan cache evicted and remade the plan). A correct BF16 pass
// is off by ~3e-3 (8-bit mantissa inputs, FP32 sums).
constexpr double kBf16CheckTolerance = 0.05;
std::atomic<long> g_bf16_fallbacks{0};

bool bf16_matches_fp32(char kind, const Geometry &g) {
  // inputs and output of each kind, in the call's order (see entry)
  const memory::dims *dims[3] = {&g.src, &g.wei, &g.dst};
  if (kind == 'd') dims[0] = &g.dst, dims[2] = &g.src;
  if (kind == 'w') dims[1] = &g.dst, dims[2] = &g.wei;
  std::vector<float> in[2], out[2];
  uint32_t state = 12345u;
  for (int i = 0; i < 2; ++i) {
    in[i].resize(size_t(elements(*dims[i])));
    for (auto &v : in[i]) {
      state = state * 1664525u + 1013904223u;
      v = float(state >> 8) / float(1u << 24) * 2.0f - 1.0f;
    }
  }
  for (int i = 0; i < 2; ++i) {
    out[i].assign(size_t(elements(*dims[2])), 0.0f);
    execute(plan_for(kind, i ? g : fp32_of(g)), {in[0].data(), in[1].data(), out[i].data()});
  }
  double diff = 0, scale = 1e-30;
  for (size_t k = 0; k < out[0].size(); ++k) {
    diff = std::max(diff, double(std::fabs(out[1][k] - out[0][k])));
    scale = std::max(scale, double(std::fabs(out[0][k])));
  }
  if (diff / scale <= kBf16CheckTolerance) return true;
  g_bf16_fallbacks++;
  const size_t k = g.wei.size() - 3;  // the kernel's dims (GOIDHW or OIDHW)
  std::fprintf(stderr, "conv3d_dnnl: oneDNN's BF16 %s of a %lldx%lldx%lld convolution %lld->%lld channels over "
               "%lldx%lldx%lld (batch %lld) is off by %.2g of the FP32 result: it runs in FP32\n",
               kind == 'f' ? "forward" : kind == 'd' ? "backward-data" : "backward-weights",
               (long long)g.wei[k], (long long)g.wei[k + 1], (long long)g.wei[k + 2], (long long)g.src[1],
               (long long)g.dst[1], (long long)g.src[2], (long long)g.src[3], (long long)g.src[4],
               (long long)g.src[0], diff / scale);
  return false;
}

void run(char kind, const Geometry &g, const std::vector<void *> &ptrs) {
  auto &rt = runtime();
  g_calls[kind == 'f' ? 0 : kind == 'd' ? 1 : 2]++;
  std::lock_guard<std::mutex> lock(rt.mu);
  Plan *plan = &plan_for(kind, g);
  if (g.bf16 && plan->bf16_ok < 0) {
    const bool ok = bf16_matches_fp32(kind, g);
    plan = &plan_for(kind, g);  // the check's own plan_for calls end the old reference's validity
    plan->bf16_ok = ok;
  }
  if (g.bf16 && !plan->bf16_ok) plan = &plan_for(kind, fp32_of(g));
  execute(*plan, ptrs);
}

// Inputs: forward (x, w, params), backward data (dy, w, params, x), backward weights
// (x, dy, params, w); the output comes last. The trailing x / w of the backward ops only carry the
// output's shape into MindSpore's shape inference.
bool valid(char kind, int nparam, int *ndims, const char **dtypes) {
  if (nparam != (kind == 'f' ? 4 : 5)) return false;
  for (int i = 0; i < nparam; ++i) {
    bool ok = (i == 2) ? (ndims[i] == 1 && std::strcmp(dtypes[i], "int64") == 0)
                       : (ndims[i] == 5 && std::strcmp(dtypes[i], "float32") == 0);
    if (!ok) return false;
  }
  return true;
}

int entry(char kind, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  try {
    if (!valid(kind, nparam, ndims, dtypes)) {
      std::fprintf(stderr, "conv3d_dnnl (%c): unexpected inputs\n", kind);
      return 1;
    }
    const int64_t *p = static_cast<const int64_t *>(params[2]);
    int out = nparam - 1;
    if (kind == 'f') {  // x, w, p -> y
      Geometry g = geometry(shapes, 0, 1, out, p, shapes[2][0]);
      run('f', g, {params[0], params[1], params[out]});
    } else if (kind == 'd') {  // dy, w, p, x -> dx
      Geometry g = geometry(shapes, out, 1, 0, p, shapes[2][0]);
      run('d', g, {params[0], params[1], params[out]});
    } else if (!bf16_requested(p, shapes[2][0]) &&  // BF16: oneDNN's jit_bf16 kernel beats our FP32 one
               groups_of(p, shapes[2][0]) == 1 && stem_bwd_weights_applies(shapes[0], shapes[1], shapes[out], p)) {  // x, dy, p, w -> dw
      g_calls[2]++;
      g_calls[3]++;
      stem_bwd_weights(shapes[0], shapes[1], shapes[out], p, static_cast<const float *>(params[0]),
                       static_cast<const float *>(params[1]), static_cast<float *>(params[out]));
    } else {
      Geometry g = geometry(shapes, 0, out, 1, p, shapes[2][0]);
      run('w', g, {params[0], params[1], params[out]});
    }
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "conv3d_dnnl (%c): %s\n", kind, e.what());
    return 2;
  }
}

}  // namespace

#define AOT_ARGS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *
#define AOT_PASS nparam, params, ndims, shapes, dtypes

// MindSpore keys a Custom op's bprop by its `func` string, so each bprop variant needs its own
// symbol: conv3d_fwd (dx and dw) and conv3d_fwd_nodx (dw only, for a conv reading the network input).
extern "C" {
int conv3d_fwd(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry('f', AOT_PASS); }); }
int conv3d_fwd_nodx(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry('f', AOT_PASS); }); }
int conv3d_bwd_data(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry('d', AOT_PASS); }); }
int conv3d_bwd_weights(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry('w', AOT_PASS); }); }
int conv3d_dnnl_abi_version() { return 1; }
// The oneDNN release this library was linked with (major*10000+minor*100+patch): the loader refuses
// the library in a process whose oneDNN reports another one.
int conv3d_dnnl_linked_version() { return CONV3D_LINKED_DNNL; }
long conv3d_plan_cache_capacity() { return long(kPlanCacheCapacity); }
long conv3d_plan_cache_entries() {
  std::lock_guard<std::mutex> lock(runtime().mu);
  return long(g_plans.size());
}
long conv3d_dnnl_calls(int kind) { return (kind >= 0 && kind < 4) ? g_calls[kind].load() : -1; }
// BF16 passes found wrong by their one-time check against FP32, which therefore run in FP32 (see run).
long conv3d_bf16_fallbacks() { return g_bf16_fallbacks.load(); }
}
