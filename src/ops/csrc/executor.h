// One thread runs the library's parallel work (its OpenMP regions, oneDNN's through the stream's OpenMP pool).
//
// libgomp keeps one team of worker threads per thread that opens a parallel region. MindSpore calls the op
// from more than one thread (the first call of a graph, shape inference and probes on another thread than the
// later launches), so a process held two teams: more OpenMP threads than cores, for which libgomp throttles
// its workers' spinning to a few microseconds; they then slept between regions and each region (one per
// kernel, 50-60 per batch-1 inference) paid a futex wake-up. With every region opened by this one thread there
// is one team, whose worker spins between the regions of a call as libgomp intends.
//
// run_on_executor(f) runs f there and waits; an exception f throws is rethrown to the caller. Called from the
// executor itself (nested), f runs in place. After fork() the child starts its own executor on first use.
#pragma once

#include <pthread.h>

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

namespace conv3d {

class Executor {
 public:
  void run(const std::function<void()> &f) {
    if (std::this_thread::get_id() == worker_id_) {
      f();
      return;
    }
    std::lock_guard<std::mutex> one_caller(call_mu_);
    std::unique_lock<std::mutex> lock(mu_);
    if (!started_) start();
    job_ = &f;
    error_ = nullptr;
    done_ = false;
    wake_.notify_one();
    finished_.wait(lock, [&] { return done_; });
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void start() {  // the caller holds mu_
    std::thread t([this] { loop(); });
    worker_id_ = t.get_id();
    t.detach();  // lives as long as the process
    started_ = true;
  }
  void loop() {
    std::unique_lock<std::mutex> lock(mu_);
    for (;;) {
      wake_.wait(lock, [&] { return job_ != nullptr; });
      const std::function<void()> *job = job_;
      lock.unlock();
      std::exception_ptr error;
      try {
        (*job)();
      } catch (...) {
        error = std::current_exception();
      }
      lock.lock();
      job_ = nullptr;
      error_ = error;
      done_ = true;
      finished_.notify_one();
    }
  }

  std::mutex call_mu_, mu_;
  std::condition_variable wake_, finished_;
  const std::function<void()> *job_ = nullptr;
  std::exception_ptr error_;
  bool done_ = false, started_ = false;
  std::thread::id worker_id_;
};

inline Executor *&executor_slot() {
  static Executor *e = nullptr;
  return e;
}

inline void reset_executor_in_child() { executor_slot() = new Executor(); }  // the parent's thread is gone

inline Executor &executor() {
  static std::once_flag once;
  std::call_once(once, [] {
    executor_slot() = new Executor();
    pthread_atfork(nullptr, nullptr, reset_executor_in_child);
  });
  return *executor_slot();
}

template <class F>
void run_on_executor(F &&f) {
  executor().run(std::function<void()>(std::forward<F>(f)));
}

// An aot entry point's body on the executor: its return code
template <class F>
int entry_on_executor(F &&f) {
  int rc = 0;
  run_on_executor([&] { rc = f(); });
  return rc;
}

}  // namespace conv3d
