// A run's device memory on the CUDA backend, planned from the config (cuda_sweep_memory.hpp);
// no CUDA calls, CPU-tested.
#include "underspec/backends/cuda_sweep_memory.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "underspec/run/plan.hpp"
#include "underspec/sweep/dataset.hpp"

namespace underspec::cuda_plan {

std::string shape_name(const NetShape& shape) {
  std::string name;
  for (int l = 0; l <= shape.n_layers; ++l) {
    if (l > 0) name += '-';
    name += std::to_string(shape.width[l]);
  }
  return name;
}

std::vector<DatasetRequest> cell_datasets(const ExperimentConfig& config, std::span<const Regime> regimes) {
  std::vector<DatasetRequest> requests;  // the CPU's make_domain_set of each test domain: same set id, slot 0
  const auto n_test = static_cast<std::uint32_t>(config.data.n_test);
  for (const TestDomain d : test_domains(config))
    requests.push_back({d.set, TrainDomain{d.factor, false, 0.0f, 0.0f}, n_test});
  if (!config.data.per_replica)
    for (const Regime regime : regimes)
      requests.push_back(
          {DatasetId::train, train_domain(config, regime), static_cast<std::uint32_t>(config.data.n_train)});
  return requests;
}

DatasetKey dataset_key(const ExperimentConfig& config, const DatasetRequest& request) {
  const ScmParams scm = scm_params(config.data);
  TrainDomain d = request.domain;
  if (!d.randomized) d.factor_lo = d.factor_hi = 0.0f;  // unused then: not part of the key
  return DatasetKey{scm.coef_x1, scm.coef_x2,  scm.intercept, scm.noise_std, config.data.seed, request.set,
                    d.factor,    d.randomized, d.factor_lo,   d.factor_hi,   request.n};
}

namespace {

// At one worker, what `group` needs beside the datasets (the chunk planner's test).
double group_need(const GroupNeed& group, int workers, double fraction) {
  return static_cast<double>(group.table_bytes) +
         std::ceil(static_cast<double>(workers) * static_cast<double>(group.chunk.bytes(1)) / fraction) + workers;
}

std::string fraction_words(double fraction) {
  if (fraction == 0.5) return "half";
  return std::to_string(static_cast<int>(std::lround(fraction * 100))) + "%";
}

}  // namespace

std::size_t SweepDeviceMemory::needed(int workers, double fraction) const {
  double most = 0;
  for (const GroupNeed& g : groups) most = std::max(most, group_need(g, workers, fraction));
  return dataset_total() + static_cast<std::size_t>(most);
}

const GroupNeed& SweepDeviceMemory::largest(double fraction) const {
  if (groups.empty()) throw std::logic_error("SweepDeviceMemory: no launch group");
  return *std::max_element(groups.begin(), groups.end(), [fraction](const GroupNeed& a, const GroupNeed& b) {
    return group_need(a, 1, fraction) < group_need(b, 1, fraction);
  });
}

std::string SweepDeviceMemory::dominant_key(double fraction) const {
  const GroupNeed& g = largest(fraction);
  const double one = static_cast<double>(g.chunk.bytes(1)) / fraction;
  const double own = static_cast<double>(g.own_data_bytes) / fraction;
  const std::pair<double, const char*> parts[] = {
      {static_cast<double>(test_bytes), "data.n_test (each test domain and stress factor is a set of that size)"},
      {static_cast<double>(train_bytes) + own, "data.n_train"},
      {static_cast<double>(g.table_bytes), "train.epochs (the Adam table holds a row per step)"},
      {one - own, "train.batch_size or model.mlp.hidden"},
  };
  return std::max_element(std::begin(parts), std::end(parts))->second;
}

SweepDeviceMemory plan_sweep_device_memory(const Sweep& sweep, std::span<const ReplicaSpec> replicas,
                                           TrainVariant variant, SharedLimits limits, int compute_major) {
  SweepDeviceMemory plan;
  // Datasets: one per distinct key over every (cell, regime) the replicas use, as the cache.
  std::map<std::uint32_t, std::vector<Regime>> regimes_of_cell;
  for (const ReplicaSpec& r : replicas) {
    std::vector<Regime>& regimes = regimes_of_cell[r.cell];
    if (std::find(regimes.begin(), regimes.end(), r.regime) == regimes.end()) regimes.push_back(r.regime);
  }
  std::set<DatasetKey> seen;
  for (const auto& [cell, regimes] : regimes_of_cell) {
    const ExperimentConfig& config = sweep.cells.at(cell).config;
    for (const DatasetRequest& request : cell_datasets(config, regimes))
      if (seen.insert(dataset_key(config, request)).second)
        (request.set == DatasetId::train ? plan.train_bytes : plan.test_bytes) += dataset_bytes(request.n);
  }
  // Launch groups: the chunk memory of group_device_memory, the cells' tables beside it.
  for (const std::vector<std::size_t>& members : launch_groups(sweep, replicas, variant)) {
    const ReplicaSpec& first = replicas[members.front()];
    const NetShape shape = net_shape(sweep.config_of(first), first.model);
    std::set<std::uint32_t> cells;
    for (std::size_t k : members) cells.insert(replicas[k].cell);
    std::vector<const ExperimentConfig*> configs;
    GroupNeed group;
    for (std::uint32_t c : cells) {
      const ExperimentConfig& config = sweep.cells[c].config;
      configs.push_back(&config);
      group.table_bytes += replica_steps(config) * sizeof(AdamStep) + sizeof(TrainRun);
      if (config.data.per_replica)
        group.own_data_bytes =
            std::max(group.own_data_bytes, dataset_bytes(static_cast<std::uint32_t>(config.data.n_train)));
    }
    group.replicas = members.size();
    group.chunk = group_device_memory(shape, configs, variant, limits, compute_major);
    group.name = shape_name(shape) + " (" + std::to_string(cells.size()) +
                 (cells.size() == 1 ? " cell, " : " cells, ") + std::to_string(members.size()) +
                 (members.size() == 1 ? " replica)" : " replicas)");
    plan.groups.push_back(std::move(group));
  }
  return plan;
}

int groups_that_fit(const SweepDeviceMemory& plan, std::size_t free_bytes, double fraction, int workers) {
  for (int w = std::max(1, workers); w >= 1; --w)
    if (plan.needed(w, fraction) <= free_bytes) return w;
  return 0;
}

std::string device_memory_shortfall(const SweepDeviceMemory& plan, std::size_t free_bytes, double fraction,
                                    const std::string& device) {
  const GroupNeed& g = plan.largest(fraction);
  return "the sweep needs at least " + format_bytes(static_cast<double>(plan.needed(1, fraction))) +
         " of free GPU memory (" + format_bytes(static_cast<double>(plan.dataset_total())) + " of datasets, " +
         format_bytes(static_cast<double>(g.table_bytes)) + " of Adam tables and " +
         format_bytes(static_cast<double>(g.chunk.bytes(1))) + " for one replica of launch group " + g.name +
         ", which may use " + fraction_words(fraction) + " of what is free) but " + device + " has " +
         format_bytes(static_cast<double>(free_bytes)) + " free; reduce " + plan.dominant_key(fraction) +
         " (or use --device cpu)";
}

std::string describe_device_memory(const SweepDeviceMemory& plan, std::size_t free_bytes, double fraction,
                                   const std::string& device) {
  if (plan.groups.empty()) return "  GPU memory   none (nothing to train)\n";
  const GroupNeed& g = plan.largest(fraction);
  std::size_t per_replica = 0;
  for (const GroupNeed& group : plan.groups) per_replica = std::max(per_replica, group.chunk.per_replica_bytes);
  std::string s = "  GPU memory   at least " + format_bytes(static_cast<double>(plan.needed(1, fraction))) +
                  " free: " + format_bytes(static_cast<double>(plan.dataset_total())) + " of datasets, " +
                  format_bytes(static_cast<double>(g.chunk.bytes(1) + g.table_bytes)) + " for the first replica of " +
                  g.name + ",\n               then up to " + format_bytes(static_cast<double>(per_replica)) +
                  " a replica, in chunks within " + fraction_words(fraction) + " the free memory\n";
  if (free_bytes > 0) {
    // What the chunk planner sees once the datasets and the group's tables are in place.
    const std::size_t held = plan.dataset_total() + g.table_bytes;
    const double budget = static_cast<double>(free_bytes > held ? free_bytes - held : 0) * fraction;
    const double room = std::max(0.0, budget - static_cast<double>(g.chunk.fixed_bytes));
    const auto chunk = static_cast<std::size_t>(
        std::min(static_cast<double>(g.replicas),
                 std::floor(room / static_cast<double>(std::max<std::size_t>(1, g.chunk.per_replica_bytes)))));
    s += "               " + device + ": " + format_bytes(static_cast<double>(free_bytes)) + " free: " +
         (plan.needed(1, fraction) <= free_bytes
              ? "room for " + std::to_string(chunk) + " replicas of " + g.name + " at a time\n"
              : "it does not fit\n");
  }
  return s;
}

}  // namespace underspec::cuda_plan
