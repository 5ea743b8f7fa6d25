// SPDX-License-Identifier: MIT
// examples/subprocess_demo/main.cpp - Effective Python Item 52 ("Use
// subprocess to Manage Child Processes") on spindle::subprocess: run with
// captured output, a poll loop, parallel children, encrypt | hash pipelines
// and a communicate timeout ending in "Exit status -15".
#include <spindle/errors.hpp>
#include <spindle/subprocess.hpp>

#include "common/cli.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

namespace sp = spindle::subprocess;
using Seconds = std::chrono::duration<double>;

constexpr const char* usage_text = R"(Usage: subprocess_demo [options]

Effective Python Item 52 with spindle::subprocess, in five parts:
  echo      run(["echo", "Hello from the child!"], capture_output) and print it
  poll      Popen(["sleep", "1"]) and print "Working..." while poll() is empty
  parallel  ten Popen(["sleep", "0.1"]) at once, communicate() each, print the time
  pipes     three `openssl enc` children fed random bytes, then three
            `openssl enc | openssl dgst -whirlpool -binary` pipelines
            (falls back to aes-256-cbc / sha256 if this openssl lacks
            des3 / whirlpool, and to `gzip | sha256sum` without openssl)
  timeout   Popen(["sleep", "10"]), communicate(timeout=0.1), terminate(),
            wait(), print "Exit status -15"

Options:
  --only LIST          run only these parts (comma-separated names above)
  --skip LIST          skip these parts
  --poll-sleep S       seconds the polled child sleeps (default 1, the book's)
  --work-ms MS         the parent's "time-consuming work" per poll (default 250)
  --children N         children started at once in "parallel" (default 10)
  --parallel-sleep S   seconds each of them sleeps (default 0.1)
  --pipelines N        encrypt children and pipelines in "pipes" (default 3)
  --timeout S          communicate timeout in "timeout" (default 0.1, the book's)
  --no-openssl         use the gzip | sha256sum fallback even if openssl exists
  --help               show this help and exit
)";

constexpr std::array<std::string_view, 5> part_names{"echo", "poll", "parallel", "pipes",
                                                     "timeout"};

struct Options {
  std::array<bool, 5> parts{true, true, true, true, true};
  double poll_sleep = 1.0;
  double work_ms = 250;
  long children = 10;
  double parallel_sleep = 0.1;
  long pipelines = 3;
  double timeout = 0.1;
  bool openssl = true;
};

std::array<bool, 5> parse_parts(std::string_view option, std::string_view list) {
  std::array<bool, 5> chosen{};
  for (std::string_view name : cli::split(list)) {
    const auto it = std::find(part_names.begin(), part_names.end(), name);
    if (it == part_names.end())
      throw cli::UsageError(std::string(option) + ": unknown part '" + std::string(name) +
                            "' (parts: echo, poll, parallel, pipes, timeout)");
    chosen[static_cast<std::size_t>(it - part_names.begin())] = true;
  }
  return chosen;
}

Options parse_options(cli::Args& args) {
  Options o;
  while (args.next()) {
    if (args.flag("--no-openssl")) {
      o.openssl = false;
    } else if (auto v = args.value("--only")) {
      o.parts = parse_parts(args.name(), *v);
    } else if (auto v = args.value("--skip")) {
      const auto skipped = parse_parts(args.name(), *v);
      for (std::size_t i = 0; i < o.parts.size(); ++i) o.parts[i] = o.parts[i] && !skipped[i];
    } else if (auto v = args.value("--poll-sleep")) {
      o.poll_sleep = cli::parse_double(args.name(), *v, 0, 60);
    } else if (auto v = args.value("--work-ms")) {
      o.work_ms = cli::parse_double(args.name(), *v, 0, 60000);
    } else if (auto v = args.value("--children")) {
      o.children = cli::parse_int(args.name(), *v, 1, 1000);
    } else if (auto v = args.value("--parallel-sleep")) {
      o.parallel_sleep = cli::parse_double(args.name(), *v, 0, 60);
    } else if (auto v = args.value("--pipelines")) {
      o.pipelines = cli::parse_int(args.name(), *v, 1, 100);
    } else if (auto v = args.value("--timeout")) {
      o.timeout = cli::parse_double(args.name(), *v, 0, 60);
    } else {
      args.unknown();
    }
  }
  return o;
}

// `sleep` takes decimal seconds; "%g" gives "1", "0.1", "0.05".
std::string seconds_arg(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", s);
  return buf;
}

// Python's repr() of a bytes object: b'\x8c\xed\xc7m1\xf0F4\xe6'.
std::string bytes_repr(std::string_view bytes) {
  const bool has_single = bytes.find('\'') != std::string_view::npos;
  const bool has_double = bytes.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  std::string out = "b";
  out += quote;
  for (const char ch : bytes) {
    const auto c = static_cast<unsigned char>(ch);
    if (c == '\\' || c == static_cast<unsigned char>(quote)) {
      out += '\\';
      out += ch;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (c < 0x20 || c >= 0x7f) {
      char hex[5];
      std::snprintf(hex, sizeof hex, "\\x%02x", c);
      out += hex;
    } else {
      out += ch;
    }
  }
  out += quote;
  return out;
}

std::string last_bytes(const std::string& s, std::size_t n) {
  return s.size() <= n ? s : s.substr(s.size() - n);
}

// Python's os.urandom(n), from the kernel's generator via std::random_device.
std::string urandom(std::size_t n) {
  static std::random_device rd;
  std::string out(n, '\0');
  for (auto& c : out) c = static_cast<char>(rd() & 0xff);
  return out;
}

double since(std::chrono::steady_clock::time_point t0) {
  return Seconds(std::chrono::steady_clock::now() - t0).count();
}

void heading(const char* text) {
  std::printf("\n== %s\n", text);
  std::fflush(stdout);
}

// ---------------------------------------------------------------------------
// Part 1: result = subprocess.run(['echo', ...], capture_output=True)

void part_echo() {
  heading("run([\"echo\", \"Hello from the child!\"], {.capture_output = true})");
  const sp::CompletedProcess result =
      sp::run({"echo", "Hello from the child!"}, {.capture_output = true});
  result.check_returncode();  // no exception means clean exit
  std::printf("%s", result.out.c_str());
}

// ---------------------------------------------------------------------------
// Part 2: while proc.poll() is None: print('Working...')

void part_poll(const Options& o) {
  const std::string s = seconds_arg(o.poll_sleep);
  std::printf("\n== Popen([\"sleep\", \"%s\"]), polled while the parent works %g ms at a time\n",
              s.c_str(), o.work_ms);
  sp::Popen proc({"sleep", s});
  while (!proc.poll()) {
    std::printf("Working...\n");
    std::fflush(stdout);
    // Some time-consuming work here (blocking, as the book's elided code).
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(o.work_ms));
  }
  std::printf("Exit status %d\n", *proc.poll());
}

// ---------------------------------------------------------------------------
// Part 3: ten children started together, then communicate() with each.

void part_parallel(const Options& o) {
  const std::string s = seconds_arg(o.parallel_sleep);
  std::printf("\n== %ld x Popen([\"sleep\", \"%s\"]) started together, then communicate()\n",
              o.children, s.c_str());
  const auto start = std::chrono::steady_clock::now();
  std::vector<sp::Popen> sleep_procs;
  for (long i = 0; i < o.children; ++i)
    sleep_procs.emplace_back(std::vector<std::string>{"sleep", s});
  int failures = 0;
  for (auto& proc : sleep_procs) {
    proc.communicate();
    failures += *proc.returncode() != 0;
  }
  const double delta = since(start);
  std::printf("Finished in %.3g seconds\n", delta);
  std::printf("(in sequence they would take %.3g seconds or more)\n",
              static_cast<double>(o.children) * o.parallel_sleep);
  if (failures != 0) throw std::runtime_error(std::to_string(failures) + " sleep children failed");
}

// ---------------------------------------------------------------------------
// Part 4: openssl enc children and enc | dgst pipelines.

// The commands this machine can run for the book's `openssl enc -des3` and
// `openssl dgst -whirlpool -binary`, found by trying them.
struct Tools {
  std::vector<std::string> encrypt;
  std::vector<std::string> decrypt;  // to check the encrypt children (empty: no check)
  std::vector<std::string> hash;
  std::size_t digest_size = 0;  // bytes of binary digest expected (0: text output)
  std::string note;
};

// Does `args` start, read `input` and exit 0 with some output?
bool works(const std::vector<std::string>& args, const sp::Environment& env) {
  try {
    const auto r = sp::run(args, {.capture_output = true,
                                  .input = std::string("probe"),
                                  .timeout = Seconds(10),
                                  .extra_env = env});
    return r.returncode == 0 && !r.out.empty();
  } catch (const sp::SpawnError&) {
    return false;
  }
}

constexpr const char* password = "zf7ShyBhZ0raQDdE/FiZpm/m/8f9X+M1";  // the book's

Tools find_tools(bool allow_openssl) {
  const sp::Environment env{{"password", password}};
  Tools t;
  if (allow_openssl && works({"openssl", "version"}, {})) {
    // -pbkdf2: OpenSSL 3 warns about the book's default key derivation.
    for (const char* cipher : {"-des3", "-aes-256-cbc"}) {
      std::vector<std::string> enc{"openssl", "enc", cipher, "-pbkdf2", "-pass", "env:password"};
      if (works(enc, env)) {
        t.encrypt = enc;
        t.decrypt = enc;
        t.decrypt.insert(t.decrypt.begin() + 2, "-d");
        if (cipher != std::string_view("-des3"))
          t.note += "this openssl has no des3: using aes-256-cbc. ";
        break;
      }
    }
    const std::vector<std::vector<std::string>> hashes{
        {"openssl", "dgst", "-whirlpool", "-binary"},
        // OpenSSL 3 moved Whirlpool to the legacy provider.
        {"openssl", "dgst", "-provider", "legacy", "-provider", "default", "-whirlpool", "-binary"},
        {"openssl", "dgst", "-sha256", "-binary"}};
    for (std::size_t i = 0; i < hashes.size(); ++i) {
      if (works(hashes[i], {})) {
        t.hash = hashes[i];
        t.digest_size = i < 2 ? 64 : 32;
        if (i == 1) t.note += "whirlpool needs OpenSSL 3's legacy provider here. ";
        if (i == 2) t.note += "this openssl has no whirlpool: using sha256. ";
        break;
      }
    }
  }
  if (t.encrypt.empty() || t.hash.empty()) {
    t = Tools{};
    t.encrypt = {"gzip", "-c"};
    t.decrypt = {"gzip", "-dc"};
    t.hash = {"sha256sum"};
    t.note = allow_openssl ? "no usable openssl: using gzip | sha256sum instead. "
                           : "--no-openssl: using gzip | sha256sum instead. ";
  }
  return t;
}

std::string join(const std::vector<std::string>& args) {
  std::string out;
  for (const auto& a : args) out += (out.empty() ? "" : " ") + a;
  return out;
}

// The book's run_encrypt: a child with the password in its environment,
// fed `data` (stdin stays open until communicate()).
sp::Popen run_encrypt(const Tools& t, const std::string& data) {
  sp::Popen proc(t.encrypt,
                 {.in = sp::PIPE, .out = sp::PIPE, .extra_env = {{"password", password}}});
  proc.in().write(data);
  proc.in().flush();  // ensure that the child gets input
  return proc;
}

// The book's run_hash: reads another child's stdout. Passing the pipe end
// takes it over, so the parent's copy is closed (the book's
// `encrypt_proc.stdout.close()`).
sp::Popen run_hash(const Tools& t, sp::PipeReader& input_stdin) {
  return sp::Popen(t.hash, {.in = input_stdin, .out = sp::PIPE});
}

void part_pipes(const Options& o) {
  const Tools t = find_tools(o.openssl);
  std::printf("\n== %ld x `%s` fed 10 random bytes each; last 10 bytes of each output\n",
              o.pipelines, join(t.encrypt).c_str());
  if (!t.note.empty()) std::printf("(%s)\n", t.note.substr(0, t.note.size() - 1).c_str());
  std::vector<sp::Popen> procs;
  std::vector<std::string> inputs;
  for (long i = 0; i < o.pipelines; ++i) {
    inputs.push_back(urandom(10));
    procs.push_back(run_encrypt(t, inputs.back()));
  }
  long round_trips = 0;
  for (std::size_t i = 0; i < procs.size(); ++i) {
    auto [out, err] = procs[i].communicate();
    if (procs[i].returncode() != 0)
      throw spindle::subprocess::CalledProcessError(*procs[i].returncode(), procs[i].args(), out,
                                                    err);
    std::printf("%s\n", bytes_repr(last_bytes(out, 10)).c_str());
    // Not in the book: decrypting gives the input back, so the bytes
    // really went through the pipes intact.
    const auto back = sp::run(t.decrypt, {.capture_output = true,
                                          .input = out,
                                          .check = true,
                                          .extra_env = {{"password", password}}});
    round_trips += back.out == inputs[i];
  }
  std::printf("%ld of %ld decrypt back to their input\n", round_trips, o.pipelines);

  std::printf("\n== %ld pipelines `%s | %s` fed 100 random bytes each; last 10 bytes of each "
              "digest\n",
              o.pipelines, join(t.encrypt).c_str(), join(t.hash).c_str());
  std::vector<sp::Popen> encrypt_procs;
  std::vector<sp::Popen> hash_procs;
  for (long i = 0; i < o.pipelines; ++i) {
    encrypt_procs.push_back(run_encrypt(t, urandom(100)));
    hash_procs.push_back(run_hash(t, encrypt_procs.back().out()));
  }
  for (auto& proc : encrypt_procs) {
    proc.communicate();
    if (proc.returncode() != 0) throw std::runtime_error(join(proc.args()) + " failed");
  }
  long good = 0;
  for (auto& proc : hash_procs) {
    auto [out, err] = proc.communicate();
    if (proc.returncode() != 0)
      throw sp::CalledProcessError(*proc.returncode(), proc.args(), out, err);
    std::printf("%s\n", bytes_repr(last_bytes(out, 10)).c_str());
    // sha256sum prints 64 hex digits and "  -\n"; openssl -binary the raw digest.
    good += t.digest_size != 0 ? out.size() == t.digest_size : out.size() == 68;
  }
  std::printf("%ld of %ld digests have the expected size\n", good, o.pipelines);
  if (round_trips != o.pipelines || good != o.pipelines)
    throw std::runtime_error("a pipeline lost or changed data");
}

// ---------------------------------------------------------------------------
// Part 5: communicate(timeout=0.1) on a child that would sleep 10 s.

void part_timeout(const Options& o) {
  std::printf("\n== Popen([\"sleep\", \"10\"]), communicate(timeout=%g), terminate(), wait()\n",
              o.timeout);
  const auto start = std::chrono::steady_clock::now();
  sp::Popen proc({"sleep", "10"});
  try {
    proc.communicate(Seconds(o.timeout));
  } catch (const sp::TimeoutExpired& e) {
    std::printf("TimeoutExpired: %s\n", e.what());
    proc.terminate();
    proc.wait();
  }
  std::printf("Exit status %d\n", *proc.poll());
  std::printf("(after %.2f seconds)\n", since(start));
}

int demo(const Options& o) {
  std::printf("Effective Python Item 52: spindle::subprocess\n");
  if (o.parts[0]) part_echo();
  if (o.parts[1]) part_poll(o);
  if (o.parts[2]) part_parallel(o);
  if (o.parts[3]) part_pipes(o);
  if (o.parts[4]) part_timeout(o);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "subprocess_demo", usage_text,
                  [](cli::Args& args) { return demo(parse_options(args)); });
}
