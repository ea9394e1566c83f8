// Reading and writing ExperimentConfig: strict TOML in, fully resolved TOML out.
// Every rejected input is a ConfigError whose message names the key and where it came
// from (`file:line:col`, or the `--set` argument), so a user can fix it without guessing.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "underspec/config/config.hpp"

namespace underspec {

class ConfigError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses TOML text; `source` names it in messages (usually the file path).
ExperimentConfig parse_config(std::string_view text, std::string_view source);
ExperimentConfig load_config(const std::filesystem::path& path);
// Applies one `--set key=value` override; the value is a TOML value (`100`, `true`, `["mlp"]`).
// A grid axis is set as `sweep.grid."train.lr"=[1e-3, 3e-3]`, replacing that axis if present.
void apply_override(ExperimentConfig& config, std::string_view assignment);
// Applies the TOML value text `toml_value` (such as a GridAxis value) to `key`, a key as
// --set spells it; checked as --set checks it.
void apply_value(ExperimentConfig& config, std::string_view key, std::string_view toml_value);
// One line per grid axis that leaves some of the sweep's models or regimes unchanged (e.g.
// model.mlp.hidden and the perceptron): it names them and counts the identical replicas
// retrained in its other cells. Nothing is changed: those replicas are still trained.
std::vector<std::string> idle_axis_warnings(const ExperimentConfig& config);

// Checks what no single key can: at most 2^31 - 1 replicas in all (replica_count), seeds
// within 2^32 - 1 (and below it with data.per_replica, whose slots are seed + 1). `where`
// names where a key was set ("c.toml:2:1", "--set sweep.seed=5"; empty or "config" when
// unknown), to start the message with.
void validate_config(const ExperimentConfig& config,
                     const std::function<std::string(const std::string& key)>& where = {});
// The config a run uses: the file (or the built-in defaults when `path` is empty), then the
// overrides in order, then validate_config.
ExperimentConfig resolve_config(const std::filesystem::path& path, const std::vector<std::string>& overrides);

// TOML that parse_config turns back into exactly `config`, with a comment per key.
std::string config_to_toml(const ExperimentConfig& config);
// The same keys as a JSON object ({"data": {...}, ...}).
nlohmann::json config_to_json(const ExperimentConfig& config);

// The keys whose values differ, in the order config.toml writes them: dotted keys
// (`train.lr`, `sweep.seeds_per_model.mlp`) and grid axes (`sweep.grid."train.lr"`).
std::vector<std::string> differing_keys(const ExperimentConfig& a, const ExperimentConfig& b);
// 16 lowercase hex digits: 64-bit FNV-1a of config_to_toml(config).
std::string config_hash(const ExperimentConfig& config);
// Replicas the sweep trains: grid cells (product of the axes' sizes) x seeds summed over
// sweep.models (seeds_of) x regimes. Saturates at UINT64_MAX.
std::uint64_t replica_count(const ExperimentConfig& config);

}  // namespace underspec
