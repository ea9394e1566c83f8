// GPU throughput of the training variants, timed with cudaEvents around the training
// launch(es) only (data generation and evaluation excluded), plus the 60-replica seed
// experiment end to end through the CUDA backend and its agreement with the CPU backend.
//
//   underspec_gpu_bench [--epochs N] [--replicas 100,1000,10000] [--json FILE] [--no-seed]
//
// The timing (cuda::time_cuda_training), the FLOP model (benchmark::train_flop_per_sample_step:
// 3-64-64-1 = 25,857 FLOP per replica-sample-step) and the FP32 peak (the FMA probe kernel,
// measured in the same run) are the library's, shared with `underspec bench --device cuda`.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cublas_api.hpp"
#include "cuda_benchmark.hpp"
#include "cuda_check.hpp"
#include "underspec/backends/cuda_backend.hpp"

namespace {

using namespace underspec;

std::vector<int> parse_list(const std::string& text) {
  std::vector<int> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) out.push_back(std::stoi(item));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    ExperimentConfig config;
    std::vector<int> replica_counts{100, 1000, 10000};
    std::string json_path = "gpu_bench.json";
    bool seed_experiment = true;
    for (int i = 1; i < argc; ++i) {
      const std::string arg = argv[i];
      if (arg == "--epochs" && i + 1 < argc)
        config.train.epochs = std::stoi(argv[++i]);
      else if (arg == "--replicas" && i + 1 < argc)
        replica_counts = parse_list(argv[++i]);
      else if (arg == "--json" && i + 1 < argc)
        json_path = argv[++i];
      else if (arg == "--no-seed")
        seed_experiment = false;
      else {
        std::fprintf(stderr, "usage: %s [--epochs N] [--replicas a,b,c] [--json FILE] [--no-seed]\n", argv[0]);
        return 2;
      }
    }
    std::string why;
    if (!cuda_backend_available(&why)) {
      std::fprintf(stderr, "underspec_gpu_bench: %s\n", why.c_str());
      return 1;
    }
    const benchmark::DeviceInfo device = cuda::cuda_device_info();
    const cuda::GpuFmaPeak peak = cuda::measure_gpu_fma_peak(1.0);
    const double peak_flops = peak.gflops * 1e9;
    cublasHandle_t handle;
    US_CUBLAS_CHECK(underspec::cuda::cublas().create(&handle));
    nlohmann::json out;
    out["device"] = device.name;
    out["device_info"] = benchmark::to_json(device);
    out["epochs"] = config.train.epochs;
    out["n_train"] = config.data.n_train;
    out["batch_size"] = config.train.batch_size;
    out["peak_fp32_flops"] = peak_flops;  // measured by the FMA probe kernel
    std::vector<benchmark::BenchRow> rows;
    for (ModelKind model : {ModelKind::perceptron, ModelKind::mlp})
      for (cuda_plan::TrainVariant variant : {cuda_plan::TrainVariant::fused, cuda_plan::TrainVariant::cublas}) {
        if (model == ModelKind::perceptron && variant != cuda_plan::TrainVariant::fused) continue;
        for (int replicas : replica_counts) {
          rows.push_back(cuda::time_cuda_training(config, model, variant, replicas, handle, peak.gflops));
          const benchmark::BenchRow& r = rows.back();
          std::fprintf(stderr, "  %s %s %d: %.1f ms\n", r.model.c_str(), r.variant.c_str(), r.replicas, r.wall_ms);
        }
      }
    underspec::cuda::cublas().destroy(handle);
    for (const benchmark::BenchRow& r : rows)
      out["training"].push_back({{"model", r.model},
                                 {"variant", r.variant},
                                 {"replicas", r.replicas},
                                 {"kernel_ms", r.wall_ms},
                                 {"replica_sample_steps_per_s", r.sample_steps_per_s},
                                 {"flops", r.gflops * 1e9},
                                 {"fraction_of_peak", r.peak_fraction}});

    if (seed_experiment) {  // the default 60-replica experiment, end to end, and vs the CPU
      const ExperimentConfig seed_config;
      const Sweep sweep = make_sweep(seed_config);
      auto backend = make_cuda_backend(cuda_plan::CudaBackendOptions{});
      backend->train_replicas(sweep, std::span(sweep.replicas).first(2));  // warm-up (context, modules)
      const auto t0 = std::chrono::steady_clock::now();
      const std::vector<ReplicaResult> gpu = backend->train_replicas(sweep, sweep.replicas);
      const double gpu_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      const auto t1 = std::chrono::steady_clock::now();
      const std::vector<ReplicaResult> cpu = make_cpu_backend(0)->train_replicas(sweep, sweep.replicas);
      const double cpu_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
      double max_param = 0, max_rmse = 0;
      for (std::size_t k = 0; k < gpu.size(); ++k) {
        max_rmse = std::max({max_rmse, std::fabs(gpu[k].iid_rmse - cpu[k].iid_rmse) / cpu[k].iid_rmse,
                             std::fabs(gpu[k].ood_rmse - cpu[k].ood_rmse) / cpu[k].ood_rmse});
        for (std::size_t i = 0; i < cpu[k].params.size(); ++i)
          max_param = std::max(max_param, std::fabs(static_cast<double>(gpu[k].params[i]) - cpu[k].params[i]) /
                                              std::max(std::fabs(static_cast<double>(cpu[k].params[i])), 1e-3));
      }
      out["seed_experiment"] = {{"replicas", gpu.size()},
                                {"gpu_wall_s", gpu_s},
                                {"cpu_wall_s", cpu_s},
                                {"max_rel_param_diff", max_param},
                                {"max_rel_rmse_diff", max_rmse}};
      std::printf(
          "seed experiment (60 replicas): GPU %.1f ms end to end, CPU %.1f ms; max rel diff params %.2e, RMSE %.2e\n",
          gpu_s * 1e3, cpu_s * 1e3, max_param, max_rmse);
    }
    std::ofstream(json_path) << out.dump(2) << "\n";
    std::printf("%-10s %-14s %8s %12s %16s %12s %8s\n", "model", "variant", "replicas", "kernel_ms", "sample-steps/s",
                "TFLOP/s", "%peak");
    for (const benchmark::BenchRow& r : rows)
      std::printf("%-10s %-14s %8d %12.2f %16.3e %12.3f %7.2f%%\n", r.model.c_str(), r.variant.c_str(), r.replicas,
                  r.wall_ms, r.sample_steps_per_s, r.gflops / 1e3, 100 * r.peak_fraction);
    std::printf(
        "(%s, %d SMs, %.0f MHz; FP32 peak %.1f TFLOP/s measured by the FMA probe; %d epochs x %lld samples, "
        "batch %d; JSON: %s)\n",
        device.name.c_str(), device.sm_count, device.clock_mhz, peak.gflops / 1e3, config.train.epochs,
        static_cast<long long>(config.data.n_train), config.train.batch_size, json_path.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "underspec_gpu_bench: %s\n", e.what());
    return 1;
  }
}
