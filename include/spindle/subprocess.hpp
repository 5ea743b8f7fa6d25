// SPDX-License-Identifier: MIT
// spindle/subprocess.hpp - Python's subprocess: run, Popen, communicate, pipelines.
#pragma once

#include <chrono>
#include <concepts>
#include <csignal>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <spindle/detail/subprocess_io.hpp>
#include <spindle/detail/subprocess_reaper.hpp>
#include <spindle/detail/subprocess_spawn.hpp>
#include <spindle/detail/subprocess_sys.hpp>
#include <spindle/detail/wait.hpp>
#include <spindle/errors.hpp>

/// Python's `subprocess` module for C++ on Linux.
///
/// ```
/// using namespace spindle::subprocess;
/// auto r = run({"echo", "Hello from the child!"}, {.capture_output = true, .check = true});
/// std::cout << r.out;                           // "Hello from the child!\n"
///
/// Popen enc({"openssl", "enc", "-des3", "-pass", "env:password"},
///           {.in = PIPE, .out = PIPE, .extra_env = {{"password", "secret"}}});
/// Popen md5({"openssl", "dgst", "-md5"}, {.in = enc.out(), .out = PIPE});  // enc | md5
/// enc.communicate(data);                        // feed, close stdin, wait
/// auto [digest, err] = md5.communicate();
/// ```
///
/// Naming: `stdin`, `stdout` and `stderr` are macros in C, so the streams are
/// called `in`, `out` and `err` everywhere: `CompletedProcess::out`,
/// `Popen::out()`, `PopenOptions::out`, `CalledProcessError::out()`. Data is
/// bytes held in `std::string` (text and binary alike; no decoding).
///
/// Spawning uses `clone(CLONE_VM | CLONE_VFORK)`: no page tables are copied,
/// so a parent with gigabytes resident spawns as fast as a small one. The
/// child only makes raw async-signal-safe system calls before `execve`; it
/// reports a failure (ENOENT, EACCES, a bad cwd) through a close-on-exec pipe
/// and the parent throws `SpawnError` instead of seeing exit status 127. All
/// of spindle's descriptors are close-on-exec, and the child marks every
/// descriptor >= 3 close-on-exec with one `close_range` call, so it sees
/// only the three standard streams it was given.
///
/// The child inherits the calling thread's signal mask and ignored signals
/// (as with posix_spawn or fork+exec); caught signals revert to default.
/// Except: by default SIGPIPE and SIGXFSZ go back to SIG_DFL even if the
/// parent ignores them, as Python's `restore_signals=True` does (keep them
/// ignored with `.restore_signals = false`).
///
/// Process groups: `.start_new_session = true` (setsid) or
/// `.process_group = 0` (a new group led by the child) let
/// `Popen::send_signal_group`/`kill_group` reach the child's own children
/// too. Unlike Python, `run()`'s timeout then kills the whole group, not
/// only the child (see RunOptions::timeout).
///
/// No SIGCHLD handler is installed; timed waits sleep in `ppoll` on a pidfd
/// (Linux >= 5.3). On older kernels they fall back to Python's method:
/// polling `waitpid(WNOHANG)` with sleeps growing from 0.5 ms to 50 ms.
///
/// SIGPIPE keeps its default disposition process-wide. Every thread that
/// writes to a child blocks SIGPIPE for the duration of the write (the writer
/// sees EPIPE instead) and consumes the SIGPIPE its own write raised with
/// `sigtimedwait`, unless one was already pending before.
///
/// Every blocking call restarts after EINTR (recomputing the time left from
/// an absolute deadline), so signal handlers installed without SA_RESTART
/// neither lose data nor cause errors.
namespace spindle::subprocess {

class PipeReader;
class PipeWriter;
class Popen;

/// Where a child's standard stream goes: Python's `stdin=`/`stdout=`/
/// `stderr=` values. Use the constants `INHERIT` (the default: Python's
/// `None`), `PIPE`, `DEVNULL` and `STDOUT` (stderr only), an open file
/// descriptor (`int`, used as is and not closed), or another `Popen`'s pipe
/// end to build a pipeline: `{.in = first.out()}` (Python's
/// `stdin=first.stdout`). A pipe end given this way is *taken*: once the
/// child has started, the parent's copy is closed (`first.out().is_open()`
/// becomes false) so that EOF and SIGPIPE travel between the two children as
/// in a shell pipeline.
class Redirect {
public:
  /// What the redirection is: the constants, a descriptor, or a pipe end.
  enum class Kind { inherit, pipe, devnull, stdout_, fd, reader, writer };

  /// Inherit the parent's stream.
  constexpr Redirect() noexcept = default;
  /// One of the special values (prefer the named constants).
  constexpr explicit Redirect(Kind kind) noexcept : kind_(kind) {}
  /// An open file descriptor of the parent, duplicated into the child.
  /// Throws: `std::invalid_argument` for a negative number.
  template <class Int>
    requires std::same_as<Int, int>
  constexpr Redirect(Int fd) : kind_(Kind::fd), fd_(fd) {  // NOLINT: implicit, as Python's stdin=fd
    if (fd < 0) throw std::invalid_argument("spindle::subprocess: negative file descriptor " +
                                            std::to_string(fd) + " given as a redirection");
  }
  /// The read end of another Popen's pipe (`other.out()`), taken over.
  Redirect(PipeReader& reader) noexcept : kind_(Kind::reader), reader_(&reader) {}  // NOLINT
  /// The write end of another Popen's pipe (`other.in()`), taken over.
  Redirect(PipeWriter& writer) noexcept : kind_(Kind::writer), writer_(&writer) {}  // NOLINT

  /// Which kind of redirection this is. Never blocks.
  constexpr Kind kind() const noexcept { return kind_; }
  /// The descriptor for Kind::fd, else -1. Never blocks.
  constexpr int fd() const noexcept { return fd_; }

private:
  friend class Popen;
  Kind kind_ = Kind::inherit;
  int fd_ = -1;
  PipeReader* reader_ = nullptr;
  PipeWriter* writer_ = nullptr;
};

/// Inherit the parent's stream (Python's `None`, the default).
inline constexpr Redirect INHERIT{Redirect::Kind::inherit};
/// A new pipe between parent and child (Python's `subprocess.PIPE`).
inline constexpr Redirect PIPE{Redirect::Kind::pipe};
/// `/dev/null` (Python's `subprocess.DEVNULL`).
inline constexpr Redirect DEVNULL{Redirect::Kind::devnull};
/// stderr only: the same place as stdout (Python's `subprocess.STDOUT`).
inline constexpr Redirect STDOUT{Redirect::Kind::stdout_};

/// An environment: variable name to value (Python's `os.environ` mapping).
using Environment = std::map<std::string, std::string>;

/// Python's `env=` argument: either "inherit the parent's environment" (the
/// default, Python's `env=None`) or a replacement environment, which may be
/// empty (Python's `env={}`: the child gets no variables at all).
///
/// ```
/// run(args);                                  // inherits (env not set)
/// run(args, {.env = {}});                     // an EMPTY environment
/// run(args, {.env = {{"PATH", "/usr/bin"}}}); // exactly PATH
/// run(args, {.env = current_environment()});  // a map (here: a copy)
/// run(args, {.env = std::nullopt});           // inherits, said explicitly
/// ```
///
/// Why not `std::optional<Environment>`: `.env = {}` would make that
/// `std::nullopt` (inherit), silently keeping every secret a caller meant
/// to scrub. This type has no default constructor on purpose, so a braced
/// list, the empty one included, always selects the list constructor and
/// means "exactly these variables". The inherit state is spelled
/// `std::nullopt` (or `OptionalEnvironment::inherit()`), which is also the
/// default of every options struct.
class OptionalEnvironment {
public:
  /// Inherit the parent's environment (Python's `env=None`).
  constexpr OptionalEnvironment(std::nullopt_t) noexcept {}  // NOLINT: implicit, as optional
  /// Exactly these variables; `{}` is the empty environment.
  OptionalEnvironment(std::initializer_list<Environment::value_type> variables)
      : env_(Environment(variables)) {}
  /// Exactly the variables of `env` (which may be empty).
  OptionalEnvironment(Environment env) : env_(std::move(env)) {}  // NOLINT: implicit
  /// A set optional replaces, `std::nullopt` inherits.
  OptionalEnvironment(std::optional<Environment> env) : env_(std::move(env)) {}  // NOLINT

  /// The inherit state, named.
  static OptionalEnvironment inherit() noexcept { return std::nullopt; }

  /// True if this replaces the environment (even with an empty one).
  bool has_value() const noexcept { return env_.has_value(); }
  /// As has_value().
  explicit operator bool() const noexcept { return env_.has_value(); }
  /// The replacement. Precondition: has_value().
  Environment& operator*() & noexcept { return *env_; }
  const Environment& operator*() const& noexcept { return *env_; }
  Environment&& operator*() && noexcept { return std::move(*env_); }
  Environment* operator->() noexcept { return &*env_; }
  const Environment* operator->() const noexcept { return &*env_; }
  /// The replacement as a `std::optional` (nullopt: inherit).
  const std::optional<Environment>& as_optional() const noexcept { return env_; }

private:
  std::optional<Environment> env_;
};

/// A copy of this process's environment: Python's `os.environ.copy()`.
/// Not safe against a concurrent `setenv()` (no C program is).
inline Environment current_environment() { return detail::subproc::environment_map(); }

/// Python's `Popen(...)` keyword arguments. Designated initializers must
/// follow the declaration order: in, out, err, env, cwd, extra_env,
/// restore_signals, start_new_session, process_group. For
/// example: `Popen p(args, {.in = PIPE, .out = PIPE, .cwd = "/tmp"});`
struct PopenOptions {
  /// stdin (see Redirect).
  Redirect in{};
  /// stdout (see Redirect).
  Redirect out{};
  /// stderr (see Redirect); `STDOUT` merges it into stdout.
  Redirect err{};
  /// Python's `env=`: by default the parent's environment is inherited; set,
  /// it replaces the whole environment, e.g. `.env = {{"PATH", "/usr/bin"}}`.
  /// `.env = {}` gives the child an EMPTY environment, as Python's `env={}`
  /// (see OptionalEnvironment). The program is then searched in
  /// `/bin:/usr/bin` (Python's `os.defpath`) unless it contains a slash.
  OptionalEnvironment env = std::nullopt;
  /// Working directory of the child; empty inherits the parent's. A
  /// directory that does not exist throws `SpawnError` (ENOENT, "chdir").
  std::string cwd{};
  /// Added to (or overriding in) the environment: `env` if set, else the
  /// parent's — Python's `env={**os.environ, **extra_env}`.
  Environment extra_env{};  /// Python's `restore_signals=True` (the default): SIGPIPE and SIGXFSZ are
  /// reset to SIG_DFL in the child even if this process ignores them. With
  /// `false` the child inherits them ignored (as every other ignored signal).
  bool restore_signals = true;
  /// Python's `start_new_session`: the child calls setsid(), so it leads a
  /// new session and a new process group (id = its pid) with no
  /// controlling terminal. A failure throws `SpawnError` ("setsid").
  bool start_new_session = false;
  /// Python 3.11's `process_group`: the child calls setpgid(0, pgid).
  /// `0` puts it in a new group of its own (id = its pid); a positive id
  /// joins that existing group (of this session). `std::nullopt` (the
  /// default) keeps the parent's group. A failure (EPERM, ESRCH) throws
  /// `SpawnError` ("setpgid").
  /// Throws: `std::invalid_argument` for a negative id (Python ignores it).
  std::optional<pid_t> process_group{};
};

/// Python's `subprocess.run(...)` keyword arguments. Designated initializers
/// must follow the declaration order: capture_output, input, timeout, check,
/// env, cwd, in, out, err, extra_env, restore_signals, start_new_session,
/// process_group. For example:
/// `run(args, {.capture_output = true, .input = data, .timeout = 5s, .check = true})`.
struct RunOptions {
  /// Capture stdout and stderr into `CompletedProcess::out`/`err` (both PIPE).
  bool capture_output = false;
  /// Bytes fed to the child's stdin, which is then closed (stdin becomes PIPE).
  std::optional<std::string> input{};
  /// Kill the child (SIGKILL), reap it and throw `TimeoutExpired` (with the
  /// output read so far) if it has not finished in time. Negative acts as 0.
  /// If the child leads its own process group (`start_new_session`, or
  /// `process_group = 0`), the whole group is killed first, so a shell's
  /// background jobs and other grandchildren die with it. This differs from
  /// Python, whose run() kills only the child and leaves the grandchildren
  /// running. The same applies to any exception after the start. A child
  /// in the parent's group, or one that joined another group, is killed
  /// alone, as in Python.
  std::optional<std::chrono::duration<double>> timeout{};
  /// Throw `CalledProcessError` if the child exits non-zero.
  bool check = false;
  /// As PopenOptions::env (replace).
  OptionalEnvironment env = std::nullopt;
  /// As PopenOptions::cwd.
  std::string cwd{};
  /// stdin (see Redirect); must stay INHERIT when `input` is set.
  Redirect in{};
  /// stdout (see Redirect); must stay INHERIT when `capture_output` is set.
  Redirect out{};
  /// stderr (see Redirect); must stay INHERIT when `capture_output` is set.
  Redirect err{};
  /// As PopenOptions::extra_env (extend).
  Environment extra_env{};
  /// As PopenOptions::restore_signals.
  bool restore_signals = true;
  /// As PopenOptions::start_new_session. Also makes the timeout kill the
  /// whole session's group (see `timeout`).
  bool start_new_session = false;
  /// As PopenOptions::process_group. `0` also makes the timeout kill the
  /// whole group (see `timeout`).
  std::optional<pid_t> process_group{};
};

/// The result of `run`: Python's `subprocess.CompletedProcess`. The captured
/// streams are `out` and `err` (not `stdout`/`stderr`: macros in C).
struct CompletedProcess {
  /// The command line that was run.
  std::vector<std::string> args;
  /// Exit status; -N if the child died of signal N.
  int returncode = 0;
  /// Captured stdout (empty unless captured).
  std::string out;
  /// Captured stderr (empty unless captured).
  std::string err;

  /// Python's `check_returncode()`.
  /// Throws: `CalledProcessError` (with args, returncode, out, err) if
  /// `returncode` is not 0.
  void check_returncode() const {
    if (returncode != 0) throw CalledProcessError(returncode, args, out, err);
  }
};

/// What `communicate` returns: Python's `(stdout_data, stderr_data)` tuple.
/// `auto [out, err] = proc.communicate();`
struct Output {
  /// Everything the child wrote to its stdout pipe (empty if not a PIPE).
  std::string out;
  /// Everything the child wrote to its stderr pipe (empty if not a PIPE).
  std::string err;
};

/// The parent's read end of a child's stdout or stderr pipe: Python's
/// `proc.stdout` / `proc.stderr`. Unbuffered except for what `readline`
/// reads ahead. Use from one thread at a time (as a file object).
class PipeReader {
public:
  PipeReader() noexcept = default;
  /// Takes ownership of `fd`, an open read end.
  explicit PipeReader(int fd) noexcept : fd_(fd) {}

  /// The descriptor, or -1 once closed. Never blocks.
  int fd() const noexcept { return fd_.get(); }
  /// False once closed, or if the stream was not a PIPE. Never blocks.
  bool is_open() const noexcept { return fd_.valid(); }
  /// Closes the parent's end: a child still writing then gets EPIPE/SIGPIPE.
  void close() noexcept {
    fd_.reset();
    buffered_.clear();
  }

  /// Python's `read()`: everything until EOF.
  /// Blocks: until the child closes its end (usually: exits).
  /// Throws: `spindle::OSError` (with the errno) on a read error.
  std::string read() {
    std::string out = std::exchange(buffered_, {});
    if (!fd_.valid()) return out;
    for (;;) {
      const ssize_t n = detail::subproc::read_into(fd_.get(), out);
      if (n == 0) return out;
      if (n < 0) spindle::detail::throw_os_error("PipeReader::read: reading a pipe", errno);
    }
  }

  /// Python's `os.read(fd, max)`: whatever is available, at most `max`
  /// bytes, after waiting for at least one; empty at EOF.
  /// Blocks: until data or EOF. Throws: `spindle::OSError` on a read error.
  std::string read_some(std::size_t max = detail::subproc::read_chunk) {
    if (!buffered_.empty()) {
      std::string out = buffered_.substr(0, max);
      buffered_.erase(0, out.size());
      return out;
    }
    std::string out;
    if (!fd_.valid() || max == 0) return out;
    if (detail::subproc::read_into(fd_.get(), out, max) < 0)
      spindle::detail::throw_os_error("PipeReader::read_some: reading a pipe", errno);
    return out;
  }

  /// Python's `readline()`: the next line including its `\n` (the last one
  /// may lack it); `std::nullopt` at EOF.
  /// Blocks: until a whole line or EOF. Throws: `spindle::OSError` on a
  /// read error.
  std::optional<std::string> readline() {
    std::size_t scanned = 0;
    for (;;) {
      const auto nl = buffered_.find('\n', scanned);
      if (nl != std::string::npos) {
        std::string line = buffered_.substr(0, nl + 1);
        buffered_.erase(0, nl + 1);
        return line;
      }
      scanned = buffered_.size();
      const ssize_t n = fd_.valid() ? detail::subproc::read_into(fd_.get(), buffered_) : 0;
      if (n < 0) spindle::detail::throw_os_error("PipeReader::readline: reading a pipe", errno);
      if (n == 0) {
        if (buffered_.empty()) return std::nullopt;
        return std::exchange(buffered_, {});
      }
    }
  }

private:
  friend class Popen;
  detail::subproc::UniqueFd fd_;
  std::string buffered_;  // read ahead by readline, not yet returned
};

/// The parent's write end of a child's stdin pipe: Python's `proc.stdin`.
/// Unbuffered. Use from one thread at a time (as a file object).
class PipeWriter {
public:
  PipeWriter() noexcept = default;
  /// Takes ownership of `fd`, an open write end.
  explicit PipeWriter(int fd) noexcept : fd_(fd) {}

  /// The descriptor, or -1 once closed. Never blocks.
  int fd() const noexcept { return fd_.get(); }
  /// False once closed, or if stdin was not a PIPE. Never blocks.
  bool is_open() const noexcept { return fd_.valid(); }
  /// Closes the parent's end: the child reads EOF.
  void close() noexcept { fd_.reset(); }
  /// Does nothing (writes are unbuffered); here so Python code ports as is.
  void flush() noexcept {}

  /// Python's `write(data)`: writes all of `data`.
  /// Blocks: while the pipe is full.
  /// Throws: `spindle::BrokenPipeError` (errno EPIPE) if the child closed its
  /// end, e.g. because it exited, as Python — the process is not killed by
  /// SIGPIPE; `spindle::ConnectionResetError` for ECONNRESET; a plain
  /// `spindle::OSError` with EBADF if this end is closed (Python raises
  /// ValueError there) or with the errno of any other write error. All are
  /// `spindle::Error`s. Bytes written before the failure are not reported
  /// (use the `error_code` overload for that).
  void write(std::string_view data) {
    std::error_code ec;
    write(data, ec);
    if (!ec) return;
    if (ec.value() == EPIPE)
      throw BrokenPipeError("PipeWriter::write: the reading end of the pipe is closed (the child "
                            "exited or closed its stdin)",
                            EPIPE);
    if (ec.value() == EBADF && !fd_.valid())
      throw OSError("PipeWriter::write: this end of the pipe is closed", EBADF);
    spindle::detail::throw_os_error("PipeWriter::write: writing to a pipe", ec.value());
  }

  /// As `write(data)`, reporting failure in `ec`; returns the bytes written.
  std::size_t write(std::string_view data, std::error_code& ec) noexcept {
    ec.clear();
    if (!fd_.valid()) {
      ec.assign(EBADF, std::generic_category());
      return 0;
    }
    detail::subproc::SigpipeBlock sigpipe;
    std::size_t written = 0;
    const int e = detail::subproc::write_all(fd_.get(), data.data(), data.size(), written);
    if (e == EPIPE) sigpipe.saw_epipe();
    if (e != 0) ec.assign(e, std::generic_category());
    return written;
  }

private:
  friend class Popen;
  detail::subproc::UniqueFd fd_;
};

/// A running child process: Python's `subprocess.Popen`.
///
/// Thread safety: `pid`, `poll`, `wait`, `returncode`, `send_signal`,
/// `terminate`, `kill`, `process_group` and the `*_group` signals are
/// thread-safe, also against each other and
/// against one thread in `communicate` (Python serializes them with a
/// lock, so do we). `communicate` and the pipe ends are used by one thread
/// at a time. Distinct Popen objects are independent, so many threads may
/// spawn and drive children at once.
///
/// Destruction while the child still runs: the destructor closes the
/// parent's pipe ends (the child sees EOF on stdin, EPIPE on output) and
/// hands the child to a background reaper thread, which reaps it when it
/// exits: no zombie, no hang, and no signal the caller did not send. (Python
/// keeps such children on its `_active` list and reaps them later; we reap
/// as soon as they exit.) To stop the child, call `kill()` or `terminate()`
/// and `wait()` first.
///
/// Movable (a moved-from Popen may only be destroyed or assigned to);
/// the pipe-end objects keep their addresses across moves.
class Popen {
public:
  /// Starts `args[0]` (searched in PATH, the child's PATH if `env`/
  /// `extra_env` set one, when it has no slash) with arguments `args`.
  /// Blocks: until the child has exec'd (tens to hundreds of microseconds).
  /// Throws: `std::invalid_argument` for empty `args`, a NUL byte in an
  /// argument, cwd or environment entry, an `=` in a variable name, STDOUT
  /// anywhere but `err`, or a closed pipe end given as a redirection;
  /// `SpawnError` (errno, program) if the program is missing (ENOENT), not
  /// executable (EACCES), cwd does not exist, a given fd is not open (EBADF),
  /// a pipe/clone cannot be created (EMFILE, EAGAIN...), or the child's
  /// setsid/setpgid failed (EPERM, ESRCH); `std::invalid_argument` for a
  /// negative `process_group`.
  explicit Popen(std::vector<std::string> args, PopenOptions options = {});

  /// Takes over `other`'s child; `other` is left empty. Never blocks.
  Popen(Popen&& other) noexcept = default;
  /// Disposes of the current child as the destructor does, then takes over.
  Popen& operator=(Popen&& other) noexcept {
    if (this != &other) {
      release();
      s_ = std::move(other.s_);
    }
    return *this;
  }
  Popen(const Popen&) = delete;
  Popen& operator=(const Popen&) = delete;
  /// Never blocks, never kills: see the class comment.
  ~Popen() { release(); }

  /// The command line. Never blocks.
  const std::vector<std::string>& args() const { return state().args; }
  /// The child's process id (Python's `pid`). Never blocks. Thread-safe.
  pid_t pid() const { return state().pid; }

  /// Python's `returncode` attribute: the exit status once `poll` or `wait`
  /// has seen the child end (-N for signal N), else `std::nullopt`.
  /// Never blocks. Thread-safe.
  std::optional<int> returncode() const {
    std::lock_guard g(state().m);
    return state().returncode;
  }

  /// Python's `poll()`: reaps the child if it has ended and returns its
  /// returncode, else `std::nullopt`. Never blocks. Thread-safe.
  std::optional<int> poll() {
    State& s = state();
    std::lock_guard g(s.m);
    s.reap_nohang_locked();
    return s.returncode;
  }

  /// Python's `wait()`: waits for the child to end and returns its
  /// returncode. Does not read its pipes: a child blocked writing to a full
  /// pipe never ends (use `communicate`).
  /// Blocks: until the child ends. Thread-safe (several threads may wait).
  int wait() { return *wait_until(std::nullopt); }

  /// Python's `wait(timeout)`. Negative timeouts act as zero.
  /// Blocks: until the child ends or the timeout passes.
  /// Throws: `TimeoutExpired` if it is still running then (the child is
  /// left running). Thread-safe.
  template <class Rep, class Period>
  int wait(std::chrono::duration<Rep, Period> timeout) {
    if (auto rc = wait_until(detail::deadline_after(timeout))) return *rc;
    throw TimeoutExpired(state().args, std::chrono::duration<double>(timeout));
  }

  /// Python's `communicate(input)`: writes `input` to stdin (if a PIPE) and
  /// closes it, reads stdout and stderr (those that are PIPEs) to EOF, waits
  /// for the child, and returns what was read. Cannot deadlock however much
  /// data flows: one poll loop over all pipes, plus a writer thread for
  /// large inputs so both directions move in parallel. A child that exits
  /// without reading its input is not an error (EPIPE is ignored).
  /// Blocks: until the child ends.
  /// Throws: `std::invalid_argument` if `input` is non-empty but stdin is
  /// not an open PIPE.
  Output communicate(std::string_view input = {}) {
    return communicate_until(input, std::nullopt, std::chrono::duration<double>(0));
  }

  /// Python's `communicate(input, timeout)`. On timeout throws
  /// `TimeoutExpired` carrying the output read so far, and leaves the child
  /// running with nothing lost: a later `communicate()` continues where this
  /// one stopped (unwritten input is kept; a new `input` is then ignored, as
  /// in Python) and returns all output, including what the exception held.
  /// Blocks: until the child ends or the timeout passes.
  template <class Rep, class Period>
  Output communicate(std::string_view input, std::chrono::duration<Rep, Period> timeout) {
    return communicate_until(input, detail::deadline_after(timeout),
                             std::chrono::duration<double>(timeout));
  }

  /// `communicate({}, timeout)`: Python's `communicate(timeout=...)`.
  template <class Rep, class Period>
  Output communicate(std::chrono::duration<Rep, Period> timeout) {
    return communicate(std::string_view{}, timeout);
  }

  /// Python's `send_signal(sig)`: does nothing once the child has been
  /// reaped (so a recycled pid is never signalled). Never blocks.
  /// Throws: `spindle::OSError` if kill(2) fails (EINVAL, EPERM).
  /// Thread-safe.
  void send_signal(int sig) {
    State& s = state();
    std::lock_guard g(s.m);
    s.reap_nohang_locked();
    if (s.returncode) return;
    if (::kill(s.pid, sig) != 0 && errno != ESRCH)
      throw OSError("Popen::send_signal: kill(" + std::to_string(s.pid) + ", " +
                        std::to_string(sig) + ")",
                    errno);
  }
  /// Python's `terminate()`: SIGTERM (returncode -15 if it dies of it).
  void terminate() { send_signal(SIGTERM); }
  /// Python's `kill()`: SIGKILL (returncode -9).
  void kill() { send_signal(SIGKILL); }

  /// The child's process group id if it was started in a group other than
  /// ours (`start_new_session`: its pid; `process_group = 0`: its pid;
  /// `process_group = N`: N), else `std::nullopt` (it shares the parent's
  /// group). Never blocks. Thread-safe.
  std::optional<pid_t> process_group() const {
    const State& s = state();
    if (s.pgid > 0) return s.pgid;
    return std::nullopt;
  }

  /// Python's `os.killpg(proc.pid, sig)`: sends `sig` to every process in
  /// the child's process group — the child and whatever it started that
  /// stayed in the group (a shell's background jobs, a build's compilers),
  /// which `send_signal` does not reach. Works also after the child itself
  /// has ended and been reaped, since its children may outlive it: Linux
  /// does not reuse a pid as long as a process group of that id exists. A
  /// group with no process left is not an error (ESRCH is ignored).
  /// Caveat (as with Python's killpg): once the group is empty its id may be
  /// reused by an unrelated process that makes itself a group leader.
  /// Never blocks.
  /// Throws: `std::logic_error` if the child shares this process's group
  /// (signalling it would hit the caller too): start it with
  /// `.start_new_session = true` or `.process_group = 0`;
  /// `spindle::OSError` if killpg(2) fails otherwise (EPERM, EINVAL).
  /// Thread-safe.
  void send_signal_group(int sig) {
    State& s = state();
    if (s.pgid <= 0)
      throw std::logic_error(
          "spindle::subprocess::Popen::send_signal_group: the child shares the parent's process "
          "group; start it with .start_new_session = true or .process_group = 0");
    if (::kill(-s.pgid, sig) != 0 && errno != ESRCH)
      throw OSError("Popen::send_signal_group: killpg(" + std::to_string(s.pgid) + ", " +
                        std::to_string(sig) + ")",
                    errno);
  }
  /// `send_signal_group(SIGTERM)`.
  void terminate_group() { send_signal_group(SIGTERM); }
  /// `send_signal_group(SIGKILL)`: the child and its whole group die.
  void kill_group() { send_signal_group(SIGKILL); }

  /// Python's `proc.stdin`: closed unless stdin was PIPE.
  PipeWriter& in() { return state().in; }
  /// Python's `proc.stdout`: closed unless stdout was PIPE. Pass it as
  /// another Popen's `.in` to pipe the two together.
  PipeReader& out() { return state().out; }
  /// Python's `proc.stderr`: closed unless stderr was PIPE.
  PipeReader& err() { return state().err; }

private:
  struct State {
    std::vector<std::string> args;
    pid_t pid = -1;
    pid_t pgid = 0;  // the child's own group (see process_group()), 0: the parent's
    PipeWriter in;
    PipeReader out;
    PipeReader err;
    mutable std::mutex m;
    std::optional<int> returncode;  // guarded by m
    int pidfd = -1;                 // guarded by m; opened on the first blocking wait
    bool no_pidfd = false;          // guarded by m; the kernel lacks pidfd_open
    // communicate's state (one communicating thread at a time)
    bool comm_started = false;
    std::string pending_input;  // input a timed-out communicate had not written yet
    std::string out_buf;
    std::string err_buf;

    // Reaping only happens here, under m, so no thread can signal or wait
    // on a pid that has been recycled.
    void reap_nohang_locked() noexcept {
      if (returncode) return;
      int status = 0;
      pid_t r;
      do {
        r = ::waitpid(pid, &status, WNOHANG);
      } while (r < 0 && errno == EINTR);
      if (r == pid) {
        returncode = detail::subproc::decode_status(status);
      } else if (r < 0 && errno == ECHILD) {
        // Someone else reaped it (SIGCHLD set to SIG_IGN, or a foreign
        // waitpid(-1)); the status is lost. Python reports 0 here too.
        returncode = 0;
      }
    }

    ~State() {
      if (pidfd >= 0) ::close(pidfd);
    }
  };

  State& state() const {
    if (!s_) throw std::logic_error("spindle::subprocess::Popen: used after being moved from");
    return *s_;
  }

  std::optional<int> wait_until(std::optional<detail::Clock::time_point> deadline);
  Output communicate_until(std::string_view input,
                           std::optional<detail::Clock::time_point> deadline,
                           std::chrono::duration<double> timeout);
  void release() noexcept;

  std::unique_ptr<State> s_;
};

/// Python's `subprocess.run(args, ...)`: starts the child, feeds `input`,
/// collects output if asked, waits, and returns a CompletedProcess.
/// Blocks: until the child ends (or the timeout).
/// Throws: `TimeoutExpired` after killing and reaping the child (with the
/// output read so far); `CalledProcessError` if `check` and the status is
/// not 0; `SpawnError` / `std::invalid_argument` as `Popen`, also for
/// `input` together with `in`, or `capture_output` with `out`/`err`. On any
/// exception after the start the child is killed and reaped first.
/// Thread-safe.
CompletedProcess run(std::vector<std::string> args, RunOptions options = {});

/// Python's `subprocess.check_output(args, ...)`: runs the child with stdout
/// captured and returns it. stderr is not captured unless `.err` says so
/// (Python: `stderr=PIPE` or `STDOUT`); with `.err = STDOUT` it is merged
/// into the result. `check` is always on, as in Python.
/// Blocks: until the child ends (or the timeout).
/// Throws: `CalledProcessError` on a non-zero status, carrying the output
/// (`out()`, and `err()` if it was a PIPE); `TimeoutExpired` after killing
/// and reaping the child (see RunOptions::timeout); `std::invalid_argument`
/// if `options` sets `out` or `capture_output` (Python's "stdout argument
/// not allowed, it will be overridden" ValueError); otherwise as `run`.
/// Thread-safe.
std::string check_output(std::vector<std::string> args, RunOptions options = {});

/// Python's `shell=True`: the argument list that runs `command` with the
/// shell, `{"/bin/sh", "-c", command}`, for `run`, `check_output` and
/// `Popen`: `run(shell("ls *.txt | wc -l"), {.capture_output = true})`.
/// The command line is interpreted by the shell (globs, pipes, `$VAR`):
/// never build it from untrusted input. Unlike Python, the args kept in
/// `CompletedProcess`, `CalledProcessError` and `TimeoutExpired` are the
/// full list (`['/bin/sh', '-c', 'exit 3']`), not the command string.
/// Never blocks.
inline std::vector<std::string> shell(std::string command) {
  return {"/bin/sh", "-c", std::move(command)};
}

}  // namespace spindle::subprocess

#include <spindle/detail/subprocess_impl.hpp>
