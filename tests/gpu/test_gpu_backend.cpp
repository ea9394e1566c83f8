// The CUDA backend against the CPU backend on the same replicas (skipped without a
// device): initial parameters bitwise, trained perceptrons within 1e-4, MLPs and all
// RMSEs within 1e-3 relative, for every variant; chunk-size independence; 1 and 10,000
// replicas; every compiled width and a non-compiled one; batches not dividing the data.
#include "gpu_test_support.hpp"
#include "underspec/backends/cpu_trainer.hpp"

namespace underspec {
namespace {

using cuda_plan::TrainVariant;
using gpu_test::expect_close;
using gpu_test::run_cpu;
using gpu_test::run_cuda;

constexpr TrainVariant kVariants[] = {TrainVariant::fused, TrainVariant::fused_generic, TrainVariant::cublas};

ExperimentConfig quick_config() {
  ExperimentConfig c;
  c.data.n_train = 1000;
  c.data.n_test = 1000;
  c.train.epochs = 4;
  c.train.step_size = 2;
  c.sweep.seeds = 2;
  return c;
}

TEST(GpuBackend, InitialParametersAreIdentical) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.train.epochs = 0;
  const Sweep sweep = make_sweep(c);
  for (TrainVariant v : kVariants) {
    const auto gpu = run_cuda(c, sweep.replicas, v);
    for (std::size_t k = 0; k < gpu.size(); ++k)
      EXPECT_EQ(gpu[k].params, initial_params(net_shape(c, sweep.replicas[k].model), sweep.replicas[k].seed));
  }
}

TEST(GpuBackend, SeedGridMatchesCpuForEachVariant) {
  UNDERSPEC_REQUIRE_GPU();
  const ExperimentConfig c = quick_config();
  const Sweep sweep = make_sweep(c);
  const auto cpu = run_cpu(c, sweep.replicas);
  for (TrainVariant v : kVariants) {
    SCOPED_TRACE(cuda_plan::to_string(v));
    const auto gpu = run_cuda(c, sweep.replicas, v);
    for (std::size_t k = 0; k < gpu.size(); ++k) {
      const bool perceptron = sweep.replicas[k].model == ModelKind::perceptron;
      expect_close({gpu[k]}, {cpu[k]}, perceptron ? 1e-4 : 1e-3, 1e-3);
    }
  }
}

TEST(GpuBackend, PerReplicaDataAndFullSeedExperiment) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c;
  c.data.per_replica = true;
  c.sweep.seeds = 3;
  c.train.epochs = 3;
  const Sweep sweep = make_sweep(c);
  expect_close(run_cuda(c, sweep.replicas, TrainVariant::fused), run_cpu(c, sweep.replicas), 1e-3, 1e-3);
  const ExperimentConfig seed;  // the 60-replica default, 30 epochs
  const Sweep full = make_sweep(seed);
  expect_close(run_cuda(seed, full.replicas, TrainVariant::fused), run_cpu(seed, full.replicas), 1e-3, 1e-3);
}

TEST(GpuBackend, ResultsDoNotDependOnChunkSizeOrOrder) {
  UNDERSPEC_REQUIRE_GPU();
  const ExperimentConfig c = quick_config();
  const Sweep sweep = make_sweep(c);
  for (TrainVariant v : kVariants) {
    const auto whole = run_cuda(c, sweep.replicas, v);
    for (std::size_t chunk : {1, 3, 5}) {
      const auto chunked = run_cuda(c, sweep.replicas, v, chunk);
      for (std::size_t k = 0; k < whole.size(); ++k) {
        EXPECT_EQ(chunked[k].params, whole[k].params) << cuda_plan::to_string(v) << " chunk " << chunk;
        EXPECT_EQ(chunked[k].iid_rmse, whole[k].iid_rmse);
      }
    }
    std::vector<ReplicaSpec> reversed(sweep.replicas.rbegin(), sweep.replicas.rend());
    const auto back = run_cuda(c, reversed, v);
    for (std::size_t k = 0; k < whole.size(); ++k) EXPECT_EQ(back[whole.size() - 1 - k].params, whole[k].params);
  }
}

TEST(GpuBackend, EveryCompiledWidthAndAnOtherOneWithRaggedBatches) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.data.n_train = 700;
  c.train.batch_size = 48;  // 700 = 14 * 48 + 28
  c.sweep.models = {ModelKind::mlp};
  c.sweep.regimes = {Regime::augmentation};
  for (std::vector<int> hidden : {std::vector<int>{16, 16}, {32, 32}, {64, 64}, {128, 128}, {48, 48}, {40, 24, 8}}) {
    c.mlp.hidden = hidden;
    const Sweep sweep = make_sweep(c);
    const auto cpu = run_cpu(c, sweep.replicas);
    for (TrainVariant v : kVariants) {
      SCOPED_TRACE(std::string(cuda_plan::to_string(v)) + " width " + std::to_string(hidden[0]));
      expect_close(run_cuda(c, sweep.replicas, v), cpu, 1e-3, 1e-3);
    }
  }
}

TEST(GpuBackend, OneAndTenThousandReplicas) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c;
  c.data.n_train = 256;
  c.data.n_test = 256;
  c.train.epochs = 1;
  c.mlp.hidden = {16, 16};
  c.sweep.regimes = {Regime::augmentation};
  c.sweep.seeds = 1;
  Sweep one = make_sweep(c);
  expect_close(run_cuda(c, one.replicas, TrainVariant::fused), run_cpu(c, one.replicas), 1e-3, 1e-3);
  c.sweep.seeds = 5000;  // x 2 models = 10,000 replicas
  const Sweep many = make_sweep(c);
  for (TrainVariant v : kVariants) {
    const auto gpu = run_cuda(c, many.replicas, v);
    ASSERT_EQ(gpu.size(), 10000u);
    std::vector<ReplicaSpec> sample;
    std::vector<ReplicaResult> gpu_sample;
    for (std::size_t k = 0; k < many.replicas.size(); k += 997) {
      sample.push_back(many.replicas[k]);
      gpu_sample.push_back(gpu[k]);
    }
    expect_close(gpu_sample, run_cpu(c, sample), 1e-3, 1e-3);
  }
}

}  // namespace
}  // namespace underspec
