// Inference-only fused 3-D convolution: y = [relu](conv(x, w) + b [+ residual]), no bprop.
//
// Precision follows the tensors: float32 in and out runs in float32; a bfloat16 input or output
// (BF16 inference, on CPUs with native BF16) runs the kernel on bfloat16 input and weights with
// float32 accumulation and a float32 bias, the post-ops on the float32 accumulator, and writes the
// output's type. So a network whose layers hand each other bfloat16 tensors never converts its
// activations back to float32 between layers; its first layer may take float32 (converted in the
// reorder to the kernel's layout that runs anyway) and its head reads bfloat16.
//
// Layout: plain NCDHW by default. A handle may declare its input and/or output channels-last
// (NDHWC, tensor shape [N, D, H, W, C]; conv3d_infer_set_layout): the layout oneDNN's BF16 brgemm
// kernels use, so a BF16 network passing NDHWC between layers runs no reorder between them.
//
// The weights (BatchNorm already folded in, plus the folded bias) are handed over once through
// conv3d_infer_prepare_grouped() and live here under a handle; the first call at a geometry reorders them
// into the blocked layout the primitive chose and keeps that copy, so a call only moves
// activations. The residual add and the ReLU run inside the convolution as oneDNN post-ops
// (sum, eltwise_relu): the residual is written into the destination buffer, the kernel adds its
// result to it, then applies the ReLU, before the one reorder back to plain NCDHW.
//
// Grouped convolutions (ResNeXt) run as one oneDNN grouped primitive: the handle's weights are then
// oneDNN's 6-D GOIDHW, the same bytes as the caller's (out, in / groups, kd, kh, kw) array.
//
// aot entry points: conv3d_infer (x, params) -> y and conv3d_infer_add (x, params, residual) -> y,
// params = int64[11]: stride(3), padding(3), dilation(3), weight handle, relu flag.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dnnl_runtime.h"

namespace {

using namespace conv3d;

struct Weights {
  memory::dims dims;        // OIDHW, or GOIDHW for a grouped convolution (oneDNN's weights dims)
  std::vector<float> plain_w, bias;  // plain_w kept while only bfloat16 blocked copies exist
  bool src_cl = false, dst_cl = false;  // input / output tensors channels-last (NDHWC)
  // blocked copies, one per weights layout a primitive asked for
  std::vector<std::pair<memory::desc, memory>> blocked;  // std::vector: entries are few
};

std::map<int64_t, std::unique_ptr<Weights>> &registry() {
  static std::map<int64_t, std::unique_ptr<Weights>> r;
  return r;
}
std::atomic<int64_t> g_next_handle{1};
std::atomic<long> g_infer_calls{0};

struct InferPlan {
  dnnl::convolution_forward prim;
  memory::desc src_user, src_prim, dst_user, dst_prim, wei_prim, bias, scratch;
  bool src_same = false, dst_same = false;
  dnnl::reorder src_in, dst_out, res_in;
};

struct Call {
  memory::dims src, dst, strides, dil, pad_l, pad_r;
  int64_t handle = 0;
  bool relu = false, sum = false;
  dt src_dt = dt::f32, dst_dt = dt::f32;  // the tensors' types
  bool src_cl = false, dst_cl = false;    // the tensors' layouts: NDHWC, else NCDHW
  dt compute() const { return src_dt == dt::bf16 || dst_dt == dt::bf16 ? dt::bf16 : dt::f32; }
};

std::string key_of(const Call &c, const memory::dims &wei) {
  std::string k = c.sum ? "s" : "n";
  k += c.relu ? "r" : "l";
  k += c.src_dt == dt::bf16 ? "B" : "F";
  k += c.dst_dt == dt::bf16 ? "B" : "F";
  k += c.src_cl ? "c" : "p";
  k += c.dst_cl ? "c" : "p";
  for (const auto *v : {&c.src, &wei, &c.dst, &c.strides, &c.dil, &c.pad_l, &c.pad_r})
    for (auto x : *v) k += "," + std::to_string(x);
  return k;
}

std::unique_ptr<InferPlan> make_plan(const Call &c, const memory::dims &wei) {
  auto &rt = runtime();
  dnnl::post_ops po;
  if (c.sum) po.append_sum(1.f);
  if (c.relu) po.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
  // float32: forward_training although nothing trains: with it oneDNN 3.10 picks the blocked JIT
  // kernels the training op uses; forward_inference picks its brgemm kernels with channels-last
  // layouts, which took 1.35x the time here (AVX2, r3d18 batch 8). Training only adds a workspace to
  // primitives that need one; a convolution needs none. bfloat16: the other way round, the brgemm
  // kernels (forward_inference) took 0.65x the time of the blocked jit_bf16 ones (r3d50 batch 1,
  // Zen 4 with avx512_bf16), which were slower than float32 there.
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  attr.set_post_ops(po);
  memory::desc bias({wei.size() == 6 ? wei[0] * wei[1] : wei[0]}, dt::f32, tag::a);
  const dt compute = c.compute();
  const auto prop = compute == dt::bf16 ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
  dnnl::convolution_forward::primitive_desc pd(
      rt.eng, prop, dnnl::algorithm::convolution_direct, any(c.src, compute),
      any(wei, compute), bias, any(c.dst, c.dst_dt), c.strides, c.dil, c.pad_l, c.pad_r, attr);
  auto plan = std::make_unique<InferPlan>();
  plan->prim = dnnl::convolution_forward(pd);
  plan->src_user = c.src_cl ? memory::desc(c.src, c.src_dt, tag::ndhwc) : plain(c.src, c.src_dt);
  plan->dst_user = c.dst_cl ? memory::desc(c.dst, c.dst_dt, tag::ndhwc) : plain(c.dst, c.dst_dt);
  plan->src_prim = pd.src_desc();
  plan->dst_prim = pd.dst_desc();
  plan->wei_prim = pd.weights_desc();
  plan->bias = pd.bias_desc();
  plan->scratch = pd.scratchpad_desc();
  plan->src_same = plan->src_user == plan->src_prim;
  plan->dst_same = plan->dst_user == plan->dst_prim;
  if (!plan->src_same)
    plan->src_in = dnnl::reorder(dnnl::reorder::primitive_desc(rt.eng, plan->src_user, rt.eng, plan->src_prim));
  if (!plan->dst_same) {
    plan->dst_out = dnnl::reorder(dnnl::reorder::primitive_desc(rt.eng, plan->dst_prim, rt.eng, plan->dst_user));
    // the residual goes plain -> blocked destination before the kernel runs (sum post-op)
    if (c.sum)
      plan->res_in = dnnl::reorder(dnnl::reorder::primitive_desc(rt.eng, plan->dst_user, rt.eng, plan->dst_prim));
  }
  return plan;
}

PlanCache<InferPlan> g_infer_plans;  // guarded by runtime().mu

// The plain copy is dropped once a float32 blocked one exists; a later layout is reordered from that
// one. A bfloat16 copy is never the source of another (it lost precision), so the plain copy stays
// until a float32 one exists.
memory &weights_for(Weights &w, const memory::desc &want) {
  for (auto &entry : w.blocked)
    if (entry.first == want) return entry.second;
  auto &rt = runtime();
  const std::pair<memory::desc, memory> *f32 = nullptr;
  for (auto &entry : w.blocked)
    if (entry.first.get_data_type() == dt::f32) f32 = &entry;
  memory from = f32 ? f32->second : memory(plain(w.dims), rt.eng, w.plain_w.data());
  memory blocked(want, rt.eng);  // owns its buffer
  dnnl::reorder(from, blocked).execute(rt.strm, from, blocked);
  rt.strm.wait();
  w.blocked.emplace_back(want, blocked);
  if (want.get_data_type() == dt::f32) std::vector<float>().swap(w.plain_w);
  return w.blocked.back().second;
}

void run(const Call &c, void *x, void *residual, void *y) {
  auto &rt = runtime();
  g_infer_calls++;
  std::lock_guard<std::mutex> lock(rt.mu);
  auto wit = registry().find(c.handle);
  if (wit == registry().end()) throw std::runtime_error("unknown weight handle " + std::to_string(c.handle));
  Weights &w = *wit->second;
  InferPlan &plan = g_infer_plans.get(key_of(c, w.dims), [&] { return make_plan(c, w.dims); });
  memory &wei = weights_for(w, plan.wei_prim);

  size_t total = align_up(plan.scratch.get_size());
  if (!plan.src_same) total += align_up(plan.src_prim.get_size());
  if (!plan.dst_same) total += align_up(plan.dst_prim.get_size());
  char *base = rt.reserve(total);
  size_t off = align_up(plan.scratch.get_size());
  memory scratch(plan.scratch, rt.eng, base);
  memory src_user(plan.src_user, rt.eng, x), dst_user(plan.dst_user, rt.eng, y);
  memory src = src_user, dst = dst_user;
  if (!plan.src_same) {
    src = memory(plan.src_prim, rt.eng, base + off);
    off += align_up(plan.src_prim.get_size());
    plan.src_in.execute(rt.strm, src_user, src);
  }
  if (!plan.dst_same) dst = memory(plan.dst_prim, rt.eng, base + off);
  if (c.sum) {
    if (plan.dst_same) {
      std::memcpy(y, residual, plan.dst_user.get_size());
    } else {
      memory res_user(plan.dst_user, rt.eng, residual);
      plan.res_in.execute(rt.strm, res_user, dst);
    }
  }
  memory bias(plan.bias, rt.eng, w.bias.data());
  plan.prim.execute(rt.strm, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_BIAS, bias},
                              {DNNL_ARG_DST, dst}, {DNNL_ARG_SCRATCHPAD, scratch}});
  if (!plan.dst_same) plan.dst_out.execute(rt.strm, dst, dst_user);
  rt.strm.wait();
}

// float32 -> f32, bfloat16 -> bf16; false for any other type
bool activation_type(const char *name, dt &type) {
  if (std::strcmp(name, "float32") == 0) type = dt::f32;
  else if (std::strcmp(name, "bfloat16") == 0) type = dt::bf16;
  else return false;
  return true;
}

// x: float32 or bfloat16 5-D, params: int64[11], residual (optional): 5-D of the output's shape and type.
int entry(bool with_residual, int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes) {
  try {
    int n_in = with_residual ? 3 : 2;
    Call c;
    bool ok = nparam == n_in + 1 && ndims[0] == 5 && activation_type(dtypes[0], c.src_dt) &&
              ndims[1] == 1 && shapes[1][0] == 11 && std::strcmp(dtypes[1], "int64") == 0 &&
              ndims[n_in] == 5 && activation_type(dtypes[n_in], c.dst_dt);
    if (ok && with_residual)
      ok = ndims[2] == 5 && std::strcmp(dtypes[2], dtypes[n_in]) == 0 &&
           std::memcmp(shapes[2], shapes[n_in], 5 * sizeof(int64_t)) == 0;
    if (!ok) {
      std::fprintf(stderr, "conv3d_infer: unexpected inputs\n");
      return 1;
    }
    const int64_t *p = static_cast<const int64_t *>(params[1]);
    c.handle = p[9];
    c.relu = p[10] != 0;
    c.sum = with_residual;
    memory::dims wei;
    {
      std::lock_guard<std::mutex> lock(runtime().mu);
      auto it = registry().find(c.handle);
      if (it == registry().end()) {
        std::fprintf(stderr, "conv3d_infer: unknown weight handle %lld\n", static_cast<long long>(c.handle));
        return 3;
      }
      wei = it->second->dims;
      c.src_cl = it->second->src_cl;
      c.dst_cl = it->second->dst_cl;
    }
    // oneDNN's dims are N, C, D, H, W whatever the layout; an NDHWC tensor's shape is N, D, H, W, C
    auto logical = [](const int64_t *shape, bool cl) {
      return cl ? memory::dims{shape[0], shape[4], shape[1], shape[2], shape[3]} : memory::dims(shape, shape + 5);
    };
    c.src = logical(shapes[0], c.src_cl);
    c.dst = logical(shapes[n_in], c.dst_cl);
    for (int k = 0; k < 3; ++k) {
      c.strides.push_back(p[k]);
      c.pad_l.push_back(p[3 + k]);
      c.dil.push_back(p[6 + k] - 1);  // oneDNN counts dilation from 0
      int64_t span = (wei[wei.size() - 3 + k] - 1) * p[6 + k] + 1;
      c.pad_r.push_back((c.dst[2 + k] - 1) * p[k] + span - c.src[2 + k] - p[3 + k]);
    }
    run(c, params[0], with_residual ? params[2] : nullptr, params[n_in]);
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "conv3d_infer: %s\n", e.what());
    return 2;
  }
}

}  // namespace

#define AOT_ARGS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *
#define AOT_PASS nparam, params, ndims, shapes, dtypes

extern "C" {
int conv3d_infer(AOT_ARGS) { return entry(false, AOT_PASS); }
int conv3d_infer_add(AOT_ARGS) { return entry(true, AOT_PASS); }

// Copies (out, in / groups, kd, kh, kw) weights (dims[5]) and the bias (out values) of a convolution with
// `groups` groups (1: plain); returns the handle, 0 on failure.
int64_t conv3d_infer_prepare_grouped(const float *w, const int64_t *dims, const float *bias, int64_t groups) {
  try {
    if (groups < 1 || dims[0] % groups != 0) throw std::runtime_error("out channels not divisible by groups");
    auto entry = std::make_unique<Weights>();
    entry->dims.assign(dims, dims + 5);
    if (groups > 1) {
      entry->dims[0] = dims[0] / groups;
      entry->dims.insert(entry->dims.begin(), groups);
    }
    size_t n = 1;
    for (auto d : entry->dims) n *= size_t(d);
    entry->plain_w.assign(w, w + n);
    entry->bias.assign(bias, bias + dims[0]);
    int64_t handle = g_next_handle++;
    std::lock_guard<std::mutex> lock(runtime().mu);
    registry()[handle] = std::move(entry);
    return handle;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "conv3d_infer_prepare: %s\n", e.what());
    return 0;
  }
}

// Declares the handle's input / output tensors channels-last (NDHWC); returns 0, or 1 for an unknown handle.
int conv3d_infer_set_layout(int64_t handle, int src_channels_last, int dst_channels_last) {
  std::lock_guard<std::mutex> lock(runtime().mu);
  auto it = registry().find(handle);
  if (it == registry().end()) return 1;
  it->second->src_cl = src_channels_last != 0;
  it->second->dst_cl = dst_channels_last != 0;
  return 0;
}

void conv3d_infer_release(int64_t handle) {
  std::lock_guard<std::mutex> lock(runtime().mu);
  registry().erase(handle);
}

long conv3d_infer_calls() { return g_infer_calls.load(); }
long conv3d_infer_plan_cache_entries() {
  std::lock_guard<std::mutex> lock(runtime().mu);
  return long(g_infer_plans.size());
}
long conv3d_infer_handles() {
  std::lock_guard<std::mutex> lock(runtime().mu);
  return long(registry().size());
}
}
