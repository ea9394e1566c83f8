// Graceful stop on Ctrl-C / SIGTERM / SIGHUP (a closed terminal or ssh session; left ignored
// under nohup): the first signal only raises a flag that the sweep
// polls between chunks (so finished work is still written out); a second signal exits at
// once, for when the user really means it. RAII so that tests and library callers get the
// previous handlers back.
#pragma once

#include <array>
#include <atomic>
#include <csignal>

namespace underspec {

class StopSignals {
 public:
  // Installs the SIGINT, SIGTERM and SIGHUP handlers (sigaction) and clears the flag.
  // A second live instance: std::logic_error; sigaction failing: std::system_error.
  StopSignals();
  ~StopSignals();  // restores the handlers that were there before
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // True after the first of those signals; usable as deal_chunks' stop flag.
  const std::atomic<bool>& requested() const;
  // The first signal's number; 0 while none arrived.
  int signal() const;

 private:
  static constexpr std::array<int, 3> kSignals{SIGINT, SIGTERM, SIGHUP};
  std::array<struct sigaction, 3> old_{};
  std::array<bool, 3> installed_{};
};

// While one exists, a second signal does not exit at once: it exits as the last hold ends.
// merge and score hold it for the milliseconds in which they move their outputs into place,
// so that Ctrl-C twice cannot leave a half-moved output directory.
class HoldSecondSignal {
 public:
  HoldSecondSignal();
  ~HoldSecondSignal();  // then exits if a second signal came meanwhile
  HoldSecondSignal(const HoldSecondSignal&) = delete;
  HoldSecondSignal& operator=(const HoldSecondSignal&) = delete;
};

}  // namespace underspec
