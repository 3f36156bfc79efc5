// INT8 program (issue 30): the INT8 network's units and its integer max-pool run back to back as ONE MindSpore
// op. At batch 1, r3d50's 53 units as 53 ops cost MindSpore a kernel launch and an output allocation each, and
// each residual unit a copy of its residual into its output, on one thread while the other waited: a seventh of
// the network's time. Here the steps run in buffers the program keeps, reused once their tensor is dead, and a
// residual unit writes into its residual's buffer when nothing reads the residual after it (the sum post-op
// adds what the destination holds), so no copy runs. The arithmetic is the units' own (conv3d_int8.cc): the
// result is the op-per-unit network's, exactly.
//
// A program (int8_program_create) is a list of steps, int64[kStepWidth] each:
//   kind (0: INT8 unit, 1: integer max-pool), handle (the unit's), in slot, residual slot (-1: none), out slot,
//   kernel(3) (a pool's), stride(3), padding(3).
// Slot 0 is the op's input (the float32 NCDHW clips); every step defines its out slot, after the slots it reads;
// the last step's out slot is the op's output. Each input shape gets a layout (the slots' shapes, types and
// buffers), made by int8_program_shape (the op's shape inference) or the first call.
//
// aot entry point: int8_program (x, params) -> y, params = int64[1]: the program id.
#include <array>
#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "executor.h"
#include "units.h"

namespace {

using conv3d::Int8UnitInfo;
using Dims = std::array<int64_t, 5>;

constexpr int kStepWidth = 14;
constexpr int kFloat = 0, kSigned = 2;

struct Step {
  int64_t kind, handle, in, res, out;
  int64_t kernel[3], stride[3], pad[3];
};

struct Layout {
  std::vector<Dims> shape;  // per slot: NDHWC (slot 0: the clips, NCDHW)
  std::vector<int> type;    // per slot: 0 float32, 1 uint8, 2 int8
  std::vector<int> buffer;  // per slot: index into buffers; -1 the op's input, -2 its output
  std::vector<std::vector<char>> buffers;
};

struct Program {
  std::vector<Step> steps;
  int64_t slots = 1;
  std::map<Dims, Layout> layouts;
  std::mutex mu;
};

std::mutex g_mu;  // guards the registry
std::map<int64_t, std::shared_ptr<Program>> g_programs;
std::atomic<int64_t> g_next{1};
std::atomic<long> g_calls{0};

size_t bytes_of(const Dims &d, int type) {
  size_t n = type == kFloat ? 4 : 1;
  for (auto v : d) n *= size_t(v);
  return n;
}

int64_t out_len(int64_t n, int64_t k, int64_t s, int64_t p) { return (n + 2 * p - k) / s + 1; }

std::shared_ptr<Program> find(int64_t id) {
  std::lock_guard<std::mutex> lock(g_mu);
  auto it = g_programs.find(id);
  if (it == g_programs.end()) throw std::runtime_error("unknown program " + std::to_string(id));
  return it->second;
}

// The shape and type step `s` gives its out slot (checking what it reads); L's in / res slots are set.
void define(const Step &s, Layout &L) {
  const Dims &x = L.shape[size_t(s.in)];
  const int in_type = L.type[size_t(s.in)];
  const bool clips = s.in == 0;  // NCDHW
  const int64_t spatial[3] = {clips ? x[2] : x[1], clips ? x[3] : x[2], clips ? x[4] : x[3]};
  const int64_t channels = clips ? x[1] : x[4];
  Dims y{x[0], 0, 0, 0, channels};
  int out_type = in_type;
  const int64_t *kernel = s.kernel;
  if (s.kind == 0) {
    Int8UnitInfo u;
    if (!conv3d::int8_unit_info(s.handle, u)) throw std::runtime_error("unknown weight handle " + std::to_string(s.handle));
    if (u.in != in_type || (u.in == kFloat) != clips) throw std::runtime_error("a unit's input type differs from its input slot's");
    if ((s.res >= 0) != (u.res >= 0) || (s.res >= 0 && u.res != L.type[size_t(s.res)]))
      throw std::runtime_error("a unit's residual differs from its residual slot");
    kernel = u.kernel;
    y[4] = u.out_channels;
    out_type = u.out;
  } else if (s.kind != 1 || in_type == kFloat || s.res >= 0) {
    throw std::runtime_error("a step is neither an INT8 unit nor a max-pool of integers");
  }
  for (int k = 0; k < 3; ++k) y[size_t(1 + k)] = out_len(spatial[k], kernel[k], s.stride[k], s.pad[k]);
  for (int k = 1; k < 4; ++k)
    if (y[size_t(k)] < 1) throw std::runtime_error("an input too small for the network");
  if (s.res >= 0 && L.shape[size_t(s.res)] != y) throw std::runtime_error("a residual's shape differs from its unit's output");
  L.shape[size_t(s.out)] = y;
  L.type[size_t(s.out)] = out_type;
}

// Buffers: a slot takes a free buffer (one whose tensor is dead) or a new one; a residual unit's output takes
// its residual's buffer when the residual dies at that step (same element size, not also the unit's input).
void assign_buffers(const Program &p, Layout &L) {
  std::vector<size_t> last(size_t(p.slots), 0), need;
  for (size_t i = 0; i < p.steps.size(); ++i)
    for (int64_t r : {p.steps[i].in, p.steps[i].res})
      if (r >= 0) last[size_t(r)] = i;
  std::vector<int> free_list;
  const int64_t final_slot = p.steps.back().out;
  L.buffer.assign(size_t(p.slots), -1);
  for (size_t i = 0; i < p.steps.size(); ++i) {
    const Step &s = p.steps[i];
    const bool in_place = s.res > 0 && s.res != s.in && last[size_t(s.res)] == i && s.out != final_slot &&
                          (L.type[size_t(s.res)] == kFloat) == (L.type[size_t(s.out)] == kFloat);
    int b = -2;
    if (s.out == final_slot) {
      b = -2;
    } else if (in_place) {
      b = L.buffer[size_t(s.res)];
    } else if (!free_list.empty()) {
      b = free_list.back();
      free_list.pop_back();
    } else {
      b = int(need.size());
      need.push_back(0);
    }
    const size_t size = bytes_of(L.shape[size_t(s.out)], L.type[size_t(s.out)]);
    if (b >= 0 && need[size_t(b)] < size) need[size_t(b)] = size;
    L.buffer[size_t(s.out)] = b;
    for (int64_t r : {s.in, s.res})
      if (r > 0 && last[size_t(r)] == i && !(in_place && r == s.res) && !(r == s.res && s.res == s.in))
        free_list.push_back(L.buffer[size_t(r)]);
  }
  L.buffers.clear();
  for (size_t n : need) L.buffers.emplace_back(n + 64);  // aligned to 64 bytes in data()
}

// The layout of input shape x, made once; the caller holds p.mu.
Layout &layout_of(Program &p, const Dims &x) {
  auto it = p.layouts.find(x);
  if (it != p.layouts.end()) return it->second;
  for (auto v : x)
    if (v < 1) throw std::runtime_error("an empty input");
  Layout L;
  L.shape.assign(size_t(p.slots), Dims{});
  L.type.assign(size_t(p.slots), -1);
  L.shape[0] = x;
  L.type[0] = kFloat;
  for (const Step &s : p.steps) define(s, L);
  assign_buffers(p, L);
  return p.layouts.emplace(x, std::move(L)).first->second;
}

void execute(Program &p, const Layout &L, void *x, void *y) {
  auto at = [&](int64_t slot) -> void * {
    const int b = L.buffer[size_t(slot)];
    if (b == -1) return x;
    if (b == -2) return y;
    auto raw = reinterpret_cast<uintptr_t>(L.buffers[size_t(b)].data());
    return reinterpret_cast<void *>((raw + 63) & ~uintptr_t(63));
  };
  for (const Step &s : p.steps) {
    const Dims &in = L.shape[size_t(s.in)], &out = L.shape[size_t(s.out)];
    if (s.kind == 0) {
      const int64_t params[7] = {s.stride[0], s.stride[1], s.stride[2], s.pad[0], s.pad[1], s.pad[2], s.handle};
      conv3d::run_int8_unit(in.data(), out.data(), params, at(s.in), s.res >= 0 ? at(s.res) : nullptr, at(s.out));
    } else {
      const int64_t params[9] = {s.kernel[0], s.kernel[1], s.kernel[2], s.stride[0], s.stride[1],
                                 s.stride[2], s.pad[0],    s.pad[1],    s.pad[2]};
      conv3d::max_pool_ndhwc(L.type[size_t(s.in)] == kSigned, in.data(), out.data(), params, at(s.in), at(s.out));
    }
  }
}

const char *type_name(int t) { return t == kFloat ? "float32" : t == kSigned ? "int8" : "uint8"; }

}  // namespace

#define AOT_ARGS int nparam, void **params, int *ndims, int64_t **shapes, const char **dtypes, void *, void *

extern "C" {
// A program of n steps (int64[n * 14], see the top); step i must define slot i + 1 from slots below it.
// Returns its id, 0 on failure (said on stderr).
int64_t int8_program_create(const int64_t *steps, int64_t n) {
  try {
    auto p = std::make_shared<Program>();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t *v = steps + i * kStepWidth;
      Step s{v[0], v[1], v[2], v[3], v[4], {v[5], v[6], v[7]}, {v[8], v[9], v[10]}, {v[11], v[12], v[13]}};
      if ((s.kind != 0 && s.kind != 1) || s.out != i + 1 || s.in < 0 || s.in > i || s.res < -1 || s.res > i)
        throw std::runtime_error("step " + std::to_string(i) + " malformed");
      for (int k = 0; k < 3; ++k)
        if (s.stride[k] < 1 || s.pad[k] < 0 || s.kernel[k] < 1) throw std::runtime_error("step " + std::to_string(i) + " malformed");
      p->steps.push_back(s);
    }
    if (p->steps.empty()) throw std::runtime_error("no steps");
    p->slots = n + 1;
    const int64_t id = g_next++;
    std::lock_guard<std::mutex> lock(g_mu);
    g_programs[id] = p;
    return id;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "int8_program_create: %s\n", e.what());
    return 0;
  }
}

void int8_program_release(int64_t id) {
  std::lock_guard<std::mutex> lock(g_mu);
  g_programs.erase(id);
}

// The output shape (y[5], NDHWC) and type (*type: 0 float32, 1 uint8, 2 int8) of program `id` on clips of
// shape x[5]; makes the layout. Returns 0, or 1 with `why` (why_len bytes) saying what is wrong.
int int8_program_shape(int64_t id, const int64_t *x, int64_t *y, int *type, char *why, int64_t why_len) {
  try {
    auto p = find(id);
    std::lock_guard<std::mutex> lock(p->mu);
    const Layout &L = layout_of(*p, Dims{x[0], x[1], x[2], x[3], x[4]});
    const int64_t last = p->steps.back().out;
    std::memcpy(y, L.shape[size_t(last)].data(), 5 * sizeof(int64_t));
    *type = L.type[size_t(last)];
    return 0;
  } catch (const std::exception &e) {
    if (why_len > 0) std::snprintf(why, size_t(why_len), "%s", e.what());
    return 1;
  }
}

// (x float32 [N, C, D, H, W], params int64[1]) -> y [N, D, H, W, C] of the last step's type
int int8_program(AOT_ARGS) {
  try {
    if (nparam != 3 || ndims[0] != 5 || std::strcmp(dtypes[0], "float32") != 0 || ndims[1] != 1 ||
        shapes[1][0] != 1 || std::strcmp(dtypes[1], "int64") != 0 || ndims[2] != 5)
      throw std::runtime_error("unexpected inputs");
    auto p = find(static_cast<const int64_t *>(params[1])[0]);
    std::lock_guard<std::mutex> lock(p->mu);
    const Dims x{shapes[0][0], shapes[0][1], shapes[0][2], shapes[0][3], shapes[0][4]};
    const Layout &L = layout_of(*p, x);
    const int64_t last = p->steps.back().out;
    if (std::memcmp(L.shape[size_t(last)].data(), shapes[2], 5 * sizeof(int64_t)) != 0 ||
        std::strcmp(dtypes[2], type_name(L.type[size_t(last)])) != 0)
      throw std::runtime_error("the output tensor differs from the program's output");
    g_calls++;
    conv3d::run_on_executor([&] { execute(*p, L, params[0], params[2]); });
    return 0;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "int8_program: %s\n", e.what());
    return 2;
  }
}

long int8_program_calls() { return g_calls.load(); }
long int8_program_count() {
  std::lock_guard<std::mutex> lock(g_mu);
  return long(g_programs.size());
}
}
