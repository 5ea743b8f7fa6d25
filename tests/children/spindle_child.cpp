// SPDX-License-Identifier: MIT
// tests/children/spindle_child.cpp - tiny child programs the subprocess tests drive.
//
// One binary, one mode per argv[1], each a few lines of plain POSIX so the
// tests depend on no shell and no system tool:
//   cat                   copy stdin to stdout
//   tee2                  copy stdin to both stdout and stderr
//   produce N [both]      write N bytes to stdout (and stderr), never read stdin
//   exit N                exit with status N
//   signal N              kill itself with signal N
//   fds                   print the open descriptors, e.g. "0 1 2"
//   sleep S               sleep S seconds (a decimal)
//   print_sleep TEXT S    write TEXT to stdout, then sleep S seconds
//   wait_eof              read stdin until EOF, print the byte count
//   env NAME              print $NAME, or "<unset>"
//   cwd                   print the working directory
//   args ...              print each further argument on its own line
//   xor KEY               stdin to stdout, each byte XORed with KEY (a cipher stand-in)
//   fnv                   print the 64-bit FNV-1a hash of stdin in hex (a digest stand-in)
//   environ               print every environment entry, one per line
//   yes                   write "y\n" until a write fails; on EPIPE print "Broken pipe"
//                         to stderr and exit 1 (as coreutils yes when SIGPIPE is ignored)
//   grandchild S          fork a grandchild that sleeps S seconds, print its pid, sleep S
//   sigpipe_disposition   print "ignored" or "default" for SIGPIPE's disposition
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

#include <dirent.h>
#include <signal.h>
#include <unistd.h>

extern char** environ;

namespace {

bool write_all(int fd, const char* p, std::size_t n) {
  while (n > 0) {
    const ssize_t w = ::write(fd, p, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += w;
    n -= static_cast<std::size_t>(w);
  }
  return true;
}

bool write_str(int fd, const std::string& s) { return write_all(fd, s.data(), s.size()); }

ssize_t read_some(int fd, char* buf, std::size_t n) {
  for (;;) {
    const ssize_t r = ::read(fd, buf, n);
    if (r >= 0 || errno != EINTR) return r;
  }
}

void sleep_seconds(double s) {
  timespec ts{static_cast<time_t>(s), static_cast<long>((s - static_cast<double>(static_cast<time_t>(s))) * 1e9)};
  while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

char buf[1 << 16];

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  const std::string mode = argv[1];
  if (mode == "cat" || mode == "tee2") {
    for (;;) {
      const ssize_t n = read_some(0, buf, sizeof buf);
      if (n <= 0) return n < 0 ? 1 : 0;
      if (!write_all(1, buf, static_cast<std::size_t>(n))) return 3;
      if (mode == "tee2" && !write_all(2, buf, static_cast<std::size_t>(n))) return 3;
    }
  }
  if (mode == "produce" && argc >= 3) {
    long long left = std::atoll(argv[2]);
    const bool both = argc >= 4 && std::string(argv[3]) == "both";
    for (std::size_t i = 0; i < sizeof buf; ++i) buf[i] = static_cast<char>('a' + i % 26);
    while (left > 0) {
      const std::size_t n = left < static_cast<long long>(sizeof buf) ? static_cast<std::size_t>(left) : sizeof buf;
      if (!write_all(1, buf, n)) return 3;
      if (both && !write_all(2, buf, n)) return 3;
      left -= static_cast<long long>(n);
    }
    return 0;
  }
  if (mode == "exit" && argc >= 3) return std::atoi(argv[2]);
  if (mode == "signal" && argc >= 3) {
    std::signal(std::atoi(argv[2]), SIG_DFL);
    ::raise(std::atoi(argv[2]));
    return 99;
  }
  if (mode == "fds") {
    DIR* d = ::opendir("/proc/self/fd");
    if (d == nullptr) return 4;
    std::string out;
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] == '.') continue;
      const int fd = std::atoi(e->d_name);
      if (fd == ::dirfd(d)) continue;
      out += (out.empty() ? "" : " ") + std::to_string(fd);
    }
    ::closedir(d);
    return write_str(1, out + "\n") ? 0 : 3;
  }
  if (mode == "sleep" && argc >= 3) {
    sleep_seconds(std::atof(argv[2]));
    return 0;
  }
  if (mode == "print_sleep" && argc >= 4) {
    if (!write_str(1, argv[2])) return 3;
    sleep_seconds(std::atof(argv[3]));
    return 0;
  }
  if (mode == "wait_eof") {
    long long total = 0;
    for (;;) {
      const ssize_t n = read_some(0, buf, sizeof buf);
      if (n <= 0) break;
      total += n;
    }
    return write_str(1, std::to_string(total) + "\n") ? 0 : 3;
  }
  if (mode == "env" && argc >= 3) {
    const char* v = std::getenv(argv[2]);
    return write_str(1, std::string(v ? v : "<unset>") + "\n") ? 0 : 3;
  }
  if (mode == "cwd") {
    char path[4096];
    if (::getcwd(path, sizeof path) == nullptr) return 4;
    return write_str(1, std::string(path) + "\n") ? 0 : 3;
  }
  if (mode == "args") {
    for (int i = 2; i < argc; ++i)
      if (!write_str(1, std::string(argv[i]) + "\n")) return 3;
    return 0;
  }
  if (mode == "xor" && argc >= 3) {
    const std::string key = argv[2];
    std::size_t k = 0;
    for (;;) {
      const ssize_t n = read_some(0, buf, sizeof buf);
      if (n <= 0) return n < 0 ? 1 : 0;
      for (ssize_t i = 0; i < n; ++i) buf[i] = static_cast<char>(buf[i] ^ key[k++ % key.size()]);
      if (!write_all(1, buf, static_cast<std::size_t>(n))) return 3;
    }
  }
  if (mode == "fnv") {
    std::uint64_t h = 1469598103934665603ull;
    for (;;) {
      const ssize_t n = read_some(0, buf, sizeof buf);
      if (n < 0) return 1;
      if (n == 0) break;
      for (ssize_t i = 0; i < n; ++i) h = (h ^ static_cast<unsigned char>(buf[i])) * 1099511628211ull;
    }
    char hex[32];
    std::snprintf(hex, sizeof hex, "%016llx\n", static_cast<unsigned long long>(h));
    return write_str(1, hex) ? 0 : 3;
  }
  if (mode == "environ") {
    std::string out;
    for (char** e = environ; e != nullptr && *e != nullptr; ++e) out += std::string(*e) + "\n";
    return write_str(1, out) ? 0 : 3;
  }
  if (mode == "yes") {
    for (;;) {
      if (!write_all(1, "y\n", 2)) {
        if (errno == EPIPE) write_str(2, "yes: Broken pipe\n");
        return 1;
      }
    }
  }
  if (mode == "grandchild" && argc >= 3) {
    const pid_t pid = ::fork();
    if (pid < 0) return 4;
    if (pid == 0) {
      sleep_seconds(std::atof(argv[2]));
      ::_exit(0);
    }
    if (!write_str(1, std::to_string(pid) + "\n")) return 3;
    sleep_seconds(std::atof(argv[2]));
    return 0;
  }
  if (mode == "sigpipe_disposition") {
    struct sigaction sa {};
    if (::sigaction(SIGPIPE, nullptr, &sa) != 0) return 4;
    return write_str(1, sa.sa_handler == SIG_IGN ? "ignored\n" : "default\n") ? 0 : 3;
  }
  return 2;
}
