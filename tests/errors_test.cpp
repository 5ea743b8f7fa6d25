// SPDX-License-Identifier: MIT
// tests/errors_test.cpp - tests for spindle's exception hierarchy.
#include <spindle/errors.hpp>

#include <catch2/catch.hpp>

#include <cerrno>
#include <chrono>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>
#include <type_traits>
#include <vector>

using Catch::Matchers::Contains;
using namespace std::chrono_literals;

namespace {

// Builds an instance of any of the simple error types: the ones Python
// raises with a fixed meaning have a default message, the others take one.
template <class E>
E make_error() {
  if constexpr (std::is_default_constructible_v<E>)
    return E();
  else
    return E("something went wrong");
}

template <class E>
std::string message_of_default() {
  return make_error<E>().what();
}

}  // namespace

TEMPLATE_TEST_CASE("Every spindle error is catchable as spindle::Error and std::runtime_error",
                   "[errors]", spindle::QueueClosed, spindle::QueueFull, spindle::QueueEmpty,
                   spindle::TimeoutError, spindle::CancelledError, spindle::ExecutorShutdown,
                   spindle::BrokenExecutor, spindle::subprocess::SubprocessError) {
  STATIC_REQUIRE(std::is_base_of_v<spindle::Error, TestType>);
  STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, TestType>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<TestType>);

  bool caught_as_error = false;
  try {
    throw make_error<TestType>();
  } catch (const spindle::Error& e) {
    caught_as_error = true;
    REQUIRE(std::string(e.what()).size() > 0);
  }
  REQUIRE(caught_as_error);

  bool caught_as_runtime_error = false;
  try {
    throw make_error<TestType>();
  } catch (const std::runtime_error& e) {
    caught_as_runtime_error = true;
    REQUIRE(dynamic_cast<const TestType*>(&e) != nullptr);
  }
  REQUIRE(caught_as_runtime_error);

  // A custom message is kept verbatim.
  try {
    throw TestType("custom detail 42");
  } catch (const spindle::Error& e) {
    REQUIRE(std::string(e.what()) == "custom detail 42");
  }
}

TEST_CASE("Default messages say what happened", "[errors]") {
  REQUIRE_THAT(message_of_default<spindle::QueueClosed>(), Contains("closed"));
  REQUIRE_THAT(message_of_default<spindle::QueueFull>(), Contains("full"));
  REQUIRE_THAT(message_of_default<spindle::QueueEmpty>(), Contains("empty"));
  REQUIRE_THAT(message_of_default<spindle::CancelledError>(), Contains("cancel"));
  REQUIRE_THAT(message_of_default<spindle::ExecutorShutdown>(), Contains("shutdown"));
}

TEST_CASE("Errors of one kind are not caught as another kind", "[errors]") {
  STATIC_REQUIRE_FALSE(std::is_base_of_v<spindle::QueueEmpty, spindle::QueueClosed>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<spindle::QueueClosed, spindle::QueueEmpty>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<spindle::QueueFull, spindle::QueueClosed>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<spindle::subprocess::SubprocessError, spindle::TimeoutError>);
  // Programming errors are not runtime Errors (DESIGN.md: logic_error or
  // invalid_argument), so `catch (const spindle::Error&)` does not swallow bugs.
  STATIC_REQUIRE_FALSE(std::is_base_of_v<spindle::Error, std::logic_error>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<std::logic_error, spindle::Error>);

  int which = 0;
  try {
    throw spindle::QueueClosed();
  } catch (const spindle::QueueEmpty&) {
    which = 1;
  } catch (const spindle::QueueFull&) {
    which = 2;
  } catch (const spindle::QueueClosed&) {
    which = 3;
  }
  REQUIRE(which == 3);
}

TEST_CASE("Subprocess errors all derive from SubprocessError and spindle::Error", "[errors]") {
  using namespace spindle::subprocess;
  STATIC_REQUIRE(std::is_base_of_v<SubprocessError, CalledProcessError>);
  STATIC_REQUIRE(std::is_base_of_v<SubprocessError, TimeoutExpired>);
  STATIC_REQUIRE(std::is_base_of_v<SubprocessError, SpawnError>);
  STATIC_REQUIRE(std::is_base_of_v<spindle::Error, SubprocessError>);

  int caught = 0;
  const auto throw_each = [](int i) {
    switch (i) {
      case 0: throw CalledProcessError(1, {"false"});
      case 1: throw TimeoutExpired({"sleep", "10"}, 1s);
      default: throw SpawnError(ENOENT, "no-such-program");
    }
  };
  for (int i = 0; i < 3; ++i) {
    try {
      throw_each(i);
    } catch (const SubprocessError&) {
      ++caught;
    }
    try {
      throw_each(i);
    } catch (const spindle::Error&) {
      ++caught;
    }
    try {
      throw_each(i);
    } catch (const std::runtime_error&) {
      ++caught;
    }
  }
  REQUIRE(caught == 9);
}

TEST_CASE("CalledProcessError names the program and the exit status and carries the output",
          "[errors]") {
  using spindle::subprocess::CalledProcessError;
  const CalledProcessError e(3, {"/usr/bin/grep", "-q", "needle"}, "some out", "some err");
  REQUIRE(e.returncode() == 3);
  REQUIRE(e.args() == std::vector<std::string>{"/usr/bin/grep", "-q", "needle"});
  REQUIRE(e.out() == "some out");
  REQUIRE(e.err() == "some err");
  const std::string what = e.what();
  REQUIRE_THAT(what, Contains("/usr/bin/grep"));
  REQUIRE_THAT(what, Contains("exit status 3"));
  // The whole command line, as Python prints it.
  REQUIRE(what == "Command '['/usr/bin/grep', '-q', 'needle']' returned non-zero exit status 3.");

  // Death by signal N reads as returncode -N and the message says signal N.
  const CalledProcessError killed(-9, {"worker"});
  REQUIRE(killed.returncode() == -9);
  REQUIRE_THAT(std::string(killed.what()), Contains("worker"));
  REQUIRE_THAT(std::string(killed.what()), Contains("signal 9"));
  REQUIRE(killed.out().empty());
  REQUIRE(killed.err().empty());

  // An empty argument list still gives a readable message.
  const CalledProcessError no_args(1, {});
  REQUIRE(std::string(no_args.what()).size() > 0);
  REQUIRE_THAT(std::string(no_args.what()), Contains("1"));
}

TEST_CASE("TimeoutExpired carries the args, the timeout and the output read so far", "[errors]") {
  using spindle::subprocess::TimeoutExpired;
  const TimeoutExpired e({"long-job", "--n", "5"}, 2500ms, "partial out", "partial err");
  REQUIRE(e.args() == std::vector<std::string>{"long-job", "--n", "5"});
  REQUIRE(e.timeout() == 2500ms);
  REQUIRE(e.timeout().count() == Approx(2.5));
  REQUIRE(e.out() == "partial out");
  REQUIRE(e.err() == "partial err");
  const std::string what = e.what();
  REQUIRE_THAT(what, Contains("long-job"));
  REQUIRE_THAT(what, Contains("2.5"));
  REQUIRE_THAT(what, Contains("timed out"));
  REQUIRE(what == "Command '['long-job', '--n', '5']' timed out after 2.5 seconds");
}

TEST_CASE("Command lines in messages are quoted as Python's and cut when huge", "[errors]") {
  using spindle::subprocess::CalledProcessError;
  const CalledProcessError quoted(1, {"sh", "-c", "echo 'hi' \\"});
  REQUIRE(std::string(quoted.what()) ==
          "Command '['sh', '-c', 'echo \\'hi\\' \\\\']' returned non-zero exit status 1.");
  const CalledProcessError huge(1, std::vector<std::string>(1000, "argument"));
  const std::string what = huge.what();
  REQUIRE(what.size() < 1200);
  REQUIRE_THAT(what, Contains("'argument', ...]"));
}

TEST_CASE("SpawnError carries the errno, the program and an error_code", "[errors]") {
  using spindle::subprocess::SpawnError;
  const SpawnError e(ENOENT, "/nonexistent/tool");
  REQUIRE(e.errno_value() == ENOENT);
  REQUIRE(e.program() == "/nonexistent/tool");
  REQUIRE(e.code() == std::errc::no_such_file_or_directory);
  REQUIRE(e.code().category() == std::generic_category());
  const std::string what = e.what();
  REQUIRE_THAT(what, Contains("/nonexistent/tool"));
  REQUIRE_THAT(what, Contains(std::generic_category().message(ENOENT)));
  REQUIRE_THAT(what, Contains(std::to_string(ENOENT)));

  const SpawnError denied(EACCES, "./script.sh", "chdir");
  REQUIRE(denied.code() == std::errc::permission_denied);
  REQUIRE_THAT(std::string(denied.what()), Contains("chdir"));
  REQUIRE_THAT(std::string(denied.what()), Contains("./script.sh"));
}

TEST_CASE("An error thrown in another thread arrives intact through an exception_ptr",
          "[errors]") {
  std::exception_ptr captured;
  std::thread t([&] {
    try {
      throw spindle::subprocess::CalledProcessError(2, {"make", "all"}, "", "boom");
    } catch (...) {
      captured = std::current_exception();
    }
  });
  t.join();
  REQUIRE(captured);
  int status = 0;
  std::string err;
  try {
    std::rethrow_exception(captured);
  } catch (const spindle::subprocess::CalledProcessError& e) {
    status = e.returncode();
    err = e.err();
  }
  REQUIRE(status == 2);
  REQUIRE(err == "boom");
}

TEST_CASE("Copies of errors keep their message and their fields", "[errors]") {
  const spindle::subprocess::TimeoutExpired original({"a", "b"}, 1500ms, "o", "e");
  const spindle::subprocess::TimeoutExpired copy = original;  // NOLINT(performance-unnecessary-copy-initialization)
  REQUIRE(std::string(copy.what()) == original.what());
  REQUIRE(copy.args() == original.args());
  REQUIRE(copy.timeout() == original.timeout());
  REQUIRE(copy.out() == "o");
  REQUIRE(copy.err() == "e");

  const spindle::QueueFull full;
  const spindle::QueueFull full_copy = full;  // NOLINT(performance-unnecessary-copy-initialization)
  REQUIRE(std::string(full_copy.what()) == full.what());
}

TEST_CASE("Connection errors derive from ConnectionError, OSError and spindle::Error",
          "[errors][oserror]") {
  using namespace spindle;
  STATIC_REQUIRE(std::is_base_of_v<Error, OSError>);
  STATIC_REQUIRE(std::is_base_of_v<OSError, ConnectionError>);
  STATIC_REQUIRE(std::is_base_of_v<ConnectionError, BrokenPipeError>);
  STATIC_REQUIRE(std::is_base_of_v<ConnectionError, ConnectionRefusedError>);
  STATIC_REQUIRE(std::is_base_of_v<ConnectionError, ConnectionResetError>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<BrokenPipeError, ConnectionResetError>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<ConnectionResetError, BrokenPipeError>);
  STATIC_REQUIRE_FALSE(std::is_base_of_v<subprocess::SubprocessError, ConnectionError>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<OSError>);

  int which = 0;
  try {
    throw ConnectionResetError();
  } catch (const BrokenPipeError&) {
    which = 1;
  } catch (const ConnectionRefusedError&) {
    which = 2;
  } catch (const ConnectionError& e) {
    which = e.errno_value() == ECONNRESET ? 3 : 4;
  }
  REQUIRE(which == 3);

  bool as_error = false;
  try {
    throw BrokenPipeError();
  } catch (const Error& e) {
    as_error = std::string(e.what()).size() > 0;
  }
  REQUIRE(as_error);
  bool as_runtime_error = false;
  try {
    throw ConnectionRefusedError();
  } catch (const std::runtime_error&) {
    as_runtime_error = true;
  }
  REQUIRE(as_runtime_error);
}

TEST_CASE("Connection errors carry their errno and say what happened", "[errors][oserror]") {
  const spindle::BrokenPipeError pipe("writing to the child's stdin");
  REQUIRE(pipe.errno_value() == EPIPE);
  REQUIRE(pipe.code() == std::errc::broken_pipe);
  REQUIRE(pipe.code().category() == std::generic_category());
  REQUIRE(std::string(pipe.what()) == "writing to the child's stdin: " +
                                          std::generic_category().message(EPIPE) + " (errno " +
                                          std::to_string(EPIPE) + ")");

  const spindle::ConnectionRefusedError refused("connect to 127.0.0.1:1");
  REQUIRE(refused.code() == std::errc::connection_refused);
  REQUIRE_THAT(std::string(refused.what()), Contains("127.0.0.1:1"));
  REQUIRE_THAT(std::string(refused.what()), Contains(std::generic_category().message(ECONNREFUSED)));

  const spindle::ConnectionResetError reset;
  REQUIRE(reset.code() == std::errc::connection_reset);
  REQUIRE_THAT(std::string(reset.what()), Contains(std::to_string(ECONNRESET)));

  const spindle::OSError other("PipeReader::read", EIO);
  REQUIRE(other.errno_value() == EIO);
  REQUIRE(other.code() == std::errc::io_error);
  REQUIRE_THAT(std::string(other.what()), Contains("PipeReader::read"));
  const spindle::OSError copy = other;  // NOLINT(performance-unnecessary-copy-initialization)
  REQUIRE(copy.errno_value() == EIO);
  REQUIRE(std::string(copy.what()) == other.what());
}

TEST_CASE("An errno maps to the OSError subclass Python raises for it", "[errors][oserror]") {
  const auto thrown_errno = [](int e) -> std::pair<int, int> {
    try {
      spindle::detail::throw_os_error("op", e);
    } catch (const spindle::BrokenPipeError& x) {
      return {1, x.errno_value()};
    } catch (const spindle::ConnectionRefusedError& x) {
      return {2, x.errno_value()};
    } catch (const spindle::ConnectionResetError& x) {
      return {3, x.errno_value()};
    } catch (const spindle::ConnectionError& x) {
      return {4, x.errno_value()};
    } catch (const spindle::OSError& x) {
      return {5, x.errno_value()};
    }
    return {0, 0};
  };
  REQUIRE(thrown_errno(EPIPE) == std::pair{1, EPIPE});
  REQUIRE(thrown_errno(ESHUTDOWN) == std::pair{1, ESHUTDOWN});
  REQUIRE(thrown_errno(ECONNREFUSED) == std::pair{2, ECONNREFUSED});
  REQUIRE(thrown_errno(ECONNRESET) == std::pair{3, ECONNRESET});
  REQUIRE(thrown_errno(ECONNABORTED) == std::pair{4, ECONNABORTED});
  REQUIRE(thrown_errno(EIO) == std::pair{5, EIO});
}
