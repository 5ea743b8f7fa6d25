// SPDX-License-Identifier: MIT
// examples/game_of_life/life_async.hpp - Effective Python Item 60's Game of
// Life on coroutines: game_logic awaits its (simulated) network I/O, each
// generation fans out one spindle::asyncio task per cell and awaits them all.
// Used by examples/game_of_life/main.cpp (--mode coroutine).
#pragma once

#include "life.hpp"

#include <spindle/asyncio.hpp>

#include <exception>
#include <optional>
#include <utility>
#include <vector>

namespace life {

/// The book's Item 60 functions: `game_logic` and `step_cell` are
/// `async def`s, `simulate` gathers a task per cell.
namespace coro {

namespace asyncio = spindle::asyncio;

/// The network's `recv` as an awaitable: `await my_socket.read(50)`. The
/// wait is `asyncio::sleep(latency)` (a zero latency still yields to the
/// loop, as `asyncio.sleep(0)`), so every other cell's task runs meanwhile;
/// at `fail_at` it throws `IoError` instead, as `Network::recv` does.
inline asyncio::Coroutine<void> recv(const Network& net, const char* where, Cell cell) {
  if (net.fail_at && *net.fail_at == cell) throw IoError(where, cell);
  co_await asyncio::sleep(net.latency);
}

/// The book's `async def game_logic(state, neighbors)`: awaits its I/O,
/// then applies Conway's rules.
inline asyncio::Coroutine<char> game_logic(const Network& net, int y, int x, char state,
                                           int neighbors) {
  co_await recv(net, "game_logic", {y, x});  // data = await my_socket.read(50)
  co_return life::game_logic(state, neighbors);
}

/// The book's `async def step_cell(y, x, get, set)`: read the cell and its
/// neighbours from the previous generation, await game_logic, write the
/// next state. One task per cell runs it; only one runs at a time (the
/// loop is single-threaded), so the plain Grid needs no lock.
inline asyncio::Coroutine<void> step_cell(int y, int x, const Grid& grid, Grid& next_grid,
                                          const Network& net) {
  const char state = grid.get(y, x);
  const int neighbors = life::count_neighbors(y, x, GridReader{&grid});
  const char next_state = co_await game_logic(net, y, x, state, neighbors);
  next_grid.set(y, x, next_state);
}

/// The book's `async def simulate(grid)`: a task per cell (fan out), then
/// each awaited in turn (fan in; the book's `await asyncio.gather(*tasks)`).
/// Throws: `SimulationError(y, x)` with the cell's exception nested, once
/// every task has finished: they write into this frame's `next_grid`, so
/// none may still run when it unwinds. (gather would raise at the first
/// failure and leave the others running; awaiting all first keeps the
/// frame alive for them, as `simulate_pool` does with its futures.)
inline asyncio::Coroutine<Grid> simulate(const Grid& grid, const Network& net) {
  Grid next_grid(grid.height(), grid.width());
  std::vector<std::pair<Cell, asyncio::Task<void>>> tasks;
  tasks.reserve(grid.cells());
  for (int y = 0; y < grid.height(); ++y)
    for (int x = 0; x < grid.width(); ++x)
      tasks.emplace_back(Cell{y, x},
                         asyncio::create_task(step_cell(y, x, grid, next_grid, net)));  // Fan out
  std::optional<std::pair<Cell, std::exception_ptr>> failed;
  for (auto& [cell, task] : tasks) {  // Fan in
    try {
      co_await task;
    } catch (...) {
      if (!failed) failed.emplace(cell, std::current_exception());
    }
  }
  if (failed) raise_simulation_error(failed->first, failed->second);
  co_return next_grid;
}

}  // namespace coro

/// One generation on a new event loop: the book's
/// `grid = asyncio.run(simulate(grid))`. Throws as `coro::simulate`.
inline Grid simulate_coroutine(const Grid& grid, const Game& game) {
  return spindle::asyncio::run(coro::simulate(grid, game.net));
}

}  // namespace life
