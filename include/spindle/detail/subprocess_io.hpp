// SPDX-License-Identifier: MIT
// spindle/detail/subprocess_io.hpp - the deadlock-free engine behind communicate().
#pragma once

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <spindle/detail/subprocess_sys.hpp>
#include <spindle/errors.hpp>

namespace spindle::detail::subproc {

/// Bytes asked of one read(2): a default pipe holds 64 KiB.
inline constexpr std::size_t read_chunk = 64 * 1024;

/// Input at least this large is written by a helper thread while the
/// calling thread reads: both directions then move in parallel (the child,
/// writer and reader each on a core), which a single poll loop cannot do.
inline constexpr std::size_t threaded_input_min = 256 * 1024;

/// Outputs past this size grow 4x at a time (see read_into).
inline constexpr std::size_t grow_min = std::size_t{1} << 20;
/// The largest single growth step: bounds the address space reserved.
inline constexpr std::size_t grow_max_step = std::size_t{1} << 30;

/// Appends up to `chunk` bytes read from `fd` to `buf`. Returns read(2)'s
/// result (0 at EOF, -1 with errno). Retries EINTR. The buffer grows
/// geometrically, so appending N bytes costs O(N); a buffer reserved to the
/// exact final size is filled to the brim without growing (the read that
/// finds EOF then goes to a small stack buffer, not to a doubled heap one).
/// Past `grow_min` bytes it grows 4x instead of std::string's 2x: reserved
/// capacity is not touched until read into, so the larger step costs address
/// space, not memory, and saves most of the copying and page faults of
/// repeated doubling (a third of the data copied instead of all of it).
inline ssize_t read_into(int fd, std::string& buf, std::size_t chunk = read_chunk) {
  const std::size_t old = buf.size();
  const std::size_t room = buf.capacity() - old;
  ssize_t n;
  if (room < 4096 && room < chunk) {
    char probe[4096];
    do {
      n = ::read(fd, probe, (std::min)(sizeof probe, chunk));
    } while (n < 0 && errno == EINTR);
    if (n > 0) {
      if (old >= grow_min) buf.reserve(old + (std::min)(old * 3, grow_max_step));
      buf.append(probe, static_cast<std::size_t>(n));  // grows geometrically
    }
    return n;
  }
  chunk = (std::min)(chunk, room);
  buf.resize(old + chunk);
  do {
    n = ::read(fd, buf.data() + old, chunk);
  } while (n < 0 && errno == EINTR);
  buf.resize(old + (n > 0 ? static_cast<std::size_t>(n) : 0));
  return n;
}

/// Sets O_NONBLOCK on our end of a pipe (the child's end is a separate open
/// file description and keeps blocking).
inline void set_nonblocking(int fd) noexcept {
  const int flags = ::fcntl(fd, F_GETFL);
  if (flags >= 0 && (flags & O_NONBLOCK) == 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/// Writes as much of input[off..] as the pipe takes without blocking.
/// Closes `in` when everything is written or the reader is gone (EPIPE:
/// the child exited without reading, which Python's communicate ignores).
inline void write_some(UniqueFd& in, std::string_view input, std::size_t& off,
                       SigpipeBlock& sigpipe) noexcept {
  for (;;) {
    if (off >= input.size()) {
      in.reset();
      return;
    }
    const ssize_t n = ::write(in.get(), input.data() + off, input.size() - off);
    if (n > 0) {
      off += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) return;
    if (n < 0 && errno == EPIPE) sigpipe.saw_epipe();
    in.reset();  // EPIPE or a hard error: the child will not read more
    return;
  }
}

/// Reads what is available on `fd` into `buf`; closes it at EOF or error.
inline void read_some(UniqueFd& fd, std::string& buf) {
  const ssize_t n = read_into(fd.get(), buf);
  if (n == 0 || (n < 0 && errno != EAGAIN)) fd.reset();
}

/// One thread, one poll loop over every open stream. Returns false if the
/// deadline passed first (streams stay open; state is kept for a retry).
inline bool pump_poll(UniqueFd& in, std::string_view input, std::size_t& off, UniqueFd& out,
                      std::string& out_buf, UniqueFd& err, std::string& err_buf,
                      std::optional<Clock::time_point> deadline, SigpipeBlock& sigpipe) {
  if (in.valid()) set_nonblocking(in.get());
  for (;;) {
    pollfd fds[3];
    UniqueFd* owners[3];
    nfds_t n = 0;
    if (in.valid()) {
      fds[n] = {in.get(), POLLOUT, 0};
      owners[n++] = &in;
    }
    if (out.valid()) {
      fds[n] = {out.get(), POLLIN, 0};
      owners[n++] = &out;
    }
    if (err.valid()) {
      fds[n] = {err.get(), POLLIN, 0};
      owners[n++] = &err;
    }
    if (n == 0) return true;
    const int ready = poll_until(fds, n, deadline);
    if (ready == 0) return false;
    if (ready < 0) spindle::detail::throw_os_error("communicate: poll", errno);
    for (nfds_t i = 0; i < n; ++i) {
      if (fds[i].revents == 0) continue;
      if (owners[i] == &in) {
        write_some(in, input, off, sigpipe);
      } else {
        read_some(*owners[i], owners[i] == &out ? out_buf : err_buf);
      }
    }
  }
}

/// A helper thread writes the input while the caller reads: see
/// threaded_input_min. The writer never blocks in write(2) (the descriptor
/// is non-blocking; it waits in poll together with a cancel eventfd), so a
/// timeout or an exception in the reader can always stop and join it.
inline bool pump_threaded(UniqueFd& in, std::string_view input, std::size_t& off, UniqueFd& out,
                          std::string& out_buf, UniqueFd& err, std::string& err_buf,
                          std::optional<Clock::time_point> deadline, SigpipeBlock& sigpipe) {
  UniqueFd cancel(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!cancel.valid()) return pump_poll(in, input, off, out, out_buf, err, err_buf, deadline, sigpipe);
  set_nonblocking(in.get());

  std::thread writer;
  try {
    writer = std::thread([&in, input, &off, cancel_fd = cancel.get()] {
      SigpipeBlock thread_sigpipe;  // this thread's own mask
      for (;;) {
        if (off >= input.size()) break;
        const ssize_t n = ::write(in.get(), input.data() + off, input.size() - off);
        if (n > 0) {
          off += static_cast<std::size_t>(n);
          continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) {
          pollfd p[2] = {{in.get(), POLLOUT, 0}, {cancel_fd, POLLIN, 0}};
          if (poll_until(p, 2, std::nullopt) < 0 || p[1].revents != 0) return;  // cancelled
          continue;
        }
        if (n < 0 && errno == EPIPE) thread_sigpipe.saw_epipe();
        break;
      }
      in.reset();  // all written (or the child stopped reading): EOF for it
    });
  } catch (const std::system_error&) {
    // No thread (EAGAIN): one poll loop moves both directions, only slower.
    return pump_poll(in, input, off, out, out_buf, err, err_buf, deadline, sigpipe);
  }
  // Stops the writer on every way out of this scope, exceptions included.
  struct Joiner {
    std::thread& t;
    int fd;
    void stop() noexcept {
      if (!t.joinable()) return;
      const std::uint64_t one = 1;
      while (::write(fd, &one, sizeof one) < 0 && errno == EINTR) {
      }
      t.join();
    }
    ~Joiner() { stop(); }
  } joiner{writer, cancel.get()};

  if (!deadline && (out.valid() != err.valid())) {
    // One stream and no deadline: plain blocking reads, no poll per chunk.
    UniqueFd& only = out.valid() ? out : err;
    std::string& buf = out.valid() ? out_buf : err_buf;
    while (only.valid()) read_some(only, buf);
  } else {
    UniqueFd no_input;
    std::size_t no_offset = 0;
    if (!pump_poll(no_input, {}, no_offset, out, out_buf, err, err_buf, deadline, sigpipe))
      return false;  // the joiner cancels the writer; `off` keeps its progress
  }
  // The outputs are closed. Usually the writer is done too; if the child
  // still lives but stopped reading, finish the input here, where the
  // deadline applies, rather than waiting on the writer unboundedly.
  joiner.stop();
  if (in.valid()) {
    UniqueFd no_out, no_err;
    return pump_poll(in, input, off, no_out, out_buf, no_err, err_buf, deadline, sigpipe);
  }
  return true;
}

/// communicate()'s engine: feeds input[off..] to `in` and collects `out` and
/// `err` until all three are closed or the deadline passes. Never deadlocks:
/// no write or read can block while another stream needs attention.
/// Returns false on timeout, with `off` and the buffers holding progress.
/// SIGPIPE is blocked in every thread that writes (see SigpipeBlock).
inline bool pump(UniqueFd& in, std::string_view input, std::size_t& off, UniqueFd& out,
                 std::string& out_buf, UniqueFd& err, std::string& err_buf,
                 std::optional<Clock::time_point> deadline) {
  SigpipeBlock sigpipe;
  if (in.valid() && off >= input.size()) in.reset();
  if (in.valid() && (out.valid() || err.valid()) && input.size() - off >= threaded_input_min)
    return pump_threaded(in, input, off, out, out_buf, err, err_buf, deadline, sigpipe);
  if (!deadline && in.valid() && !out.valid() && !err.valid()) {
    // Input only (e.g. the head of a pipeline): blocking writes, no poll.
    std::size_t written = 0;
    if (write_all(in.get(), input.data() + off, input.size() - off, written) == EPIPE)
      sigpipe.saw_epipe();
    off += written;
    in.reset();
    return true;
  }
  if (!deadline && !in.valid() && (out.valid() != err.valid())) {
    UniqueFd& only = out.valid() ? out : err;
    std::string& buf = out.valid() ? out_buf : err_buf;
    while (only.valid()) read_some(only, buf);
    return true;
  }
  return pump_poll(in, input, off, out, out_buf, err, err_buf, deadline, sigpipe);
}

}  // namespace spindle::detail::subproc
