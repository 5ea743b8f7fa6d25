// SPDX-License-Identifier: MIT
// examples/factorize/factorize.hpp - Effective Python Item 53's naive
// factorization, shared by the factorize example and the CPU-bound benchmarks.
#pragma once

#include <cstdint>
#include <vector>

namespace item53 {

using Factors = std::vector<std::uint64_t>;

/// The book's generator: every i in [1, number] that divides number. Slow on
/// purpose: a stand-in for CPU-bound work.
inline Factors factorize(std::uint64_t number) {
  Factors factors;
  for (std::uint64_t i = 1; i <= number; ++i)
    if (number % i == 0) factors.push_back(i);
  return factors;
}

}  // namespace item53
