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
//
// Forms oneDNN may refuse. Which implementations oneDNN offers depends on the ISA it runs on (the CPU, or a cap
// such as ONEDNN_MAX_CPU_ISA): a primitive one ISA accepts may have no implementation on another (BF16 has
// none below AVX-512). So a geometry's plan is made from the first form oneDNN accepts, in this order:
//   1. the fused form: conv + bias with the residual add and ReLU as post-ops (only when there are any);
//   2. conv + bias alone, the residual add and ReLU applied after it, in the output tensor;
//   3. (bfloat16 tensors) as 2, computed in float32, bfloat16 converted in the reorders in and out.
// A plan from form 2 or 3 is said once on stderr (one line: the geometry, the refusal, what runs instead). When
// every form is refused the call fails; conv3d_infer_probe reports that before the network runs, so that the
// inference network (src/models/inference.py) runs native convolutions for that layer instead.
// For tests only: RESNET3D_FUSED_REFUSE=post_ops (or =all) makes the forms with post-ops (or every form)
// count as refused; a ":grouped" suffix limits it to grouped convolutions.
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "dnnl_runtime.h"
#include "executor.h"

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
  bool post_ops_after = false;  // forms 2 and 3: the residual add and ReLU run after the convolution
  dnnl::reorder src_in, dst_out, res_in;
};

// One way to run a geometry: post-ops fused or not, the type the kernel computes in.
struct Form {
  bool fused;
  dt compute;
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

// RESNET3D_FUSED_REFUSE (tests only, see the top of this file): whether `form` counts as refused.
bool refused_for_tests(const Form &form, bool grouped) {
  const char *env = std::getenv("RESNET3D_FUSED_REFUSE");
  if (env == nullptr || *env == '\0') return false;
  std::string v(env);
  if (v.size() > 8 && v.compare(v.size() - 8, 8, ":grouped") == 0) {
    if (!grouped) return false;
    v.resize(v.size() - 8);
  }
  return v == "all" || (v == "post_ops" && form.fused);
}

std::unique_ptr<InferPlan> make_form(const Call &c, const memory::dims &wei, const Form &form) {
  auto &rt = runtime();
  if (refused_for_tests(form, wei.size() == 6))
    throw dnnl::error(dnnl_unimplemented, "refused by RESNET3D_FUSED_REFUSE (tests)");
  dnnl::post_ops po;
  if (form.fused && c.sum) po.append_sum(1.f);
  if (form.fused && c.relu) po.append_eltwise(dnnl::algorithm::eltwise_relu, 0.f, 0.f);
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
  const dt compute = form.compute;
  const dt dst_type = compute == dt::f32 ? dt::f32 : c.dst_dt;  // form 3 converts in the reorder out
  const auto prop = compute == dt::bf16 ? dnnl::prop_kind::forward_inference : dnnl::prop_kind::forward_training;
  dnnl::convolution_forward::primitive_desc pd(
      rt.eng, prop, dnnl::algorithm::convolution_direct, any(c.src, compute),
      any(wei, compute), bias, any(c.dst, dst_type), c.strides, c.dil, c.pad_l, c.pad_r, attr);
  auto plan = std::make_unique<InferPlan>();
  plan->prim = dnnl::convolution_forward(pd);
  plan->post_ops_after = !form.fused && (c.sum || c.relu);
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
    if (c.sum && form.fused)
      plan->res_in = dnnl::reorder(dnnl::reorder::primitive_desc(rt.eng, plan->dst_user, rt.eng, plan->dst_prim));
  }
  return plan;
}

std::string dims_text(const memory::dims &d, size_t from = 0, size_t to = SIZE_MAX) {
  std::string t;
  for (size_t i = from; i < d.size() && i < to; ++i) t += (t.empty() ? "" : "x") + std::to_string(d[i]);
  return t;
}

// "conv 3x3x3 256->256 channels (32 groups), stride 2x2x2, padding 1x1x1, on 1x256x8x28x28 float32 (+ residual
// add + ReLU)": what the refusal lines name.
std::string describe(const Call &c, const memory::dims &wei) {
  const bool grouped = wei.size() == 6;
  const int64_t groups = grouped ? wei[0] : 1, out = grouped ? wei[0] * wei[1] : wei[0];
  std::string t = "conv " + dims_text(wei, wei.size() - 3) + " " + std::to_string(c.src[1]) + "->" +
                  std::to_string(out) + " channels";
  if (groups > 1) t += " (" + std::to_string(groups) + " groups)";
  t += ", stride " + dims_text(c.strides) + ", padding " + dims_text(c.pad_l) + ", on " + dims_text(c.src) + " " +
       (c.compute() == dt::bf16 ? "bfloat16" : "float32");
  if (c.sum || c.relu)
    t += std::string(" (") + (c.sum ? "+ residual add" : "") + (c.sum && c.relu ? " " : "") + (c.relu ? "+ ReLU" : "") +
         ")";
  return t;
}

std::string first_sentence(const char *what) {
  std::string t(what);
  size_t end = t.find(". ");
  return end == std::string::npos ? t : t.substr(0, end);
}

// The plan of the first form oneDNN accepts (see the top of this file); a fallback form is said once per
// geometry. Throws std::runtime_error naming the geometry when every form is refused.
std::unique_ptr<InferPlan> make_plan(const Call &c, const memory::dims &wei) {
  std::vector<Form> forms;
  if (c.sum || c.relu) forms.push_back({true, c.compute()});
  forms.push_back({false, c.compute()});
  if (c.compute() == dt::bf16) forms.push_back({false, dt::f32});
  std::string refusal;
  for (size_t i = 0; i < forms.size(); ++i) {
    try {
      auto plan = make_form(c, wei, forms[i]);
      static std::set<std::string> said;  // guarded by runtime().mu, as the plan cache
      if (i > 0 && said.insert(key_of(c, wei)).second) {
        std::string instead = c.sum && c.relu ? "the residual add and ReLU" : c.sum ? "the residual add" : "the ReLU";
        instead = (c.sum || c.relu) ? "without post-ops, " + instead + " applied after the convolution" : "";
        if (forms[i].compute != c.compute())
          instead += std::string(instead.empty() ? "" : ", ") + "in float32 (bfloat16 converted in and out)";
        std::fprintf(stderr, "conv3d_infer: oneDNN refused %s (%s): running it %s\n", describe(c, wei).c_str(),
                     refusal.c_str(), instead.c_str());
      }
      return plan;
    } catch (const dnnl::error &e) {
      if (refusal.empty()) refusal = first_sentence(e.what());
    }
  }
  throw std::runtime_error("oneDNN refused every form of " + describe(c, wei) + " (" + refusal + ")");
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

inline float bf16_value(uint16_t v) {
  uint32_t u = uint32_t(v) << 16;
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

inline uint16_t bf16_of(float f) {  // round to nearest even, NaN kept a NaN
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  return uint16_t((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Forms 2 and 3 (see the top): y = [relu](y + residual) over the output tensor, in its own layout (the
// residual's too). Float32 arithmetic; a bfloat16 output is rounded once more than in the fused form.
void post_ops_after(const Call &c, const InferPlan &plan, void *residual, void *y) {
  const int64_t n = int64_t(plan.dst_user.get_size() / (c.dst_dt == dt::bf16 ? 2 : 4));
  const bool sum = c.sum, relu = c.relu;
  if (c.dst_dt == dt::f32) {
    float *out = static_cast<float *>(y);
    const float *res = static_cast<const float *>(residual);
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < n; ++i) {
      float v = sum ? out[i] + res[i] : out[i];
      out[i] = relu && !(v > 0.f) && v == v ? 0.f : v;
    }
    return;
  }
  uint16_t *out = static_cast<uint16_t *>(y);
  const uint16_t *res = static_cast<const uint16_t *>(residual);
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float v = sum ? bf16_value(out[i]) + bf16_value(res[i]) : bf16_value(out[i]);
    out[i] = bf16_of(relu && !(v > 0.f) && v == v ? 0.f : v);
  }
}

// The weights' entry and the cached plan of call `c` (made on first use); the caller holds runtime().mu.
std::pair<Weights *, InferPlan *> plan_of(const Call &c) {
  auto wit = registry().find(c.handle);
  if (wit == registry().end()) throw std::runtime_error("unknown weight handle " + std::to_string(c.handle));
  Weights &w = *wit->second;
  InferPlan &plan = g_infer_plans.get(key_of(c, w.dims), [&] { return make_plan(c, w.dims); });
  return {&w, &plan};
}

void run(const Call &c, void *x, void *residual, void *y) {
  auto &rt = runtime();
  g_infer_calls++;
  std::lock_guard<std::mutex> lock(rt.mu);
  auto [wp, pp] = plan_of(c);
  Weights &w = *wp;
  InferPlan &plan = *pp;
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
  if (c.sum && !plan.post_ops_after) {
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
  if (plan.post_ops_after) post_ops_after(c, plan, residual, y);
}

// float32 -> f32, bfloat16 -> bf16; false for any other type
bool activation_type(const char *name, dt &type) {
  if (std::strcmp(name, "float32") == 0) type = dt::f32;
  else if (std::strcmp(name, "bfloat16") == 0) type = dt::bf16;
  else return false;
  return true;
}

// The call of handle p[9] on an input of shape x and an output of shape y (their layouts as the handle
// declared), params p = int64[11] as the aot entry points'. False for an unknown handle.
bool make_call(const int64_t *x, const int64_t *y, const int64_t *p, bool with_residual, Call &c) {
  c.handle = p[9];
  c.relu = p[10] != 0;
  c.sum = with_residual;
  memory::dims wei;
  {
    std::lock_guard<std::mutex> lock(runtime().mu);
    auto it = registry().find(c.handle);
    if (it == registry().end()) return false;
    wei = it->second->dims;
    c.src_cl = it->second->src_cl;
    c.dst_cl = it->second->dst_cl;
  }
  // oneDNN's dims are N, C, D, H, W whatever the layout; an NDHWC tensor's shape is N, D, H, W, C
  auto logical = [](const int64_t *shape, bool cl) {
    return cl ? memory::dims{shape[0], shape[4], shape[1], shape[2], shape[3]} : memory::dims(shape, shape + 5);
  };
  c.src = logical(x, c.src_cl);
  c.dst = logical(y, c.dst_cl);
  for (int k = 0; k < 3; ++k) {
    c.strides.push_back(p[k]);
    c.pad_l.push_back(p[3 + k]);
    c.dil.push_back(p[6 + k] - 1);  // oneDNN counts dilation from 0
    int64_t span = (wei[wei.size() - 3 + k] - 1) * p[6 + k] + 1;
    c.pad_r.push_back((c.dst[2 + k] - 1) * p[k] + span - c.src[2 + k] - p[3 + k]);
  }
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
    if (!make_call(shapes[0], shapes[n_in], p, with_residual, c)) {
      std::fprintf(stderr, "conv3d_infer: unknown weight handle %lld\n", static_cast<long long>(p[9]));
      return 3;
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
int conv3d_infer(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry(false, AOT_PASS); }); }
int conv3d_infer_add(AOT_ARGS) { return conv3d::entry_on_executor([&] { return entry(true, AOT_PASS); }); }

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

// Makes (and caches) the plan a call of `handle` on an input of shape x[5] with an output of shape y[5] would
// use, params = int64[11] as the aot entry points' (p[9] is overridden by `handle`), `residual` for
// conv3d_infer_add, the tensors bfloat16 where src_bf16 / dst_bf16. Returns 0 when oneDNN accepts a form (a
// fallback form is said on stderr), 1 when it refuses every form, 2 for an unknown handle or another error;
// `why` (why_len bytes) then says why. The inference network asks this before its first call per input shape.
int conv3d_infer_probe(int64_t handle, const int64_t *x, const int64_t *y, const int64_t *params, int residual,
                       int src_bf16, int dst_bf16, char *why, int64_t why_len) {
  auto say = [&](const std::string &text, int code) {
    if (why_len > 0) std::snprintf(why, size_t(why_len), "%s", text.c_str());
    return code;
  };
  try {
    int64_t p[11];
    std::memcpy(p, params, sizeof p);
    p[9] = handle;
    Call c;
    c.src_dt = src_bf16 ? dt::bf16 : dt::f32;
    c.dst_dt = dst_bf16 ? dt::bf16 : dt::f32;
    if (!make_call(x, y, p, residual != 0, c)) return say("unknown weight handle " + std::to_string(handle), 2);
    std::lock_guard<std::mutex> lock(runtime().mu);
    plan_of(c);
    return say("", 0);
  } catch (const dnnl::error &e) {
    return say(first_sentence(e.what()), 2);
  } catch (const std::runtime_error &e) {
    return say(e.what(), 1);
  } catch (const std::exception &e) {
    return say(e.what(), 2);
  }
}

// Copies the handle's float32 weights (out, in / groups, kd, kh, kw) into w and its bias into b (the caller
// sizes them); the native fallback of a refused layer is built from them. Returns 0, or 1 for an unknown handle.
int conv3d_infer_weights(int64_t handle, float *w, float *b) {
  auto &rt = runtime();
  std::lock_guard<std::mutex> lock(rt.mu);
  auto it = registry().find(handle);
  if (it == registry().end()) return 1;
  Weights &entry = *it->second;
  memory to(plain(entry.dims), rt.eng, w);
  if (!entry.plain_w.empty()) {
    std::memcpy(w, entry.plain_w.data(), entry.plain_w.size() * sizeof(float));
  } else {  // the plain copy went when a float32 blocked one was made: reorder that one back
    for (auto &blocked : entry.blocked)
      if (blocked.first.get_data_type() == dt::f32) {
        dnnl::reorder(blocked.second, to).execute(rt.strm, blocked.second, to);
        rt.strm.wait();
        break;
      }
  }
  std::memcpy(b, entry.bias.data(), entry.bias.size() * sizeof(float));
  return 0;
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
