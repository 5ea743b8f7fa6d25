// SPDX-License-Identifier: MIT
// examples/game_of_life/main.cpp - Effective Python Items 56-60: the Game of
// Life with blocking I/O in game_logic, run serially, with a thread per cell,
// through ClosableQueue pipelines, and on a ThreadPoolExecutor; and with
// awaited I/O, a spindle::asyncio task per cell.
#include "life.hpp"
#include "life_async.hpp"

#include "cli.hpp"

#include <spindle/executor.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <string_view>

namespace {

constexpr const char* usage_text = R"(Usage: game_of_life [options]

Effective Python Items 56-60: Conway's Game of Life on a wrapping grid, one
generation at a time, where game_logic does blocking I/O (the book's
my_socket.recv), or, in coroutine mode, awaits it. Prints the generations side by side (the book's
ColumnPrinter); with the defaults, the book's five generations of a glider
on a 5x9 grid, the same in every mode.

Options:
  --mode MODE          how each generation fans out and back in:
                         serial   one cell after another (Item 56)
                         threads  a new std::thread per cell (Item 57)
                         queue    a ClosableQueue pipeline of worker threads
                                  running game_logic (Item 58)
                         queue2   two pipeline phases: count_neighbors, then
                                  game_logic, each in workers (Item 58)
                         pool     a ThreadPoolExecutor, one future per cell
                                  (Item 59)
                         coroutine  game_logic is a coroutine awaiting its
                                  I/O; an asyncio task per cell, all
                                  awaited, on one event loop (Item 60)
                       (default serial)
  --height N           grid height (default 5)
  --width N            grid width (default 9)
  --generations N      generations to show (default 5)
  --workers N          worker threads for queue/queue2 (each phase; default
                       5, as in the book) and pool (default 10)
  --seed N             start from a random grid (about a third alive) made
                       from seed N instead of the glider
  --io-latency-ms L    each game_logic call (and count_neighbors in queue2)
                       blocks for L ms (in coroutine mode: awaits
                       asyncio::sleep(L)); then the time per generation is
                       printed beside what the physics predicts
  --fail-at Y,X        game_logic raises an I/O error at cell (Y, X): every
                       mode but threads stops with a SimulationError caused
                       by it (exit status 1); threads shows what happens to
                       an exception in a bare thread
  --quiet              print only the population of each generation (and
                       the timing), not the grids
  --help               show this help and exit
)";

using Mode = life::Strategy;

struct Options {
  Mode mode = Mode::serial;
  std::string mode_name = "serial";
  int height = 5;
  int width = 9;
  int generations = 5;
  std::optional<std::size_t> workers;
  std::optional<unsigned long> seed;
  double latency_ms = 0;
  std::optional<life::Cell> fail_at;
  bool quiet = false;
};

Mode parse_mode(std::string_view text) {
  if (text == "serial") return Mode::serial;
  if (text == "threads") return Mode::threads;
  if (text == "queue") return Mode::queue;
  if (text == "queue2") return Mode::queue2;
  if (text == "pool") return Mode::pool;
  if (text == "coroutine") return Mode::coroutine;
  throw cli::UsageError(
      "--mode must be one of serial, threads, queue, queue2, pool, coroutine; got '" +
      std::string(text) + "'");
}

life::Cell parse_cell(std::string_view text) {
  const auto parts = cli::split(text, ',');
  if (parts.size() != 2)
    throw cli::UsageError("--fail-at expects Y,X (e.g. 2,3), got '" + std::string(text) + "'");
  return {static_cast<int>(cli::parse_int("--fail-at Y", parts[0], 0, 1'000'000)),
          static_cast<int>(cli::parse_int("--fail-at X", parts[1], 0, 1'000'000))};
}

Options parse_options(cli::Args& args) {
  Options o;
  while (args.next()) {
    if (auto v = args.value("--mode")) {
      o.mode = parse_mode(*v);
      o.mode_name = std::string(*v);
    } else if (auto v = args.value("--height")) {
      o.height = static_cast<int>(cli::parse_int(args.name(), *v, 1, 4096));
    } else if (auto v = args.value("--width")) {
      o.width = static_cast<int>(cli::parse_int(args.name(), *v, 1, 4096));
    } else if (auto v = args.value("--generations")) {
      o.generations = static_cast<int>(cli::parse_int(args.name(), *v, 1, 100'000));
    } else if (auto v = args.value("--workers")) {
      o.workers = static_cast<std::size_t>(cli::parse_int(args.name(), *v, 1, 1024));
    } else if (auto v = args.value("--seed")) {
      o.seed = static_cast<unsigned long>(cli::parse_int(args.name(), *v, 0, 4'294'967'295));
    } else if (auto v = args.value("--io-latency-ms")) {
      o.latency_ms = cli::parse_double(args.name(), *v, 0, 10'000);
    } else if (auto v = args.value("--fail-at")) {
      o.fail_at = parse_cell(*v);
    } else if (args.flag("--quiet")) {
      o.quiet = true;
    } else {
      args.unknown();
    }
  }
  if (o.fail_at && (o.fail_at->y >= o.height || o.fail_at->x >= o.width))
    throw cli::UsageError("--fail-at " + life::to_string(*o.fail_at) + " is outside the " +
                          std::to_string(o.height) + "x" + std::to_string(o.width) + " grid");
  if (o.workers && (o.mode == Mode::serial || o.mode == Mode::threads ||
                    o.mode == Mode::coroutine))
    throw cli::UsageError("--workers applies to the queue, queue2 and pool modes, not " +
                          o.mode_name);
  return o;
}

life::Grid random_grid(int height, int width, unsigned long seed) {
  // mt19937's output is fixed by the standard, so a seed gives the same
  // grid everywhere (std::bernoulli_distribution's algorithm is not fixed).
  std::mt19937 rng(static_cast<std::mt19937::result_type>(seed));
  life::Grid grid(height, width);
  for (int y = 0; y < height; ++y)
    for (int x = 0; x < width; ++x)
      if (rng() % 3 == 0) grid.set(y, x, life::alive);
  return grid;
}

// One way of computing the next generation.
class Simulator {
public:
  Simulator(const Options& o, const life::Game& game) : mode_(o.mode), game_(game) {
    const std::size_t default_workers = o.mode == Mode::pool ? 10 : 5;
    workers_ = o.workers.value_or(default_workers);
    if (o.mode == Mode::queue || o.mode == Mode::queue2)
      queues_ = std::make_unique<life::QueueSimulator>(game_, workers_, o.mode == Mode::queue2);
    if (o.mode == Mode::pool) pool_ = std::make_unique<spindle::ThreadPoolExecutor>(workers_);
  }

  life::Grid step(const life::Grid& grid) {
    switch (mode_) {
      case Mode::serial: return life::simulate(grid, game_);
      case Mode::threads: return life::simulate_threaded(grid, game_);
      case Mode::queue:
      case Mode::queue2: return queues_->simulate(grid);
      case Mode::pool: return life::simulate_pool(*pool_, grid, game_);
      case Mode::coroutine: return life::simulate_coroutine(grid, game_);
    }
    return grid;  // unreachable: every mode is handled above
  }

  std::size_t workers() const { return workers_; }

private:
  Mode mode_;
  const life::Game& game_;
  std::size_t workers_ = 0;
  std::unique_ptr<life::QueueSimulator> queues_;
  std::unique_ptr<spindle::ThreadPoolExecutor> pool_;
};

std::string format_ms(double ms) {
  char text[32];
  std::snprintf(text, sizeof text, "%.1f ms", ms);
  return text;
}

// What the time per generation should be if only the blocking I/O costs
// anything: each mode overlaps a different number of recv calls.
void print_physics(const Options& o, std::size_t cells, std::size_t workers, double measured_ms) {
  const double predicted = life::physics(o.mode, cells, workers,
                                         std::chrono::duration<double, std::milli>(o.latency_ms))
                               .count();
  const std::string l = format_ms(o.latency_ms);
  const std::string c = std::to_string(cells), w = std::to_string(workers);
  std::string formula;
  switch (o.mode) {
    case Mode::serial: formula = "cells x L = " + c + " x " + l; break;
    case Mode::threads:
    case Mode::coroutine: formula = "L (every cell waits at once)"; break;
    case Mode::queue:
    case Mode::pool: formula = "ceil(cells / workers) x L = ceil(" + c + " / " + w + ") x " + l; break;
    case Mode::queue2:
      // Phase 2 starts on the first results of phase 1: the phases overlap.
      formula = "(ceil(cells / workers) + 1) x L = (ceil(" + c + " / " + w + ") + 1) x " + l;
      break;
  }
  std::printf("time per generation: %s (mean of %d)\n", format_ms(measured_ms).c_str(),
              o.generations);
  std::printf("physics: %s = %s; measured/predicted = %.3f\n", formula.c_str(),
              format_ms(predicted).c_str(), measured_ms / predicted);
}

// Python's chained traceback, minus the frames: the cause first, then
// "The above exception was the direct cause of the following exception".
void print_exception_chain(const std::exception& e) {
  try {
    std::rethrow_if_nested(e);
  } catch (const std::exception& cause) {
    print_exception_chain(cause);
    std::cerr << "\nThe above exception was the direct cause of the following exception:\n\n";
  }
  if (const auto* s = dynamic_cast<const life::SimulationError*>(&e))
    std::cerr << "SimulationError: " << life::to_string(s->cell()) << '\n';
  else if (dynamic_cast<const life::IoError*>(&e) != nullptr)
    std::cerr << "IoError: " << e.what() << '\n';
  else
    std::cerr << "error: " << e.what() << '\n';
}

int run(const Options& o) {
  life::Game game;
  game.net.latency = std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::duration<double, std::milli>(o.latency_ms));
  game.net.fail_at = o.fail_at;
  game.net.in_count_neighbors = o.mode == Mode::queue2;

  life::Grid grid = o.seed ? random_grid(o.height, o.width, *o.seed) : [&] {
    life::Grid g = life::glider();
    if (o.height == 5 && o.width == 9) return g;
    life::Grid sized(o.height, o.width);  // the glider in the top-left corner
    for (int y = 0; y < 5; ++y)
      for (int x = 0; x < 9; ++x)
        if (g.get(y, x) == life::alive) sized.set(y, x, life::alive);
    return sized;
  }();

  Simulator simulator(o, game);
  life::ColumnPrinter columns;
  std::string populations;
  std::chrono::steady_clock::duration elapsed{};
  try {
    // The book's driver: show a generation, then compute the next one.
    for (int i = 0; i < o.generations; ++i) {
      if (o.quiet)
        populations += " " + std::to_string(grid.population());
      else
        columns.append(grid.str());
      const auto start = std::chrono::steady_clock::now();
      grid = simulator.step(grid);
      elapsed += std::chrono::steady_clock::now() - start;
    }
  } catch (const life::SimulationError& e) {
    print_exception_chain(e);
    std::cerr << "game_of_life: the " << o.mode_name << " simulation failed at cell "
              << life::to_string(e.cell()) << '\n';
    return 1;
  }

  if (o.quiet)
    std::cout << "population per generation:" << populations << '\n';
  else
    std::cout << columns.str() << '\n';
  if (o.latency_ms > 0) {
    std::cout << std::flush;
    const double per_generation =
        std::chrono::duration<double, std::milli>(elapsed).count() / o.generations;
    std::printf("%s: %zu cells, %s %s per game_logic call%s", o.mode_name.c_str(), grid.cells(),
                format_ms(o.latency_ms).c_str(),
                o.mode == Mode::coroutine ? "awaited I/O (asyncio::sleep)" : "blocking I/O",
                o.mode == Mode::queue2 ? " and per count_neighbors call" : "");
    if (o.mode == Mode::coroutine) std::printf(", a task per cell on one event loop");
    if (o.mode == Mode::queue || o.mode == Mode::queue2 || o.mode == Mode::pool)
      std::printf(", %zu workers%s", simulator.workers(), o.mode == Mode::queue2 ? " per phase" : "");
    std::printf("\n");
    print_physics(o, grid.cells(), simulator.workers(), per_generation);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "game_of_life", usage_text,
                  [&](cli::Args& args) { return run(parse_options(args)); });
}
