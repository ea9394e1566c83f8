// The driver of `underspec run`: config -> sweep (-> shard) -> backend -> checkpoint ->
// outputs, with progress, graceful stops and resume.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "underspec/config/config.hpp"
#include "underspec/run/progress.hpp"

namespace underspec {

// Bad usage found before anything is trained or written (exit status 2).
class UsageError : public std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct ShardSpec {
  std::uint32_t index = 0, count = 1;
};
// "I/N" with 0 <= I < N, or "auto/N" (I from SLURM_ARRAY_TASK_ID); throws UsageError.
ShardSpec parse_shard(const std::string& text, const char* slurm_array_task_id);
// "0,2" -> {0, 2}; "" -> {} (every device). Throws UsageError.
std::vector<int> parse_gpu_list(const std::string& text);

struct RunOptions {
  ExperimentConfig config;
  bool config_given = true;   // false: neither CONFIG nor --set (a resume then uses DIR/config.toml)
  std::filesystem::path out;  // empty: default_output_dir()
  std::string device = "auto";
  std::vector<int> gpus;  // CUDA device ordinals; empty: all
  int threads = 0;        // <= 0: all hardware threads
  bool resume = false;    // continue `out` if it holds a checkpoint (else start it)
  std::optional<ShardSpec> shard;
  bool save_params = false;
  bool dry_run = false;
  bool report = false;  // write DIR/report.html at the end (run, merge, score; never for a shard)
  ProgressMode progress = ProgressMode::automatic;
  bool stderr_is_terminal = false;
  std::string version;
  std::string command_line;
  // The binary as it was invoked (argv[0], shell-quoted), so that the commands the run prints
  // (to continue it) work when pasted: `./build/underspec` is not on PATH.
  std::string program = "underspec";
};

bool is_device_name(const std::string& device);

// `runs/<UTC YYYYmmdd-HHMMSS>`, with `-2`, `-3`, ... appended while that name is taken.
std::filesystem::path default_output_dir(std::chrono::system_clock::time_point now);

// Checks the options (UsageError), trains every unfinished replica of the run (or shard),
// checkpointing as it goes, writes the outputs, prints the summary table to `out` and
// notices and progress to `err`. Returns the exit status: 0 done, 128 + signal when
// SIGINT/SIGTERM stopped it (finished work saved, the resume command printed).
int run_experiment(const RunOptions& options, std::ostream& out, std::ostream& err);

}  // namespace underspec
