// Shared by the training (conv3d_dnnl.cc) and inference (conv3d_infer.cc) entry points: one oneDNN
// engine, one OpenMP-backed stream and one scratch arena per process, all guarded by one mutex.
#pragma once

#include <omp.h>

#include <cstdint>
#include <functional>
#include <mutex>
#include <vector>

#include "oneapi/dnnl/dnnl.hpp"
#include "oneapi/dnnl/dnnl_threadpool.h"
#include "oneapi/dnnl/dnnl_threadpool_iface.hpp"

namespace conv3d {


using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// The THREADPOOL build of oneDNN runs single-threaded unless the stream carries a pool.
struct OmpPool final : dnnl::threadpool_interop::threadpool_iface {
  int get_num_threads() const override { return omp_get_max_threads(); }
  bool get_in_parallel() const override { return omp_in_parallel(); }
  uint64_t get_flags() const override { return 0; }  // synchronous: parallel_for returns when done
  void wait() override {}
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

inline size_t align_up(size_t n) { return (n + 4095) & ~size_t(4095); }

inline memory::desc plain(const memory::dims &d) {
  memory::dims strides(d.size());
  memory::dim s = 1;
  for (int i = int(d.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= d[i];
  }
  return memory::desc(d, dt::f32, strides);
}

inline memory::desc any(const memory::dims &d) { return memory::desc(d, dt::f32, tag::any); }

}  // namespace conv3d
