// Grid expansion and shards (see sweep.hpp for the invariants).
#include "underspec/sweep/sweep.hpp"

#include <stdexcept>

#include "underspec/config/config_io.hpp"

namespace underspec {

std::vector<Cell> make_cells(const ExperimentConfig& config) {
  // A cell's config is a point of the grid, not the grid: without this, each of 300,000 cells
  // would copy every axis's values (2.4 GB for a 100 x 100 x 30 grid). The sweep's own config
  // keeps the grid for whoever needs the axes.
  ExperimentConfig point = config;
  point.sweep.grid.clear();
  std::vector<Cell> cells{Cell{std::move(point), {}}};
  for (const GridAxis& axis : config.sweep.grid) {
    std::vector<Cell> next;
    next.reserve(cells.size() * axis.values.size());
    for (const Cell& cell : cells)
      for (const std::string& value : axis.values) {
        Cell c = cell;
        apply_value(c.config, axis.key, value);
        c.values.push_back(value);
        next.push_back(std::move(c));
      }
    cells = std::move(next);
  }
  return cells;
}

Sweep make_sweep(const ExperimentConfig& config) {
  Sweep sweep{config, make_cells(config), {}};
  std::uint64_t total = 0;
  for (ModelKind model : config.sweep.models)
    total += static_cast<std::uint64_t>(config.sweep.seeds_of(model)) * config.sweep.regimes.size();
  total *= sweep.cells.size();
  if (total > UINT32_MAX) throw std::invalid_argument("the sweep has more than 2^32 - 1 replicas");
  sweep.replicas.reserve(static_cast<std::size_t>(total));
  std::uint32_t id = 0;
  for (std::uint32_t cell = 0; cell < sweep.cells.size(); ++cell)
    for (ModelKind model : config.sweep.models)
      for (Regime regime : config.sweep.regimes)
        for (int s = 0; s < config.sweep.seeds_of(model); ++s) {
          const auto seed_index = static_cast<std::uint32_t>(s);
          sweep.replicas.push_back(ReplicaSpec{id++, cell, model, regime, seed_index, config.sweep.seed + seed_index});
        }
  return sweep;
}

ShardRange shard_range(std::uint32_t n_replicas, std::uint32_t index, std::uint32_t count) {
  if (count == 0 || index >= count) throw std::invalid_argument("shard index out of range");
  const std::uint64_t begin = std::uint64_t{n_replicas} * index / count;
  const std::uint64_t end = std::uint64_t{n_replicas} * (index + 1) / count;
  return ShardRange{static_cast<std::uint32_t>(begin), static_cast<std::uint32_t>(end)};
}

NetShape net_shape(const ExperimentConfig& config, ModelKind model) {
  NetShape shape;
  shape.width[0] = kFeatures;
  int layers = 1;
  if (model == ModelKind::mlp) {
    if (static_cast<int>(config.mlp.hidden.size()) + 1 > kMaxLayers)
      throw std::invalid_argument("model.mlp.hidden has too many layers");
    for (int width : config.mlp.hidden) shape.width[layers++] = width;
  }
  shape.width[layers] = 1;
  shape.n_layers = layers;
  return shape;
}

ScmParams scm_params(const DataConfig& data) {
  return ScmParams{static_cast<float>(data.coefficients[0]), static_cast<float>(data.coefficients[1]),
                   static_cast<float>(data.intercept), static_cast<float>(data.noise_std)};
}

std::uint64_t replica_steps(const ExperimentConfig& config) {
  const auto n = static_cast<std::uint64_t>(config.data.n_train),
             batch = static_cast<std::uint64_t>(config.train.batch_size);
  return static_cast<std::uint64_t>(config.train.epochs) * ((n + batch - 1) / batch);
}

std::uint32_t train_data_slot(const ExperimentConfig& config, const ReplicaSpec& replica) {
  return config.data.per_replica ? 1u + replica.seed : 0u;
}

}  // namespace underspec
