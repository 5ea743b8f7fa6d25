// SPDX-License-Identifier: MIT
// examples/game_of_life/life.hpp - Effective Python Items 56-59's Game of Life
// (Grid, LockingGrid, count_neighbors, game_logic, step_cell, ColumnPrinter)
// and the book's ways to simulate one generation: serial, a thread per cell,
// a ClosableQueue pipeline (one and two phases), and a ThreadPoolExecutor.
// Shared by examples/game_of_life/main.cpp and benchmarks/game_of_life_bench.cpp.
#pragma once

#include <spindle/executor.hpp>
#include <spindle/future.hpp>
#include <spindle/pipeline.hpp>
#include <spindle/queue.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace life {

inline constexpr char alive = '*';  // the book's ALIVE
inline constexpr char empty = '-';  // the book's EMPTY

// ---------------------------------------------------------------------------
// The grid (Item 56).

/// A height x width grid of cells whose coordinates wrap around, so the
/// board is a torus: the book's `Grid`. Not thread-safe for writers; any
/// number of threads may read a grid nobody writes.
class Grid {
public:
  Grid(int height, int width)
      : height_(height), width_(width),
        cells_(static_cast<std::size_t>(height) * static_cast<std::size_t>(width), empty) {
    if (height < 1 || width < 1)
      throw std::invalid_argument("Grid: height and width must be at least 1");
  }

  int height() const noexcept { return height_; }
  int width() const noexcept { return width_; }
  std::size_t cells() const noexcept { return cells_.size(); }

  /// The state at (y, x), wrapping out-of-range coordinates as Python's `%`.
  char get(int y, int x) const noexcept { return cells_[index(y, x)]; }
  /// Sets the state at (y, x), wrapping as `get`.
  void set(int y, int x, char state) noexcept { cells_[index(y, x)] = state; }

  /// The rows joined by newlines (the book's `__str__`).
  std::string str() const {
    std::string out;
    out.reserve(cells_.size() + static_cast<std::size_t>(height_));
    for (int y = 0; y < height_; ++y) {
      if (y > 0) out += '\n';
      out.append(&cells_[index(y, 0)], static_cast<std::size_t>(width_));
    }
    return out;
  }

  /// How many cells are alive.
  std::size_t population() const noexcept {
    return static_cast<std::size_t>(std::count(cells_.begin(), cells_.end(), alive));
  }

  friend bool operator==(const Grid&, const Grid&) = default;

private:
  static int wrap(int v, int n) noexcept {
    // The in-range case first: count_neighbors only ever steps one cell out.
    if (static_cast<unsigned>(v) < static_cast<unsigned>(n)) return v;
    v %= n;
    return v < 0 ? v + n : v;
  }
  std::size_t index(int y, int x) const noexcept {
    return static_cast<std::size_t>(wrap(y, height_)) * static_cast<std::size_t>(width_) +
           static_cast<std::size_t>(wrap(x, width_));
  }

  int height_;
  int width_;
  std::vector<char> cells_;
};

/// A Grid whose every access takes a lock (Item 57's `LockingGrid`), for the
/// next generation that many threads write at once. (Distinct `char`s are
/// distinct memory locations in C++, so these particular writes would not
/// race even unlocked; the lock is the book's design, and it becomes
/// necessary as soon as `set` touches shared state, e.g. a population
/// count.) Thread-safe.
class LockingGrid {
public:
  LockingGrid(int height, int width) : grid_(height, width) {}

  char get(int y, int x) const {
    std::lock_guard lock(m_);
    return grid_.get(y, x);
  }
  void set(int y, int x, char state) {
    std::lock_guard lock(m_);
    grid_.set(y, x, state);
  }
  std::string str() const {
    std::lock_guard lock(m_);
    return grid_.str();
  }
  /// The plain grid, once no other thread uses this one any more.
  Grid release() && { return std::move(grid_); }

private:
  mutable std::mutex m_;
  Grid grid_;  // guarded by m_
};

/// The book's glider on a grid of the given size (5 x 9 in the book).
inline Grid glider(int height = 5, int width = 9) {
  Grid grid(height, width);
  grid.set(0, 3, alive);
  grid.set(1, 4, alive);
  grid.set(2, 2, alive);
  grid.set(2, 3, alive);
  grid.set(2, 4, alive);
  return grid;
}

// ---------------------------------------------------------------------------
// The rules (Item 56), free of I/O.

/// How many of the eight neighbours of (y, x) are alive; `get(y, x)` reads
/// the previous generation (the book passes `grid.get`).
template <class Get>
int count_neighbors(int y, int x, const Get& get) {
  const char n_ = get(y - 1, x + 0);  // North
  const char ne = get(y - 1, x + 1);  // Northeast
  const char e_ = get(y + 0, x + 1);  // East
  const char se = get(y + 1, x + 1);  // Southeast
  const char s_ = get(y + 1, x + 0);  // South
  const char sw = get(y + 1, x - 1);  // Southwest
  const char w_ = get(y + 0, x - 1);  // West
  const char nw = get(y - 1, x - 1);  // Northwest
  int count = 0;
  for (char state : {n_, ne, e_, se, s_, sw, w_, nw})
    if (state == alive) ++count;
  return count;
}

/// Conway's three rules: die with fewer than two or more than three
/// neighbours; an empty cell with exactly three comes alive.
constexpr char game_logic(char state, int neighbors) noexcept {
  if (state == alive) {
    if (neighbors < 2) return empty;  // Die: Too few
    if (neighbors > 3) return empty;  // Die: Too many
  } else if (neighbors == 3) {
    return alive;  // Regenerate
  }
  return state;
}

// ---------------------------------------------------------------------------
// The networked game (Item 56's `my_socket.recv(100)` inside game_logic).

/// Coordinates of one cell.
struct Cell {
  int y = 0;
  int x = 0;
  friend bool operator==(const Cell&, const Cell&) = default;
};

inline std::string to_string(Cell c) {
  return "(" + std::to_string(c.y) + ", " + std::to_string(c.x) + ")";
}

/// The I/O error a flaky network raises from `recv`: the book's
/// `OSError('Problem with I/O')` (here with ECONNRESET as the errno).
class IoError : public std::system_error {
public:
  IoError(const char* where, Cell cell)
      : std::system_error(ECONNRESET, std::generic_category(),
                          std::string("Problem with I/O in ") + where + " at " + to_string(cell) +
                              ": recv"),
        cell_(cell) {}
  Cell cell() const noexcept { return cell_; }

private:
  Cell cell_;
};

/// The error the simulation reports for a cell whose step failed: the
/// book's `SimulationError(y, x)`. It is thrown with
/// `std::throw_with_nested`, so the cause (the `IoError`) travels inside it,
/// as `raise SimulationError(y, x) from e`.
class SimulationError : public std::runtime_error {
public:
  explicit SimulationError(Cell cell)
      : std::runtime_error("SimulationError: " + to_string(cell)), cell_(cell) {}
  Cell cell() const noexcept { return cell_; }

private:
  Cell cell_;
};

/// Throws `SimulationError(cell)` with the current exception nested in it.
/// Call only inside a catch block (or with `cause` set).
[[noreturn]] inline void raise_simulation_error(Cell cell, std::exception_ptr cause) {
  try {
    std::rethrow_exception(cause);
  } catch (...) {
    std::throw_with_nested(SimulationError(cell));
  }
}

/// What the simulated network does: each `recv` blocks for `latency` (the
/// book's 100 ms cross-country round trip), and the one in game_logic at
/// `fail_at` throws `IoError` instead. `in_count_neighbors` makes
/// count_neighbors do a `recv` too (Item 58's second requirement).
struct Network {
  std::chrono::nanoseconds latency{0};
  std::optional<Cell> fail_at;
  bool in_count_neighbors = false;

  void recv(const char* where, Cell cell, bool may_fail) const {
    if (may_fail && fail_at && *fail_at == cell) throw IoError(where, cell);
    if (latency.count() > 0) std::this_thread::sleep_for(latency);
  }
};

/// The game with its I/O: the book's `count_neighbors`, `game_logic` and
/// `step_cell` once they talk to the network. With a default `Network` it
/// is the pure game. Thread-safe (const; the network is only read).
struct Game {
  Network net;

  template <class Get>
  int count_neighbors(int y, int x, const Get& get) const {
    if (net.in_count_neighbors) net.recv("count_neighbors", {y, x}, false);
    return life::count_neighbors(y, x, get);
  }

  char game_logic(int y, int x, char state, int neighbors) const {
    net.recv("game_logic", {y, x}, true);  // data = my_socket.recv(100)
    return life::game_logic(state, neighbors);
  }

  /// One cell's transition: read it and its neighbours from the previous
  /// generation through `get`, write its next state through `set`.
  template <class Get, class Set>
  void step_cell(int y, int x, const Get& get, const Set& set) const {
    const char state = get(y, x);
    const int neighbors = count_neighbors(y, x, get);
    const char next_state = game_logic(y, x, state, neighbors);
    set(y, x, next_state);
  }
};

// ---------------------------------------------------------------------------
// Printing: the book's ColumnPrinter.

/// Lays grids out side by side under a header row numbering them, the
/// columns separated by " | ": the book's `ColumnPrinter`, character for
/// character (including its header's centring).
class ColumnPrinter {
public:
  void append(std::string data) { columns_.push_back(split_lines(data)); }

  std::string str() const {
    std::size_t row_count = 1;
    for (const auto& lines : columns_) row_count = std::max(row_count, lines.size() + 1);
    std::string out;
    for (std::size_t j = 0; j < row_count; ++j) {
      if (j > 0) out += '\n';
      for (std::size_t i = 0; i < columns_.size(); ++i) {
        const auto& lines = columns_[i];
        // The book indexes lines[max(0, j - 1)]; a shorter column repeats
        // nothing useful there, so it is padded with blanks instead of
        // failing (all columns are the same height in this program).
        const std::size_t at = j == 0 ? 0 : j - 1;
        const std::string line = at < lines.size() ? lines[at] : std::string();
        if (j == 0) {
          const std::string padding(line.size() / 2, ' ');
          out += padding + std::to_string(i) + padding;
        } else {
          out += line;
        }
        if (i + 1 < columns_.size()) out += " | ";
      }
    }
    return out;
  }

private:
  static std::vector<std::string> split_lines(const std::string& data) {
    std::vector<std::string> lines;
    std::size_t start = 0;
    while (start < data.size()) {
      const auto end = data.find('\n', start);
      lines.push_back(data.substr(start, end - start));
      if (end == std::string::npos) break;
      start = end + 1;
    }
    return lines;
  }

  std::vector<std::vector<std::string>> columns_;
};

// ---------------------------------------------------------------------------
// Item 56: serial.

/// One generation, every cell in turn (the book's `simulate`). An exception
/// from a cell is reported as `SimulationError(y, x)` caused by it.
inline Grid simulate(const Grid& grid, const Game& game) {
  Grid next_grid(grid.height(), grid.width());
  const auto get = [&](int y, int x) { return grid.get(y, x); };
  const auto set = [&](int y, int x, char s) { next_grid.set(y, x, s); };
  for (int y = 0; y < grid.height(); ++y)
    for (int x = 0; x < grid.width(); ++x) {
      try {
        game.step_cell(y, x, get, set);
      } catch (...) {
        raise_simulation_error({y, x}, std::current_exception());
      }
    }
  return next_grid;
}

// ---------------------------------------------------------------------------
// Item 57: a new thread per cell per generation.

/// Prints an exception that escaped a thread's function the way Python's
/// `threading.excepthook` does ("Exception in thread Thread-N (target):"),
/// as one write so concurrent reports do not interleave. Returns the text.
inline std::string report_thread_exception(const std::string& thread_name,
                                           std::exception_ptr error) {
  std::string text = "Exception in thread " + thread_name + ":\n";
  try {
    std::rethrow_exception(error);
  } catch (const IoError& e) {
    text += std::string("IoError: ") + e.what() + "\n";
  } catch (const std::exception& e) {
    text += std::string("std::exception: ") + e.what() + "\n";
  } catch (...) {
    text += "unknown exception\n";
  }
  std::fputs(text.c_str(), stderr);
  return text;
}

/// Python names threads Thread-1, Thread-2, ... in the order they are made.
inline int next_thread_number() {
  static std::atomic<int> counter{0};
  return counter.fetch_add(1, std::memory_order_relaxed) + 1;
}

/// One generation with a `std::thread` per cell writing into a LockingGrid
/// (the book's `simulate_threaded`). Like a Python `Thread`, a thread whose
/// function throws reports the exception on stderr and ends: the caller
/// never sees it, and that cell of the next generation stays empty. (A C++
/// exception escaping a std::thread would call std::terminate instead;
/// catching it in the thread is what Python's Thread does for you.)
inline Grid simulate_threaded(const Grid& grid, const Game& game) {
  LockingGrid next_grid(grid.height(), grid.width());
  const auto get = [&](int y, int x) { return grid.get(y, x); };
  const auto set = [&](int y, int x, char s) { next_grid.set(y, x, s); };
  std::vector<std::thread> threads;
  threads.reserve(grid.cells());
  try {
    for (int y = 0; y < grid.height(); ++y)
      for (int x = 0; x < grid.width(); ++x) {
        const int number = next_thread_number();
        threads.emplace_back([&, y, x, number] {  // Fan out
          try {
            game.step_cell(y, x, get, set);
          } catch (...) {
            report_thread_exception("Thread-" + std::to_string(number) + " (step_cell)",
                                    std::current_exception());
          }
        });
      }
  } catch (...) {
    // A thread could not be started (std::system_error, as Python's "can't
    // start new thread"): the started ones use this frame, and destroying a
    // joinable std::thread terminates, so join them before unwinding.
    for (std::thread& t : threads) t.join();
    throw;
  }
  for (std::thread& t : threads) t.join();  // Fan in
  return std::move(next_grid).release();
}

// ---------------------------------------------------------------------------
// Item 58: a pipeline of ClosableQueues with a fixed set of workers.

/// `grid.get` as a function object (the book passes the bound method).
struct GridReader {
  const Grid* grid;
  char operator()(int y, int x) const noexcept { return grid->get(y, x); }
};

/// A cell on its way through the pipeline: its coordinates, its state, the
/// previous grid (phase 1 reads its neighbours there), the neighbour count
/// (phase 2's input), the next state (the output), or the exception that
/// replaced them (the book stores `e` in the item).
struct CellItem {
  int y = 0;
  int x = 0;
  char state = empty;
  const Grid* grid = nullptr;
  int neighbors = 0;
  char next_state = empty;
  std::exception_ptr error;
};

/// Item 58's worker-thread pipeline: `workers` threads started up front
/// run game_logic on items from `in_queue` and put the results on
/// `out_queue` (the book's StoppableWorkers over ClosableQueues, here a
/// spindle::Pipeline stage). With `phased`, a first stage of `workers`
/// threads runs count_neighbors too (`simulate_phased_pipeline`).
///
/// Each `simulate` call fans out one item per cell, waits with
/// `in_queue.join()` (and `logic_queue.join()`) and fans in the results.
/// The queues stay open between generations; the destructor closes the
/// input and joins the workers. `game` must outlive the simulator.
class QueueSimulator {
public:
  QueueSimulator(const Game& game, std::size_t workers, bool phased) : phased_(phased) {
    if (phased) {
      pipeline_
          .stage(in_queue_, logic_queue_, workers,
                 [&game](CellItem item) { return count_neighbors_thread(game, item); })
          .stage(logic_queue_, out_queue_, workers,
                 [&game](CellItem item) { return game_logic_thread(game, item); });
    } else {
      pipeline_.stage(in_queue_, out_queue_, workers,
                      [&game](CellItem item) { return game_logic_thread(game, item); });
    }
  }
  QueueSimulator(const QueueSimulator&) = delete;
  QueueSimulator& operator=(const QueueSimulator&) = delete;

  ~QueueSimulator() {
    in_queue_.close();  // the stages end in order, each closing the next queue
    try {
      pipeline_.join();
    } catch (...) {
      // The stage functions catch everything into their items, so a stage
      // cannot fail; and a destructor must not throw.
    }
  }

  /// One generation (the book's `simulate_pipeline` or
  /// `simulate_phased_pipeline`). Throws: `SimulationError(y, x)` with the
  /// cell's exception nested, after every cell's result has come back.
  Grid simulate(const Grid& grid) {
    for (int y = 0; y < grid.height(); ++y)
      for (int x = 0; x < grid.width(); ++x) {
        CellItem item;
        item.y = y;
        item.x = x;
        item.state = grid.get(y, x);
        item.grid = &grid;
        if (!phased_) item.neighbors = life::count_neighbors(y, x, GridReader{&grid});
        in_queue_.put(std::move(item));  // Fan out
      }
    in_queue_.join();
    if (phased_) logic_queue_.join();  // Pipeline sequencing
    // Every result is on out_queue now: a worker puts its result before the
    // range-for marks the item done. The book closes out_queue and iterates
    // it (its close() is a sentinel, so the queue is reusable); a spindle
    // queue closes for good, so this fans in by count and keeps it open.
    Grid next_grid(grid.height(), grid.width());
    std::optional<CellItem> failed;
    for (std::size_t i = 0; i < grid.cells(); ++i) {  // Fan in
      CellItem item = out_queue_.get();
      out_queue_.task_done();
      if (item.error) {
        if (!failed) failed = std::move(item);
        continue;
      }
      next_grid.set(item.y, item.x, item.next_state);
    }
    if (failed) raise_simulation_error({failed->y, failed->x}, failed->error);
    return next_grid;
  }

private:
  static CellItem count_neighbors_thread(const Game& game, CellItem item) {
    try {
      item.neighbors = game.count_neighbors(item.y, item.x, GridReader{item.grid});
    } catch (...) {
      item.error = std::current_exception();
    }
    return item;
  }

  static CellItem game_logic_thread(const Game& game, CellItem item) {
    if (item.error) return item;  // phase 1 failed: pass the exception on
    try {
      item.next_state = game.game_logic(item.y, item.x, item.state, item.neighbors);
    } catch (...) {
      item.error = std::current_exception();
    }
    return item;
  }

  bool phased_;
  spindle::ClosableQueue<CellItem> in_queue_;
  spindle::ClosableQueue<CellItem> logic_queue_;
  spindle::ClosableQueue<CellItem> out_queue_;
  spindle::Pipeline pipeline_;  // declared after its queues: it refers to them
};

// ---------------------------------------------------------------------------
// Item 59: a ThreadPoolExecutor.

/// One generation with one `pool.submit(step_cell, ...)` per cell writing
/// into a LockingGrid, then `future.result()` for each (the book's
/// `simulate_pool`). Throws: `SimulationError(y, x)` with the task's
/// exception nested, once every task has finished (they use this frame's
/// grids, so none may still run when it unwinds).
inline Grid simulate_pool(spindle::ThreadPoolExecutor& pool, const Grid& grid, const Game& game) {
  LockingGrid next_grid(grid.height(), grid.width());
  const auto get = [&grid](int y, int x) { return grid.get(y, x); };
  const auto set = [&next_grid](int y, int x, char s) { next_grid.set(y, x, s); };
  std::vector<std::pair<Cell, spindle::Future<void>>> futures;
  futures.reserve(grid.cells());
  try {
    for (int y = 0; y < grid.height(); ++y)
      for (int x = 0; x < grid.width(); ++x)
        futures.emplace_back(Cell{y, x}, pool.submit([&, y, x] {  // Fan out
                               game.step_cell(y, x, get, set);
                             }));
  } catch (...) {
    // submit failed (e.g. the pool was shut down): the tasks already
    // submitted use this frame's grids, so wait for them before unwinding.
    for (auto& entry : futures) entry.second.wait();
    throw;
  }
  std::optional<std::pair<Cell, std::exception_ptr>> failed;
  for (auto& [cell, future] : futures) {  // Fan in
    try {
      future.result();
    } catch (...) {
      if (!failed) failed.emplace(cell, std::current_exception());
    }
  }
  if (failed) raise_simulation_error(failed->first, failed->second);
  return std::move(next_grid).release();
}

// ---------------------------------------------------------------------------
// The physics of blocking I/O.

/// The ways this file (and life_async.hpp: coroutine) computes a generation.
enum class Strategy { serial, threads, queue, queue2, pool, coroutine };

/// The time one generation should take if only the blocking I/O cost
/// anything (each call blocks `latency`): serial does the `cells` calls one
/// after another; a thread per cell, or a task per cell awaiting its I/O
/// (coroutine), does them all at once; `workers`
/// threads (queue, pool) do them in ceil(cells / workers) rounds; queue2's
/// two phases overlap, so it takes phase 1's rounds plus one latency for the
/// last round's game_logic.
template <class Duration>
Duration physics(Strategy strategy, std::size_t cells, std::size_t workers, Duration latency) {
  const auto rounds = static_cast<typename Duration::rep>((cells + workers - 1) / workers);
  switch (strategy) {
    case Strategy::serial: return latency * static_cast<typename Duration::rep>(cells);
    case Strategy::threads:
    case Strategy::coroutine: return latency;
    case Strategy::queue:
    case Strategy::pool: return latency * rounds;
    case Strategy::queue2: return latency * (rounds + 1);
  }
  return latency;
}

}  // namespace life
