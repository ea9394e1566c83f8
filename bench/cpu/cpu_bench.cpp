// Throughput of the CPU backend against the machine's measured FP32 FMA peak: the cases of
// `underspec bench --device cpu` plus the default seed experiment, with a floor column and
// repeat control for the measurements of BENCHMARKS.md.
//
//   underspec_bench_cpu [--threads N] [--repeat N] [--peak-seconds S] [--json FILE] [--quick]
//                       [--scaling]
//
// Cases: benchmark::cpu_cases (perceptron and MLP at 10, 100 and 1000 replicas, baseline
// regime, shared training set; the larger cases train fewer epochs), then the seed
// experiment (60 replicas, all regimes). Each time is the median of --repeat runs of
// Backend::train_replicas (data generation, training, scoring); FLOPs are those of
// benchmark/flop_model.hpp (training plus the test-set forward passes); "floor" is that
// count over the peak used.
//
// --scaling instead times the same work per replica (an MLP, 1 epoch of 5000 samples) at 10,
// 100, 1000 and 10^4 replicas, with the training set shared and drawn per replica: the time
// per replica should stay flat (no cliff when the replicas' data leave the caches).
#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "underspec/backends/backend.hpp"
#include "underspec/benchmark/benchmark.hpp"
#include "underspec/benchmark/cpu_fma_probe.hpp"
#include "underspec/config/config.hpp"
#include "underspec/outputs/atomic_file.hpp"

namespace us = underspec;
namespace bm = underspec::benchmark;

namespace {

// /proc/loadavg's first three fields: other work on the machine skews every timing.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

std::string case_name(const bm::BenchRow& r) {
  return r.model == "perceptron+mlp" ? std::string("seed experiment (60)")
                                     : r.model + " x" + std::to_string(r.replicas);
}

double floor_seconds(const bm::BenchRow& r) { return r.peak_fraction * r.wall_ms * 1e-3; }

// --scaling: the same MLP work per replica at growing replica counts, shared and per-replica
// training sets; prints ms per replica and its ratio to the smallest count's.
int run_scaling(us::Backend& backend, int threads, int repeat, bool quick, double peak_gflops,
                const std::string& json_path) {
  const std::string load_before = load_average();
  nlohmann::json rows = nlohmann::json::array();
  std::printf("cpu kernels: %s; %d threads, median of %d\n\n", backend.kernels().c_str(), threads, repeat);
  std::printf("%-12s %8s %10s %14s %9s %7s %9s\n", "data", "replicas", "median s", "ms per replica", "GFLOP/s",
              "% peak", "vs first");
  for (const bool per_replica : {false, true}) {
    double first_ms = 0;
    for (const int replicas : {10, 100, 1000, 10000}) {
      if (quick && replicas > 1000) break;
      us::ExperimentConfig config = bm::case_config({us::ModelKind::mlp, replicas, 1, quick ? 1000 : 5000});
      config.data.per_replica = per_replica;
      const bm::BenchRow r = bm::time_cpu_sweep(backend, config, "mlp", repeat, peak_gflops);
      const double per = r.wall_ms / replicas;
      if (first_ms == 0) first_ms = per;
      const char* data = per_replica ? "per replica" : "shared";
      std::printf("%-12s %8d %10.3f %14.4f %9.2f %6.1f%% %8.2fx\n", data, replicas, r.wall_ms * 1e-3, per, r.gflops,
                  100.0 * r.peak_fraction, per / first_ms);
      std::fflush(stdout);
      nlohmann::json j = bm::to_json(r);
      j["data"] = data;
      j["ms_per_replica"] = per;
      j["vs_first"] = per / first_ms;
      rows.push_back(j);
    }
  }
  const std::string load_after = load_average();
  std::printf("\nload average (1, 5, 15 min) before: %s, after: %s\n", load_before.c_str(), load_after.c_str());
  if (!json_path.empty()) {
    nlohmann::json out{{"backend", backend.name()},
                       {"cpu_kernels", backend.kernels()},
                       {"threads", threads},
                       {"repeat", repeat},
                       {"fma_peak_gflops", peak_gflops},
                       {"load_average_before", load_before},
                       {"load_average_after", load_after},
                       {"scaling", rows}};
    us::write_file_atomic(json_path, out.dump(2) + "\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"underspec CPU throughput against the measured FP32 FMA peak"};
  int threads = 0, repeat = 3;
  double peak_seconds = 1.0;
  bool quick = false, scaling = false;
  std::string json_path;
  // As `underspec run --threads`: at most 4x the hardware threads.
  const int hardware = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  app.add_option("--threads", threads, "backend and probe threads (0: all hardware threads)")
      ->check(CLI::Range(0, 4 * hardware));
  app.add_option("--repeat", repeat, "runs per case; the median is reported")->check(CLI::PositiveNumber);
  app.add_option("--peak-seconds", peak_seconds, "duration of each FMA probe")->check(CLI::PositiveNumber);
  app.add_option("--json", json_path, "write the results as JSON to this file");
  app.add_flag("--quick", quick, "one run per case, epochs divided by 10 (a smoke test)");
  app.add_flag("--scaling", scaling, "time per MLP replica at 10 .. 10^4 replicas instead of the cases");
  try {
    app.parse(argc, argv);
    // The JSON is written at the end: a path where it cannot be must fail before the work.
    if (!json_path.empty()) us::probe_file_atomic(json_path);
  } catch (const CLI::ParseError& e) {
    return e.get_exit_code() == 0 ? app.exit(e) : (app.exit(e), 2);
  } catch (const std::exception& e) {
    std::cerr << "underspec_bench_cpu: error: --json " << json_path << ": " << e.what() << '\n';
    return 2;
  }

  try {
    auto backend = us::make_backend("cpu", threads);
    threads = backend->threads();
    std::fprintf(stderr, "FMA probe...\n");
    const bm::FmaPeak peak1 = bm::measure_fma_peak(1, peak_seconds);
    const bm::FmaPeak peak_all = bm::measure_fma_peak(threads, peak_seconds);
    // As `underspec bench`: the larger of the all-thread probe and the one-thread probe times
    // the threads that can run at once (another process holding a core during the probe must
    // not flatter the fractions; threads beyond the hardware add no FMA units).
    const double peak_gflops = std::max(peak_all.gflops, std::min(threads, hardware) * peak1.gflops);
    const std::string load_before = load_average();
    if (quick) repeat = 1;
    const int div = quick ? 10 : 1;

    if (scaling) return run_scaling(*backend, threads, repeat, quick, peak_gflops, json_path);
    std::vector<bm::BenchRow> cases;
    std::fprintf(stderr, "Throughput (%d threads, median of %d)...\n", threads, repeat);
    for (bm::BenchCase c : bm::cpu_cases(false)) {
      c.epochs = std::max(1, c.epochs / div);
      cases.push_back(bm::time_cpu_sweep(*backend, bm::case_config(c), us::to_string(c.model), repeat, peak_gflops));
      std::fprintf(stderr, "  %-28s %8.3f s\n", case_name(cases.back()).c_str(), cases.back().wall_ms * 1e-3);
    }
    us::ExperimentConfig seed;  // the built-in seed experiment
    seed.train.epochs = std::max(1, seed.train.epochs / div);
    const bm::BenchRow seed_case = bm::time_cpu_sweep(*backend, seed, "perceptron+mlp", repeat, peak_gflops);
    std::fprintf(stderr, "  %-28s %8.3f s\n", case_name(seed_case).c_str(), seed_case.wall_ms * 1e-3);
    const std::string load_after = load_average();

    std::printf(
        "FP32 FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s measured on %d threads; "
        "peak used: %.1f GFLOP/s\n",
        peak_all.isa.c_str(), peak1.gflops, peak_all.gflops, threads, peak_gflops);
    std::printf("cpu kernels: %s\n", backend->kernels().c_str());
    std::printf("load average (1, 5, 15 min) before: %s, after: %s\n\n", load_before.c_str(), load_after.c_str());
    std::printf("%-22s %8s %6s %7s %10s %10s %14s %9s %7s\n", "case", "replicas", "epochs", "samples", "median s",
                "floor s", "r-sample-st/s", "GFLOP/s", "% peak");
    auto row = [](const bm::BenchRow& c) {
      std::printf("%-22s %8d %6d %7lld %10.3f %10.4f %14.3e %9.2f %6.1f%%\n", case_name(c).c_str(), c.replicas,
                  c.epochs, static_cast<long long>(c.n_train), c.wall_ms * 1e-3, floor_seconds(c), c.sample_steps_per_s,
                  c.gflops, 100.0 * c.peak_fraction);
    };
    for (const bm::BenchRow& c : cases) row(c);
    row(seed_case);
    std::printf(
        "\nFLOPs: training (forward + weight grads + input grads + bias grads, per sample-step) plus\n"
        "forward passes over both test sets; floor = FLOPs / peak used. Times include data\n"
        "generation and scoring.\n");

    if (!json_path.empty()) {
      auto to_json = [](const bm::BenchRow& c) {
        nlohmann::json j = bm::to_json(c);
        j["name"] = case_name(c);
        j["floor_seconds"] = floor_seconds(c);
        return j;
      };
      nlohmann::json out;
      out["backend"] = backend->name();
      out["device"] = bm::to_json(bm::cpu_device_info(threads));
      out["cpu_kernels"] = backend->kernels();
      out["threads"] = threads;
      out["repeat"] = repeat;
      out["load_average_before"] = load_before;
      out["load_average_after"] = load_after;
      out["quick"] = quick;
      out["fma_peak"] = {{"isa", peak_all.isa},
                         {"gflops_1_thread", peak1.gflops},
                         {"gflops_all_threads", peak_all.gflops},
                         {"gflops_used", peak_gflops},
                         {"threads", threads}};
      out["cases"] = nlohmann::json::array();
      for (const bm::BenchRow& c : cases) out["cases"].push_back(to_json(c));
      out["seed_experiment"] = to_json(seed_case);
      us::write_file_atomic(json_path, out.dump(2) + "\n");
    }
  } catch (const std::exception& e) {
    std::cerr << "underspec_bench_cpu: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
