// SPDX-License-Identifier: MIT
// spindle/errors.hpp - the exception hierarchy, rooted at spindle::Error.
#pragma once

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <optional>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace spindle {

namespace detail {
/// Seconds as Python prints them (0.3, 5, 1.25); negative durations as 0.
inline std::string seconds_text(double seconds) {
  char text[32];
  std::snprintf(text, sizeof text, "%g", seconds < 0 ? 0.0 : seconds);
  return text;
}

/// The command line as Python's messages show it: "['sh', '-c', 'exit 3']"
/// (cut at about 1000 characters).
inline std::string quote_args(const std::vector<std::string>& args) {
  std::string out = "[";
  for (std::size_t i = 0; i < args.size(); ++i) {
    if (i > 0) out += ", ";
    out += '\'';
    for (char c : args[i]) {
      if (c == '\'' || c == '\\') out += '\\';
      out += c;
    }
    out += '\'';
    if (out.size() > 1000 && i + 1 < args.size()) {
      out += ", ...";
      break;
    }
  }
  return out + "]";
}
}  // namespace detail

/// The root of every exception spindle throws for a runtime condition, so a
/// caller can catch the whole library at once (`catch (const spindle::Error&)`).
///
/// Programming errors (calling `task_done()` too often, a nonsensical
/// argument) are not `Error`s: they throw `std::logic_error` or
/// `std::invalid_argument`, as the standard library does.
class Error : public std::runtime_error {
public:
  using std::runtime_error::runtime_error;
};

/// A put on a closed queue, or a get on a closed and drained one: Python
/// 3.13's `queue.ShutDown`.
class QueueClosed : public Error {
public:
  QueueClosed() : Error("queue is closed") {}
  using Error::Error;
};

/// A non-blocking or timed put found the queue full: Python's `queue.Full`.
class QueueFull : public Error {
public:
  QueueFull() : Error("queue is full") {}
  using Error::Error;
};

/// A non-blocking or timed get found the queue empty: Python's `queue.Empty`.
class QueueEmpty : public Error {
public:
  QueueEmpty() : Error("queue is empty") {}
  using Error::Error;
};

/// A timed wait ran out: Python's `TimeoutError` (as raised by
/// `Future.result(timeout)` and `as_completed(timeout=)`).
class TimeoutError : public Error {
public:
  using Error::Error;
};

/// The result of a cancelled future was asked for: Python's
/// `concurrent.futures.CancelledError`.
class CancelledError : public Error {
public:
  CancelledError() : Error("future was cancelled") {}
  using Error::Error;
};

/// `submit` was called on an executor that has been shut down (Python raises
/// `RuntimeError('cannot schedule new futures after shutdown')`).
class ExecutorShutdown : public Error {
public:
  ExecutorShutdown() : Error("cannot schedule new work after shutdown") {}
  using Error::Error;
};

/// An executor can no longer run work (a worker failed in a way the pool
/// cannot recover from): Python's `concurrent.futures.BrokenExecutor`.
class BrokenExecutor : public Error {
public:
  using Error::Error;
};

/// A pool worker waited on futures nested too deep: each wait inside a
/// worker may run queued tasks on the waiting thread's stack, and a task
/// that waits there nests again. Past 1000 levels (Python's default
/// recursion limit) the wait throws this instead of overflowing the stack:
/// Python's `RecursionError`.
class RecursionError : public Error {
public:
  using Error::Error;
};

/// A `Barrier` is broken: it was aborted or reset while threads waited, a
/// wait timed out, or its action threw. Every waiter of the broken round,
/// and every later `wait()` until `reset()`, throws it: Python's
/// `threading.BrokenBarrierError`.
class BrokenBarrierError : public Error {
public:
  using Error::Error;
};

/// Several exceptions at once: Python 3.11's `ExceptionGroup`, raised by
/// `asyncio::TaskGroup` with every exception its tasks (and its body)
/// raised, in the order they happened. `asyncio::CancelledError` is never
/// among them. The message names how many there are and the first one's.
class ExceptionGroup : public Error {
public:
  ExceptionGroup(const std::string& message, std::vector<std::exception_ptr> exceptions)
      : Error(describe(message, exceptions)), exceptions_(std::move(exceptions)) {}

  /// Every exception, in order: Python's `exceptions`.
  const std::vector<std::exception_ptr>& exceptions() const noexcept { return exceptions_; }

private:
  static std::string describe(const std::string& message,
                              const std::vector<std::exception_ptr>& all) {
    std::string text = message + " (" + std::to_string(all.size()) + " sub-exception" +
                       (all.size() == 1 ? "" : "s") + ")";
    if (!all.empty()) {
      try {
        std::rethrow_exception(all.front());
      } catch (const std::exception& e) {
        text += "; first: ";
        text += e.what();
      } catch (...) {
      }
    }
    return text;
  }

  std::vector<std::exception_ptr> exceptions_;
};

/// A system call failed with an errno: Python's `OSError`. Thrown by the
/// operations that talk to the operating system directly (reading a child's
/// pipe, signalling a child, ...) instead of `std::system_error`, so that
/// `catch (const spindle::Error&)` really catches everything spindle throws.
/// The message is `<what was being done>: <strerror text> (errno N)`.
/// Python's `ConnectionError` family derives from it as in Python.
///
/// (`subprocess::SpawnError` also carries an errno but stays under
/// `SubprocessError`, where DESIGN.md puts it.)
class OSError : public Error {
public:
  /// `context` says what was being done ("reading a child's stdout");
  /// `errno_value` is the failed call's errno.
  OSError(std::string context, int errno_value)
      : Error(describe(context, errno_value)), errno_(errno_value) {}

  /// The errno reported by the failed system call.
  int errno_value() const noexcept { return errno_; }
  /// The same errno as a `std::error_code` in `std::generic_category()`,
  /// comparable with `std::errc` (`e.code() == std::errc::broken_pipe`).
  std::error_code code() const noexcept { return {errno_, std::generic_category()}; }

private:
  static std::string describe(const std::string& context, int errno_value) {
    return context + ": " + std::generic_category().message(errno_value) + " (errno " +
           std::to_string(errno_value) + ")";
  }

  int errno_;
};

/// A connection-related failure: Python's `ConnectionError` (an `OSError`).
/// The root of BrokenPipeError, ConnectionRefusedError and
/// ConnectionResetError; carries the errno.
class ConnectionError : public OSError {
public:
  using OSError::OSError;
};

/// A write to a pipe (or socket) whose reading end has been closed (EPIPE,
/// or ESHUTDOWN on a shut-down socket): Python's `BrokenPipeError`.
/// The writer is not killed by SIGPIPE; it gets this exception instead.
class BrokenPipeError : public ConnectionError {
public:
  explicit BrokenPipeError(std::string context = "write", int errno_value = EPIPE)
      : ConnectionError(std::move(context), errno_value) {}
};

/// The peer refused the connection (ECONNREFUSED): Python's
/// `ConnectionRefusedError`.
class ConnectionRefusedError : public ConnectionError {
public:
  explicit ConnectionRefusedError(std::string context = "connect",
                                  int errno_value = ECONNREFUSED)
      : ConnectionError(std::move(context), errno_value) {}
};

/// The peer reset the connection (ECONNRESET): Python's
/// `ConnectionResetError`.
class ConnectionResetError : public ConnectionError {
public:
  explicit ConnectionResetError(std::string context = "read", int errno_value = ECONNRESET)
      : ConnectionError(std::move(context), errno_value) {}
};

namespace detail {
/// Throws the OSError subclass Python would raise for `errno_value` (as
/// CPython's errno-to-exception map does for the connection errors), else
/// a plain OSError.
[[noreturn]] inline void throw_os_error(std::string context, int errno_value) {
  switch (errno_value) {
    case EPIPE:
    case ESHUTDOWN: throw BrokenPipeError(std::move(context), errno_value);
    case ECONNREFUSED: throw ConnectionRefusedError(std::move(context), errno_value);
    case ECONNRESET: throw ConnectionResetError(std::move(context), errno_value);
    case ECONNABORTED: throw ConnectionError(std::move(context), errno_value);
    default: throw OSError(std::move(context), errno_value);
  }
}
}  // namespace detail

namespace subprocess {

/// The root of every error from `spindle::subprocess`: Python's
/// `subprocess.SubprocessError`.
class SubprocessError : public Error {
public:
  using Error::Error;
};

/// A child exited with a non-zero status where `check` asked for success:
/// Python's `subprocess.CalledProcessError`. Named `out`/`err` rather than
/// `stdout`/`stderr` because those are macros in C.
class CalledProcessError : public SubprocessError {
public:
  CalledProcessError(int returncode, std::vector<std::string> args, std::string out = {},
                     std::string err = {})
      : SubprocessError(describe(returncode, args)), returncode_(returncode),
        args_(std::move(args)), out_(std::move(out)), err_(std::move(err)) {}

  /// The child's exit status; -N if it was killed by signal N.
  int returncode() const noexcept { return returncode_; }
  /// The command line that was run.
  const std::vector<std::string>& args() const noexcept { return args_; }
  /// Captured standard output (empty if it was not captured).
  const std::string& out() const noexcept { return out_; }
  /// Captured standard error (empty if it was not captured).
  const std::string& err() const noexcept { return err_; }

private:
  // Python's words: "Command '['false']' returned non-zero exit status 1."
  static std::string describe(int returncode, const std::vector<std::string>& args) {
    const std::string command = "Command '" + spindle::detail::quote_args(args) + "'";
    if (returncode < 0) return command + " died with signal " + std::to_string(-returncode) + ".";
    return command + " returned non-zero exit status " + std::to_string(returncode) + ".";
  }

  int returncode_;
  std::vector<std::string> args_;
  std::string out_;
  std::string err_;
};

/// A timed wait on a child ran out: Python's `subprocess.TimeoutExpired`.
/// Carries the output read before the timeout, so nothing is lost.
class TimeoutExpired : public SubprocessError {
public:
  TimeoutExpired(std::vector<std::string> args, std::chrono::duration<double> timeout,
                 std::string out = {}, std::string err = {})
      : SubprocessError(describe(args, timeout)), args_(std::move(args)), timeout_(timeout),
        out_(std::move(out)), err_(std::move(err)) {}

  /// The command line that was run.
  const std::vector<std::string>& args() const noexcept { return args_; }
  /// The timeout that expired.
  std::chrono::duration<double>(timeout)() const noexcept { return timeout_; }
  /// Standard output read before the timeout (empty if not captured).
  const std::string& out() const noexcept { return out_; }
  /// Standard error read before the timeout (empty if not captured).
  const std::string& err() const noexcept { return err_; }

private:
  // Python's words: "Command '['sleep', '10']' timed out after 0.3 seconds"
  static std::string describe(const std::vector<std::string>& args,
                              std::chrono::duration<double> timeout) {
    return "Command '" + spindle::detail::quote_args(args) + "' timed out after " +
           spindle::detail::seconds_text(timeout.count()) + " seconds";
  }

  std::vector<std::string> args_;
  std::chrono::duration<double> timeout_;
  std::string out_;
  std::string err_;
};

/// The child could not be started (missing or non-executable program, bad
/// working directory, ...): the parent gets this exception instead of a
/// child exit status of 127. Python raises `OSError` (`FileNotFoundError`,
/// `PermissionError`) here.
class SpawnError : public SubprocessError {
public:
  SpawnError(int errno_value, std::string program, std::string what_failed = "exec")
      : SubprocessError(describe(errno_value, program, what_failed)), errno_(errno_value),
        program_(std::move(program)) {}

  /// The errno reported by the failed system call (ENOENT, EACCES, ...).
  int errno_value() const noexcept { return errno_; }
  /// The same errno as a `std::error_code` in `std::generic_category()`.
  std::error_code code() const noexcept { return {errno_, std::generic_category()}; }
  /// The program that could not be started.
  const std::string& program() const noexcept { return program_; }

private:
  static std::string describe(int errno_value, const std::string& program,
                              const std::string& what_failed) {
    return "cannot start '" + program + "': " + what_failed + " failed: " +
           std::generic_category().message(errno_value) + " (errno " +
           std::to_string(errno_value) + ")";
  }

  int errno_;
  std::string program_;
};

}  // namespace subprocess
}  // namespace spindle
