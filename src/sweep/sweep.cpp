// Grid expansion and shards (see sweep.hpp for the invariants).
#include "underspec/sweep/sweep.hpp"

#include <stdexcept>

namespace underspec {

Sweep make_sweep(const ExperimentConfig& config) {
  Sweep sweep{config, {}};
  std::uint32_t id = 0;
  for (ModelKind model : config.sweep.models)
    for (Regime regime : config.sweep.regimes)
      for (int s = 0; s < config.sweep.seeds; ++s) {
        const auto seed_index = static_cast<std::uint32_t>(s);
        sweep.replicas.push_back(ReplicaSpec{id++, model, regime, seed_index, config.sweep.seed + seed_index});
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

std::uint32_t train_data_slot(const ExperimentConfig& config, const ReplicaSpec& replica) {
  return config.data.per_replica ? 1u + replica.seed : 0u;
}

}  // namespace underspec
