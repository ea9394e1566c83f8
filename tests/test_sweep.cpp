// The replica grid: order, ids, seeds, shapes and shards.
#include <gtest/gtest.h>

#include "underspec/run/plan.hpp"
#include "underspec/sweep/dataset.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {
namespace {

TEST(Sweep, GridIsModelThenRegimeThenSeed) {
  ExperimentConfig config;
  config.sweep.seeds = 3;
  config.sweep.seed = 100;
  const Sweep sweep = make_sweep(config);
  ASSERT_EQ(sweep.replicas.size(), 2u * 3u * 3u);
  for (std::uint32_t i = 0; i < sweep.replicas.size(); ++i) EXPECT_EQ(sweep.replicas[i].id, i);
  EXPECT_EQ(sweep.replicas[0].model, ModelKind::perceptron);
  EXPECT_EQ(sweep.replicas[3].regime, Regime::domain_randomization);
  EXPECT_EQ(sweep.replicas[9].model, ModelKind::mlp);
  EXPECT_EQ(sweep.replicas[4].seed_index, 1u);
  EXPECT_EQ(sweep.replicas[4].seed, 101u);
}

TEST(Sweep, ShardsCoverEveryReplicaOnceAndAreBalanced) {
  for (std::uint32_t n : {0u, 1u, 7u, 60u, 1001u})
    for (std::uint32_t count : {1u, 2u, 3u, 8u}) {
      std::uint32_t next = 0;
      for (std::uint32_t k = 0; k < count; ++k) {
        const ShardRange r = shard_range(n, k, count);
        EXPECT_EQ(r.begin, next);
        EXPECT_LE(r.end - r.begin, n / count + 1);
        next = r.end;
      }
      EXPECT_EQ(next, n);
    }
  EXPECT_THROW(shard_range(10, 3, 3), std::invalid_argument);
}

// A shard holds the results of its own replicas only: its memory estimate (which run checks
// against what is available) must not be the whole sweep's, or large sweeps could not be split.
TEST(Sweep, HostMemoryEstimateOfAShardIsItsOwn) {
  ExperimentConfig config;
  config.sweep.seeds = 300000;  // 1.8M replicas
  const std::vector<Cell> cells = make_cells(config);
  const double whole = estimate_host_memory(config, cells, 1, false).bytes;
  const double shard = estimate_host_memory(config, cells, 1, false, 1800).bytes;
  EXPECT_GT(whole, 1e9);  // 1.8M x 640 B
  EXPECT_LT(shard, 0.15 * whole);
  EXPECT_GT(shard, 1.8e6 * static_cast<double>(sizeof(ReplicaSpec)));  // the replica list is whole
  EXPECT_EQ(estimate_host_memory(config, cells, 1, false, 1800000).bytes, whole);
}

// Datasets are made per cell of the replicas trained: a shard of a 300,000-cell grid counts
// the few cells it touches, not every cell's data (22.5 GiB for shard 0/1000 before).
TEST(Sweep, HostMemoryEstimateOfAShardCountsItsCellsData) {
  ExperimentConfig config;
  config.sweep.seeds = 1;
  config.sweep.models = {ModelKind::perceptron};
  config.data.n_train = config.data.n_test = 1000;
  GridAxis lr{"train.lr", {}}, seed{"data.seed", {}};
  for (int i = 0; i < 300; ++i) lr.values.push_back(std::to_string(1e-4 * (i + 1)));
  for (int i = 0; i < 100; ++i) seed.values.push_back(std::to_string(i));
  config.sweep.grid = {seed, lr};  // sorted by key
  const std::vector<Cell> cells = make_cells(config);
  ASSERT_EQ(cells.size(), 30000u);  // 90,000 replicas
  const double cell_data = 16.0 * (1000.0 * 2 + 1000.0 * 3);
  const double whole = estimate_host_memory(config, cells, 1, false).bytes;
  const double shard = estimate_host_memory(config, cells, 1, false, 90).bytes;  // 30 cells' replicas
  EXPECT_GT(whole, 30000 * cell_data);
  EXPECT_LT(shard, whole - 29000 * cell_data);
  EXPECT_GE(shard, 31 * cell_data);  // the cells it may touch are counted
}

// Each thread trains one replica at a time with its own workspace: for a wide MLP that is
// parameters, gradients, two moments, the width^2 transposed weights and two copies of the
// result's parameters (~30 MB at [1024, 1024]), so the estimate grows by that per thread.
TEST(Sweep, HostMemoryEstimateCountsEachThreadsWorkspace) {
  ExperimentConfig config;
  config.sweep.seeds = 16;
  config.sweep.models = {ModelKind::mlp};
  config.mlp.hidden = {1024, 1024};
  const std::vector<Cell> cells = make_cells(config);
  const double params = param_count(net_shape(config, ModelKind::mlp));
  const double per_thread = 4.0 * (6.0 * params + 1024.0 * 1024.0);
  const double one = estimate_host_memory(config, cells, 1, false).bytes;
  const double two = estimate_host_memory(config, cells, 2, false).bytes;
  const double eight = estimate_host_memory(config, cells, 8, false).bytes;
  EXPECT_GE(two - one, per_thread);
  EXPECT_LT(two - one, 1.2 * per_thread);  // the rest is the batch's activations
  EXPECT_DOUBLE_EQ(eight - one, 7 * (two - one));
}

// The CPU computes Adam's per-step scalars as it trains: a training's memory does not grow
// with its epochs (2^31 - 1 epochs planned 4.9 TiB and were refused). CUDA's kernels read a
// table of the whole training, so there it does.
TEST(Sweep, HostMemoryEstimateOnTheCpuDoesNotGrowWithEpochs) {
  ExperimentConfig config;
  const std::vector<Cell> cells = make_cells(config);
  const double short_run = estimate_host_memory(config, cells, 2, false).bytes;
  config.train.epochs = 2147483647;
  const std::vector<Cell> long_cells = make_cells(config);
  EXPECT_EQ(estimate_host_memory(config, long_cells, 2, false).bytes, short_run);
  EXPECT_GT(estimate_host_memory(config, long_cells, 2, false, 0, true).bytes, 1e12);
}

TEST(Sweep, NetShapes) {
  ExperimentConfig config;
  const NetShape p = net_shape(config, ModelKind::perceptron);
  EXPECT_EQ(p.n_layers, 1);
  EXPECT_EQ(param_count(p), 4);
  const NetShape m = net_shape(config, ModelKind::mlp);
  EXPECT_EQ(m.n_layers, 3);
  EXPECT_EQ(param_count(m), 3 * 64 + 64 + 64 * 64 + 64 + 64 + 1);
  EXPECT_EQ(bias_offset(m, 1), 3 * 64);
  EXPECT_EQ(weight_offset(m, 2), 4 * 64);
}

// The order of a replica's scores: IID, OOD, then the stress factors on the OOD samples.
TEST(Sweep, TestDomainsAreIidOodThenStress) {
  ExperimentConfig config;
  config.data.stress_factors = {0.05, 0.5};
  const std::vector<TestDomain> d = test_domains(config);
  ASSERT_EQ(d.size(), 4u);
  EXPECT_EQ(d[0].set, DatasetId::iid_test);
  EXPECT_EQ(d[0].factor, 0.2f);
  EXPECT_EQ(d[1].set, DatasetId::ood_test);
  EXPECT_EQ(d[1].factor, 0.1f);
  EXPECT_EQ(d[2].set, DatasetId::ood_test);
  EXPECT_EQ(d[2].factor, 0.05f);
  EXPECT_EQ(d[3].factor, 0.5f);
}

}  // namespace
}  // namespace underspec
