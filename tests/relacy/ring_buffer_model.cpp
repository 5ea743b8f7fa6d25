// SPDX-License-Identifier: MIT
// tests/relacy/ring_buffer_model.cpp - RingBuffer (MPMC push/pop/close) under Relacy.
#include "model.hpp"

#include <memory>
#include <optional>

#include <spindle/detail/ring_buffer.hpp>

namespace {

using spindle::detail::PopResult;
using spindle::detail::PushResult;
using spindle::detail::RingBuffer;

// An item names a cell the producer wrote (an rl::var, so Relacy reports a
// data race if the pop does not happen after that write).
struct Item {
  int id = -1;
};

constexpr int n_items = 4;

// Shared by every test below: cells, who popped what, and pop order.
template <class Derived, unsigned Threads>
struct RingTest : rl::test_suite<Derived, Threads> {
  spindle::detail::ModelFutexes futexes;
  // Capacity 2: 4 items wrap a lap and hit "full". On the heap: Relacy
  // mallocs the test object, which would misalign the ring's alignas(64).
  std::unique_ptr<RingBuffer<Item>> ring_ptr = std::make_unique<RingBuffer<Item>>(2);
  RingBuffer<Item>& ring = *ring_ptr;
  rl::var<int> cell[n_items];
  int popped_count[n_items] = {};
  int pushed_ok[n_items] = {};

  // Pushes `id` (after writing its cell), retrying while full; false if closed.
  bool push(int id) {
    cell[id]($) = 100 + id;
    Item item{id};
    for (;;) {
      const PushResult r = ring.try_push(item);
      if (r == PushResult::ok) {
        pushed_ok[id] = 1;
        return true;
      }
      if (r == PushResult::closed) return false;
      rl::yield(1, $);  // full: wait for a consumer
    }
  }

  // Pops one item; PopResult::empty is retried, so this returns ok or closed.
  PopResult pop(int& id) {
    for (;;) {
      std::optional<Item> out;
      const PopResult r = ring.try_pop(out);
      if (r == PopResult::ok) {
        id = out->id;
        RL_ASSERT(id >= 0 && id < n_items);
        RL_ASSERT(cell[id]($) == 100 + id);  // published by the push
        ++popped_count[id];
        return r;
      }
      if (r == PopResult::closed) return r;
      rl::yield(1, $);
    }
  }

  void check_exactly_once() {
    for (int i = 0; i < n_items; ++i) RL_ASSERT(popped_count[i] == pushed_ok[i]);
    RL_ASSERT(ring.size() == 0);
  }
};

// Two producers (FIFO each), one consumer that drains until closed; the
// second producer closes after its pushes. Nothing pushed is lost, nothing
// is popped twice, per-producer order holds, and `closed` is only reported
// once every successful push has been popped.
struct ProducersConsumerClose : RingTest<ProducersConsumerClose, 3> {
  int last_from[2] = {-1, -1};
  void thread(unsigned t) {
    if (t == 0) {
      push(0);
      push(1);
    } else if (t == 1) {
      push(2);
      push(3);
      RL_ASSERT(ring.close());
      RL_ASSERT(!ring.close());
      Item late{0};
      RL_ASSERT(ring.try_push(late) == PushResult::closed);
    } else {
      int id = -1;
      while (pop(id) == PopResult::ok) {
        const int producer = id / 2;
        RL_ASSERT(id > last_from[producer]);  // FIFO per producer
        last_from[producer] = id;
      }
    }
  }
  void after() {
    // Producer 1 closes after its own pushes, which all succeeded.
    RL_ASSERT(pushed_ok[2] && pushed_ok[3]);
    check_exactly_once();
  }
};

// Two consumers race for the items of one producer that closes at the end:
// each item goes to exactly one consumer, each consumer sees them in order,
// and both consumers end with `closed` only after the ring is empty.
struct ProducerConsumersClose : RingTest<ProducerConsumersClose, 3> {
  int last_of[2] = {-1, -1};
  void thread(unsigned t) {
    if (t == 0) {
      for (int i = 0; i < n_items; ++i) RL_ASSERT(push(i));
      ring.close();
    } else {
      int id = -1;
      while (pop(id) == PopResult::ok) {
        RL_ASSERT(id > last_of[t - 1]);
        last_of[t - 1] = id;
      }
    }
  }
  void after() { check_exactly_once(); }
};

// Close races with a push: the push either lands (and is popped before
// `closed`) or fails with `closed`; nothing lands after close.
struct PushRacesClose : RingTest<PushRacesClose, 3> {
  void thread(unsigned t) {
    if (t == 0) {
      push(0);
      push(1);
    } else if (t == 1) {
      ring.close();
    } else {
      int id = -1;
      while (pop(id) == PopResult::ok) {
      }
      RL_ASSERT(ring.size() == 0);
    }
  }
  void after() {
    RL_ASSERT(pushed_ok[0] || !pushed_ok[1]);  // FIFO: 1 never lands without 0
    check_exactly_once();
  }
};

// Linearizability of "empty" (the store-buffering shape): each thread pushes
// into its own ring, then polls the other's. If both polls said empty,
// neither push would precede the other's poll, which no sequential order
// allows. This is what the seq_cst fence before try_pop's tail read buys.
struct EmptyIsLinearizable : rl::test_suite<EmptyIsLinearizable, 2> {
  spindle::detail::ModelFutexes futexes;
  std::unique_ptr<RingBuffer<Item>> rings[2] = {std::make_unique<RingBuffer<Item>>(2),
                                                std::make_unique<RingBuffer<Item>>(2)};
  PopResult polled[2] = {PopResult::ok, PopResult::ok};
  void thread(unsigned t) {
    Item item{static_cast<int>(t)};
    RL_ASSERT(rings[t]->try_push(item) == PushResult::ok);
    std::optional<Item> out;
    polled[t] = rings[1 - t]->try_pop(out);
  }
  void after() { RL_ASSERT(polled[0] == PopResult::ok || polled[1] == PopResult::ok); }
};

}  // namespace

int main() {
  int failed = 0;
  failed += model::run<EmptyIsLinearizable>("ring: empty is linearizable", {rl::sched_random, 100000, 0});
  failed += model::run<PushRacesClose>("ring: a push racing close", {rl::sched_bound, 0, 3});
  failed += model::run<ProducersConsumerClose>("ring: 2 producers, 1 consumer, close",
                                               {rl::sched_random, 200000, 0});
  failed += model::run<ProducerConsumersClose>("ring: 1 producer, 2 consumers, close",
                                               {rl::sched_random, 200000, 0});
  return failed == 0 ? 0 : 1;
}
