// Training and scoring one replica on the host with the shared math of model.hpp and
// adam.hpp. The CPU backend runs these in parallel over replicas; tests call them alone.
#pragma once

#include <memory>
#include <vector>

#include "underspec/dataset.hpp"
#include "underspec/permutation.hpp"
#include "underspec/sweep.hpp"

namespace underspec {

// Per-thread scratch: parameters, activations, errors and optimiser state for one replica
// at a time, in one arena whose buffers all start on a cache line (aligned vector loads).
class TrainWorkspace {
 public:
  TrainWorkspace(const NetShape& shape, int batch_capacity);
  const BatchBuffers& buffers() const { return buffers_; }
  float* params() { return params_; }
  float* targets() { return targets_; }
  float* grads() { return grads_; }
  float* moment1() { return moment1_; }
  float* moment2() { return moment2_; }
  int batch_capacity() const { return batch_capacity_; }

 private:
  float* carve(std::size_t floats);
  int batch_capacity_;
  std::unique_ptr<float[], void (*)(float*)> arena_;
  std::size_t used_ = 0, capacity_ = 0;
  float *params_, *targets_, *grads_, *moment1_, *moment2_;
  BatchBuffers buffers_{};
};

std::vector<float> initial_params(const NetShape& shape, std::uint32_t seed);

// The minibatch at positions [start, start + batch) of an epoch: features [batch][3] and
// targets [batch]; augmentation_std > 0 adds the replica's noise to x3 (augmentation).
void gather_batch(const Dataset& train, const EpochPermutation& perm, std::uint32_t seed, float augmentation_std,
                  std::uint32_t epoch, std::uint32_t start, int batch, float* features, float* targets);

// Trains `params` in place for config.train.epochs epochs on `train`.
void train_replica(const ExperimentConfig& config, const NetShape& shape, const ReplicaSpec& replica,
                   const Dataset& train, std::vector<float>& params, TrainWorkspace& workspace);

// Root mean squared error of the network on a dataset (sum of squares in double).
double evaluate_rmse(const NetShape& shape, const float* params, const Dataset& test, TrainWorkspace& workspace);

}  // namespace underspec
