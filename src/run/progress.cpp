// Progress lines and the redraw thread (see progress.hpp).
#include "underspec/run/progress.hpp"

#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <ostream>
#include <vector>

#include "underspec/sweep/sweep.hpp"

namespace underspec {

namespace {

constexpr int kBarWidth = 20;

// m:ss below an hour, h:mm:ss above.
std::string format_duration(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return "--:--";
  const double whole = std::floor(seconds);
  if (whole > 1e12) return "--:--";  // absurd estimates (a nearly zero rate)
  const auto s = static_cast<std::uint64_t>(whole);
  char buf[48];
  if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64, s / 60, s % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%" PRIu64 ":%02" PRIu64 ":%02" PRIu64, s / 3600, s / 60 % 60, s % 60);
  }
  return buf;
}

std::string bar_cells(double fraction, int width) {
  const int filled = static_cast<int>(std::lround(fraction * width));
  std::string cells(static_cast<std::size_t>(width), '-');
  cells.replace(0, static_cast<std::size_t>(filled), static_cast<std::size_t>(filled), '#');
  return "[" + cells + "]";
}

struct BarFields {
  std::string bar, short_bar, count, percent, rate, elapsed, eta;
};

// The richest form of the bar line that fits in `columns` - 1 (a line filling the last
// column wraps on many terminals, and every redraw would leave a line behind): fields are
// dropped from the least useful (the rate, the elapsed time, then the bar's width, the bar,
// the word "replicas", the count, the percentage); the ETA stays, cut only by a terminal
// narrower than itself. columns <= 0: no limit.
std::string fit_bar_line(const BarFields& f, int columns) {
  const std::vector<std::string> forms = {
      f.bar + "  " + f.count + " replicas  " + f.percent + "  " + f.rate + "  " + f.elapsed + "  " + f.eta,
      f.bar + "  " + f.count + " replicas  " + f.percent + "  " + f.elapsed + "  " + f.eta,
      f.bar + "  " + f.count + " replicas  " + f.percent + "  " + f.eta,
      f.short_bar + "  " + f.count + " replicas  " + f.percent + "  " + f.eta,
      f.count + " replicas  " + f.percent + "  " + f.eta,
      f.count + "  " + f.percent + "  " + f.eta,
      f.percent + "  " + f.eta,
      f.eta,
  };
  if (columns <= 0) return forms.front();
  const auto room = static_cast<std::size_t>(std::max(columns - 1, 1));
  for (const std::string& form : forms)
    if (form.size() <= room) return form;
  return forms.back().substr(0, room);
}

// The width of the terminal on stderr: TIOCGWINSZ, else $COLUMNS, else 80.
int terminal_columns() {
  winsize ws{};
  if (::ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  if (const char* env = std::getenv("COLUMNS"); env && *env) {
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (*end == '\0' && n > 0 && n < 100000) return static_cast<int>(n);
  }
  return 80;
}

}  // namespace

double replica_work(const ExperimentConfig& config, ModelKind model) {
  constexpr double kPerSampleOverhead = 200;  // in parameters' worth of work (see progress.hpp)
  const DataConfig& d = config.data;
  const double samples = static_cast<double>(d.n_train) * config.train.epochs +
                         static_cast<double>(d.n_test) * static_cast<double>(2 + d.stress_factors.size()) / 3;
  return samples * (param_count(net_shape(config, model)) + kPerSampleOverhead);
}

bool parse_progress_mode(const std::string& text, ProgressMode& mode) {
  if (text == "auto") {
    mode = ProgressMode::automatic;
  } else if (text == "bar") {
    mode = ProgressMode::bar;
  } else if (text == "lines") {
    mode = ProgressMode::lines;
  } else if (text == "none") {
    mode = ProgressMode::none;
  } else {
    return false;
  }
  return true;
}

std::string render_progress(const ProgressSnapshot& p, bool bar, int columns) {
  const double fraction =
      p.total == 0 ? 1.0 : std::min(1.0, static_cast<double>(p.done) / static_cast<double>(p.total));
  const bool timed = p.elapsed_seconds > 0 && std::isfinite(p.elapsed_seconds);

  char rate[32] = "--";
  if (timed) std::snprintf(rate, sizeof rate, "%.2e", static_cast<double>(p.steps_done) / p.elapsed_seconds);

  std::string eta = "--:--";
  const std::uint64_t fresh = p.done > p.already_done ? p.done - p.already_done : 0;
  if (p.done >= p.total) {
    eta = format_duration(0);
  } else if (timed && p.work_total > 0 && p.work_done > 0) {
    eta = format_duration(std::max(p.work_total - p.work_done, 0.0) * p.elapsed_seconds / p.work_done);
  } else if (timed && p.work_total <= 0 && fresh > 0) {
    const double remaining = static_cast<double>(p.total - p.done);
    eta = format_duration(remaining * p.elapsed_seconds / static_cast<double>(fresh));
  }
  const std::string elapsed = format_duration(timed ? p.elapsed_seconds : 0);

  char buf[256];
  if (bar) {
    // Pad `done` to the width of `total` so the line does not jitter as it redraws.
    const int width = std::snprintf(nullptr, 0, "%" PRIu64, p.total);
    char count[64], percent[16];
    std::snprintf(count, sizeof count, "%*" PRIu64 "/%" PRIu64, width, p.done, p.total);
    std::snprintf(percent, sizeof percent, "%.1f%%", 100 * fraction);
    return fit_bar_line({bar_cells(fraction, kBarWidth), bar_cells(fraction, kBarWidth / 2), count, percent,
                         std::string(rate) + " replica-steps/s", "elapsed " + elapsed, "ETA " + eta},
                        columns);
  } else {
    std::snprintf(buf, sizeof buf,
                  "progress: %" PRIu64 "/%" PRIu64 " replicas (%.1f%%), %s replica-steps/s, elapsed %s, ETA %s", p.done,
                  p.total, 100 * fraction, rate, elapsed.c_str(), eta.c_str());
  }
  return buf;
}

ProgressReporter::ProgressReporter(std::uint64_t total, ProgressMode mode, std::ostream& err, bool err_is_terminal,
                                   std::uint64_t already_done, double work_total,
                                   std::chrono::milliseconds bar_interval, std::chrono::milliseconds lines_interval)
    : total_(total),
      already_done_(already_done),
      work_total_(work_total),
      mode_(mode == ProgressMode::automatic ? (err_is_terminal ? ProgressMode::bar : ProgressMode::lines) : mode),
      err_(err),
      interval_(mode_ == ProgressMode::bar ? bar_interval : lines_interval),
      start_(std::chrono::steady_clock::now()),
      done_(already_done) {
  if (mode_ != ProgressMode::none) thread_ = std::thread([this] { loop(); });
}

ProgressReporter::~ProgressReporter() { finish(); }

void ProgressReporter::add(std::uint64_t replicas, std::uint64_t replica_steps, double work) {
  done_.fetch_add(replicas, std::memory_order_relaxed);
  steps_.fetch_add(replica_steps, std::memory_order_relaxed);
  work_done_.fetch_add(work, std::memory_order_relaxed);
}

ProgressSnapshot ProgressReporter::snapshot() const {
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - start_;
  return {done_.load(std::memory_order_relaxed),
          total_,
          steps_.load(std::memory_order_relaxed),
          elapsed.count(),
          already_done_,
          work_done_.load(std::memory_order_relaxed),
          work_total_};
}

void ProgressReporter::draw() {
  const bool bar = mode_ == ProgressMode::bar;
  const std::string line = render_progress(snapshot(), bar, bar ? terminal_columns() : 0);
  if (mode_ == ProgressMode::bar) {
    err_ << '\r' << line << "\x1b[K" << std::flush;
  } else {
    err_ << line << '\n' << std::flush;
  }
}

void ProgressReporter::loop() {
  std::unique_lock lock(mutex_);
  // Lines mode waits a full interval first: a log needs no line before anything happened.
  if (mode_ == ProgressMode::bar) draw();
  while (!wake_.wait_for(lock, interval_, [this] { return stopping_; })) draw();
}

void ProgressReporter::finish() {
  {
    std::lock_guard lock(mutex_);
    if (finished_) return;
    finished_ = true;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (mode_ == ProgressMode::none) return;
  std::lock_guard lock(mutex_);
  draw();
  if (mode_ == ProgressMode::bar) err_ << '\n' << std::flush;
}

}  // namespace underspec
