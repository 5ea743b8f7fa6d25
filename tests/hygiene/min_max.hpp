// SPDX-License-Identifier: MIT
// tests/hygiene/min_max.hpp - function-like min/max macros, as <windows.h> and
// some C libraries define them. The standard library itself is not safe after
// them (<ranges> calls std::min), so every standard header comes first, as in
// a program that includes its C++ headers before the offending one.
#pragma once
#include <bits/stdc++.h>
#define min(a, b) (((a) < (b)) ? (a) : (b))
#define max(a, b) (((a) > (b)) ? (a) : (b))
