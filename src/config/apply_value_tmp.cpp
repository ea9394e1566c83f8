#include <cstdio>
#include "underspec/config/config_io.hpp"
namespace underspec {
void apply_value(ExperimentConfig& config, std::string_view key, std::string_view toml_value) {
  apply_override(config, std::string(key) + "=" + std::string(toml_value));
}
}  // namespace underspec
namespace underspec {
std::vector<std::string> differing_keys(const ExperimentConfig&, const ExperimentConfig&) { return {}; }
std::string config_hash(const ExperimentConfig& config) {
  std::uint64_t h = 14695981039346656037ull;
  for (unsigned char c : config_to_toml(config)) h = (h ^ c) * 1099511628211ull;
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}
}  // namespace underspec
