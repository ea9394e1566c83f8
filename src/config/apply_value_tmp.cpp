#include "underspec/config/config_io.hpp"
namespace underspec {
void apply_value(ExperimentConfig& config, std::string_view key, std::string_view toml_value) {
  apply_override(config, std::string(key) + "=" + std::string(toml_value));
}
}  // namespace underspec
