// SPDX-License-Identifier: MIT
// tests/relacy/segmented_list_model.cpp - SegmentedList (unbounded MPMC with close) under Relacy.
#include "model.hpp"

#include <memory>
#include <optional>

#include <spindle/detail/segmented_list.hpp>

namespace {

using spindle::detail::PopResult;
using spindle::detail::PushResult;
using spindle::detail::SegmentedList;

// An item names a cell its producer wrote (an rl::var: Relacy reports a data
// race if the pop does not happen after that write).
struct Item {
  int id = -1;
};

constexpr int max_items = 40;
constexpr int slots_per_block = 31;

template <class Derived, unsigned Threads>
struct ListTest : rl::test_suite<Derived, Threads> {
  spindle::detail::ModelFutexes futexes;
  // On the heap: the list is alignas(64) and Relacy mallocs the test.
  std::unique_ptr<SegmentedList<Item>> list_ptr = std::make_unique<SegmentedList<Item>>();
  SegmentedList<Item>& list = *list_ptr;
  rl::var<int> cell[max_items];
  int popped_count[max_items] = {};
  int pushed_ok[max_items] = {};
  int popped_before = 0;  // popped single-threaded in before()

  bool push(int id) {
    cell[id]($) = 100 + id;
    Item item{id};
    const PushResult r = list.try_push(item);
    RL_ASSERT(r != PushResult::full);
    if (r != PushResult::ok) return false;
    pushed_ok[id] = 1;
    return true;
  }

  PopResult pop(int& id) {
    for (;;) {
      std::optional<Item> out;
      const PopResult r = list.try_pop(out);
      if (r == PopResult::ok) {
        id = out->id;
        RL_ASSERT(id >= 0 && id < max_items);
        RL_ASSERT(cell[id]($) == 100 + id);
        ++popped_count[id];
        return r;
      }
      if (r == PopResult::closed) return r;
      rl::yield(1, $);
    }
  }

  // Pops without retrying on empty (for consumers that stop on their own).
  bool try_pop_once(int& id) {
    std::optional<Item> out;
    if (list.try_pop(out) != PopResult::ok) return false;
    id = out->id;
    RL_ASSERT(cell[id]($) == 100 + id);
    ++popped_count[id];
    return true;
  }

  void check_exactly_once(int n) {
    for (int i = 0; i < n; ++i) RL_ASSERT(popped_count[i] == pushed_ok[i]);
  }
};

// Two producers, one consumer that drains until closed (first block only;
// the first push installs the block while the consumer may already look).
struct ProducersConsumerClose : ListTest<ProducersConsumerClose, 3> {
  int last_from[2] = {-1, -1};
  void thread(unsigned t) {
    if (t < 2) {
      push(2 * static_cast<int>(t));
      push(2 * static_cast<int>(t) + 1);
      if (t == 1) list.close();
    } else {
      int id = -1;
      while (pop(id) == PopResult::ok) {
        RL_ASSERT(id > last_from[id / 2]);  // FIFO per producer
        last_from[id / 2] = id;
      }
    }
  }
  void after() {
    check_exactly_once(4);
    RL_ASSERT(list.size() == 0);
  }
};

// Across a block boundary: before() fills slots 0..28 of the first block and
// pops 0..26, so the threads race on its last slots, the installation of
// the second block, and the hand-over of the first block's deletion (the
// last reader frees it, or the reader of slot 30 sets DESTROY on slots
// still being read and their reader frees it).
struct BlockBoundary : ListTest<BlockBoundary, 3> {
  static constexpr int prefilled = 29;
  static constexpr int prepopped = 27;
  int last_of[2] = {-1, -1};
  void before() {
    for (int i = 0; i < prefilled; ++i) RL_ASSERT(push(i));
    for (int i = 0; i < prepopped; ++i) {
      int id = -1;
      RL_ASSERT(try_pop_once(id) && id == i);
    }
  }
  void thread(unsigned t) {
    if (t == 0) {
      // Slots 29 and 30 (the block's last, whose pusher installs block 2),
      // then the first slot of block 2.
      for (int i = prefilled; i < slots_per_block + 2; ++i) RL_ASSERT(push(i));
      list.close();
    } else {
      int id = -1;
      while (pop(id) == PopResult::ok) {
        RL_ASSERT(id > last_of[t - 1]);
        last_of[t - 1] = id;
      }
    }
  }
  void after() {
    check_exactly_once(slots_per_block + 2);
    RL_ASSERT(list.size() == 0);
  }
};

// Linearizability of "empty" (the store-buffering shape): each thread pushes
// into its own list, then polls the other's; both polls cannot say empty.
// This is what the seq_cst fence before try_pop's tail read buys.
struct EmptyIsLinearizable : rl::test_suite<EmptyIsLinearizable, 2> {
  spindle::detail::ModelFutexes futexes;
  std::unique_ptr<SegmentedList<Item>> lists[2] = {std::make_unique<SegmentedList<Item>>(),
                                                   std::make_unique<SegmentedList<Item>>()};
  PopResult polled[2] = {PopResult::ok, PopResult::ok};
  void before() {
    // Install both first blocks, so the race is on the indices alone.
    for (auto& list : lists) {
      Item item{0};
      std::optional<Item> out;
      RL_ASSERT(list->try_push(item) == PushResult::ok);
      RL_ASSERT(list->try_pop(out) == PopResult::ok);
    }
  }
  void thread(unsigned t) {
    Item item{static_cast<int>(t)};
    RL_ASSERT(lists[t]->try_push(item) == PushResult::ok);
    std::optional<Item> out;
    polled[t] = lists[1 - t]->try_pop(out);
  }
  void after() { RL_ASSERT(polled[0] == PopResult::ok || polled[1] == PopResult::ok); }
};

}  // namespace

int main() {
  int failed = 0;
  failed += model::run<EmptyIsLinearizable>("segmented list: empty is linearizable",
                                            {rl::sched_random, 100000, 0});
  failed += model::run<ProducersConsumerClose>("segmented list: 2 producers, 1 consumer, close",
                                               {rl::sched_random, 100000, 0});
  failed += model::run<BlockBoundary>("segmented list: block boundary, 1 producer, 2 consumers",
                                      {rl::sched_random, 50000, 0});
  return failed == 0 ? 0 : 1;
}
