// Reading and writing ExperimentConfig: strict TOML in, fully resolved TOML out.
// Every rejected input is a ConfigError whose message names the key and where it came
// from (`file:line:col`, or the `--set` argument), so a user can fix it without guessing.
#pragma once

#include <filesystem>
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
void apply_override(ExperimentConfig& config, std::string_view assignment);
// The config a run uses: the file (or the built-in defaults when `path` is empty), then the
// overrides in order.
ExperimentConfig resolve_config(const std::filesystem::path& path, const std::vector<std::string>& overrides);

// TOML that parse_config turns back into exactly `config`, with a comment per key.
std::string config_to_toml(const ExperimentConfig& config);
// The same keys as a JSON object ({"data": {...}, ...}).
nlohmann::json config_to_json(const ExperimentConfig& config);

}  // namespace underspec
