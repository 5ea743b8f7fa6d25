// SPDX-License-Identifier: MIT
// examples/flags/server.hpp - the flags example's own HTTP server on
// 127.0.0.1 (an ephemeral port): deterministic "flag images" for the ISO
// 3166 country codes, 404 for the rest, and optional per-request delay and
// errors like Fluent Python's DELAY and ERROR servers.
#pragma once

#include "net.hpp"

#include <spindle/event.hpp>
#include <spindle/executor.hpp>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>

#include <netinet/in.h>
#include <sys/eventfd.h>
#include <sys/socket.h>

namespace flags {

/// The 249 officially assigned ISO 3166-1 alpha-2 codes: the flags the
/// server has (the book's flupy.org had 194 of them). Any other code is 404.
inline constexpr std::string_view iso_codes =
    "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ "
    "BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ "
    "CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ "
    "DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR "
    "GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU "
    "ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ "
    "LA LB LC LI LK LR LS LT LU LV LY "
    "MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ "
    "NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY "
    "QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ "
    "TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ "
    "VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW";

/// Is `cc` (two upper-case letters) one of iso_codes?
inline bool has_flag(std::string_view cc) {
  if (cc.size() != 2) return false;
  for (std::size_t i = 0; i + 2 <= iso_codes.size(); i += 3)
    if (iso_codes.substr(i, 2) == cc) return true;
  return false;
}

/// SplitMix64: a well-mixed 64-bit hash of `x`.
inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

inline std::uint64_t code_key(std::string_view cc) {
  return (static_cast<std::uint64_t>(static_cast<unsigned char>(cc[0])) << 8) |
         static_cast<unsigned char>(cc[1]);
}

/// The deterministic "GIF" the server sends for `cc`: a GIF89a header and
/// 400-2000 pseudo-random bytes derived from the code.
inline std::string flag_image(std::string_view cc) {
  std::uint64_t state = mix(code_key(cc));
  std::string img = "GIF89a";
  img.resize(6 + 400 + state % 1601);
  for (std::size_t i = 6; i < img.size(); ++i) {
    state = mix(state);
    img[i] = static_cast<char>(state & 0xff);
  }
  return img;
}

/// FNV-1a 64 of `data`, as 16 hex digits: the X-Checksum header.
inline std::string checksum(std::string_view data) {
  std::uint64_t h = 0xcbf29ce484222325ULL;
  for (const char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 0x100000001b3ULL;
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(h));
  return hex;
}

/// How the server misbehaves, if asked to.
struct ServerOptions {
  /// Every response waits this long first (the book's DELAY server).
  std::chrono::milliseconds delay{0};
  /// This fraction of the country codes fail (the book's ERROR server):
  /// a third each with "503 Service Unavailable", a body cut off halfway,
  /// and a body of the right length with one byte changed. Which codes fail depends only on the code and `seed`, not on
  /// the order of the requests, so every run of the same arguments fails
  /// the same codes.
  double error_rate = 0;
  std::uint64_t seed = 1;
  /// Connection handlers (a spindle ThreadPoolExecutor).
  std::size_t threads = 32;
  /// The server accepts at most this many connections, then stops.
  long max_requests = 100000;
  /// ... and stops accepting after this long in any case.
  std::chrono::seconds lifetime{300};
  /// A connection that sends no full request within this time is closed.
  std::chrono::milliseconds io_timeout{5000};
};

/// What the server did, counted before each response is sent.
struct ServerStats {
  long ok = 0;
  long not_found = 0;
  long errors = 0;  // 503s, cut and corrupted bodies
  long bad = 0;     // malformed requests, timeouts
};

/// How the server answers a request for `cc` with `o`: the plan.
enum class Answer { ok, not_found, unavailable, truncated, corrupted };

inline Answer plan(std::string_view cc, const ServerOptions& o) {
  const std::uint64_t h = mix(code_key(cc) ^ mix(o.seed));
  const double u = static_cast<double>(h >> 11) / 9007199254740992.0;  // [0, 1)
  if (u < o.error_rate) {
    const Answer kinds[] = {Answer::unavailable, Answer::truncated, Answer::corrupted};
    return kinds[(h & 0x3ff) % 3];
  }
  return has_flag(cc) ? Answer::ok : Answer::not_found;
}

/// A small HTTP/1.1 server on 127.0.0.1:<ephemeral port> serving
/// `GET /flags/<cc>/<cc>.gif` (lower-case cc, as the book's URLs). One
/// thread accepts; a spindle::ThreadPoolExecutor runs the connections.
/// Every response closes its connection. `stop()` (or the destructor)
/// wakes every waiting handler, finishes the connections in progress and
/// joins every thread.
class FlagServer {
public:
  /// Binds and starts listening; throws std::system_error on failure.
  explicit FlagServer(ServerOptions options)
      : options_(options), pool_(std::max<std::size_t>(1, options.threads),
                                 {.thread_name_prefix = "flag-server"}) {
    listen_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!listen_.valid()) throw std::system_error(errno, std::generic_category(), "socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = 0;  // ephemeral: the kernel picks a free port
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (::bind(listen_.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0 ||
        ::listen(listen_.get(), 128) != 0 ||
        ::getsockname(listen_.get(), reinterpret_cast<sockaddr*>(&addr), &len) != 0)
      throw std::system_error(errno, std::generic_category(), "bind/listen on 127.0.0.1");
    port_ = ntohs(addr.sin_port);
    // Readable once stop() has been called: every poll() in the server
    // watches it, so nothing sleeps through a shutdown.
    wake_.reset(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (!wake_.valid()) throw std::system_error(errno, std::generic_category(), "eventfd");
    acceptor_ = std::thread([this] { accept_loop(); });
  }

  FlagServer(const FlagServer&) = delete;
  FlagServer& operator=(const FlagServer&) = delete;
  ~FlagServer() { stop(); }

  /// The port it listens on. Thread-safe.
  std::uint16_t port() const noexcept { return port_; }

  /// Counts so far. Thread-safe.
  ServerStats stats() const noexcept {
    return {ok_.load(), not_found_.load(), errors_.load(), bad_.load()};
  }

  /// Stops accepting, wakes handlers waiting (delay, reads), lets them
  /// finish, and joins every thread. Idempotent; call from one thread.
  void stop() {
    if (!acceptor_.joinable()) return;
    stopping_.set();
    const std::uint64_t one = 1;
    [[maybe_unused]] const auto n = ::write(wake_.get(), &one, sizeof one);
    acceptor_.join();
    pool_.shutdown(true);
    listen_.reset();
  }

private:
  void accept_loop() {
    const auto end_of_life = Clock::now() + options_.lifetime;
    for (long accepted = 0; accepted < options_.max_requests;) {
      if (!wait_ready(listen_.get(), POLLIN, end_of_life, wake_.get())) return;
      Fd conn(::accept4(listen_.get(), nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK));
      if (!conn.valid()) {
        // Out of descriptors: the connection stays in the backlog; retry
        // soon rather than spin. Other errors (EAGAIN: the client gave up,
        // EINTR, ECONNABORTED) just mean "poll again".
        if (errno == EMFILE || errno == ENFILE) stopping_.wait(std::chrono::milliseconds(10));
        continue;
      }
      ++accepted;
      const int fd = conn.get();
      try {
        pool_.submit([this, fd] { serve(Fd(fd)); });
        (void)conn.release();  // the task owns it now
      } catch (const std::exception&) {
        // ExecutorShutdown cannot happen (stop() joins us first); on
        // bad_alloc the connection is just closed.
      }
    }
  }

  void serve(Fd conn) noexcept {
    try {
      const auto deadline = Clock::now() + options_.io_timeout;
      std::string request;
      while (request.find("\r\n\r\n") == std::string::npos) {
        if (request.size() > 8192 || recv_some(conn.get(), request, deadline, wake_.get()) <= 0) {
          ++bad_;
          return;
        }
      }
      // "GET /flags/br/br.gif HTTP/1.1"
      const std::string_view line(request.data(), request.find("\r\n"));
      std::string cc;
      if (line.starts_with("GET /flags/") && line.size() == 29 &&
          line.substr(13, 1) == "/" && line.substr(14, 2) == line.substr(11, 2) &&
          line.substr(16) == ".gif HTTP/1.1") {
        for (const char c : line.substr(11, 2))
          cc += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : '?');
      }
      if (options_.delay.count() > 0 && stopping_.wait(options_.delay)) return;
      std::string response;
      if (cc.size() != 2 || cc.find('?') != std::string::npos) {
        ++bad_;
        response = head(400, "Bad Request", 0, "");
      } else {
        switch (plan(cc, options_)) {
          case Answer::ok: {
            ++ok_;
            const std::string img = flag_image(cc);
            response = head(200, "OK", img.size(), checksum(img)) + img;
            break;
          }
          case Answer::not_found:
            ++not_found_;
            response = head(404, "Not Found", 0, "");
            break;
          case Answer::unavailable:
            ++errors_;
            response = head(503, "Service Unavailable", 0, "");
            break;
          case Answer::truncated: {
            // Promise the whole image, send half of it, close.
            ++errors_;
            const std::string img = flag_image(cc);
            response = head(200, "OK", img.size(), checksum(img)) + img.substr(0, img.size() / 2);
            break;
          }
          case Answer::corrupted: {
            // The whole length, the right checksum, one byte flipped.
            ++errors_;
            std::string img = flag_image(cc);
            const std::string sum = checksum(img);
            img[img.size() / 3] = static_cast<char>(img[img.size() / 3] ^ 0x20);
            response = head(200, "OK", img.size(), sum) + img;
            break;
          }
        }
      }
      send_all(conn.get(), response, deadline, wake_.get());
      ::shutdown(conn.get(), SHUT_WR);
    } catch (...) {
      ++bad_;  // poll() failing: nothing to do but close
    }
  }

  static std::string head(int status, const char* reason, std::size_t length,
                          const std::string& sum) {
    std::string h = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                    "\r\nContent-Type: " + (status == 200 ? "image/gif" : "text/plain") +
                    "\r\nContent-Length: " + std::to_string(length) +
                    "\r\nConnection: close\r\n";
    if (!sum.empty()) h += "X-Checksum: " + sum + "\r\n";
    return h + "\r\n";
  }

  ServerOptions options_;
  Fd listen_;
  Fd wake_;
  std::uint16_t port_ = 0;
  spindle::Event stopping_;
  std::atomic<long> ok_{0}, not_found_{0}, errors_{0}, bad_{0};
  // Declared after everything the handlers use, so that it is destroyed
  // (joined) first should stop() be bypassed.
  spindle::ThreadPoolExecutor pool_;
  std::thread acceptor_;
};

}  // namespace flags
