// The CUDA backend against the CPU backend on the same replicas (skipped without a
// device): initial parameters bitwise, trained perceptrons within 1e-4, MLPs and all
// RMSEs within 1e-3 relative, for every variant; chunk-size independence; 1 and 10,000
// replicas; hidden widths 16 to 128 and ragged shapes; batches not dividing the data;
// grids of cells with stress domains; launch groups trained at the same time; two backends
// on one device (the multi-GPU path); the sink and the stop flag.
#include <cuda_runtime.h>

#include <atomic>
#include <memory>
#include <span>
#include <vector>

#include "gpu_test_support.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/backends/multi_backend.hpp"

namespace underspec {
namespace {

using cuda_plan::TrainVariant;
using gpu_test::expect_matches_cpu;
using gpu_test::run_cpu;
using gpu_test::run_cuda;

constexpr TrainVariant kVariants[] = {TrainVariant::fused, TrainVariant::cublas};

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
    const auto gpu = run_cuda(sweep, sweep.replicas, v);
    for (std::size_t k = 0; k < gpu.size(); ++k)
      EXPECT_EQ(gpu[k].params, initial_params(net_shape(c, sweep.replicas[k].model), sweep.replicas[k].seed));
  }
}

TEST(GpuBackend, SeedGridMatchesCpuForEachVariant) {
  UNDERSPEC_REQUIRE_GPU();
  const ExperimentConfig c = quick_config();
  const Sweep sweep = make_sweep(c);
  const auto cpu = run_cpu(sweep, sweep.replicas);
  for (TrainVariant v : kVariants) {
    SCOPED_TRACE(cuda_plan::to_string(v));
    expect_matches_cpu(sweep.replicas, run_cuda(sweep, sweep.replicas, v), cpu, v);
  }
}

TEST(GpuBackend, PerReplicaDataAndFullSeedExperiment) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c;
  c.data.per_replica = true;
  c.sweep.seeds = 3;
  c.train.epochs = 3;
  const Sweep sweep = make_sweep(c);
  expect_matches_cpu(sweep.replicas, run_cuda(sweep, sweep.replicas, TrainVariant::fused),
                     run_cpu(sweep, sweep.replicas), TrainVariant::fused);
  const ExperimentConfig seed;  // the 60-replica default, 30 epochs
  const Sweep full = make_sweep(seed);
  expect_matches_cpu(full.replicas, run_cuda(full, full.replicas, TrainVariant::fused), run_cpu(full, full.replicas),
                     TrainVariant::fused);
}

TEST(GpuBackend, ResultsDoNotDependOnChunkSizeOrOrder) {
  UNDERSPEC_REQUIRE_GPU();
  const ExperimentConfig c = quick_config();
  const Sweep sweep = make_sweep(c);
  for (TrainVariant v : kVariants) {
    const auto whole = run_cuda(sweep, sweep.replicas, v);
    for (std::size_t chunk : {1, 3, 5}) {
      const auto chunked = run_cuda(sweep, sweep.replicas, v, chunk);
      for (std::size_t k = 0; k < whole.size(); ++k) {
        EXPECT_EQ(chunked[k].params, whole[k].params) << cuda_plan::to_string(v) << " chunk " << chunk;
        EXPECT_EQ(chunked[k].iid_rmse, whole[k].iid_rmse);
      }
    }
    std::vector<ReplicaSpec> reversed(sweep.replicas.rbegin(), sweep.replicas.rend());
    const auto back = run_cuda(sweep, reversed, v);
    for (std::size_t k = 0; k < whole.size(); ++k) EXPECT_EQ(back[whole.size() - 1 - k].params, whole[k].params);
  }
}

// Launch groups trained at the same time (their own threads and streams, stream-ordered
// buffers) give the bits of groups trained one after another, and every replica reaches the
// sink exactly once. Three shapes (perceptron, two MLP widths) and, with cuBLAS, one group
// per cell: more groups than workers.
TEST(GpuBackend, ConcurrentGroupsGiveTheBitsOfOneAtATime) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.sweep.grid = {GridAxis{"model.mlp.hidden", {"[16, 16]", "[64, 64]"}}, GridAxis{"data.seed", {"0", "3"}}};
  const Sweep sweep = make_sweep(c);
  for (TrainVariant v : kVariants) {
    SCOPED_TRACE(cuda_plan::to_string(v));
    ASSERT_GE(cuda_plan::launch_groups(sweep, sweep.replicas, v).size(), 3u);
    cuda_plan::CudaBackendOptions serial = gpu_test::options_of(v, 3);
    serial.concurrent_groups = 1;
    const auto one_at_a_time = make_cuda_backend(serial)->train_replicas(sweep, sweep.replicas);
    cuda_plan::CudaBackendOptions concurrent = gpu_test::options_of(v, 3);
    concurrent.concurrent_groups = cuda_plan::kMaxConcurrentGroups;
    std::vector<int> heard(sweep.replicas.size(), 0);
    std::vector<ReplicaResult> together(sweep.replicas.size());
    make_cuda_backend(concurrent)->train(sweep, sweep.replicas, [&](std::span<const ReplicaResult> done) {
      for (const ReplicaResult& r : done) {
        ++heard.at(r.id);
        together.at(r.id) = r;
      }
    });
    std::size_t differing = 0;
    for (std::size_t k = 0; k < sweep.replicas.size(); ++k) {
      EXPECT_EQ(heard[sweep.replicas[k].id], 1) << "replica " << sweep.replicas[k].id;
      const ReplicaResult& a = one_at_a_time[k];
      const ReplicaResult& b = together[a.id];
      differing += a.params != b.params || a.iid_rmse != b.iid_rmse || a.ood_rmse != b.ood_rmse;
    }
    EXPECT_EQ(differing, 0u);
    if (v == TrainVariant::fused) expect_matches_cpu(sweep.replicas, one_at_a_time, run_cpu(sweep, sweep.replicas), v);
  }
}

// The kernels told that their operands are in shared memory (the seed shapes' layouts) give
// the bits of the generic ones, for training and evaluation, perceptrons and MLPs.
TEST(GpuBackend, SharedOperandKernelsGiveTheBitsOfGenericOnes) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.data.stress_factors = {0.05};
  const Sweep sweep = make_sweep(c);
  cuda_plan::CudaBackendOptions generic = gpu_test::options_of(TrainVariant::fused);
  generic.shared_operands = false;
  const auto plain = make_cuda_backend(generic)->train_replicas(sweep, sweep.replicas);
  const auto shared = run_cuda(sweep, sweep.replicas, TrainVariant::fused);
  std::size_t differing = 0;
  for (std::size_t k = 0; k < plain.size(); ++k)
    differing += plain[k].params != shared[k].params || plain[k].iid_rmse != shared[k].iid_rmse ||
                 plain[k].ood_rmse != shared[k].ood_rmse || plain[k].stress_rmse != shared[k].stress_rmse;
  EXPECT_EQ(differing, 0u);
}

// cuBLAS products run in fixed slices of replicas: chunks that split a slice, span several
// or end inside one give the same bits.
TEST(GpuBackend, CublasResultsDoNotDependOnChunksAcrossSlices) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.sweep.models = {ModelKind::mlp};
  c.sweep.regimes = {Regime::augmentation};
  c.sweep.seeds = 600;
  const Sweep sweep = make_sweep(c);
  const auto whole = run_cuda(sweep, sweep.replicas, TrainVariant::cublas);
  for (std::size_t chunk : {255, 257, 599}) {
    const auto chunked = run_cuda(sweep, sweep.replicas, TrainVariant::cublas, chunk);
    std::size_t differing = 0;
    for (std::size_t k = 0; k < whole.size(); ++k) differing += chunked[k].params != whole[k].params;
    EXPECT_EQ(differing, 0u) << "chunk " << chunk;
  }
}

TEST(GpuBackend, HiddenWidthsAndRaggedShapesWithRaggedBatches) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.data.n_train = 700;
  c.train.batch_size = 48;  // 700 = 14 * 48 + 28
  c.sweep.models = {ModelKind::mlp};
  c.sweep.regimes = {Regime::augmentation};
  for (std::vector<int> hidden : {std::vector<int>{16, 16}, {32, 32}, {64, 64}, {128, 128}, {48, 48}, {40, 24, 8}}) {
    c.mlp.hidden = hidden;
    const Sweep sweep = make_sweep(c);
    const auto cpu = run_cpu(sweep, sweep.replicas);
    for (TrainVariant v : kVariants) {
      SCOPED_TRACE(std::string(cuda_plan::to_string(v)) + " width " + std::to_string(hidden[0]));
      expect_matches_cpu(sweep.replicas, run_cuda(sweep, sweep.replicas, v), cpu, v);
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
  expect_matches_cpu(one.replicas, run_cuda(one, one.replicas, TrainVariant::fused), run_cpu(one, one.replicas),
                     TrainVariant::fused);
  c.sweep.seeds = 5000;  // x 2 models = 10,000 replicas
  const Sweep many = make_sweep(c);
  for (TrainVariant v : kVariants) {
    const auto gpu = run_cuda(many, many.replicas, v);
    ASSERT_EQ(gpu.size(), 10000u);
    std::vector<ReplicaSpec> sample;
    std::vector<ReplicaResult> gpu_sample;
    for (std::size_t k = 0; k < many.replicas.size(); k += 997) {
      sample.push_back(many.replicas[k]);
      gpu_sample.push_back(gpu[k]);
    }
    expect_matches_cpu(sample, gpu_sample, run_cpu(many, sample), v);
  }
}

// Two cells (train.lr) with three stress domains (odd: the last evaluation launch repeats
// a domain): same ids, parameters and IID/OOD/stress RMSEs as the CPU, for every variant.
TEST(GpuBackend, TwoCellGridWithStressFactorsMatchesCpu) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.data.stress_factors = {0.05, 0.5, 1.0};
  c.sweep.grid = {GridAxis{"train.lr", {"0.001", "0.003"}}};
  const Sweep sweep = make_sweep(c);
  ASSERT_EQ(sweep.cells.size(), 2u);
  const auto cpu = run_cpu(sweep, sweep.replicas);
  for (TrainVariant v : kVariants) {
    SCOPED_TRACE(cuda_plan::to_string(v));
    const auto gpu = run_cuda(sweep, sweep.replicas, v);
    ASSERT_EQ(gpu.size(), sweep.replicas.size());
    for (std::size_t k = 0; k < gpu.size(); ++k) {
      ASSERT_EQ(gpu[k].id, sweep.replicas[k].id);
      ASSERT_EQ(gpu[k].stress_rmse.size(), 3u);
    }
    expect_matches_cpu(sweep.replicas, gpu, cpu, v);
    const std::size_t half = gpu.size() / 2;  // the same replica spec in the other cell
    EXPECT_NE(gpu[0].params, gpu[half].params);
  }
}

// Cells that differ in their data (n_train, data seed) and in the MLP shape, one stress
// domain, replicas of both cells interleaved and per-replica data in one of the calls.
TEST(GpuBackend, CellsWithDifferentDataAndShapesMatchCpu) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.data.stress_factors = {0.05};
  c.sweep.grid = {GridAxis{"data.seed", {"0", "7"}}, GridAxis{"model.mlp.hidden", {"[16, 16]", "[48, 20]"}}};
  for (bool per_replica : {false, true}) {
    c.data.per_replica = per_replica;
    const Sweep sweep = make_sweep(c);
    ASSERT_EQ(sweep.cells.size(), 4u);
    std::vector<ReplicaSpec> interleaved;
    const std::size_t quarter = sweep.replicas.size() / 4;
    for (std::size_t k = 0; k < quarter; ++k)
      for (std::size_t cell = 0; cell < 4; ++cell) interleaved.push_back(sweep.replicas[cell * quarter + k]);
    expect_matches_cpu(interleaved, run_cuda(sweep, interleaved, TrainVariant::fused, 5), run_cpu(sweep, interleaved),
                       TrainVariant::fused);
  }
}

// Cells that differ only in training settings (batch size, epochs, augmentation) share
// fused launches: each replica reads its own cell's TrainRun; the results match the CPU.
TEST(GpuBackend, CellsWithDifferentTrainingSettingsShareLaunchesAndMatchCpu) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.sweep.grid = {GridAxis{"regime.augmentation.noise_std", {"1.0", "10.0"}},
                  GridAxis{"train.batch_size", {"32", "64"}}, GridAxis{"train.epochs", {"2", "3"}}};
  const Sweep sweep = make_sweep(c);
  ASSERT_EQ(sweep.cells.size(), 8u);
  EXPECT_EQ(cuda_plan::launch_groups(sweep, sweep.replicas, TrainVariant::fused).size(), 2u);
  expect_matches_cpu(sweep.replicas, run_cuda(sweep, sweep.replicas, TrainVariant::fused),
                     run_cpu(sweep, sweep.replicas), TrainVariant::fused);
}

// The sink sees every replica once, chunk by chunk; once *stop is set, no new chunk starts.
TEST(GpuBackend, SinkGetsChunksAndStopEndsEarly) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.sweep.models = {ModelKind::perceptron};
  const Sweep sweep = make_sweep(c);  // 3 regimes x 2 seeds
  auto backend = make_cuda_backend(gpu_test::options_of(TrainVariant::fused, 2));
  std::vector<std::size_t> batches;
  std::vector<std::uint32_t> ids;
  backend->train(sweep, sweep.replicas, [&](std::span<const ReplicaResult> done) {
    batches.push_back(done.size());
    for (const ReplicaResult& r : done) ids.push_back(r.id);
  });
  EXPECT_EQ(batches, (std::vector<std::size_t>{2, 2, 2}));
  EXPECT_EQ(ids, (std::vector<std::uint32_t>{0, 1, 2, 3, 4, 5}));

  std::atomic<bool> stop{false};
  std::size_t reported = 0;
  backend->train(
      sweep, sweep.replicas,
      [&](std::span<const ReplicaResult> done) {
        reported += done.size();
        stop = true;
      },
      &stop);
  EXPECT_EQ(reported, 2u);
}

// Several GPUs (--gpus 0,2) are one backend per device behind make_multi_backend, which
// deals chunks to a host thread each. Two backends on one device stand in for two GPUs, so
// a one-GPU machine runs that path: the bits of one backend, every replica reported once
// (train_replicas checks), for every variant.
TEST(GpuBackend, TwoBackendsOnOneDeviceGiveTheBitsOfOne) {
  UNDERSPEC_REQUIRE_GPU();
  ExperimentConfig c = quick_config();
  c.sweep.seeds = 5;  // 30 replicas, dealt in 8 chunks to the two backends
  const Sweep sweep = make_sweep(c);
  int device = 0;
  ASSERT_EQ(cudaGetDevice(&device), cudaSuccess);
  for (TrainVariant v : kVariants) {
    SCOPED_TRACE(cuda_plan::to_string(v));
    const auto one = run_cuda(sweep, sweep.replicas, v);
    std::vector<std::unique_ptr<Backend>> devices;
    for (int k = 0; k < 2; ++k) devices.push_back(make_cuda_device_backend(device, gpu_test::options_of(v)));
    const auto two = make_multi_backend(std::move(devices))->train_replicas(sweep, sweep.replicas);
    ASSERT_EQ(two.size(), one.size());
    std::size_t differing = 0;
    for (std::size_t k = 0; k < one.size(); ++k)
      differing += one[k].params != two[k].params || one[k].iid_rmse != two[k].iid_rmse ||
                   one[k].ood_rmse != two[k].ood_rmse || one[k].stress_rmse != two[k].stress_rmse;
    EXPECT_EQ(differing, 0u);
  }
}

// Device ordinals are checked against the devices present.
TEST(GpuBackend, BadDeviceOrdinalIsUnavailable) {
  UNDERSPEC_REQUIRE_GPU();
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  EXPECT_THROW(make_cuda_backend(std::vector<int>{count}), BackendUnavailable);
  EXPECT_THROW(make_cuda_backend(std::vector<int>{-1}), BackendUnavailable);
  EXPECT_THROW(make_cuda_device_backend(count, cuda_plan::CudaBackendOptions{}), BackendUnavailable);
  EXPECT_EQ(make_cuda_backend(std::vector<int>{count - 1})->name(), "cuda");
}

}  // namespace
}  // namespace underspec
