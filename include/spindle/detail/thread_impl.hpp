// SPDX-License-Identifier: MIT
// spindle/detail/thread_impl.hpp - what runs under spindle::Thread: its shared state and excepthook.
#pragma once

#include <atomic>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <typeinfo>

#include <cxxabi.h>
#include <pthread.h>
#include <sys/types.h>
#include <unistd.h>

#include "../event.hpp"

namespace spindle::detail {

inline std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                            std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

/// A move-only, type-erased `void()` call (std::function needs copyable
/// targets; std::move_only_function is C++23).
class ThreadBody {
public:
  ThreadBody() = default;
  template <class F>
  explicit ThreadBody(F&& f) : impl_(std::make_unique<Impl<std::decay_t<F>>>(std::forward<F>(f))) {}
  void operator()() { impl_->run(); }
  explicit operator bool() const noexcept { return impl_ != nullptr; }
  void reset() noexcept { impl_.reset(); }

private:
  struct Base {
    virtual ~Base() = default;
    virtual void run() = 0;
  };
  template <class F>
  struct Impl final : Base {
    template <class G>
    explicit Impl(G&& g) : f(std::forward<G>(g)) {}
    void run() override { f(); }
    F f;
  };
  std::unique_ptr<Base> impl_;
};

/// The state a Thread handle shares with its running thread.
struct ThreadState {
  std::string name;
  ThreadBody body;
  std::thread thread;                 // guarded by join_m
  std::mutex join_m;
  std::atomic<bool> started{false};   // start() was called
  std::atomic<pid_t> native_id{0};    // set before `running` is set
  Event running;                      // the thread runs (native_id is set)
  Event finished;                     // the body returned or threw
};

inline std::string next_thread_name() {
  static std::atomic<unsigned long> counter{0};
  return "Thread-" + std::to_string(counter.fetch_add(1, std::memory_order_relaxed) + 1);
}

}  // namespace spindle::detail
