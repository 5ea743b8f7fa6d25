// SPDX-License-Identifier: MIT
// spindle/detail/subprocess_spawn.hpp - starting a child with clone(CLONE_VM|CLONE_VFORK).
#pragma once

#include <cerrno>
#include <csignal>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spindle/detail/subprocess_sys.hpp>
#include <spindle/errors.hpp>

extern char** environ;  // POSIX: the process environment

#if defined(__clang__)
// Clang's no_sanitize("thread") still emits function entry/exit hooks, which
// would write the (shared, CLONE_VM) parent thread's TSan state from the child.
#define SPINDLE_DETAIL_CHILD_CODE __attribute__((disable_sanitizer_instrumentation, noinline))
#elif defined(__GNUC__)
#define SPINDLE_DETAIL_CHILD_CODE \
  __attribute__((no_sanitize("address", "thread", "undefined"), noinline))
#else
#define SPINDLE_DETAIL_CHILD_CODE
#endif

#if defined(__SANITIZE_THREAD__)
#define SPINDLE_DETAIL_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SPINDLE_DETAIL_TSAN 1
#endif
#endif

#ifdef SPINDLE_DETAIL_TSAN
// ThreadSanitizer intercepts clone() as a fork and corrupts its own state
// when the child shares our memory (CLONE_VM). glibc exports the same entry
// point as __clone, which TSan leaves alone.
extern "C" int __clone(int (*fn)(void*), void* stack, int flags, void* arg, ...);
#endif

namespace spindle::detail::subproc {

/// What failed in the child before exec, reported through the error pipe.
enum class ChildStep : int {
  none = 0,
  redirect = 1,
  close_fds = 2,
  chdir = 3,
  exec = 4,
  setsid = 5,
  setpgid = 6
};

/// The record the child writes into the close-on-exec error pipe.
struct ChildError {
  int step;
  int error;
};

/// Everything the child needs, prepared by the parent. Between clone and
/// exec the child only reads this and makes raw system calls: no malloc, no
/// locks, no libc function that is not async-signal-safe, no sanitizer hook.
struct SpawnRequest {
  const char* const* candidates = nullptr;  // paths to try with execve, in PATH order
  std::size_t candidate_count = 0;
  char* const* argv = nullptr;
  char* const* envp = nullptr;
  const char* cwd = nullptr;      // nullptr: inherit the parent's
  int src[3] = {-1, -1, -1};      // descriptor to become fd 0/1/2; -1 inherits
  bool err_to_out = false;        // stderr=STDOUT
  int error_pipe = -1;            // write end, close-on-exec, >= 3
  int max_fd = 1024;              // fallback close loop bound (no close_range)
  bool restore_signals = true;    // SIGPIPE and SIGXFSZ back to SIG_DFL (Python's default)
  bool new_session = false;       // setsid() (start_new_session)
  pid_t pgid = -1;                // setpgid(0, pgid) if >= 0 (process_group)
  sigset_t child_mask;            // the spawning thread's mask, restored before exec
};

/// The kernel's sigaction layout begins with the handler on every Linux
/// architecture spindle supports; the rest is padding we never interpret.
struct KernelSigaction {
  void* handler;
  unsigned long rest[8];
};

#if defined(__mips__) || defined(__alpha__)
#error "spindle/subprocess: the kernel sigaction layout of this architecture is not supported"
#endif

#ifndef CLOSE_RANGE_CLOEXEC
#define SPINDLE_DETAIL_CLOSE_RANGE_CLOEXEC (1U << 2)
#else
#define SPINDLE_DETAIL_CLOSE_RANGE_CLOEXEC CLOSE_RANGE_CLOEXEC
#endif

SPINDLE_DETAIL_CHILD_CODE inline int child_fail(const SpawnRequest* r, ChildStep step, int error) {
  ChildError e{static_cast<int>(step), error};
  while (::syscall(SYS_write, r->error_pipe, &e, sizeof e) < 0 && errno == EINTR) {
  }
  return 127;
}

/// The child, running on its own small stack in the parent's memory until it
/// calls execve. Returns only on failure (the exit status of the child).
SPINDLE_DETAIL_CHILD_CODE inline int child_main(void* arg) {
  const auto* r = static_cast<const SpawnRequest*>(arg);
  int src[3] = {r->src[0], r->src[1], r->src[2]};
  // A source on 0..2 other than its own target could be overwritten by an
  // earlier dup: move it above 2 first (close-on-exec, so it never leaks).
  for (int i = 0; i < 3; ++i) {
    if (src[i] >= 0 && src[i] < 3 && src[i] != i) {
      const long moved = ::syscall(SYS_fcntl, src[i], F_DUPFD_CLOEXEC, 3);
      if (moved < 0) return child_fail(r, ChildStep::redirect, errno);
      src[i] = static_cast<int>(moved);
    }
  }
  for (int i = 0; i < 3; ++i) {
    if (src[i] < 0) continue;
    if (src[i] == i) {
      // Given its own number: make sure exec keeps it.
      if (::syscall(SYS_fcntl, i, F_SETFD, 0) < 0) return child_fail(r, ChildStep::redirect, errno);
    } else if (::syscall(SYS_dup3, src[i], i, 0) < 0) {
      return child_fail(r, ChildStep::redirect, errno);
    }
  }
  if (r->err_to_out && ::syscall(SYS_dup3, 1, 2, 0) < 0)
    return child_fail(r, ChildStep::redirect, errno);

  // Everything >= 3 goes at exec: one close_range marks them all
  // close-on-exec (which keeps the error pipe working until exec).
#ifdef SYS_close_range
  if (::syscall(SYS_close_range, 3U, ~0U, SPINDLE_DETAIL_CLOSE_RANGE_CLOEXEC) < 0) {
    if (errno == ENOSYS) {  // Linux < 5.9: close one by one
      for (int fd = 3; fd < r->max_fd; ++fd)
        if (fd != r->error_pipe) ::syscall(SYS_close, fd);
    } else {  // Linux 5.9/5.10: no CLOSE_RANGE_CLOEXEC; close around the pipe
      const unsigned pipe_fd = static_cast<unsigned>(r->error_pipe);
      if (pipe_fd > 3U && ::syscall(SYS_close_range, 3U, pipe_fd - 1U, 0U) < 0)
        return child_fail(r, ChildStep::close_fds, errno);
      if (::syscall(SYS_close_range, pipe_fd + 1U, ~0U, 0U) < 0)
        return child_fail(r, ChildStep::close_fds, errno);
    }
  }
#else
  for (int fd = 3; fd < r->max_fd; ++fd)
    if (fd != r->error_pipe) ::syscall(SYS_close, fd);
#endif

  if (r->cwd != nullptr && ::syscall(SYS_chdir, r->cwd) < 0)
    return child_fail(r, ChildStep::chdir, errno);

  // Python's order after chdir: restore_signals, setsid, setpgid.
  //
  // Handlers installed by the parent must not run in this child (it shares
  // the parent's memory until exec): reset every caught signal to default.
  // Ignored signals stay ignored across exec (POSIX), except that
  // restore_signals (on by default, as Python's restore_signals=True) puts
  // SIGPIPE and SIGXFSZ back to SIG_DFL: a parent that ignores SIGPIPE
  // (common in servers, and what the Python interpreter itself does) must
  // not make `yes | head` children print "Broken pipe" instead of dying
  // quietly of SIGPIPE. (Python also resets SIGXFZ, which Linux lacks.)
  static_assert(sizeof(KernelSigaction) >= 32);
  for (int sig = 1; sig < 65; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    KernelSigaction old{};
    if (::syscall(SYS_rt_sigaction, sig, nullptr, &old, 8) < 0) continue;
    const bool restore = r->restore_signals && (sig == SIGPIPE || sig == SIGXFSZ);
    if (old.handler == reinterpret_cast<void*>(SIG_DFL) ||
        (old.handler == reinterpret_cast<void*>(SIG_IGN) && !restore))
      continue;
    KernelSigaction dfl{};
    ::syscall(SYS_rt_sigaction, sig, &dfl, nullptr, 8);
  }
  if (r->new_session && ::syscall(SYS_setsid) < 0) return child_fail(r, ChildStep::setsid, errno);
  if (r->pgid >= 0 && ::syscall(SYS_setpgid, 0, r->pgid) < 0)
    return child_fail(r, ChildStep::setpgid, errno);
  ::syscall(SYS_rt_sigprocmask, SIG_SETMASK, &r->child_mask, nullptr, 8);

  int error = ENOENT;
  for (std::size_t i = 0; i < r->candidate_count; ++i) {
    ::syscall(SYS_execve, r->candidates[i], r->argv, r->envp);
    const int e = errno;
    // As execvp: keep searching PATH past missing entries and permission
    // problems (remembering EACCES); any other error is final.
    if (e == EACCES) {
      error = EACCES;
    } else if (e != ENOENT && e != ENOTDIR) {
      error = e;
      break;
    }
  }
  return child_fail(r, ChildStep::exec, error);
}

/// The result of clone_child: a pid, or what failed (step none with an errno
/// when clone itself failed).
struct SpawnOutcome {
  pid_t pid = -1;
  ChildError error{0, 0};
};

/// Starts the child described by `req` (whose error_pipe is
/// `error_write`), closes the parent's copy of the pipe's write end, and
/// reads the child's report from `error_read`: EOF means exec succeeded.
inline SpawnOutcome clone_child(SpawnRequest& req, UniqueFd& error_read, UniqueFd& error_write) {
  constexpr std::size_t stack_size = 64 * 1024;
  // One child stack per spawning thread, reused: the thread is suspended
  // (CLONE_VFORK) while the child runs on it, so nobody else touches it.
  thread_local std::unique_ptr<std::max_align_t[]> stack;
  if (!stack) stack.reset(new std::max_align_t[stack_size / sizeof(std::max_align_t)]);
  char* stack_top = reinterpret_cast<char*>(stack.get()) + stack_size;

  // Block every signal so no handler can run in the child before it has
  // reset them; the child restores this thread's mask just before exec.
  sigset_t all;
  sigfillset(&all);
  ::pthread_sigmask(SIG_SETMASK, &all, &req.child_mask);
#ifdef SPINDLE_DETAIL_TSAN
  const pid_t pid = ::__clone(child_main, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &req);
#else
  const pid_t pid = ::clone(child_main, stack_top, CLONE_VM | CLONE_VFORK | SIGCHLD, &req);
#endif
  const int clone_errno = errno;
  ::pthread_sigmask(SIG_SETMASK, &req.child_mask, nullptr);

  SpawnOutcome out;
  error_write.reset();
  if (pid < 0) {
    out.error = {static_cast<int>(ChildStep::none), clone_errno};
    return out;
  }
  // The child has exec'd (the pipe's write end closed with it: EOF) or
  // exited after writing a ChildError.
  ChildError report{0, 0};
  std::size_t got = 0;
  while (got < sizeof report) {
    const ssize_t n = ::read(error_read.get(), reinterpret_cast<char*>(&report) + got,
                             sizeof report - got);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  if (got == sizeof report) {
    int status = 0;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    out.error = report;
    return out;
  }
  out.pid = pid;
  return out;
}

/// The candidate paths for `program`: itself if it contains a slash, else
/// each PATH directory (the child's PATH if its environment sets one, as
/// Python does) joined with it.
inline std::vector<std::string> exec_candidates(const std::string& program, const char* path_env) {
  std::vector<std::string> out;
  if (program.find('/') != std::string::npos) {
    out.push_back(program);
    return out;
  }
  std::string_view path = path_env != nullptr ? path_env : "/bin:/usr/bin";
  for (;;) {
    const auto colon = path.find(':');
    std::string_view dir = path.substr(0, colon);
    std::string candidate(dir.empty() ? std::string_view(".") : dir);
    candidate += '/';
    candidate += program;
    out.push_back(std::move(candidate));
    if (colon == std::string_view::npos) break;
    path.remove_prefix(colon + 1);
  }
  return out;
}

/// Throws std::invalid_argument if `s` holds a NUL byte (it would silently
/// truncate the argument, as Python's "embedded null byte" ValueError).
inline void reject_nul(std::string_view s, const char* what) {
  if (s.find('\0') != std::string_view::npos)
    throw std::invalid_argument(std::string("spindle::subprocess: embedded NUL byte in ") + what);
}

/// The environment as a map (Python's os.environ.copy()). Reading environ
/// races with setenv() in other threads, as everywhere in C.
inline std::map<std::string, std::string> environment_map() {
  std::map<std::string, std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view entry(*e);
    const auto eq = entry.find('=');
    if (eq == std::string_view::npos) continue;
    out.insert_or_assign(std::string(entry.substr(0, eq)), std::string(entry.substr(eq + 1)));
  }
  return out;
}

/// The highest descriptor number + 1, for the close loop on kernels
/// without close_range (< 5.9).
inline int fd_limit() noexcept {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
      rl.rlim_cur < (1u << 20))
    return static_cast<int>(rl.rlim_cur);
  return 1 << 20;
}

/// Words for what failed, for SpawnError's message.
inline std::string describe_step(ChildStep step, const char* cwd) {
  switch (step) {
    case ChildStep::redirect: return "redirecting a standard stream";
    case ChildStep::close_fds: return "closing inherited descriptors";
    case ChildStep::chdir: return std::string("chdir to '") + (cwd ? cwd : "") + "'";
    case ChildStep::exec: return "exec";
    case ChildStep::setsid: return "setsid (start_new_session)";
    case ChildStep::setpgid: return "setpgid (process_group)";
    case ChildStep::none: return "clone";
  }
  return "spawn";
}

}  // namespace spindle::detail::subproc
