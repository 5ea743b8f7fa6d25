// SPDX-License-Identifier: MIT
// tests/hygiene/curses.hpp - curses, whose timeout(), erase(), clear(),
// refresh() and move() are macros.
#pragma once
#include <curses.h>
