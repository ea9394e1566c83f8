// The replay of a diverged replica's training (divergence_replay.hpp): the CPU kernels'
// group_replay_until_non_finite (core/group_replay.hpp), at the level the CPU backend trains
// with (every level computes the same bits).
#include "underspec/backends/divergence_replay.hpp"

#include <exception>

#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/backends/cpu_trainer.hpp"

namespace underspec {
namespace {

// The process's kernels, or the portable ones where UNDERSPEC_CPU_KERNELS asks for a level this
// CPU lacks (a CUDA run does not need them otherwise; the replay must not fail it).
const CpuKernels& replay_kernels() {
  try {
    return active_cpu_kernels();
  } catch (const CpuKernelsError&) {
    return cpu_kernels(CpuIsa::portable);
  }
}

}  // namespace

TrainingReplay replay_training(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                               const Dataset& train, const CpuKernels* kernels) {
  TrainWorkspace workspace(shape, config.train.batch_size, kernels ? *kernels : replay_kernels());
  const ReplicaState state{workspace.params(),  workspace.grads(),   workspace.moment1(),
                           workspace.moment2(), workspace.targets(), workspace.buffers()};
  const DatasetView data = view_of(train);
  int epoch = 0, step = 0;
  TrainingReplay out;
  if (workspace.kernels().replay(shape, host_train_run(config), host_replica_job(replica), data, state, &epoch, &step))
    out.first_non_finite = TrainingStep{epoch + 1, step, steps_per_epoch(data.n, config.train.batch_size)};
  out.params.assign(workspace.params(), workspace.params() + param_count(shape));
  return out;
}

std::string describe(const TrainingStep& step) {
  return "epoch " + std::to_string(step.epoch) + " step " + std::to_string(step.step) + " of " +
         std::to_string(step.steps_per_epoch);
}

std::shared_ptr<const Dataset> DivergenceLocator::training_set(const ReplicaSpec& replica) {
  const ExperimentConfig& config = sweep_.config_of(replica);
  // The set the backends train on: the shared one of the cell and regime (slot 0), or the
  // replica's own with data.per_replica (train_data_slot).
  if (config.data.per_replica)
    return std::make_shared<const Dataset>(make_training_set(config, replica.regime, train_data_slot(config, replica)));
  const std::lock_guard lock(mutex_);  // generation under the lock: other threads wait for the same set
  const auto key = std::make_pair(replica.cell, replica.regime);
  if (const auto it = shared_.find(key); it != shared_.end()) return it->second;
  auto set = std::make_shared<const Dataset>(make_training_set(config, replica.regime, 0u));
  // Kept for the next diverged replica of the cell and regime (with a huge learning rate, all
  // of them), but not without bound: a sweep of many cells would otherwise hold all their
  // training sets a second time. Sets in use stay alive through their shared_ptr.
  const std::size_t bytes = set->size() * sizeof(float) * 4;
  if (cached_bytes_ + bytes > kMaxCachedBytes) {
    shared_.clear();
    cached_bytes_ = 0;
  }
  if (bytes <= kMaxCachedBytes) {
    shared_.emplace(key, set);
    cached_bytes_ += bytes;
  }
  return set;
}

std::string where_parameters_diverged(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                                      const Dataset& train, const CpuKernels* kernels) {
  const TrainingReplay replay = replay_training(config, shape, replica, train, kernels);
  return replay.first_non_finite ? describe(*replay.first_non_finite) : std::string();
}

std::string DivergenceLocator::where(const ReplicaSpec& replica) {
  const ExperimentConfig& config = sweep_.config_of(replica);
  const std::shared_ptr<const Dataset> train = training_set(replica);
  return where_parameters_diverged(config, net_shape(config, replica.model), replica, *train);
}

std::vector<std::string> DivergenceLocator::markers(std::span<const ReplicaResult> results) {
  std::vector<std::string> out(results.size());
  std::vector<std::size_t> replays;
  for (std::size_t i = 0; i < results.size(); ++i) {
    const ReplicaResult& r = results[i];
    if (r.id >= sweep_.replicas.size()) continue;
    if (!r.diverged.empty())
      out[i] = r.diverged;
    else if (parameters_finite(r.params))
      out[i] = divergence_of(r.params, r);
    else
      replays.push_back(i);
  }
  std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic, 1) if (replays.size() > 1)
  for (std::size_t k = 0; k < replays.size(); ++k) {
    const ReplicaResult& r = results[replays[k]];
    try {
      out[replays[k]] = divergence_of(r.params, r, [&] { return where(sweep_.replicas[r.id]); });
    } catch (...) {
#pragma omp critical(underspec_divergence_replay)
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
  return out;
}

}  // namespace underspec
