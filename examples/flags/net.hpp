// SPDX-License-Identifier: MIT
// examples/flags/net.hpp - what the flags example needs of POSIX sockets: an
// owning descriptor, deadline-bounded send/receive, and a tiny blocking
// HTTP/1.1 GET client (Connection: close) over 127.0.0.1.
#pragma once

#include <algorithm>
#include <charconv>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

namespace flags {

using Clock = std::chrono::steady_clock;

/// An owned file descriptor, closed on destruction.
class Fd {
public:
  Fd() noexcept = default;
  explicit Fd(int fd) noexcept : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    if (this != &o) reset(std::exchange(o.fd_, -1));
    return *this;
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { reset(); }
  int get() const noexcept { return fd_; }
  /// Gives up ownership: returns the descriptor and forgets it.
  int release() noexcept { return std::exchange(fd_, -1); }
  bool valid() const noexcept { return fd_ >= 0; }
  void reset(int fd = -1) noexcept {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

private:
  int fd_ = -1;
};

/// The server answered with something other than 200: requests'
/// `HTTPError` (raise_for_status).
struct HttpError : std::runtime_error {
  HttpError(int status, std::string reason)
      : std::runtime_error("HTTP " + std::to_string(status) + " - " + reason), status(status),
        reason(std::move(reason)) {}
  int status;
  std::string reason;
};

/// Connecting, sending or receiving failed, timed out, or the response was
/// cut short or garbled: requests' `ConnectionError`.
struct ConnectionError : std::runtime_error {
  explicit ConnectionError(const std::string& what, bool timed_out = false)
      : std::runtime_error(what), timed_out(timed_out) {}
  bool timed_out;  // the client gave up waiting
};

/// Waits until `fd` is ready for `events` or `deadline` passes; false on
/// timeout. With `wake_fd` >= 0, also returns (false) once that descriptor
/// is readable. EINTR restarts with the time left.
inline bool wait_ready(int fd, short events, Clock::time_point deadline, int wake_fd = -1) {
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd fds[2] = {{fd, events, 0}, {wake_fd, POLLIN, 0}};
    const int n =
        ::poll(fds, wake_fd >= 0 ? 2 : 1, static_cast<int>(std::min<long long>(left, 1000)));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) throw std::system_error(errno, std::generic_category(), "poll");
    if (wake_fd >= 0 && fds[1].revents != 0) return false;
    if (n > 0 && fds[0].revents != 0) return true;
  }
}

/// Sends all of `data` on a non-blocking socket before `deadline`.
/// Returns false if the peer went away or time ran out (MSG_NOSIGNAL: no
/// SIGPIPE).
inline bool send_all(int fd, std::string_view data, Clock::time_point deadline,
                     int wake_fd = -1) {
  while (!data.empty()) {
    const ssize_t n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n > 0) {
      data.remove_prefix(static_cast<std::size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (!wait_ready(fd, POLLOUT, deadline, wake_fd)) return false;
    } else {
      return false;
    }
  }
  return true;
}

/// Receives into `out` (appending) what is available, waiting up to
/// `deadline`: the byte count, 0 at EOF, -1 on an error, -2 on timeout or
/// wake-up.
inline long recv_some(int fd, std::string& out, Clock::time_point deadline, int wake_fd = -1) {
  char buf[4096];
  for (;;) {
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n >= 0) {
      out.append(buf, static_cast<std::size_t>(n));
      return static_cast<long>(n);
    }
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return -1;
    if (!wait_ready(fd, POLLIN, deadline, wake_fd)) return -2;
  }
}

/// A parsed HTTP response.
struct Response {
  int status = 0;
  std::string reason;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// A decimal number making up all of `text`, or -1.
inline long long parse_decimal(std::string_view text) {
  long long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || value < 0) return -1;
  return value;
}

inline std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  return out;
}

/// `GET path` from 127.0.0.1:`port` with HTTP/1.1 and `Connection: close`,
/// reading the whole response before `timeout` has passed. A response whose
/// body is shorter than its Content-Length is an error (the server cut it).
/// Blocks: up to `timeout`.
/// Throws: ConnectionError (refused, reset, timed out, truncated, garbled).
inline Response http_get(std::uint16_t port, const std::string& path,
                         std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  Fd sock(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!sock.valid()) throw ConnectionError(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
    if (errno != EINPROGRESS && errno != EINTR)
      throw ConnectionError(std::string("connect: ") + std::strerror(errno));
    if (!wait_ready(sock.get(), POLLOUT, deadline))
      throw ConnectionError("connect: timed out", true);
    int err = 0;
    socklen_t len = sizeof err;
    ::getsockopt(sock.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) throw ConnectionError(std::string("connect: ") + std::strerror(err));
  }
  const std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" +
                              std::to_string(port) + "\r\nConnection: close\r\n\r\n";
  if (!send_all(sock.get(), request, deadline))
    throw ConnectionError("send failed or timed out", Clock::now() >= deadline);

  std::string raw;
  for (;;) {
    const long n = recv_some(sock.get(), raw, deadline);
    if (n == 0) break;
    if (n == -2) throw ConnectionError("timed out reading the response", true);
    if (n < 0) throw ConnectionError(std::string("recv: ") + std::strerror(errno));
    if (raw.size() > (64u << 20)) throw ConnectionError("response larger than 64 MiB");
  }

  Response r;
  const auto head_end = raw.find("\r\n\r\n");
  if (head_end == std::string::npos)
    throw ConnectionError("connection closed before the headers ended");
  std::string_view head(raw.data(), head_end);
  const auto line_end = head.find("\r\n");
  const std::string_view status_line = head.substr(0, line_end);
  // "HTTP/1.1 200 OK"
  if (!status_line.starts_with("HTTP/1.") || status_line.size() < 12 || status_line[8] != ' ')
    throw ConnectionError("garbled status line '" + std::string(status_line) + "'");
  r.status = static_cast<int>(parse_decimal(status_line.substr(9, 3)));
  if (r.status < 100)
    throw ConnectionError("garbled status line '" + std::string(status_line) + "'");
  r.reason = std::string(status_line.size() > 13 ? status_line.substr(13) : "");
  for (std::size_t at = line_end; at != std::string_view::npos && at < head.size();) {
    const auto next = head.find("\r\n", at + 2);
    const std::string_view line = head.substr(at + 2, next == std::string_view::npos
                                                          ? std::string_view::npos
                                                          : next - at - 2);
    if (const auto colon = line.find(':'); colon != std::string_view::npos) {
      std::string_view value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
      r.headers[lower(line.substr(0, colon))] = std::string(value);
    }
    at = next;
  }
  r.body = raw.substr(head_end + 4);
  if (const auto it = r.headers.find("content-length"); it != r.headers.end()) {
    const long long length = parse_decimal(it->second);
    if (length < 0) throw ConnectionError("garbled Content-Length '" + it->second + "'");
    const auto expected = static_cast<std::size_t>(length);
    if (r.body.size() < expected)
      throw ConnectionError("connection closed after " + std::to_string(r.body.size()) + " of " +
                            std::to_string(expected) + " body bytes");
    if (r.body.size() > expected) throw ConnectionError("more body bytes than Content-Length");
  }
  return r;
}

}  // namespace flags
