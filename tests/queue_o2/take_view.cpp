// SPDX-License-Identifier: MIT
// tests/queue_o2/take_view.cpp - queue iterators under std::views at -O2
// (built, not run by CTest: the check is that it builds warning-free).
#include <spindle/queue.hpp>

#include <ranges>

// A local queue in main, so that g++ inlines the whole iteration into one
// function run once (what made it see a moved-from iterator's null queue).
int sum_of_positive_first_two();

int main() {
  spindle::ClosableQueue<int> q;
  for (int i = 0; i < 5; ++i) q.put(i);
  int sum = 0;
  for (int v : q | std::views::take(3)) sum += v;
  return sum + sum_of_positive_first_two() == 10 ? 0 : 1;
}

int sum_of_positive_first_two() {
  spindle::LifoQueue<int> q;
  for (int i = 0; i < 5; ++i) q.put(i);
  int sum = 0;
  for (int v : q | std::views::take(2) | std::views::filter([](int x) { return x > 0; })) sum += v;
  return sum;
}
