// Where a diverged replica's parameters stopped being finite. Training is a pure function of
// (cell config, replica), so a replica whose FINAL parameters are not finite is trained again
// on the host, checking its parameters after every minibatch step, up to the first step that
// leaves one of them NaN or infinite. Every backend's results go through the same replay (the
// CPU backend's on its worker threads, others' in the driver, score's), so the text does not
// depend on the backend; the normal training path has no per-step check and costs what it
// did. Only diverged replicas (rare) pay for it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "underspec/backends/backend.hpp"
#include "underspec/core/model.hpp"
#include "underspec/sweep/dataset.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {

struct CpuKernels;

// A minibatch step of a training, 1-based: epoch 1..epochs, step 1..steps_per_epoch.
struct TrainingStep {
  int epoch = 0;
  int step = 0;
  int steps_per_epoch = 0;
};

struct TrainingReplay {
  std::optional<TrainingStep> first_non_finite;  // none: every step left the parameters finite
  std::vector<float> params;                     // after that step, or at the end of training
};

// Trains `replica` as train_replica does (same initialisation, minibatches, Adam steps and
// products, so the same bits), stopping after the first step whose parameters are not all
// finite. `kernels`: the CPU kernels' level (null: the CPU backend's, else portable).
TrainingReplay replay_training(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                               const Dataset& train, const CpuKernels* kernels = nullptr);

// describe() of replay_training's first non-finite step, or "" when there is none.
std::string where_parameters_diverged(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                                      const Dataset& train, const CpuKernels* kernels = nullptr);

// "epoch E step S of N" for the first step after which the replica's parameters are not
// finite, or "" when the replay finds none (a backend whose arithmetic differed from the
// host's). Makes the training set the backends train on (make_training_set with the replica's
// data slot), once per cell and regime unless data.per_replica (at most kMaxCachedBytes of
// them kept); safe from several threads.
class DivergenceLocator {
 public:
  explicit DivergenceLocator(const Sweep& sweep) : sweep_(sweep) {}
  std::string where(const ReplicaSpec& replica);
  // The `diverged` marker of each result: the backend's where it set one (the CPU backend
  // does, on its own threads), else divergence_of with where() (a CUDA backend's results:
  // the replays of one call run in parallel). A result whose id is not in the sweep gets "".
  std::vector<std::string> markers(std::span<const ReplicaResult> results);

 private:
  std::shared_ptr<const Dataset> training_set(const ReplicaSpec& replica);
  const Sweep& sweep_;
  std::mutex mutex_;
  static constexpr std::size_t kMaxCachedBytes = std::size_t{64} << 20;
  std::map<std::pair<std::uint32_t, Regime>, std::shared_ptr<const Dataset>> shared_;
  std::size_t cached_bytes_ = 0;
};

// The text of a TrainingStep: "epoch 3 step 17 of 32".
std::string describe(const TrainingStep& step);

}  // namespace underspec
