// The `underspec bench` command: picks the device, runs the benchmark, prints the table and
// writes the JSON (atomically).
#pragma once

#include <iosfwd>
#include <string>

namespace underspec::benchmark {

struct BenchCommand {
  std::string device = "auto";  // auto | cpu | cuda
  bool quick = false;
  int threads = 0;        // CPU threads (<= 0: all hardware threads)
  std::string json_path;  // "" : no JSON
  std::string version;    // underspec's, recorded in the JSON
};

// Checks the options before anything runs (UsageError: an unknown device, a --json path that
// is a directory or lies in a missing directory or one where its temporary file cannot be
// created, tried by creating it), then benchmarks the device:
// cuda without a usable device throws BackendUnavailable ("--device cuda: <why>", as `run`
// does); auto falls back to the CPU with a notice on `err`. Prints the table on `out`,
// progress on `err`, writes --json FILE atomically. Returns the exit status (0).
int run_bench_command(const BenchCommand& command, std::ostream& out, std::ostream& err);

}  // namespace underspec::benchmark
