// A sweep is the set of replicas of one run: grid cell x model x regime x seed, in that
// order, each with a stable id (its position). A cell is one point of `[sweep.grid]`: the
// base config with one value of every axis applied. Everything random about a replica
// derives from its seed (and its cell's data seed), never from its id, chunk, shard or
// thread, so growing the sweep or training a replica alone reproduces it bit for bit.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/core/model.hpp"
#include "underspec/core/scm.hpp"

namespace underspec {

struct ReplicaSpec {
  std::uint32_t id;    // position in the sweep
  std::uint32_t cell;  // index into Sweep::cells
  ModelKind model;
  Regime regime;
  std::uint32_t seed_index;  // 0 .. seeds_of(model) - 1 within its group
  std::uint32_t seed;        // sweep.seed + seed_index: keys init, shuffle, augmentation
};

struct Cell {
  ExperimentConfig config;          // the base config with this cell's axis values applied, no grid
  std::vector<std::string> values;  // canonical TOML text, one per axis of sweep.grid
};

struct Sweep {
  ExperimentConfig config;  // the resolved config, grid included
  std::vector<Cell> cells;  // one without a grid
  std::vector<ReplicaSpec> replicas;

  const ExperimentConfig& config_of(const ReplicaSpec& replica) const { return cells[replica.cell].config; }
};

// The cells of the grid (one without a grid), the last axis varying fastest.
std::vector<Cell> make_cells(const ExperimentConfig& config);

// Cells in row-major order of the axes (the last axis varies fastest), then models, regimes
// and seeds as listed in the config.
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

// Replica-steps (minibatch updates) of one replica's training: epochs x steps per epoch.
std::uint64_t replica_steps(const ExperimentConfig& config);

}  // namespace underspec
