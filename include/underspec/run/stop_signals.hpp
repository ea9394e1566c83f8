// Graceful stop on Ctrl-C / SIGTERM: the first signal only raises a flag that the sweep
// polls between chunks (so finished work is still written out); a second signal exits at
// once, for when the user really means it. RAII so that tests and library callers get the
// previous handlers back.
#pragma once

#include <atomic>
#include <csignal>

namespace underspec {

class StopSignals {
 public:
  // Installs the SIGINT and SIGTERM handlers (sigaction) and clears the flag.
  // A second live instance: std::logic_error; sigaction failing: std::system_error.
  StopSignals();
  ~StopSignals();  // restores the handlers that were there before
  StopSignals(const StopSignals&) = delete;
  StopSignals& operator=(const StopSignals&) = delete;

  // True after the first SIGINT or SIGTERM; usable as deal_chunks' stop flag.
  const std::atomic<bool>& requested() const;
  // The first signal's number; 0 while none arrived.
  int signal() const;

 private:
  struct sigaction old_int_, old_term_;
};

}  // namespace underspec
