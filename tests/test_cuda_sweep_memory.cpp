// The CUDA backend's device-memory plan of a whole run, without a GPU: datasets counted
// once per distinct generation key (as the device cache keeps them), each launch group's
// tables and chunks, the same test the chunk planner makes, and the refusal's message.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "underspec/backends/cuda_sweep_memory.hpp"

namespace underspec::cuda_plan {
namespace {

// H200: 227 KiB per block opt-in, 228 KiB per SM, two fused MLP CTAs per SM.
const SharedLimits kH200{232448, fused_shared_budget(232448, 233472, 2)};
constexpr int kHopper = 9;

SweepDeviceMemory plan_of(const Sweep& sweep, TrainVariant variant = TrainVariant::fused) {
  return plan_sweep_device_memory(sweep, sweep.replicas, variant, kH200, kHopper);
}

ExperimentConfig small_config() {
  ExperimentConfig c;
  c.sweep.seeds = 3;
  c.data.n_train = 1000;
  c.data.n_test = 2000;
  return c;
}

// Baseline and augmentation train on the same samples (the training factor), domain
// randomization on its own; IID and OOD test sets; a grid over the learning rate changes
// no dataset, so two cells hold what one does.
TEST(CudaSweepMemory, DatasetsAreCountedOncePerGenerationKey) {
  ExperimentConfig c = small_config();
  const SweepDeviceMemory one = plan_of(make_sweep(c));
  EXPECT_EQ(one.test_bytes, 2 * 2000u * 16);
  EXPECT_EQ(one.train_bytes, 2 * 1000u * 16);
  c.sweep.grid = {GridAxis{"train.lr", {"0.001", "0.003"}}};
  const SweepDeviceMemory lr_grid = plan_of(make_sweep(c));
  EXPECT_EQ(lr_grid.test_bytes, one.test_bytes);
  EXPECT_EQ(lr_grid.train_bytes, one.train_bytes);
  // A grid over n_test makes new test sets (and only those).
  c.sweep.grid = {GridAxis{"data.n_test", {"2000", "3000"}}};
  const SweepDeviceMemory n_test_grid = plan_of(make_sweep(c));
  EXPECT_EQ(n_test_grid.test_bytes, 2 * (2000u + 3000u) * 16);
  EXPECT_EQ(n_test_grid.train_bytes, one.train_bytes);
}

// A stress factor equal to the OOD factor reads the OOD set itself; another is a new set.
TEST(CudaSweepMemory, StressFactorsAddATestSetEachUnlessOneIsTheOodSet) {
  ExperimentConfig c = small_config();
  c.data.stress_factors = {c.data.ood_factor, 0.5};
  EXPECT_EQ(plan_of(make_sweep(c)).test_bytes, 3 * 2000u * 16);
}

// Only the regimes a run's replicas use are generated (a shard may hold one regime).
TEST(CudaSweepMemory, OnlyTheReplicasDatasetsAreCounted) {
  const Sweep sweep = make_sweep(small_config());
  std::vector<ReplicaSpec> randomized;
  for (const ReplicaSpec& r : sweep.replicas)
    if (r.regime == Regime::domain_randomization) randomized.push_back(r);
  const SweepDeviceMemory plan = plan_sweep_device_memory(sweep, randomized, TrainVariant::fused, kH200, kHopper);
  EXPECT_EQ(plan.train_bytes, 1000u * 16);
  EXPECT_TRUE(plan_sweep_device_memory(sweep, {}, TrainVariant::fused, kH200, kHopper).groups.empty());
}

// Replicas with their own training sets bring them in every chunk: no shared training set,
// and the group's per-replica bytes hold one.
TEST(CudaSweepMemory, PerReplicaDataIsPerReplicaBytes) {
  ExperimentConfig c = small_config();
  c.data.per_replica = true;
  const Sweep sweep = make_sweep(c);
  const SweepDeviceMemory plan = plan_of(sweep);
  EXPECT_EQ(plan.train_bytes, 0u);
  ASSERT_EQ(plan.groups.size(), 2u);  // the perceptrons, the MLPs
  for (const GroupNeed& g : plan.groups) {
    EXPECT_EQ(g.own_data_bytes, 1000u * 16);
    EXPECT_GE(g.chunk.per_replica_bytes, g.own_data_bytes);
  }
}

// Each group holds its cells' Adam tables (a row per step) and TrainRuns while it trains.
TEST(CudaSweepMemory, GroupsHoldTheirCellsAdamTables) {
  ExperimentConfig c = small_config();
  c.sweep.grid = {GridAxis{"train.epochs", {"5", "10"}}};
  const Sweep sweep = make_sweep(c);
  const SweepDeviceMemory plan = plan_of(sweep);
  ASSERT_EQ(plan.groups.size(), 2u);
  const std::size_t tables =
      (replica_steps(sweep.cells[0].config) + replica_steps(sweep.cells[1].config)) * sizeof(AdamStep) +
      2 * sizeof(TrainRun);
  for (const GroupNeed& g : plan.groups) {
    EXPECT_EQ(g.table_bytes, tables);
    EXPECT_EQ(g.replicas, 2u * 3 * 3);  // 2 cells x 3 regimes x 3 seeds
  }
  EXPECT_EQ(plan.groups[0].name.find("2 cells, 18 replicas") != std::string::npos ||
                plan.groups[1].name.find("2 cells, 18 replicas") != std::string::npos,
            true);
}

// The cuBLAS variant steps each cell's MLPs alone: one group per cell, each with one table.
TEST(CudaSweepMemory, CublasGroupsAreOneCellEach) {
  ExperimentConfig c = small_config();
  c.sweep.grid = {GridAxis{"train.lr", {"0.001", "0.003"}}};
  const Sweep sweep = make_sweep(c);
  const SweepDeviceMemory plan = plan_of(sweep, TrainVariant::cublas);
  ASSERT_EQ(plan.groups.size(), 3u);  // MLPs of cell 0, the perceptrons, MLPs of cell 1
  std::size_t cublas_groups = 0;
  for (const GroupNeed& g : plan.groups)
    if (g.name.rfind("3-64-64-1 (1 cell, 9 replicas)", 0) == 0) {
      ++cublas_groups;
      EXPECT_GE(g.chunk.fixed_bytes, cublas_workspace_bytes(kHopper));
    }
  EXPECT_EQ(cublas_groups, 2u);
}

// needed() is the chunk planner's own test: with exactly that much free, every group plans
// a chunk (plan_chunk_replicas, given its share of what is free once the datasets and the
// group's tables are in place); with a few bytes less, some group cannot.
TEST(CudaSweepMemory, NeededIsWhatTheChunkPlannerAccepts) {
  ExperimentConfig c = small_config();
  c.data.stress_factors = {0.5, 1.0};
  c.sweep.grid = {GridAxis{"model.mlp.hidden", {"[64, 64]", "[128, 128]"}}};
  const SweepDeviceMemory plan = plan_of(make_sweep(c));
  ASSERT_EQ(plan.groups.size(), 3u);
  for (int workers : {1, 3}) {
    const auto planned = [&](std::size_t free) {
      int refused = 0;
      for (const GroupNeed& g : plan.groups) {
        const std::size_t share = (free - plan.dataset_total() - g.table_bytes) / static_cast<std::size_t>(workers);
        try {
          EXPECT_GE(plan_chunk_replicas(g.replicas, g.chunk, share, 0.5, 0), 1u);
        } catch (const std::runtime_error&) {
          ++refused;
        }
      }
      return refused;
    };
    EXPECT_EQ(planned(plan.needed(workers, 0.5)), 0) << workers;
    EXPECT_GE(planned(plan.needed(workers, 0.5) - static_cast<std::size_t>(workers) - 2), 1) << workers;
  }
  EXPECT_GT(plan.needed(3, 0.5), plan.needed(1, 0.5));
}

TEST(CudaSweepMemory, GroupsThatFitShrinkWithTheFreeMemory) {
  const SweepDeviceMemory plan = plan_of(make_sweep(small_config()));
  EXPECT_EQ(groups_that_fit(plan, plan.needed(4, 0.5), 0.5, 4), 4);
  EXPECT_EQ(groups_that_fit(plan, plan.needed(4, 0.5) - 1, 0.5, 4), 3);
  EXPECT_EQ(groups_that_fit(plan, plan.needed(2, 0.5), 0.5, 4), 2);
  EXPECT_EQ(groups_that_fit(plan, plan.needed(1, 0.5), 0.5, 4), 1);
  EXPECT_EQ(groups_that_fit(plan, plan.needed(1, 0.5) - 1, 0.5, 4), 0);
  EXPECT_EQ(groups_that_fit(plan, std::size_t{1} << 40, 0.5, 2), 2);  // never more than asked
}

// The refusal names the need, what it is made of, the device and its free memory, and the
// key that weighs most.
TEST(CudaSweepMemory, ShortfallNamesTheNeedTheDeviceAndTheKey) {
  ExperimentConfig c = small_config();
  c.data.n_test = 100000000;  // 1.5 GiB a test set
  std::string message = device_memory_shortfall(plan_of(make_sweep(c)), std::size_t{1} << 30, 0.5, "GPU 0 (Test)");
  EXPECT_NE(message.find("the sweep needs at least 3.0 GiB of free GPU memory (3.0 GiB of datasets"), std::string::npos)
      << message;
  EXPECT_NE(message.find("but GPU 0 (Test) has 1.0 GiB free; reduce data.n_test"), std::string::npos) << message;

  c = small_config();
  c.train.epochs = 20000000;  // 4 steps an epoch: 80M rows of Adam table
  message = device_memory_shortfall(plan_of(make_sweep(c)), std::size_t{1} << 30, 0.5, "GPU 1 (Test)");
  EXPECT_NE(message.find("reduce train.epochs"), std::string::npos) << message;

  c = small_config();
  c.data.per_replica = true;
  c.data.n_train = 100000000;
  message = device_memory_shortfall(plan_of(make_sweep(c)), std::size_t{1} << 30, 0.5, "GPU 0 (Test)");
  EXPECT_NE(message.find("reduce data.n_train"), std::string::npos) << message;

  c = small_config();
  c.mlp.hidden = {4096, 4096};
  c.train.batch_size = 4096;
  message = device_memory_shortfall(plan_of(make_sweep(c)), std::size_t{1} << 20, 0.5, "GPU 0 (Test)");
  EXPECT_NE(message.find("reduce train.batch_size or model.mlp.hidden"), std::string::npos) << message;
}

TEST(CudaSweepMemory, DryRunLinesGiveTheNeedAndTheChunk) {
  const SweepDeviceMemory plan = plan_of(make_sweep(small_config()));
  const std::string without = describe_device_memory(plan, 0, 0.5, "an sm_90 GPU");
  EXPECT_EQ(without.rfind("  GPU memory   at least ", 0), 0u) << without;
  EXPECT_NE(without.find(" of datasets, "), std::string::npos) << without;
  EXPECT_NE(without.find(",\n               then up to "), std::string::npos) << without;
  EXPECT_EQ(without.find("sm_90"), std::string::npos) << without;  // no device line without free memory
  const std::string with = describe_device_memory(plan, std::size_t{80} << 30, 0.5, "GPU 0 (NVIDIA H200)");
  EXPECT_NE(with.find("GPU 0 (NVIDIA H200): 80.0 GiB free: room for 9 replicas of 3-64-64-1"), std::string::npos)
      << with;
  const std::string tight = describe_device_memory(plan, plan.needed(1, 0.5) - 1, 0.5, "GPU 0 (Test)");
  EXPECT_NE(tight.find("it does not fit"), std::string::npos) << tight;
}

TEST(CudaSweepMemory, ShapeNames) {
  ExperimentConfig c;
  c.mlp.hidden = {32, 16};
  EXPECT_EQ(shape_name(net_shape(c, ModelKind::mlp)), "3-32-16-1");
  EXPECT_EQ(shape_name(net_shape(c, ModelKind::perceptron)), "3-1");
}

}  // namespace
}  // namespace underspec::cuda_plan
