// SPDX-License-Identifier: MIT
// spindle/detail/queue_iteration.hpp - which range-for iterations over which
// queues the calling thread is inside, so that task_done() can tell a call
// for the loop's current item from any other.
#pragma once

namespace spindle::detail {

/// One range-for iteration in progress on this thread: the loop's iterator
/// holds an item of `queue` that the loop has not marked done yet. The frame
/// lives inside the iterator and is linked into the list of the thread that
/// took the item while the iterator holds it; it is only ever read or
/// written by that thread (an iterator is a single-thread object), so plain
/// members suffice.
struct IterationFrame {
  const void* queue = nullptr;
  IterationFrame* below = nullptr;  // the next older frame of this thread
  IterationFrame* above = nullptr;  // the next newer frame of this thread
  IterationFrame** top = nullptr;   // the list this frame is linked into
  bool marked = false;              // the body's task_done() marked the item
};

/// The newest frame of the calling thread; nullptr outside any range-for
/// body. Constant-initialized, so access needs no TLS wrapper call.
inline thread_local IterationFrame* iteration_top = nullptr;

/// Links `f` as the calling thread's newest frame, for `queue`.
inline void link_frame(IterationFrame& f, const void* queue) noexcept {
  f.queue = queue;
  f.marked = false;
  f.top = &iteration_top;
  f.below = iteration_top;
  f.above = nullptr;
  if (f.below != nullptr) f.below->above = &f;
  iteration_top = &f;
}

/// Unlinks `f` from the list it was linked into (frames may end in any
/// order: two iterators can be alive at once).
inline void unlink_frame(IterationFrame& f) noexcept {
  if (f.below != nullptr) f.below->above = f.above;
  if (f.above != nullptr)
    f.above->below = f.below;
  else
    *f.top = f.below;
  f.below = f.above = nullptr;
  f.top = nullptr;
}

/// Puts `to` in the list where `from` was (an iterator holding an item was
/// moved); `from` ends unlinked.
inline void move_frame(IterationFrame& from, IterationFrame& to) noexcept {
  to = from;
  if (to.below != nullptr) to.below->above = &to;
  if (to.above != nullptr)
    to.above->below = &to;
  else
    *to.top = &to;
  from.below = from.above = nullptr;
  from.top = nullptr;
}

/// The calling thread's newest frame over `queue` (the innermost range-for
/// over it), or nullptr. Costs one thread-local load outside range-for bodies.
inline IterationFrame* innermost_frame(const void* queue) noexcept {
  for (IterationFrame* f = iteration_top; f != nullptr; f = f->below)
    if (f->queue == queue) return f;
  return nullptr;
}

}  // namespace spindle::detail
