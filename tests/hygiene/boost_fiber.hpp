// SPDX-License-Identifier: MIT
// tests/hygiene/boost_fiber.hpp - Boost.Fiber, which defines a function-like
// spin_pause() macro.
#pragma once
#include <boost/fiber/all.hpp>
