// SIGINT/SIGTERM/SIGHUP handling (see stop_signals.hpp). The handler touches only lock-free
// atomics, write(2) and _exit(2), all async-signal-safe.
#include "underspec/run/stop_signals.hpp"

#include <unistd.h>

#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>

namespace underspec {

namespace {

std::atomic<bool> g_active{false};  // a StopSignals instance exists
std::atomic<bool> g_requested{false};
std::atomic<int> g_signal{0};
std::atomic<int> g_holds{0};     // live HoldSecondSignal instances
std::atomic<int> g_deferred{0};  // a second signal that came during a hold
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

[[noreturn]] void exit_now(int signo) {
  static constexpr char kMessage[] = "\nunderspec: second signal, exiting now\n";
  [[maybe_unused]] const ssize_t n = ::write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
  ::_exit(128 + signo);
}

extern "C" void on_stop_signal(int signo) {
  // The signal number is stored before the request is raised: a thread that sees the request
  // must also see which signal it was (else it would exit with 128 + 0).
  int none = 0;
  if (!g_signal.compare_exchange_strong(none, signo)) {
    if (g_holds.load() > 0) {
      g_deferred.store(signo);
      return;
    }
    exit_now(signo);
  }
  g_requested.store(true);
}

}  // namespace

StopSignals::StopSignals() {
  if (g_active.exchange(true)) throw std::logic_error("only one StopSignals may exist at a time");
  g_signal.store(0);
  g_requested.store(false);
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;  // the flag is polled; interrupted system calls just resume
  for (std::size_t i = 0; i < kSignals.size(); ++i) {
    struct sigaction* keep = &old_[i];
    if (::sigaction(kSignals[i], nullptr, keep) == 0 && kSignals[i] == SIGHUP && keep->sa_handler == SIG_IGN) {
      installed_[i] = false;  // nohup: a hang-up is to be ignored, not to stop the run
      continue;
    }
    if (::sigaction(kSignals[i], &action, keep) != 0) {
      const int err = errno;
      for (std::size_t j = 0; j < i; ++j)
        if (installed_[j]) ::sigaction(kSignals[j], &old_[j], nullptr);
      g_active.store(false);
      // (not sigabbrev_np: glibc 2.32+, missing on the RHEL 8 / Ubuntu 20.04 of many clusters)
      const char* name = kSignals[i] == SIGINT ? "SIGINT" : kSignals[i] == SIGTERM ? "SIGTERM" : "SIGHUP";
      throw std::system_error(err, std::generic_category(), std::string("sigaction(") + name + ")");
    }
    installed_[i] = true;
  }
}

StopSignals::~StopSignals() {
  for (std::size_t i = kSignals.size(); i-- > 0;)
    if (installed_[i]) ::sigaction(kSignals[i], &old_[i], nullptr);
  g_active.store(false);
}

const std::atomic<bool>& StopSignals::requested() const { return g_requested; }

int StopSignals::signal() const { return g_signal.load(); }

HoldSecondSignal::HoldSecondSignal() { g_holds.fetch_add(1); }

HoldSecondSignal::~HoldSecondSignal() {
  if (g_holds.fetch_sub(1) == 1)
    if (const int signo = g_deferred.exchange(0); signo != 0) exit_now(signo);
}

}  // namespace underspec
