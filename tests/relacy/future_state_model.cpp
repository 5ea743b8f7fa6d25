// SPDX-License-Identifier: MIT
// tests/relacy/future_state_model.cpp - the future state machine (set/cancel/
// callback/wait/release races, an executor task run by a worker and inline)
// under Relacy.
#include "model.hpp"

#include <memory>
#include <optional>

#include <spindle/detail/future_state.hpp>

namespace {

using spindle::detail::CallbackNode;
using spindle::detail::ResultState;
using spindle::detail::StateBase;
using spindle::detail::st_cancelled;
using spindle::detail::st_finished;
using spindle::detail::TaskState;

// Runs of the waiter that really parked in the modelled futex, summed over
// the executions of a test: evidence the sleeper path was explored.
long total_parked = 0;

// A waiter spins and yields (Backoff) before it sleeps, and a yield hands
// the scheduler to the others: a completer that yields as often lets the
// search reach executions where the waiter sleeps in the futex first.
void dawdle() {
  for (int i = 0; i < 5; ++i) rl::yield(1, $);
}

template <class Derived, unsigned Threads>
struct StateTest : rl::test_suite<Derived, Threads> {
  spindle::detail::ModelFutexes futexes;
  std::unique_ptr<ResultState<int>> state = std::make_unique<ResultState<int>>(1);
  rl::var<int> payload;  // written with the result, read once done is seen
  ~StateTest() { total_parked += futexes.parked; }

  // A waiter that saw `done` reads the result: Relacy checks it is ordered.
  void wait_and_check() {
    RL_ASSERT(state->block_until(std::nullopt));
    if (state->status() == st_finished) {
      RL_ASSERT(payload($) == 42);
      RL_ASSERT(state->value_ && *state->value_ == 42);
    } else {
      RL_ASSERT(state->status() == st_cancelled);
    }
  }
};

// Promise::set_result vs Future::cancel vs Future::result(): exactly one of
// set and cancel wins; the waiter wakes either way and sees the value.
struct SetCancelWait : StateTest<SetCancelWait, 3> {
  bool set_ok = false;
  bool cancel_ok = false;
  void thread(unsigned t) {
    if (t == 0) {
      RL_ASSERT(state->claim());
      dawdle();
      payload($) = 42;
      state->value_.emplace(42);
      set_ok = state->try_finish();
    } else if (t == 1) {
      dawdle();
      cancel_ok = state->cancel();
    } else {
      wait_and_check();
    }
  }
  void after() {
    RL_ASSERT(set_ok != cancel_ok);
    RL_ASSERT(state->status() == (set_ok ? st_finished : st_cancelled));
  }
};

// add_done_callback races with completion (from two threads): each callback
// runs exactly once, after the state is done, and sees the result.
struct CallbacksRaceCompletion : StateTest<CallbacksRaceCompletion, 3> {
  int runs[2] = {0, 0};
  struct Probe final : CallbackNode {
    CallbacksRaceCompletion* test = nullptr;
    int index = 0;
    void invoke(StateBase& s) noexcept override {
      RL_ASSERT(s.done());
      RL_ASSERT(test->payload($) == 42);
      ++test->runs[index];
    }
  };
  void thread(unsigned t) {
    if (t == 0) {
      RL_ASSERT(state->try_start());
      payload($) = 42;
      state->value_.emplace(42);
      state->finish_running();
    } else {
      auto* node = new Probe;
      node->test = this;
      node->index = static_cast<int>(t) - 1;
      state->add_callback(node);
    }
  }
  void after() { RL_ASSERT(runs[0] == 1 && runs[1] == 1); }
};

// The last release() deletes the state, after both owners' writes.
struct ReleaseRace : rl::test_suite<ReleaseRace, 2> {
  rl::var<int> cell[2];
  int deleted = 0;
  struct Probe final : ResultState<int> {
    ReleaseRace* test;
    explicit Probe(ReleaseRace* t) : ResultState<int>(2), test(t) {}
    ~Probe() override {
      RL_ASSERT(test->cell[0]($) == 1 && test->cell[1]($) == 1);  // both ordered before
      ++test->deleted;
    }
  };
  Probe* probe = new Probe(this);
  void thread(unsigned t) {
    cell[t]($) = 1;
    probe->release();
  }
  void after() { RL_ASSERT(deleted == 1); }
};

// An executor task: a worker's execute() races with a waiter running it
// inline (try_run_here) and a cancel(): the function runs at most once,
// exactly once unless cancelled first, and the waiter sees its result.
struct TaskRunOnce : rl::test_suite<TaskRunOnce, 3> {
  spindle::detail::ModelFutexes futexes;
  rl::var<int> payload;
  int runs = 0;
  bool cancelled = false;
  struct Fn {
    TaskRunOnce* test;
    int operator()() const {
      ++test->runs;
      test->payload($) = 42;
      return 42;
    }
  };
  TaskState<int, Fn>* task = new TaskState<int, Fn>(Fn{this});  // refs: future + queue
  ~TaskRunOnce() { total_parked += futexes.parked; }
  void thread(unsigned t) {
    if (t == 0) {
      dawdle();
      task->execute();  // drops the queue's reference
    } else if (t == 1) {
      if (!task->run_inline()) RL_ASSERT(task->block_until(std::nullopt));
      if (task->status() == st_finished) {
        RL_ASSERT(payload($) == 42);
        RL_ASSERT(task->value_ && *task->value_ == 42);
      }
    } else {
      dawdle();
      cancelled = task->cancel();
    }
  }
  void after() {
    RL_ASSERT(runs == (cancelled ? 0 : 1));
    RL_ASSERT(task->status() == (cancelled ? st_cancelled : st_finished));
    task->release();  // the future's reference
  }
};

}  // namespace

int main() {
  int failed = 0;
  failed += model::run<ReleaseRace>("future state: last release deletes", {rl::sched_full, 0, 0});
  failed += model::run<SetCancelWait>("future state: set vs cancel vs wait",
                                      {rl::sched_bound, 0, 2});
  std::printf("  (the waiter parked in the futex %ld times)\n", total_parked);
  failed += model::run<CallbacksRaceCompletion>("future state: callbacks vs completion",
                                                {rl::sched_random, 100000, 0});
  total_parked = 0;
  failed += model::run<TaskRunOnce>("future state: execute vs run_inline vs cancel",
                                    {rl::sched_bound, 0, 2});
  std::printf("  (a waiter parked in the futex %ld times)\n", total_parked);
  return failed == 0 ? 0 : 1;
}
