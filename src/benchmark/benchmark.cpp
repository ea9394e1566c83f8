// See benchmark.hpp: the cases, the CPU side of `underspec bench` and the report.
#include "underspec/benchmark/benchmark.hpp"

#include <sched.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/benchmark/cpu_fma_probe.hpp"
#include "underspec/benchmark/flop_model.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec::benchmark {
namespace {

__attribute__((format(printf, 1, 2))) std::string format(const char* fmt, ...) {
  char buffer[512];
  std::va_list args;
  va_start(args, fmt);
  const int n = std::vsnprintf(buffer, sizeof buffer, fmt, args);
  va_end(args);
  return std::string(buffer, static_cast<std::size_t>(std::clamp(n, 0, static_cast<int>(sizeof buffer) - 1)));
}

// The value of the first "key : value" line of /proc/cpuinfo whose key is `key`.
std::string cpuinfo_field(const std::string& key) {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    const auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    while (!name.empty() && (name.back() == ' ' || name.back() == '\t')) name.pop_back();
    if (name != key) continue;
    std::string value = line.substr(colon + 1);
    const auto first = value.find_first_not_of(" \t");
    return first == std::string::npos ? std::string() : value.substr(first);
  }
  return {};
}

}  // namespace

std::vector<BenchCase> cpu_cases(bool quick) {
  if (quick)
    return {{ModelKind::perceptron, 10, 2, 1000},
            {ModelKind::perceptron, 100, 2, 1000},
            {ModelKind::mlp, 10, 2, 1000},
            {ModelKind::mlp, 100, 1, 1000}};
  // The cases of bench/cpu (BENCHMARKS.md): fewer epochs and samples as the count grows.
  return {{ModelKind::perceptron, 10, 30, 5000},  {ModelKind::perceptron, 100, 30, 5000},
          {ModelKind::perceptron, 1000, 3, 5000}, {ModelKind::mlp, 10, 30, 5000},
          {ModelKind::mlp, 100, 3, 5000},         {ModelKind::mlp, 1000, 1, 1000}};
}

std::vector<BenchCase> cuda_cases(bool quick) {
  if (quick)
    return {{ModelKind::perceptron, 100, 1, 1000},
            {ModelKind::perceptron, 1000, 1, 1000},
            {ModelKind::mlp, 100, 1, 1000},
            {ModelKind::mlp, 1000, 1, 1000}};
  std::vector<BenchCase> cases;
  for (int r : {100, 1000, 10000, 100000}) cases.push_back({ModelKind::perceptron, r, 5, 5000});
  for (int r : {100, 1000, 10000}) cases.push_back({ModelKind::mlp, r, 5, 5000});
  return cases;
}

ExperimentConfig case_config(const BenchCase& c) {
  if (c.replicas <= 0 || c.epochs <= 0 || c.n_train <= 0) throw std::invalid_argument("bench case: empty workload");
  ExperimentConfig config;
  config.data.n_train = c.n_train;
  config.data.n_test = c.n_train;
  config.sweep.models = {c.model};
  config.sweep.regimes = {Regime::baseline};
  config.sweep.seeds = c.replicas;
  config.train.epochs = c.epochs;
  return config;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

void finish_row(BenchRow& row, double sample_steps, double flop, double peak_gflops) {
  row.sample_steps = sample_steps;
  row.flop = flop;
  row.wall_ms = median(row.run_ms);
  const double seconds = row.wall_ms * 1e-3;
  row.sample_steps_per_s = seconds > 0 ? sample_steps / seconds : 0;
  row.gflops = seconds > 0 ? flop / seconds * 1e-9 : 0;
  row.peak_fraction = peak_gflops > 0 ? row.gflops / peak_gflops : 0;
}

std::vector<double> load_average() {
  std::ifstream in("/proc/loadavg");
  std::vector<double> load(3);
  if (!(in >> load[0] >> load[1] >> load[2])) return {};
  return load;
}

// The CPUs this process may run on (taskset, cgroups' cpusets), not the machine's: the peak
// of more threads than that is not reachable.
int usable_cpus() {
  cpu_set_t mask;
  if (sched_getaffinity(0, sizeof mask, &mask) == 0) return std::max(1, CPU_COUNT(&mask));
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

DeviceInfo cpu_device_info(int threads) {
  DeviceInfo d;
  d.kind = "cpu";
  d.name = cpuinfo_field("model name");
  if (d.name.empty()) d.name = cpuinfo_field("Model name");  // some non-x86 kernels
  if (d.name.empty()) d.name = "unknown CPU";
  d.threads = threads;
  d.hardware_threads = usable_cpus();
  try {
    const std::string mhz = cpuinfo_field("cpu MHz");
    if (!mhz.empty()) d.clock_mhz = std::stod(mhz);
  } catch (const std::exception&) {  // an unreadable clock is just unknown
  }
  return d;
}

BenchRow time_cpu_sweep(Backend& backend, const ExperimentConfig& config, const std::string& model_label, int repeat,
                        double peak_gflops) {
  const Sweep sweep = make_sweep(config);
  double sample_steps = 0, flop = 0;
  for (const ReplicaSpec& r : sweep.replicas) {
    const ExperimentConfig& c = sweep.config_of(r);
    const NetShape shape = net_shape(c, r.model);
    const double steps = static_cast<double>(c.train.epochs) * static_cast<double>(c.data.n_train);
    sample_steps += steps;
    flop += steps * train_flop_per_sample_step(shape) +
            2.0 * static_cast<double>(c.data.n_test) * forward_flop_per_sample(shape);
  }
  BenchRow row;
  row.model = model_label;
  row.variant = backend.name();
  row.replicas = static_cast<int>(sweep.replicas.size());
  row.epochs = config.train.epochs;
  row.n_train = config.data.n_train;
  for (int k = 0; k < std::max(1, repeat); ++k) {
    const auto start = std::chrono::steady_clock::now();
    const auto results = backend.train_replicas(sweep, sweep.replicas);
    row.run_ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count());
    if (results.size() != sweep.replicas.size()) throw std::runtime_error("backend returned too few results");
  }
  finish_row(row, sample_steps, flop, peak_gflops);
  return row;
}

BenchReport run_cpu_benchmark(const BenchOptions& options) {
  const auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  const std::unique_ptr<Backend> backend = make_cpu_backend(options.threads);
  const int threads = backend->threads();
  BenchReport report;
  report.device = cpu_device_info(threads);
  report.device.cpu_kernels = backend->kernels();
  report.quick = options.quick;
  report.repeat = options.repeat > 0 ? options.repeat : (options.quick ? 1 : 3);
  report.timed =
      std::string("Backend::train_replicas on the CPU backend: data generation, training and scoring; median of ") +
      std::to_string(report.repeat) + (report.repeat == 1 ? " run" : " runs");
  report.flops =
      "training (forward, weight and input gradients, bias gradients per replica-sample-step) plus the forward "
      "passes over the IID and OOD test sets; Adam, ReLU and the loss not counted";

  // The fractions are taken against the larger of the all-thread probe and the one-thread
  // probe times the threads that can run at once (at most the hardware threads): on a shared
  // machine other processes can hold a core during the all-thread probe, and a too-low peak
  // would flatter the fractions; --threads beyond the hardware adds no FMA units.
  const double probe_seconds = options.quick ? 0.15 : 1.0;
  const FmaPeak one = measure_fma_peak(1, probe_seconds);
  const FmaPeak all = threads == 1 ? one : measure_fma_peak(threads, probe_seconds);
  report.peak.method = all.isa + " FMA chains (CPU probe)";
  report.peak.gflops_one_thread = one.gflops;
  report.peak.gflops_measured = all.gflops;
  const int parallel = std::min(threads, std::max(1, report.device.hardware_threads));
  report.peak.gflops = std::max(all.gflops, parallel * one.gflops);
  report.peak.seconds = all.seconds;
  say(format("FMA probe (%s): %.1f GFLOP/s on 1 thread, %.1f on %d", all.isa.c_str(), one.gflops, all.gflops, threads));
  // A level forced below the widest (UNDERSPEC_CPU_KERNELS) still gets the widest unit's peak.
  const CpuIsa widest = supported_cpu_isas().front();
  if (active_cpu_kernels().isa != widest)
    report.notes.push_back("the rows ran the " + report.device.cpu_kernels + " CPU kernels, not the widest (" +
                           isa_name(widest) + ") this CPU supports; % peak is against the " + all.isa + " FMA probe");

  // One untimed run of the first (smallest) case: the thread pool's start and first page
  // faults would otherwise land in the first row (a 10-replica row slower than 100).
  const std::vector<BenchCase> cases = cpu_cases(options.quick);
  if (!cases.empty()) time_cpu_sweep(*backend, case_config(cases.front()), "warm-up", 1, report.peak.gflops);
  for (const BenchCase& c : cases) {
    report.rows.push_back(
        time_cpu_sweep(*backend, case_config(c), to_string(c.model), report.repeat, report.peak.gflops));
    const BenchRow& r = report.rows.back();
    say(format("%s %s x%d: %.1f ms", r.model.c_str(), r.variant.c_str(), r.replicas, r.wall_ms));
  }
  return report;
}

std::string format_report(const BenchReport& report) {
  const DeviceInfo& d = report.device;
  std::string s;
  if (d.kind == "cuda")
    s += format("device: CUDA %d: %s (compute %s, %d SMs, %.0f MHz SM clock, %.0f MHz memory clock)\n", d.ordinal,
                d.name.c_str(), d.capability.c_str(), d.sm_count, d.clock_mhz, d.memory_clock_mhz);
  else
    s += format("device: CPU: %s (%d of %d hardware threads used, %.0f MHz now)\n", d.name.c_str(), d.threads,
                d.hardware_threads, d.clock_mhz);
  if (d.kind != "cuda" && !d.cpu_kernels.empty()) s += "kernels: " + d.cpu_kernels + "\n";
  s += format("peak:   %.1f GFLOP/s FP32, %s", report.peak.gflops, report.peak.method.c_str());
  if (report.peak.gflops_one_thread > 0)
    s += format(" (1 thread %.1f, %d thread%s measured %.1f)", report.peak.gflops_one_thread, d.threads,
                d.threads == 1 ? "" : "s", report.peak.gflops_measured);
  s += std::string("\ntimed:  ") + report.timed + (report.quick ? " (--quick)" : "") + "\n";
  if (!report.load_before.empty() && !report.load_after.empty())
    s += format("load:   %.2f at the start, %.2f at the end (1-minute load average of the machine)\n",
                report.load_before[0], report.load_after[0]);
  s += "\n";
  s += format("%-10s %-14s %9s %6s %7s %11s %16s %10s %7s\n", "model", "variant", "replicas", "epochs", "samples",
              "wall ms", "r-sample-steps/s", "GFLOP/s", "% peak");
  for (const BenchRow& r : report.rows)
    s += format("%-10s %-14s %9d %6d %7lld %11.2f %16.3e %10.2f %6.1f%%\n", r.model.c_str(), r.variant.c_str(),
                r.replicas, r.epochs, static_cast<long long>(r.n_train), r.wall_ms, r.sample_steps_per_s, r.gflops,
                100.0 * r.peak_fraction);
  s += std::string("\nFLOPs: ") + report.flops + ".\n";
  for (const std::string& note : report.notes) s += std::string("note: ") + note + "\n";
  return s;
}

nlohmann::json to_json(const BenchRow& r) {
  return nlohmann::json{{"model", r.model},
                        {"variant", r.variant},
                        {"replicas", r.replicas},
                        {"epochs", r.epochs},
                        {"n_train", r.n_train},
                        {"run_ms", r.run_ms},
                        {"wall_ms", r.wall_ms},
                        {"replica_sample_steps_per_s", r.sample_steps_per_s},
                        {"gflops", r.gflops},
                        {"peak_fraction", r.peak_fraction},
                        {"replica_sample_steps", r.sample_steps},
                        {"flop", r.flop}};
}

nlohmann::json to_json(const DeviceInfo& d) {
  nlohmann::json device{{"kind", d.kind}, {"name", d.name}, {"clock_mhz", d.clock_mhz}};
  if (d.kind == "cuda") {
    device["ordinal"] = d.ordinal;
    device["sm_count"] = d.sm_count;
    device["compute_capability"] = d.capability;
    device["memory_clock_mhz"] = d.memory_clock_mhz;
  } else {
    device["threads"] = d.threads;
    device["hardware_threads"] = d.hardware_threads;
    device["cpu_kernels"] = d.cpu_kernels;
  }
  return device;
}

nlohmann::json to_json(const BenchReport& report) {
  nlohmann::json peak{{"method", report.peak.method},
                      {"gflops", report.peak.gflops},
                      {"gflops_measured", report.peak.gflops_measured},
                      {"seconds", report.peak.seconds}};
  if (report.peak.gflops_one_thread > 0) peak["gflops_one_thread"] = report.peak.gflops_one_thread;
  nlohmann::json rows = nlohmann::json::array();
  for (const BenchRow& r : report.rows) rows.push_back(to_json(r));
  return nlohmann::json{{"version", report.version},
                        {"git_commit", report.git_commit},
                        {"host", report.host},
                        {"started_utc", report.started_utc},
                        {"device", to_json(report.device)},
                        {"peak", peak},
                        {"quick", report.quick},
                        {"repeat", report.repeat},
                        {"timed", report.timed},
                        {"flops", report.flops},
                        {"rows", rows},
                        {"notes", report.notes},
                        {"load_average", {{"before", report.load_before}, {"after", report.load_after}}}};
}

}  // namespace underspec::benchmark
