// A sweep is the grid of replicas of one run: model x regime x seed, in that order, each
// with a stable id. Everything random about a replica derives from its seed (and the
// data seed), never from its id, chunk, shard or thread, so growing the sweep or training
// a replica alone reproduces it bit for bit.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/core/model.hpp"
#include "underspec/core/scm.hpp"

namespace underspec {

struct ReplicaSpec {
  std::uint32_t id;  // position in the sweep
  ModelKind model;
  Regime regime;
  std::uint32_t seed_index;  // 0 .. seeds - 1 within its group
  std::uint32_t seed;        // sweep.seed + seed_index: keys init, shuffle, augmentation
};

struct Sweep {
  ExperimentConfig config;
  std::vector<ReplicaSpec> replicas;
};

Sweep make_sweep(const ExperimentConfig& config);

// Replicas [begin, end) of shard `index` out of `count` (contiguous, balanced ranges).
struct ShardRange {
  std::uint32_t begin, end;
};
ShardRange shard_range(std::uint32_t n_replicas, std::uint32_t index, std::uint32_t count);

NetShape net_shape(const ExperimentConfig& config, ModelKind model);
ScmParams scm_params(const DataConfig& data);

// The training-data slot of a replica: 0 when all replicas share the training set,
// 1 + seed with data.per_replica.
std::uint32_t train_data_slot(const ExperimentConfig& config, const ReplicaSpec& replica);

}  // namespace underspec
