// SPDX-License-Identifier: MIT
// spindle/detail/subprocess_impl.hpp - the long bodies of Popen and run.
#pragma once

#include <spindle/subprocess.hpp>

#include <algorithm>
#include <thread>

namespace spindle::subprocess {

inline Popen::Popen(std::vector<std::string> args, PopenOptions options)
    : s_(std::make_unique<State>()) {
  namespace sp = detail::subproc;
  if (args.empty())
    throw std::invalid_argument("spindle::subprocess::Popen: args is empty (no program to run)");
  for (const std::string& a : args) sp::reject_nul(a, "an argument");
  sp::reject_nul(options.cwd, "cwd");
  if (options.in.kind() == Redirect::Kind::stdout_ || options.out.kind() == Redirect::Kind::stdout_)
    throw std::invalid_argument("spindle::subprocess::Popen: STDOUT is only valid for err");
  if (options.out.kind() == Redirect::Kind::reader || options.err.kind() == Redirect::Kind::reader)
    throw std::invalid_argument(
        "spindle::subprocess::Popen: a PipeReader (another child's output) can only be 'in'");
  if (options.in.kind() == Redirect::Kind::writer)
    throw std::invalid_argument(
        "spindle::subprocess::Popen: a PipeWriter (another child's input) cannot be 'in'");
  if (options.process_group && *options.process_group < 0)
    throw std::invalid_argument("spindle::subprocess::Popen: negative process_group " +
                                std::to_string(*options.process_group));
  const std::string& program = args.front();

  // The environment, and the PATH used to find the program.
  std::vector<std::string> env_strings;
  std::vector<char*> envp;
  char* const* envp_ptr = environ;
  std::string path_value;
  const char* path_env = ::getenv("PATH");
  if (options.env || !options.extra_env.empty()) {
    Environment merged = options.env ? std::move(*options.env) : sp::environment_map();
    for (auto& [name, value] : options.extra_env) merged.insert_or_assign(name, value);
    env_strings.reserve(merged.size());
    for (const auto& [name, value] : merged) {
      if (name.empty() || name.find('=') != std::string::npos)
        throw std::invalid_argument("spindle::subprocess::Popen: invalid environment variable name '" +
                                    name + "'");
      sp::reject_nul(name, "an environment variable name");
      sp::reject_nul(value, "an environment variable value");
      env_strings.push_back(name + "=" + value);
    }
    for (std::string& e : env_strings) envp.push_back(e.data());
    envp.push_back(nullptr);
    envp_ptr = envp.data();
    const auto path = merged.find("PATH");
    path_env = nullptr;
    if (path != merged.end()) {
      path_value = path->second;
      path_env = path_value.c_str();
    }
  }
  const std::vector<std::string> candidates = sp::exec_candidates(program, path_env);
  std::vector<const char*> candidate_ptrs;
  candidate_ptrs.reserve(candidates.size());
  for (const std::string& c : candidates) candidate_ptrs.push_back(c.c_str());
  std::vector<char*> argv;
  argv.reserve(args.size() + 1);
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);

  // The three streams. Child ends are closed when this scope ends (after
  // the spawn); parent ends move into the state.
  sp::SpawnRequest req;
  sp::UniqueFd child_end[3];
  sp::UniqueFd devnull;
  const Redirect* redirects[3] = {&options.in, &options.out, &options.err};
  static constexpr const char* stream_names[3] = {"stdin", "stdout", "stderr"};
  for (int i = 0; i < 3; ++i) {
    const Redirect& r = *redirects[i];
    switch (r.kind()) {
      case Redirect::Kind::inherit:
        break;
      case Redirect::Kind::pipe: {
        sp::UniqueFd read_end, write_end;
        if (const int e = sp::make_pipe(read_end, write_end))
          throw SpawnError(e, program, "creating a pipe");
        if (i == 0) {
          child_end[i] = std::move(read_end);
          s_->in.fd_ = std::move(write_end);
        } else {
          child_end[i] = std::move(write_end);
          (i == 1 ? s_->out : s_->err).fd_ = std::move(read_end);
        }
        req.src[i] = child_end[i].get();
        break;
      }
      case Redirect::Kind::devnull:
        if (!devnull.valid()) {
          devnull.reset(::open("/dev/null", O_RDWR | O_CLOEXEC));
          if (!devnull.valid()) throw SpawnError(errno, program, "opening /dev/null");
        }
        req.src[i] = devnull.get();
        break;
      case Redirect::Kind::fd:
        if (::fcntl(r.fd(), F_GETFD) < 0)
          throw SpawnError(errno, program,
                           std::string("using file descriptor ") + std::to_string(r.fd()) +
                               " as " + stream_names[i]);
        req.src[i] = r.fd();
        break;
      case Redirect::Kind::reader:
      case Redirect::Kind::writer: {
        const int fd = r.reader_ ? r.reader_->fd() : r.writer_->fd();
        if (fd < 0)
          throw std::invalid_argument(std::string("spindle::subprocess::Popen: the pipe end given as ") +
                                      stream_names[i] + " is closed");
        req.src[i] = fd;
        break;
      }
      case Redirect::Kind::stdout_:
        req.err_to_out = true;
        break;
    }
  }

  sp::UniqueFd error_read, error_write;
  if (const int e = sp::make_pipe(error_read, error_write))
    throw SpawnError(e, program, "creating a pipe");
  if (const int e = sp::lift_above_stdio(error_write)) throw SpawnError(e, program, "fcntl");

  req.candidates = candidate_ptrs.data();
  req.candidate_count = candidate_ptrs.size();
  req.argv = argv.data();
  req.envp = envp_ptr;
  req.cwd = options.cwd.empty() ? nullptr : options.cwd.c_str();
  req.error_pipe = error_write.get();
  req.max_fd = sp::fd_limit();
  req.restore_signals = options.restore_signals;
  req.new_session = options.start_new_session;
  req.pgid = options.process_group ? *options.process_group : -1;

  const sp::SpawnOutcome outcome = sp::clone_child(req, error_read, error_write);
  if (outcome.pid < 0) {
    const auto step = static_cast<sp::ChildStep>(outcome.error.step);
    throw SpawnError(outcome.error.error, program, sp::describe_step(step, req.cwd));
  }
  s_->pid = outcome.pid;
  // The child set its group before exec, and we only get here after exec
  // (CLONE_VFORK), so the group exists now.
  if (options.start_new_session || (options.process_group && *options.process_group == 0))
    s_->pgid = outcome.pid;
  else if (options.process_group)
    s_->pgid = *options.process_group;
  s_->args = std::move(args);
  // A pipe end handed to this child is the child's now: close the parent's
  // copy so EOF and SIGPIPE flow between the children as in a shell.
  for (const Redirect* r : redirects) {
    if (r->reader_) r->reader_->close();
    if (r->writer_) r->writer_->close();
  }
}

inline std::optional<int> Popen::wait_until(std::optional<detail::Clock::time_point> deadline) {
  State& s = state();
  auto delay = std::chrono::microseconds(500);
  for (;;) {
    int pidfd = -1;
    {
      std::lock_guard g(s.m);
      s.reap_nohang_locked();
      if (s.returncode) return s.returncode;
      if (s.pidfd < 0 && !s.no_pidfd) {
        // Safe: the child is not reaped (we hold m), so the pid is still ours.
        s.pidfd = detail::subproc::pidfd_open(s.pid);
        if (s.pidfd < 0) s.no_pidfd = true;
      }
      pidfd = s.pidfd;
    }
    if (pidfd >= 0) {
      // The pidfd turns readable when the child exits; it stays open until
      // the Popen is destroyed, so it cannot be recycled under another waiter.
      if (!detail::subproc::wait_readable(pidfd, deadline)) return std::nullopt;
      continue;  // reap under the lock
    }
    // No pidfd (Linux < 5.3): Python's polling fallback.
    const auto now = detail::Clock::now();
    if (deadline && now >= *deadline) return std::nullopt;
    auto nap = std::chrono::duration_cast<detail::Clock::duration>(delay);
    if (deadline) nap = (std::min)(nap, *deadline - now);
    std::this_thread::sleep_for(nap);
    delay = (std::min)(delay * 2, std::chrono::microseconds(50'000));
  }
}

inline Output Popen::communicate_until(std::string_view input,
                                       std::optional<detail::Clock::time_point> deadline,
                                       std::chrono::duration<double> timeout) {
  State& s = state();
  if (!s.comm_started) {
    if (!input.empty() && !s.in.is_open())
      throw std::invalid_argument(
          "spindle::subprocess::Popen::communicate: input given but stdin is not an open PIPE");
    s.comm_started = true;
    // Bytes a readline() read ahead belong to the output.
    s.out_buf = std::exchange(s.out.buffered_, {});
    s.err_buf = std::exchange(s.err.buffered_, {});
  } else {
    input = s.pending_input;  // a retry after a timeout: Python ignores new input
  }
  // Filters (cat, compressors, ciphers) usually write about as much as they
  // read: room for that up front saves the copies of geometric growth. The
  // allocation is virtual until written, and trimmed below if unused.
  constexpr std::size_t hint_min = std::size_t{1} << 20;
  if (s.out.is_open() && input.size() >= hint_min && s.out_buf.capacity() < input.size())
    s.out_buf.reserve(input.size());
  std::size_t off = 0;
  const bool done = detail::subproc::pump(s.in.fd_, input, off, s.out.fd_, s.out_buf,
                                          s.err.fd_, s.err_buf, deadline);
  if (!done) {
    std::string rest = s.in.is_open() ? std::string(input.substr(off)) : std::string();
    s.pending_input = std::move(rest);
    throw TimeoutExpired(s.args, timeout, s.out_buf, s.err_buf);
  }
  s.pending_input.clear();
  if (!wait_until(deadline)) throw TimeoutExpired(s.args, timeout, s.out_buf, s.err_buf);
  if (s.out_buf.capacity() >= hint_min && s.out_buf.capacity() / 2 > s.out_buf.size())
    s.out_buf.shrink_to_fit();
  Output result{std::move(s.out_buf), std::move(s.err_buf)};
  s.out_buf.clear();
  s.err_buf.clear();
  return result;
}

inline void Popen::release() noexcept {
  if (!s_) return;
  State& s = *s_;
  s.in.close();
  s.out.close();
  s.err.close();
  bool running = false;
  {
    std::lock_guard g(s.m);
    s.reap_nohang_locked();
    running = !s.returncode.has_value();
  }
  if (running) {
    detail::subproc::Reaper::instance().adopt(s.pid, std::exchange(s.pidfd, -1));
  }
  s_.reset();
}

inline CompletedProcess run(std::vector<std::string> args, RunOptions options) {
  if (options.input && options.in.kind() != Redirect::Kind::inherit)
    throw std::invalid_argument("spindle::subprocess::run: 'input' and 'in' are mutually exclusive");
  if (options.capture_output && (options.out.kind() != Redirect::Kind::inherit ||
                                 options.err.kind() != Redirect::Kind::inherit))
    throw std::invalid_argument(
        "spindle::subprocess::run: 'capture_output' and 'out'/'err' are mutually exclusive");
  PopenOptions popen_options{.in = options.input ? PIPE : options.in,
                             .out = options.capture_output ? PIPE : options.out,
                             .err = options.capture_output ? PIPE : options.err,
                             .env = std::move(options.env),
                             .cwd = std::move(options.cwd),
                             .extra_env = std::move(options.extra_env),
                             .restore_signals = options.restore_signals,
                             .start_new_session = options.start_new_session,
                             .process_group = options.process_group};
  Popen proc(std::move(args), std::move(popen_options));
  Output output;
  try {
    const std::string_view input = options.input ? std::string_view(*options.input) : std::string_view();
    output = options.timeout ? proc.communicate(input, *options.timeout) : proc.communicate(input);
  } catch (...) {
    // Python's run: kill and reap the child, then re-raise (a timeout's
    // exception already carries the output read so far). Unlike Python, a
    // child leading its own group takes the group with it: killed before
    // the child is reaped, while its pid (= the group id) is surely ours.
    if (proc.process_group() == proc.pid()) {
      try {
        proc.kill_group();
      } catch (const Error&) {
        // EPERM from a member that changed its credentials: still kill the child.
      }
    }
    proc.kill();
    proc.wait();
    throw;
  }
  CompletedProcess result{proc.args(), *proc.returncode(), std::move(output.out),
                          std::move(output.err)};
  if (options.check) result.check_returncode();
  return result;
}

inline std::string check_output(std::vector<std::string> args, RunOptions options) {
  if (options.out.kind() != Redirect::Kind::inherit)
    throw std::invalid_argument(
        "spindle::subprocess::check_output: 'out' is not allowed, it will be overridden");
  if (options.capture_output)
    throw std::invalid_argument(
        "spindle::subprocess::check_output: 'capture_output' is not allowed (stdout is always "
        "captured; set .err = PIPE to capture stderr too)");
  options.out = PIPE;
  options.check = true;
  return run(std::move(args), std::move(options)).out;
}

}  // namespace spindle::subprocess
