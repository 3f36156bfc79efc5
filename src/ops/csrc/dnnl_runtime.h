// Shared by the training (conv3d_dnnl.cc) and inference (conv3d_infer.cc) entry points: one oneDNN
// engine, one OpenMP-backed stream and one scratch arena per process, all guarded by one mutex, and
// the bounded cache of their primitives.
#pragma once

#include <omp.h>

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "oneapi/dnnl/dnnl_threadpool.h"
#include "oneapi/dnnl/dnnl_threadpool_iface.hpp"

#ifndef CONV3D_LINKED_DNNL
#error "CONV3D_LINKED_DNNL (the linked oneDNN's major*10000+minor*100+patch) is set by src/ops/build.py"
#endif

namespace conv3d {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// The THREADPOOL build of oneDNN runs single-threaded unless the stream carries a pool.
struct OmpPool final : dnnl::threadpool_interop::threadpool_iface {
  int get_num_threads() const override { return omp_get_max_threads(); }
  bool get_in_parallel() const override { return omp_in_parallel(); }
  uint64_t get_flags() const override { return 0; }  // synchronous: parallel_for returns when done
  void parallel_for(int n, const std::function<void(int, int)> &fn) override {
    if (n <= 1 || omp_in_parallel()) {
      for (int i = 0; i < n; ++i) fn(i, n);
      return;
    }
#pragma omp parallel for schedule(static)
    for (int i = 0; i < n; ++i) fn(i, n);
  }
};

struct Runtime {
  OmpPool pool;
  dnnl::engine eng{dnnl::engine::kind::cpu, 0};
  dnnl::stream strm;
  // Blocked copies and scratchpads of the running call live here; calls are serialised by `mu`
  // (two concurrent OpenMP teams on the same cores would only slow each other down).
  std::vector<char> arena_raw;
  char *arena = nullptr;
  size_t arena_size = 0;
  std::mutex mu;

  Runtime() {
    dnnl_stream_t s = nullptr;
    dnnl::error::wrap_c_api(dnnl_threadpool_interop_stream_create(&s, eng.get(), &pool),
                            "could not create a threadpool stream");
    strm = dnnl::stream(s);
  }
  char *reserve(size_t bytes) {
    if (bytes > arena_size) {
      arena_raw.assign(bytes + 4096, 0);
      arena = reinterpret_cast<char *>((reinterpret_cast<uintptr_t>(arena_raw.data()) + 4095) & ~uintptr_t(4095));
      arena_size = bytes;
    }
    return arena;
  }
};

inline Runtime &runtime() {
  static Runtime rt;
  return rt;
}

// Primitives (with their JIT code) kept per geometry key. A training run of r3d50 uses about 75 keys
// per batch size (25 convolution geometries x forward, backward-data, backward-weights); 512 holds the
// train and eval batch sizes and their last partial batches without eviction, and bounds the memory of
// a caller whose shapes keep changing.
constexpr size_t kPlanCacheCapacity = 512;

// Least-recently-used map from key to plan. Callers hold Runtime::mu; a returned reference stays
// valid until the next get().
template <class Plan>
class PlanCache {
 public:
  template <class Make>
  Plan &get(const std::string &key, Make make) {
    auto it = index_.find(key);
    if (it != index_.end()) {
      order_.splice(order_.begin(), order_, it->second);
      return *it->second->second;
    }
    std::unique_ptr<Plan> plan = make();  // may throw: the cache is unchanged then
    if (order_.size() >= kPlanCacheCapacity) {
      index_.erase(order_.back().first);
      order_.pop_back();
    }
    order_.emplace_front(key, std::move(plan));
    index_[key] = order_.begin();
    return *order_.front().second;
  }
  size_t size() const { return order_.size(); }

 private:
  using Entry = std::pair<std::string, std::unique_ptr<Plan>>;
  std::list<Entry> order_;  // most recently used first
  std::unordered_map<std::string, typename std::list<Entry>::iterator> index_;
};

inline size_t align_up(size_t n) { return (n + 4095) & ~size_t(4095); }

inline memory::desc plain(const memory::dims &d, dt type = dt::f32) {
  memory::dims strides(d.size());
  memory::dim s = 1;
  for (int i = int(d.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= d[i];
  }
  return memory::desc(d, type, strides);
}

inline memory::desc any(const memory::dims &d, dt type = dt::f32) { return memory::desc(d, type, tag::any); }

}  // namespace conv3d
