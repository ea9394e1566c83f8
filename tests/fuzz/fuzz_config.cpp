// libFuzzer target (clang only; scripts/sanitize.sh builds and runs it): the config parser
// and --set on fuzzed text. The input is split at the first NUL byte: the part before is a
// config file's text for parse_config, each line after it one --set assignment for
// apply_override, then validate_config and config_to_toml must round-trip. A ConfigError is
// the expected answer to bad input; anything else (a crash, a sanitizer report, another
// exception, a round trip that differs) is a bug.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "underspec/config/config_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = input.find('\0');
  const std::string_view file = input.substr(0, nul);
  const std::string_view sets = nul == std::string_view::npos ? std::string_view() : input.substr(nul + 1);
  underspec::ExperimentConfig config;
  try {
    config = underspec::parse_config(file, "fuzz.toml");
  } catch (const underspec::ConfigError&) {
    return 0;
  }
  std::size_t start = 0;
  while (start < sets.size()) {
    const std::size_t end = std::min(sets.find('\n', start), sets.size());
    try {
      underspec::apply_override(config, sets.substr(start, end - start));
    } catch (const underspec::ConfigError&) {
    }
    start = end + 1;
  }
  try {
    underspec::validate_config(config);
  } catch (const underspec::ConfigError&) {
    return 0;
  }
  // What config.toml holds must parse back to the same config.
  const std::string toml = underspec::config_to_toml(config);
  underspec::ExperimentConfig again;
  try {
    again = underspec::parse_config(toml, "config.toml");
  } catch (const underspec::ConfigError&) {
    std::abort();  // config_to_toml wrote what parse_config refuses
  }
  if (underspec::config_to_toml(again) != toml) std::abort();
  return 0;
}
