// Running the Python report generator (see report.hpp).
#include "underspec/run/report.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <ostream>
#include <vector>

#include "underspec/outputs/atomic_file.hpp"
#include "underspec/outputs/shell_words.hpp"

extern char** environ;

#ifndef UNDERSPEC_PYTHON_SOURCE_DIR
#define UNDERSPEC_PYTHON_SOURCE_DIR ""
#endif

namespace underspec {
namespace fs = std::filesystem;
namespace {

// python/underspec/report.py: exit status when pandas, matplotlib or numpy is missing.
constexpr int kExitMissingPackage = 3;
constexpr int kExitNotFound = 127;

bool holds_package(const fs::path& dir) {
  std::error_code ec;
  return !dir.empty() && fs::is_regular_file(dir / "underspec" / "report.py", ec);
}

fs::path executable_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

// Runs `argv` with `env` and waits: its exit status, -N when signal N ended it, 127 when it
// cannot be started. With `stop`, the child runs in a process group of its own, so that
// Ctrl-C at the terminal reaches only underspec (a Python interrupted mid-import prints a
// traceback); when `stop` is raised, the child is sent SIGTERM instead.
int spawn_and_wait(const std::vector<std::string>& args, const std::vector<std::string>& env,
                   const std::atomic<bool>* stop) {
  std::vector<char*> argv, envp;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  // underspec ignores SIGPIPE and SIGXFSZ (main.cpp); the child gets the defaults back.
  sigset_t pipe_signal;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  sigaddset(&pipe_signal, SIGXFSZ);
  ::posix_spawnattr_setsigdefault(&attr, &pipe_signal);
  short flags = POSIX_SPAWN_SETSIGDEF;
  if (stop) {
    flags |= POSIX_SPAWN_SETPGROUP;
    ::posix_spawnattr_setpgroup(&attr, 0);
  }
  ::posix_spawnattr_setflags(&attr, flags);
  pid_t pid = 0;
  const int spawned = ::posix_spawnp(&pid, argv[0], nullptr, &attr, argv.data(), envp.data());
  ::posix_spawnattr_destroy(&attr);
  if (spawned != 0) return kExitNotFound;
  int raw = 0;
  for (;;) {  // the stop handler restarts system calls: poll the flag while the child runs
    const pid_t done = ::waitpid(pid, &raw, stop ? WNOHANG : 0);
    if (done == pid) break;
    if (done < 0 && errno != EINTR) return kExitNotFound;
    if (done == 0 && stop->load()) {
      ::kill(pid, SIGTERM);
      stop = nullptr;  // then wait for it to end
    } else if (done == 0) {
      ::usleep(20000);
    }
  }
  return WIFEXITED(raw) ? WEXITSTATUS(raw) : -(WIFSIGNALED(raw) ? WTERMSIG(raw) : 0);
}

// The environment with `path` prepended to PYTHONPATH and the generator told to leave the
// missing-package message to us.
std::vector<std::string> child_environment(const fs::path& path) {
  std::vector<std::string> env;
  std::string pythonpath = path.string();
  for (char** e = environ; e && *e; ++e) {
    const std::string entry = *e;
    if (entry.rfind("PYTHONPATH=", 0) == 0) {
      const std::string old = entry.substr(std::strlen("PYTHONPATH="));
      if (!old.empty()) pythonpath = pythonpath.empty() ? old : pythonpath + ":" + old;
      continue;
    }
    if (entry.rfind("UNDERSPEC_REPORT_QUIET_MISSING=", 0) == 0) continue;
    env.push_back(entry);
  }
  if (!pythonpath.empty()) env.push_back("PYTHONPATH=" + pythonpath);
  env.push_back("UNDERSPEC_REPORT_QUIET_MISSING=1");
  return env;
}

}  // namespace

fs::path report_python_path() {
  const fs::path bin = executable_dir();
  std::vector<fs::path> candidates;
  if (!bin.empty()) {
    candidates.push_back(bin.parent_path() / "share" / "underspec" / "python");
    candidates.push_back(bin.parent_path() / "python");
  }
  candidates.push_back(fs::path(UNDERSPEC_PYTHON_SOURCE_DIR));
  for (const fs::path& c : candidates)
    if (holds_package(c)) return c;
  return {};
}

ReportStatus write_report(const fs::path& dir, bool quiet, const std::atomic<bool>* stop) {
  std::vector<std::string> interpreters;
  if (const char* chosen = std::getenv("UNDERSPEC_PYTHON"); chosen && *chosen) {
    interpreters.push_back(chosen);
  } else {
    interpreters.push_back("python3");
    std::error_code ec;
    if (fs::exists("/usr/bin/python3", ec)) interpreters.push_back("/usr/bin/python3");
  }
  const std::vector<std::string> env = child_environment(report_python_path());
  for (const std::string& python : interpreters) {
    // "--": a directory named like an option (--out -h) is the directory, not an option.
    std::vector<std::string> args{python, "-m", "underspec.report"};
    if (quiet) args.push_back("--quiet");
    args.insert(args.end(), {"--", dir.string()});
    const int status = spawn_and_wait(args, env, stop);
    if (status == 0) return ReportStatus::written;
    // A killed generator says nothing itself, and the likely killer is the kernel's OOM killer:
    // the report reads replicas.csv and stress.csv into pandas (10^6 replicas, 2 stress factors:
    // 0.9 GiB, more than the run itself).
    if (status < 0 && !(stop && stop->load()))
      std::cerr << "underspec: the report generator (" << python << ") was killed by signal " << -status
                << (-status == SIGKILL ? " (out of memory? it reads replicas.csv and stress.csv into memory: 0.9 GiB "
                                         "for 10^6 replicas with 2 stress factors)"
                                       : "")
                << '\n'
                << std::flush;
    if (status != kExitMissingPackage && status != kExitNotFound) return ReportStatus::failed;
  }
  return ReportStatus::unavailable;
}

std::string report_directory_problem(const fs::path& dir) {
  std::error_code ec;
  if (!fs::is_regular_file(dir / "replicas.csv", ec))
    return "report: " + dir.string() + " holds no replicas.csv (not a finished run directory)";
  {  // a header and no row: an empty shard (--shard I/N of a sweep with fewer than N replicas)
    std::ifstream csv(dir / "replicas.csv");
    std::string line;
    if (std::getline(csv, line) && !std::getline(csv, line))
      return "report: " + dir.string() + " holds no replicas (an empty shard?): there is nothing to draw";
  }
  const fs::path plots = dir / "plots";
  if (fs::exists(plots, ec) && !fs::is_directory(plots, ec))
    return "report: " + plots.string() + " is not a directory (the figures are written there)";
  // The generator writes report.html and plots/*.svg: refuse up front what it could only fail
  // to write, with the reason (an access() test passes for root where nothing can be created).
  try {
    probe_file_atomic(dir / "report.html");
    if (fs::is_directory(plots, ec)) probe_file_atomic(plots / "seeds.svg");
  } catch (const OutputError& e) {
    return std::string("report: ") + e.what() + " (report.html and plots/ are written there)";
  }
  return "";
}

std::string report_unavailable_message(const fs::path& dir) {
  return "no report: it needs python3 with pandas and matplotlib (apt-get install python3-matplotlib "
         "python3-pandas), then: underspec report " +
         shell_path(dir.string());
}

void report_after_run(const fs::path& dir, std::ostream& err, const StopSignals* signals) {
  try {
    const ReportStatus status = write_report(dir, true, signals ? &signals->requested() : nullptr);
    if (signals && signals->requested().load()) return;
    switch (status) {
      case ReportStatus::written:
        err << "underspec: report " << (dir / "report.html").string() << '\n';
        break;
      case ReportStatus::unavailable:
        err << "underspec: " << report_unavailable_message(dir) << '\n';
        break;
      case ReportStatus::failed:
        err << "underspec: warning: the report failed (see above); the run's outputs are complete; retry with: "
               "underspec report "
            << shell_path(dir.string()) << '\n';
        break;
    }
  } catch (const std::exception& e) {
    err << "underspec: warning: no report: " << e.what() << '\n';
  }
  err << std::flush;
}

}  // namespace underspec
