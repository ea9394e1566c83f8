// Checks and helpers of the command line (main.cpp): CLI11 validators with messages in our
// format, the argv pass that keeps `--opt=` from swallowing the next argument, and CLI11's
// parse errors as one `underspec: error: ...` line.
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

namespace underspec::cli {

// Refuses an empty value ("empty path" / "empty value"): an unset shell variable must not
// silently mean the default.
extern const CLI::Validator kNonEmptyPath;
extern const CLI::Validator kNonEmptyValue;

// What `slurm` writes into an #SBATCH line: `word` one word without blanks (partition, time,
// account, qos, memory), `option` a whole sbatch option starting with '-'.
enum class SbatchText { word, option };
CLI::Validator sbatch_text(SbatchText kind);

// An integer option in [min, INT_MAX], saying so when it is not.
CLI::Validator integer_at_least(int min);

// --threads: 0 (all hardware threads) up to kMaxThreadsFactor x the hardware threads;
// throws UsageError naming the range.
constexpr int kMaxThreadsFactor = 4;
int parse_threads(const std::string& text);

// Starts and joins `extra` threads, so that a process limit (ulimit -u) that would stop
// OpenMP or the progress line mid-run (libgomp then prints its own message and exits) is
// found before anything is created; throws std::runtime_error naming `threads` (the
// --threads count) when one cannot start.
void require_threads(int threads, int extra);

// argv with every `--opt=` (an option of some subcommand of `app` that takes a value) split
// into `--opt` and an empty argument.
std::vector<std::string> with_empty_values_split(const CLI::App& app, int argc, char** argv);

// CLI11's parse error as one "underspec: error: ...\n" line.
std::string parse_failure(const CLI::App* app, const CLI::Error& e);

}  // namespace underspec::cli
