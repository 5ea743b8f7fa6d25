// SPDX-License-Identifier: MIT
// tests/relacy/task_queue_model.cpp - TaskList guarded by SpinLock under Relacy.
//
// TaskList itself is not thread-safe by design (its owner's lock guards it);
// what concurrency depends on is that the lock (detail/spin_lock.hpp, whose
// atomics are Relacy's here) orders the links and each task's contents
// between the pushing and the popping thread. Tasks carry an rl::var written
// before the push, so a lock that failed to order them is a reported race.
#include "model.hpp"

#include <mutex>

#include <spindle/detail/spin_lock.hpp>
#include <spindle/detail/task_queue.hpp>

namespace {

using spindle::detail::SpinLock;
using spindle::detail::StateBase;
using spindle::detail::TaskList;

struct Task final : StateBase {
  Task() : StateBase(1) {}
  rl::var<int> id;
};

constexpr int per_producer = 2;

// Two producers push (one singly, one as a batch via append), one consumer
// pops one at a time and then the rest with pop_front: every task comes out
// once, each producer's in order, and its contents were seen.
struct PushPop : rl::test_suite<PushPop, 3> {
  spindle::detail::ModelFutexes futexes;
  SpinLock lock;
  TaskList list;
  Task tasks[2 * per_producer];
  int seen[2 * per_producer] = {};
  int last_from[2] = {-1, -1};

  void consume(StateBase* s) {
    auto* task = static_cast<Task*>(s);
    const int id = task->id($);
    RL_ASSERT(task == &tasks[id]);
    RL_ASSERT(id > last_from[id / per_producer]);
    last_from[id / per_producer] = id;
    ++seen[id];
  }

  void thread(unsigned t) {
    if (t == 0) {
      for (int i = 0; i < per_producer; ++i) {
        tasks[i].id($) = i;
        std::lock_guard guard(lock);
        list.push(&tasks[i]);
      }
    } else if (t == 1) {
      TaskList batch;
      for (int i = per_producer; i < 2 * per_producer; ++i) {
        tasks[i].id($) = i;
        batch.push(&tasks[i]);
      }
      std::lock_guard guard(lock);
      list.append(std::move(batch));
    } else {
      int got = 0;
      while (got < 2 * per_producer) {
        StateBase* one = nullptr;
        TaskList rest;
        {
          std::lock_guard guard(lock);
          one = list.pop();
          if (one != nullptr) rest = list.pop_front(1);
        }
        if (one == nullptr) {
          rl::yield(1, $);
          continue;
        }
        consume(one);
        ++got;
        while (StateBase* s = rest.pop()) {
          consume(s);
          ++got;
        }
      }
    }
  }
  void after() {
    for (int i = 0; i < 2 * per_producer; ++i) RL_ASSERT(seen[i] == 1);
    RL_ASSERT(list.empty() && list.size() == 0);
  }
};

}  // namespace

int main() {
  return model::run<PushPop>("task queue: push/append vs pop/pop_front under SpinLock",
                             {rl::sched_random, 100000, 0});
}
