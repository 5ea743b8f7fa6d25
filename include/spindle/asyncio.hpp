// SPDX-License-Identifier: MIT
// spindle/asyncio.hpp - umbrella of include/spindle/asyncio/*.hpp: Python's asyncio on C++20 coroutines.
#pragma once

#include "asyncio/combinators.hpp"
#include "asyncio/coroutine.hpp"
#include "asyncio/loop.hpp"
#include "asyncio/task.hpp"
#include "asyncio/task_group.hpp"
#include "asyncio/threads.hpp"
