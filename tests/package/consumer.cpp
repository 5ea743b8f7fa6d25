// SPDX-License-Identifier: MIT
// tests/package/consumer.cpp - a program that uses spindle as a dependency.
#include <spindle/spindle.hpp>

#include <cstdio>
#include <thread>

int main() {
  spindle::ClosableQueue<int> queue(4);
  std::thread producer([&] {
    for (int i = 1; i <= 10; ++i) queue.put(i);
    queue.close();
  });
  int sum = 0;
  for (int item : queue) sum += item;
  producer.join();
  std::printf("sum %d\n", sum);
  return sum == 55 ? 0 : 1;
}
