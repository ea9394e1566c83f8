// `underspec bench`: training throughput of the perceptron and the MLP at several replica
// counts (a scaling curve) against the device's FP32 peak, measured in the same run by an
// FMA probe. CPU-side pieces live in src/benchmark/; the CUDA side (its FMA probe kernel and
// the timing of the fused and cuBLAS trainings) in kernels/cuda_benchmark.cpp, behind
// run_cuda_benchmark below, so this header stays free of CUDA.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/core/model.hpp"

namespace underspec {
class Backend;
}

namespace underspec::benchmark {

// One point of a scaling curve: `replicas` seeds of `model`, baseline regime, one shared
// training set of `n_train` samples (and, on the CPU, which scores them, test sets of as many).
struct BenchCase {
  ModelKind model = ModelKind::perceptron;
  int replicas = 0;
  int epochs = 0;
  std::int64_t n_train = 0;
};

// The curves `underspec bench` runs. CPU: 10, 100, 1000 replicas of each model (the larger
// cases train fewer epochs on fewer samples, so each takes about a second on two cores).
// CUDA: perceptrons 100 .. 100000, MLPs 100 .. 10000. quick: small counts, few epochs.
std::vector<BenchCase> cpu_cases(bool quick);
std::vector<BenchCase> cuda_cases(bool quick);

// The config of a case: the seed experiment's networks, batch size and optimiser.
ExperimentConfig case_config(const BenchCase& c);

struct DeviceInfo {
  std::string kind;             // "cpu" or "cuda"
  std::string name;             // CPU: /proc/cpuinfo model name; CUDA: cudaDeviceProp::name
  int threads = 0;              // CPU: threads used by the backend and the probe
  int hardware_threads = 0;     // CPU: the CPUs this process may use (its affinity mask)
  int ordinal = -1;             // CUDA device
  int sm_count = 0;             // CUDA
  std::string capability;       // CUDA compute capability, e.g. "9.0"
  double clock_mhz = 0;         // CPU: /proc/cpuinfo "cpu MHz" of the first core now; CUDA: peak SM clock (0: unknown)
  double memory_clock_mhz = 0;  // CUDA: peak memory clock
  // CPU: the kernel level the backend ran and how it was chosen (Backend::kernels(), as
  // summary.json's run.cpu_kernels), e.g. "portable (UNDERSPEC_CPU_KERNELS=portable)": the
  // probe measures the widest unit whatever level the rows ran on.
  std::string cpu_kernels;
};

struct Peak {
  std::string method;            // what was measured, e.g. "avx2+fma FMA chains" or "fmaf chains, 1056 x 256 threads"
  double gflops = 0;             // the peak the fractions are taken against
  double gflops_one_thread = 0;  // CPU: the one-thread probe (0 on the GPU)
  double gflops_measured = 0;    // the all-threads probe as measured (CPU), the kernel (GPU)
  double seconds = 0;            // duration of the best timed probe run
};

struct BenchRow {
  std::string model;    // "perceptron", "mlp" (or a label such as "perceptron+mlp")
  std::string variant;  // CPU: "cpu"; CUDA: cuda_plan::TrainVariant's name
  int replicas = 0, epochs = 0;
  std::int64_t n_train = 0;
  std::vector<double> run_ms;     // every timed run
  double wall_ms = 0;             // their median
  double sample_steps_per_s = 0;  // replica-sample-steps of training per second
  double gflops = 0;
  double peak_fraction = 0;  // gflops / peak
  double sample_steps = 0;   // replica-sample-steps of training in one run
  double flop = 0;           // FLOPs counted in one run (gflops = flop / wall time)
};

struct BenchReport {
  std::string version, git_commit, host, started_utc;  // to compare benchmarks across builds
  DeviceInfo device;
  Peak peak;
  bool quick = false;
  int repeat = 1;
  std::string timed;  // what the wall time covers
  std::string flops;  // what the FLOP count covers
  std::vector<BenchRow> rows;
  std::vector<std::string> notes;  // e.g. a variant left out, and why
  // /proc/loadavg's 1-, 5- and 15-minute load averages at the start and the end (empty where
  // unreadable): other work on the machine slows every row.
  std::vector<double> load_before, load_after;
};

struct BenchOptions {
  bool quick = false;
  int threads = 0;  // CPU backend and probe threads; <= 0: all hardware threads
  int repeat = 0;   // timed runs per case (median); <= 0: 1 with quick, else 3 on the CPU, 1 on the GPU
  std::function<void(const std::string&)> progress;  // one line per finished step, if set
};

// The CPU: the FMA probe on 1 and on all threads, then every case of cpu_cases timed
// through the CPU backend's Backend::train_replicas (data generation, training, scoring).
BenchReport run_cpu_benchmark(const BenchOptions& options);

// The current CUDA device: the FMA probe kernel, then every case of cuda_cases for every
// training variant (fused, cublas; perceptrons have one kernel whatever the variant: one
// row, "fused"), timed with CUDA events around the training launches only.
// Defined in kernels/cuda_benchmark.cpp; throws BackendUnavailable without a usable device.
BenchReport run_cuda_benchmark(const BenchOptions& options);

// The 1-, 5- and 15-minute load averages of /proc/loadavg (empty where unreadable).
std::vector<double> load_average();

// The CPUs this process may run on (its affinity mask: taskset, cgroups' cpusets), at least 1.
int usable_cpus();

// The CPU's name and clock from /proc/cpuinfo ("" / 0 where absent).
DeviceInfo cpu_device_info(int threads);

// Times `config`'s whole sweep through backend.train_replicas, `repeat` times (median).
// FLOPs: training plus the forward passes over the IID and OOD test sets.
BenchRow time_cpu_sweep(Backend& backend, const ExperimentConfig& config, const std::string& model_label, int repeat,
                        double peak_gflops);

// Fills a row's rates from its timing: replica-sample-steps and FLOPs of the row's work.
void finish_row(BenchRow& row, double sample_steps, double flop, double peak_gflops);

double median(std::vector<double> values);

// The table printed on stdout, and the same data as JSON.
std::string format_report(const BenchReport& report);
nlohmann::json to_json(const DeviceInfo& device);
nlohmann::json to_json(const BenchRow& row);
nlohmann::json to_json(const BenchReport& report);

}  // namespace underspec::benchmark
