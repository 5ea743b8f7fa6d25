// SPDX-License-Identifier: MIT
// examples/primes/primes.hpp - Fluent Python ch. 19's primes.py: the NUMBERS
// to check and the naive is_prime (shared with examples/spinner).
#pragma once

#include <array>
#include <cmath>
#include <cstdint>

namespace examples::primes {

/// The book's NUMBERS (primes.py): large primes, and composites that are
/// either easy (small factors) or as slow to check as primes (squares of
/// primes near the square root).
inline constexpr std::array<std::uint64_t, 20> numbers{
    2,
    142'702'110'479'723,
    299'593'572'317'531,
    3'333'333'333'333'301,
    3'333'333'333'333'333,
    3'333'335'652'092'209,
    4'444'444'444'444'423,
    4'444'444'444'444'444,
    4'444'444'488'888'889,
    5'555'553'133'149'889,
    5'555'555'555'555'503,
    5'555'555'555'555'555,
    6'666'666'666'666'666,
    6'666'666'666'666'719,
    6'666'667'141'414'921,
    7'777'777'536'340'681,
    7'777'777'777'777'753,
    7'777'777'777'777'777,
    9'999'999'999'999'917,
    9'999'999'999'999'999,
};

/// floor(sqrt(n)) exactly (Python's math.isqrt): the double estimate is
/// corrected with divisions, which cannot overflow.
inline std::uint64_t isqrt(std::uint64_t n) {
  if (n < 2) return n;
  auto r = static_cast<std::uint64_t>(std::sqrt(static_cast<double>(n)));
  while (r > n / r) --r;
  while (r + 1 <= n / (r + 1)) ++r;
  return r;
}

/// The book's is_prime: trial division by 2 and the odd numbers up to
/// isqrt(n). Deliberately naive: it is the CPU-bound work of the examples.
inline bool is_prime(std::uint64_t n) {
  if (n < 2) return false;
  if (n == 2) return true;
  if (n % 2 == 0) return false;
  const std::uint64_t root = isqrt(n);
  for (std::uint64_t i = 3; i <= root; i += 2)
    if (n % i == 0) return false;
  return true;
}

}  // namespace examples::primes
