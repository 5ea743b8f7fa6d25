// SPDX-License-Identifier: MIT
// spindle/spindle.hpp - umbrella header: includes every public header.
#pragma once

#include "errors.hpp"
#include "event.hpp"
#include "queue.hpp"
