// SPDX-License-Identifier: MIT
// spindle/detail/map_job.hpp - map as claimed chunks (no buffersize, called outside the pool).
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

#include "block_cache.hpp"
#include "map_source.hpp"

namespace spindle::detail {

// ---------------------------------------------------------------------------
// Claimed chunks: the path for maps without a buffersize, called from
// outside the pool. Every input is read into the job when map is called;
// a few tasks (one per worker) then claim chunks of `chunksize` positions
// with an atomic counter and write the results into one array, where the
// iteration reads them in place. A submit per chunk and a future per call
// are what made the per-task path slow for many small calls.

inline constexpr std::uint32_t chunk_pending = 0;    // not claimed, or running
inline constexpr std::uint32_t chunk_done = 1;       // values (or errors) written
inline constexpr std::uint32_t chunk_cancelled = 2;  // will never run
inline constexpr std::uint32_t chunk_released = 3;   // done; the iteration destroyed its values
inline constexpr std::uint32_t chunk_state = 3;
inline constexpr std::uint32_t chunk_waiter = 4;  // the iterating thread sleeps on the word

struct MapChunkSlot {
  // The futex word the iteration waits on. Release store of done after the
  // values and errors are written; the iteration loads it with acquire.
  atomic<std::uint32_t> status{chunk_pending};
  // One per call of the chunk, null where the call succeeded; allocated only
  // once a call throws.
  std::unique_ptr<std::exception_ptr[]> errors;
  // Set instead if that allocation failed: the error of every call.
  std::exception_ptr whole;
};

/// The inputs of one range: an rvalue std::vector taken over, or copies in
/// the job's block.
template <class E>
struct MapArgs {
  std::vector<E> taken;
  E* data = nullptr;
  std::size_t built = 0;  // elements constructed in the block
};

// An rvalue std::vector of the element type is moved into the map whole
// (not std::vector<bool>, whose elements are no array).
template <class R>
inline constexpr bool map_takes_over = !std::is_reference_v<R> &&
                                       std::is_same_v<R, std::vector<map_elem_t<R>>> &&
                                       !std::is_same_v<map_elem_t<R>, bool>;

/// The shared state of one map: function, inputs, results and chunk slots,
/// the last three in one block from the pool's BlockCache. Shared
/// (shared_ptr) by the MapResult's source and the claiming tasks.
template <class V, class Fn, class... Es>
class MapJob {
  static_assert(((alignof(V) <= BlockCache::alignment) && ... &&
                 (alignof(Es) <= BlockCache::alignment)),
                "ThreadPoolExecutor::map: over-aligned (> 64) results or inputs");

public:
  // A copyable function is copied into each claiming task (as into each
  // task of the per-task path); a move-only one is shared by all.
  static constexpr bool copy_fn = std::is_copy_constructible_v<Fn>;

  template <class G>
  MapJob(std::shared_ptr<BlockCache> cache, G&& fn, std::size_t n, std::size_t chunksize,
         const std::array<bool, sizeof...(Es)>& in_block)
      : cache_(std::move(cache)), fn_(std::forward<G>(fn)), n_(n), chunksize_(chunksize),
        chunks_(n / chunksize + (n % chunksize != 0 ? 1 : 0)) {
    std::size_t bytes = 0;
    const std::size_t slots_at = place(bytes, chunks_ * sizeof(MapChunkSlot));
    const std::size_t values_at = place(bytes, n * sizeof(V));
    std::array<std::size_t, sizeof...(Es)> inputs_at{};
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      ((inputs_at[I] = in_block[I] ? place(bytes, n * sizeof(Es)) : 0), ...);
    }(std::index_sequence_for<Es...>{});
    block_ = cache_->take(bytes);
    auto* base = static_cast<std::byte*>(block_.p);
    slots_ = reinterpret_cast<MapChunkSlot*>(base + slots_at);
    for (std::size_t c = 0; c < chunks_; ++c) ::new (static_cast<void*>(slots_ + c)) MapChunkSlot();
    values_ = reinterpret_cast<V*>(base + values_at);
    set_inputs(base, in_block, inputs_at, std::index_sequence_for<Es...>{});
    bool copies = false;
    for (bool b : in_block) copies = copies || b;
    if (!copies) {  // every input taken over: nothing for fill to copy
      ready_.store(chunks_, std::memory_order_relaxed);
      inputs_word_.store(inputs_complete, std::memory_order_relaxed);
    }
  }
  MapJob(const MapJob&) = delete;
  MapJob& operator=(const MapJob&) = delete;
  ~MapJob() { free_storage(); }

  std::size_t size() const noexcept { return n_; }
  std::size_t chunksize() const noexcept { return chunksize_; }
  std::size_t chunks() const noexcept { return chunks_; }
  MapChunkSlot& slot(std::size_t c) noexcept { return slots_[c]; }
  V* values() noexcept { return values_; }
  Fn& fn() noexcept { return fn_; }

  /// Takes over an rvalue std::vector as input I, cut to size() (before
  /// any claimer runs).
  template <std::size_t I, class E>
  void take_over(std::vector<E>&& v) noexcept {
    MapArgs<E>& a = std::get<I>(inputs_);
    a.taken = std::move(v);
    while (a.taken.size() > n_) a.taken.pop_back();
    a.data = a.taken.data();
  }

  template <std::size_t I, class R, class X>
  void take_over_if(X& r) noexcept {
    if constexpr (map_takes_over<R>) take_over<I>(std::move(r));
  }

  /// Copies the first size() elements of each range not taken over into
  /// the block, a piece at a time, publishing after each piece the chunks
  /// whose inputs are complete, so that claimers start on them while the
  /// rest is copied. Throws: what copying an element throws (see
  /// inputs_failed).
  template <class... Rs>
  void fill(Rs&&... rs) {
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      auto cursors = std::tuple{cursor<Rs>(rs)...};
      // About 4096 inputs or one chunk per piece: small enough for the
      // claimers to start early, big enough for memcpy.
      const std::size_t per = (std::max)(std::size_t{1}, std::size_t{4096} / chunksize_);
      for (std::size_t c = 0; c < chunks_;) {
        const std::size_t end = (std::min)(chunks_, c + per);
        const std::size_t first = c * chunksize_;
        const std::size_t last = (std::min)(n_, end * chunksize_);
        (copy_piece<I, Rs>(std::get<I>(cursors), first, last), ...);
        ready_.store(end, std::memory_order_release);
        c = end;
      }
    }(std::index_sequence_for<Rs...>{});
    finish_inputs(inputs_complete);
  }

  /// Reading the inputs failed: chunks already complete still run (as
  /// Python runs the calls it submitted before the input raised); claimers
  /// waiting for the others give up.
  void inputs_failed() noexcept { finish_inputs(inputs_broken); }

  /// Whether chunk `c`'s inputs are in place (waits while they are being
  /// copied); false if they never will be.
  bool wait_inputs(std::size_t c) noexcept {
    if (ready_.load(std::memory_order_acquire) > c) return true;
    Backoff backoff;
    std::uint32_t w = inputs_word_.load(std::memory_order_acquire);
    for (;;) {
      if (ready_.load(std::memory_order_acquire) > c) return true;
      if ((w & chunk_state) != inputs_copying) return false;  // ready_ is final
      if (backoff.step()) {
        w = inputs_word_.load(std::memory_order_acquire);
        continue;
      }
      if (!(w & chunk_waiter) &&
          !inputs_word_.compare_exchange_weak(w, w | chunk_waiter, std::memory_order_acquire))
        continue;
      futex_wait(inputs_word_, w | chunk_waiter);
      w = inputs_word_.load(std::memory_order_acquire);
    }
  }

  /// The next unclaimed chunk, or chunks() or more if none is left. Every
  /// chunk index is handed out once (RMWs of one atomic are totally
  /// ordered). Relaxed: the inputs were published by the submit that
  /// queued the claimer (or were written by this thread).
  std::size_t claim() noexcept { return next_.fetch_add(1, std::memory_order_relaxed); }
  /// No chunk is claimed from now on; returns the first one left unclaimed.
  std::size_t stop() noexcept { return next_.exchange(chunks_, std::memory_order_acq_rel); }

  /// Runs the calls of chunk `c` (claimed by this thread) with `f`,
  /// storing each value or exception, then marks it done.
  void run_chunk(std::size_t c, Fn& fn) noexcept {
    const std::size_t first = c * chunksize_;
    const std::size_t last = (std::min)(n_, first + chunksize_);
    std::unique_ptr<std::exception_ptr[]> errors;
    // Locals, not members: an opaque call (a function pointer) could change
    // any memory, so members would be reloaded around every call.
    V* const values = values_;
    const auto in = std::apply([](auto&... a) { return std::tuple{a.data...}; }, inputs_);
    // A function pointer is copied (the only Fn whose copy changes nothing);
    // other functions are called in place, sharing state across calls.
    using Call = std::conditional_t<std::is_pointer_v<Fn>, Fn, Fn&>;
    Call f = fn;
    if constexpr (std::is_nothrow_invocable_v<Fn&, Es...> &&
                  std::is_nothrow_move_constructible_v<V>) {
      for (std::size_t i = first; i < last; ++i) call(f, in, values, i);
    } else {
      for (std::size_t i = first; i < last; ++i) {
        try {
          call(f, in, values, i);
        } catch (...) {
          // Allocated only for a chunk with a failure; if even that fails,
          // the whole chunk fails with bad_alloc.
          try {
            if (!errors) errors = std::make_unique<std::exception_ptr[]>(last - first);
            errors[i - first] = std::current_exception();
          } catch (...) {
            fail_chunk(c, i, errors, std::current_exception());
            break;
          }
        }
      }
    }
    MapChunkSlot& s = slots_[c];
    s.errors = std::move(errors);
    if (s.status.exchange(chunk_done, std::memory_order_acq_rel) & chunk_waiter)
      futex_wake(s.status, INT_MAX);
  }

  /// Marks every chunk not claimed yet as cancelled (no claimer is left to
  /// run them) and wakes the iteration if it waits on one.
  void abandon() noexcept {
    for (std::size_t c = stop(); c < chunks_; ++c) {
      MapChunkSlot& s = slots_[c];
      if (s.status.exchange(chunk_cancelled, std::memory_order_acq_rel) & chunk_waiter)
        futex_wake(s.status, INT_MAX);
    }
  }

  /// Counts the claimers (plus one for map while it submits them); the
  /// last one gone abandons what nobody claimed. A claimer is gone when its
  /// callable is destroyed: after it ran, or unrun when its task was
  /// cancelled (shutdown with cancel_futures) or failed (a broken pool).
  void add_claimer() noexcept { claimers_.fetch_add(1, std::memory_order_relaxed); }
  void claimer_gone() noexcept {
    if (claimers_.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
    abandon();
    if (orphaned_.load(std::memory_order_relaxed)) leave();
  }

  /// The storage (inputs, results, slots) has users: the MapResult until it
  /// is closed, and each claimer while it claims and runs chunks. The last
  /// to leave frees it, so that a claimer still queued (cancelled, or with
  /// nothing left to claim) does not keep it from the next map.
  /// enter: false (and no use taken) once the storage is freed.
  bool enter() noexcept {
    std::size_t u = users_.load(std::memory_order_relaxed);
    do {
      if (u == 0) return false;
    } while (!users_.compare_exchange_weak(u, u + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed));
    return true;
  }
  void leave() noexcept {
    if (users_.fetch_sub(1, std::memory_order_acq_rel) == 1) free_storage();
  }
  /// The MapResult's leave for a result dropped before iterating: every
  /// call still runs (as in Python), so its use passes to the claimers and
  /// the last one gone leaves for it.
  void leave_after_claimers() noexcept {
    orphaned_.store(true, std::memory_order_relaxed);
    claimers_.fetch_add(1, std::memory_order_relaxed);
    claimer_gone();
  }

  /// Destroys the values of a done chunk the iteration has moved past.
  void release(std::size_t c) noexcept {
    if constexpr (!std::is_trivially_destructible_v<V>) {
      MapChunkSlot& s = slots_[c];
      if ((s.status.load(std::memory_order_acquire) & chunk_state) != chunk_done) return;
      destroy_values(c);
      s.status.store(chunk_released, std::memory_order_relaxed);
    } else {
      (void)c;
    }
  }

private:
  static constexpr std::uint32_t inputs_copying = 0;
  static constexpr std::uint32_t inputs_complete = 1;
  static constexpr std::uint32_t inputs_broken = 2;

  void finish_inputs(std::uint32_t how) noexcept {
    if (inputs_word_.exchange(how, std::memory_order_acq_rel) & chunk_waiter)
      futex_wake(inputs_word_, INT_MAX);
  }

  // Where fill reads range R from: a pointer for memcpy, an iterator, or
  // nothing for a range taken over.
  template <class R>
  static constexpr bool memcpy_input =
      std::is_trivially_copyable_v<map_elem_t<R>> && std::ranges::contiguous_range<R> &&
      std::is_same_v<std::remove_cvref_t<std::ranges::range_reference_t<R>>, map_elem_t<R>>;
  template <class R>
  static auto cursor(R& r) {
    if constexpr (map_takes_over<R>)
      return 0;
    else if constexpr (memcpy_input<R>)
      return std::ranges::data(r);
    else
      return std::ranges::begin(r);
  }

  template <std::size_t I, class R, class Cursor>
  void copy_piece(Cursor& from, std::size_t first, std::size_t last) {
    using E = std::tuple_element_t<I, std::tuple<Es...>>;
    MapArgs<E>& a = std::get<I>(inputs_);
    if constexpr (map_takes_over<R>) {
      (void)a;
    } else if constexpr (memcpy_input<R>) {
      std::memcpy(static_cast<void*>(a.data + first), from + first, (last - first) * sizeof(E));
      a.built = last;
    } else {
      for (; a.built < last; ++a.built, ++from) {
        if constexpr (std::is_reference_v<R>)
          ::new (static_cast<void*>(a.data + a.built)) E(*from);
        else
          ::new (static_cast<void*>(a.data + a.built)) E(std::ranges::iter_move(from));
      }
    }
  }

  void free_storage() noexcept {
    if (!storage_) return;
    storage_ = false;
    for (std::size_t c = 0; c < chunks_; ++c) {
      if constexpr (!std::is_trivially_destructible_v<V>)
        if ((slots_[c].status.load(std::memory_order_relaxed) & chunk_state) == chunk_done)
          destroy_values(c);
      std::destroy_at(slots_ + c);
    }
    std::apply([](auto&... a) { (destroy_args(a), ...); }, inputs_);
    cache_->give(block_);
    block_ = {};
    slots_ = nullptr;
    values_ = nullptr;
  }

  static std::size_t place(std::size_t& bytes, std::size_t size) noexcept {
    const std::size_t at = bytes;
    bytes += (size + BlockCache::alignment - 1) / BlockCache::alignment * BlockCache::alignment;
    return at;
  }

  template <std::size_t... I>
  void set_inputs(std::byte* base, const std::array<bool, sizeof...(Es)>& in_block,
                  const std::array<std::size_t, sizeof...(Es)>& at,
                  std::index_sequence<I...>) noexcept {
    ((std::get<I>(inputs_).data =
          in_block[I] ? reinterpret_cast<std::tuple_element_t<I, std::tuple<Es...>>*>(base + at[I])
                      : nullptr),
     ...);
  }

  template <class E>
  static void destroy_args(MapArgs<E>& a) noexcept {
    if (a.taken.empty()) std::destroy_n(a.data, a.built);
    std::vector<E>().swap(a.taken);
    a.data = nullptr;
    a.built = 0;
  }

  // Inputs are passed as rvalues, as the per-task path moves them out of
  // its task; the result is constructed in place.
  template <class F>
  static void call(F& f, const std::tuple<Es*...>& in, V* values, std::size_t i) {
    std::apply(
        [&](Es*... data) {
          if constexpr (std::is_void_v<map_call_result_t<Fn, Es...>>) {
            std::invoke(f, std::move(data[i])...);
            ::new (static_cast<void*>(values + i)) V();
          } else {
            ::new (static_cast<void*>(values + i)) V(std::invoke(f, std::move(data[i])...));
          }
        },
        in);
  }

  // Out of memory for the error list: the chunk fails as a whole with that
  // error; the values of calls [first, upto) go and the calls left are skipped.
  void fail_chunk(std::size_t c, std::size_t upto, std::unique_ptr<std::exception_ptr[]>& errors,
                  std::exception_ptr e) noexcept {
    const std::size_t first = c * chunksize_;
    for (std::size_t i = first; i < upto; ++i)
      if (!errors || !errors[i - first]) std::destroy_at(values_ + i);
    errors.reset();
    slots_[c].whole = std::move(e);
  }

  void destroy_values(std::size_t c) noexcept {
    const std::size_t first = c * chunksize_;
    const std::size_t last = (std::min)(n_, first + chunksize_);
    const std::exception_ptr* errors = slots_[c].errors.get();
    if (slots_[c].whole) return;
    for (std::size_t i = first; i < last; ++i)
      if (errors == nullptr || !errors[i - first]) std::destroy_at(values_ + i);
  }

  std::shared_ptr<BlockCache> cache_;
  Fn fn_;
  const std::size_t n_;
  const std::size_t chunksize_;
  const std::size_t chunks_;
  BlockCache::Block block_;
  MapChunkSlot* slots_ = nullptr;  // chunks_ of them, in block_
  V* values_ = nullptr;            // n_ slots in block_, constructed chunk by chunk
  std::tuple<MapArgs<Es>...> inputs_;
  bool storage_ = true;  // not freed yet
  alignas(64) atomic<std::size_t> next_{0};
  // Chunks whose inputs are in place; inputs_word_ says whether more come
  // (a futex word for claimers that wait for them).
  alignas(64) atomic<std::size_t> ready_{0};
  atomic<std::uint32_t> inputs_word_{inputs_copying};
  atomic<std::size_t> claimers_{1};  // the 1 is map's, while it submits
  atomic<std::size_t> users_{1};     // the MapResult's, plus claimers inside operator()
  atomic<bool> orphaned_{false};     // the MapResult left before iterating
};

/// The task a claimer runs: claims chunks until none is left.
template <class Job, class Fn>
class MapClaimer {
public:
  MapClaimer(std::shared_ptr<Job> job, std::optional<Fn> own, const PoolCore& core)
      : job_(std::move(job)), own_(std::move(own)), core_(&core) {
    job_->add_claimer();
  }
  MapClaimer(MapClaimer&&) noexcept = default;  // leaves job_ null
  MapClaimer& operator=(MapClaimer&&) = delete;
  ~MapClaimer() {
    if (job_) job_->claimer_gone();
  }
  void operator()() {
    if (!job_->enter()) return;  // the map is over and its storage gone
    Fn& f = own_ ? *own_ : job_->fn();
    // Stops claiming at shutdown(cancel_futures), as Python cancels the
    // calls not started; the chunks left are abandoned when the last
    // claimer is gone.
    while (!core_->cancelling()) {
      const std::size_t c = job_->claim();
      if (c >= job_->chunks()) break;
      if (!job_->wait_inputs(c)) break;  // reading the inputs failed
      job_->run_chunk(c, f);
    }
    job_->leave();
  }

private:
  std::shared_ptr<Job> job_;
  std::optional<Fn> own_;  // the claimer's copy of a copyable function
  const PoolCore* core_;   // outlives its tasks
};

/// The MapResult side of a MapJob: waits for chunks in order, runs chunks
/// itself while it waits if allowed (see MapOptions::chunksize), and
/// cancels what has not started when an iterated result is destroyed.
template <class V, class Fn, class... Es>
class MapJobSource final : public MapSource<V> {
  using Job = MapJob<V, Fn, Es...>;

public:
  MapJobSource(std::shared_ptr<Job> job, std::optional<Clock::time_point> deadline,
               bool caller_runs)
      : job_(std::move(job)), deadline_(deadline), caller_runs_(caller_runs) {}

  /// Submits one claimer per worker, up to one per chunk. Throws: as
  /// submit, if not even the first could be submitted (the others only
  /// help: the first alone would run every chunk).
  void start(const std::shared_ptr<PoolCore>& pool) {
    PoolCore& core = *pool;
    struct Done {  // map's own count, released once the claimers are out
      Job& job;
      ~Done() { job.claimer_gone(); }
    } done{*job_};
    core_ = pool;
    pool_id_ = &core;
    const std::size_t k = (std::min)(job_->chunks(), core.max_workers());
    claimers_.reserve(k);
    for (std::size_t i = 0; i < k; ++i) {
      try {
        std::optional<Fn> own;
        if constexpr (Job::copy_fn) own.emplace(job_->fn());
        claimers_.push_back(submit_to(core, MapClaimer<Job, Fn>(job_, std::move(own), core)));
      } catch (...) {
        if (i == 0) throw;
        break;
      }
    }
  }

  /// map's copy of the inputs threw: see MapJob::inputs_failed.
  void inputs_failed() noexcept {
    job_->inputs_failed();
    close(false);
  }

  MapSpan<V> load(std::size_t pos) override {
    const std::size_t cs = job_->chunksize();
    const std::size_t c = pos / cs;
    // The values of chunks passed are dropped as the iteration moves on, as
    // Python drops each future once it yielded it.
    for (; released_ < c; ++released_) job_->release(released_);
    MapChunkSlot& s = job_->slot(c);
    std::uint32_t st = s.status.load(std::memory_order_acquire) & chunk_state;
    if (st == chunk_pending) st = wait(c, pos);
    if (st == chunk_cancelled) throw_cancelled();
    const std::size_t first = c * cs;
    const std::size_t last = (std::min)(job_->size(), first + cs);
    std::size_t end = last;
    if (s.whole) std::rethrow_exception(s.whole);
    if (const std::exception_ptr* errors = s.errors.get()) {
      if (errors[pos - first]) std::rethrow_exception(errors[pos - first]);
      end = pos + 1;
      while (end < last && !errors[end - first]) ++end;
    }
    return {job_->values() + pos, end - pos};
  }

  void skip(std::size_t) override {}
  bool at_end(std::size_t pos) noexcept override { return pos >= job_->size(); }

  ~MapJobSource() override {
    if (!closed_) close(true);  // start() failed: no claimer runs
  }

  void close(bool started) noexcept override {
    closed_ = true;
    if (!started) {
      job_->leave_after_claimers();  // un-iterated: every call still runs, as in Python
      return;
    }
    job_->stop();
    for (auto& f : claimers_) f.cancel();
    job_->leave();
  }

private:
  // Waits until chunk `c` is done or cancelled; returns its state.
  std::uint32_t wait(std::size_t c, std::size_t pos) {
    MapChunkSlot& s = job_->slot(c);
    auto state = [&s] { return s.status.load(std::memory_order_acquire) & chunk_state; };
    // Run chunks nobody has claimed (this one first, as it is the lowest
    // unclaimed if it is unclaimed) instead of sleeping: as the caller of
    // tbb::parallel_for takes part (chunksize > 1, see MapOptions), and on
    // a worker of the pool whatever the chunksize, as a worker's untimed
    // wait on a future runs the awaited task (the claimers may be queued
    // behind the iterating task).
    const bool on_worker = tl_pool == pool_id_;
    if (caller_runs_ || (on_worker && !deadline_)) {
      if (const std::shared_ptr<PoolCore> core = core_.lock()) {
        while (state() == chunk_pending && !core->cancelling()) {
          if (on_worker) check_inline_depth();  // before claiming: may throw
          const std::size_t mine = job_->claim();
          if (mine >= job_->chunks()) break;
          if (on_worker) {
            const InlineDepth depth;
            job_->run_chunk(mine, job_->fn());
          } else {
            job_->run_chunk(mine, job_->fn());
          }
        }
      }
    }
    Backoff backoff;
    while (backoff.step())
      if (state() != chunk_pending) return state();
    std::uint32_t word = s.status.load(std::memory_order_acquire);
    for (;;) {
      if ((word & chunk_state) != chunk_pending) return word & chunk_state;
      if (deadline_ && Clock::now() >= *deadline_)
        throw TimeoutError("ThreadPoolExecutor::map: result " + std::to_string(pos) +
                           " not done within the timeout");
      if (!(word & chunk_waiter) &&
          !s.status.compare_exchange_weak(word, word | chunk_waiter, std::memory_order_acquire))
        continue;
      futex_wait(s.status, word | chunk_waiter, deadline_);
      word = s.status.load(std::memory_order_acquire);
    }
  }

  // A chunk no claimer will run: its claimers were cancelled (shutdown with
  // cancel_futures), or failed with the pool (BrokenExecutor).
  [[noreturn]] void throw_cancelled() {
    for (auto& f : claimers_) {
      auto* st = FutureAccess::state(f);
      if (st->status() == st_finished && st->error_) std::rethrow_exception(st->error_);
    }
    throw CancelledError();
  }

  std::shared_ptr<Job> job_;
  // Set by start. Weak: the pool may be gone while the results live on (then
  // every chunk is done or abandoned: its shutdown ran the claimers).
  std::weak_ptr<PoolCore> core_;
  const void* pool_id_ = nullptr;
  std::vector<Future<void>> claimers_;
  std::optional<Clock::time_point> deadline_;
  bool caller_runs_;
  std::size_t released_ = 0;  // chunks before this one had their values released
  bool closed_ = false;
};

/// Makes the job of a map and reads its inputs (zipped, stopping at the
/// shortest): an rvalue std::vector is taken over whole; unsized ranges
/// are read in step, element by element, into vectors the job takes over;
/// the other sized ranges are left for fill_map_job, which copies them
/// into the job's block (memcpy for contiguous ranges of trivially
/// copyable elements) once the claimers are submitted. Elements are moved
/// out of ranges passed as rvalues.
template <class V, class Fn, class F, class... Rs>
auto make_map_job(std::shared_ptr<BlockCache> cache, F&& fn, std::size_t chunksize, Rs&&... rs) {
  using Job = MapJob<V, Fn, map_elem_t<Rs>...>;
  auto refs = std::forward_as_tuple(std::forward<Rs>(rs)...);
  if constexpr ((std::ranges::sized_range<Rs> && ...)) {
    const std::size_t n = (std::min)({static_cast<std::size_t>(std::ranges::size(rs))...});
    auto job = std::make_shared<Job>(std::move(cache), std::forward<F>(fn), n, chunksize,
                                     std::array<bool, sizeof...(Rs)>{!map_takes_over<Rs>...});
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (job->template take_over_if<I, Rs>(std::get<I>(refs)), ...);
    }(std::index_sequence_for<Rs...>{});
    return job;
  } else {
    std::tuple<MapInput<Rs>...> ins(std::forward<Rs>(rs)...);
    std::tuple<std::vector<map_elem_t<Rs>>...> read;
    std::size_t n = 0;
    // Checks every range before taking from any, as the per-task feed does.
    while (!std::apply([](auto&... in) { return (in.at_end() || ...); }, ins)) {
      [&]<std::size_t... I>(std::index_sequence<I...>) {
        (std::get<I>(read).push_back(std::get<I>(ins).take()), ...);
      }(std::index_sequence_for<Rs...>{});
      ++n;
    }
    // Taken over, but for std::vector<bool>: copied into the block.
    auto job = std::make_shared<Job>(
        std::move(cache), std::forward<F>(fn), n, chunksize,
        std::array<bool, sizeof...(Rs)>{std::is_same_v<map_elem_t<Rs>, bool>...});
    [&]<std::size_t... I>(std::index_sequence<I...>) {
      (job->template take_over_if<I, std::vector<map_elem_t<Rs>>>(std::get<I>(read)), ...);
      job->fill(std::move(std::get<I>(read))...);
    }(std::index_sequence_for<Rs...>{});
    return job;
  }
}

template <class Job, class... Rs>
void fill_map_job(Job& job, Rs&&... rs) {
  if constexpr ((std::ranges::sized_range<Rs> && ...)) job.fill(std::forward<Rs>(rs)...);
}

}  // namespace spindle::detail
