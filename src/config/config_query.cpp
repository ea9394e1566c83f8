// Questions about a resolved config: how it differs from another, its hash, how many
// replicas it runs, and whether that is too many.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <limits>

#include "config_keys.hpp"

namespace underspec {
namespace {

using namespace config_detail;

constexpr std::uint64_t kMaxReplicas = INT32_MAX;

std::uint64_t saturating_mul(std::uint64_t a, std::uint64_t b) {
  if (a != 0 && b > std::numeric_limits<std::uint64_t>::max() / a) return std::numeric_limits<std::uint64_t>::max();
  return a * b;
}

std::uint64_t grid_cells(const ExperimentConfig& c) {
  std::uint64_t n = 1;
  for (const GridAxis& axis : c.sweep.grid) n = saturating_mul(n, axis.values.size());
  return n;
}

std::uint64_t seeds_over_models(const ExperimentConfig& c) {
  std::uint64_t n = 0;
  for (ModelKind m : c.sweep.models) n += static_cast<std::uint64_t>(std::max(c.sweep.seeds_of(m), 0));
  return n;
}

const GridAxis* find_axis(const ExperimentConfig& c, const std::string& key) {
  for (const GridAxis& axis : c.sweep.grid)
    if (axis.key == key) return &axis;
  return nullptr;
}

}  // namespace

std::vector<std::string> differing_keys(const ExperimentConfig& a, const ExperimentConfig& b) {
  std::vector<std::string> out;
  for (const KeySpec& k : keys()) {
    if (k.key != kGridKey) {
      if (k.write(a) != k.write(b)) out.emplace_back(k.key);
      continue;
    }
    std::vector<std::string> axes;  // both grids' axes, sorted by key as they are stored
    for (const auto* c : {&a, &b})
      for (const GridAxis& axis : c->sweep.grid) axes.push_back(axis.key);
    std::sort(axes.begin(), axes.end());
    axes.erase(std::unique(axes.begin(), axes.end()), axes.end());
    for (const std::string& key : axes) {
      const GridAxis* x = find_axis(a, key);
      const GridAxis* y = find_axis(b, key);
      if (!x || !y || x->values != y->values) out.push_back(axis_name(key));
    }
  }
  return out;
}

std::string config_hash(const ExperimentConfig& config) {
  std::uint64_t h = 0xcbf29ce484222325ull;  // 64-bit FNV-1a
  for (const char ch : config_to_toml(config)) {
    h ^= static_cast<unsigned char>(ch);
    h *= 0x100000001b3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::uint64_t replica_count(const ExperimentConfig& config) {
  return saturating_mul(saturating_mul(grid_cells(config), seeds_over_models(config)), config.sweep.regimes.size());
}

std::vector<std::string> idle_axis_warnings(const ExperimentConfig& config) {
  std::vector<std::string> out;
  const std::uint64_t cells = grid_cells(config);
  for (const GridAxis& axis : config.sweep.grid) {
    const KeySpec* spec = find_key(axis.key);
    const std::uint64_t n = axis.values.size();
    if (!spec || n < 2) continue;
    std::uint64_t copies = 0;  // replicas trained exactly as another cell's of this axis
    std::string idle;
    for (ModelKind m : config.sweep.models)
      for (Regime r : config.sweep.regimes)
        if (!spec->affects(m, r))
          copies += (cells - cells / n) * static_cast<std::uint64_t>(std::max(config.sweep.seeds_of(m), 0));
    for (ModelKind m : config.sweep.models)
      if (!(spec->models & bit(m))) idle += (idle.empty() ? "" : ", ") + std::string(to_string(m));
    for (Regime r : config.sweep.regimes)
      if (!(spec->regimes & bit(r))) idle += (idle.empty() ? "" : ", ") + std::string(to_string(r));
    if (copies == 0) continue;
    out.push_back("grid axis " + axis.key + " does not affect " + idle + ": its " + std::to_string(n) +
                  " values train the same " + idle + " replicas again (" + std::to_string(copies) + " of " +
                  std::to_string(replica_count(config)) + " replicas are bit-identical copies)");
  }
  return out;
}

void validate_config(const ExperimentConfig& config, const std::function<std::string(const std::string&)>& where) {
  const auto at = [&](const std::string& key) {
    const std::string w = where ? where(key) : "";
    return w.empty() ? std::string("config") : w;
  };
  int most_seeds = 0;
  for (ModelKind m : config.sweep.models) most_seeds = std::max(most_seeds, config.sweep.seeds_of(m));
  const std::uint64_t last_seed = std::uint64_t{config.sweep.seed} + static_cast<std::uint64_t>(most_seeds) - 1;
  constexpr std::uint64_t kLargestSeed = std::numeric_limits<std::uint32_t>::max();
  const std::string seeds = "sweep.seed = " + std::to_string(config.sweep.seed) + " with " +
                            std::to_string(most_seeds) + (most_seeds == 1 ? " seed" : " seeds");
  if (most_seeds > 0 && last_seed > kLargestSeed)
    throw ConfigError(at("sweep.seed") + ": " + seeds +
                      " runs past the largest seed, 4294967295 (2^32 - 1): the seeds are sweep.seed, sweep.seed + 1, "
                      "...; lower sweep.seed");
  // A replica's own training data (data.per_replica) is drawn from slot seed + 1: the last
  // seed's would wrap to slot 0, the shared training set.
  bool per_replica = config.data.per_replica;
  for (const GridAxis& axis : config.sweep.grid) per_replica = per_replica || axis.key == "data.per_replica";
  if (most_seeds > 0 && per_replica && last_seed == kLargestSeed)
    throw ConfigError(at("sweep.seed") + ": " + seeds +
                      " reaches seed 4294967295 (2^32 - 1), whose own training set (data.per_replica) would be the "
                      "shared one (slot seed + 1 wraps to 0); lower sweep.seed");
  const std::uint64_t n = replica_count(config);
  if (n <= kMaxReplicas) return;
  throw ConfigError(at(config.sweep.grid.empty() ? "sweep.seeds" : "sweep.grid") + ": " + std::to_string(n) +
                    " replicas (" + std::to_string(grid_cells(config)) + " grid cells x " +
                    std::to_string(seeds_over_models(config)) + " seeds summed over sweep.models x " +
                    std::to_string(config.sweep.regimes.size()) + " regimes) exceed the limit of " +
                    std::to_string(kMaxReplicas) +
                    " (2^31 - 1): reduce sweep.seeds, sweep.seeds_per_model or the axes of sweep.grid");
}

}  // namespace underspec
