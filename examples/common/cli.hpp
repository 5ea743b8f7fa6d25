// SPDX-License-Identifier: MIT
// examples/common/cli.hpp - the examples' small command-line parser: --name
// value / --name=value options, flags, positionals, --help, exit code 2.
//
// Examples only (not part of the library). Usage:
//
//   int main(int argc, char** argv) {
//     return cli::run(argc, argv, "myprog", usage_text, [&](cli::Args& args) {
//       Options o;
//       while (args.next()) {
//         if (args.flag("--quiet")) o.quiet = true;
//         else if (auto v = args.value("--items"))
//           o.items = cli::parse_int(args.name(), *v, 0, 100);
//         else if (auto p = args.positional()) o.names.emplace_back(*p);
//         else args.unknown();
//       }
//       return body(o);  // the program; its return value is the exit code
//     });
//   }
//
// cli::run prints the usage text and returns 0 for --help/-h; prints
// "<prog>: <message>" and a hint and returns 2 for a UsageError (thrown by
// the parsing helpers, or by the program for a bad combination of options);
// prints "<prog>: <what()>" and returns 1 for any other exception.
#pragma once

#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <iostream>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace cli {

/// A command-line mistake: reported with the usage hint, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Thrown by Args::next on --help / -h; cli::run prints the usage text.
struct HelpRequested {};

/// A whole number in [min, max]. Throws: UsageError naming `option`.
inline long parse_int(std::string_view option, std::string_view text, long min, long max) {
  long value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec == std::errc::invalid_argument || end != text.data() + text.size())
    throw UsageError(std::string(option) + " expects a whole number, got '" + std::string(text) +
                     "'");
  if (ec == std::errc::result_out_of_range || value < min || value > max)
    throw UsageError(std::string(option) + " must be between " + std::to_string(min) + " and " +
                     std::to_string(max) + ", got " + std::string(text));
  return value;
}

/// A decimal number in [min, max] (e.g. milliseconds: "2" or "0.5").
/// Throws: UsageError naming `option`.
inline double parse_double(std::string_view option, std::string_view text, double min,
                           double max) {
  const std::string s(text);
  char* end = nullptr;
  const double value = s.empty() ? 0.0 : std::strtod(s.c_str(), &end);
  if (s.empty() || end != s.c_str() + s.size() || !std::isfinite(value))
    throw UsageError(std::string(option) + " expects a number (e.g. 2 or 0.5), got '" + s + "'");
  if (value < min || value > max) {
    char range[96];
    std::snprintf(range, sizeof range, " must be between %g and %g, got ", min, max);
    throw UsageError(std::string(option) + range + s);
  }
  return value;
}

/// `text` split at every `sep` ("a,,b" gives "a", "", "b"; "" gives one "").
inline std::vector<std::string_view> split(std::string_view text, char sep = ',') {
  std::vector<std::string_view> parts;
  for (std::size_t start = 0;;) {
    const auto at = text.find(sep, start);
    parts.push_back(text.substr(start, at - start));
    if (at == std::string_view::npos) return parts;
    start = at + 1;
  }
}

/// A cursor over argv. Each `next()` moves to the next argument; then
/// exactly one of `flag`, `value`, `positional` should match it, or call
/// `unknown()`.
class Args {
public:
  Args(int argc, char** argv) : argc_(argc), argv_(argv) {}

  /// Moves to the next argument; false when there are none left.
  /// Throws: HelpRequested on --help or -h.
  bool next() {
    if (++i_ >= argc_) return false;
    arg_ = argv_[i_];
    if (arg_ == "--help" || arg_ == "-h") throw HelpRequested{};
    name_ = arg_;
    inline_value_.reset();
    if (const auto eq = arg_.find('='); arg_.starts_with("--") && eq != std::string_view::npos) {
      name_ = arg_.substr(0, eq);
      inline_value_ = arg_.substr(eq + 1);
    }
    return true;
  }

  /// The current option's name (without any "=value").
  std::string_view name() const { return name_; }

  /// True if the current argument is the flag `name` (no value).
  /// Throws: UsageError for "--flag=value".
  bool flag(std::string_view name) const {
    if (name_ != name) return false;
    if (inline_value_) throw UsageError(std::string(name) + " takes no value");
    return true;
  }

  /// The value if the current argument is the option `name` ("--name
  /// value" or "--name=value"), else std::nullopt.
  /// Throws: UsageError if the value is missing.
  std::optional<std::string_view> value(std::string_view name) {
    if (name_ != name) return std::nullopt;
    if (inline_value_) return inline_value_;
    if (i_ + 1 >= argc_) throw UsageError(std::string(name) + " needs a value");
    return std::string_view(argv_[++i_]);
  }

  /// The current argument if it is not an option (does not start with '-',
  /// or is "-" itself), else std::nullopt.
  std::optional<std::string_view> positional() const {
    if (arg_.size() > 1 && arg_.front() == '-') return std::nullopt;
    return arg_;
  }

  /// Throws: UsageError "unknown option '...'" (or "unexpected argument").
  [[noreturn]] void unknown() const {
    if (arg_.size() > 1 && arg_.front() == '-')
      throw UsageError("unknown option '" + std::string(arg_) + "'");
    throw UsageError("unexpected argument '" + std::string(arg_) + "'");
  }

private:
  int argc_;
  char** argv_;
  int i_ = 0;
  std::string_view arg_;
  std::string_view name_;
  std::optional<std::string_view> inline_value_;
};

/// Runs `body(args)` and turns the outcome into an exit code (see the file
/// comment): its return value; 0 after printing `usage` for --help; 2 after
/// a UsageError; 1 after any other exception.
template <class Body>
int run(int argc, char** argv, const char* prog, std::string_view usage, Body&& body) {
  Args args(argc, argv);
  try {
    return body(args);
  } catch (const HelpRequested&) {
    std::cout << usage << std::flush;
    return 0;
  } catch (const UsageError& e) {
    std::cout << std::flush;
    std::cerr << prog << ": " << e.what() << "\nTry '" << prog << " --help' for the options.\n";
    return 2;
  } catch (const std::exception& e) {
    std::cout << std::flush;
    std::cerr << prog << ": " << e.what() << '\n';
    return 1;
  }
}

}  // namespace cli
