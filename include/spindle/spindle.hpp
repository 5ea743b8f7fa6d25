// SPDX-License-Identifier: MIT
// spindle/spindle.hpp - umbrella header: includes every public header.
#pragma once

#include "asyncio.hpp"
#include "errors.hpp"
#include "event.hpp"
#include "executor.hpp"
#include "future.hpp"
#include "pipeline.hpp"
#include "queue.hpp"
#include "subprocess.hpp"
#include "thread.hpp"
#include "threading.hpp"
