// Live progress for long sweeps on stderr: a redrawn bar on a terminal, or a plain line
// every few seconds when stderr is a log file (a bar's `\r` redraws would flood a log).
// render_progress is pure so the exact text is testable; ProgressReporter owns the timing.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <iosfwd>
#include <mutex>
#include <string>
#include <thread>

#include "underspec/config/config.hpp"

namespace underspec {

// automatic: bar when stderr is a terminal, lines otherwise.
enum class ProgressMode { automatic, bar, lines, none };

// Relative time to train and score one replica, for the ETA (never for a result): the
// samples it processes (training samples x epochs, and the test sets' at a third of a
// training sample: a forward pass only) times (parameters + 200). The 200 is the per-sample
// work that does not grow with the network; on the CPU backend a perceptron sample-step took
// 11 ns, the 3-16-1 MLP's 21, the 3-64-64-1 MLP's 204 and the 3-128-128-1 MLP's 1066:
// against the perceptron's, this formula's ratios are within 30% of those (replica-steps
// alone: up to 95x off).
double replica_work(const ExperimentConfig& config, ModelKind model);

// "auto", "bar", "lines" or "none"; returns false (and leaves `mode` alone) otherwise.
bool parse_progress_mode(const std::string& text, ProgressMode& mode);

struct ProgressSnapshot {
  std::uint64_t done = 0, total = 0;  // replicas; done includes already_done
  std::uint64_t steps_done = 0;       // replica-steps trained by this process
  double elapsed_seconds = 0;         // since this process started the sweep
  // Of `done`, replicas finished before this process started (resume): they are shown
  // but left out of the rate, so the ETA reflects this process's own speed.
  std::uint64_t already_done = 0;
  // Estimated work (replica_work, sweep.hpp) of the replicas this process trains, and of
  // those it finished. When known (total > 0), the ETA comes from it: a sweep's replicas
  // differ in cost (an MLP is ~100 perceptrons) and the costliest are trained first.
  double work_done = 0, work_total = 0;
};

// One line, no newline. bar: `[####----]  1234/3000 replicas  41.1%  5.21e+05
// replica-steps/s  elapsed 0:12  ETA 0:17`; otherwise `progress: 1234/3000 replicas
// (41.1%), 5.21e+05 replica-steps/s, elapsed 0:12, ETA 0:17`. Unknown rate prints `--`,
// unknown ETA `--:--`; times are m:ss or h:mm:ss. The ETA is the remaining work at this
// process's rate: estimated work when the snapshot has it, else replicas. A bar fits in `columns` - 1 characters
// (the rate, the elapsed time, then the bar and the counts are dropped; the ETA stays);
// columns <= 0, or a line that is not a bar: no limit.
std::string render_progress(const ProgressSnapshot& snapshot, bool bar, int columns = 0);

// Counts finished replicas (add() is thread-safe: backends call it from their result
// callbacks) and redraws from a background thread until finish() (or destruction).
class ProgressReporter {
 public:
  ProgressReporter(std::uint64_t total, ProgressMode mode, std::ostream& err, bool err_is_terminal,
                   std::uint64_t already_done = 0, double work_total = 0,
                   std::chrono::milliseconds bar_interval = std::chrono::milliseconds(250),
                   std::chrono::milliseconds lines_interval = std::chrono::seconds(10));
  ~ProgressReporter();
  ProgressReporter(const ProgressReporter&) = delete;
  ProgressReporter& operator=(const ProgressReporter&) = delete;

  void add(std::uint64_t replicas, std::uint64_t replica_steps, double work = 0);
  // Stops the redraw thread and prints the final line (bar mode: ended by a newline so
  // later output starts on a line of its own). Idempotent.
  void finish();

  ProgressMode mode() const { return mode_; }  // resolved: bar, lines or none
  ProgressSnapshot snapshot() const;

 private:
  void loop();
  void draw();

  const std::uint64_t total_, already_done_;
  const double work_total_;
  const ProgressMode mode_;
  std::ostream& err_;
  const std::chrono::milliseconds interval_;
  const std::chrono::steady_clock::time_point start_;
  std::atomic<std::uint64_t> done_, steps_{0};
  std::atomic<double> work_done_{0};

  std::mutex mutex_;  // guards stopping_, finished_ and the stream
  std::condition_variable wake_;
  bool stopping_ = false, finished_ = false;
  std::thread thread_;
};

}  // namespace underspec
