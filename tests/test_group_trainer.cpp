// The fused GPU trainer's exact work split and phase order, run on the CPU with HostGroup:
// every rank of every phase in turn. The CUDA kernels execute these same US_HD functions
// per thread (CtaGroup / WarpGroup), so these tests pin down the arithmetic the GPU does
// (the GPU itself has not been available to run them).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <tuple>
#include <type_traits>
#include <vector>

#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/backends/cuda_plan.hpp"
#include "underspec/core/group_trainer.hpp"
#include "underspec/core/perceptron_lane.hpp"
#include "underspec/sweep/dataset.hpp"

namespace underspec {
namespace {

ExperimentConfig small_config(int n_train, int batch, int epochs) {
  ExperimentConfig c;
  c.data.n_train = n_train;
  c.data.n_test = 333;
  c.train.batch_size = batch;
  c.train.epochs = epochs;
  c.train.step_size = 2;
  return c;
}

// Trains with the group trainer; `shared_limit` decides which regions the layout puts in
// the "shared" array (placement must not matter). The layout holds batches of
// `batch_capacity` rows (0: the config's batch size).
std::vector<float> group_trained(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& r,
                                 const Dataset& train, int group_size, std::size_t shared_limit, unsigned order = 0,
                                 int batch_capacity = 0) {
  const cuda_plan::FusedLayout layout = cuda_plan::plan_fused_layout(
      shape, batch_capacity > 0 ? batch_capacity : config.train.batch_size, group_size, shared_limit);
  std::vector<float> shared(layout.shared_floats + 1), global(layout.global_floats + 1);
  const ReplicaState st = cuda_plan::replica_state(layout, shape, shared.data(), global.data());
  const std::vector<AdamStep> table =
      cuda_plan::make_adam_table(config.train, static_cast<std::uint32_t>(config.data.n_train));
  const TrainRun run{config.train.epochs, config.train.batch_size, static_cast<float>(config.augmentation.noise_std),
                     table.data()};
  const ReplicaJob job{r.seed, r.regime == Regime::augmentation ? 1u : 0u, 0u, 0u};
  HostGroup group{group_size, order};
  if (cuda_plan::operands_in_shared(layout)) {  // what fused_mlp_kernel<true> assumes, checked
    group.shared_begin = shared.data();
    group.shared_end = shared.data() + layout.shared_floats;
  }
  group_train_replica<4, 4>(group, shape, run, job, view_of(train), st);
  return std::vector<float>(st.params, st.params + param_count(shape));
}

std::vector<float> cpu_trained(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& r,
                               const Dataset& train) {
  TrainWorkspace workspace(shape, config.train.batch_size);
  return train_replica(config, shape, r, train, workspace);
}

void expect_bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (std::size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], b[i]) << "parameter " << i;
}

NetShape mlp_shape(std::vector<int> hidden) {
  ExperimentConfig c;
  c.mlp.hidden = std::move(hidden);
  return net_shape(c, ModelKind::mlp);
}

TEST(GroupTrainer, PerceptronWarpMatchesCpuBitwiseInEveryRegime) {
  const ExperimentConfig config = small_config(300, 64, 3);  // last batch of 44
  const NetShape shape = net_shape(config, ModelKind::perceptron);
  for (Regime regime : {Regime::baseline, Regime::domain_randomization, Regime::augmentation}) {
    const Dataset train = make_training_set(config, regime, 0);
    const ReplicaSpec r{0, 0, ModelKind::perceptron, regime, 3, 7};
    expect_bitwise_equal(group_trained(config, shape, r, train, 32, 1 << 20), cpu_trained(config, shape, r, train));
  }
}

// Equal hidden widths at the GPU's CTA sizes (64, 128, 256 threads).
TEST(GroupTrainer, EqualHiddenWidthsMatchCpuBitwise) {
  const ExperimentConfig config = small_config(150, 32, 2);  // last batch of 22
  const Dataset train = make_training_set(config, Regime::augmentation, 0);
  const ReplicaSpec r{1, 0, ModelKind::mlp, Regime::augmentation, 1, 11};
  const auto check = [&](int width, int group_size) {
    const NetShape shape = mlp_shape({width, width});
    const std::vector<float> cpu = cpu_trained(config, shape, r, train);
    expect_bitwise_equal(group_trained(config, shape, r, train, group_size, 1 << 20), cpu);  // all shared
    expect_bitwise_equal(group_trained(config, shape, r, train, group_size, 0), cpu);        // all global
  };
  check(16, 64);
  check(32, 128);
  check(64, 256);
}

// Each phase's ranks run ascending, descending and in three shuffled orders: a phase that
// reads what another rank of the same phase writes (a race on the GPU) changes bits here.
TEST(GroupTrainer, RankOrderWithinAPhaseDoesNotChangeBits) {
  const ExperimentConfig config = small_config(101, 7, 2);
  const Dataset train = make_training_set(config, Regime::augmentation, 0);
  const ReplicaSpec r{3, 0, ModelKind::mlp, Regime::augmentation, 0, 6};
  for (const NetShape& shape : {mlp_shape({16, 16}), mlp_shape({5, 9, 3}), mlp_shape({8}), mlp_shape({6, 5, 7, 4}),
                                net_shape(config, ModelKind::perceptron)}) {
    const std::vector<float> cpu = cpu_trained(config, shape, r, train);
    for (unsigned order : {0u, 1u, 2u, 7u, 12345u})
      for (int group_size : {32, 37, 256})
        expect_bitwise_equal(group_trained(config, shape, r, train, group_size, 600, order), cpu);
  }
}

// The study's shape at the GPU's group size: its products go as 4 x 4 tiles and as single
// elements (the thin ones), its jobs of a phase dealt from different ranks.
TEST(GroupTrainer, StudyShapeInAnyRankOrderMatchesCpuBitwise) {
  const ExperimentConfig config = small_config(150, 64, 2);  // last batch of 22
  const Dataset train = make_training_set(config, Regime::augmentation, 0);
  const ReplicaSpec r{5, 0, ModelKind::mlp, Regime::augmentation, 0, 8};
  const NetShape shape = mlp_shape({64, 64});
  const std::vector<float> cpu = cpu_trained(config, shape, r, train);
  for (unsigned order : {1u, 12345u})
    expect_bitwise_equal(group_trained(config, shape, r, train, 256, 1 << 20, order), cpu);
}

// The one-lane perceptron (the GPU's perceptron kernel) is the CPU backend, bit for bit: every
// regime (augmentation draws noise mid-batch; whole and partial Box-Muller blocks of a chunk),
// ragged last batches, several epochs.
TEST(GroupTrainer, LanePerceptronMatchesCpuBitwise) {
  for (const auto& [n_train, batch, epochs] : {std::tuple{300, 64, 3}, {101, 7, 2}, {50, 64, 1}, {97, 1, 1}}) {
    ExperimentConfig config = small_config(n_train, batch, epochs);
    const NetShape shape = net_shape(config, ModelKind::perceptron);
    const std::vector<AdamStep> table =
        cuda_plan::make_adam_table(config.train, static_cast<std::uint32_t>(config.data.n_train));
    const TrainRun run{config.train.epochs, config.train.batch_size, static_cast<float>(config.augmentation.noise_std),
                       table.data()};
    for (Regime regime : {Regime::baseline, Regime::domain_randomization, Regime::augmentation})
      for (std::uint32_t seed : {0u, 5u}) {
        const Dataset train = make_training_set(config, regime, 0);
        const ReplicaSpec r{seed, 0, ModelKind::perceptron, regime, 0, seed};
        const ReplicaJob job{seed, regime == Regime::augmentation ? 1u : 0u, 0u, 0u};
        std::vector<float> lane(4);
        std::uint32_t scratch[kLaneScratchWords * 3];
        lane_train_perceptron(shape, run, job, view_of(train), lane.data(), scratch + 1, 3);  // a strided column
        SCOPED_TRACE("n_train " + std::to_string(n_train) + ", batch " + std::to_string(batch) + ", seed " +
                     std::to_string(seed));
        expect_bitwise_equal(lane, cpu_trained(config, shape, r, train));
      }
  }
}

TEST(GroupTrainer, GenericShapeAndOddGroupSizeMatchCpuBitwise) {
  const ExperimentConfig config = small_config(101, 7, 2);  // 7 does not divide 101
  const Dataset train = make_training_set(config, Regime::domain_randomization, 0);
  const ReplicaSpec r{2, 0, ModelKind::mlp, Regime::domain_randomization, 0, 5};
  const NetShape shape = mlp_shape({5, 9, 3});
  const std::vector<float> cpu = cpu_trained(config, shape, r, train);
  for (int group_size : {1, 37, 64})
    for (std::size_t limit : {std::size_t{0}, std::size_t{600}, std::size_t{1} << 20})
      expect_bitwise_equal(group_trained(config, shape, r, train, group_size, limit), cpu);
}

// A fused launch group mixes grid cells of one shape (CudaBackend::train_chunk): its layout
// and CTA size are planned for the group's largest batch, and a cell with a smaller batch
// trains in them, its buffers only partly used.
TEST(GroupTrainer, SmallerBatchInALaunchPlannedForALargerOneMatchesCpuBitwise) {
  const ExperimentConfig config = small_config(150, 24, 2);  // last batch of 6
  const Dataset train = make_training_set(config, Regime::augmentation, 0);
  const ReplicaSpec r{4, 0, ModelKind::mlp, Regime::augmentation, 0, 10};
  const NetShape shape = mlp_shape({16, 16});
  const int threads = cuda_plan::fused_threads(shape, 64);  // the group's largest batch: 64
  const std::vector<float> cpu = cpu_trained(config, shape, r, train);
  for (std::size_t limit : {std::size_t{1} << 20, std::size_t{0}})
    expect_bitwise_equal(group_trained(config, shape, r, train, threads, limit, 12345u, 64), cpu);
}

// fused_mlp_kernel<true> tells the compiler that every product operand is in shared memory
// whenever operands_in_shared(layout). group_trained checks that claim through HostGroup in
// every test above; here, that the layouts the GPU uses make it, and that the check fails
// when an operand is elsewhere (activations in global memory).
TEST(GroupTrainer, ProductOperandsAreInSharedMemoryWhenTheLayoutSaysSo) {
  const ExperimentConfig config = small_config(130, 64, 1);
  const Dataset train = make_training_set(config, Regime::augmentation, 0);
  const ReplicaSpec r{0, 0, ModelKind::mlp, Regime::augmentation, 0, 9};
  const NetShape shape = mlp_shape({64, 64});
  // The H200's budget at two CTAs per SM (the seed experiment's layout): operands shared.
  const std::size_t two_per_sm = cuda_plan::fused_shared_budget(227 * 1024, 228 * 1024, 2);
  const cuda_plan::FusedLayout layout =
      cuda_plan::plan_fused_layout(shape, 64, cuda_plan::fused_threads(shape, 64), two_per_sm);
  ASSERT_TRUE(cuda_plan::operands_in_shared(layout));
  EXPECT_EQ(group_trained(config, shape, r, train, layout.threads, two_per_sm), cpu_trained(config, shape, r, train));
  // Parameters in shared memory but activations not: no claim, and a claim would be caught.
  const cuda_plan::FusedLayout split =
      cuda_plan::plan_fused_layout(shape, 64, 256, layout.size[cuda_plan::kParams] * 4 + 64);
  ASSERT_TRUE(split.in_shared[cuda_plan::kParams]);
  ASSERT_FALSE(split.in_shared[cuda_plan::kActivations]);
  EXPECT_FALSE(cuda_plan::operands_in_shared(split));
  std::vector<float> shared(split.shared_floats + 1), global(split.global_floats + 1);
  const ReplicaState st = cuda_plan::replica_state(split, shape, shared.data(), global.data());
  const std::vector<AdamStep> table = cuda_plan::make_adam_table(config.train, 130);
  const TrainRun run{1, 64, 1.0f, table.data()};
  const HostGroup claiming{256, 0, shared.data(), shared.data() + split.shared_floats};
  const auto train_claiming = [&] {
    group_train_replica<4, 4>(claiming, shape, run, ReplicaJob{9, 1, 0, 0}, view_of(train), st);
  };
  EXPECT_THROW(train_claiming(), std::logic_error);
}

// The RMSE is the same bits whatever the group size (the GPU's 64 or 256 threads, the
// CPU's one) and the rows per tile: the lanes of the sum are fixed (kEvalLanes).
TEST(GroupTrainer, EvaluationMatchesCpuRmseBitForBit) {
  const ExperimentConfig config = small_config(200, 64, 1);
  const Dataset test = make_test_set(config, DatasetId::ood_test);
  for (const NetShape& shape : {net_shape(config, ModelKind::perceptron), mlp_shape({16, 16}), mlp_shape({6, 4})}) {
    const std::vector<float> params = initial_params(shape, 9);
    TrainWorkspace workspace(shape, 64);
    const double cpu = evaluate_rmse(shape, params.data(), test, workspace);
    const cuda_plan::EvalLayout layout = cuda_plan::plan_eval_layout(shape, 1 << 20);
    for (int group_size : {1, 37, 64, 256})
      for (int rows : {layout.rows, 48, 100}) {
        // As evaluate_kernel<true> lays them out in shared memory: activations, then the
        // staged parameters; HostGroup checks that every product operand is among them.
        const std::size_t act_floats = static_cast<std::size_t>(rows) * (kFeatures + 2 * max_width(shape));
        std::vector<float> shared(act_floats + params.size());
        std::copy(params.begin(), params.end(), shared.begin() + static_cast<std::ptrdiff_t>(act_floats));
        float* act = shared.data();
        std::vector<double> partials(kEvalLanes);
        const EvalState st{shared.data() + act_floats, act, act + static_cast<std::size_t>(rows) * kFeatures,
                           act + static_cast<std::size_t>(rows) * (kFeatures + max_width(shape)), partials.data()};
        const HostGroup group{group_size, 0, shared.data(), shared.data() + shared.size()};
        const double sum = group_sum_squares<4, 4>(group, shape, view_of(test), rows, st);
        EXPECT_EQ(std::sqrt(sum / static_cast<double>(test.size())), cpu)
            << "group size " << group_size << ", rows " << rows;
      }
  }
}

// The GPU's transposed copy of hidden weights, dealt as diagonals of 32 x 32 blocks: every
// element once, whatever the shape, the ranks and where the job's dealing starts.
TEST(GroupTrainer, DiagonalTransposeCoversEveryElementOnce) {
  for (const auto& [rows, cols] : {std::pair{64, 64}, std::pair{3, 64}, std::pair{5, 9}, std::pair{33, 70}})
    for (int stride : {1, 37, 256})
      for (int offset : {0, 5}) {
        std::vector<float> w(static_cast<std::size_t>(rows * cols)), w_t(w.size(), -1.0f);
        for (std::size_t e = 0; e < w.size(); ++e) w[e] = static_cast<float>(e);
        std::vector<int> writes(w.size(), 0);
        for (int rank = 0; rank < stride; ++rank) {  // each rank alone into a fresh buffer
          std::vector<float> mine(w.size(), -1.0f);
          transpose_diagonals(w.data(), rows, cols, mine.data(), first_item(rank, offset, stride), stride);
          for (std::size_t e = 0; e < mine.size(); ++e)
            if (mine[e] != -1.0f) {
              ++writes[e];
              w_t[e] = mine[e];
            }
        }
        for (int i = 0; i < rows; ++i)
          for (int j = 0; j < cols; ++j) ASSERT_EQ(w_t[j * rows + i], w[i * cols + j]) << rows << "x" << cols;
        for (std::size_t e = 0; e < writes.size(); ++e) ASSERT_EQ(writes[e], 1) << "element " << e;
      }
}

TEST(GroupTrainer, GatherRowMatchesAugmentationNoise) {
  const ExperimentConfig config = small_config(50, 8, 1);
  const Dataset train = make_training_set(config, Regime::baseline, 0);
  const EpochPermutation perm = make_epoch_permutation(50, 4, 3);
  const ReplicaJob job{4, 1, 0, 0};
  float features[kFeatures * 8], targets[8];
  for (int b = 0; b < 8; ++b) {
    if (40 + b >= 50) break;
    gather_rows(view_of(train), perm, job, 10.0f, 3, 40, b, 8, b + 1, features, targets);  // one row alone
    const std::uint32_t i = permuted_index(perm, 40u + static_cast<std::uint32_t>(b));
    EXPECT_EQ(features[b * kFeatures + 0], train.x1[i]);
    EXPECT_EQ(features[b * kFeatures + 2],
              train.x3[i] + augmentation_noise(10.0f, 4, 3, 40u + static_cast<std::uint32_t>(b)));
    EXPECT_EQ(targets[b], train.y[i]);
  }
}

}  // namespace
}  // namespace underspec
