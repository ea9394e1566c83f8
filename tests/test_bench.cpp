// `underspec bench`: the FLOP model against a hand count, the cases, the report, and the
// command as users call it (CPU quick mode, bad arguments, --device cuda without a GPU).
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/stat.h>

#include <chrono>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "cli_fixture.hpp"
#include "underspec/backends/backend.hpp"
#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/benchmark/benchmark.hpp"
#include "underspec/benchmark/cpu_fma_probe.hpp"
#include "underspec/benchmark/flop_model.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace {

namespace bm = benchmark;

NetShape shape_of(std::initializer_list<int> widths) {
  NetShape s;
  s.n_layers = static_cast<int>(widths.size()) - 1;
  int k = 0;
  for (int w : widths) s.width[k++] = w;
  return s;
}

TEST(BenchFlopModel, MatchesAHandCount) {
  // 2-3-1. Layer 1 (2x3): forward 2*6, weight grads 2*6, no input grads, bias grads 3 = 27.
  // Layer 2 (3x1): forward 2*3, weight grads 2*3, input grads 2*3, bias grads 1 = 19.
  EXPECT_DOUBLE_EQ(bm::train_flop_per_sample_step(shape_of({2, 3, 1})), 46.0);
  EXPECT_DOUBLE_EQ(bm::forward_flop_per_sample(shape_of({2, 3, 1})), 18.0);
  // The seed experiment's networks: perceptron 2*3 + 2*3 + 1; 3-64-64-1 as documented.
  ExperimentConfig config;
  EXPECT_DOUBLE_EQ(bm::train_flop_per_sample_step(net_shape(config, ModelKind::perceptron)), 13.0);
  EXPECT_DOUBLE_EQ(bm::train_flop_per_sample_step(net_shape(config, ModelKind::mlp)), 25857.0);
  EXPECT_DOUBLE_EQ(bm::forward_flop_per_sample(net_shape(config, ModelKind::mlp)), 2.0 * (3 * 64 + 64 * 64 + 64));
}

TEST(BenchCases, CoverBothModelsAndQuickIsSmaller) {
  for (const bool cuda : {false, true}) {
    const auto full = cuda ? bm::cuda_cases(false) : bm::cpu_cases(false);
    const auto quick = cuda ? bm::cuda_cases(true) : bm::cpu_cases(true);
    double full_work = 0, quick_work = 0;
    std::set<ModelKind> models;
    for (const auto& c : full) {
      full_work += static_cast<double>(c.replicas) * c.epochs * static_cast<double>(c.n_train);
      models.insert(c.model);
    }
    for (const auto& c : quick) {
      quick_work += static_cast<double>(c.replicas) * c.epochs * static_cast<double>(c.n_train);
      EXPECT_NO_THROW(bm::case_config(c));
    }
    EXPECT_EQ(models.size(), 2u);
    EXPECT_LT(quick_work * 10, full_work) << (cuda ? "cuda" : "cpu");
  }
  // The scaling curves the command promises.
  std::vector<int> perceptrons;
  for (const auto& c : bm::cuda_cases(false))
    if (c.model == ModelKind::perceptron) perceptrons.push_back(c.replicas);
  EXPECT_EQ(perceptrons, (std::vector<int>{100, 1000, 10000, 100000}));
  const ExperimentConfig config = bm::case_config({ModelKind::mlp, 7, 2, 300});
  EXPECT_EQ(make_sweep(config).replicas.size(), 7u);
  EXPECT_EQ(config.data.n_train, 300);
  EXPECT_EQ(config.train.epochs, 2);
  EXPECT_THROW(bm::case_config({ModelKind::mlp, 0, 2, 300}), std::invalid_argument);
}

TEST(BenchCpu, ProbeAndTimingGiveConsistentRates) {
  const bm::FmaPeak peak = bm::measure_fma_peak(1, 0.02);
  EXPECT_GT(peak.gflops, 0.0);
  EXPECT_FALSE(peak.isa.empty());
  const auto backend = make_cpu_backend(1);
  const ExperimentConfig config = bm::case_config({ModelKind::perceptron, 3, 2, 100});
  const bm::BenchRow row = bm::time_cpu_sweep(*backend, config, "perceptron", 3, 10.0);
  ASSERT_EQ(row.run_ms.size(), 3u);
  EXPECT_EQ(row.replicas, 3);
  EXPECT_GT(row.wall_ms, 0.0);
  // 3 replicas x 2 epochs x 100 samples; 13 FLOP each, plus 2 test sets x 100 samples x 6 FLOP.
  const double seconds = row.wall_ms * 1e-3;
  EXPECT_NEAR(row.sample_steps_per_s * seconds, 600.0, 1e-6);
  EXPECT_NEAR(row.gflops * 1e9 * seconds, 600.0 * 13 + 3 * 2 * 100 * 6, 1e-6);
  EXPECT_NEAR(row.peak_fraction, row.gflops / 10.0, 1e-12);
}

TEST(BenchCpu, ProbeCalibrationIsNotStoppedByOneSlowRun) {
  // A run of n iterations takes n ns of FMAs, but the first one also waits 50 ms (the thread
  // pool's start, a busy core): the calibrated runs must still hold the target's FMA work.
  int calls = 0;
  const auto time_run = [&](std::int64_t n) { return (calls++ == 0 ? 0.05 : 0.0) + 1e-9 * static_cast<double>(n); };
  const double work = 1e-9 * static_cast<double>(bm::calibrate_iterations(time_run, 0.015));
  EXPECT_GE(work, 0.015);
  EXPECT_LT(work, 0.030);  // the first count past the target
}

TEST(BenchDevice, HardwareThreadsAreTheCpusThisProcessMayUse) {
  // `taskset -c 0 underspec bench --threads 2`: the peak is one CPU's, not the machine's two.
  cpu_set_t all;
  ASSERT_EQ(sched_getaffinity(0, sizeof all, &all), 0);
  if (CPU_COUNT(&all) < 2) GTEST_SKIP() << "one usable CPU";
  int first = 0;
  while (!CPU_ISSET(first, &all)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  ASSERT_EQ(sched_setaffinity(0, sizeof one, &one), 0);
  const bm::DeviceInfo pinned = bm::cpu_device_info(2);
  ASSERT_EQ(sched_setaffinity(0, sizeof all, &all), 0);
  EXPECT_EQ(pinned.hardware_threads, 1);
  EXPECT_EQ(bm::cpu_device_info(2).hardware_threads, CPU_COUNT(&all));
}

TEST(BenchReport, TableAndJsonCarryTheSameRows) {
  bm::BenchReport report;
  report.device = bm::cpu_device_info(2);
  report.peak.gflops = 100;
  report.peak.method = "probe";
  report.rows.push_back({"mlp", "cpu", 10, 2, 1000, {4.0, 2.0, 3.0}, 3.0, 1e6, 50.0, 0.5});
  report.notes.push_back("a note");
  const std::string table = bm::format_report(report);
  EXPECT_NE(table.find("mlp"), std::string::npos) << table;
  EXPECT_NE(table.find("50.0%"), std::string::npos) << table;
  EXPECT_NE(table.find("note: a note"), std::string::npos) << table;
  const nlohmann::json j = bm::to_json(report);
  EXPECT_EQ(j.at("device").at("kind"), "cpu");
  EXPECT_EQ(j.at("device").at("threads"), 2);
  EXPECT_EQ(j.at("rows").at(0).at("run_ms"), nlohmann::json({4.0, 2.0, 3.0}));
  EXPECT_EQ(j.at("rows").at(0).at("gflops"), 50.0);
  EXPECT_EQ(bm::median({4.0, 2.0, 3.0}), 3.0);
  EXPECT_EQ(bm::median({4.0, 2.0}), 3.0);
}

TEST_F(Cli, BenchCpuQuickWritesTableAndJson) {
  const auto start = std::chrono::steady_clock::now();
  const CliResult r = run("bench --device cpu --quick --json bench.json");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_LT(seconds, 30.0);                                          // a few seconds on an idle 2-core machine
  EXPECT_EQ(cwd_entries(), std::vector<std::string>{"bench.json"});  // no temporary left behind
  EXPECT_NE(r.out.find("r-sample-steps/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("% peak"), std::string::npos) << r.out;

  const nlohmann::json j = nlohmann::json::parse(read(cwd() / "bench.json"));
  EXPECT_EQ(j.at("device").at("kind"), "cpu");
  EXPECT_FALSE(j.at("device").at("name").get<std::string>().empty());
  EXPECT_GE(j.at("device").at("threads").get<int>(), 1);
  EXPECT_GT(j.at("peak").at("gflops").get<double>(), 0.0);
  EXPECT_TRUE(j.at("quick").get<bool>());
  EXPECT_FALSE(j.at("version").get<std::string>().empty());
  EXPECT_EQ(j.at("started_utc").get<std::string>().size(), 20u);  // 2026-11-30T13:00:00Z
  // The machine's load at the start and the end, in the file and the table (from /proc/loadavg).
  for (const char* when : {"before", "after"}) {
    const nlohmann::json load = j.at("load_average").at(when);
    ASSERT_EQ(load.size(), 3u) << load;
    for (const auto& v : load) EXPECT_GE(v.get<double>(), 0.0);
  }
  EXPECT_NE(r.out.find("\nload:   "), std::string::npos) << r.out;
  std::set<std::string> models;
  for (const auto& row : j.at("rows")) {
    models.insert(row.at("model").get<std::string>());
    EXPECT_EQ(row.at("variant"), "cpu");
    EXPECT_GT(row.at("replicas").get<int>(), 0);
    EXPECT_GT(row.at("wall_ms").get<double>(), 0.0);
    EXPECT_GT(row.at("replica_sample_steps_per_s").get<double>(), 0.0);
    EXPECT_GT(row.at("gflops").get<double>(), 0.0);
    EXPECT_GT(row.at("peak_fraction").get<double>(), 0.0);
    // gflops is the row's FLOPs over its median time, recomputable from the file
    EXPECT_NEAR(row.at("gflops").get<double>(),
                row.at("flop").get<double>() / (row.at("wall_ms").get<double>() * 1e-3) * 1e-9,
                1e-9 * row.at("gflops").get<double>());
    EXPECT_GT(row.at("replica_sample_steps").get<double>(), 0.0);
    EXPECT_NE(r.out.find(row.at("model").get<std::string>()), std::string::npos);
  }
  EXPECT_EQ(models, (std::set<std::string>{"mlp", "perceptron"}));
  // The CPU kernel level and how it was chosen, as `underspec --version` and summary.json say.
  const std::string kernels = cpu_kernels_description();
  EXPECT_EQ(j.at("device").at("cpu_kernels"), kernels);
  EXPECT_NE(r.out.find("\nkernels: " + kernels + "\n"), std::string::npos) << r.out;

  // A forced level is named with its source; the peak stays the widest unit's, which a note says.
  const CliResult forced = run("bench --device cpu --quick --json forced.json", "UNDERSPEC_CPU_KERNELS=portable");
  ASSERT_EQ(forced.status, 0) << forced.err;
  const nlohmann::json f = nlohmann::json::parse(read(cwd() / "forced.json"));
  EXPECT_EQ(f.at("device").at("cpu_kernels"), "portable (UNDERSPEC_CPU_KERNELS=portable)");
  EXPECT_NE(forced.out.find("\nkernels: portable (UNDERSPEC_CPU_KERNELS=portable)\n"), std::string::npos) << forced.out;
  if (supported_cpu_isas().front() != CpuIsa::portable) {
    ASSERT_EQ(f.at("notes").size(), 1u) << f.at("notes");
    EXPECT_NE(f.at("notes")[0].get<std::string>().find("not the widest"), std::string::npos) << f.at("notes");
  }
}

// More threads than the hardware has add no FMA units: the peak is at most the one-thread
// rate times the hardware threads (or the all-thread measurement, if higher).
TEST_F(Cli, BenchPeakDoesNotCountThreadsBeyondTheHardware) {
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  const CliResult r = run("bench --device cpu --quick --threads " + std::to_string(4 * hardware) + " --json b.json");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json peak = nlohmann::json::parse(read(cwd() / "b.json")).at("peak");
  const double bound =
      std::max(peak.at("gflops_measured").get<double>(), hardware * peak.at("gflops_one_thread").get<double>());
  EXPECT_LE(peak.at("gflops").get<double>(), bound * (1 + 1e-12)) << peak.dump();
}

// --json names where the JSON goes: a symbolic link stays a link (its target gets the JSON),
// "-" and /dev/stdout are standard output (the table then goes to standard error), and
// /dev/stdout itself is never replaced by a file (as root, a rename onto it would be).
TEST_F(Cli, BenchJsonGoesWhereThePathLeads) {
  write("real.json", "{}");
  std::filesystem::create_symlink("real.json", cwd() / "link.json");
  CliResult r = run("bench --device cpu --quick --json link.json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::filesystem::is_symlink(cwd() / "link.json"));
  EXPECT_EQ(nlohmann::json::parse(read(cwd() / "real.json")).at("device").at("kind"), "cpu");
  EXPECT_NE(r.out.find("% peak"), std::string::npos) << r.out;
  for (const std::string path : {"-", "/dev/stdout"}) {
    r = run("bench --device cpu --quick --json " + path);
    ASSERT_EQ(r.status, 0) << path << r.err;
    EXPECT_EQ(nlohmann::json::parse(r.out).at("device").at("kind"), "cpu") << path;
    EXPECT_NE(r.err.find("% peak"), std::string::npos) << path << r.err;  // the table
  }
  EXPECT_TRUE(std::filesystem::is_symlink("/dev/stdout"));
  EXPECT_EQ(cwd_entries(), (std::vector<std::string>{"link.json", "real.json"}));
  // A FIFO with a reader: written through once, at the end (not opened and closed up front,
  // which ended the reader's input and left the final open waiting forever).
  ASSERT_EQ(::mkfifo((cwd() / "fifo").c_str(), 0600), 0);
  const std::string both = "cd '" + cwd().string() + "' && ('" + binary() +
                           "' bench --device cpu --quick --json fifo >/dev/null 2>&1 & cat fifo > from-fifo.json; "
                           "wait $!)";
  const int raw = std::system(both.c_str());
  ASSERT_EQ(WIFEXITED(raw) ? WEXITSTATUS(raw) : -1, 0);
  EXPECT_EQ(nlohmann::json::parse(read(cwd() / "from-fifo.json")).at("device").at("kind"), "cpu");
}

// A link to nothing: its target is created by the write at the end, not when the path is
// checked (a benchmark that then failed used to leave it, empty); one whose target cannot be
// created is refused up front.
TEST_F(Cli, BenchJsonThroughALinkToNothing) {
  std::filesystem::create_symlink("missing/x.json", cwd() / "bad.json");
  CliResult r = run("bench --device cpu --quick --json bad.json");
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("--json bad.json: No such file or directory"), std::string::npos) << r.err;
  std::filesystem::create_symlink("new.json", cwd() / "link.json");
  r = run("bench --device cuda --quick --json link.json");  // without a GPU: refused after the path is checked
  if (r.status != 0) {
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_EQ(cwd_entries(), (std::vector<std::string>{"bad.json", "link.json"}));
  }
  r = run("bench --device cpu --quick --json link.json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_TRUE(std::filesystem::is_symlink(cwd() / "link.json"));
  EXPECT_EQ(nlohmann::json::parse(read(cwd() / "new.json")).at("device").at("kind"), "cpu");
}

TEST_F(Cli, BenchBadArgumentsExitTwoWithAMessage) {
  std::filesystem::create_directory(cwd() / "dir");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bench --device gpu", "--device"},
      {"bench --threads -1", "--threads"},
      {"bench --threads many", "--threads"},
      {"bench --json", "--json"},
      {"bench --json missing/b.json --device cpu --quick", "missing"},
      {"bench --json dir --device cpu --quick", "is a directory"},
      // Nothing can be created in /proc, even by root (whom an access() check lets through).
      {"bench --json /proc/x.json --device cpu --quick", "--json /proc/x.json: cannot create a file in /proc"},
      {"bench --repeat 3", "--repeat"},
      {"bench extra", "extra"},
  };
  for (const auto& [args, says] : cases) {
    const CliResult r = run(args);
    EXPECT_EQ(r.status, 2) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(says), std::string::npos) << args << "\n" << r.err;
    EXPECT_TRUE(r.out.empty()) << args << "\n" << r.out;
    EXPECT_EQ(cwd_entries(), std::vector<std::string>{"dir"}) << args;
  }
}

TEST_F(Cli, BenchCudaWithoutADeviceFailsAsRunDoes) {
  std::string why;
  if (cuda_backend_available(&why)) GTEST_SKIP() << "a CUDA device is available here";
  const CliResult bench = run("bench --device cuda --quick --json bench.json");
  EXPECT_EQ(bench.status, 1) << bench.err;
  EXPECT_EQ(bench.err, "underspec: error: --device cuda: " + why + "\n");
  EXPECT_TRUE(bench.out.empty());
  EXPECT_TRUE(cwd_entries().empty());
  // The same status and message as `underspec run --device cuda`.
  const CliResult r = run("run --set sweep.seeds=1 --device cuda --out out");
  EXPECT_EQ(r.status, bench.status);
  EXPECT_EQ(r.err, bench.err);
}

TEST_F(Cli, BenchAutoWithoutADeviceBenchmarksTheCpu) {
  std::string why;
  if (cuda_backend_available(&why)) GTEST_SKIP() << "a CUDA device is available here";
  const CliResult r = run("bench --quick --threads 1 --json b.json");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.err.find("no usable CUDA device"), std::string::npos) << r.err;
  const nlohmann::json j = nlohmann::json::parse(read(cwd() / "b.json"));
  EXPECT_EQ(j.at("device").at("kind"), "cpu");
  EXPECT_EQ(j.at("device").at("threads"), 1);
}

}  // namespace
}  // namespace underspec
