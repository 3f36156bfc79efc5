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
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "dnnl_runtime.h"
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
};

struct Geometry {
  memory::dims src, wei, dst, strides, dil, pad_l, pad_r;
};

Geometry geometry(int64_t **shapes, int i_src, int i_wei, int i_dst, const int64_t *p) {
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
  return g;
}

std::string key_of(char kind, const Geometry &g) {
  std::string k(1, kind);
  for (const auto *v : {&g.src, &g.wei, &g.dst, &g.strides, &g.dil, &g.pad_l, &g.pad_r})
    for (auto x : *v) k += "," + std::to_string(x);
  return k;
}

dnnl::primitive_attr attr_user_scratch() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

// Activation layout per pass, measured on AVX2 (bench/investigations/onednn_passes.py):
// backward-weights on channels-last, where oneDNN's GEMM kernel (its only non-reference one for 3x3x3)
// is 1.3-1.7x faster than on plain NCDHW; forward and backward-data on the blocked JIT kernels
// (format any), which channels-last did not beat inside the network.
memory::desc act(const memory::dims &d, char kind) {
  return kind == 'w' ? memory::desc(d, dt::f32, tag::ndhwc) : any(d);
}

dnnl::convolution_forward::primitive_desc fwd_pd(char kind, const Geometry &g) {
  auto &rt = runtime();
  return dnnl::convolution_forward::primitive_desc(
      rt.eng, dnnl::prop_kind::forward_training, dnnl::algorithm::convolution_direct, act(g.src, kind),
      any(g.wei), act(g.dst, kind), g.strides, g.dil, g.pad_l, g.pad_r, attr_user_scratch());
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
  auto src = act(g.src, kind), dst = act(g.dst, kind);
  if (kind == 'f') {
    plan->prim = dnnl::convolution_forward(fpd);
    plan->args = {make_arg(DNNL_ARG_SRC, false, g.src, fpd.src_desc()),
                  make_arg(DNNL_ARG_WEIGHTS, false, g.wei, fpd.weights_desc()),
                  make_arg(DNNL_ARG_DST, true, g.dst, fpd.dst_desc())};
    plan->scratch = fpd.scratchpad_desc();
  } else if (kind == 'd') {
    dnnl::convolution_backward_data::primitive_desc pd(
        rt.eng, dnnl::algorithm::convolution_direct, src, any(g.wei), dst, g.strides,
        g.dil, g.pad_l, g.pad_r, fpd, attr_user_scratch());
    plan->prim = dnnl::convolution_backward_data(pd);
    plan->args = {make_arg(DNNL_ARG_DIFF_DST, false, g.dst, pd.diff_dst_desc()),
                  make_arg(DNNL_ARG_WEIGHTS, false, g.wei, pd.weights_desc()),
                  make_arg(DNNL_ARG_DIFF_SRC, true, g.src, pd.diff_src_desc())};
    plan->scratch = pd.scratchpad_desc();
  } else {
    dnnl::convolution_backward_weights::primitive_desc pd(
        rt.eng, dnnl::algorithm::convolution_direct, src, any(g.wei), dst, g.strides,
        g.dil, g.pad_l, g.pad_r, fpd, attr_user_scratch());
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

void run(char kind, const Geometry &g, const std::vector<void *> &ptrs) {
  auto &rt = runtime();
  g_calls[kind == 'f' ? 0 : kind == 'd' ? 1 : 2]++;
  std::lock_guard<std::mutex> lock(rt.mu);
  Plan &plan = g_plans.get(key_of(kind, g), [&] { return make_plan(kind, g); });

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
      Geometry g = geometry(shapes, 0, 1, out, p);
      run('f', g, {params[0], params[1], params[out]});
    } else if (kind == 'd') {  // dy, w, p, x -> dx
      Geometry g = geometry(shapes, out, 1, 0, p);
      run('d', g, {params[0], params[1], params[out]});
    } else if (stem_bwd_weights_applies(shapes[0], shapes[1], shapes[out], p)) {  // x, dy, p, w -> dw
      g_calls[2]++;
      g_calls[3]++;
      stem_bwd_weights(shapes[0], shapes[1], shapes[out], p, static_cast<const float *>(params[0]),
                       static_cast<const float *>(params[1]), static_cast<float *>(params[out]));
    } else {
      Geometry g = geometry(shapes, 0, out, 1, p);
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
int conv3d_fwd(AOT_ARGS) { return entry('f', AOT_PASS); }
int conv3d_fwd_nodx(AOT_ARGS) { return entry('f', AOT_PASS); }
int conv3d_bwd_data(AOT_ARGS) { return entry('d', AOT_PASS); }
int conv3d_bwd_weights(AOT_ARGS) { return entry('w', AOT_PASS); }
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
}
