// GPU throughput of the training variants, timed with cudaEvents around the training
// launch(es) only (data generation and evaluation excluded), plus the 60-replica seed
// experiment end to end through the CUDA backend and its agreement with the CPU backend.
//
//   underspec_gpu_bench [--epochs N] [--replicas 100,1000,10000] [--json FILE] [--no-seed]
//
// FLOP per replica-sample-step are counted from the shapes: forward 2*fan_in*fan_out per
// layer (the bias is the accumulator's initial value), weight gradients 2*fan_in*fan_out
// per layer, back-propagated errors 2*fan_in*fan_out per layer but the first, bias
// gradients fan_out adds per layer; Adam (per step, not per sample) is not counted.
// 3-64-64-1: 25,857 FLOP. Peak: H200 FP32 non-tensor 67 TFLOP/s.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "cublas_api.hpp"
#include "cuda_check.hpp"
#include "device_buffer.hpp"
#include "generate.hpp"
#include "train_cublas.hpp"
#include "train_fused.hpp"
#include "underspec/backends/cuda_backend.hpp"
#include "underspec/sweep/dataset.hpp"

namespace {

using namespace underspec;
using cuda::DeviceBuffer;
constexpr double kPeakFlops = 67e12;

double flop_per_sample_step(const NetShape& s) {
  double flop = 0;
  for (int l = 1; l <= s.n_layers; ++l) {
    const double mn = static_cast<double>(s.width[l - 1]) * s.width[l];
    flop += 2 * mn + 2 * mn + (l > 1 ? 2 * mn : 0.0) + s.width[l];
  }
  return flop;
}

struct Row {
  std::string model, variant;
  int replicas;
  double ms, sample_steps_per_s, flops, peak_fraction;
};

Row time_training(const ExperimentConfig& config, ModelKind model, cuda_plan::TrainVariant variant, int replicas,
                  cublasHandle_t handle) {
  const NetShape shape = net_shape(config, model);
  const auto n = static_cast<std::uint32_t>(config.data.n_train);
  int device = 0, limit = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  DeviceBuffer<float> data(4 * std::size_t{n});
  float* p = data.data();
  const std::vector<cuda::GenerateJob> gen{
      {p, p + n, p + 2 * n, p + 3 * n, n, DatasetId::train, 0u, train_domain(config, Regime::augmentation)}};
  DeviceBuffer<cuda::GenerateJob> gen_device = cuda::to_device(gen, nullptr);
  cuda::launch_generate(scm_params(config.data), config.data.seed, gen_device.data(), 1, n, nullptr);
  const std::vector<DatasetView> views{{p, p + n, p + 2 * n, p + 3 * n, n}};
  std::vector<ReplicaJob> jobs;
  for (int r = 0; r < replicas; ++r) jobs.push_back({static_cast<std::uint32_t>(r), 1u, 0u, 0u});  // augmentation
  DeviceBuffer<DatasetView> views_device = cuda::to_device(views, nullptr);
  DeviceBuffer<ReplicaJob> jobs_device = cuda::to_device(jobs, nullptr);
  const std::vector<AdamStep> table = cuda_plan::make_adam_table(config.train, n);
  DeviceBuffer<AdamStep> table_device = cuda::to_device(table, nullptr);
  DeviceBuffer<float> params(static_cast<std::size_t>(replicas) * param_count(shape));
  const TrainRun run{config.train.epochs, config.train.batch_size, static_cast<float>(config.augmentation.noise_std),
                     table_device.data()};
  const cuda_plan::FusedLayout layout =
      cuda::fused_layout_for(shape, config.train.batch_size, static_cast<std::size_t>(limit));
  DeviceBuffer<float> scratch(static_cast<std::size_t>(replicas) * layout.global_floats);
  US_CUDA_CHECK(cudaDeviceSynchronize());

  cudaEvent_t start, stop;
  US_CUDA_CHECK(cudaEventCreate(&start));
  US_CUDA_CHECK(cudaEventCreate(&stop));
  US_CUDA_CHECK(cudaEventRecord(start, nullptr));
  if (variant == cuda_plan::TrainVariant::cublas) {
    TrainRun host_run = run;
    host_run.adam_steps = table.data();
    cuda::train_cublas(handle,
                       cuda::CublasTrainLaunch{shape, host_run, static_cast<int>(table.size()), jobs_device.data(),
                                               views_device.data(), n, replicas, params.data()},
                       nullptr);
  } else {
    DeviceBuffer<TrainRun> runs_device = cuda::to_device(std::vector<TrainRun>{run}, nullptr);
    cuda::launch_fused_train(cuda::FusedTrainLaunch{shape, runs_device.data(), jobs_device.data(), views_device.data(),
                                                    replicas, layout, scratch.data(), params.data()},
                             variant == cuda_plan::TrainVariant::fused, nullptr);
  }
  US_CUDA_CHECK(cudaEventRecord(stop, nullptr));
  US_CUDA_CHECK(cudaEventSynchronize(stop));
  float ms = 0;
  US_CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
  US_CUDA_CHECK(cudaEventDestroy(start));
  US_CUDA_CHECK(cudaEventDestroy(stop));
  const double sample_steps = static_cast<double>(replicas) * config.train.epochs * n;
  const double seconds = ms / 1e3;
  const double flops = sample_steps * flop_per_sample_step(shape) / seconds;
  return Row{to_string(model),  cuda_plan::to_string(variant), replicas, ms, sample_steps / seconds, flops,
             flops / kPeakFlops};
}

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
    cudaDeviceProp prop{};
    US_CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
    cublasHandle_t handle;
    US_CUBLAS_CHECK(underspec::cuda::cublas().create(&handle));
    nlohmann::json out;
    out["device"] = prop.name;
    out["epochs"] = config.train.epochs;
    out["n_train"] = config.data.n_train;
    out["batch_size"] = config.train.batch_size;
    out["peak_fp32_flops"] = kPeakFlops;
    std::vector<Row> rows;
    for (ModelKind model : {ModelKind::perceptron, ModelKind::mlp})
      for (cuda_plan::TrainVariant variant :
           {cuda_plan::TrainVariant::fused, cuda_plan::TrainVariant::fused_generic, cuda_plan::TrainVariant::cublas}) {
        if (model == ModelKind::perceptron && variant != cuda_plan::TrainVariant::fused) continue;
        for (int replicas : replica_counts) {
          rows.push_back(time_training(config, model, variant, replicas, handle));
          const Row& r = rows.back();
          std::fprintf(stderr, "  %s %s %d: %.1f ms\n", r.model.c_str(), r.variant.c_str(), r.replicas, r.ms);
        }
      }
    underspec::cuda::cublas().destroy(handle);
    for (const Row& r : rows)
      out["training"].push_back({{"model", r.model},
                                 {"variant", r.variant},
                                 {"replicas", r.replicas},
                                 {"kernel_ms", r.ms},
                                 {"replica_sample_steps_per_s", r.sample_steps_per_s},
                                 {"flops", r.flops},
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
    for (const Row& r : rows)
      std::printf("%-10s %-14s %8d %12.2f %16.3e %12.3f %7.2f%%\n", r.model.c_str(), r.variant.c_str(), r.replicas,
                  r.ms, r.sample_steps_per_s, r.flops / 1e12, 100 * r.peak_fraction);
    std::printf("(%s, %d epochs x %lld samples, batch %d; JSON: %s)\n", prop.name, config.train.epochs,
                static_cast<long long>(config.data.n_train), config.train.batch_size, json_path.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "underspec_gpu_bench: %s\n", e.what());
    return 1;
  }
}
