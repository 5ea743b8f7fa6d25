// SPDX-License-Identifier: MIT
// tests/relacy/model.hpp - shared scaffolding of the Relacy model-checking tests.
//
// Each test program includes the REAL spindle headers with
// SPINDLE_MODEL_CHECK=1 (set by CMakeLists.txt), so their atomics, fences,
// futex calls and spin-loop yields are Relacy's (see detail/atomic.hpp).
#pragma once

#if !SPINDLE_MODEL_CHECK
#error "tests/relacy must be built with SPINDLE_MODEL_CHECK=1"
#endif

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include <spindle/detail/atomic.hpp>

namespace model {

/// How a test explores: every interleaving (full search, optionally bounded
/// by preemptions) or a random sample of `iterations` executions.
struct Search {
  rl::scheduler_type_e type = rl::sched_random;
  unsigned long iterations = 0;  // random search only
  unsigned context_bound = 0;    // sched_bound only
};

/// Runs `Test` under Relacy; prints Relacy's report (the failing execution's
/// history if any) and returns the process exit code. RELACY_ITERATIONS in
/// the environment overrides a random search's iteration count.
template <class Test>
int run(const char* name, Search search) {
  rl::test_params params;
  params.search_type = search.type;
  if (search.type == rl::sched_random) {
    params.iteration_count = search.iterations;
    if (const char* env = std::getenv("RELACY_ITERATIONS")) params.iteration_count = std::strtoul(env, nullptr, 10);
  }
  if (search.type == rl::sched_bound) params.context_bound = search.context_bound;
  params.test_name = name;
  const bool ok = rl::simulate<Test>(params);
  std::printf("%s: %s, %s, %llu executions\n", name, ok ? "passed" : "FAILED",
              rl::format(params.search_type), static_cast<unsigned long long>(params.stop_iteration));
  return ok ? 0 : 1;
}

}  // namespace model
