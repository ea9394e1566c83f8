// The CUDA side of `underspec bench` (see benchmark.hpp and cuda_benchmark.hpp): device
// information, and the training launches of the CUDA backend timed with CUDA events.
#include "cuda_benchmark.hpp"

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "cublas_api.hpp"
#include "cuda_check.hpp"
#include "cuda_stream.hpp"
#include "device_buffer.hpp"
#include "generate.hpp"
#include "train_cublas.hpp"
#include "train_fused.hpp"
#include "underspec/backends/backend.hpp"
#include "underspec/benchmark/flop_model.hpp"
#include "underspec/sweep/dataset.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec::cuda {
namespace {

class Event {
 public:
  Event() { US_CUDA_CHECK(cudaEventCreate(&event_)); }
  ~Event() { static_cast<void>(cudaEventDestroy(event_)); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_{};
};

class CublasHandle {
 public:
  CublasHandle() { US_CUBLAS_CHECK(cublas().create(&handle_)); }
  ~CublasHandle() { static_cast<void>(cublas().destroy(handle_)); }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  cublasHandle_t get() const { return handle_; }

 private:
  cublasHandle_t handle_{};
};

}  // namespace

benchmark::DeviceInfo cuda_device_info() {
  int device = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  cudaDeviceProp prop{};
  US_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  const auto attribute = [device](cudaDeviceAttr what) {
    int value = 0;
    US_CUDA_CHECK(cudaDeviceGetAttribute(&value, what, device));
    return value;
  };
  benchmark::DeviceInfo d;
  d.kind = "cuda";
  d.name = prop.name;
  d.ordinal = device;
  d.sm_count = attribute(cudaDevAttrMultiProcessorCount);
  d.capability = std::to_string(attribute(cudaDevAttrComputeCapabilityMajor)) + "." +
                 std::to_string(attribute(cudaDevAttrComputeCapabilityMinor));
  d.clock_mhz = attribute(cudaDevAttrClockRate) / 1e3;  // kHz
  d.memory_clock_mhz = attribute(cudaDevAttrMemoryClockRate) / 1e3;
  return d;
}

benchmark::BenchRow time_cuda_training(const ExperimentConfig& config, ModelKind model, cuda_plan::TrainVariant variant,
                                       int replicas, cublasHandle_t handle, double peak_gflops, bool cublas_graph) {
  const NetShape shape = net_shape(config, model);
  const auto n = static_cast<std::uint32_t>(config.data.n_train);
  int device = 0, limit = 0, per_sm = 0;
  US_CUDA_CHECK(cudaGetDevice(&device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device));
  US_CUDA_CHECK(cudaDeviceGetAttribute(&per_sm, cudaDevAttrMaxSharedMemoryPerMultiprocessor, device));
  // The fused MLP's shared memory as the backend plans it (CudaBackend::train): two CTAs per
  // SM. The whole per-block limit would also put the Adam moments in shared memory, one CTA
  // per SM, and time a layout the backend never runs.
  const std::size_t mlp_shared_bytes =
      cuda_plan::fused_shared_budget(static_cast<std::size_t>(limit), static_cast<std::size_t>(per_sm),
                                     cuda_plan::CudaBackendOptions{}.fused_ctas_per_sm);
  DeviceBuffer<float> data(4 * std::size_t{n});
  float* p = data.data();
  const std::vector<GenerateJob> gen{
      {p, p + n, p + 2 * n, p + 3 * n, n, DatasetId::train, 0u, train_domain(config, Regime::augmentation)}};
  DeviceBuffer<GenerateJob> gen_device = to_device(gen, nullptr);
  launch_generate(scm_params(config.data), config.data.seed, gen_device.data(), 1, n, nullptr);
  const std::vector<DatasetView> views{{p, p + n, p + 2 * n, p + 3 * n, n}};
  std::vector<ReplicaJob> jobs;
  for (int r = 0; r < replicas; ++r) jobs.push_back({static_cast<std::uint32_t>(r), 1u, 0u, 0u});  // augmentation
  DeviceBuffer<DatasetView> views_device = to_device(views, nullptr);
  DeviceBuffer<ReplicaJob> jobs_device = to_device(jobs, nullptr);
  const std::vector<AdamStep> table = cuda_plan::make_adam_table(config.train, n);
  DeviceBuffer<AdamStep> table_device = to_device(table, nullptr);
  DeviceBuffer<float> params(static_cast<std::size_t>(replicas) * param_count(shape));
  const TrainRun run{config.train.epochs, config.train.batch_size, static_cast<float>(config.augmentation.noise_std),
                     table_device.data()};
  const cuda_plan::FusedLayout layout =
      cuda_plan::fused_launch_layout(shape, config.train.batch_size, mlp_shared_bytes);
  DeviceBuffer<float> scratch(static_cast<std::size_t>(replicas) * layout.global_floats);
  DeviceBuffer<TrainRun> runs_device = to_device(std::vector<TrainRun>{run}, nullptr);

  // The cuBLAS trainer's allocations and graph captures happen before the timed region, on
  // a stream of its own (the legacy default stream cannot be captured).
  const bool use_cublas = variant == cuda_plan::TrainVariant::cublas && shape.n_layers > 1;
  std::optional<CudaStream> cublas_stream;
  std::optional<CublasTrainer> trainer;
  if (use_cublas) {
    cublas_stream.emplace();
    trainer.emplace(
        handle,
        CublasTrainSetup{shape, run.epochs, run.batch_size, run.augmentation_std, n, table, replicas, cublas_graph},
        cublas_stream->get());
    trainer->prepare(jobs_device.data(), views_device.data(), replicas);
  }
  US_CUDA_CHECK(cudaDeviceSynchronize());

  const cudaStream_t stream = use_cublas ? cublas_stream->get() : nullptr;
  const Event start, stop;
  US_CUDA_CHECK(cudaEventRecord(start.get(), stream));
  if (use_cublas) {
    trainer->train(params.data());
  } else {
    launch_fused_train(FusedTrainLaunch{shape, runs_device.data(), jobs_device.data(), views_device.data(), replicas,
                                        layout, scratch.data(), params.data()},
                       nullptr);
  }
  US_CUDA_CHECK(cudaEventRecord(stop.get(), stream));
  US_CUDA_CHECK(cudaEventSynchronize(stop.get()));
  float ms = 0;
  US_CUDA_CHECK(cudaEventElapsedTime(&ms, start.get(), stop.get()));

  benchmark::BenchRow row;
  row.model = to_string(model);
  row.variant = cuda_plan::to_string(shape.n_layers > 1 ? variant : cuda_plan::TrainVariant::fused);
  row.replicas = replicas;
  row.epochs = config.train.epochs;
  row.n_train = config.data.n_train;
  row.run_ms = {static_cast<double>(ms)};
  const double sample_steps = static_cast<double>(replicas) * config.train.epochs * n;
  benchmark::finish_row(row, sample_steps, sample_steps * benchmark::train_flop_per_sample_step(shape), peak_gflops);
  return row;
}

}  // namespace underspec::cuda

namespace underspec::benchmark {

BenchReport run_cuda_benchmark(const BenchOptions& options) {
  std::string why;
  if (!cuda_backend_available(&why)) throw BackendUnavailable(std::string("CUDA backend: ") + why);
  const auto say = [&](const std::string& line) {
    if (options.progress) options.progress(line);
  };
  char line[256];

  cuda_plan::CudaBackendOptions options_env;  // only UNDERSPEC_CUDA_GRAPH applies to the bench
  try {
    cuda_plan::cublas_graph_from_env(std::getenv("UNDERSPEC_CUDA_GRAPH"), options_env);
  } catch (const std::invalid_argument& e) {
    throw BackendUnavailable(e.what());
  }

  BenchReport report;
  report.device = cuda::cuda_device_info();
  report.quick = options.quick;
  report.repeat = options.repeat > 0 ? options.repeat : 1;
  report.timed =
      std::string(
          "the training launch(es) only, CUDA events (data generation and scoring excluded; augmentation "
          "regime); median of ") +
      std::to_string(report.repeat) + (report.repeat == 1 ? " run" : " runs") +
      " after an untimed one-epoch warm-up per model and variant; cuBLAS steps " +
      (options_env.cublas_graph ? "replayed from CUDA graphs" : "launched one by one (UNDERSPEC_CUDA_GRAPH=0)") +
      ", captured and allocated before the timed region";
  report.flops =
      "training only: forward, weight and input gradients, bias gradients per replica-sample-step; Adam, ReLU and "
      "the loss not counted";

  const cuda::GpuFmaPeak probe = cuda::measure_gpu_fma_peak(options.quick ? 0.2 : 1.0);
  std::snprintf(line, sizeof line, "fmaf chains kernel (%d blocks x %d threads x %d chains)", probe.blocks,
                probe.threads, probe.chains);
  report.peak.method = line;
  report.peak.gflops = report.peak.gflops_measured = probe.gflops;
  report.peak.seconds = probe.seconds;
  std::snprintf(line, sizeof line, "FMA probe: %.0f GFLOP/s", probe.gflops);
  say(line);

  // cuBLAS is loaded on first use; without it the cublas rows are left out, not the rest.
  std::unique_ptr<cuda::CublasHandle> handle;
  std::string cublas_problem;
  try {
    handle = std::make_unique<cuda::CublasHandle>();
  } catch (const CudaError& e) {
    cublas_problem = e.what();
    say(std::string("cublas variant left out: ") + cublas_problem);
  }

  const std::vector<BenchCase> cases = cuda_cases(options.quick);
  for (ModelKind model : {ModelKind::perceptron, ModelKind::mlp})
    for (cuda_plan::TrainVariant variant : {cuda_plan::TrainVariant::fused, cuda_plan::TrainVariant::cublas}) {
      // A perceptron runs the fused warp kernel whatever the variant: one row per count.
      if (model == ModelKind::perceptron && variant != cuda_plan::TrainVariant::fused) continue;
      if (variant == cuda_plan::TrainVariant::cublas && !handle) continue;
      const cublasHandle_t h = handle ? handle->get() : nullptr;
      bool warm = false;
      for (const BenchCase& c : cases) {
        if (c.model != model) continue;
        const ExperimentConfig config = case_config(c);
        if (!warm) {  // module loading, cuBLAS heuristics: not part of the throughput
          ExperimentConfig one = config;
          one.train.epochs = 1;
          cuda::time_cuda_training(one, model, variant, c.replicas, h, report.peak.gflops, options_env.cublas_graph);
          warm = true;
        }
        BenchRow row;
        for (int k = 0; k < report.repeat; ++k) {
          BenchRow run = cuda::time_cuda_training(config, model, variant, c.replicas, h, report.peak.gflops,
                                                  options_env.cublas_graph);
          if (k == 0)
            row = run;
          else
            row.run_ms.push_back(run.run_ms.front());
        }
        const double sample_steps = static_cast<double>(c.replicas) * c.epochs * static_cast<double>(c.n_train);
        finish_row(row, sample_steps, sample_steps * train_flop_per_sample_step(net_shape(config, model)),
                   report.peak.gflops);
        report.rows.push_back(row);
        std::snprintf(line, sizeof line, "%s %s x%d: %.2f ms", row.model.c_str(), row.variant.c_str(), row.replicas,
                      row.wall_ms);
        say(line);
      }
    }
  if (!cublas_problem.empty()) report.notes.push_back(std::string("cublas variant left out: ") + cublas_problem);
  return report;
}

}  // namespace underspec::benchmark
