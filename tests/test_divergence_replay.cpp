// The replay that finds where a diverged replica's parameters stopped being finite
// (divergence_replay.hpp): it must train the same bits as the CPU trainer, and the step it
// names must be the first one after which the real trainer's parameters are not finite.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "underspec/backends/backend.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/backends/divergence_replay.hpp"

namespace underspec {
namespace {

bool all_finite(const std::vector<float>& params) {
  for (float p : params)
    if (!std::isfinite(p)) return false;
  return true;
}

std::vector<std::uint32_t> bits_of(const std::vector<float>& params) {
  std::vector<std::uint32_t> bits;
  for (float p : params) bits.push_back(std::bit_cast<std::uint32_t>(p));
  return bits;
}

// What the CPU backend trains (the process's active kernels, its SIMD products).
std::vector<float> trained(const ExperimentConfig& config, const ReplicaSpec& replica, const Dataset& train,
                           const CpuKernels& kernels = active_cpu_kernels()) {
  const NetShape shape = net_shape(config, replica.model);
  TrainWorkspace ws(shape, config.train.batch_size, kernels);
  return train_replica(config, shape, replica, train, ws);
}

ExperimentConfig small_config() {
  ExperimentConfig config;
  config.data.n_train = 200;
  config.train.epochs = 3;
  config.train.batch_size = 64;  // 4 steps an epoch, the last of 8 rows
  config.train.step_size = 2;    // StepLR decays once within the training
  config.augmentation.noise_std = 0.5;
  return config;
}

TEST(DivergenceReplay, AFiniteReplicaReplaysToTheTrainedBits) {
  const ExperimentConfig config = small_config();
  for (const ModelKind model : {ModelKind::perceptron, ModelKind::mlp})
    for (const Regime regime : {Regime::baseline, Regime::augmentation}) {
      const ReplicaSpec replica{0, 0, model, regime, 3, 45};
      const Dataset train = make_training_set(config, regime, 0);
      const std::vector<float> want = trained(config, replica, train);
      ASSERT_TRUE(all_finite(want));
      // The replay at every instruction-set level this machine runs, and by default.
      for (const CpuIsa isa : supported_cpu_isas()) {
        const TrainingReplay replay =
            replay_training(config, net_shape(config, model), replica, train, &cpu_kernels(isa));
        EXPECT_FALSE(replay.first_non_finite.has_value());
        EXPECT_EQ(bits_of(replay.params), bits_of(want))
            << to_string(model) << " " << to_string(regime) << " " << cpu_kernels(isa).name;
        EXPECT_EQ(bits_of(replay.params), bits_of(trained(config, replica, train, cpu_kernels(isa))));
      }
      EXPECT_EQ(bits_of(replay_training(config, net_shape(config, model), replica, train).params), bits_of(want));
    }
}

// NaN's sign and payload depend on which instruction made it (x86's invalid operations give a
// negative NaN, a C library's fmaf may not): compare them as one value.
std::vector<std::uint32_t> canonical_bits(std::vector<float> params) {
  for (float& p : params)
    if (std::isnan(p)) p = std::numeric_limits<float>::quiet_NaN();
  return bits_of(params);
}

TEST(DivergenceReplay, StopsAtTheFirstStepWhoseParametersAreNotFinite) {
  // One minibatch an epoch, so that an epoch is a step and the real trainer, stopped after
  // any number of epochs, checks the replay's step: finite one step earlier, not finite (the
  // same bits) at that step. Adam's first steps are about lr: this lr overflows an MLP after
  // a few steps, not the first.
  ExperimentConfig config = small_config();
  config.train.batch_size = static_cast<int>(config.data.n_train);
  config.train.lr = 3e6;
  config.train.epochs = 50;
  const ReplicaSpec replica{0, 0, ModelKind::mlp, Regime::baseline, 0, 0};
  const Dataset train = make_training_set(config, Regime::baseline, 0);
  const TrainingReplay replay = replay_training(config, net_shape(config, ModelKind::mlp), replica, train);
  ASSERT_TRUE(replay.first_non_finite.has_value());
  const TrainingStep at = *replay.first_non_finite;
  EXPECT_EQ(at.step, 1);
  EXPECT_EQ(at.steps_per_epoch, 1);
  ASSERT_GE(at.epoch, 2) << "the config should diverge after its first step";
  EXPECT_EQ(describe(at), "epoch " + std::to_string(at.epoch) + " step 1 of 1");
  EXPECT_FALSE(all_finite(replay.params));

  config.train.epochs = at.epoch - 1;
  EXPECT_TRUE(all_finite(trained(config, replica, train)));
  config.train.epochs = at.epoch;
  const std::vector<float> diverged = trained(config, replica, train);
  EXPECT_FALSE(all_finite(diverged));
  EXPECT_EQ(canonical_bits(replay.params), canonical_bits(diverged));
}

TEST(DivergenceReplay, TheMarkerNamesTheStepOnlyForParametersThatAreNotFinite) {
  ReplicaResult scores;
  scores.iid_rmse = 1.0;
  scores.ood_rmse = std::numeric_limits<double>::infinity();
  int calls = 0;
  const auto locate = [&] {
    ++calls;
    return std::string("epoch 2 step 3 of 4");
  };
  const std::vector<float> finite{1.0f, 2.0f}, nan{1.0f, std::numeric_limits<float>::quiet_NaN()};
  EXPECT_EQ(divergence_of(finite, scores, locate), "at end: ood_rmse inf");
  EXPECT_EQ(calls, 0);  // no replay for a replica whose parameters are finite
  EXPECT_EQ(divergence_of(nan, scores, locate), "epoch 2 step 3 of 4: parameters not finite");
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(divergence_of(nan, scores, [] { return std::string(); }), "at end: parameters not finite");
  EXPECT_EQ(divergence_of(nan, scores), "at end: parameters not finite");
}

// The CPU backend marks its results on its own threads; the driver's DivergenceLocator marks
// the results of a backend that does not (CUDA), and `score`'s. Both must say the same, with
// shared training sets and with one per replica (data.per_replica).
TEST(DivergenceReplay, TheCpuBackendAndTheLocatorNameTheSameStep) {
  for (const bool per_replica : {false, true}) {
    ExperimentConfig config = small_config();
    config.data.n_test = 200;
    config.data.per_replica = per_replica;
    config.train.lr = 2.6e6;  // some MLPs diverge, in their first or second epoch
    config.sweep.seeds = 3;
    config.sweep.models = {ModelKind::mlp};
    const Sweep sweep = make_sweep(config);
    const std::vector<ReplicaResult> results = make_cpu_backend(2)->train_replicas(sweep, sweep.replicas);
    DivergenceLocator locator(sweep);
    int diverged = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
      const ReplicaResult& r = results[i];
      if (parameters_finite(r.params)) {
        EXPECT_EQ(r.diverged, "") << i;
        continue;
      }
      ++diverged;
      const std::string where = locator.where(sweep.replicas[i]);
      EXPECT_EQ(where.rfind("epoch ", 0), 0u) << where;
      EXPECT_EQ(r.diverged, where + ": parameters not finite") << i << " per_replica " << per_replica;
    }
    EXPECT_GT(diverged, 0) << "per_replica " << per_replica;
    // What the driver does with the results of a backend that does not mark them (CUDA).
    std::vector<ReplicaResult> unmarked = results;
    for (ReplicaResult& r : unmarked) r.diverged.clear();
    const std::vector<std::string> markers = locator.markers(unmarked);
    for (std::size_t i = 0; i < results.size(); ++i) EXPECT_EQ(markers[i], results[i].diverged) << i;
    EXPECT_LT(diverged, static_cast<int>(results.size())) << "per_replica " << per_replica;
  }
}

}  // namespace
}  // namespace underspec
