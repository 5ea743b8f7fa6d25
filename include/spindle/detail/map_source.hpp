// SPDX-License-Identifier: MIT
// spindle/detail/map_source.hpp - what map results are read from, and what both map paths share.
#pragma once

#include <algorithm>
#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <exception>
#include <functional>
#include <iterator>
#include <memory>
#include <new>
#include <optional>
#include <ranges>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "../errors.hpp"
#include "../future.hpp"
#include "atomic.hpp"
#include "future_state.hpp"
#include "thread_pool.hpp"
#include "wait.hpp"

namespace spindle::detail {

/// ThreadPoolExecutor::submit on a core (also used by map).
template <class F, class... Args>
auto submit_to(PoolCore& core, F&& fn, Args&&... args) {
  using R = std::invoke_result_t<std::decay_t<F>, std::decay_t<Args>...>;
  using T = std::conditional_t<std::is_void_v<R>, void, std::remove_cvref_t<R>>;
  auto call = [f = std::forward<F>(fn), ... a = std::forward<Args>(args)]() mutable -> R {
    return std::invoke(std::move(f), std::move(a)...);
  };
  auto* task = new TaskState<T, decltype(call)>(std::move(call));
  try {
    core.push(task);
  } catch (...) {
    delete task;  // not queued: nobody else has seen it
    throw;
  }
  return FutureAccess::adopt<T>(task);
}

// What map calls f with; void results become std::monostate (Python: None).
template <class F, class... Args>
using map_call_result_t = std::invoke_result_t<F&, Args...>;
template <class F, class... Args>
using map_value_t = std::conditional_t<std::is_void_v<map_call_result_t<F, Args...>>,
                                       std::monostate,
                                       std::remove_cvref_t<map_call_result_t<F, Args...>>>;
template <class R>
using map_elem_t = std::ranges::range_value_t<std::remove_reference_t<R>>;

/// A run of results the iteration may read without asking again: `count`
/// values from `first` on, at consecutive positions.
template <class T>
struct MapSpan {
  T* first = nullptr;
  std::size_t count = 0;
};

/// Where a MapResult's values come from. Only the iterating thread calls it.
template <class T>
class MapSource {
public:
  virtual ~MapSource() = default;
  /// Waits for the value at `pos` and returns it and the values after it
  /// that are ready too. Throws: the call's exception, CancelledError,
  /// TimeoutError, or (with a buffersize) what submitting the next input
  /// throws.
  virtual MapSpan<T> load(std::size_t pos) = 0;
  /// The iteration moves past `pos` without having loaded it.
  virtual void skip(std::size_t pos) = 0;
  /// Whether `pos` is past the last input.
  virtual bool at_end(std::size_t pos) noexcept = 0;
  /// The MapResult is destroyed; `started` if begin() was called (then the
  /// calls not started are cancelled, as Python's generator close does).
  virtual void close(bool started) noexcept = 0;
};

/// One input range of a map, with its read position.
template <class R>
class MapInput {
public:
  explicit MapInput(R&& r) : range_(std::forward<R>(r)), it_(std::ranges::begin(range_.get())) {}
  MapInput(const MapInput&) = delete;
  MapInput& operator=(const MapInput&) = delete;

  bool at_end() { return it_ == std::ranges::end(range_.get()); }
  // The element, copied (moved out of a range passed as an rvalue).
  auto take() {
    using E = map_elem_t<R>;
    if constexpr (std::is_lvalue_reference_v<R>) {
      E e(*it_);
      ++it_;
      return e;
    } else {
      E e(std::ranges::iter_move(it_));
      ++it_;
      return e;
    }
  }

private:
  RangeHolder<R> range_;
  std::ranges::iterator_t<std::remove_reference_t<R>> it_;
};

}  // namespace spindle::detail
