// SPDX-License-Identifier: MIT
// tests/support/sanitizers.hpp - which sanitizer a test binary is built with,
// so stress loops can scale down under ThreadSanitizer (~10x slower) and stay
// within their CTest time budget.
#pragma once

namespace spindle_test {

#if defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_TEST_TSAN 1
#endif
#if __has_feature(address_sanitizer)
#define SPINDLE_TEST_ASAN 1
#endif
#endif
#if defined(__SANITIZE_THREAD__)
#define SPINDLE_TEST_TSAN 1
#endif
#if defined(__SANITIZE_ADDRESS__)
#define SPINDLE_TEST_ASAN 1
#endif

#if defined(SPINDLE_TEST_TSAN)
inline constexpr bool under_tsan = true;
#else
inline constexpr bool under_tsan = false;
#endif
#if defined(SPINDLE_TEST_ASAN)
inline constexpr bool under_asan = true;
#else
inline constexpr bool under_asan = false;
#endif
/// True under any sanitizer.
inline constexpr bool sanitized = under_tsan || under_asan;

/// `divisor` under ThreadSanitizer, 1 otherwise: divide stress rounds by it.
constexpr int tsan_divisor(int divisor) { return under_tsan ? divisor : 1; }

}  // namespace spindle_test
