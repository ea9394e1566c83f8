// The replay of a diverged replica's training (divergence_replay.hpp). Host-only: the serial
// group with the portable products, which the CPU kernels of every instruction-set level
// equal bit for bit (cpu_gemm.hpp; tests/test_group_trainer.cpp), so that it needs none of
// the per-level code.
#include "underspec/backends/divergence_replay.hpp"

#include <cmath>

#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/backends/cpu_trainer.hpp"
#include "underspec/core/group_trainer.hpp"

namespace underspec {
namespace {

// Thrown out of the step callback at the first non-finite step: the remaining epochs are not
// walked through.
struct StopReplay {};

bool all_finite(const float* params, int n) {
  for (int i = 0; i < n; ++i)
    if (!std::isfinite(params[i])) return false;
  return true;
}

}  // namespace

TrainingReplay replay_training(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                               const Dataset& train) {
  const TrainRun run = host_train_run(config);
  const ReplicaJob job = host_replica_job(replica);
  const DatasetView data = view_of(train);
  // The workspace for its buffers only: the products below are the portable ones.
  TrainWorkspace workspace(shape, config.train.batch_size, cpu_kernels(CpuIsa::portable));
  const ReplicaState st{workspace.params(),  workspace.grads(),   workspace.moment1(),
                        workspace.moment2(), workspace.targets(), workspace.buffers()};
  const int n_params = param_count(shape);
  // As group_train_replica does for a serial group.
  for (int i = 0; i < n_params; ++i) {
    st.params[i] = init_param(shape, job.seed, i);
    st.moment1[i] = 0.0f;
    st.moment2[i] = 0.0f;
  }
  const SerialGroup<PortableGemm> g{};
  TrainingReplay out;
  int step_in_epoch = 0;
  try {
    for_each_epoch_minibatch(
        run, job, data.n, [&](std::uint32_t, const EpochPermutation&) { step_in_epoch = 0; },
        [&](std::uint32_t epoch, const EpochPermutation& perm, std::uint32_t start, std::uint32_t rows,
            const AdamStep& adam) {
          const int batch = static_cast<int>(rows);
          group_gather_rows(g, data, perm, job, run.augmentation_std, epoch, start, batch, st.buf.act[0], st.targets);
          group_train_step<0, 0>(g, shape, st, batch, adam);
          ++step_in_epoch;
          if (!all_finite(st.params, n_params)) {
            out.first_non_finite =
                TrainingStep{static_cast<int>(epoch) + 1, step_in_epoch, steps_per_epoch(data.n, run.batch_size)};
            throw StopReplay{};
          }
        });
  } catch (const StopReplay&) {
  }
  out.params.assign(st.params, st.params + n_params);
  return out;
}

std::string describe(const TrainingStep& step) {
  return "epoch " + std::to_string(step.epoch) + ", step " + std::to_string(step.step) + " of " +
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

std::string DivergenceLocator::where(const ReplicaSpec& replica) {
  const ExperimentConfig& config = sweep_.config_of(replica);
  const std::shared_ptr<const Dataset> train = training_set(replica);
  const TrainingReplay replay = replay_training(config, net_shape(config, replica.model), replica, *train);
  return replay.first_non_finite ? describe(*replay.first_non_finite) : std::string();
}

}  // namespace underspec
