// SPDX-License-Identifier: MIT
// examples/flags/main.cpp - Fluent Python ch. 17 (flags.py, flags_threadpool.py,
// flags2_*): download flag images sequentially, with executor.map and with
// submit + as_completed, from a local HTTP server this program starts.
#include "net.hpp"
#include "server.hpp"

#include "common/cli.hpp"

#include <spindle/executor.hpp>
#include <spindle/future.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <unistd.h>

namespace {

constexpr const char* usage_text = R"(Usage: flags [options] [CC...]

Fluent Python ch. 17: "download" flag images from an HTTP server that this
program starts on 127.0.0.1 (an ephemeral port), three ways:
  sequential    one request after another (flags.py, flags2_sequential.py)
  map           ThreadPoolExecutor.map over the codes (flags_threadpool.py)
  as_completed  submit + as_completed, counting results as they arrive
                (flags2_threadpool.py)
Each image is checked against its Content-Length and X-Checksum. A progress
bar is drawn on a terminal; elsewhere the codes are printed as they finish.
Each run ends with the book's report and a line
"counts: N OK, N not found, N errors", which the server's own counts must
match (exit status 1 otherwise).

Arguments:
  CC                   a country code (BR) or a first letter (B: BA...BZ);
                       default: the 20 most populous countries
Options:
  -a, --all            every code the server has a flag for (ISO 3166-1)
  -e, --every          every possible code (AA...ZZ); most are 404
  -l, --limit N        only the first N codes (sorted)
  -m, --max-req N      concurrent requests of map/as_completed (default 30)
  -v, --verbose        print each result instead of the progress display
  --mode LIST          runs to do: sequential,map,as_completed (default all)
  --delay-ms MS        server waits MS before every response (DELAY server)
  --error-rate R       fraction of codes the server fails, 0..1: HTTP 503,
                       a body cut short, or a corrupted byte (ERROR server)
  --seed N             which codes fail (default 1); fixed per code, so the
                       counts do not depend on timing
  --timeout-ms MS      client timeout per request (default 5000)
  --server-threads N   server connection handlers (default: max-req, 4..256)
  --help               show this help and exit
)";

// The book's POP20_CC.
constexpr std::string_view pop20 = "CN IN US ID BR PK NG BD RU JP MX PH VN ET EG DE IR TR CD FR";

enum Mode { sequential, map_mode, as_completed_mode };
constexpr const char* mode_names[] = {"sequential", "map", "as_completed"};

struct Options {
  std::vector<std::string> codes;
  bool modes[3] = {true, true, true};
  long max_req = 30;
  bool verbose = false;
  long delay_ms = 0;
  double error_rate = 0;
  long seed = 1;
  long timeout_ms = 5000;
  long server_threads = 0;  // 0: derived from max_req
};

std::vector<std::string> split_codes(std::string_view list) {
  std::vector<std::string> out;
  for (std::size_t i = 0; i + 2 <= list.size(); i += 3) out.emplace_back(list.substr(i, 2));
  return out;
}

// flags2_common.expand_cc_args: codes and first letters, upper-cased,
// sorted, de-duplicated, limited.
Options parse_options(cli::Args& args) {
  Options o;
  bool all = false, every = false;
  long limit = -1;
  std::vector<std::string> given;
  while (args.next()) {
    if (args.flag("-a") || args.flag("--all")) {
      all = true;
    } else if (args.flag("-e") || args.flag("--every")) {
      every = true;
    } else if (args.flag("-v") || args.flag("--verbose")) {
      o.verbose = true;
    } else if (auto v = args.value("-l"); v || (v = args.value("--limit"))) {
      limit = cli::parse_int(args.name(), *v, 1, 1000);
    } else if (auto v = args.value("-m"); v || (v = args.value("--max-req"))) {
      o.max_req = cli::parse_int(args.name(), *v, 1, 1000);
    } else if (auto v = args.value("--mode")) {
      for (bool& m : o.modes) m = false;
      for (std::string_view name : cli::split(*v)) {
        const auto it = std::find(std::begin(mode_names), std::end(mode_names), name);
        if (it == std::end(mode_names))
          throw cli::UsageError("--mode: unknown mode '" + std::string(name) +
                                "' (modes: sequential, map, as_completed)");
        o.modes[it - std::begin(mode_names)] = true;
      }
    } else if (auto v = args.value("--delay-ms")) {
      o.delay_ms = cli::parse_int(args.name(), *v, 0, 10000);
    } else if (auto v = args.value("--error-rate")) {
      o.error_rate = cli::parse_double(args.name(), *v, 0, 1);
    } else if (auto v = args.value("--seed")) {
      o.seed = cli::parse_int(args.name(), *v, 0, 1L << 62);
    } else if (auto v = args.value("--timeout-ms")) {
      o.timeout_ms = cli::parse_int(args.name(), *v, 1, 600000);
    } else if (auto v = args.value("--server-threads")) {
      o.server_threads = cli::parse_int(args.name(), *v, 1, 1024);
    } else if (auto p = args.positional()) {
      std::string cc;
      for (const char c : *p) cc += static_cast<char>(c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
      if (cc.empty() || cc.size() > 2 ||
          !std::all_of(cc.begin(), cc.end(), [](char c) { return c >= 'A' && c <= 'Z'; }))
        throw cli::UsageError("'" + std::string(*p) +
                              "' is not a country code (two letters) or a first letter");
      given.push_back(cc);
    } else {
      args.unknown();
    }
  }
  if (every) {
    for (char a = 'A'; a <= 'Z'; ++a)
      for (char b = 'A'; b <= 'Z'; ++b) o.codes.push_back({a, b});
  } else if (all) {
    o.codes = split_codes(flags::iso_codes);
  } else if (given.empty()) {
    o.codes = split_codes(pop20);
  }
  for (const auto& cc : given) {
    if (cc.size() == 2) {
      o.codes.push_back(cc);
    } else {
      for (char b = 'A'; b <= 'Z'; ++b) o.codes.push_back({cc[0], b});
    }
  }
  std::sort(o.codes.begin(), o.codes.end());
  o.codes.erase(std::unique(o.codes.begin(), o.codes.end()), o.codes.end());
  if (limit > 0 && static_cast<std::size_t>(limit) < o.codes.size())
    o.codes.resize(static_cast<std::size_t>(limit));
  if (!std::any_of(std::begin(o.modes), std::end(o.modes), [](bool m) { return m; }))
    throw cli::UsageError("--mode needs at least one mode");
  return o;
}

// ---------------------------------------------------------------------------
// The client: flags2_sequential's get_flag and download_one.

enum class Status { ok, not_found, error };

struct Result {
  Status status;
  std::string cc;
};

struct Site {
  std::uint16_t port;
  std::chrono::milliseconds timeout;
  bool verbose;
};

// GET the image; anything but 200 is an HttpError (raise_for_status), an
// image that fails its checks a ConnectionError.
std::string get_flag(const Site& site, const std::string& cc) {
  const std::string lc = flags::lower(cc);
  flags::Response resp = flags::http_get(site.port, "/flags/" + lc + "/" + lc + ".gif",
                                         site.timeout);
  if (resp.status != 200) throw flags::HttpError(resp.status, resp.reason);
  const auto sum = resp.headers.find("x-checksum");
  if (sum == resp.headers.end() || sum->second != flags::checksum(resp.body))
    throw flags::ConnectionError("checksum mismatch");
  return std::move(resp.body);
}

// 404 is an expected outcome handled here; other errors propagate to the
// caller (download_many), as in the book.
Result download_one(const std::string& cc, const Site& site) {
  Status status;
  const char* msg;
  try {
    const std::string image = get_flag(site, cc);
    // The book saves the image to downloads/; we only needed it verified.
    status = Status::ok;
    msg = "OK";
  } catch (const flags::HttpError& e) {
    if (e.status != 404) throw;
    status = Status::not_found;
    msg = "not found";
  }
  if (site.verbose) std::printf("%s %s\n", cc.c_str(), msg);  // one call: one whole line
  return {status, cc};
}

// ---------------------------------------------------------------------------
// Progress: a redrawn bar on a terminal (the book's tqdm), the codes as they
// finish otherwise (as flags.py prints them), nothing in verbose mode.

class Progress {
public:
  Progress(std::size_t total, bool verbose)
      : total_(total), verbose_(verbose), tty_(::isatty(STDOUT_FILENO) == 1) {}

  void update(const std::string& cc) {
    ++done_;
    if (verbose_) return;
    if (tty_) {
      constexpr std::size_t width = 40;
      const std::size_t filled = total_ == 0 ? width : done_ * width / total_;
      std::printf("\r%3zu%% |%s%s| %zu/%zu %s", total_ == 0 ? 100 : done_ * 100 / total_,
                  std::string(filled, '#').c_str(), std::string(width - filled, ' ').c_str(),
                  done_, total_, cc.c_str());
    } else {
      std::printf("%s%s", cc.c_str(), done_ % 20 == 0 || done_ == total_ ? "\n" : " ");
    }
    std::fflush(stdout);
  }

  void finish() {
    if (!verbose_ && tty_) std::printf("\n");
    if (!verbose_ && !tty_ && done_ % 20 != 0 && done_ != total_) std::printf("\n");
  }

private:
  std::size_t total_;
  std::size_t done_ = 0;
  bool verbose_;
  bool tty_;
};

struct Counts {
  long ok = 0;
  long not_found = 0;
  long error = 0;
  long timeouts = 0;  // errors where the client gave up waiting (not the server's doing)
  bool same_outcomes(const Counts& o) const {
    return ok == o.ok && not_found == o.not_found && error == o.error;
  }
};

// An error message (empty on success), and whether it was a client timeout.
struct Failure {
  std::string msg;
  bool timed_out = false;
};

// What download_many does with each outcome (flags2's Counter logic).
void tally(Counts& counts, Progress& progress, const Site& site, const std::string& cc,
           const std::optional<Result>& res, const Failure& failure) {
  if (!failure.msg.empty()) {
    ++counts.error;
    counts.timeouts += failure.timed_out;
    if (site.verbose) std::printf("*** Error for %s: %s\n", cc.c_str(), failure.msg.c_str());
  } else if (res->status == Status::ok) {
    ++counts.ok;
  } else {
    ++counts.not_found;
  }
  progress.update(cc);
}

// Runs `get()` for one code and turns the book's two exception types into
// an error message (empty on success).
template <class Get>
Failure outcome(Get&& get, std::optional<Result>& res) {
  try {
    res = get();
    return {};
  } catch (const flags::HttpError& e) {
    return {e.what()};
  } catch (const flags::ConnectionError& e) {
    return {std::string("Connection error: ") + e.what(), e.timed_out};
  }
}

// flags2_sequential.download_many
Counts download_many_sequential(const std::vector<std::string>& cc_list, const Site& site) {
  Counts counts;
  Progress progress(cc_list.size(), site.verbose);
  for (const auto& cc : cc_list) {
    std::optional<Result> res;
    const Failure failure = outcome([&] { return download_one(cc, site); }, res);
    tally(counts, progress, site, cc, res, failure);
  }
  progress.finish();
  return counts;
}

// flags_threadpool.download_many: executor.map, results in input order.
// Unlike the book's version (which has no error handling), an exception is
// caught at its position and the iteration goes on.
Counts download_many_map(const std::vector<std::string>& cc_list, const Site& site,
                         std::size_t workers) {
  Counts counts;
  Progress progress(cc_list.size(), site.verbose);
  spindle::ThreadPoolExecutor executor(workers);
  auto results = executor.map([&site](const std::string& cc) { return download_one(cc, site); },
                              cc_list);
  auto cc = cc_list.begin();
  for (auto it = results.begin(); it != results.end(); ++it, ++cc) {
    std::optional<Result> res;
    const Failure failure = outcome([&] { return *it; }, res);
    tally(counts, progress, site, *cc, res, failure);
  }
  progress.finish();
  return counts;
}

// flags2_threadpool.download_many: submit + as_completed. The book's
// to_do_map (future -> cc) is the futures' index in to_do.
Counts download_many_as_completed(const std::vector<std::string>& cc_list, const Site& site,
                                  std::size_t workers) {
  Counts counts;
  Progress progress(cc_list.size(), site.verbose);
  spindle::ThreadPoolExecutor executor(workers);
  std::vector<spindle::Future<Result>> to_do;
  for (const auto& cc : cc_list)
    to_do.push_back(executor.submit([&site](const std::string& c) { return download_one(c, site); },
                                    cc));
  for (auto& future : spindle::as_completed(to_do)) {
    const std::string& cc = cc_list[static_cast<std::size_t>(&future - to_do.data())];
    std::optional<Result> res;
    const Failure failure = outcome([&] { return future.result(); }, res);
    tally(counts, progress, site, cc, res, failure);
  }
  progress.finish();
  return counts;
}

// flags2_common.final_report, then the line the tests check.
void final_report(const Counts& c, double elapsed) {
  std::printf("--------------------\n");
  std::printf("%ld flag%s downloaded.\n", c.ok, c.ok != 1 ? "s" : "");
  if (c.not_found != 0) std::printf("%ld not found.\n", c.not_found);
  if (c.error != 0) std::printf("%ld error%s.\n", c.error, c.error != 1 ? "s" : "");
  std::printf("Elapsed time: %.2fs\n", elapsed);
}

std::string counts_text(const Counts& c) {
  return std::to_string(c.ok) + " OK, " + std::to_string(c.not_found) + " not found, " +
         std::to_string(c.error) + " errors";
}

int flags_main(const Options& o) {
  const std::size_t n = o.codes.size();
  const std::size_t workers = std::min<std::size_t>(static_cast<std::size_t>(o.max_req), n);
  flags::ServerOptions so;
  so.delay = std::chrono::milliseconds(o.delay_ms);
  so.error_rate = o.error_rate;
  so.seed = static_cast<std::uint64_t>(o.seed);
  so.threads = o.server_threads > 0
                   ? static_cast<std::size_t>(o.server_threads)
                   : std::clamp<std::size_t>(static_cast<std::size_t>(o.max_req), 4, 256);
  // Bounded: three runs' requests and a little more, for a generous time.
  so.max_requests = static_cast<long>(3 * n + 16);
  so.lifetime = std::chrono::seconds(60 + 3 * static_cast<long>(n) * (o.delay_ms + 100) / 1000);
  flags::FlagServer server(so);

  const char* label = o.error_rate > 0 ? "ERROR" : o.delay_ms > 0 ? "DELAY" : "LOCAL";
  std::printf("%s site: http://127.0.0.1:%u/flags", label, static_cast<unsigned>(server.port()));
  if (o.delay_ms > 0) std::printf(" (%ld ms delay)", o.delay_ms);
  if (o.error_rate > 0) std::printf(" (error rate %g, seed %ld)", o.error_rate, o.seed);
  std::printf("\nSearching for %zu flag%s: from %s to %s\n", n, n != 1 ? "s" : "",
              o.codes.front().c_str(), o.codes.back().c_str());

  const Site site{server.port(), std::chrono::milliseconds(o.timeout_ms), o.verbose};
  std::optional<Counts> first;
  bool agree = true;
  bool timed_out = false;
  for (int mode : {sequential, map_mode, as_completed_mode}) {
    if (!o.modes[mode]) continue;
    const std::size_t conc = mode == sequential ? 1 : workers;
    std::printf("\n== %s\n%zu concurrent connection%s will be used.\n", mode_names[mode], conc,
                conc != 1 ? "s" : "");
    std::fflush(stdout);
    const flags::ServerStats before = server.stats();
    const auto t0 = std::chrono::steady_clock::now();
    const Counts c = mode == sequential ? download_many_sequential(o.codes, site)
                     : mode == map_mode ? download_many_map(o.codes, site, conc)
                                        : download_many_as_completed(o.codes, site, conc);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const flags::ServerStats after = server.stats();
    final_report(c, elapsed);
    // The client's tally must be what the server says it sent, unless the
    // client gave up on some requests (then the server may still be
    // answering them, or may have answered them after the client left).
    const Counts served{after.ok - before.ok, after.not_found - before.not_found,
                        after.errors - before.errors};
    if (c.timeouts == 0) {
      const bool same = served.same_outcomes(c);
      std::printf("counts: %s; the server %s\n", counts_text(c).c_str(),
                  same ? "counted the same" : ("counted " + counts_text(served)).c_str());
      agree = agree && same && (!first || first->same_outcomes(c));
      if (!first) first = c;
    } else {
      std::printf("counts: %s; %ld client timeouts: not compared with the server's counts\n",
                  counts_text(c).c_str(), c.timeouts);
      timed_out = true;
    }
  }
  server.stop();
  const flags::ServerStats total = server.stats();
  std::printf("\nServer: %ld requests answered (%ld malformed or timed out); %s\n",
              total.ok + total.not_found + total.errors + total.bad, total.bad,
              !agree       ? "THE COUNTS DISAGREE"
              : timed_out  ? "runs with client timeouts were not compared"
                           : "every run got the same counts");
  return agree ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return cli::run(argc, argv, "flags", usage_text,
                  [](cli::Args& args) { return flags_main(parse_options(args)); });
}
