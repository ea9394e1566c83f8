// Progress display: the exact text of a line for a few snapshots, and the reporter's
// choice of form, its redraws and its silence in `none` mode.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "underspec/run/progress.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace {

using namespace std::chrono_literals;

TEST(ProgressMode, Parses) {
  ProgressMode mode = ProgressMode::none;
  EXPECT_TRUE(parse_progress_mode("auto", mode));
  EXPECT_EQ(mode, ProgressMode::automatic);
  EXPECT_TRUE(parse_progress_mode("bar", mode));
  EXPECT_EQ(mode, ProgressMode::bar);
  EXPECT_TRUE(parse_progress_mode("lines", mode));
  EXPECT_EQ(mode, ProgressMode::lines);
  EXPECT_TRUE(parse_progress_mode("none", mode));
  EXPECT_EQ(mode, ProgressMode::none);
  EXPECT_FALSE(parse_progress_mode("Bar", mode));
  EXPECT_FALSE(parse_progress_mode("", mode));
  EXPECT_EQ(mode, ProgressMode::none);
}

TEST(ProgressRender, Midway) {
  const ProgressSnapshot p{1234, 3000, 6252000, 12.0};
  EXPECT_EQ(render_progress(p, true),
            "[########------------]  1234/3000 replicas  41.1%  5.21e+05 replica-steps/s  elapsed 0:12  ETA 0:17");
  EXPECT_EQ(render_progress(p, false),
            "progress: 1234/3000 replicas (41.1%), 5.21e+05 replica-steps/s, elapsed 0:12, ETA 0:17");
}

TEST(ProgressRender, StartHasNoRateOrEta) {
  const ProgressSnapshot p{0, 3000, 0, 0.0};
  EXPECT_EQ(render_progress(p, true),
            "[--------------------]     0/3000 replicas  0.0%  -- replica-steps/s  elapsed 0:00  ETA --:--");
  EXPECT_EQ(render_progress(p, false), "progress: 0/3000 replicas (0.0%), -- replica-steps/s, elapsed 0:00, ETA --:--");
  // Time has passed but nothing finished: rate is 0, ETA still unknown.
  EXPECT_EQ(render_progress({0, 10, 0, 5.5}, false),
            "progress: 0/10 replicas (0.0%), 0.00e+00 replica-steps/s, elapsed 0:05, ETA --:--");
}

// On a narrow terminal the bar drops its least useful fields so that one line (shorter than
// the width: a full line wraps) is redrawn in place, and the ETA stays visible.
TEST(ProgressRender, BarFitsTheTerminalWidthAndKeepsTheEta) {
  const ProgressSnapshot p{1234, 3000, 6252000, 12.0};
  const std::string full = render_progress(p, true);
  EXPECT_EQ(render_progress(p, true, 0), full);
  EXPECT_EQ(render_progress(p, true, static_cast<int>(full.size()) + 1), full);
  EXPECT_EQ(render_progress(p, true, 80), "[########------------]  1234/3000 replicas  41.1%  elapsed 0:12  ETA 0:17");
  EXPECT_EQ(render_progress(p, true, 60), "[########------------]  1234/3000 replicas  41.1%  ETA 0:17");
  EXPECT_EQ(render_progress(p, true, 50), "[####------]  1234/3000 replicas  41.1%  ETA 0:17");
  EXPECT_EQ(render_progress(p, true, 40), "1234/3000 replicas  41.1%  ETA 0:17");
  EXPECT_EQ(render_progress(p, true, 30), "1234/3000  41.1%  ETA 0:17");
  EXPECT_EQ(render_progress(p, true, 20), "41.1%  ETA 0:17");
  EXPECT_EQ(render_progress(p, true, 10), "ETA 0:17");
  EXPECT_EQ(render_progress(p, true, 5), "ETA ");
  for (int columns = 2; columns <= 140; ++columns) {
    const std::string line = render_progress(p, true, columns);
    EXPECT_LT(line.size(), static_cast<std::size_t>(columns)) << columns << ": " << line;
    if (columns > 9) {
      EXPECT_NE(line.find("ETA 0:17"), std::string::npos) << columns << ": " << line;
    }
  }
  // Lines mode (a log, not a terminal) is never cut.
  EXPECT_EQ(render_progress(p, false, 20), render_progress(p, false));
}

TEST(ProgressRender, DoneAndHours) {
  EXPECT_EQ(render_progress({10, 10, 1000, 3725.9}, true),
            "[####################]  10/10 replicas  100.0%  2.68e-01 replica-steps/s  elapsed 1:02:05  ETA 0:00");
  // 1 of 4 done in 1 h: 3 h to go.
  EXPECT_EQ(render_progress({1, 4, 7, 3600.0}, false),
            "progress: 1/4 replicas (25.0%), 1.94e-03 replica-steps/s, elapsed 1:00:00, ETA 3:00:00");
  EXPECT_EQ(render_progress({0, 0, 0, 0.0}, false),
            "progress: 0/0 replicas (100.0%), -- replica-steps/s, elapsed 0:00, ETA 0:00");
}

TEST(ProgressRender, ResumedReplicasAreNotInTheRate) {
  // 50 of 100 were done before; this process did 10 in 20 s: 40 left at 0.5/s.
  ProgressSnapshot p{60, 100, 2000, 20.0};
  p.already_done = 50;
  EXPECT_EQ(render_progress(p, false),
            "progress: 60/100 replicas (60.0%), 1.00e+02 replica-steps/s, elapsed 0:20, ETA 1:20");
  p.done = 50;  // nothing new yet
  EXPECT_EQ(render_progress(p, false),
            "progress: 50/100 replicas (50.0%), 1.00e+02 replica-steps/s, elapsed 0:20, ETA --:--");
}

// A sweep of 100,000 perceptrons and 3000 MLPs trains the MLPs first (largest first): 120 s
// in, 2900 MLPs done were 3% of the replicas but ~90% of the work, and the ETA by replicas
// said 21 minutes for what took 14 s more. With the work known, the ETA follows the work.
TEST(ProgressRender, EtaFollowsTheWorkNotTheReplicaCount) {
  ProgressSnapshot p{2900, 103000, 290000, 120.0};
  p.work_total = 1000.0;
  p.work_done = 900.0;
  EXPECT_EQ(render_progress(p, false),
            "progress: 2900/103000 replicas (2.8%), 2.42e+03 replica-steps/s, elapsed 2:00, ETA 0:13");
  p.work_done = 0;  // nothing measured yet
  EXPECT_EQ(render_progress(p, false),
            "progress: 2900/103000 replicas (2.8%), 2.42e+03 replica-steps/s, elapsed 2:00, ETA --:--");
}

TEST(ProgressReporter, SnapshotCarriesTheWork) {
  std::ostringstream err;
  ProgressReporter progress(10, ProgressMode::none, err, false, 2, 80.0);
  progress.add(3, 30, 20.0);
  progress.add(1, 10, 4.0);
  const ProgressSnapshot p = progress.snapshot();
  EXPECT_EQ(p.done, 6u);
  EXPECT_EQ(p.work_done, 24.0);
  EXPECT_EQ(p.work_total, 80.0);
}

// The progress ETA weighs replicas by replica_work: the default MLP measured 18x a
// perceptron's time per sample-step on the CPU backend, where replica-steps say 1x.
TEST(ReplicaWork, WeighsTheNetworkAndTheSamples) {
  ExperimentConfig config;
  const double perceptron = replica_work(config, ModelKind::perceptron), mlp = replica_work(config, ModelKind::mlp);
  EXPECT_GT(mlp / perceptron, 10.0);
  EXPECT_LT(mlp / perceptron, 40.0);
  ExperimentConfig longer = config;
  longer.train.epochs *= 2;
  EXPECT_GT(replica_work(longer, ModelKind::perceptron), 1.5 * perceptron);
  ExperimentConfig stressed = config;
  stressed.data.stress_factors = {0.05, 0.02};
  EXPECT_GT(replica_work(stressed, ModelKind::mlp), mlp);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::uint64_t done_of(const std::string& line) { return std::stoull(line.substr(std::string("progress: ").size())); }

TEST(ProgressReporter, AutomaticFollowsTheTerminal) {
  std::ostringstream err;
  EXPECT_EQ(ProgressReporter(1, ProgressMode::automatic, err, true).mode(), ProgressMode::bar);
  EXPECT_EQ(ProgressReporter(1, ProgressMode::automatic, err, false).mode(), ProgressMode::lines);
  EXPECT_EQ(ProgressReporter(1, ProgressMode::lines, err, true).mode(), ProgressMode::lines);
}

TEST(ProgressReporter, LinesIncrease) {
  std::ostringstream err;
  {
    ProgressReporter progress(40, ProgressMode::lines, err, false, 0, 0, 5ms, 10ms);
    for (int i = 0; i < 40; ++i) {
      progress.add(1, 100);
      std::this_thread::sleep_for(2ms);
    }
    progress.finish();
    EXPECT_EQ(progress.snapshot().done, 40u);
  }
  const auto lines = split_lines(err.str());
  ASSERT_GE(lines.size(), 3u) << err.str();
  for (std::size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].rfind("progress: ", 0), 0u) << lines[i];
    if (i > 0) {
      EXPECT_GE(done_of(lines[i]), done_of(lines[i - 1]));
    }
  }
  EXPECT_EQ(lines.back().rfind("progress: 40/40 replicas (100.0%)", 0), 0u) << lines.back();
  EXPECT_NE(lines.back().find("ETA 0:00"), std::string::npos);
  EXPECT_LT(done_of(lines.front()), 40u);  // some lines came before the end
}

TEST(ProgressReporter, ResumeStartsFromAlreadyDone) {
  std::ostringstream err;
  {
    ProgressReporter progress(10, ProgressMode::lines, err, false, 7);
    progress.add(1, 5);
  }  // destructor finishes
  EXPECT_EQ(err.str().rfind("progress: 8/10 replicas (80.0%)", 0), 0u) << err.str();
  EXPECT_EQ(split_lines(err.str()).size(), 1u);
}

TEST(ProgressReporter, NonePrintsNothing) {
  std::ostringstream err;
  {
    ProgressReporter progress(5, ProgressMode::none, err, true, 0, 0, 1ms, 1ms);
    progress.add(5, 50);
    std::this_thread::sleep_for(10ms);
    progress.finish();
  }
  EXPECT_EQ(err.str(), "");
}

TEST(ProgressReporter, BarRedrawsInPlace) {
  std::ostringstream err;
  {
    ProgressReporter progress(3, ProgressMode::bar, err, true, 0, 0, 2ms, 10s);
    for (int i = 0; i < 3; ++i) {
      progress.add(1, 10);
      std::this_thread::sleep_for(10ms);
    }
  }
  const std::string text = err.str();
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.front(), '\r');
  EXPECT_GE(std::count(text.begin(), text.end(), '\r'), 3);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 1);  // only the final one
  const std::string tail = "\r[####################]  3/3 replicas  100.0%";
  const auto last = text.rfind('\r');
  EXPECT_EQ(text.substr(last, tail.size()), tail);
  EXPECT_EQ(text.substr(text.size() - 4), "\x1b[K\n");
}

TEST(ProgressReporter, FinishIsIdempotentAndAddIsThreadSafe) {
  std::ostringstream err;
  ProgressReporter progress(4000, ProgressMode::lines, err, false, 0, 0, 1ms, 1ms);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) progress.add(1, 3);
    });
  }
  for (auto& t : threads) t.join();
  progress.finish();
  const auto after_first = err.str();
  progress.finish();
  EXPECT_EQ(err.str(), after_first);
  EXPECT_EQ(progress.snapshot().done, 4000u);
  EXPECT_EQ(progress.snapshot().steps_done, 12000u);
}

}  // namespace
}  // namespace underspec
