// The driver of `underspec run`: config -> sweep -> backend -> outputs.
#pragma once

#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <stdexcept>
#include <string>

#include "underspec/config/config.hpp"

namespace underspec {

// Bad usage found before anything is trained or written (exit status 2).
class UsageError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct RunOptions {
  ExperimentConfig config;
  std::filesystem::path out;  // empty: default_output_dir()
  std::string device = "auto";
  int threads = 0;  // <= 0: all hardware threads
  std::string version;
};

bool is_device_name(const std::string& device);

// `runs/<UTC YYYYmmdd-HHMMSS>`, with `-2`, `-3`, ... appended while that name is taken.
std::filesystem::path default_output_dir(std::chrono::system_clock::time_point now);

// Checks the options (UsageError), trains every replica, writes the outputs (all or
// nothing), prints the summary table to `out` and notices to `err`. Returns the output dir.
std::filesystem::path run_experiment(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace underspec
