// Training and scoring one replica on the host with the shared group trainer, through the CPU
// kernels of one instruction-set level (cpu_kernels.hpp). The CPU backend runs these in
// parallel over replicas; tests call them alone.
#pragma once

#include <memory>
#include <vector>

#include "underspec/backends/cpu_kernels.hpp"
#include "underspec/core/group_trainer.hpp"
#include "underspec/sweep/dataset.hpp"
#include "underspec/sweep/sweep.hpp"

namespace underspec {

// Per-thread scratch: parameters, activations, errors and optimiser state for one replica
// at a time, in one arena whose buffers all start on a cache line (aligned vector loads),
// and the kernels that train and score with it (by default the process's active ones).
class TrainWorkspace {
 public:
  TrainWorkspace(const NetShape& shape, int batch_capacity, const CpuKernels& kernels = active_cpu_kernels());
  const CpuKernels& kernels() const { return kernels_; }
  const BatchBuffers& buffers() const { return buffers_; }
  float* params() { return params_; }
  float* targets() { return targets_; }
  float* grads() { return grads_; }
  float* moment1() { return moment1_; }
  float* moment2() { return moment2_; }
  int batch_capacity() const { return batch_capacity_; }

 private:
  float* carve(std::size_t floats);
  const CpuKernels& kernels_;
  int batch_capacity_;
  std::unique_ptr<float[], void (*)(float*)> arena_;
  std::size_t used_ = 0, capacity_ = 0;
  float *params_, *targets_, *grads_, *moment1_, *moment2_;
  BatchBuffers buffers_{};
};

std::vector<float> initial_params(const NetShape& shape, std::uint32_t seed);

DatasetView view_of(const Dataset& d);

// The training settings and the replica's job as the host trainers pass them to the group
// trainer (train_replica, and replay_training, which must train the same bits).
TrainRun host_train_run(const ExperimentConfig& config);
ReplicaJob host_replica_job(const ReplicaSpec& replica);

// Initialises and trains one replica for config.train.epochs epochs on `train`; returns the
// final parameters.
std::vector<float> train_replica(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                                 const Dataset& train, TrainWorkspace& workspace);

// Root mean squared error of the network on a dataset (sum of squares in double).
double evaluate_rmse(const NetShape& shape, const float* params, const Dataset& test, TrainWorkspace& workspace);

}  // namespace underspec
