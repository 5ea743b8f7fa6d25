// SPDX-License-Identifier: MIT
// spindle/detail/map_tasks.hpp - map as one task per call or chunk (buffersize, in the pool).
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

#include "map_source.hpp"

namespace spindle::detail {

// ---------------------------------------------------------------------------
// One task per call or chunk: the path for maps with a buffersize (which
// read their inputs lazily) and for maps called on one of the pool's own
// workers (where waiting on a future may run it inline, see
// StateBase::wait_until, so nesting cannot deadlock the pool).

// (The void test is outside the lambdas: clang 14 instantiates a discarded
// `return V{}` inside one, which fails for a V without a default constructor.)
template <class V, class F, class... A>
V map_invoke(F& fn, std::tuple<A...>& args) {
  if constexpr (std::is_void_v<map_call_result_t<F, A...>>) {
    std::apply([&fn](auto&... a) { std::invoke(fn, std::move(a)...); }, args);
    return V{};
  } else {
    return std::apply([&fn](auto&... a) -> V { return std::invoke(fn, std::move(a)...); }, args);
  }
}

/// The outcome of one chunk of a chunked map: a value or an exception per
/// input, so that exceptions come back at their own positions.
template <class V>
struct MapChunk {
  std::vector<std::optional<V>> values;
  std::vector<std::exception_ptr> errors;  // empty, or one per input (null if it succeeded)
};

/// One submitted task of a map: a single call, or a chunk of `n` calls.
template <class V>
struct MapPiece {
  Future<V> single;
  Future<MapChunk<V>> chunk;
  std::size_t n = 1;
};

/// Where a map's inputs come from: submits the next task for a MapTasks.
template <class V>
class MapFeed {
public:
  virtual ~MapFeed() = default;
  /// Submits the next task and appends it to `out`; false (nothing
  /// appended) once the inputs are exhausted or the pool is gone.
  /// Throws: as `submit` (ExecutorShutdown after shutdown).
  virtual bool push_next(std::deque<MapPiece<V>>& out) = 0;
};

/// The feed: zips the inputs and submits one call, or one chunk of calls,
/// per push_next.
template <class V, class Fn, class... Rs>
class MapFeedImpl final : public MapFeed<V> {
  using Args = std::tuple<map_elem_t<Rs>...>;
  // A copyable function is copied into each task; a move-only one is shared.
  static constexpr bool copy_fn = std::is_copy_constructible_v<Fn>;
  using FnHolder = std::conditional_t<copy_fn, Fn, std::shared_ptr<Fn>>;

public:
  template <class G>
  MapFeedImpl(const std::shared_ptr<PoolCore>& core, G&& fn, std::size_t chunksize, Rs&&... inputs)
      : core_(core), fn_(make_holder(std::forward<G>(fn))), chunksize_(chunksize),
        inputs_(std::forward<Rs>(inputs)...) {}

  bool push_next(std::deque<MapPiece<V>>& out) override {
    if (exhausted()) return false;
    const std::shared_ptr<PoolCore> core = core_.lock();
    if (!core) return false;  // the pool is gone (Python: the executor's weakref is dead)
    MapPiece<V> piece;
    if (chunksize_ == 1) {
      piece.single = submit_to(*core, [f = fn_, a = next_args()]() mutable -> V {
        return map_invoke<V>(fn_ref(f), a);
      });
    } else {
      std::vector<Args> items;
      items.reserve(chunksize_);
      do {
        items.push_back(next_args());
      } while (items.size() < chunksize_ && !exhausted());
      piece.n = items.size();
      piece.chunk = submit_to(*core, [f = fn_, items = std::move(items)]() mutable {
        MapChunk<V> result;
        result.values.reserve(items.size());
        for (std::size_t i = 0; i < items.size(); ++i) {
          try {
            result.values.emplace_back(map_invoke<V>(fn_ref(f), items[i]));
          } catch (...) {
            result.values.emplace_back();
            if (result.errors.empty()) result.errors.resize(items.size());
            result.errors[i] = std::current_exception();
          }
        }
        return result;
      });
    }
    out.push_back(std::move(piece));
    return true;
  }

private:
  template <class G>
  static FnHolder make_holder(G&& fn) {
    if constexpr (copy_fn)
      return Fn(std::forward<G>(fn));
    else
      return std::make_shared<Fn>(std::forward<G>(fn));
  }
  static Fn& fn_ref(FnHolder& h) noexcept {
    if constexpr (copy_fn)
      return h;
    else
      return *h;
  }

  bool exhausted() {
    return std::apply([](auto&... in) { return (in.at_end() || ...); }, inputs_);
  }
  Args next_args() {
    // Braced initialization takes the elements left to right.
    return std::apply([](auto&... in) { return Args{in.take()...}; }, inputs_);
  }

  std::weak_ptr<PoolCore> core_;
  FnHolder fn_;
  std::size_t chunksize_;
  std::tuple<MapInput<Rs>...> inputs_;
};

/// The MapResult side of the per-task path: a deque of submitted tasks,
/// front first, topped up from the feed (with a buffersize) as the
/// iteration reaches each task.
template <class T>
class MapTasks final : public MapSource<T> {
public:
  MapTasks(std::unique_ptr<MapFeed<T>> feed, std::optional<Clock::time_point> deadline,
           bool caller_runs)
      : feed_(std::move(feed)), deadline_(deadline), caller_runs_(caller_runs) {}

  /// Submits every input's task, or (with a buffersize) the first
  /// `buffersize` ones. Throws: as submit.
  void start(std::optional<std::size_t> buffersize) {
    if (!buffersize) {
      while (feed_->push_next(pieces_)) {
      }
      feed_.reset();
      return;
    }
    for (std::size_t i = 0; i < *buffersize; ++i)
      if (!feed_->push_next(pieces_)) {
        feed_.reset();
        return;
      }
  }

  MapSpan<T> load(std::size_t pos) override {
    catch_up(pos);
    enter();
    MapPiece<T>& p = pieces_.front();
    if (p.single.valid()) {
      // This range holds the only handle, so the value can be moved out.
      if (!current_) current_.emplace(std::move(*wait_for(p.single)->value_));
      return {&*current_, 1};
    }
    if (!chunk_) {
      if (caller_runs_ && !deadline_) run_pending_chunks();
      chunk_.emplace(std::move(*wait_for(p.chunk)->value_));
    }
    if (!chunk_->errors.empty() && chunk_->errors[index_])
      std::rethrow_exception(chunk_->errors[index_]);
    return {&*chunk_->values[index_], 1};
  }

  void skip(std::size_t pos) override {
    catch_up(pos);
    next();
  }

  bool at_end(std::size_t pos) noexcept override {
    catch_up(pos);
    return pieces_.empty();
  }

  void close(bool started) noexcept override {
    if (!started) return;
    for (auto& p : pieces_) {
      if (p.single.valid()) p.single.cancel();
      if (p.chunk.valid()) p.chunk.cancel();
    }
  }

private:
  // The iteration moved on past positions it loaded (their pieces were
  // entered, so next() submits nothing and cannot throw).
  void catch_up(std::size_t pos) noexcept {
    while (pos_ < pos && !pieces_.empty()) next_entered();
  }

  // First visit of the front piece: with a buffersize, submit the next
  // input now (as Python does before it waits for a result).
  void enter() {
    if (entered_) return;
    entered_ = true;
    if (feed_) {
      auto feed = std::move(feed_);
      if (feed->push_next(pieces_)) feed_ = std::move(feed);
    }
  }

  template <class U>
  ResultState<U>* wait_for(Future<U>& f) {
    auto* s = FutureAccess::state(f);
    if (!s->wait_until(deadline_))
      throw TimeoutError("ThreadPoolExecutor::map: result " + std::to_string(pos_) +
                         " not done within the timeout");
    if (s->status() == st_cancelled) throw CancelledError();
    if (s->error_) std::rethrow_exception(s->error_);
    return s;
  }

  // While the front chunk is not done, run chunks no worker has started on
  // this thread (front first, then the later ones), instead of sleeping
  // until a worker finishes the front one.
  void run_pending_chunks() {
    auto* front = FutureAccess::state(pieces_.front().chunk);
    for (auto& piece : pieces_) {
      if (front->done()) return;
      if (!piece.chunk.valid()) return;
      auto* s = FutureAccess::state(piece.chunk);
      if (s->status() == st_pending) s->run_inline();
    }
  }

  void next() {
    enter();
    next_entered();
  }

  void next_entered() noexcept {
    MapPiece<T>& p = pieces_.front();
    ++pos_;
    if (p.single.valid()) {
      current_.reset();
    } else if (++index_ < p.n) {
      return;
    } else {
      chunk_.reset();
      index_ = 0;
    }
    pieces_.pop_front();  // releases the state as the iteration moves on
    entered_ = false;
  }

  std::deque<MapPiece<T>> pieces_;  // front: the current position's task
  std::unique_ptr<MapFeed<T>> feed_;  // null once exhausted (or without buffersize)
  std::optional<Clock::time_point> deadline_;
  bool caller_runs_;          // run a pending chunk on the iterating thread
  std::size_t pos_ = 0;       // input position of the front piece's current call
  std::size_t index_ = 0;     // position inside the front chunk
  bool entered_ = false;      // enter() ran for the front piece
  std::optional<T> current_;
  std::optional<MapChunk<T>> chunk_;
};

}  // namespace spindle::detail
