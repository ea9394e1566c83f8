// Throughput of the CPU backend against the machine's measured FP32 FMA peak.
//
//   underspec_bench_cpu [--threads N] [--repeat N] [--json FILE] [--quick]
//
// Cases: perceptron and MLP at 10, 100 and 1000 replicas (baseline regime, shared training
// set; the larger cases train fewer epochs, printed in the table), then the default seed
// experiment (60 replicas, all regimes). Each time is the median of --repeat runs of
// Backend::train_replicas, which includes generating the data sets and scoring the IID and
// OOD test sets. FLOPs are counted exactly from the layer widths (see flop counts below);
// "floor" is that count over the measured all-thread peak.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "fma_probe.hpp"
#include "underspec/backends/backend.hpp"
#include "underspec/config/config.hpp"
#include "underspec/sweep/sweep.hpp"

namespace us = underspec;
namespace bench = underspec::bench;

namespace {

// Per sample through the network: 2*in*out per layer.
double forward_flop(const us::NetShape& s) {
  double f = 0;
  for (int l = 1; l <= s.n_layers; ++l) f += 2.0 * s.width[l - 1] * s.width[l];
  return f;
}

// Per sample-step of training: forward, weight gradients (2*in*out per layer) and input
// gradients (2*in*out for every layer but the first). Bias, ReLU, loss and Adam ignored.
double train_flop(const us::NetShape& s) {
  double f = 0;
  for (int l = 1; l <= s.n_layers; ++l) f += 2.0 * s.width[l - 1] * s.width[l] * (l > 1 ? 3 : 2);
  return f;
}

struct Workload {
  double sample_steps = 0;  // replica-sample-steps of training
  double flop = 0;          // training + test-set scoring
};

Workload count_work(const us::ExperimentConfig& config, const us::Sweep& sweep) {
  Workload w;
  for (const us::ReplicaSpec& r : sweep.replicas) {
    const us::NetShape shape = us::net_shape(config, r.model);
    const double steps = static_cast<double>(config.train.epochs) * static_cast<double>(config.data.n_train);
    w.sample_steps += steps;
    w.flop += steps * train_flop(shape) + 2.0 * static_cast<double>(config.data.n_test) * forward_flop(shape);
  }
  return w;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct CaseResult {
  std::string name, model;
  int replicas = 0, epochs = 0, samples = 0;
  std::vector<double> seconds;
  double median_s = 0, floor_s = 0, sample_steps_per_s = 0, gflops = 0, peak_fraction = 0;
};

CaseResult run_case(const std::string& name, const std::string& model, const us::ExperimentConfig& config,
                    us::Backend& backend, int repeat, double peak_gflops) {
  const us::Sweep sweep = us::make_sweep(config);
  const Workload work = count_work(config, sweep);
  CaseResult r;
  r.name = name;
  r.model = model;
  r.replicas = static_cast<int>(sweep.replicas.size());
  r.epochs = config.train.epochs;
  r.samples = static_cast<int>(config.data.n_train);
  for (int k = 0; k < repeat; ++k) {
    const auto start = std::chrono::steady_clock::now();
    const auto results = backend.train_replicas(sweep, sweep.replicas);
    r.seconds.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    if (results.size() != sweep.replicas.size()) throw std::runtime_error("backend returned too few results");
  }
  r.median_s = median(r.seconds);
  r.floor_s = work.flop / (peak_gflops * 1e9);
  r.sample_steps_per_s = work.sample_steps / r.median_s;
  r.gflops = work.flop / r.median_s * 1e-9;
  r.peak_fraction = r.gflops / peak_gflops;
  std::fprintf(stderr, "  %-28s %8.3f s\n", name.c_str(), r.median_s);
  return r;
}

// /proc/loadavg's first three fields: other work on the machine skews every timing.
std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string one, five, fifteen;
  if (!(in >> one >> five >> fifteen)) return "unknown";
  return one + " " + five + " " + fifteen;
}

us::ExperimentConfig single_group(us::ModelKind model, int replicas, int epochs, int samples) {
  us::ExperimentConfig c;
  c.data.n_train = samples;
  c.data.n_test = samples;
  c.sweep.models = {model};
  c.sweep.regimes = {us::Regime::baseline};
  c.sweep.seeds = replicas;
  c.train.epochs = epochs;
  return c;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"underspec CPU throughput against the measured FP32 FMA peak"};
  int threads = 0, repeat = 3;
  double peak_seconds = 1.0;
  bool quick = false;
  std::string json_path;
  app.add_option("--threads", threads, "backend and probe threads (0: all hardware threads)");
  app.add_option("--repeat", repeat, "runs per case; the median is reported")->check(CLI::PositiveNumber);
  app.add_option("--peak-seconds", peak_seconds, "duration of each FMA probe");
  app.add_option("--json", json_path, "write the results as JSON to this file");
  app.add_flag("--quick", quick, "one run per case, epochs divided by 10 (a smoke test)");
  CLI11_PARSE(app, argc, argv);

  try {
    auto backend = us::make_backend("cpu", threads);
    threads = backend->threads();
    std::fprintf(stderr, "FMA probe...\n");
    const bench::FmaPeak peak1 = bench::measure_fma_peak(1, peak_seconds);
    const bench::FmaPeak peak_all = bench::measure_fma_peak(threads, peak_seconds);
    // The fraction of peak is taken against the larger of the all-thread measurement and
    // threads x the one-thread measurement: on a shared machine other processes can hold a
    // core during the all-thread probe, and a too-low peak would flatter the fractions.
    const double peak_gflops = std::max(peak_all.gflops, threads * peak1.gflops);
    const std::string load_before = load_average();
    if (quick) repeat = 1;
    const int div = quick ? 10 : 1;

    // (model, replicas, epochs, samples): the larger cases train fewer epochs on fewer
    // samples (training and test sets alike) so each stays within a few seconds on a 2-core
    // machine; the batch size and the network stay those of the seed experiment.
    struct Spec {
      us::ModelKind model;
      int replicas, epochs, samples;
    };
    const Spec specs[] = {{us::ModelKind::perceptron, 10, 30, 5000},  {us::ModelKind::perceptron, 100, 30, 5000},
                          {us::ModelKind::perceptron, 1000, 3, 5000}, {us::ModelKind::mlp, 10, 30, 5000},
                          {us::ModelKind::mlp, 100, 3, 5000},         {us::ModelKind::mlp, 1000, 1, 1000}};
    std::vector<CaseResult> cases;
    std::fprintf(stderr, "Throughput (%d threads, median of %d)...\n", threads, repeat);
    for (const Spec& s : specs) {
      const int epochs = std::max(1, s.epochs / div);
      const std::string model = us::to_string(s.model);
      cases.push_back(run_case(model + " x" + std::to_string(s.replicas), model,
                               single_group(s.model, s.replicas, epochs, s.samples), *backend, repeat, peak_gflops));
    }
    us::ExperimentConfig seed;  // the built-in seed experiment
    seed.train.epochs = std::max(1, seed.train.epochs / div);
    const CaseResult seed_case =
        run_case("seed experiment (60)", "perceptron+mlp", seed, *backend, repeat, peak_gflops);
    const std::string load_after = load_average();

    std::printf(
        "FP32 FMA peak (%s): %.1f GFLOP/s on 1 thread, %.1f GFLOP/s measured on %d threads; "
        "peak used: %.1f GFLOP/s\n",
        peak_all.isa.c_str(), peak1.gflops, peak_all.gflops, threads, peak_gflops);
    std::printf("cpu kernels: %s\n", backend->kernels().c_str());
    std::printf("load average (1, 5, 15 min) before: %s, after: %s\n\n", load_before.c_str(), load_after.c_str());
    std::printf("%-22s %8s %6s %7s %10s %10s %14s %9s %7s\n", "case", "replicas", "epochs", "samples", "median s",
                "floor s", "r-sample-st/s", "GFLOP/s", "% peak");
    auto row = [](const CaseResult& c) {
      std::printf("%-22s %8d %6d %7d %10.3f %10.4f %14.3e %9.2f %6.1f%%\n", c.name.c_str(), c.replicas, c.epochs,
                  c.samples, c.median_s, c.floor_s, c.sample_steps_per_s, c.gflops, 100.0 * c.peak_fraction);
    };
    for (const CaseResult& c : cases) row(c);
    row(seed_case);
    std::printf(
        "\nFLOPs: training (forward + weight grads + input grads, per sample-step) plus forward\n"
        "passes over both test sets; floor = FLOPs / peak used. Times include data generation\n"
        "and scoring.\n");

    if (!json_path.empty()) {
      auto to_json = [](const CaseResult& c) {
        return nlohmann::json{{"name", c.name},
                              {"model", c.model},
                              {"replicas", c.replicas},
                              {"epochs", c.epochs},
                              {"samples", c.samples},
                              {"seconds", c.seconds},
                              {"median_seconds", c.median_s},
                              {"floor_seconds", c.floor_s},
                              {"replica_sample_steps_per_second", c.sample_steps_per_s},
                              {"gflops", c.gflops},
                              {"peak_fraction", c.peak_fraction}};
      };
      nlohmann::json out;
      out["backend"] = backend->name();
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
      for (const CaseResult& c : cases) out["cases"].push_back(to_json(c));
      out["seed_experiment"] = to_json(seed_case);
      std::ofstream(json_path) << out.dump(2) << '\n';
    }
  } catch (const std::exception& e) {
    std::cerr << "underspec_bench_cpu: error: " << e.what() << '\n';
    return 1;
  }
  return 0;
}
